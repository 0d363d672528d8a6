"""The resource: its model and fields, admission, allow-lists, table claims.

Pure: no client library (kubernetes, kopf, boto3, prometheus_client, the Snowflake
connector) is imported here; .importlinter holds it so."""
