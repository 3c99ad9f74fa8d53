"""The pre-commit hooks (.pre-commit-hooks.yaml), run by the real pre-commit: `pre-commit
try-repo` installs this checkout in a hook environment of its own (from the package index)
and runs both hooks on a small repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent
BUGGY = "import time\n\n\nasync def poll():\n    time.sleep(1)\n"


def test_hooks_manifest() -> None:
    hooks = {
        hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    }
    assert set(hooks) == {"asyncfix", "asyncfix-fix"}
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert "--force-exclude" in hook["entry"].split()
        assert hook["require_serial"] is True
    assert "--write" in hooks["asyncfix-fix"]["entry"].split()
    assert "--write" not in hooks["asyncfix"]["entry"].split()


def test_pre_commit_try_repo_runs_both_hooks(tmp_path: Path) -> None:
    pytest.importorskip("pre_commit")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of asyncfix")
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(BUGGY)
    (project / "generated").mkdir()
    (project / "generated" / "stub.py").write_text(BUGGY)
    (project / "notes.txt").write_text("time.sleep(1)\n")
    (project / "pyproject.toml").write_text('[tool.asyncfix]\nextend-exclude = ["generated/"]\n')
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "init"]):
        subprocess.run([*git, *command], cwd=project, check=True, env=env)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(ROOT),
            "--all-files",
            "--color",
            "never",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    # the check hook reports the finding, not the excluded file nor the text file
    assert "app.py:5:5: AF201" in output
    assert "generated/stub.py" not in output and "notes.txt" not in output
    # the fix hook fixed it; the excluded file is as it was
    assert "- files were modified by this hook" in output
    assert (project / "app.py").read_text() == BUGGY.replace(
        "import time", "import asyncio"
    ).replace("time.sleep(1)", "await asyncio.sleep(1)")
    assert (project / "generated" / "stub.py").read_text() == BUGGY
