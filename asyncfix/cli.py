"""The command line: parse options, call the engine, print a renderer's output."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from pathlib import Path

import click

from asyncfix import __version__
from asyncfix.config import (
    ConfigError,
    apply_requires_python,
    check_selectors,
    find_pyproject,
    load,
)
from asyncfix.engine import all_codes, run
from asyncfix.model import RunResult
from asyncfix.report import diff as diff_renderer
from asyncfix.report import json as json_renderer
from asyncfix.report.ruledoc import rule_doc
from asyncfix.report.text import (
    Style,
    render_concise,
    render_errors,
    render_report,
    render_validation,
    statistics,
    summary,
)

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _DefaultToCheck(click.Group):
    """``asyncfix PATH...`` means ``asyncfix check PATH...``; ``rules``/``rule`` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (
            args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")
        ):
            args = ["check", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="asyncfix")
def main() -> None:
    """Find and fix asyncio bugs: missing awaits, blocking calls, dangling tasks, lock misuse.

    `asyncfix PATH...` is short for `asyncfix check PATH...`; its options (--diff, --write,
    --output-format, ...) are listed by `asyncfix check --help`.
    """


def _split(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _selectors(
    select: tuple[str, ...], ignore: tuple[str, ...]
) -> tuple[list[str] | None, list[str] | None]:
    """``--select`` and ``--ignore`` as lists of known codes or prefixes (None: not given)."""
    selected = _split(select) or None
    ignored = _split(ignore) or None
    try:
        for option, values in (("--select", selected), ("--ignore", ignored)):
            if values:
                check_selectors(values, all_codes(), option)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    return selected, ignored


def _style(ascii_: bool, no_color: bool) -> Style:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "━🐛✅💡🧪📋·—".encode(encoding)
        can_encode = True
    except (UnicodeEncodeError, LookupError):
        can_encode = False
    color = not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    return Style(ascii=ascii_ or not can_encode, color=color)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--diff", "diff_mode", is_flag=True, help="Print a unified diff of the fixes; write nothing."
)
@click.option("--write", "write_mode", is_flag=True, help="Apply the fixes in place.")
@click.option(
    "--unsafe-fixes/--no-unsafe-fixes",
    default=None,
    help="Also apply fixes that change concurrency or threading behaviour.",
)
@click.option(
    "--output-format",
    type=click.Choice(["concise", "report", "json"]),
    default="concise",
    show_default=True,
    help="How findings are printed.",
)
@click.option(
    "--select", multiple=True, metavar="CODES", help="Only these codes or prefixes (AF2,AF301)."
)
@click.option("--ignore", multiple=True, metavar="CODES", help="Skip these codes or prefixes.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Use this pyproject.toml instead of the nearest one.",
)
@click.option(
    "--target-version",
    type=click.Choice([f"py3{m}" for m in range(8, 15)]),
    help="Oldest Python the fixed code must run on (default: from the project's "
    "requires-python, else py310).",
)
@click.option(
    "--force-exclude", is_flag=True, help="Apply excludes to files named on the command line too."
)
@click.option(
    "--ascii", "ascii_", is_flag=True, help="Plain ASCII output (no box characters or emoji)."
)
@click.option("--no-color", is_flag=True, help="No colour, even on a terminal.")
@click.option(
    "-q", "--quiet", is_flag=True, help="Print findings only: no summary, no fix listing."
)
@click.option(
    "--jobs", type=click.IntRange(min=1), help="Worker processes (default: one per core)."
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Analyse every file again; do not read or write the results cache.",
)
@click.option(
    "--validate",
    "validate",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="CMD",
    help="With --write: run CMD (the project's tests) before and after the fixes and revert "
    "the fixes that break something. Alone: the `validate` command of the configuration.",
)
@click.option(
    "--validate-timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="The longest CMD may run before the fixes (after them: 3 times what it took, at "
    "least 60 s); its process group is killed then.",
)
def check(
    paths: tuple[Path, ...],
    diff_mode: bool,
    write_mode: bool,
    unsafe_fixes: bool | None,
    output_format: str,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    config_path: Path | None,
    target_version: str | None,
    force_exclude: bool,
    ascii_: bool,
    no_color: bool,
    quiet: bool,
    jobs: int | None,
    no_cache: bool,
    validate: str | None,
    validate_timeout: float,
) -> None:
    """Check PATHS (files or directories; default: the current directory).

    Exit status: 0 clean; 1 findings (check), changes (--diff) or findings left unfixed
    (--write); 2 usage, configuration or per-file errors.
    """
    if diff_mode and write_mode:
        raise click.UsageError("--diff and --write cannot be used together")
    if not paths:
        paths = (Path("."),)
    selected, ignored = _selectors(select, ignore)
    try:
        pyproject = config_path if config_path is not None else find_pyproject(paths[0])
        config = load(pyproject, all_codes())
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    if target_version:
        config.target_version = target_version
        config.target_source = "--target-version"
    else:
        try:
            apply_requires_python(config, config.path or paths[0])
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
    command = _validation_command(validate, config.validate, write_mode)
    mode = "diff" if diff_mode else "write" if write_mode else "check"
    started = time.perf_counter()
    bar = _ProgressBar() if _wants_progress(quiet) else None
    result = run(
        list(paths),
        config,
        mode,
        select=selected,
        ignore=ignored,
        unsafe_fixes=unsafe_fixes,
        fix_for_report=output_format == "report",
        force_exclude=force_exclude,
        jobs=jobs,
        use_cache=not no_cache,
        progress=bar,
        validate=command,
        validate_timeout=validate_timeout,
    )
    if bar is not None:
        bar.close()
    style = _style(ascii_, no_color)
    _print(result, output_format, style, quiet)
    if not quiet and output_format != "json":
        click.echo(statistics(result, time.perf_counter() - started), err=True)
    sys.exit(_exit_code(result))


def _validation_command(given: str | None, configured: str | None, write: bool) -> str | None:
    """The command ``--validate`` runs: its own, else the configuration's. Only what is on
    the command line makes asyncfix run anything."""
    if given is None:
        return None
    if not write:
        raise click.UsageError("--validate needs --write (it runs the tests on written fixes)")
    if given == "":
        if configured is None:
            raise click.UsageError(
                '--validate without a command needs `validate = "CMD"` in [tool.asyncfix]'
            )
        return configured
    if not any(c.isspace() for c in given) and Path(given).exists():
        raise click.UsageError(
            f"--validate took {given!r} as the command to run; give the command as "
            f'--validate="CMD", or put the paths first'
        )
    return given


def _wants_progress(quiet: bool) -> bool:
    """A progress bar only for a person watching: stderr is a terminal, not in CI."""
    return not quiet and sys.stderr.isatty() and not os.environ.get("CI")


class _ProgressBar:
    """``[#######-----]  3120/8805 files`` on one stderr line, redrawn at most 10 times a
    second, shown only once a run has lasted half a second, and wiped at the end."""

    WIDTH = 30

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.drawn_at = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.started < 0.5 or (now - self.drawn_at < 0.1 and done < total):
            return
        self.drawn_at = now
        filled = self.WIDTH * done // max(total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        sys.stderr.write(f"\r[{bar}] {done}/{total} files")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _print(result: RunResult, output_format: str, style: Style, quiet: bool) -> None:
    for line in render_errors(result):
        click.echo(line, err=True)
    if output_format == "json":
        click.echo(json_renderer.render(result), nl=False)
        if result.mode == "diff":
            click.echo(diff_renderer.render(result), nl=False, err=True)
        return
    if result.mode == "diff":
        click.echo(diff_renderer.render(result), nl=False)
        if not quiet:
            click.echo(summary(result), err=True)
        return
    if output_format == "report":
        lines = render_report(result, style)
    else:
        lines = render_concise(result, style, quiet)
    for line in lines:
        click.echo(line, color=style.color)
    if result.validation is not None:
        for line in render_validation(result.validation, style):
            click.echo(line, color=style.color)
    if not quiet:
        click.echo(summary(result))


def _exit_code(result: RunResult) -> int:
    if result.has_errors():
        return EXIT_ERROR
    if result.mode == "diff":
        changed = any(r.changed and not r.internal_error for r in result.files)
        return EXIT_FINDINGS if changed else EXIT_CLEAN
    if result.mode == "write":
        left = any((r.remaining if r.written else r.findings) for r in result.files)
        return EXIT_FINDINGS if left else EXIT_CLEAN
    return EXIT_FINDINGS if result.findings else EXIT_CLEAN


@main.command("rules")
def rules_command() -> None:
    """List every rule: code, name, fix safety, summary."""
    from asyncfix.codemods import RULES

    width = max(len(rule.name) for rule in RULES)
    for rule in RULES:
        click.echo(f"{rule.code}  {rule.name:<{width}}  {rule.fix_safety.value:<6}  {rule.summary}")


@main.command("rule", short_help="Print the documentation of one rule.")
@click.argument("code")
def rule_command(code: str) -> None:
    """Print the documentation of one rule (e.g. `asyncfix rule AF201`)."""
    code = code.upper()
    if code not in all_codes():
        raise click.UsageError(f"unknown rule code {code!r} (see `asyncfix rules`)")
    click.echo(rule_doc(code))


def entry() -> None:
    """The program (console script and ``python -m asyncfix``): ``main``, then an exit that
    skips the interpreter's teardown -- freeing the project index and the caches object by
    object takes a tenth of a second after an edit, for nothing. Output is flushed first;
    an error other than an exit (a bug) ends as usual, with its traceback."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or a coverage tool writes its data at the exit
    for stream in (sys.stdout, sys.stderr):
        # the reader may have gone away (`asyncfix . | head`): nothing left to say to it
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)


_AUTHOR = re.compile(r"^\s*(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>\s*$")


@main.command("bot", short_help="Open or update pull requests with the fixes.")
@click.argument(
    "path",
    required=False,
    default=".",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
)
@click.option("--repo", metavar="OWNER/NAME", help="The GitHub repository (default: origin's).")
@click.option(
    "--api-url",
    default="https://api.github.com",
    show_default=True,
    metavar="URL",
    help="GitHub's REST API (GitHub Enterprise: https://HOST/api/v3).",
)
@click.option("--push-url", metavar="URL", help="Where branches are pushed (default: origin).")
@click.option(
    "--base", metavar="BRANCH", help="The pull requests' base (default: the default branch)."
)
@click.option(
    "--group",
    type=click.Choice(["all", "rule", "family"]),
    default="family",
    show_default=True,
    help="One pull request for everything, per rule code, or per family (AF2, ...).",
)
@click.option(
    "--unsafe-fixes",
    is_flag=True,
    help="Also make the unsafe fixes (default: as the project's configuration says).",
)
@click.option(
    "--validate",
    metavar="CMD",
    help="Run CMD (the project's tests) before and after the fixes; leave out those that "
    "break it. Without it, no code of the repository runs.",
)
@click.option("--validate-timeout", type=click.FloatRange(min=1), default=600.0, show_default=True)
@click.option("--labels", multiple=True, metavar="LABELS", help="Labels for new pull requests.")
@click.option(
    "--max-prs",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Open at most this many asyncfix pull requests.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the branches, commits and pull request bodies; push and change nothing.",
)
@click.option(
    "--author",
    default="asyncfix[bot] <asyncfix-bot@users.noreply.github.com>",
    show_default=True,
    metavar="NAME <EMAIL>",
    help="Author and committer of the bot's commits.",
)
@click.option(
    "--select", multiple=True, metavar="CODES", help="Only these codes or prefixes (AF2,AF301)."
)
@click.option("--ignore", multiple=True, metavar="CODES", help="Skip these codes or prefixes.")
def bot_command(
    path: Path,
    repo: str | None,
    api_url: str,
    push_url: str | None,
    base: str | None,
    group: str,
    unsafe_fixes: bool,
    validate: str | None,
    validate_timeout: float,
    labels: tuple[str, ...],
    max_prs: int,
    dry_run: bool,
    author: str,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
) -> None:
    """Fix the repository at PATH (a clean clone) on branches asyncfix/<group> and open a
    pull request for each, or update the open one. GITHUB_TOKEN gives access; it is never
    printed or stored.

    Exit status: 0 nothing to do; 1 a pull request was opened or updated (--dry-run: would
    be); 2 error.
    """
    from asyncfix.bot.git import Identity
    from asyncfix.bot.run import Options, run_bot

    if repo is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise click.UsageError(f"--repo {repo!r}: expected OWNER/NAME")
    match = _AUTHOR.match(author)
    if match is None:
        raise click.UsageError(f"--author {author!r}: expected 'Name <email>'")
    selected, ignored = _selectors(select, ignore)
    if validate is not None and not validate.strip():
        raise click.UsageError("--validate needs a command")
    options = Options(
        path=path,
        repo=repo,
        api_url=api_url,
        push_url=push_url,
        base=base,
        group=group,
        unsafe_fixes=unsafe_fixes or None,
        validate=validate,
        validate_timeout=validate_timeout,
        labels=tuple(_split(labels)),
        max_prs=max_prs,
        dry_run=dry_run,
        identity=Identity(match["name"], match["email"]),
        token=os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None,
        select=tuple(selected or ()),
        ignore=tuple(ignored or ()),
    )
    sys.exit(run_bot(options, lambda line: click.echo(line, err=True), click.echo))


if __name__ == "__main__":  # pragma: no cover
    entry()
