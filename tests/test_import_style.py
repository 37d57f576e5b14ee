"""Imports sit at the top of modules (docs/architecture.md, "Imports").

An import inside a function is allowed only where it is deferred on purpose (a heavy optional
dependency such as matplotlib, pyarrow or dask; what ``hullwatch --help`` must not pay for; what
pytest must not load in every session through the HIL plugin; a path most callers never take),
and then a comment on the import's line, or on the line just above it, says so and why: it
contains the word ``deferred`` (``# deferred: matplotlib costs 0.3 s and only --plot needs it``).
Every import needs its own: the comment above one import does not cover the next.

The checker reads the source by AST (``ast``) and finds comments with ``tokenize``, so a ``#``
inside a string is not a comment.
"""

from __future__ import annotations

import ast
import fnmatch
import io
import sys
import tokenize
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
#: the package's source folders (the four code folders of the ``hullwatch`` namespace)
LAYERS = ("firmware", "hal", "sim", "tools")
#: the folders checked: the package's, and the benchmarks
CHECKED = (*LAYERS, "bench")

#: Files exempt from the check while they are being restructured (fnmatch patterns relative to
#: the repository root; remove an entry as its files comply). Empty: every file complies.
PENDING: tuple[str, ...] = ()

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_IMPORTS = (ast.Import, ast.ImportFrom)


