-- Part "users", once per IAM role whose pods log in: a service user that Snowflake finds
-- from that IAM role (workload identity federation), with the service role. Run as
-- USERADMIN (CREATE USER; it then owns the user and the roles it created).
--
-- One user per IAM role: a user's WORKLOAD_IDENTITY property holds one identity, and the
-- named identities of ALTER USER ... ADD WORKLOAD IDENTITY cannot be added again without an
-- error, so they could not be re-run. Separate users also tell the operator's statements
-- from the workers' in LOGIN_HISTORY and QUERY_HISTORY, and one can be disabled alone.
--
-- TYPE = SERVICE: no password, no MFA, no browser login. The ALTER brings a user that
-- already exists to the current IAM role (Terraform may have recreated it), so running the
-- part again is how an ARN is changed.

CREATE USER IF NOT EXISTS {{ service_user }}
    TYPE = SERVICE
    WORKLOAD_IDENTITY = (TYPE = AWS ARN = {{ iam_role_arn }})
    DEFAULT_ROLE = {{ service_role }}
    DEFAULT_WAREHOUSE = {{ warehouse }};

ALTER USER {{ service_user }} SET
    TYPE = SERVICE
    WORKLOAD_IDENTITY = (TYPE = AWS ARN = {{ iam_role_arn }})
    DEFAULT_ROLE = {{ service_role }}
    DEFAULT_WAREHOUSE = {{ warehouse }};

GRANT ROLE {{ service_role }} TO USER {{ service_user }};
