"""The command line: parse options, call the engine, print a renderer's output."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import click

from asyncfix import __version__
from asyncfix.cache import write_atomically
from asyncfix.config import (
    Config,
    ConfigError,
    Selection,
    apply_requires_python,
    check_selectors,
    find_config,
    load,
)
from asyncfix.engine import all_codes, run, run_stdin
from asyncfix.files import BOM, relative
from asyncfix.model import Finding, Observed, RunResult
from asyncfix.report import diff as diff_renderer
from asyncfix.report import json as json_renderer
from asyncfix.report.ruledoc import rule_doc
from asyncfix.report.text import (
    Style,
    as_ascii,
    concise_line,
    render_concise,
    render_errors,
    render_full,
    render_report,
    render_validation,
    summary,
)
from asyncfix.report.text import statistics as statistics_line

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


OUTPUT_FORMATS = (
    "concise",
    "full",
    "report",
    "json",
    "json-lines",
    "sarif",
    "github",
    "gitlab",
    "markdown",
)
#: formats read by programs: stdout holds the rendering alone (the closing lines go to
#: stderr or nowhere)
MACHINE_FORMATS = frozenset({"json", "json-lines", "sarif", "github", "gitlab"})
#: formats that show each finding's own fix (its preview, its edits): working each fix out
#: alone costs a LibCST pass per finding, so the JSON formats, read by programs that may
#: only want the findings, leave it out
PREVIEW_FORMATS = frozenset({"report", "sarif", "markdown"})


def _color(choice: str, to_file: bool) -> bool:
    """``--color``: ``always``/``never``; ``auto`` colours a terminal unless ``NO_COLOR``
    is set, and anything when ``FORCE_COLOR`` is (both as https://no-color.org and
    https://force-color.org say: set and not empty)."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return not to_file and sys.stdout.isatty()


def _style(ascii_: bool, color: bool, stream: object = None) -> Style:
    encoding = getattr(stream or sys.stdout, "encoding", None) or "ascii"
    try:
        "━🐛✅💡🧪📋·—│".encode(encoding)
        can_encode = True
    except (UnicodeEncodeError, LookupError):
        can_encode = False
    return Style(ascii=ascii_ or not can_encode, color=color)


def _codes(option: str, values: tuple[str, ...]) -> list[str] | None:
    """A code-list option's codes (None: not given). Given but empty (``--select ''``) is
    an error: it would otherwise mean "everything"."""
    if not values:
        return None
    codes = _split(values)
    if not codes:
        raise click.UsageError(
            f"{option} needs rule codes or prefixes (AF1,AF201 or ALL); it was given none"
        )
    try:
        check_selectors(codes, all_codes(), option)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    return codes


def _per_file_ignores(option: str, values: tuple[str, ...]) -> dict[str, list[str]]:
    """``PATTERN:CODES`` (split at the last colon) as a table of pattern -> codes."""
    table: dict[str, list[str]] = {}
    for value in values:
        pattern, colon, codes = value.rpartition(":")
        if not colon or not pattern.strip():
            raise click.UsageError(f"{option} {value!r}: expected PATTERN:CODES (tests/*:AF2)")
        table.setdefault(pattern.strip(), []).extend(_codes(option, (codes,)) or [])
    return table


@main.command(
    context_settings={"max_content_width": 100},
    short_help="Check PATHS for asyncio bugs (the default command); --diff/--write fix them.",
)
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
    "--fix-only",
    is_flag=True,
    help="Apply the fixes (as --write; with --diff, show them) and report nothing else: "
    "findings left do not make the exit status 1.",
)
@click.option(
    "--output-format",
    type=click.Choice(OUTPUT_FORMATS),
    default="concise",
    show_default=True,
    envvar="ASYNCFIX_OUTPUT_FORMAT",
    help="How findings are printed (also ASYNCFIX_OUTPUT_FORMAT): concise, full (with the "
    "source lines), report (the whole story of each), json, json-lines, sarif (GitHub code "
    "scanning), github (workflow annotations), gitlab (code quality), markdown (a CI summary).",
)
@click.option(
    "-o",
    "--output-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the findings to this file instead of stdout.",
)
@click.option(
    "--statistics",
    is_flag=True,
    help="Print the count of findings per rule instead of the findings.",
)
@click.option(
    "--show-fixes",
    is_flag=True,
    help="List the fixes made (with --write) or that --write would make, per file and rule.",
)
@click.option(
    "--warn-unused-suppressions",
    is_flag=True,
    help="Warn of each `# asyncfix: ignore` / `# noqa: AF...` comment that suppresses nothing "
    "(and exit with 1).",
)
@click.option("--exit-zero", is_flag=True, help="Exit with 0 even when there are findings.")
@click.option(
    "--exit-non-zero-on-fix",
    is_flag=True,
    help="Exit with 1 when fixes were made, even if no finding is left.",
)
@click.option(
    "--select",
    multiple=True,
    metavar="CODES",
    help="Only these codes or prefixes (AF2,AF301); overrides the configuration's select "
    "and ignore.",
)
@click.option(
    "--extend-select",
    multiple=True,
    metavar="CODES",
    help="These codes or prefixes too, on top of the selection.",
)
@click.option("--ignore", multiple=True, metavar="CODES", help="Skip these codes or prefixes.")
@click.option(
    "--extend-ignore", multiple=True, metavar="CODES", help="Skip these too (as --ignore)."
)
@click.option(
    "--per-file-ignores",
    multiple=True,
    metavar="PATTERN:CODES",
    help="Skip CODES in files matching PATTERN, instead of the configuration's table.",
)
@click.option(
    "--extend-per-file-ignores",
    multiple=True,
    metavar="PATTERN:CODES",
    help="Skip CODES in files matching PATTERN, on top of the configuration's table.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Use this pyproject.toml, asyncfix.toml or .asyncfix.toml instead of the nearest one.",
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
    "--stdin-filename",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With PATH `-` (or no PATH): the file the source on stdin stands for (its per-file "
    "ignores, its project, its name in the output).",
)
@click.option(
    "--show-settings",
    is_flag=True,
    help="Print the settings the first PATH is checked with, and exit.",
)
@click.option(
    "--ascii", "ascii_", is_flag=True, help="Plain ASCII output (no box characters or emoji)."
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour the output (auto: on a terminal, unless NO_COLOR is set; FORCE_COLOR forces it).",
)
@click.option("--no-color", is_flag=True, hidden=True, help="Same as --color never.")
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
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="ASYNCFIX_CACHE_DIR",
    help="Keep the caches here (one folder per project) instead of the project's "
    ".asyncfix_cache (also ASYNCFIX_CACHE_DIR).",
)
@click.option(
    "--evidence",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="FILE",
    help="What the tests showed at run time (`pytest -p asyncfix.pytest_plugin`): a "
    "never-awaited coroutine seen at a line the analysis could not resolve becomes an AF101 "
    "finding with an unsafe fix, and findings it bears out say so. Alone: the project's "
    ".asyncfix_cache/evidence.json.",
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
@click.option(
    "--validate-evidence",
    is_flag=True,
    help="With --validate: pytest runs under the runtime-evidence plugin (PYTEST_ADDOPTS; "
    "asyncfix must be importable where the tests run) and VALIDATION compares what it saw "
    "before and after the fixes (never awaited: 3 -> 0, ...).",
)
def check(
    paths: tuple[Path, ...],
    diff_mode: bool,
    write_mode: bool,
    unsafe_fixes: bool | None,
    fix_only: bool,
    output_format: str,
    output_file: Path | None,
    statistics: bool,
    show_fixes: bool,
    warn_unused_suppressions: bool,
    exit_zero: bool,
    exit_non_zero_on_fix: bool,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_ignore: tuple[str, ...],
    per_file_ignores: tuple[str, ...],
    extend_per_file_ignores: tuple[str, ...],
    config_path: Path | None,
    target_version: str | None,
    force_exclude: bool,
    stdin_filename: Path | None,
    show_settings: bool,
    ascii_: bool,
    color: str,
    no_color: bool,
    quiet: bool,
    jobs: int | None,
    no_cache: bool,
    cache_dir: Path | None,
    evidence: str | None,
    validate: str | None,
    validate_timeout: float,
    validate_evidence: bool,
) -> None:
    """Check PATHS (files or directories; default: the current directory; `-`: the source
    on stdin).

    Exit status: 0 clean; 1 findings (check), changes (--diff) or findings left unfixed
    (--write); 2 usage, configuration or per-file errors.
    """
    if diff_mode and write_mode:
        raise click.UsageError("--diff and --write cannot be used together")
    if fix_only and not diff_mode:
        write_mode = True
    stdin = paths == (Path("-"),) or (not paths and stdin_filename is not None)
    if not stdin and Path("-") in paths:
        raise click.UsageError("`-` (read stdin) cannot be mixed with other paths")
    if stdin_filename is not None and not stdin:
        raise click.UsageError("--stdin-filename needs the source on stdin (PATH `-`)")
    if not paths:
        paths = (Path("."),)
    selected = _codes("--select", select)
    ignored = _codes("--ignore", ignore) or []
    ignored += _codes("--extend-ignore", extend_ignore) or []
    extended = _codes("--extend-select", extend_select) or []
    start = stdin_filename or Path(".") if stdin else paths[0]
    config = _configuration(config_path, start, target_version)
    config.cache_dir = cache_dir.absolute() if cache_dir is not None else None
    if per_file_ignores:
        config.per_file_ignores = _per_file_ignores("--per-file-ignores", per_file_ignores)
    for pattern, codes in _per_file_ignores(
        "--extend-per-file-ignores", extend_per_file_ignores
    ).items():
        config.per_file_ignores.setdefault(pattern, []).extend(codes)
    if show_settings:
        config.cli_selection = Selection(
            None if selected is None else tuple(selected), tuple(ignored), tuple(extended)
        )
        click.echo(_settings_text(config, start, unsafe_fixes))
        sys.exit(EXIT_CLEAN)
    observed = _evidence(evidence, config, start)
    command = _validation_command(validate, config.validate, write_mode)
    if validate_evidence and command is None:
        raise click.UsageError("--validate-evidence needs --validate (it watches those runs)")
    if stdin and command is not None:
        raise click.UsageError("--validate cannot judge the source on stdin (nothing is written)")
    mode = "diff" if diff_mode else "write" if write_mode else "check"
    started = time.perf_counter()
    previews = output_format in PREVIEW_FORMATS and not statistics
    raw = sys.stdin.buffer.read() if stdin else b""
    if stdin:
        result = run_stdin(
            raw,
            stdin_filename,
            config,
            mode,
            select=selected,
            ignore=ignored,
            extend_select=extended,
            unsafe_fixes=unsafe_fixes,
            previews=previews,
            jobs=jobs,
        )
    else:
        bar = _ProgressBar() if _wants_progress(quiet) else None
        result = run(
            list(paths),
            config,
            mode,
            select=selected,
            ignore=ignored,
            extend_select=extended,
            unsafe_fixes=unsafe_fixes,
            fix_for_report=output_format == "report" and not statistics,
            previews=previews,
            force_exclude=force_exclude,
            jobs=jobs,
            use_cache=not no_cache,
            progress=bar,
            validate=command,
            validate_timeout=validate_timeout,
            observed=observed,
            validate_evidence=validate_evidence,
        )
        if bar is not None:
            bar.close()
    out = _Output(output_file, _color("never" if no_color else color, output_file is not None))
    style = _style(ascii_, out.color, None if output_file is None else out)
    out.ascii = style.ascii and output_format not in MACHINE_FORMATS
    for line in render_errors(result, warn_unused_suppressions):
        click.echo(as_ascii(line) if ascii_ else line, err=True)
    if stdin and mode == "write":
        _print_fixed_stdin(result, raw, style)
    elif statistics:
        _print_statistics(result, output_format, out, style, quiet)
    else:
        _print(result, output_format, out, style, quiet or fix_only, fix_only)
    if show_fixes:
        _print_show_fixes(result, output_format, out, style)
    if output_file is not None:
        out.save()
    if not quiet and output_format not in MACHINE_FORMATS:
        click.echo(statistics_line(result, time.perf_counter() - started), err=True)
    code = _exit_code(result, exit_zero or fix_only, exit_non_zero_on_fix)
    if code == EXIT_CLEAN and warn_unused_suppressions and not exit_zero:
        code = EXIT_FINDINGS if any(r.unused_suppressions for r in result.files) else code
    sys.exit(code)


def _evidence(
    given: str | None, config: Config, start: Path
) -> dict[str, tuple[Observed, ...]] | None:
    """``--evidence FILE`` (alone: the project's ``.asyncfix_cache/evidence.json``), read;
    an unreadable or malformed file is an error (exit 2)."""
    if given is None:
        return None
    from asyncfix.engine.project import project_root
    from asyncfix.evidence import DEFAULT, EvidenceError, load_evidence

    if given:
        path = Path(given)
    else:
        root = project_root([start.absolute()], config) or Path.cwd()
        path = root / DEFAULT
    try:
        return load_evidence(path)
    except EvidenceError as exc:
        click.echo(f"error: --evidence: {exc}", err=True)
        sys.exit(EXIT_ERROR)


def _configuration(config_path: Path | None, start: Path, target_version: str | None) -> Config:
    """The configuration for a run from ``start``: ``--config`` or the nearest file, with
    the target version from ``--target-version`` or the project's ``requires-python``."""
    try:
        found = config_path if config_path is not None else find_config(start)
        config = load(found, all_codes())
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    if target_version:
        config.target_version = target_version
        config.target_source = "--target-version"
    else:
        try:
            apply_requires_python(config, config.path or start)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
    return config


def _settings_text(config: Config, start: Path, unsafe_fixes: bool | None) -> str:
    """``--show-settings``: what a run from ``start`` is checked with."""
    from asyncfix.codemods import rule_by_code
    from asyncfix.engine.project import cache_directory, project_root

    rel = relative(start.absolute(), config.root) or start.absolute().as_posix()
    codes = sorted(config.enabled_codes(all_codes(), rel))
    root = project_root([start.absolute()], config)
    unsafe = config.unsafe_fixes if unsafe_fixes is None else unsafe_fixes

    def listed(values: list[str]) -> str:
        return ", ".join(values) if values else "(none)"

    rows = [
        ("configuration", str(config.path or "(none: defaults)")),
        ("project root", str(root or "(none: only the files named are indexed)")),
        ("target-version", f"{config.target_version} (from {config.target_source})"),
        ("unsafe-fixes", "true" if unsafe else "false"),
        ("select", listed(config.select)),
        ("extend-select", listed(config.extend_select)),
        ("ignore", listed(config.ignore)),
    ]
    cli = config.cli_selection
    if cli != Selection():
        parts = (
            f"select {','.join(cli.select)}" if cli.select is not None else "",
            f"extend-select {','.join(cli.extend_select)}" if cli.extend_select else "",
            f"ignore {','.join(cli.ignore)}" if cli.ignore else "",
        )
        rows.append(("command line", "; ".join(part for part in parts if part)))
    ignores = [f"{p} = {','.join(c)}" for p, c in config.per_file_ignores.items()]
    rows += [
        ("per-file-ignores", listed(ignores)),
        ("exclude", listed(config.exclude)),
        ("extend-exclude", listed(config.extend_exclude)),
        ("respect-gitignore", "true" if config.respect_gitignore else "false"),
        ("offload-functions", listed(config.offload_functions)),
        ("coroutine-functions", listed(config.coroutine_functions)),
        ("validate", config.validate or "(none)"),
        ("cache", str(cache_directory(config, root))),
    ]
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"Settings for {start}"]
    lines += [f"  {label + ':':<{width}}{value}" for label, value in rows]
    lines.append(f"  enabled rules ({len(codes)}) for {rel}:")
    lines += [f"    {code}  {rule_by_code(code).name}" for code in codes]
    return "\n".join(lines)