def _deferred_comment_lines(source: str) -> set[int]:
    """Line numbers (1-based) holding a comment that says ``deferred``."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0] for tok in tokens if tok.type == tokenize.COMMENT and "deferred" in tok.string.lower()}


def _bodies(node: ast.AST) -> Iterator[list[ast.stmt]]:
    """The statement lists directly inside ``node`` (body, else, finally, except and case bodies)."""
    for name in ("body", "orelse", "finalbody"):
        value = getattr(node, name, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            yield value
    for handler in getattr(node, "handlers", ()):
        yield handler.body
    for case in getattr(node, "cases", ()):
        yield case.body


def uncommented_function_imports(source: str) -> list[int]:
    """Lines of the import statements inside a function (at any depth: methods, nested functions,
    under ``if``/``try``/``with``) with no ``deferred`` comment on their lines (any line of a
    parenthesised import) nor on the line just above. Module- and class-level imports are not
    looked at."""
    comments = _deferred_comment_lines(source)
    found: list[int] = []

    def visit(statements: list[ast.stmt], in_function: bool) -> None:
        for stmt in statements:
            if isinstance(stmt, _IMPORTS) and in_function:
                end = stmt.end_lineno or stmt.lineno
                if not any(line in comments for line in range(stmt.lineno - 1, end + 1)):
                    found.append(stmt.lineno)
            for body in _bodies(stmt):
                visit(body, in_function or isinstance(stmt, _FUNCTIONS))

    visit(ast.parse(source).body, False)
    return found


def _pending(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, pattern) for pattern in PENDING)


def violations(root: Path, layers: tuple[str, ...] = CHECKED) -> list[str]:
    """``path:line: statement`` for every uncommented function-level import under ``root``'s
    code folders and benchmarks, the :data:`PENDING` files left out."""
    out = []
    for layer in layers:
        for path in sorted((root / layer).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if _pending(rel):
                continue
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            for line in uncommented_function_imports(source):
                out.append(f"{rel}:{line}: {lines[line - 1].strip()}")
    return out


def test_every_function_level_import_says_why_it_is_deferred() -> None:
    found = violations(ROOT)
    assert found == [], ("imports inside functions without a comment saying why they are deferred "
                         "(move them to the top of the module, or say why not):\n" + "\n".join(found))


def test_the_checker_catches_an_uncommented_import() -> None:
    # the probe: every way an import can sit in a function, and each kind of comment
    probe = '''\
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from json import JSONDecoder


def late():
    import sqlite3
    return sqlite3


def commented():
    import json  # deferred: a comment on its line
    import csv
    # deferred: heavy
    import decimal
    import fractions
    # a comment that gives no reason to defer
    import statistics
    return json, csv, decimal, fractions, statistics


def in_branches(flag):
    if flag:
        import gzip
    try:  # deferred: optional
        import bz2
    except ImportError:
        import lzma
    with open(os.devnull) as f:
        s = "# deferred: a string, not a comment"
        from pathlib import Path
    return gzip, bz2, lzma, f, s, Path


class Holder:
    import array

    def method(self):
        def inner():
            from collections import (
                OrderedDict,
                deque,  # deferred: a comment inside the statement counts
            )
            import heapq
            return OrderedDict, deque, heapq
        import bisect
        return inner, bisect
'''
    lines = probe.splitlines()
    flagged = [lines[n - 1].strip() for n in uncommented_function_imports(probe)]
    assert flagged == [
        "import sqlite3",            # a bare import in a function
        "import fractions",          # the comment above decimal covers decimal only
        "import statistics",         # a comment, but not one that says it is deferred
        "import gzip",               # under an if
        "import lzma",               # in an except: the comment on `try:` covers only bz2
        "from pathlib import Path",  # "# deferred" inside a string is no comment
        "import heapq",              # the comment inside the statement above covers that one only
        "import bisect",             # in a method
    ]
    # "import csv" passes: the comment on the line above it (json's) says deferred; module- and
    # class-level imports (os, TYPE_CHECKING's JSONDecoder, array) are not looked at


def test_the_tree_walk_reports_path_and_line_and_skips_only_pending_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "PENDING", ("tools/captures/*",))
    bad = "def f():\n    import json\n    return json\n"
    for folder in ("tools/cli", "tools/captures", "tools/ground", "hal", "bench"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "tools" / "cli" / "verb.py").write_text(bad)
    (tmp_path / "tools" / "captures" / "reader.py").write_text(bad)  # pending: skipped
    (tmp_path / "tools" / "ground" / "bulk.py").write_text(bad)      # checked: reported
    (tmp_path / "hal" / "wire.py").write_text(bad)                   # checked: reported
    (tmp_path / "hal" / "ports.py").write_text("import json\n\n\ndef f():\n    return json\n")
    (tmp_path / "bench" / "speed.py").write_text(bad)
    assert violations(tmp_path, ("hal", "tools")) == ["hal/wire.py:2: import json",
                                                      "tools/cli/verb.py:2: import json",
                                                      "tools/ground/bulk.py:2: import json"]
    assert violations(tmp_path)[-1] == "bench/speed.py:2: import json"


def test_every_pending_entry_still_names_a_file() -> None:
    # a stale entry would silently exempt whatever is later put at that path
    files = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py") if ".venv" not in p.parts]
    stale = [pattern for pattern in PENDING if not any(fnmatch.fnmatch(f, pattern) for f in files)]
    assert stale == []


# --------------------------------------------------------------------------------------------
# The command line imports only what the command needs


LOADED = """
import contextlib, io, json, sys
from hullwatch.tools.cli import COMMANDS, main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main({argv!r})
verbs = sorted(v for v, m in COMMANDS.items() if m in sys.modules)
print(json.dumps([verbs, sorted(x for x in ("numpy", "construct", "matplotlib", "pyarrow") if x in sys.modules)]))
"""


def _loaded_by(argv: list[str]) -> tuple[list[str], list[str]]:
    """(verb modules, heavy libraries) imported by ``hullwatch ARGV`` in a fresh interpreter."""
    import json
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", LOADED.format(argv=argv)], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    verbs, libraries = json.loads(result.stdout.strip().splitlines()[-1])
    return verbs, libraries


def test_help_imports_no_verb_module_and_a_command_only_its_own() -> None:
    assert _loaded_by(["--help"]) == ([], [])
    assert _loaded_by(["scenarios"]) == (["scenarios"], [])
    verbs, libraries = _loaded_by(["decode", "--help"])
    assert verbs == ["decode"] and "pyarrow" not in libraries  # pyarrow: only for csv/parquet


def test_the_verb_list_needs_no_verb_module_and_reads_as_the_complete_parser() -> None:
    from hullwatch.tools.cli import COMMANDS, SUMMARIES, build_parser

    assert list(SUMMARIES) == list(COMMANDS)
    assert build_parser([]).format_help() == build_parser().format_help()
