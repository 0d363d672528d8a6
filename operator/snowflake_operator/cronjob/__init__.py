"""CronJob mode: one poll per run, its status in a ConfigMap (no CRD, no daemon)."""
