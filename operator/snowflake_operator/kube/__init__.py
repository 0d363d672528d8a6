"""The cluster's edges: API calls, the Job manifest, the worker's environment,
certificates from S3 into a Secret, the per-processor state that holds connections."""
