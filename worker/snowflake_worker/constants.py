"""Names the worker shares with whoever mounts its files: the operator, the demo, tests."""

from __future__ import annotations

# The three mTLS files, as the operator writes them into the certificate Secret and as
# the legacy design's S3 layout names them.
CLIENT_CERT = "client.pem"
CLIENT_KEY = "client-key.pem"
CA_CERT = "ca-cert.pem"
CERT_FILES = (CLIENT_CERT, CLIENT_KEY, CA_CERT)

# Where a Job mounts them (SFP_CERT_DIR's default).
CERT_MOUNT_PATH = "/etc/snowflake-processor/certs"
SNOWFLAKE_KEY_MOUNT_PATH = "/etc/snowflake-processor/snowflake-key"
# The Secret of extra request headers (spec.endpoint.headersSecret): one file per header.
ENDPOINT_HEADERS_MOUNT_PATH = "/etc/snowflake-processor/endpoint-headers"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"

# Longest text kept from a service's answer or an exception: errors stay one short line.
ERROR_TEXT_LIMIT = 300