class _Output:
    """Where the findings go: stdout, or the ``--output-file`` (written at the end, through
    a temporary file: a failed run leaves no half file)."""

    encoding = "utf-8"

    def __init__(self, path: Path | None, color: bool) -> None:
        self.path = path
        self.color = color
        self.parts: list[bytes] = []
        #: ``--ascii`` (a human format): text is made plain ASCII (``as_ascii``); bytes (a
        #: diff, which must stay the file's own) are left alone
        self.ascii = False

    def echo(self, text: str | bytes = "", nl: bool = True) -> None:
        if self.ascii and isinstance(text, str):
            text = as_ascii(text)
        if self.path is None:
            click.echo(text, nl=nl, color=self.color)
            return
        data = text if isinstance(text, bytes) else click.unstyle(text).encode("utf-8")
        self.parts.append(data + (b"\n" if nl else b""))

    def save(self) -> None:
        assert self.path is not None
        try:
            write_atomically(self.path, b"".join(self.parts))
        except OSError as exc:
            click.echo(f"error: --output-file {self.path}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_ERROR)


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


def _print(
    result: RunResult, output_format: str, out: _Output, style: Style, quiet: bool, fix_only: bool
) -> None:
    machine = _machine_text(result, output_format)
    if machine is not None:
        out.echo(machine, nl=False)
        if result.mode == "diff":
            click.echo(diff_renderer.render(result), nl=False, err=True)
        return
    if result.mode == "diff":
        out.echo(diff_renderer.render(result), nl=False)
        if not quiet:
            click.echo(summary(result), err=True)
        return
    if output_format == "markdown":
        from asyncfix.report.markdown import render_summary

        out.echo(render_summary(result), nl=False)
        return
    if fix_only:
        lines = [line for line in render_concise(result, style) if _is_fixed_line(line)]
    elif output_format == "report":
        lines = render_report(result, style)
    elif output_format == "full":
        lines = render_full(result, style, quiet)
    else:
        lines = render_concise(result, style, quiet)
    for line in lines:
        out.echo(line)
    if result.validation is not None:
        for line in render_validation(result.validation, style):
            out.echo(line)
    if not quiet or fix_only:
        out.echo(summary(result))


def _is_fixed_line(line: str) -> bool:
    return click.unstyle(line).startswith("Fixed ")


def _machine_text(result: RunResult, output_format: str) -> str | None:
    """The rendering of a machine format (None: a human one). The formats that name rules
    load them only when they are asked for: a run from the cache loads no rule."""
    if output_format not in MACHINE_FORMATS:
        return None
    from asyncfix.report.formats import (
        render_github,
        render_gitlab,
        render_json_lines,
        render_sarif,
    )

    if output_format == "json":
        return json_renderer.render(result)
    if output_format == "json-lines":
        return render_json_lines(result)
    if output_format == "sarif":
        return render_sarif(result)
    if output_format == "github":
        return render_github(result)
    assert output_format == "gitlab"
    return render_gitlab(result)


def _print_statistics(
    result: RunResult, output_format: str, out: _Output, style: Style, quiet: bool
) -> None:
    """``--statistics``: a count per rule, most frequent first (JSON for the JSON formats)."""
    from asyncfix.codemods import rule_by_code

    counts: dict[str, list[Finding]] = {}
    for _, finding in result.reported_findings:
        counts.setdefault(finding.code, []).append(finding)
    ordered = sorted(counts.items(), key=lambda item: (-len(item[1]), item[0]))
    if output_format in MACHINE_FORMATS:
        rows = [
            {
                "code": code,
                "name": rule_by_code(code).name,
                "count": len(found),
                "fixable": sum(1 for f in found if f.fixable(result.unsafe_fixes)),
            }
            for code, found in ordered
        ]
        out.echo(json.dumps(rows, indent=2))
        return
    width = max((len(str(len(found))) for _, found in ordered), default=1)
    for code, found in ordered:
        fixable = any(f.fixable(result.unsafe_fixes) for f in found)
        marker = "[*]" if fixable else "   "
        out.echo(f"{len(found):>{width}}\t{code}\t{marker} {rule_by_code(code).name}")
    if not quiet:
        out.echo(summary(result))


def _print_show_fixes(result: RunResult, output_format: str, out: _Output, style: Style) -> None:
    """``--show-fixes``: the fixes made (``--write``) or that ``--write`` would make, per
    file and rule; on stderr when stdout holds a machine format or a diff."""
    from asyncfix.codemods import rule_by_code

    if result.mode == "write":
        done = [(r, f) for r, f in result.findings if f.fixed and r.written]
        head = f"Fixed {len(done)} finding{'s' * (len(done) != 1)}"
    else:
        done = [(r, f) for r, f in result.findings if f.fixable(result.unsafe_fixes)]
        head = f"Would fix {len(done)} finding{'s' * (len(done) != 1)} (with --write)"
    times = style.glyph("\N{MULTIPLICATION SIGN}", "x")
    lines = [head + (":" if done else ".")]
    per_file: dict[str, dict[str, int]] = {}
    for r, f in done:
        per_file.setdefault(r.display, {}).setdefault(f.code, 0)
        per_file[r.display][f.code] += 1
    for display, codes in sorted(per_file.items()):
        lines.append(f"- {display}:")
        lines += [
            f"    {n} {times} {code} ({rule_by_code(code).name})"
            for code, n in sorted(codes.items())
        ]
    to_stderr = output_format in MACHINE_FORMATS or result.mode == "diff"
    for line in lines:
        if to_stderr:
            click.echo(line, err=True)
        else:
            out.echo(line)


def _print_fixed_stdin(result: RunResult, raw: bytes, style: Style) -> None:
    """``asyncfix --write -``: the fixed source on stdout, in its own bytes (the source as it
    came when it has nothing to fix or could not be checked); what is left on stderr."""
    file = result.files[0]
    stream = sys.stdout.buffer
    file.written = file.changed and not file.internal_error
    if file.written:
        assert file.fixed is not None
        data = file.fixed.encode(file.encoding)
        stream.write(BOM + data if file.bom else data)
    else:
        stream.write(raw)
    stream.flush()
    left = result.reported(file)
    for finding in left:
        click.echo(concise_line(file, finding, result, style), err=True)


def _exit_code(result: RunResult, exit_zero: bool = False, on_fix: bool = False) -> int:
    """2 for errors; with ``--exit-non-zero-on-fix``, 1 when something was fixed (written,
    or in the diff); else 1 for findings (check), changes (diff) or findings left (write),
    0 with ``--exit-zero``."""
    if result.has_errors():
        return EXIT_ERROR
    fixed = any(
        (r.written if result.mode == "write" else r.changed) and not r.internal_error
        for r in result.files
    )
    if on_fix and fixed and result.mode != "check":
        return EXIT_FINDINGS
    if exit_zero:
        return EXIT_CLEAN
    if result.mode == "diff":
        return EXIT_FINDINGS if fixed else EXIT_CLEAN
    if result.mode == "write":
        return EXIT_FINDINGS if result.reported_findings else EXIT_CLEAN
    return EXIT_FINDINGS if result.findings else EXIT_CLEAN


@main.command("rules")
@click.option(
    "--output-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="A line per rule, or JSON (code, name, summary, fix safety, severity, docs).",
)
def rules_command(output_format: str) -> None:
    """List every rule: code, name, fix safety, summary."""
    from asyncfix.codemods import RULES

    if output_format == "json":
        rows = [
            {
                "code": rule.code,
                "name": rule.name,
                "summary": rule.summary,
                "fix_safety": rule.fix_safety.value,
                "severity": rule.severity.value,
                "kind": rule.kind,
                "explanation": rule_doc(rule.code),
            }
            for rule in RULES
        ]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
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


@main.command("server", short_help="Run the language server (LSP) over stdio.")
def server_command() -> None:
    """Run asyncfix's language server over stdin/stdout, for an editor: diagnostics on
    open, change and save, each fix as a code action. Needs pygls (`pip install
    'asyncfix[lsp]'`)."""
    try:
        from asyncfix.server import serve
    except ImportError as exc:
        raise click.UsageError(
            f"the language server needs pygls ({exc}); install it with "
            "`pip install 'asyncfix[lsp]'`"
        ) from None
    serve()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main process is, to end the run as an interrupt does."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def _interrupted(exc: KeyboardInterrupt) -> int:
    """One line on an interrupt (every write is atomic: a file is as it was or wholly fixed
    and verified), and the status a shell gives a process the signal ended."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while saying so
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    terminated = isinstance(exc, Terminated)
    with contextlib.suppress(OSError, ValueError):
        print(
            f"asyncfix: {'terminated' if terminated else 'interrupted'}; the files written so "
            "far are wholly fixed, the others unchanged",
            file=sys.stderr,
        )
    return 128 + (signal.SIGTERM if terminated else signal.SIGINT)


def entry() -> None:
    """The program (console script and ``python -m asyncfix``): ``main``, then an exit that
    skips the interpreter's teardown -- freeing the project index and the caches object by
    object takes a tenth of a second after an edit, for nothing. Output is flushed first;
    an error other than an exit (a bug) ends as usual, with its traceback."""
    signal.signal(signal.SIGTERM, _terminated)
    try:
        # not click's standalone mode: it turns an interrupt into "Aborted!" and status 1
        returned = main.main(standalone_mode=False)
        code = returned if isinstance(returned, int) else 0  # click's own exits (--help)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except click.ClickException as exc:  # a usage error: as click says it
        exc.show()
        code = exc.exit_code
    except click.exceptions.Abort as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, KeyboardInterrupt):
            code = _interrupted(cause)
        else:
            print("Aborted!", file=sys.stderr)
            code = 1
    except KeyboardInterrupt as exc:  # outside the command (while starting, say)
        code = _interrupted(exc)
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
    selected, ignored = _codes("--select", select), _codes("--ignore", ignore)
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
