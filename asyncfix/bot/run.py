"""The bot's steps, from a clean clone to pull requests (see ``asyncfix.bot``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asyncfix import __version__
from asyncfix.bot.git import Git, GitError, Identity, repo_slug
from asyncfix.bot.github import GitHub, GitHubError, PullInfo
from asyncfix.codemods import RULES
from asyncfix.config import Config, ConfigError, apply_requires_python, config_in, load
from asyncfix.engine import all_codes, run
from asyncfix.model import RunResult
from asyncfix.report.markdown import Group, fingerprint_of, render_body

EXIT_NOTHING, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2
BRANCH_PREFIX = "asyncfix/"
TRAILER = "Asyncfix-Fingerprint"
FAMILIES = {
    "AF1": "missing awaits",
    "AF2": "blocking calls",
    "AF3": "tasks and the event loop",
    "AF4": "races and locks",
    "AF5": "async resources",
}


class BotError(Exception):
    """Why the bot stopped: said once, exit status 2."""


@dataclass
class Options:
    path: Path
    repo: str | None = None
    api_url: str = "https://api.github.com"
    push_url: str | None = None
    base: str | None = None
    group: str = "family"  # all | rule | family
    #: None: as the project's configuration says (``unsafe-fixes``)
    unsafe_fixes: bool | None = None
    validate: str | None = None
    validate_timeout: float = 600.0
    labels: tuple[str, ...] = ()
    max_prs: int = 5
    dry_run: bool = False
    identity: Identity = field(
        default_factory=lambda: Identity("asyncfix[bot]", "asyncfix-bot@users.noreply.github.com")
    )
    token: str | None = None
    #: space API calls as GitHub asks integrations to (off for a local test double)
    throttle: bool = True
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()


@dataclass
class Planned:
    """One group's fixes, committed in the scratch repository and not yet pushed."""

    group: Group
    branch: str
    commit: str
    message: str
    title: str
    body: str
    fingerprint: str


@dataclass
class Outcome:
    """What the bot did (or, with --dry-run, would do) for one branch."""

    branch: str
    action: str  # opened | updated | unchanged | skipped | left alone | would ...
    detail: str
    pull: int | None = None

    @property
    def changed(self) -> bool:
        return self.action in ("opened", "updated", "would open", "would update")


def run_bot(
    options: Options, say: Callable[[str], None], show: Callable[[str], None] | None = None
) -> int:
    """Do it; ``say`` prints progress and errors, ``show`` what was done. The exit status:
    0 nothing to do, 1 a pull request opened or updated (with --dry-run: would be), 2 an
    error."""
    try:
        outcomes = _run(options, say)
    except (BotError, GitError, GitHubError, ConfigError) as exc:
        say(f"error: {exc}")
        return EXIT_ERROR
    for outcome in outcomes:
        number = f" #{outcome.pull}" if outcome.pull is not None else ""
        (show or say)(f"{outcome.branch}: {outcome.action}{number}: {outcome.detail}")
    if not outcomes:
        (show or say)("nothing to fix: no pull request needed")
    if any(o.action == "failed" for o in outcomes):
        return EXIT_ERROR
    return EXIT_CHANGED if any(o.changed for o in outcomes) else EXIT_NOTHING


def _run(options: Options, say: Callable[[str], None]) -> list[Outcome]:
    git = Git(options.path, token=options.token)
    try:
        root = git.toplevel()
        git = Git(root, token=options.token)
        dirty = git.dirty()
        if dirty:
            shown = ", ".join(dirty[:5]) + (" ..." if len(dirty) > 5 else "")
            raise BotError(
                f"the work tree has changes that are not committed ({shown}); the bot runs "
                "on a clean clone"
            )
        origin = git.remote_url("origin")
        slug = options.repo or (repo_slug(origin) if origin else None)
        if slug is None:
            raise BotError("no --repo OWNER/NAME given, and no GitHub `origin` remote to read it")
        push_url = options.push_url or origin
        if push_url is None and not options.dry_run:
            raise BotError("no --push-url given and no `origin` remote to push to")
        api: GitHub | None = None
        if not options.dry_run or options.token:
            if not options.token:
                raise BotError("GITHUB_TOKEN is not set (the bot needs it to open pull requests)")
            api = GitHub(slug, options.token, options.api_url, throttle=options.throttle)
        try:
            base = options.base or (api.default_branch() if api else git.current_branch())
            if base is None:
                raise BotError("no --base given and HEAD is not on a branch")
            head = git.head()
            local = git.current_branch()
            if local != base:
                say(f"note: HEAD is {local or 'detached'}, not {base}; fixing what HEAD holds")
            planned = _plan(git, head, options, say)
            return _deliver(git, api, planned, base, push_url, options)
        finally:
            if api is not None:
                api.close()
    finally:
        git.close()


