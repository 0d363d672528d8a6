"""promtool and prometheus are built from the Go module proxy at one pinned version."""

from __future__ import annotations

from pathlib import Path

import pytest

from snowflake_devtools.cluster import golang, prometheus


def test_the_install_command_pins_the_module_version() -> None:
    command = prometheus.install_command(Path("/go/bin/go"), "promtool")
    assert command == [
        "/go/bin/go",
        "install",
        f"github.com/prometheus/prometheus/cmd/promtool@{prometheus.PROMETHEUS_VERSION}",
    ]
    with pytest.raises(ValueError, match="unknown Prometheus tool"):
        prometheus.install_command(Path("/go/bin/go"), "rm")


def test_the_build_is_static_local_and_lands_in_the_cache(tmp_path: Path) -> None:
    toolchain = golang.Toolchain(Path("/go/bin/go"), None)
    env = prometheus.build_env(toolchain, tmp_path, {"GOFLAGS": "-mod=vendor", "HOME": "/r"})
    assert env["GOBIN"] == str(tmp_path)
    assert (env["CGO_ENABLED"], env["GOTOOLCHAIN"]) == ("0", "local")
    assert "GOFLAGS" not in env and env["HOME"] == "/r"
    assert prometheus.tool_dir({"SFP_CACHE_DIR": str(tmp_path)}) == (
        tmp_path / "prometheus" / prometheus.PROMETHEUS_VERSION
    )
