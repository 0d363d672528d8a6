"""One poll of one processor, pure: planning, launch backoff, the idle gate, job
history, worker reports, certificates checks. Its I/O comes through ports (run.py's
PollEdges), so the daemon, CronJob mode and the demo share it. No client library."""
