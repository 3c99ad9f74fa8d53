"""``asyncfix bot``: real git (a bare repository as the remote), GitHub's contract (Prism
serving GitHub's OpenAPI description checks every request), a small stateful fake behind it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncfix.bot.git import Identity, repo_slug
from asyncfix.bot.github import GitHub, GitHubError
from asyncfix.bot.run import Options, groups_for, run_bot
from asyncfix.cli import main
from asyncfix.model import FileResult, Finding, RunResult, Safety, Severity, Span
from asyncfix.report.markdown import Group, fingerprint_of, render_body
from tests.github_fake import PRISM, SPEC, FakeGitHub, serve, start_prism
from tests.helpers import cli_runner

TOKEN = "ghp_s3cr3tTOKENvalue0123456789abcdef"
SLUG = "acme/service"

SERVICE = """\
import asyncio
import subprocess
import time


async def poll(sensor):
    while True:
        time.sleep(1)  # blocks the loop
        await sensor.read()


async def start(job):
    asyncio.create_task(job())


async def version():
    return subprocess.run(["git", "--version"], capture_output=True)
"""


@pytest.fixture(scope="module")
def github(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeGitHub, str]]:
    if not (PRISM.exists() and SPEC.exists()):
        if os.environ.get("ASYNCFIX_REQUIRE_PRISM"):
            pytest.fail("Prism is not installed: npm ci --prefix tests/contract")
        pytest.skip("Prism is not installed (npm ci --prefix tests/contract)")
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    fake = FakeGitHub(spec)
    server, port = serve(fake)
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    process, url = start_prism(port, log)
    fake.public_url = url
    try:
        yield fake, url
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        server.shutdown()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, github: tuple[FakeGitHub, str]) -> Path:
    """A clone on ``main`` whose ``origin`` is a local bare repository."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(remote), str(clone))
    git(clone, "checkout", "--quiet", "-b", "main")
    (clone / "service.py").write_text(SERVICE, encoding="utf-8")
    (clone / "README.md").write_text("service\n", encoding="utf-8")
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "initial")
    git(clone, "push", "--quiet", "origin", "main")
    github[0].reset(SLUG, remote)
    return clone


def options(repo: Path, url: str, **changes: object) -> Options:
    base = Options(path=repo, repo=SLUG, api_url=url, token=TOKEN, throttle=False)
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def bot(repo: Path, url: str, **changes: object) -> tuple[int, str]:
    lines: list[str] = []
    status = run_bot(options(repo, url, **changes), lines.append)
    return status, "\n".join(lines)


def remote_branches(repo: Path) -> dict[str, str]:
    out = git(repo, "ls-remote", "--heads", "origin")
    return {
        line.split("\t")[1].removeprefix("refs/heads/"): line.split()[0]
        for line in out.splitlines()
    }


def commit_on_main(repo: Path, name: str, text: str) -> None:
    (repo / name).write_text(text, encoding="utf-8")
    git(repo, "add", name)
    git(repo, "commit", "--quiet", "-m", f"add {name}")
    git(repo, "push", "--quiet", "origin", "main")


# -- opening --------------------------------------------------------------------------------


