"""Configuration: ``[tool.asyncfix]`` in the nearest ``pyproject.toml``."""

from __future__ import annotations

import configparser
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

KNOWN_KEYS = {
    "select",
    "extend-select",
    "ignore",
    "per-file-ignores",
    "exclude",
    "extend-exclude",
    "unsafe-fixes",
    "target-version",
    "respect-gitignore",
    "offload-functions",
    "coroutine-functions",
    "validate",
}
TARGET_VERSIONS = {f"py3{minor}": (3, minor) for minor in range(8, 15)}
DEFAULT_TARGET = "py310"
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
#: a dotted name whose parts may hold ``*`` wildcards (or be ``**``), and a letter somewhere
_DOTTED_PATTERN = re.compile(
    r"(?=.*[A-Za-z_])(?:\*\*|[A-Za-z_*][A-Za-z0-9_*]*)(?:\.(?:\*\*|[A-Za-z_*][A-Za-z0-9_*]*))*"
)


class ConfigError(Exception):
    """Bad configuration or options; the message names the file and key."""


def _names(
    data: dict[str, Any], key: str, shape: re.Pattern[str], where: str, how: str, example: str
) -> list[str]:
    """The list of dotted names at ``key`` (none when it is absent), each of ``shape``."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(v, str) and shape.fullmatch(v) for v in value
    ):
        raise ConfigError(f"{where}: '{key}' must be a list of dotted names{how} (e.g. {example})")
    return list(value)


@dataclass(frozen=True)
class Selection:
    """One layer of rule selection, as ruff layers them: the configuration's, then the
    command line's. A layer with a ``select`` starts afresh (``--select AF101`` on the
    command line overrides a configured ``ignore = ["AF1"]``); one without adds to and
    takes from what the layers before it enabled."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()


def specificity(selector: str) -> int:
    """``ALL`` < ``AF`` < ``AF1`` < ``AF10`` < ``AF101``: a more specific selector wins."""
    return 0 if selector == "ALL" else len(selector)


def resolve(layers: Iterable[Selection], all_codes: Iterable[str]) -> frozenset[str]:
    """The codes the layers enable. Within a layer the selectors apply from the least
    specific to the most (``select = ["AF101"]`` with ``ignore = ["AF1"]`` keeps AF101;
    ``select = ["AF1"]`` with ``ignore = ["AF101"]`` drops it); at one specificity an ignore
    wins over a select."""
    codes = tuple(all_codes)
    enabled: set[str] = set()
    for layer in layers:
        if layer.select is not None:
            enabled = set()
        selected = [*(layer.select or ()), *layer.extend_select]
        levels = sorted({specificity(s) for s in (*selected, *layer.ignore)})
        for level in levels:
            enabled.update(expand([s for s in selected if specificity(s) == level], codes))
            enabled.difference_update(
                expand([s for s in layer.ignore if specificity(s) == level], codes)
            )
    return frozenset(enabled)


