"""The GitHub Action (action.yml) and the example workflows: well-formed, and the action's
script passes its inputs to `asyncfix bot` as the options they name."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parent.parent


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def bot_step(action: Any) -> Any:
    return next(s for s in action["runs"]["steps"] if s.get("name") == "Run the bot")


def run_script(tmp_path: Path, env: dict[str, str], status: int = 0) -> tuple[int, list[str]]:
    """The action's script with a stand-in `asyncfix` that records its arguments."""
    action = load(ROOT / "action.yml")
    stub = tmp_path / "bin" / "asyncfix"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/args"\nexit {status}\n')
    stub.chmod(0o755)
    defaults = {
        f"AF_{key}": str(action["inputs"][name]["default"])
        for key, name in [
            ("GROUP", "group"),
            ("UNSAFE", "unsafe-fixes"),
            ("VALIDATE", "validate"),
            ("LABELS", "labels"),
            ("MAX_PRS", "max-prs"),
            ("SELECT", "select"),
            ("DRY_RUN", "dry-run"),
        ]
    }
    full = {
        **os.environ,
        "PATH": f"{stub.parent}:{os.environ['PATH']}",
        "GITHUB_REPOSITORY": "acme/service",
        "GITHUB_API_URL": "https://api.github.com",
        **defaults,
        **env,
    }
    done = subprocess.run(
        ["bash", "-e", "-c", bot_step(action)["run"]], env=full, cwd=tmp_path, check=False
    )
    args = (tmp_path / "args").read_text().splitlines() if (tmp_path / "args").exists() else []
    return done.returncode, args


def test_action_is_a_composite_that_installs_and_runs_the_bot() -> None:
    action = load(ROOT / "action.yml")
    assert action["runs"]["using"] == "composite"
    step = bot_step(action)
    assert step["env"]["GITHUB_TOKEN"] == "${{ inputs.token }}"
    assert "${{" not in step["run"]  # inputs reach the script only through env
    assert set(action["inputs"]) >= {"group", "unsafe-fixes", "validate", "labels", "max-prs"}


def test_action_defaults_make_the_bots_defaults(tmp_path: Path) -> None:
    status, args = run_script(tmp_path, {})
    assert status == 0
    assert args == [
        "bot", ".", "--repo", "acme/service", "--api-url", "https://api.github.com",
        "--group", "family", "--max-prs", "5",
    ]  # fmt: skip


def test_action_inputs_become_options(tmp_path: Path) -> None:
    env = {
        "AF_UNSAFE": "true",
        "AF_VALIDATE": "pytest -q -k 'not slow'",
        "AF_LABELS": "asyncio,bot",
        "AF_DRY_RUN": "true",
        "AF_GROUP": "rule",
    }
    status, args = run_script(tmp_path, env)
    assert status == 0
    assert args[args.index("--validate") + 1] == "pytest -q -k 'not slow'"
    assert {"--unsafe-fixes", "--dry-run"} <= set(args)
    assert args[args.index("--labels") + 1] == "asyncio,bot"
    assert args[args.index("--group") + 1] == "rule"


@pytest.mark.parametrize(("status", "expected"), [(1, 0), (2, 2)])
def test_action_counts_a_pull_request_made_as_success(
    tmp_path: Path, status: int, expected: int
) -> None:
    assert run_script(tmp_path, {}, status)[0] == expected


def test_example_workflows_use_the_action_and_the_check() -> None:
    bot = load(ROOT / "docs" / "workflows" / "asyncfix-bot.yml")
    steps = bot["jobs"]["asyncfix"]["steps"]
    assert any(str(s.get("uses", "")).startswith("asyncfix/asyncfix") for s in steps)
    assert bot["permissions"] == {"contents": "write", "pull-requests": "write"}
    check = load(ROOT / "docs" / "workflows" / "asyncfix-check.yml")
    steps = check["jobs"]["asyncfix"]["steps"]
    assert any(str(s.get("uses", "")).startswith("asyncfix/asyncfix/check@") for s in steps)
    assert check["permissions"]["security-events"] == "write"  # the SARIF upload


# -- the check action (check/action.yml) --------------------------------------------------------


def run_check(tmp_path: Path, env: dict[str, str], status: int = 0) -> tuple[int, list[str]]:
    """The check action's script with a stand-in `asyncfix` that records each call's
    arguments (one line per call, tab-separated) and exits with ``status``."""
    action = load(ROOT / "check" / "action.yml")
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "check")
    stub = tmp_path / "bin" / "asyncfix"
    stub.parent.mkdir()
    stub.write_text(
        f'#!/bin/bash\n(IFS=$\'\\t\'; echo "$*") >> "{tmp_path}/calls"\nexit {status}\n'
    )
    stub.chmod(0o755)
    defaults = {
        f"AF_{name.upper().replace('-', '_')}": str(action["inputs"][name]["default"])
        for name in ("paths", "args", "sarif", "sarif-file")
    }
    full = {
        **os.environ,
        "PATH": f"{stub.parent}:{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        **defaults,
        **env,
    }
    done = subprocess.run(["bash", "-e", "-c", step["run"]], env=full, cwd=tmp_path, check=False)
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    assert done.returncode == 0  # the status is an output; a later step fails the job
    output = (tmp_path / "output").read_text()
    return int(output.strip().removeprefix("exit-code=")), calls


def test_check_action_annotates_and_summarises(tmp_path: Path) -> None:
    action = load(ROOT / "check" / "action.yml")
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", "")  # inputs reach scripts only through env
    status, calls = run_check(tmp_path, {}, 1)
    assert status == 1
    assert calls == [
        "check\t--output-format\tgithub\t.",
        "check\t--quiet\t--output-format\tmarkdown\t.",
    ]


def test_check_action_options_paths_and_sarif(tmp_path: Path) -> None:
    env = {
        "AF_PATHS": "src tests",
        "AF_ARGS": "--select AF1,AF2 --unsafe-fixes",
        "AF_SARIF": "true",
        "AF_SARIF_FILE": "out dir/af.sarif",
    }
    status, calls = run_check(tmp_path, env, 0)
    assert status == 0
    assert (
        calls[0] == "check\t--output-format\tgithub\t--select\tAF1,AF2\t--unsafe-fixes\tsrc\ttests"
    )
    assert calls[2] == (
        "check\t--quiet\t--output-format\tsarif\t--output-file\tout dir/af.sarif\t"
        "--select\tAF1,AF2\t--unsafe-fixes\tsrc\ttests"
    )
    upload = next(
        s
        for s in load(ROOT / "check" / "action.yml")["runs"]["steps"]
        if "uses" in s and "upload-sarif" in s["uses"]
    )
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"


def test_check_action_never_evaluates_its_inputs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _, calls = run_check(tmp_path, {"AF_ARGS": f"$(touch {marker}) `touch {marker}`"}, 0)
    assert not marker.exists()
    assert calls[0].split("\t")[3] == "$(touch"
