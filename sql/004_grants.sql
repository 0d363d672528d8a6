-- 004: least-privilege grants for the service role that workers and the operator use.
--
-- Run by an administrator (USERADMIN or SECURITYADMIN for the role, the objects' owner
-- or a role with MANAGE GRANTS for the grants), after 001-003. Re-running is harmless.
--
-- What the service role can do: claim, complete and fail rows (SELECT, UPDATE on the
-- table) and read the monitoring views. Nothing more:
--   * no INSERT or DELETE: enqueueing and purging are ops tasks; grant INSERT/DELETE on
--     the table to a separate admin role, never to this one;
--   * never OWNERSHIP (and no ALL): an owner could drop or alter the table and re-grant;
--   * giving this role to the service user (GRANT ROLE ... TO USER) is left to the admin.

CREATE ROLE IF NOT EXISTS {{ service_role }};

GRANT USAGE ON WAREHOUSE {{ warehouse }} TO ROLE {{ service_role }};

GRANT USAGE ON DATABASE {{ database }} TO ROLE {{ service_role }};

GRANT USAGE ON SCHEMA {{ database }}.{{ schema }} TO ROLE {{ service_role }};

GRANT SELECT, UPDATE ON TABLE {{ queue_table }} TO ROLE {{ service_role }};

GRANT SELECT ON VIEW {{ status_view }} TO ROLE {{ service_role }};

GRANT SELECT ON VIEW {{ dead_letter_view }} TO ROLE {{ service_role }};
