"""Hold the rules' pre-filters to their promise on a real corpus: never hide a finding.

Every file under DIR is analysed twice with all rules and the project index, once as asyncfix
runs (the text needles and the stdlib-``ast`` pre-filters decide which rules run, and a file
no rule wants is never parsed with LibCST) and once with every pre-filter switched off. The
findings must be the same; the script prints every file where they differ and exits 1 if
there is one. It also prints how many files each pre-filter lets through.

    python scripts/prefilter_check.py ~/.cache/asyncfix-corpus/ha [--jobs 2] [--every K]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asyncfix import engine  # noqa: E402
from asyncfix.codemods import RULES  # noqa: E402
from asyncfix.codemods.base import ModelRule, Rule  # noqa: E402
from asyncfix.config import Config  # noqa: E402
from asyncfix.engine import detect as detect_module  # noqa: E402
from asyncfix.engine import process as process_module  # noqa: E402
from asyncfix.files import SourceError, decode  # noqa: E402

Outcome = tuple[str, list[tuple[int, str]], list[tuple[int, str]], list[str], str | None]


def _findings(text: str, path: str) -> list[tuple[int, str]]:
    project = process_module._project_for(path, RULES)
    analysis = engine.analyse(text, RULES, (3, 10), project)
    return [(analysis.span(hit).line, hit.rule.code) for hit in analysis.hits]


def _check(path: str) -> Outcome:
    try:
        text = decode(Path(path).read_bytes()).text
    except (OSError, SourceError) as exc:
        return path, [], [], [], str(exc)
    try:
        tree = detect_module._ast_parse(text)
        project = process_module._project_for(path, RULES)
        # the rules that ask the semantic model have no pre-filter: they never need LibCST
        # to report, only to fix
        passed = [
            rule.code
            for rule in RULES
            if not issubclass(rule, ModelRule)
            and rule.may_apply(text)
            and (tree is None or rule.may_apply_to_ast(tree, project))
        ]
        filtered = _findings(text, path)
        saved = Rule.__dict__["may_apply"], {r: r.__dict__.get("may_apply_to_ast") for r in RULES}
        Rule.may_apply = classmethod(lambda cls, text: True)  # type: ignore[assignment,method-assign]
        for rule in RULES:
            rule.may_apply_to_ast = classmethod(lambda cls, tree, project: True)  # type: ignore[assignment,method-assign]
        try:
            unfiltered = _findings(text, path)
        finally:
            Rule.may_apply = saved[0]  # type: ignore[method-assign]
            for rule, method in saved[1].items():
                if method is None:
                    del rule.may_apply_to_ast
                else:
                    rule.may_apply_to_ast = method  # type: ignore[method-assign]
    except Exception as exc:  # a parse error or a bug: report it, go on
        return path, [], [], [], f"{type(exc).__name__}: {exc}"
    return path, filtered, unfiltered, passed, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--every", type=int, default=1, help="check every K-th file only")
    args = parser.parse_args()
    started = time.perf_counter()
    config = Config(root=args.directory.absolute())
    everything, _ = engine.plan([args.directory], config)
    index = engine.build_index(everything, config, args.jobs)
    files = [str(path) for path in everything[:: args.every]]
    differences = errors = parsed = 0
    passes: Counter[str] = Counter()
    with ProcessPoolExecutor(
        max_workers=args.jobs, initializer=process_module._set_index, initargs=(index,)
    ) as pool:
        for path, filtered, unfiltered, passed, error in pool.map(_check, files, chunksize=8):
            if error is not None:
                errors += 1
                print(f"NOT ANALYSED {path}: {error}")
                continue
            passes.update(passed)
            parsed += bool(passed)
            if filtered != unfiltered:
                differences += 1
                hidden = sorted(set(unfiltered) - set(filtered))
                extra = sorted(set(filtered) - set(unfiltered))
                print(f"DIFFERENT {path}: hidden {hidden}, extra {extra}")
    print(
        f"{len(files)} files, {errors} not analysable, {parsed} passed some pre-filter "
        "(parsed with LibCST in a check)"
    )
    for code, count in sorted(passes.items()):
        print(f"  {code}: {count}")
    print(f"{differences} files with different findings ({time.perf_counter() - started:.0f} s)")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
