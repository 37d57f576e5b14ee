"""The docs stay true: the README's sample output is what `hullwatch run` prints (to a tolerance),
every example in the docs and in `--help` parses, and the cheap ones run."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shlex
from pathlib import Path

import pytest

from hullwatch.tools.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = sorted((ROOT / "docs").glob("*.md"))

#: verbs cheap enough to run from a docs example (well under a second each)
CHEAP = {"scenarios", "dictionary", "example", "--version"}


# ---------------------------------------------------------------------------------------------
# the README's sample output against the real output of the main job


#: one figure: "2 h 52 min", a clock "20:06:09.5" / "1:55.1", or a plain number
_FIGURE = re.compile(r"(?P<h>\d+) h (?P<min>\d+) min"
                     r"|(?P<a>\d+):(?P<b>\d\d)(?::(?P<c>\d\d))?(?P<frac>\.\d+)?"
                     r"|(?P<n>\d+(?:\.\d+)?)")


def _figures(line: str) -> tuple[str, list[tuple[str, float]]]:
    """A line's shape (its text with every figure replaced) and its figures in line order, each
    tagged ``t`` (a clock or a duration, in seconds) or ``n`` (any other number)."""
    figures: list[tuple[str, float]] = []

    def one(m: re.Match[str]) -> str:
        if m.group("h") is not None:
            figures.append(("t", int(m.group("h")) * 3600 + int(m.group("min")) * 60))
            return "#H"
        if m.group("a") is not None:
            a, b, c = int(m.group("a")), int(m.group("b")), m.group("c")
            seconds = a * 3600 + b * 60 + int(c) if c is not None else a * 60 + b
            figures.append(("t", seconds + float(m.group("frac") or 0.0)))
            return "#T"
        figures.append(("n", float(m.group("n"))))
        return "#"

    return _FIGURE.sub(one, line), figures


def _close(kind: str, readme: float, real: float) -> bool:
    if kind == "t":  # clocks and durations: within 30 s, or 10 % for long ones (reserve time)
        return abs(readme - real) <= max(30.0, 0.10 * abs(readme))
    return abs(readme - real) <= max(0.06, 0.15 * abs(readme))  # other figures: 15 %


def _readme_sample() -> list[str]:
    sample = [b for lang, b in _code_blocks(README) if lang == "text" and any("verdict:" in x for x in b)]
    assert sample, "README: no ```text block with the sample output of hullwatch run"
    return sample[0]


#: the wall-clock figures of the capture line vary from run to run and machine to machine
_WALL = re.compile(r"\d+(?:\.\d+)? s wall, \d+x real time")


def test_readme_sample_output_is_what_hullwatch_run_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The README's quick-start output: same lines, same events in the same order, same words;
    the figures (times, rates, sizes) within a tolerance, so an FDIR retune that moves them a
    little keeps the README valid, and one that changes the story fails here."""
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-progress"]) == 0
    real = capsys.readouterr().out.rstrip("\n").splitlines()
    readme = _readme_sample()
    assert [line.split("  ")[-1].split(":")[0][:20] for line in readme] == \
        [line.split("  ")[-1].split(":")[0][:20] for line in real], "event sequence differs:\n" + "\n".join(real)
    for want, got in zip(readme, real):
        want, got = _WALL.sub("WALL", want), _WALL.sub("WALL", got)
        shape_w, fig_w = _figures(want)
        shape_g, fig_g = _figures(got)
        assert shape_w == shape_g, f"README line\n  {want}\nreal output\n  {got}"
        for (kind, a), (_, b) in zip(fig_w, fig_g):
            assert _close(kind, a, b), f"figure {a:g} in the README is {b:g} now:\n  {want}\n  {got}"
    assert (tmp_path / "soyuz-ms09-seed7.tm").stat().st_size > 0


def test_figures_parser_reads_clocks_and_hours() -> None:
    shape, figures = _figures("at T+1:55.1 reserve 2 h 52 min, 21.8 kg/day")
    assert shape == "at T+#T reserve #H, # kg/day"
    assert figures == [("t", 115.1), ("t", 10320), ("n", 21.8)]


# ---------------------------------------------------------------------------------------------
# every example parses; the cheap ones run


