"""Names the operator writes into the cluster: the API, labels, annotations, file names.

One place, so a Job, a Secret and the chart never disagree on a label or its value.
"""

from __future__ import annotations

from snowflake_worker.constants import (
    CA_CERT,
    CERT_FILES,
    CERT_MOUNT_PATH,
    CLIENT_CERT,
    CLIENT_KEY,
    ENDPOINT_HEADERS_MOUNT_PATH,
    SNOWFLAKE_KEY_MOUNT_PATH,
    TERMINATION_MESSAGE_PATH,
)

__all__ = [
    "CA_CERT",
    "CERT_FILES",
    "CERT_MOUNT_PATH",
    "CLIENT_CERT",
    "CLIENT_KEY",
    "ENDPOINT_HEADERS_MOUNT_PATH",
    "SNOWFLAKE_KEY_MOUNT_PATH",
    "TERMINATION_MESSAGE_PATH",
]

# The custom resource.
GROUP = "snowflake-processor.dev"
VERSION = "v1alpha1"
KIND = "SnowflakeProcessor"
PLURAL = "snowflakeprocessors"

# Labels on everything the operator creates (Jobs, their pods, certificate Secrets).
PROCESSOR_LABEL = f"{GROUP}/processor"  # the owning SnowflakeProcessor's name
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
APP_NAME = "snowflake-processor"
# On every worker pod, whatever the resource says: the label the worker Fargate profile
# selects (terraform/eks/main.tf, local.worker_pod_labels).
FARGATE_PROFILE_LABEL = f"{GROUP}/fargate"
FARGATE_PROFILE_LABEL_VALUE = "true"
# What created the object: the operator (the chart's own objects say Helm, as Helm's do).
MANAGED_BY = "snowflake-processor-operator"

# Annotations.
COUNTED_ANNOTATION = f"{GROUP}/counted"  # a finished Job's summary is in status.totals
FINGERPRINT_ANNOTATION = f"{GROUP}/certificates-fingerprint"  # S3 versions in a Secret
# Which operator replica (or CronJob run) created a Job: its identity, for the record.
LAUNCHED_BY_ANNOTATION = f"{GROUP}/launched-by"

# The worker container and its pod.
WORKER_CONTAINER = "worker"
WORKER_COMMAND = ["snowflake-processor-worker"]
WORKER_UID = 10001  # the numeric non-root user of both images
SECRET_FILE_MODE = 0o400

# Snowflake fails a statement (000625) that would make more than 20 wait for a table's
# lock. Each worker has at most one statement on the table, the operator (one per
# processor) and an ops command one each: poll/job_count.py explains the sum.
SNOWFLAKE_LOCK_WAITERS_LIMIT = 20
STATEMENTS_PER_WORKER = 1
OPERATOR_AND_OPS_STATEMENTS = 2
# The largest maxActiveJobs whose statements never exceed Snowflake's waiter limit (the
# CRD's bound).
MAX_ACTIVE_JOBS = (
    SNOWFLAKE_LOCK_WAITERS_LIMIT + 1 - OPERATOR_AND_OPS_STATEMENTS
) // STATEMENTS_PER_WORKER
