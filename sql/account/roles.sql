-- Part "roles": the service role (what the operator, the workers and CronJob-mode runs
-- use) and the admin role (what enqueue and purge need). Run as USERADMIN (CREATE ROLE).
--
-- Both are granted to SYSADMIN, as Snowflake recommends for custom roles, so the account's
-- administrators can see and manage what they own. Giving the admin role to people is left
-- to you: GRANT ROLE <admin role> TO USER <person>.

CREATE ROLE IF NOT EXISTS {{ service_role }};

CREATE ROLE IF NOT EXISTS {{ admin_role }};

GRANT ROLE {{ service_role }} TO ROLE SYSADMIN;

GRANT ROLE {{ admin_role }} TO ROLE SYSADMIN;