def _code_blocks(text: str) -> list[tuple[str, list[str]]]:
    """The fenced code blocks of a Markdown text: (language, lines), fences paired in order."""
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    lang = ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                lang, current = line.strip()[3:].strip(), []
            else:
                blocks.append((lang, current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _doc_commands(text: str) -> list[str]:
    """``hullwatch ...`` lines of the code blocks (``$ `` prompts, comments and a trailing ``&``
    dropped); synopsis lines with ``[optional]`` parts are left out."""
    lines = []
    for lang, block in _code_blocks(text):
        if lang not in ("sh", "console", "bash", ""):
            continue
        for line in block:
            line = line.strip()
            if lang == "console" or line.startswith("$ "):  # a transcript: only prompts are commands
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = re.split(r"\s+#", line)[0].strip().rstrip("&").strip()
            if line.startswith("hullwatch ") and "[" not in line and "VERB" not in line:
                lines.append(line)
    return lines


def _help_commands() -> list[tuple[str, str]]:
    found = []
    for verb, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        for line in getattr(module, "EXAMPLES", "").splitlines():
            line = line.strip()
            if line.startswith("hullwatch "):
                found.append((verb, re.split(r"\s{2,}|\s#", line)[0]))
    return found


def _argvs(line: str) -> list[list[str]]:
    """Each command of a line (``a && b``, ``a | b``), without redirections."""
    out = []
    for part in line.split("&&"):
        words = shlex.split(part.split(" | ")[0].split(" > ")[0].split(" >> ")[0])
        if words and words[0] == "hullwatch":
            out.append(words[1:])
    return out


DOC_LINES = [(path.name, line) for path in [ROOT / "README.md", *DOCS]
             for line in _doc_commands(path.read_text())]


@pytest.mark.parametrize("where, line", DOC_LINES)
def test_every_docs_example_parses(where: str, line: str) -> None:
    for argv in _argvs(line):
        build_parser().parse_args(argv)


@pytest.mark.parametrize("verb, line", _help_commands())
def test_every_help_example_parses(verb: str, line: str) -> None:
    for argv in _argvs(line):
        build_parser().parse_args(argv)


def test_every_verb_has_help_examples() -> None:
    verbs = {verb for verb, _ in _help_commands()}
    assert set(COMMANDS) - {"dictionary", "scenarios"} <= verbs


def _run_line(line: str) -> int:
    """Run a docs line in process: ``> FILE`` redirection honoured, exit status returned."""
    target = line.split(" > ")[1].strip() if " > " in line else None
    (argv,) = _argvs(line)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    if target:
        Path(target).write_text(buf.getvalue())
    return code


def test_cheap_readme_examples_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's cheap lines run as written, in order, in an empty folder (as a user who
    installed the package has no clone): `example board.toml > board.toml` then
    `flash board.toml --dry-run`, and so on."""
    monkeypatch.chdir(tmp_path)
    ran = []
    for line in _doc_commands(README):
        words = shlex.split(line.split(" > ")[0])
        verb = words[1]
        dry_flash = verb == "flash" and "--dry-run" in words
        if verb not in CHEAP and not dry_flash and not (verb == "campaign" and "--list" in words):
            continue
        if "&&" in line or "|" in line:
            continue
        assert _run_line(line) == 0, line
        ran.append(line)
    assert any("example board.toml" in r for r in ran) and any("--dry-run" in r for r in ran)
    assert (tmp_path / "board.toml").read_text() == (ROOT / "examples" / "board.toml").read_text()


def test_documentation_section_links_a_page_per_use() -> None:
    section = README.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", section))
    assert {f"docs/{p.name}" for p in DOCS} <= linked
    for link in linked:
        assert (ROOT / link).is_file(), link


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert re.fullmatch(r"hullwatch \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def test_shipped_board_example_is_the_repository_one() -> None:
    shipped = ROOT / "tools" / "examples" / "board.toml"
    assert shipped.read_bytes() == (ROOT / "examples" / "board.toml").read_bytes(), \
        "tools/examples/board.toml (shipped) and examples/board.toml differ: copy one over the other"


def test_example_verb_prints_the_fdir_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example", "fdir.toml"]) == 0
    assert capsys.readouterr().out == (ROOT / "firmware" / "fdir" / "defaults.toml").read_text()
    assert main(["example"]) == 0
    listing = capsys.readouterr().out
    assert "board.toml" in listing and "fdir.toml" in listing


def test_example_output_is_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.toml"
    assert main(["example", "fdir.toml", "-o", str(out)]) == 0
    assert main(["example", "fdir.toml", "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["example", "fdir.toml", "-o", str(out), "--force"]) == 0


if os.name != "posix":  # pragma: no cover - the suite runs on Linux
    pytest.skip("posix only", allow_module_level=True)
