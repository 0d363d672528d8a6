"""Ops commands: `status`, `enqueue`, `requeue` and `purge` against one queue table.

The queue is named the way the operator names it: a SnowflakeProcessor resource file
(``--resource``), or the same fields as flags. ``registry`` lists the commands; each
command's module holds its help line, its own arguments and its ``run``. Parsing a
command line imports only those and ``shared_arguments``; the ``runner``, the ``session``
and what they need (rich, PyYAML, the connector) load when a command runs.
"""