# -- the fixes ------------------------------------------------------------------------------


def groups_for(fixable: Sequence[str], found: Sequence[str], how: str) -> list[Group]:
    """The pull requests the ``fixable`` codes make, in code order; each also reports the
    ``found`` codes of its scope that have no fix (its ADDITIONAL FINDINGS)."""
    fixable = sorted(set(fixable))
    if not fixable:
        return []
    if how == "all":
        return [Group("all", "fixes for asyncio bugs", tuple(sorted({*fixable, *found})))]
    if how == "rule":
        names = {rule.code: rule.name for rule in RULES}
        return [Group(f"{c.lower()}-{names[c]}", f"{c} {names[c]}", (c,)) for c in fixable]
    groups = []
    for family in sorted({code[:3] for code in fixable}):
        name = FAMILIES.get(family, "fixes")
        members = sorted({c for c in (*fixable, *found) if c.startswith(family)})
        groups.append(
            Group(f"{family.lower()}-{name.replace(' ', '-')}", f"{family} {name}", tuple(members))
        )
    return groups


def _config(tree: Path) -> Config:
    """The configuration at the top of the work tree (``.asyncfix.toml``, ``asyncfix.toml``
    or ``pyproject.toml``; searched no higher)."""
    found = config_in(tree)
    config = load(found, all_codes())
    if found is None:
        config.root = tree
    apply_requires_python(config, tree)
    return config


def _fix(tree: Path, options: Options, codes: Sequence[str], mode: str) -> RunResult:
    config = _config(tree)
    if codes:  # this pull request's rules, of those the configuration and options enable
        config.only = tuple(codes)
    return run(
        [tree],
        config,
        mode,
        select=list(options.select) or None,
        ignore=list(options.ignore) or None,
        unsafe_fixes=options.unsafe_fixes,
        fix_for_report=True,
        use_cache=False,
        validate=options.validate if mode == "write" else None,
        validate_timeout=options.validate_timeout,
        cwd=tree,  # paths as in the repository; the tests run on this tree, not the clone
    )


def _plan(git: Git, head: str, options: Options, say: Callable[[str], None]) -> list[Planned]:
    with git.worktree(head) as tree:
        survey = _fix(tree, options, (), "diff")
    _raise_on_errors(survey)
    unreadable = [r for r in survey.files if r.error or r.internal_error]
    for bad in unreadable[:10]:
        say(f"warning: {bad.display}: {bad.error or bad.internal_error} (skipped)")
    if len(unreadable) > 10:
        say(f"warning: {len(unreadable) - 10} more files could not be checked (skipped)")
    fixable = [f.code for _, f in survey.findings if f.fixed]
    found = [f.code for _, f in survey.findings]
    planned = []
    for group in groups_for(fixable, found, options.group):
        branch = BRANCH_PREFIX + group.key
        with git.worktree(head) as tree:
            say(f"{branch}: fixing {', '.join(group.codes)}")
            result = _fix(tree, options, group.codes, "write")
            _raise_on_errors(result)
            written = [r for r in result.files if r.written]
            if not written:
                continue
            fingerprint = _fingerprint(result, tree)
            message = _message(group, result, fingerprint)
            title = f"asyncfix: {group.title} ({_fixes(_fixed_count(result))})"
            body = render_body(group, result, fingerprint, __version__)
            paths = [str(Path(r.path).resolve().relative_to(tree.resolve())) for r in written]
            commit = git.commit_files(tree, paths, message, options.identity)
            if commit is None:
                continue
        planned.append(Planned(group, branch, commit, message, title, body, fingerprint))
    return planned


def _raise_on_errors(result: RunResult) -> None:
    if result.errors:
        raise BotError("; ".join(result.errors))


def _fixed_count(result: RunResult) -> int:
    return sum(1 for r, f in result.findings if f.fixed and r.written)


def _fixes(n: int) -> str:
    return f"{n} fix" if n == 1 else f"{n} fixes"


def _fingerprint(result: RunResult, tree: Path) -> str:
    """The same fixes (file, rule, fix) give the same fingerprint on any later commit."""
    root = tree.resolve()
    items = sorted(
        f"{Path(r.path).resolve().relative_to(root).as_posix()}\0{f.code}\0{f.fix_id}"
        for r, f in result.findings
        if f.fixed and r.written
    )
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:24]