def test_one_pull_request_per_family_on_its_own_branch(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, url = github
    status, out = bot(repo, url, labels=("asyncio", "bot"))
    assert status == 1, out
    branches = remote_branches(repo)
    assert set(branches) == {
        "main",
        "asyncfix/af2-blocking-calls",
        "asyncfix/af3-tasks-and-the-event-loop",
    }
    heads = {p.head: p for p in fake.pulls}
    assert set(heads) == set(branches) - {"main"}
    blocking = heads["asyncfix/af2-blocking-calls"]
    assert blocking.base == "main" and blocking.state == "open"
    assert blocking.title == "asyncfix: AF2 blocking calls (1 fix)"
    assert blocking.labels == ["asyncio", "bot"]
    assert fingerprint_of(blocking.body) is not None
    assert "| AF201 blocking-sleep | 1 | 1 | 1 |" in blocking.body
    assert "+         await asyncio.sleep(1)  # blocks the loop" in blocking.body
    assert "**Safe fix**: it changes behaviour only in the intended way" in blocking.body
    assert "Tests: not run" in blocking.body
    # what has no fix here is listed with its place: the unsafe offload, not enabled
    additional = blocking.body.split("### Additional findings", 1)[1]
    assert "`service.py:17` AF204" in additional
    # the commit: the bot's identity, rules and counts, the fingerprint trailer
    log = git(
        repo,
        "log",
        "-1",
        "--format=%an <%ae>|%cn <%ce>|%B",
        branches["asyncfix/af2-blocking-calls"],
    )
    author, committer, message = log.split("|", 2)
    assert author == committer == "asyncfix[bot] <asyncfix-bot@users.noreply.github.com>"
    assert "AF201 blocking-sleep: 1 in 1 file" in message
    assert f"Asyncfix-Fingerprint: {fingerprint_of(blocking.body)}" in message
    fixed = git(repo, "show", f"{branches['asyncfix/af2-blocking-calls']}:service.py")
    assert "await asyncio.sleep(1)" in fixed and "asyncio.create_task(job())" in fixed
    # the clone itself is untouched: still on main, clean, nothing fixed
    assert git(repo, "status", "--porcelain") == ""
    assert "time.sleep(1)" in (repo / "service.py").read_text(encoding="utf-8")


def test_group_all_and_rule_name_their_branches(repo: Path, github: tuple[FakeGitHub, str]) -> None:
    _, url = github
    assert bot(repo, url, group="rule")[0] == 1
    assert set(remote_branches(repo)) == {
        "main",
        "asyncfix/af201-blocking-sleep",
        "asyncfix/af301-dangling-task",
    }
    github[0].reset(SLUG, repo.parent / "remote.git")
    assert bot(repo, url, group="all")[0] == 1
    assert "asyncfix/all" in remote_branches(repo)


def test_dry_run_pushes_nothing_and_writes_nothing(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, url = github
    status, out = bot(repo, url, dry_run=True)
    assert status == 1
    assert set(remote_branches(repo)) == {"main"}
    assert fake.writes() == []  # only reads went to the API
    assert "asyncfix/af2-blocking-calls: would open" in out
    assert "<!-- asyncfix:fingerprint=" in out and "Asyncfix-Fingerprint:" in out


def test_max_prs_limits_the_pull_requests_open(repo: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    status, out = bot(repo, url, max_prs=1)
    assert status == 1
    assert len(fake.pulls) == 1
    assert "skipped: --max-prs 1" in out


# -- no duplicates --------------------------------------------------------------------------


def test_a_second_run_changes_nothing(repo: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    assert bot(repo, url)[0] == 1
    before, pulls = remote_branches(repo), len(fake.pulls)
    fake.requests.clear()
    status, out = bot(repo, url)
    assert status == 0, out
    assert remote_branches(repo) == before  # no push
    assert fake.writes() == [] and len(fake.pulls) == pulls
    assert out.count("unchanged") == 2


def test_new_findings_update_the_open_pull_request(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, url = github
    assert bot(repo, url)[0] == 1
    old = remote_branches(repo)["asyncfix/af2-blocking-calls"]
    commit_on_main(repo, "more.py", "import time\n\n\nasync def nap():\n    time.sleep(2)\n")
    fake.requests.clear()
    status, out = bot(repo, url)
    assert status == 1, out
    assert len(fake.pulls) == 2  # updated, not opened again
    new = remote_branches(repo)["asyncfix/af2-blocking-calls"]
    assert new != old
    assert "more.py" in git(repo, "show", "--stat", "--format=", new)
    patches = [r for r in fake.writes() if r[0] == "PATCH"]
    assert len(patches) == 1 and "(2 fixes)" in patches[0][2]["title"]
    blocking = next(p for p in fake.pulls if p.head == "asyncfix/af2-blocking-calls")
    assert "more.py" in blocking.body
    assert "updated" in out


def test_a_pull_request_closed_without_merging_is_not_reopened(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, url = github
    assert bot(repo, url)[0] == 1
    closed = next(p for p in fake.pulls if p.head == "asyncfix/af2-blocking-calls")
    closed.state = "closed"
    status, out = bot(repo, url)
    assert status == 0, out
    assert len(fake.pulls) == 2
    assert f"skipped #{closed.number}: #{closed.number} with these fixes was closed" in out
    # the same fixes on a later commit: still not offered again
    commit_on_main(repo, "notes.txt", "unrelated\n")
    assert bot(repo, url)[0] == 0 and len(fake.pulls) == 2
    # new findings: a new pull request
    commit_on_main(repo, "more.py", "import time\n\n\nasync def nap():\n    time.sleep(2)\n")
    status, out = bot(repo, url)
    assert status == 1, out
    reopened = [
        p for p in fake.pulls if p.head == "asyncfix/af2-blocking-calls" and p.state == "open"
    ]
    assert len(reopened) == 1 and reopened[0].number != closed.number


def test_a_branch_a_person_pushed_to_is_left_alone(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, url = github
    assert bot(repo, url)[0] == 1
    branch = "asyncfix/af2-blocking-calls"
    git(repo, "fetch", "--quiet", "origin", branch)
    git(repo, "checkout", "--quiet", "-b", "mine", "FETCH_HEAD")
    (repo / "service.py").write_text(
        SERVICE.replace("time.sleep(1)", "await asyncio.sleep(2)"), encoding="utf-8"
    )
    git(repo, "commit", "--quiet", "-am", "a person's own change")
    git(repo, "push", "--quiet", "origin", f"mine:{branch}")
    git(repo, "checkout", "--quiet", "main")
    pushed = remote_branches(repo)[branch]
    commit_on_main(repo, "more.py", "import time\n\n\nasync def nap():\n    time.sleep(2)\n")
    fake.requests.clear()
    status, out = bot(repo, url)
    assert remote_branches(repo)[branch] == pushed  # not overwritten
    assert f"{branch}: left alone: someone else pushed to it" in out
    assert fake.writes() == []  # its pull request is not touched either
    blocking = next(p for p in fake.pulls if p.head == branch)
    assert "more.py" not in blocking.body
    assert status == 0


# -- refusals and errors --------------------------------------------------------------------


def test_a_dirty_work_tree_is_refused(repo: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    (repo / "service.py").write_text(SERVICE + "# edited\n", encoding="utf-8")
    status, out = bot(repo, url)
    assert status == 2
    assert "not committed (service.py)" in out
    assert fake.requests == [] and set(remote_branches(repo)) == {"main"}


def test_the_contract_rejects_an_invalid_request(
    github: tuple[FakeGitHub, str], tmp_path: Path
) -> None:
    """Prism answers a request GitHub would refuse with 422: the bot's error says so."""
    fake, url = github
    fake.reset(SLUG, tmp_path)
    client = GitHub(SLUG, TOKEN, url, throttle=False)
    with pytest.raises(GitHubError, match="HTTP 422"):
        client._call("listing", lambda: client._repository().get_pulls(state="sideways")[0])
    assert TOKEN not in str(fake.requests)


def test_the_cli_exit_codes_and_the_token_is_never_stored(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    _, url = github
    runner = cli_runner()
    env = {"GITHUB_TOKEN": TOKEN}
    args = ["bot", str(repo), "--repo", SLUG, "--api-url", url, "--max-prs", "1"]
    first = runner.invoke(main, args, env=env)
    assert first.exit_code == 1, first.output
    again = runner.invoke(main, args, env=env)
    assert again.exit_code == 0, again.output
    assert TOKEN not in first.output + again.output
    for folder in (repo / ".git", repo.parent / "remote.git"):
        for file in folder.rglob("*"):
            if file.is_file() and file.stat().st_size < 1_000_000:
                assert TOKEN.encode() not in file.read_bytes(), file
    no_token = runner.invoke(main, args, env={"GITHUB_TOKEN": "", "GH_TOKEN": ""})
    assert no_token.exit_code == 2 and "GITHUB_TOKEN is not set" in no_token.output
    bad = runner.invoke(main, ["bot", str(repo), "--repo", "not-a-slug"], env=env)
    assert bad.exit_code == 2 and "expected OWNER/NAME" in bad.output


def test_validation_goes_into_the_body(repo: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    status, _ = bot(repo, url, validate="python -c pass", select=("AF201",))
    assert status == 1
    (pull,) = fake.pulls
    assert "- Tests: `python -c pass`: before the fixes passed" in pull.body


# -- pieces ---------------------------------------------------------------------------------


def test_repo_slug_from_remote_urls() -> None:
    assert repo_slug("https://github.com/acme/service.git") == "acme/service"
    assert repo_slug("git@github.com:acme/service.git") == "acme/service"
    assert repo_slug("https://github.com/acme/ser.vice") == "acme/ser.vice"
    assert repo_slug("/srv/git/service.git") is None


def test_groups_by_family_keep_their_report_only_codes() -> None:
    groups = groups_for(["AF201", "AF301"], ["AF201", "AF202", "AF301", "AF402"], "family")
    assert [(g.key, g.codes) for g in groups] == [
        ("af2-blocking-calls", ("AF201", "AF202")),
        ("af3-tasks-and-the-event-loop", ("AF301",)),
    ]


def _big_run(n: int) -> RunResult:
    files = []
    for i in range(n):
        finding = Finding(
            "AF201",
            "blocking-sleep",
            "`time.sleep()` blocks the event loop",
            Severity.HIGH,
            Span(3, 4, 3, 17),
            fix_safety=Safety.SAFE,
            fix_changes=["Replaced `time.sleep` with `await asyncio.sleep`"],
            fix_preview=["-     time.sleep(1)" + " " * 200, "+     await asyncio.sleep(1)"],
            fixed=True,
            fix_id=f"f{i}",
        )
        files.append(FileResult(f"/x/m{i}.py", f"pkg/m{i}.py", [finding], written=True))
    return RunResult(files, "write", False)


def test_the_body_stays_under_githubs_limit() -> None:
    group = Group("af2-blocking-calls", "AF2 blocking calls", ("AF201",))
    body = render_body(group, _big_run(2000), "0" * 24, "1.0")
    assert len(body) < 65_536
    assert "more fixes are not shown here" in body
    assert body.count("#### `pkg/m") < 2000
    small = render_body(group, _big_run(3), "0" * 24, "1.0")
    assert "not shown" not in small and small.count("#### `pkg/m") == 3


def test_a_fence_is_longer_than_the_backticks_it_holds() -> None:
    run = _big_run(1)
    run.files[0].findings[0].fix_preview = ["- x = '```'", "+ x = '````'"]
    body = render_body(Group("g", "G", ("AF201",)), run, "0" * 24, "1.0")
    assert "`````diff" in body


def test_identity_is_configurable(repo: Path, github: tuple[FakeGitHub, str]) -> None:
    _, url = github
    me = Identity("Fixer", "fixer@example.com")
    assert bot(repo, url, identity=me, select=("AF201",))[0] == 1
    sha = remote_branches(repo)["asyncfix/af2-blocking-calls"]
    assert git(repo, "log", "-1", "--format=%an <%ae>", sha).strip() == "Fixer <fixer@example.com>"


def test_the_token_reaches_git_only_through_the_askpass_environment(tmp_path: Path) -> None:
    from asyncfix.bot.git import Git

    helper_git = Git(tmp_path, token=TOKEN)
    helper = Path(helper_git._askpass())
    assert TOKEN not in helper.read_text(encoding="utf-8")
    env = {**os.environ, "ASYNCFIX_BOT_TOKEN": TOKEN}
    ask = [str(helper)]
    user = subprocess.run(
        [*ask, "Username for 'https://github.com': "], env=env, capture_output=True, text=True
    )
    password = subprocess.run(
        [*ask, "Password for 'https://x@github.com': "], env=env, capture_output=True, text=True
    )
    assert (user.stdout, password.stdout) == ("x-access-token\n", f"{TOKEN}\n")
    helper_git.close()
    assert not helper.exists()
    # an error message from git never shows it
    assert helper_git._scrub(f"fatal: https://x:{TOKEN}@host") == "fatal: https://x:***@host"


def test_unsafe_fixes_ask_for_a_careful_read(repo: Path, github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    assert bot(repo, url, unsafe_fixes=True, select=("AF204",))[0] == 1
    (pull,) = fake.pulls
    assert "**Unsafe fix**: read it carefully; the call now runs in a worker thread" in pull.body
    assert "--unsafe-fixes" in pull.body  # how to see the same fixes locally


def test_no_code_of_the_repository_runs(repo: Path, github: tuple[FakeGitHub, str]) -> None:
    _, url = github
    marker = repo.parent / "ran"
    planted = f"open({str(marker)!r}, 'w').close()\n"
    for name in ("conftest.py", "setup.py", "sitecustomize.py"):
        (repo / name).write_text(planted, encoding="utf-8")
    (repo / "pyproject.toml").write_text(
        f'[tool.asyncfix]\nvalidate = "touch {marker}"\n', encoding="utf-8"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "plant")
    assert bot(repo, url)[0] == 1
    assert not marker.exists()


def test_validation_runs_on_the_fixed_tree_and_leaves_out_what_breaks(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    """A "test suite" that fails once the sleep is fixed: the fix is left out, so no pull
    request; run anywhere but the scratch tree, it would pass and one would be opened."""
    fake, url = github
    command = "! grep -q 'await asyncio.sleep' service.py"
    status, out = bot(repo, url, validate=command, select=("AF201",))
    assert status == 0, out
    assert fake.pulls == [] and set(remote_branches(repo)) == {"main"}


def test_dry_run_without_a_token_consults_no_api(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, url = github
    status, out = bot(repo, url, dry_run=True, token=None)
    assert status == 1
    assert fake.requests == [] and set(remote_branches(repo)) == {"main"}
    assert "asyncfix/af2-blocking-calls: would open" in out


def test_a_branch_that_fails_does_not_stop_the_others(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, url = github
    fake.refused.add("asyncfix/af2-blocking-calls")
    status, out = bot(repo, url)
    assert status == 2
    assert "asyncfix/af2-blocking-calls: failed: opening a pull request" in out
    assert [p.head for p in fake.pulls] == ["asyncfix/af3-tasks-and-the-event-loop"]


def test_a_shallow_clone_knows_its_own_branches(repo: Path, github: tuple[FakeGitHub, str]) -> None:
    """As actions/checkout makes it (depth 1): the bot's branch is still the bot's."""
    _, url = github
    assert bot(repo, url)[0] == 1
    commit_on_main(repo, "notes.txt", "unrelated\n")
    shallow = repo.parent / "shallow"
    git(
        repo.parent,
        "clone",
        "--quiet",
        "--depth",
        "1",
        f"file://{repo.parent / 'remote.git'}",
        str(shallow),
    )
    status, out = bot(shallow, url)
    assert status == 0, out
    assert "left alone" not in out and out.count("unchanged") == 2


def test_a_file_that_does_not_parse_is_named_and_the_rest_fixed(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    fake, url = github
    commit_on_main(repo, "broken.py", "def oops(:\n")
    status, out = bot(repo, url, select=("AF201",))
    assert status == 1, out
    assert "warning: broken.py: syntax error" in out
    assert [p.head for p in fake.pulls] == ["asyncfix/af2-blocking-calls"]


def test_a_push_never_overwrites_what_it_did_not_see(
    repo: Path, github: tuple[FakeGitHub, str]
) -> None:
    """Someone pushes between the bot's look at the branch and its push: the push fails."""
    from asyncfix.bot.git import Git, GitError

    remote = str(repo.parent / "remote.git")
    git(repo, "push", "--quiet", "origin", "main:asyncfix/af2-blocking-calls")
    seen = remote_branches(repo)["asyncfix/af2-blocking-calls"]
    commit_on_main(repo, "person.txt", "a person's push\n")
    git(repo, "push", "--quiet", "--force", "origin", "main:asyncfix/af2-blocking-calls")
    with pytest.raises(GitError, match="push failed"):
        Git(repo).push(remote, seen, "asyncfix/af2-blocking-calls", replaces=seen)
    assert remote_branches(repo)["asyncfix/af2-blocking-calls"] != seen
