-- Part "grants", after 004_grants.sql: what the admin role needs for the ops commands that
-- the service role may not run. Run as SECURITYADMIN (MANAGE GRANTS), or the objects' owner.
--
-- enqueue inserts (a MERGE whose only clause inserts), purge deletes completed rows,
-- requeue updates, status reads the views. Never OWNERSHIP (or ALL): the admin role cannot
-- drop or alter the table, nor grant on it.

GRANT USAGE ON WAREHOUSE {{ warehouse }} TO ROLE {{ admin_role }};

GRANT USAGE ON DATABASE {{ database }} TO ROLE {{ admin_role }};

GRANT USAGE ON SCHEMA {{ database }}.{{ schema }} TO ROLE {{ admin_role }};

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {{ queue_table }} TO ROLE {{ admin_role }};

GRANT SELECT ON VIEW {{ status_view }} TO ROLE {{ admin_role }};

GRANT SELECT ON VIEW {{ dead_letter_view }} TO ROLE {{ admin_role }};
