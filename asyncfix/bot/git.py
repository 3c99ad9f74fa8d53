"""The git side of the bot: a clean clone, a scratch work tree per branch, commits, pushes.

Everything runs the ``git`` program. The token, when there is one, reaches git only through
the environment of the commands that talk to the remote (an askpass helper that prints it
from an environment variable): it is never on a command line, in a file or in git config.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

#: the helper git asks for credentials: the user name GitHub expects with a token, and the
#: token from the environment of that one git command
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) echo x-access-token ;;
  *) printf '%s\\n' "$ASYNCFIX_BOT_TOKEN" ;;
esac
"""

_SLUG = re.compile(r"(?:github\.com[:/]|^)([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")


class GitError(Exception):
    """A git command failed; the message says which and why."""


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


def repo_slug(url: str) -> str | None:
    """``OWNER/NAME`` of a GitHub remote URL (https or ssh), or None."""
    match = _SLUG.search(url.strip())
    return f"{match[1]}/{match[2]}" if match else None


class Git:
    """git commands in one repository; ``token`` is offered to the remote commands only."""

    def __init__(self, root: Path, token: str | None = None) -> None:
        self.root = root
        self.token = token
        self._helper_dir: str | None = None

    def close(self) -> None:
        if self._helper_dir is not None:
            shutil.rmtree(self._helper_dir, ignore_errors=True)
            self._helper_dir = None

    # -- running -------------------------------------------------------------------------

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        remote: bool = False,
        check: bool = True,
    ) -> str:
        full = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})}
        if remote and self.token:
            full["GIT_ASKPASS"] = self._askpass()
            full["ASYNCFIX_BOT_TOKEN"] = self.token
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd or self.root,
                env=full,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror or exc}") from None
        if check and done.returncode != 0:
            message = self._scrub(done.stderr.strip() or done.stdout.strip())
            raise GitError(f"git {args[0]} failed: {message}")
        return done.stdout

    def _askpass(self) -> str:
        if self._helper_dir is None:
            self._helper_dir = tempfile.mkdtemp(prefix="asyncfix-askpass-")
        helper = Path(self._helper_dir) / "askpass.sh"
        if not helper.exists():
            helper.write_text(_ASKPASS, encoding="utf-8")
            helper.chmod(stat.S_IRWXU)
        return str(helper)

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    # -- the clone -----------------------------------------------------------------------

    def toplevel(self) -> Path:
        return Path(self.run("rev-parse", "--show-toplevel").strip())

    def dirty(self) -> list[str]:
        """What ``git status`` lists (untracked files included, ignored ones not)."""
        out = self.run("status", "--porcelain", "--untracked-files=normal")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def head(self) -> str:
        return self.run("rev-parse", "HEAD").strip()

    def current_branch(self) -> str | None:
        name = self.run("rev-parse", "--abbrev-ref", "HEAD").strip()
        return None if name == "HEAD" else name

    def remote_url(self, name: str = "origin") -> str | None:
        out = self.run("remote", "get-url", name, check=False).strip()
        return out or None

    # -- the remote branch ---------------------------------------------------------------

    def fetch_branch(self, url: str, branch: str) -> str | None:
        """The remote branch's tip, fetched into a private ref (None: no such branch)."""
        listed = self.run("ls-remote", "--heads", url, f"refs/heads/{branch}", remote=True)
        if not listed.strip():
            return None
        ref = f"refs/asyncfix/remote/{branch}"
        self.run("fetch", "--quiet", "--no-tags", url, f"+refs/heads/{branch}:{ref}", remote=True)
        return self.run("rev-parse", ref).strip()

    def commit_info(self, commit: str) -> tuple[str, str]:
        """(committer email, message) of ``commit``."""
        email, _, message = self.run("log", "-1", "--format=%ce%x00%B", commit).partition("\0")
        return email, message

    def fingerprint(self, commit: str) -> str | None:
        """The ``Asyncfix-Fingerprint`` trailer of ``commit``'s message, if any."""
        out = self.run(
            "log", "-1", "--format=%(trailers:key=Asyncfix-Fingerprint,valueonly)", commit
        ).strip()
        return out or None

    def tree(self, commit: str) -> str:
        return self.run("rev-parse", f"{commit}^{{tree}}").strip()

    def push(self, url: str, commit: str, branch: str, replaces: str | None) -> None:
        """Push ``commit`` as ``branch``: over ``replaces`` (the tip the bot saw, which only
        it made) and nothing else -- if someone pushed meanwhile, the push fails."""
        args = ["push", "--quiet", "--no-verify"]
        if replaces is not None:
            args.append(f"--force-with-lease=refs/heads/{branch}:{replaces}")
        self.run(*args, url, f"{commit}:refs/heads/{branch}", remote=True)

    # -- scratch work trees --------------------------------------------------------------

    @contextlib.contextmanager
    def worktree(self, commit: str) -> Iterator[Path]:
        """A detached work tree of ``commit`` in a temporary folder, removed afterwards."""
        parent = Path(tempfile.mkdtemp(prefix="asyncfix-bot-"))
        path = parent / "tree"
        self.run("worktree", "add", "--quiet", "--detach", str(path), commit)
        try:
            yield path
        finally:
            self.run("worktree", "remove", "--force", str(path), check=False)
            shutil.rmtree(parent, ignore_errors=True)
            self.run("worktree", "prune", check=False)

    def commit_files(
        self, tree: Path, paths: Sequence[str], message: str, identity: Identity
    ) -> str | None:
        """Commit ``paths`` (relative to ``tree``) in the work tree; the new commit's sha, or
        None when they hold no change."""
        self.run("add", "--", *paths, cwd=tree)
        if not self.run("diff", "--cached", "--name-only", cwd=tree).strip():
            return None
        env = {
            "GIT_AUTHOR_NAME": identity.name,
            "GIT_AUTHOR_EMAIL": identity.email,
            "GIT_COMMITTER_NAME": identity.name,
            "GIT_COMMITTER_EMAIL": identity.email,
        }
        message_file = tree.parent / "message.txt"  # outside the tree: never committed
        message_file.write_text(message, encoding="utf-8")
        self.run(
            "-c",
            "commit.gpgsign=false",
            "commit",
            "--quiet",
            "--no-verify",
            "--file",
            str(message_file),
            cwd=tree,
            env=env,
        )
        return self.run("rev-parse", "HEAD", cwd=tree).strip()
