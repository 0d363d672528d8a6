"""The Job side of snowflake-processor: the queue protocol and the worker that drains it."""