def _message(group: Group, result: RunResult, fingerprint: str) -> str:
    fixed = [(r, f) for r, f in result.findings if f.fixed and r.written]
    lines = [f"asyncfix: fix {group.title} ({_fixes(len(fixed))})", ""]
    for code in sorted({f.code for _, f in fixed}):
        mine = [(r, f) for r, f in fixed if f.code == code]
        files = len({r.path for r, _ in mine})
        name = next(rule.name for rule in RULES if rule.code == code)
        lines.append(f"- {code} {name}: {len(mine)} in {files} file{'s' if files != 1 else ''}")
    return "\n".join([*lines, "", f"{TRAILER}: {fingerprint}", ""])


# -- the pull requests ----------------------------------------------------------------------


def _deliver(
    git: Git,
    api: GitHub | None,
    planned: list[Planned],
    base: str,
    push_url: str | None,
    options: Options,
) -> list[Outcome]:
    pulls = {p.branch: (api.pulls(p.branch) if api else []) for p in planned}
    open_count = sum(1 for found in pulls.values() if any(pr.state == "open" for pr in found))
    outcomes: list[Outcome] = []
    step = _Step(git, api, base, push_url, options)
    for plan in planned:
        try:
            outcome = step.deliver(plan, pulls[plan.branch], open_count)
        except (GitError, GitHubError) as exc:  # that branch fails; the others go on
            outcome = Outcome(plan.branch, "failed", str(exc))
        if outcome.action in ("opened", "would open"):
            open_count += 1
        outcomes.append(outcome)
    return outcomes


@dataclass
class _Step:
    git: Git
    api: GitHub | None
    base: str
    push_url: str | None
    options: Options

    def deliver(self, plan: Planned, found: list[PullInfo], open_count: int) -> Outcome:
        """Open, update or leave the pull request of one branch."""
        git, options = self.git, self.options
        tip = git.fetch_branch(self.push_url, plan.branch) if self.push_url else None
        if tip is not None and _someone_pushed(git, tip, options.identity):
            return Outcome(
                plan.branch,
                "left alone",
                f"someone else pushed to it ({tip[:12]}); delete the branch to let the bot use "
                "it again",
            )
        # the same fixes (on this base or an older one): no push, nothing to update
        same = tip is not None and (
            git.fingerprint(tip) == plan.fingerprint or git.tree(tip) == git.tree(plan.commit)
        )
        current = next((pr for pr in found if pr.state == "open"), None)
        if current is not None:
            if same and fingerprint_of(current.body) == plan.fingerprint:
                return Outcome(plan.branch, "unchanged", "already up to date", current.number)
            if options.dry_run:
                return _would(plan, "would update", same, current.number)
            if not same:
                self._push(plan, tip)
            self._api().update_pull(current.number, plan.title, plan.body)
            what = "updated the description" if same else "pushed the new fixes and updated it"
            return Outcome(plan.branch, "updated", what, current.number)
        for pr in found:
            if (
                pr.state == "closed"
                and not pr.merged
                and fingerprint_of(pr.body) == plan.fingerprint
            ):
                detail = f"#{pr.number} with these fixes was closed without merging"
                return Outcome(plan.branch, "skipped", detail, pr.number)
        if open_count >= options.max_prs:
            detail = f"--max-prs {options.max_prs} pull requests are open"
            return Outcome(plan.branch, "skipped", detail)
        if options.dry_run:
            return _would(plan, "would open", same, None)
        if not same:
            self._push(plan, tip)
        api = self._api()
        pull = api.open_pull(plan.branch, self.base, plan.title, plan.body)
        api.add_labels(pull.number, options.labels)
        return Outcome(plan.branch, "opened", pull.url or plan.title, pull.number)

    def _push(self, plan: Planned, tip: str | None) -> None:
        assert self.push_url is not None
        self.git.push(self.push_url, plan.commit, plan.branch, replaces=tip)

    def _api(self) -> GitHub:
        assert self.api is not None
        return self.api


def _would(plan: Planned, action: str, same_content: bool, number: int | None) -> Outcome:
    push = "no push (the branch holds these fixes)" if same_content else f"push {plan.commit[:12]}"
    detail = "\n".join(
        [
            f"{push}; title: {plan.title}",
            "--- commit message ---",
            plan.message.rstrip(),
            "--- pull request body ---",
            plan.body.rstrip(),
            "---",
        ]
    )
    return Outcome(plan.branch, action, detail, number)


def _someone_pushed(git: Git, tip: str, identity: Identity) -> bool:
    """The branch's last commit is not the bot's (by its committer and its trailer). The bot
    only ever pushes its own commit on the base, so anything else on top is a person's (or
    GitHub's "update branch"). Only the tip is read: a shallow clone has no more."""
    email, message = git.commit_info(tip)
    return email != identity.email or f"\n{TRAILER}: " not in f"\n{message}"


__all__ = ["EXIT_CHANGED", "EXIT_ERROR", "EXIT_NOTHING", "Options", "PullInfo", "run_bot"]
