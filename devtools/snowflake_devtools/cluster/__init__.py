"""A real single-node Kubernetes cluster on this machine, for the project's tests.

`python -m snowflake_devtools.cluster build|up|down|status`; in Python
`Cluster.start(state_dir)` (see cluster.py). docs/cluster.md explains the choices.
"""

from .cluster import Cluster, ClusterError

__all__ = ["Cluster", "ClusterError"]