@dataclass
class Config:
    #: where it came from (None: defaults)
    path: Path | None = None
    #: directory patterns are relative to
    root: Path = field(default_factory=Path.cwd)
    select: list[str] = field(default_factory=lambda: ["ALL"])
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    #: the command line's layer of rule selection (``--select``, ``--extend-select``,
    #: ``--ignore``, ``--extend-ignore``), over the configuration's
    cli_selection: Selection = field(default_factory=Selection)
    #: at most these codes or prefixes, whatever the selection says (the bot's pull request
    #: for one family); None: no such limit
    only: tuple[str, ...] | None = None
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    extend_exclude: list[str] = field(default_factory=list)
    unsafe_fixes: bool = False
    target_version: str = DEFAULT_TARGET
    #: where ``target_version`` comes from: "default", "--target-version", the configuration
    #: file, or the project's ``requires-python`` / ``python_requires``
    target_source: str = "default"
    respect_gitignore: bool = True
    #: the project's own helpers that run their callable argument in a worker thread
    offload_functions: list[str] = field(default_factory=list)
    #: functions asyncfix cannot see (a library not in the project) that the project says
    #: are coroutine functions: dotted names, ``*`` matching within a part, ``**`` parts
    coroutine_functions: list[str] = field(default_factory=list)
    #: the command ``--validate`` runs when given no command of its own; never run unless
    #: ``--validate`` is on the command line (a repository's configuration runs nothing)
    validate: str | None = None
    #: where the caches go (``--cache-dir``, ``ASYNCFIX_CACHE_DIR``; not a configuration key:
    #: a repository's file never chooses where asyncfix writes); None: the project's
    #: ``.asyncfix_cache``
    cache_dir: Path | None = None
    #: enabled_codes' work that does not depend on the file, by the settings it came from
    _enabled: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def target(self) -> tuple[int, int]:
        return TARGET_VERSIONS[self.target_version]

    def exclude_spec(self) -> pathspec.GitIgnoreSpec:
        return pathspec.GitIgnoreSpec.from_lines([*self.exclude, *self.extend_exclude])

    @property
    def selections(self) -> tuple[Selection, ...]:
        configured = Selection(tuple(self.select), tuple(self.ignore), tuple(self.extend_select))
        return (configured, self.cli_selection)

    def enabled_codes(self, all_codes: Iterable[str], rel_path: str) -> frozenset[str]:
        all_codes = tuple(all_codes)
        key = (self.selections, self.only, repr(self.per_file_ignores), all_codes)
        cached = self._enabled.get(key)
        if cached is None:
            base = resolve(self.selections, all_codes)
            if self.only is not None:
                base &= frozenset(expand(self.only, all_codes))
            specs = [
                (pathspec.GitIgnoreSpec.from_lines([pattern]), set(expand(ignored, all_codes)))
                for pattern, ignored in self.per_file_ignores.items()
            ]
            cached = self._enabled[key] = (base, specs)
        codes, specs = cached
        for spec, ignored_codes in specs:
            if spec.match_file(rel_path):
                codes = codes - ignored_codes
        return codes


def expand(selectors: Iterable[str], all_codes: Iterable[str]) -> list[str]:
    codes = sorted(all_codes)
    out: list[str] = []
    for selector in selectors:
        if selector == "ALL":
            out.extend(codes)
        else:
            out.extend(code for code in codes if code.startswith(selector))
    return out


def check_selectors(selectors: Iterable[str], all_codes: Sequence[str], where: str) -> None:
    for selector in selectors:
        if not isinstance(selector, str):
            raise ConfigError(f"{where}: expected a rule code, got {selector!r}")
        if selector != "ALL" and not any(code.startswith(selector) for code in all_codes):
            raise ConfigError(
                f"{where}: unknown rule code or prefix {selector!r} "
                "(see `asyncfix rules` for the list)"
            )


#: the configuration files asyncfix reads, in the order it looks for them in a directory (as
#: ruff looks for ``.ruff.toml``, ``ruff.toml``, ``pyproject.toml``)
CONFIG_FILES = (".asyncfix.toml", "asyncfix.toml", "pyproject.toml")


def find_config(start: Path) -> Path | None:
    """The nearest configuration, from ``start`` upward: in each directory a
    ``.asyncfix.toml`` or ``asyncfix.toml`` (settings at the top level), else a
    ``pyproject.toml`` with a ``[tool.asyncfix]`` table."""
    start = start.absolute()
    if start.is_file() or not start.exists():
        start = start.parent
    for directory in (start, *start.parents):
        found = config_in(directory)
        if found is not None:
            return found
    return None


def config_in(directory: Path) -> Path | None:
    """The configuration file of ``directory`` itself (``find_config``'s test), or None."""
    for name in CONFIG_FILES:
        candidate = directory / name
        if not candidate.is_file():
            continue
        if name != "pyproject.toml" or "asyncfix" in _read_toml(candidate).get("tool", {}):
            return candidate
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


_LOWER_BOUND = re.compile(r"(>=|~=|==|>|\^)\s*(\d+)\.(\d+)")


def target_from_requires(spec: str) -> str | None:
    """The oldest Python a ``requires-python`` specifier admits, as a target version:
    ``>=3.9`` and ``~=3.9`` give py39, ``>=3.8,<4`` py38; clamped to py38..py314. None when
    the specifier names no lower bound."""
    bounds = [
        (int(major), int(minor))
        for _, major, minor in _LOWER_BOUND.findall(spec)
        if int(major) == 3
    ]
    if not bounds:
        return None
    minor = min(max(max(bounds)[1], 8), 14)
    return f"py3{minor}"


