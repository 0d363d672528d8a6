"""The operator process: kopf handlers, the per-processor loop, metrics, health."""
