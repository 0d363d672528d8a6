-- 004: least-privilege grants for the service role that workers and the operator use.
--
-- Run by an administrator (SECURITYADMIN: MANAGE GRANTS; or the objects' owner), after
-- 001-003. Re-running is harmless. The CREATE ROLE keeps this file runnable alone; after
-- the part "roles" (account/roles.sql) it changes nothing.
--
-- What the service role can do: claim, complete and fail rows (SELECT, UPDATE on the
-- table) and read the monitoring views. Nothing more:
--   * no INSERT or DELETE: enqueueing and purging are ops tasks; account/admin_grants.sql
--     grants them to the admin role, never to this one;
--   * never OWNERSHIP (and no ALL): an owner could drop or alter the table and re-grant;
--   * the service users get this role in account/service_user.sql (part "users").

CREATE ROLE IF NOT EXISTS {{ service_role }};

GRANT USAGE ON WAREHOUSE {{ warehouse }} TO ROLE {{ service_role }};

GRANT USAGE ON DATABASE {{ database }} TO ROLE {{ service_role }};

GRANT USAGE ON SCHEMA {{ database }}.{{ schema }} TO ROLE {{ service_role }};

GRANT SELECT, UPDATE ON TABLE {{ queue_table }} TO ROLE {{ service_role }};

GRANT SELECT ON VIEW {{ status_view }} TO ROLE {{ service_role }};

GRANT SELECT ON VIEW {{ dead_letter_view }} TO ROLE {{ service_role }};