def find_requires_python(start: Path) -> tuple[str, str] | None:
    """The target version the nearest project above ``start`` declares, and where: the
    ``requires-python`` of a ``pyproject.toml``, else the ``python_requires`` of a
    ``setup.cfg`` (read as data; ``setup.py`` is never run). The search stops at the first
    directory with either file or a ``.git``."""
    start = start.absolute()
    if not start.is_dir():
        start = start.parent
    for directory in (start, *start.parents):
        pyproject = directory / "pyproject.toml"
        setup_cfg = directory / "setup.cfg"
        if pyproject.is_file():
            project = _read_toml(pyproject).get("project", {})
            spec = project.get("requires-python") if isinstance(project, dict) else None
            if isinstance(spec, str) and (target := target_from_requires(spec)):
                return target, f"{pyproject.name} requires-python {spec!r}"
        if setup_cfg.is_file():
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read(setup_cfg, encoding="utf-8")
                spec = parser.get("options", "python_requires", fallback=None)
            except (configparser.Error, UnicodeDecodeError, OSError):
                spec = None
            if spec and (target := target_from_requires(spec)):
                return target, f"{setup_cfg.name} python_requires {spec.strip()!r}"
        if pyproject.is_file() or setup_cfg.is_file() or (directory / ".git").exists():
            return None
    return None


def apply_requires_python(config: Config, start: Path) -> None:
    """As ruff does: when no target version is configured, the oldest Python the project
    above ``start`` says it supports (``find_requires_python``)."""
    if config.target_source == "default":
        declared = find_requires_python(start)
        if declared is not None:
            config.target_version, config.target_source = declared


def load(path: Path | None, all_codes: Sequence[str]) -> Config:
    """Read and validate the settings of ``path`` (None: defaults, rooted at the cwd): the
    ``[tool.asyncfix]`` table of a ``pyproject.toml`` (an error when it has none: the file
    was named with ``--config``), the top level of any other file (``asyncfix.toml``)."""
    if path is None:
        return Config()
    if path.name == "pyproject.toml":
        tool = _read_toml(path).get("tool", {})
        if not isinstance(tool, dict) or "asyncfix" not in tool:
            raise ConfigError(
                f"{path}: no [tool.asyncfix] table (asyncfix's settings go there, or at the "
                "top level of an asyncfix.toml)"
            )
        data = tool["asyncfix"]
        where = f"{path} [tool.asyncfix]"
    else:
        data = _read_toml(path)
        where = str(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(KNOWN_KEYS))})"
        )
    config = Config(path=path, root=path.parent.absolute())
    config.offload_functions = _names(
        data, "offload-functions", _DOTTED, where, "", '["hass.async_add_executor_job"]'
    )
    config.coroutine_functions = _names(
        data,
        "coroutine-functions",
        _DOTTED_PATTERN,
        where,
        ", where `*` matches any characters within a part and `**` any parts",
        '["vendor.client.fetch", "vendor.**.async_*"]',
    )
    for key in ("select", "extend-select", "ignore", "exclude", "extend-exclude"):
        if key in data:
            value = data[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: {key!r} must be a list of strings")
            if key in ("select", "extend-select", "ignore"):
                check_selectors(value, all_codes, f"{where} {key}")
            setattr(config, key.replace("-", "_"), list(value))
    if "per-file-ignores" in data:
        table = data["per-file-ignores"]
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: 'per-file-ignores' must be a table of pattern = [codes]")
        for pattern, codes in table.items():
            if not isinstance(codes, list):
                raise ConfigError(f"{where}: per-file-ignores[{pattern!r}] must be a list of codes")
            check_selectors(codes, all_codes, f"{where} per-file-ignores[{pattern!r}]")
            config.per_file_ignores[pattern] = list(codes)
    if "validate" in data:
        value = data["validate"]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: 'validate' must be a command (a non-empty string)")
        config.validate = value
    for key in ("unsafe-fixes", "respect-gitignore"):
        if key in data:
            if not isinstance(data[key], bool):
                raise ConfigError(f"{where}: {key!r} must be true or false")
            setattr(config, key.replace("-", "_"), data[key])
    if "target-version" in data:
        value = data["target-version"]
        if value not in TARGET_VERSIONS:
            raise ConfigError(
                f"{where}: target-version {value!r} is not one of {', '.join(TARGET_VERSIONS)}"
            )
        config.target_version = value
        config.target_source = (
            f"{path.name} [tool.asyncfix] target-version"
            if path.name == "pyproject.toml"
            else f"{path.name} target-version"
        )
    return config
