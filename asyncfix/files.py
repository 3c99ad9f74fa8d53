"""Files: discovery, decoding that keeps every byte, and atomic writes."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import signal
import stat
import sys
import tempfile
import threading
import time
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec

if sys.platform != "win32":
    import fcntl

BOM = b"\xef\xbb\xbf"

#: directories never entered during discovery (explicitly named files are still checked)
DEFAULT_EXCLUDE = (
    ".bzr",
    ".direnv",
    ".eggs",
    ".git",
    ".hg",
    ".mypy_cache",
    ".nox",
    ".pytest_cache",
    ".ruff_cache",
    ".svn",
    ".tox",
    ".venv",
    "__pycache__",
    "__pypackages__",
    "_build",
    "buck-out",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "venv",
)


class SourceError(Exception):
    """A file that cannot be processed; the message says why."""


@dataclass(frozen=True)
class Source:
    text: str
    encoding: str
    bom: bool
    raw: bytes

    def encode(self, text: str) -> bytes:
        data = text.encode(self.encoding)
        return BOM + data if self.bom else data


def decode(raw: bytes) -> Source:
    """Decode per PEP 263, remembering the BOM; line endings stay as they are."""
    bom = raw.startswith(BOM)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:
        raise SourceError(f"cannot detect encoding: {exc}") from None
    if encoding == "utf-8-sig":
        encoding = "utf-8"
    body = raw[len(BOM) :] if bom else raw
    try:
        text = body.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise SourceError(f"cannot decode as {encoding}: {exc}") from None
    return Source(text=text, encoding=encoding, bom=bom, raw=raw)


def read_source(path: Path) -> Source:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SourceError("file vanished before it could be read") from None
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}") from None
    return decode(raw)


#: the signals that end a run; a write holds them until the file is replaced or left alone
_HELD_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)
)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the duration: taken when it ends (the run stops then, as
    it would have), never between making the temporary file and moving it over the
    original, where an interrupt raised inside the standard library could leave it behind.

    Python runs signal handlers in the main thread whatever thread the system gave the
    signal to (a process pool has threads of its own), so the handlers are what is held:
    each signal that comes is noted, and sent again once the handlers are back. Only the
    main thread can change them; elsewhere nothing is held."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {}
    try:
        for signum in _HELD_SIGNALS:
            handler = signal.getsignal(signum)
            if handler is not None:  # None: set outside Python, cannot be put back
                previous[signum] = signal.signal(signum, lambda got, _: caught.append(got))
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


#: the end of the name of ``atomic_write``'s temporary file, ``.NAME.XXXXXXXX.asyncfix``
TEMPORARY = ".asyncfix"
#: a temporary file no live writer holds is an orphan once it is this old (seconds): the
#: writer takes its lock just after making the file
ORPHAN_AGE = 2.0
_RANDOM_PART = re.compile(r"[a-z0-9_]{8}")


def sweep_orphans(path: Path) -> list[str]:
    """Remove the temporary files a killed run (SIGKILL, a power cut) left beside ``path``,
    which this run is about to write; returns their names. One is an orphan when no process
    holds its lock (a writer holds it from just after making the file until the name is
    gone, and the system drops it when the writer dies) and it is older than
    ``ORPHAN_AGE``; where locks do not exist (Windows) nothing is removed."""
    if sys.platform == "win32":
        return []
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    removed = []
    for name in sorted(names):
        if not (name.startswith(prefix) and name.endswith(TEMPORARY)):
            continue
        if not _RANDOM_PART.fullmatch(name[len(prefix) : -len(TEMPORARY)]):
            continue
        orphan = os.path.join(path.parent, name)
        try:
            fd = os.open(orphan, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or time.time() - info.st_mtime < ORPHAN_AGE:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(orphan)
        except OSError:  # held by a live writer, or moved or removed meanwhile
            continue
        finally:
            os.close(fd)
        removed.append(name)
    return removed


def atomic_write(path: Path, expected: bytes, data: bytes) -> str | None:
    """Replace ``path`` with ``data`` if it still holds ``expected``.

    Returns None on success, else the reason the write was skipped. The new content
    goes to a temporary file in the same directory, takes the old mode bits and is
    moved over the original with ``os.replace``, so a reader never sees half a file.
    """
    path = Path(os.path.realpath(path))  # write through a symlink, never over it
    try:
        current = path.read_bytes()
        info = path.stat()
    except OSError as exc:
        return f"cannot re-read before writing: {exc.strerror or exc}"
    if current != expected:
        return "file changed on disk since it was read; not written"
    with signals_held():
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY, dir=path.parent)
        except OSError as exc:
            return f"cannot write in {path.parent}: {exc.strerror or exc}"
        try:
            with os.fdopen(fd, "wb") as handle:
                if sys.platform != "win32":  # held till the name is gone: sweep_orphans spares it
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                os.chmod(tmp, info.st_mode & 0o7777)
                if hasattr(os, "chown"):
                    with contextlib.suppress(OSError):  # only as root or for our own files
                        os.chown(tmp, info.st_uid, info.st_gid)
                if sys.platform != "win32":
                    os.replace(tmp, path)
            if sys.platform == "win32":  # Windows cannot move an open file
                os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return f"cannot write: {exc.strerror or exc}"
        except BaseException:  # where signals cannot be held (Windows): the file stays as it was
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return None


class _IgnoreTree:
    """``.gitignore`` files met while walking, each applying to its own subtree."""

    def __init__(self) -> None:
        self._specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []

    def load(self, directory: Path | str) -> None:
        gitignore = os.path.join(directory, ".gitignore")
        try:
            with open(gitignore, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return
        self._specs.append((str(directory), pathspec.GitIgnoreSpec.from_lines(lines)))

    def ignored(self, path: Path | str, is_dir: bool) -> bool:
        for base, spec in self._specs:
            rel = relative(path, base)
            if rel is None:
                continue
            if spec.match_file(rel + "/" if is_dir else rel):
                return True
        return False


def _git_root(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


@dataclass
class Discovery:
    files: list[Path]
    errors: list[str]
    #: files named on the command line that are not Python, skipped (a warning each)
    skipped: list[str] = field(default_factory=list)


def is_python_file(path: Path) -> bool:
    """``.py`` or ``.pyi``, or a script whose first line runs Python (``#!/usr/bin/env
    python3``): what a file named on the command line must be to be checked."""
    if path.suffix in (".py", ".pyi"):
        return True
    try:
        with path.open("rb") as handle:
            first = handle.readline(200)
    except OSError:
        return True  # reading it fails later, with the reason
    return first.startswith(b"#!") and b"python" in first


def discover(
    paths: Iterable[Path],
    root: Path,
    exclude: pathspec.GitIgnoreSpec,
    respect_gitignore: bool = True,
    force_exclude: bool = False,
) -> Discovery:
    """Python files under ``paths`` in sorted order, without duplicates.

    Directories skip DEFAULT_EXCLUDE, ``exclude`` patterns (relative to ``root``) and
    ``.gitignore``d entries. A file named on the command line is always checked,
    unless ``force_exclude`` (for pre-commit, which passes every staged file).
    """
    # absolute paths as strings while collecting (a `Path` is made for each file at the end)
    found: dict[str, None] = {}
    errors: list[str] = []
    skipped: list[str] = []
    for given in paths:
        path = given.absolute()
        if not path.exists():
            errors.append(f"{given}: no such file or directory")
            continue
        if not path.is_file() and not path.is_dir():
            errors.append(f"{given}: not a regular file or a directory ({_kind(path)}); skipped")
            continue
        if path.is_file() and _undecodable_name(str(path)):
            errors.append(f"{_printable(str(given))}: the file name is not valid UTF-8; skipped")
            continue
        if path.is_file():
            if force_exclude and _excluded(path, root, exclude):
                continue
            if not is_python_file(path):
                skipped.append(f"{given}: not a Python file (.py, .pyi, a python script); skipped")
                continue
            found[str(path)] = None
            continue
        if _matches(path, root, exclude, True):
            if force_exclude:
                continue
            # an excluded directory named on the command line is checked, like a named file
            exclude = pathspec.GitIgnoreSpec.from_lines([])
        walked = _walk(path, root, exclude, respect_gitignore, errors, skipped)
        found.update(dict.fromkeys(walked))
    return Discovery([Path(file) for file in sorted(found, key=_parts)], errors, skipped)


def _kind(path: Path | str) -> str:
    """What a path that is neither a regular file nor a directory is."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return exc.strerror or "cannot stat"
    for test, name in (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a file"


def _parts(path: str) -> list[str]:
    """How ``Path`` orders absolute paths (by their parts), without making one."""
    return path.split(os.sep)


def _excluded(path: Path, root: Path, exclude: pathspec.GitIgnoreSpec) -> bool:
    if any(part in DEFAULT_EXCLUDE for part in path.parts[:-1]):
        return True
    rel = relative(path, root)
    return exclude.match_file(path.as_posix() if rel is None else rel)


def _walk(
    top: Path,
    root: Path,
    exclude: pathspec.GitIgnoreSpec,
    respect_gitignore: bool,
    errors: list[str],
    skipped: list[str],
) -> Iterator[str]:
    """The ``.py`` files under ``top`` (as strings). Symbolic links to directories are not
    followed; a ``.py`` that is not a regular file (a named pipe, a socket: reading one would
    wait forever) is an error; a link to a file outside both ``top`` and ``root`` is skipped
    with a warning (a fix must not be written outside the project), and a link that leads
    nowhere (dangling, a loop) is an error."""
    ignores = _IgnoreTree()
    if respect_gitignore:
        git_root = _git_root(top)
        if git_root is not None:
            # .gitignore files above the starting directory apply to it too
            for directory in reversed(top.parents):
                if directory == git_root or git_root in directory.parents:
                    ignores.load(directory)
            if ignores.ignored(top, True):
                # an ignored directory named on the command line is checked, like a named file
                ignores = _IgnoreTree()
    inside = tuple(str(folder) + os.sep for folder in {top.resolve(), root.resolve()})

    def left_out(path: str, is_dir: bool) -> bool:
        """Excluded by the configuration, or ignored by git."""
        if _matches(path, root, exclude, is_dir):
            return True
        return respect_gitignore and ignores.ignored(path, is_dir)

    pending = [str(top)]
    while pending:
        dirpath = pending.pop()
        try:
            with os.scandir(dirpath) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as exc:
            errors.append(f"{exc.filename or dirpath}: cannot list directory: {exc.strerror}")
            continue
        if respect_gitignore and any(entry.name == ".gitignore" for entry in entries):
            ignores.load(dirpath)
        subdirectories = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                if name in DEFAULT_EXCLUDE:
                    continue
                if not left_out(entry.path, True):
                    subdirectories.append(entry.path)
                continue
            if not name.endswith(".py"):
                continue
            file = entry.path
            if left_out(file, False):
                continue
            problem = _not_a_source(entry, inside)
            if problem is None:
                problem = _undecodable_name(file)
            if problem is None:
                yield file
                continue
            if not problem:
                continue
            shown = _printable(display_path(Path(file), Path.cwd()))
            if problem.startswith("a symbolic link to"):
                skipped.append(f"{shown}: {problem}; skipped")
            else:
                errors.append(f"{shown}: {problem}; skipped")
        pending.extend(reversed(subdirectories))


def _undecodable_name(path: str) -> str | None:
    """A file name the file system holds as bytes that are not UTF-8 (Python keeps them as
    surrogates): no module can have it, and no report, diff or cache can name it as text."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8"
    return None


def _printable(path: str) -> str:
    """``path`` with the bytes of a name that is not UTF-8 shown as escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _not_a_source(entry: os.DirEntry[str], inside: tuple[str, ...]) -> str | None:
    """Why a directory entry named ``*.py`` is not a file to read, or None; "" for a link
    to a directory (skipped without a word, as links to directories are)."""
    try:
        if not entry.is_symlink():
            if entry.is_file(follow_symlinks=False):
                return None
            return f"not a regular file ({_kind(entry.path)})"
        target = os.path.realpath(entry.path)
        if not os.path.exists(target):
            return "a symbolic link that leads nowhere (dangling, or a loop)"
        if not target.startswith(inside):
            return f"a symbolic link to a file outside the project ({target})"
        if os.path.isdir(target):
            return ""  # a link to a directory: not followed, as before (no message)
        return None if os.path.isfile(target) else f"links to {_kind(target)}"
    except OSError as exc:
        return exc.strerror or "cannot stat"


def _matches(path: Path | str, root: Path, exclude: pathspec.GitIgnoreSpec, is_dir: bool) -> bool:
    if not exclude.patterns:
        return False
    rel = relative(path, root)
    if rel is None:
        rel = Path(path).as_posix()
    return exclude.match_file(rel + "/" if is_dir else rel)


def relative(path: Path | str, base: Path | str) -> str | None:
    """``path`` relative to ``base`` in POSIX form, or None when it is not under it: what
    ``Path.relative_to`` says for absolute paths, with string operations (the walk asks
    this for every file and directory)."""
    text, prefix = str(path), str(base)
    if text == prefix:
        return "."
    if not prefix.endswith(os.sep):
        prefix += os.sep
    if not text.startswith(prefix):
        return None
    rest = text[len(prefix) :]
    return rest if os.sep == "/" else rest.replace(os.sep, "/")


#: directories whose files are tests, or documentation (examples that may show a bug)
TEST_DIRECTORIES = frozenset({"tests", "test", "docs", "doc"})


def is_test_path(rel: str) -> bool:
    """Tests or documentation, by where the file lives (``rel``: the path relative to the
    project root): under a ``tests``, ``test``, ``docs`` or ``doc`` directory, ``test_*.py``,
    ``*_test.py``, ``conftest.py``. Fixes must not change what a test measures (a test may
    block the loop on purpose) nor what an example shows (a snippet of the bug it explains)."""
    *folders, name = rel.split("/")
    if any(folder in TEST_DIRECTORIES for folder in folders):
        return True
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


@functools.lru_cache(maxsize=1024)
def _work_tree(directory: str) -> str | None:
    """The top of the git work tree holding ``directory`` (the nearest ``.git`` above it)."""
    current = directory
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def patch_path(path: Path, cwd: Path, root: Path | None) -> str:
    """How a diff names ``path`` so that it applies where people apply patches: relative to
    the top of its git work tree (``git apply`` reads paths from there, wherever it runs),
    else to the working directory, else to the project root (never ``../x.py``)."""
    absolute = path.absolute()
    top = _work_tree(str(absolute.parent))
    for base in (top, str(cwd), str(root) if root is not None else None):
        if base is not None:
            rel = relative(absolute, Path(base))
            if rel is not None:
                return rel
    return absolute.as_posix().lstrip("/")


def display_path(path: Path, cwd: Path) -> str:
    rel = relative(path, cwd)
    return path.as_posix() if rel is None else rel
