-- Part "database": the database and the schema of the queue table. Run as SYSADMIN (a role
-- with CREATE DATABASE on the account). Optional: leave it out when both exist. IF NOT
-- EXISTS: an existing database or schema is left as it is, with everything in it.

CREATE DATABASE IF NOT EXISTS {{ database }};

CREATE SCHEMA IF NOT EXISTS {{ database }}.{{ schema }};
