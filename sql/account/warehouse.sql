-- Part "warehouse": the warehouse that runs the queue statements. Run as SYSADMIN (a role
-- with CREATE WAREHOUSE on the account). Optional: leave it out to use an existing one.
--
-- X-Small: the statements touch one small table, a row at a time. AUTO_SUSPEND = 60: the
-- operator's idle checks need no warehouse, so an empty queue lets it suspend after a minute
-- (billing is per second with a one-minute minimum on each resume). INITIALLY_SUSPENDED:
-- creating it costs nothing. IF NOT EXISTS: an existing warehouse is left as it is.

CREATE WAREHOUSE IF NOT EXISTS {{ warehouse }}
    WAREHOUSE_SIZE = XSMALL
    AUTO_SUSPEND = 60
    AUTO_RESUME = TRUE
    INITIALLY_SUSPENDED = TRUE;
