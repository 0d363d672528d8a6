"""The control side of snowflake-processor: reconcile core, Job backends, operator, demo."""
