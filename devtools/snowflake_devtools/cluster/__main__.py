"""python -m snowflake_devtools.cluster build|up|down|status [--state-dir DIR]"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from . import base_image, build
from .cluster import Cluster, ClusterError, default_state_dir, stop_cluster
from .settings import BASE_IMAGE, Layout
from .state import load


def say(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


def cmd_build(args: argparse.Namespace) -> int:
    binaries = build.ensure_binaries(force=args.force, say=say)
    if not args.no_images:
        base_image.ensure_pause_image(binaries.pause, say)
        base_image.ensure_base_image(say)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    images = () if args.no_base_image else (BASE_IMAGE,)
    cluster = Cluster.start(args.state_dir, images=images, say=say)
    print(f"kubeconfig: {cluster.kubeconfig}")
    print(f"host address (pods reach this machine here): {cluster.host_address}")
    print(f"logs: {cluster.logs_dir}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    problems = stop_cluster(args.state_dir, say)
    for problem in problems:
        say(f"left behind: {problem}")
    if problems:
        return 1
    say("cluster stopped; nothing left behind")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or default_state_dir()
    state = load(Layout(state_dir.absolute()))
    if state is None:
        print(f"no cluster in {state_dir}")
        return 1
    cluster = Cluster(state)
    if not state.procs:
        print(f"no cluster running in {state_dir} (logs of the last one: {cluster.logs_dir})")
        return 1
    for name, proc in state.procs.items():
        print(f"{name:24} pid {proc.pid:<8} {'running' if proc.alive() else 'NOT RUNNING'}")
    healthy = bool(state.procs) and cluster.dead_component() is None
    if healthy:
        try:
            healthy = cluster.api().text("/readyz").strip() == "ok"
        except Exception as error:
            print(f"API server not ready: {error}")
            healthy = False
    print(f"kubeconfig: {cluster.kubeconfig}")
    print(f"host address: {cluster.host_address}")
    for what, seconds in state.timings.items():
        print(f"  {what}: {seconds} s")
    print("ready" if healthy and state.ready else "NOT ready")
    return 0 if healthy and state.ready else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snowflake_devtools.cluster")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="default: $SFP_CACHE_DIR/cluster"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build (or reuse) the binaries and images")
    p_build.add_argument("--force", action="store_true", help="rebuild even if cached")
    p_build.add_argument("--no-images", action="store_true", help="binaries only")
    p_up = sub.add_parser("up", help="start a fresh cluster")
    p_up.add_argument("--no-base-image", action="store_true", help="do not import the base image")
    sub.add_parser("down", help="stop it and clean up everything")
    sub.add_parser("status", help="show whether it runs")
    args = parser.parse_args(argv)
    handlers = {"build": cmd_build, "up": cmd_up, "down": cmd_down, "status": cmd_status}
    began = time.monotonic()
    try:
        code = handlers[args.command](args)
    except ClusterError as error:
        print(f"cluster {args.command} failed: {error}", file=sys.stderr)
        if error.component and error.log_tail:
            print(f"--- last lines of {error.component}.log ---", file=sys.stderr)
            print(error.log_tail, file=sys.stderr)
        return 1
    except (subprocess.CalledProcessError, RuntimeError, OSError) as error:
        detail = getattr(error, "stderr", None)
        print(f"cluster {args.command} failed: {error}", file=sys.stderr)
        if detail:
            print(
                detail if isinstance(detail, str) else detail.decode(errors="replace"),
                file=sys.stderr,
            )
        return 1
    say(f"{args.command} took {time.monotonic() - began:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
