"""The command behaves as kubectl users expect: --version, -o json|yaml|wide (with --json
kept as an alias), completion of commands, flags and their values."""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json

import pytest
import yaml

from snowflake_operator.ops.output import Output
from snowflake_operator.ops.session import login_hint
from snowflake_operator.ops.shared_arguments import output_format
from snowflake_processor.cli import KUBECTL_PROG, build_parser, builtin_commands, main
from snowflake_processor.completion import kubectl_completions
from snowflake_worker.snowflake_settings import AuthMode


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    installed = importlib.metadata.version("snowflake-processor")
    assert capsys.readouterr().out == f"snowflake-processor {installed}\n"
    with pytest.raises(SystemExit):
        main(["--version"], prog=KUBECTL_PROG)
    assert capsys.readouterr().out == f"kubectl sfp {installed}\n"


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser(builtin_commands()).parse_args(["status", *argv])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ((), "table"),
        (("-o", "json"), "json"),
        (("--output", "yaml"), "yaml"),
        (("-o", "wide"), "wide"),
        (("--json",), "json"),  # deprecated, still works
        (("--json", "-o", "yaml"), "yaml"),  # -o wins
    ],
)
def test_output_formats(argv: tuple[str, ...], expected: str) -> None:
    assert output_format(_parse(*argv)) == expected


def test_an_unknown_output_format_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parse("-o", "xml")
    assert exit_info.value.code == 2
    assert "invalid choice: 'xml' (choose from" in capsys.readouterr().err


def test_json_and_yaml_carry_the_same_document() -> None:
    document = {"table": "DB.Q.T", "counts": {"failed": 2}, "error": "line one\nline two"}
    as_json, as_yaml = io.StringIO(), io.StringIO()
    Output(format="json", stdout=as_json).document(document)
    Output(format="yaml", stdout=as_yaml).document(document)
    assert json.loads(as_json.getvalue()) == yaml.safe_load(as_yaml.getvalue()) == document
    assert "error: |-\n  line one\n  line two\n" in as_yaml.getvalue()  # kept readable


def test_help_marks_json_as_deprecated(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    out = capsys.readouterr().out
    assert "-o {json,yaml,wide}, --output {json,yaml,wide}" in out
    assert "same as -o json (deprecated)" in " ".join(out.split())


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["st"], ["status"]),
        (["sql", ""], ["render", "apply"]),
        (["status", "-o", ""], ["json", "yaml", "wide"]),
        (["status", "--dead"], ["--dead-letters"]),
        (["purge", "--older-than", "7d", "--dr"], ["--dry-run"]),
    ],
)
def test_completions(words: list[str], expected: list[str]) -> None:
    parser = build_parser(builtin_commands(), KUBECTL_PROG)
    found = [line.split("\t")[0] for line in kubectl_completions(parser, words)]
    assert [word for word in found if word not in ("-h", "--help")] == expected


def test_kubectl_sfp_offers_only_the_ops_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """kubectl's plugin works on processors in a cluster; running a worker, the operator or
    the demo is the `snowflake-processor` command's."""
    with pytest.raises(SystemExit):
        main(["--help"], prog=KUBECTL_PROG)
    listed = capsys.readouterr().out
    for command in ("status", "enqueue", "requeue", "purge", "sql"):
        assert command in listed
    for command in ("worker", "operator", "reconcile-once", "demo"):
        assert command not in listed
    with pytest.raises(SystemExit) as refused:
        main(["worker"], prog=KUBECTL_PROG)
    assert refused.value.code == 2
    assert "invalid choice: 'worker'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "operator" in capsys.readouterr().out  # the command itself still has them all


def test_the_snowflake_user_has_its_own_flag_and_the_old_one_warns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _parse("--snowflake-user", "JDOE").user == "JDOE"
    assert capsys.readouterr().err == ""
    assert _parse("--user", "JDOE").user == "JDOE"
    assert "--user is deprecated" in capsys.readouterr().err
    assert _parse().user is None


@pytest.mark.parametrize(
    ("auth", "environ", "hinted"),
    [
        (AuthMode.WORKLOAD_IDENTITY, {}, True),  # a laptop, whatever AWS keys it holds
        (AuthMode.WORKLOAD_IDENTITY, {"AWS_ACCESS_KEY_ID": "AKIA"}, True),
        (AuthMode.WORKLOAD_IDENTITY, {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/t"}, False),
        (AuthMode.KEY_PAIR, {}, False),
        (AuthMode.PASSWORD, {}, False),
    ],
)
def test_a_failed_workload_identity_login_outside_a_pod_gets_a_hint(
    auth: AuthMode, environ: dict[str, str], hinted: bool
) -> None:
    hint = login_hint(auth, environ)
    assert (hint is not None) == hinted
    if hint is not None:
        assert "--auth key_pair" in hint and "--snowflake-user" in hint


def test_kubectl_global_flags_win_over_the_kubeconfig() -> None:
    from kubernetes import client

    from snowflake_operator.kube.client_config import apply_overrides
    from snowflake_operator.ops.cluster import kubectl_overrides

    args = _parse(
        "--server", "https://api.example:6443/", "--token", "tok-secret", "--as", "jdoe",
        "--as-group", "oncall", "--certificate-authority", "/etc/ca.pem",
        "--insecure-skip-tls-verify",
    )  # fmt: skip
    overrides = kubectl_overrides(args)
    assert (overrides.impersonate, overrides.impersonate_group) == ("jdoe", "oncall")
    assert "tok-secret" not in repr(overrides)
    configuration = client.Configuration()
    configuration.host, configuration.cert_file, configuration.key_file = "https://old", "c", "k"
    apply_overrides(configuration, overrides)
    assert configuration.host == "https://api.example:6443"
    assert configuration.api_key == {"authorization": "Bearer tok-secret"}
    # The kubeconfig's client certificate would be authenticated before the token.
    assert (configuration.cert_file, configuration.key_file) == (None, None)
    assert configuration.ssl_ca_cert == "/etc/ca.pem" and configuration.verify_ssl is False
    untouched = client.Configuration()
    untouched.host, untouched.cert_file = "https://kept", "c"
    apply_overrides(untouched, kubectl_overrides(_parse()))
    kept = (untouched.host, untouched.cert_file, untouched.verify_ssl)
    assert kept == ("https://kept", "c", True)
