"""Every example in README.md and docs/*.md runs as written and prints what it shows.

Each Markdown file is one test: its examples run in file order, in one fresh empty folder, so a
file must make its own data first (``$ journeymodel sample-data -o events.parquet``). Blocks are
parsed with Sybil (its Markdown fence lexer, skip directive and Python evaluation); this module
adds the shell transcripts, the output checks and the regeneration mode.

How each block of the docs is treated
-------------------------------------
- ```` ```python ````: run, in file order, in one namespace per file (like one Python session).
  When the next block is an ```` ```output ```` block, the text shown there is what the Python
  block prints (its stdout), compared as below.
- ```` ```console ````: a shell transcript. Every line that starts with ``$ `` is run with bash in
  the file's folder (a line ending in ``\\`` continues on the next one), with ``journeymodel``
  and ``python`` of this environment first on ``PATH``. The lines after a command, up to the next
  ``$ `` line, are what it prints (stdout and stderr together, as a terminal shows them). A
  command must exit 0; to show a failing one, write it as ``cmd; echo "exit $?"``.
- A block whose info string names a file, e.g. ```` ```toml file=journeymodel.toml ````, is
  written to that file in the folder when its turn comes (input files shown in full: a config
  file, a small CSV export).
- ``...`` in shown output stands for anything (doctest's ELLIPSIS): a line of only ``...`` for
  lines left out, ``...`` inside a line for what varies (timings, paths). Trailing spaces and
  trailing blank lines are ignored; everything else must be equal. So a program's own ``...``
  (pandas abbreviating a wide frame) would match anything there: print frames with
  ``to_string()`` in the docs.
- ```` ```bash ````, ```` ```text ```` and unlabelled blocks are never run: command synopses,
  install commands, benchmark transcripts (they take minutes; each says so beside it). A line
  ``$ journeymodel ...`` may not appear in them (``test_every_shown_command_runs``), so any
  command shown with a ``$`` prompt is one that runs here.
- ``<!-- skip: next "reason" -->`` (Sybil's skip directive) before a python or console block
  shows it without running it; the reason is required and is reported as the skip reason.

Commands run with ``COLUMNS=100`` (rich tables are laid out for a 100-column terminal),
``NO_COLOR=1``, ``TZ=UTC`` and ``PYTHONUNBUFFERED=1`` (warnings on stderr appear where they
arise, as in a terminal); the folder's path in what they print is shown as ``.``.

Regenerating the shown outputs after a code change
--------------------------------------------------
    JM_DOCS_UPDATE=1 .venv/bin/python -m pytest tests/test_docs.py

rewrites every output that differs, in place, from the real run: ``...`` lines are kept (they
absorb the lines around them that changed), and so is a line with ``...`` inside that still
matches. Review the result with ``git diff``. Without ``JM_DOCS_UPDATE`` the test fails on any
difference and shows the first lines that differ.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
import subprocess
import sys
import time
import traceback
import unittest
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sybil import Document, Region, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.markdown import SkipParser
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Files whose examples take minutes: run with `-m slow` only (none today; see README).
SLOW_FILES: set[str] = set()
UPDATE = os.environ.get("JM_DOCS_UPDATE", "") not in ("", "0")
WILDCARD = "..."
RUN_LANGUAGES = {"python", "console", "output"}
NEVER_RUN = {"", "bash", "sh", "text", "json", "toml"}


# --------------------------------------------------------------------------- matching outputs
def _norm(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.expandtabs().splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _matches(want: str, got: str) -> bool:
    return doctest._ellipsis_match(want, got) if WILDCARD in want else want == got


def output_matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows (``...`` matching anything)."""
    return _matches("\n".join(_norm(expected)), "\n".join(_norm(actual)))


def _align(want: list[str], got: list[str]) -> list[tuple[int, int]]:
    """Longest in-order pairing of shown lines with printed lines that match them."""
    n, m = len(want), len(got)
    ok = [[w.strip() != WILDCARD and _matches(w, g) for g in got] for w in want]
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1],
                             best[i + 1][j + 1] + 1 if ok[i][j] else 0)
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if ok[i][j] and best[i][j] == best[i + 1][j + 1] + 1:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _keep_ellipsis(old: str, new: str) -> str:
    """``new``, with the number that ``old`` showed as ``...`` (a timing) shown as ``...`` again."""
    if WILDCARD not in old:
        return new
    post = old.split(WILDCARD, 1)[1]
    if not new.endswith(post):
        return new
    head = new[:len(new) - len(post)]
    number = re.search(r"[-+]?\d[\d.,:]*$", head)
    if number is None:
        return new
    return head[:number.start()] + WILDCARD + post


def _refill_gap(want: list[str], got: list[str]) -> list[str]:
    """New text for shown lines that no longer match: printed lines, keeping ``...`` lines."""
    cuts = [k for k, line in enumerate(want) if line.strip() == WILDCARD]
    if not cuts:
        if len(want) == len(got):
            return [_keep_ellipsis(w, g) for w, g in zip(want, got, strict=True)]
        return got
    head = min(cuts[0], len(got))
    tail = min(len(want) - cuts[-1] - 1, len(got) - head)
    return got[:head] + [want[cuts[0]]] + (got[len(got) - tail:] if tail else [])


def refresh(expected: str, actual: str) -> str:
    """``expected`` rewritten to show ``actual``, keeping its ``...`` where they still fit."""
    if output_matches(expected, actual):
        return expected
    want, got = _norm(expected), _norm(actual)
    out: list[str] = []
    i = j = 0
    for wi, gj in [*_align(want, got), (len(want), len(got))]:
        out += _refill_gap(want[i:wi], got[j:gj])
        if wi < len(want):
            out.append(want[wi])
        i, j = wi + 1, gj + 1
    text = "\n".join(out) + ("\n" if out else "")
    return text if output_matches(text, actual) else "\n".join(got) + ("\n" if got else "")


def first_difference(expected: str, actual: str, context: int = 3) -> str:
    """A short report: where the printed text stops matching what the docs show."""
    import difflib

    diff = difflib.unified_diff(_norm(expected), _norm(actual), "shown in the docs", "printed",
                                n=context, lineterm="")
    return "\n".join(list(diff)[:60])


# --------------------------------------------------------------------------- parsing the docs
@dataclass
class Command:
    text: str        # the command as bash gets it (continuation lines joined)
    lines: list[str]  # the command lines as written, prompts included
    shown: str       # the output shown under it
    line: int        # line number of the command in the file


@dataclass
class Block:
    kind: str                     # "python", "console" or "file"
    line: int                     # line of the opening fence
    source: str = ""              # python source, or a file block's content
    file: str = ""                # a file block's file name
    commands: list[Command] = field(default_factory=list)
    shown: str | None = None      # python: the ```output block's text, if any
    span: tuple[int, int] | None = None  # where the checked text sits in the file


_INFO = re.compile(r"(?P<language>[^\n]*)$\n", re.MULTILINE)


def fenced_blocks(document: Document):
    """(language, start, end, content start, content) of every fenced block, in file order."""
    lexer = RawFencedCodeBlockLexer(info_pattern=_INFO)
    for region in sorted(lexer(document), key=lambda r: r.start):
        source = region.lexemes["source"]
        begin = region.start + source.offset
        yield region.lexemes["language"].strip(), region.start, region.end, begin, str(source)


def _file_target(info: str) -> str | None:
    """The file name of a block labelled ``LANG file=NAME`` (a plain name, no folders)."""
    m = re.fullmatch(r"\S+\s+file=([\w.-]+)", info)
    return m.group(1) if m else None


def _line_of(document: Document, position: int) -> int:
    return document.text.count("\n", 0, position) + 1


def parse_console(content: str, first_line: int) -> list[Command]:
    commands: list[Command] = []
    lines = content.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if not line.startswith("$ "):
            raise ValueError(f"line {first_line + k}: console block text before any `$ ` "
                             f"command: {line!r}")
        cmd_lines = [line]
        while cmd_lines[-1].endswith("\\") and k + 1 < len(lines):
            k += 1
            cmd_lines.append(lines[k])
        start = k + 1
        k += 1
        while k < len(lines) and not lines[k].startswith("$ "):
            k += 1
        text = "\n".join(cmd_lines)[2:]
        shown = "".join(f"{out}\n" for out in lines[start:k])
        commands.append(Command(text, cmd_lines, shown, first_line + start - len(cmd_lines)))
    return commands


class DocRun:
    """Parses one Markdown file into runnable blocks and runs them, collecting differences."""

    def __init__(self, path: Path, workdir: Path):
        self.path = path
        self.workdir = workdir
        self.failures: list[str] = []  # shown output differs from the printed one
        self.errors: list[str] = []    # an example raised, or a command exited non-zero
        self.edits: list[tuple[int, int, str]] = []
        self.skipped: list[str] = []
        self.ran = 0
        self.timings: list[tuple[float, str]] = []  # (seconds, what) per command and block

    # Sybil parser: yields one Region per runnable block
    def __call__(self, document: Document):
        blocks = list(fenced_blocks(document))
        k = 0
        while k < len(blocks):
            lang, start, end, begin, content = blocks[k]
            line = _line_of(document, start)
            target = _file_target(lang)
            if target:
                yield Region(start, end, Block("file", line, source=content, file=target),
                             self.evaluate)
            elif lang == "python":
                block = Block("python", line, source=content)
                if k + 1 < len(blocks) and blocks[k + 1][0] == "output" and \
                        not document.text[end:blocks[k + 1][1]].strip():
                    _, _, end, obegin, shown = blocks[k + 1]
                    block.shown, block.span = shown, (obegin, obegin + len(shown))
                    k += 1
                yield Region(start, end, block, self.evaluate)
            elif lang == "console":
                block = Block("console", line, commands=parse_console(content, line + 1),
                              span=(begin, begin + len(content)))
                yield Region(start, end, block, self.evaluate)
            elif lang == "output":
                raise ValueError(f"{self.path.name}:{line}: an ```output block must follow a "
                                 "```python block")
            k += 1

    def evaluate(self, example) -> None:
        block: Block = example.parsed
        self.ran += 1
        t0 = time.perf_counter()
        if block.kind == "file":
            (self.workdir / block.file).write_text(block.source, encoding="utf-8")
        elif block.kind == "python":
            self._run_python(example, block)
        else:
            self._run_console(block)
        if block.kind == "python":
            self.timings.append((time.perf_counter() - t0, f"python block, line {block.line}"))

    def _run_python(self, example, block: Block) -> None:
        code = compile(pad(block.source, block.line), str(self.path), "exec", dont_inherit=True)
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            exec(code, example.namespace)
        example.namespace.pop("__builtins__", None)
        if block.shown is not None:
            self._check(block.line, "python block", block.shown, stdout.getvalue(), block)

    def _run_console(self, block: Block) -> None:
        new_text = []
        for cmd in block.commands:
            t0 = time.perf_counter()
            proc = subprocess.run(["bash", "-c", cmd.text], cwd=self.workdir, env=_env(),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
            self.timings.append((time.perf_counter() - t0, f"line {cmd.line}: {cmd.text[:60]}"))
            printed = proc.stdout.replace(str(self.workdir) + os.sep, "").replace(
                str(self.workdir), ".")
            if proc.returncode != 0:
                self.errors.append(
                    f"{self.path.name}:{cmd.line}: `{cmd.text}` exited {proc.returncode} "
                    f"(show a failing command as `cmd; echo \"exit $?\"`):\n{printed[-3000:]}")
            shown = cmd.shown
            if not output_matches(shown, printed):
                self.failures.append(f"{self.path.name}:{cmd.line}: `{cmd.text}`\n"
                                     + first_difference(shown, printed))
                shown = refresh(shown, printed)
            new_text += [*cmd.lines, *_norm(shown)]
        self._record_edit(block, "\n".join(new_text) + "\n")

    def _check(self, line: int, what: str, shown: str, printed: str, block: Block) -> None:
        if output_matches(shown, printed):
            return
        self.failures.append(f"{self.path.name}:{line}: {what}\n"
                             + first_difference(shown, printed))
        self._record_edit(block, refresh(shown, printed))

    def _record_edit(self, block: Block, text: str) -> None:
        start, end = block.span
        if text != self.text[start:end]:
            self.edits.append((start, end, text))

    def write_edits(self) -> None:
        if self.path.read_text(encoding="utf-8") != self.text:
            raise RuntimeError(f"{self.path} changed while its examples ran: not rewritten")
        text = self.text
        for start, end, new in sorted(self.edits, reverse=True):
            text = text[:start] + new + text[end:]
        self.path.write_text(text, encoding="utf-8")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env.update(PATH=bindir + os.pathsep + env.get("PATH", ""), COLUMNS="100", LINES="50",
               NO_COLOR="1", TZ="UTC", PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    for var in ("FORCE_COLOR", "CLICOLOR_FORCE", "PYTEST_CURRENT_TEST", "JM_DOCS_UPDATE"):
        env.pop(var, None)
    return env


def run_doc(path: Path, workdir: Path) -> DocRun:
    """Run every example of ``path`` in ``workdir`` (Python blocks with the working directory
    moved there, as a user would run them)."""
    run = DocRun(path, workdir)
    document = Sybil(parsers=[run, SkipParser()]).parse(path)
    run.text = document.text
    with contextlib.chdir(workdir):
        _run_examples(run, document, path)
    return run


def _run_examples(run: DocRun, document: Document, path: Path) -> None:
    for example in document:
        try:
            example.evaluate()
        except unittest.SkipTest as skip:
            run.skipped.append(f"line {example.line}: {skip}")
        except Exception as exc:
            if not isinstance(example.parsed, Block):
                raise
            frames = traceback.extract_tb(exc.__traceback__)
            where = [f"  {path.name}:{f.lineno}: {f.line}" for f in frames
                     if f.filename == str(path)]
            run.errors.append(f"{path.name}:{example.line}: the example raised "
                              f"{type(exc).__name__}: {exc}\n" + "\n".join(where))
            break  # later examples build on this one


def _doc_params():
    for path in DOC_FILES:
        rel = str(path.relative_to(ROOT))
        marks = [pytest.mark.slow] if rel in SLOW_FILES else []
        yield pytest.param(path, id=rel, marks=marks)


@pytest.mark.parametrize("path", list(_doc_params()))
def test_doc_examples(path: Path, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    run = run_doc(path, tmp_path)
    seconds = time.perf_counter() - t0
    print(f"{path.name}: {run.ran} blocks run, {len(run.skipped)} skipped, {seconds:.1f} s; "
          "slowest: " + "; ".join(f"{t:.1f} s {what}" for t, what in sorted(run.timings)[::-1][:4]))
    if UPDATE and run.edits:
        run.write_edits()
        print(f"rewrote {len(run.edits)} outputs in {path}")
    problems = run.errors + ([] if UPDATE else run.failures)
    if problems:
        pytest.fail(f"{len(problems)} example(s) in {path.name} fail or differ from what runs "
                    "(JM_DOCS_UPDATE=1 rewrites the shown outputs):\n\n"
                    + "\n\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------- the conventions
def test_every_shown_command_runs() -> None:
    """A ``$ journeymodel`` line sits only in a block that runs, and every fence is labelled
    with a language whose treatment is defined above."""
    problems = []
    for path in DOC_FILES:
        document = Document(path.read_text(encoding="utf-8"), str(path))
        for lang, start, _end, _begin, content in fenced_blocks(document):
            line = _line_of(document, start)
            if lang not in RUN_LANGUAGES | NEVER_RUN and not _file_target(lang):
                problems.append(f"{path.name}:{line}: unknown block language {lang!r}")
            if lang in NEVER_RUN and re.search(r"^\s*\$ journeymodel", content, re.MULTILINE):
                problems.append(f"{path.name}:{line}: `$ journeymodel` in a ```{lang} block, "
                                "which never runs: make it ```console")
        for m in re.finditer(r"<!--\s*skip:\s*(.*?)\s*-->", document.text):
            if not re.fullmatch(r"(next|start)\s+\".+\"|end", m.group(1)):
                problems.append(f"{path.name}:{_line_of(document, m.start())}: a skip needs "
                                f"a quoted reason: {m.group(0)}")
    assert not problems, "\n".join(problems)


def test_file_blocks(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```csv file=a.csv\nx,y\n1,2\n```\n\n```console\n$ cat a.csv\nx,y\n1,2\n```\n")
    run = run_doc(doc, tmp_path)
    assert (run.ran, run.errors, run.failures) == (2, [], [])
    assert (tmp_path / "a.csv").read_text() == "x,y\n1,2\n"
    assert _file_target("toml file=journeymodel.toml") == "journeymodel.toml"
    assert _file_target("toml file=../x") is None and _file_target("toml") is None


def test_differences_fail_and_update_rewrites(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("Text.\n\n```console\n$ echo one; echo two\none\nthree\n$ false\n```\n\n"
                   "```python\nx = 6 * 7\nprint(x)\n```\n\n```output\n41\n```\n\n"
                   "```python\nprint(x + 1)\n```\n")
    run = run_doc(doc, tmp_path)
    assert len(run.failures) == 2 and "+two" in run.failures[0] and "-41" in run.failures[1]
    assert len(run.errors) == 1 and "`false` exited 1" in run.errors[0]
    run.write_edits()
    assert doc.read_text() == ("Text.\n\n```console\n$ echo one; echo two\none\ntwo\n$ false\n"
                               "```\n\n```python\nx = 6 * 7\nprint(x)\n```\n\n```output\n42\n"
                               "```\n\n```python\nprint(x + 1)\n```\n")
    rerun = run_doc(doc, tmp_path)
    assert rerun.failures == [] and rerun.ran == 3
    # a Python example that raises stops the file, naming the line
    doc.write_text("```python\n1 / 0\n```\n\n```console\n$ echo never\n```\n")
    run = run_doc(doc, tmp_path)
    assert run.ran == 1 and "ZeroDivisionError" in run.errors[0] and "doc.md:2" in run.errors[0]


def test_skip_directive(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text('<!-- skip: next "takes an hour" -->\n\n```console\n$ false\n```\n\n'
                   "```console\n$ echo ran\nran\n```\n")
    run = run_doc(doc, tmp_path)
    assert run.skipped == ["line 3: takes an hour"] and not run.errors and not run.failures


def test_docs_cover_every_file() -> None:
    assert (ROOT / "README.md") in DOC_FILES and len(DOC_FILES) >= 2


# --------------------------------------------------------------------------- the harness itself
def test_output_matching_and_refresh() -> None:
    assert output_matches("a\n...\nd\n", "a\nb\nc\nd\n")
    assert output_matches("took ... s\n", "took 8.1 s   \n\n")
    assert not output_matches("a\nb\n", "a\nc\n")
    # a changed line next to a `...` line: the `...` stays and the line is refreshed
    shown = "header\nrow 1 old\n...\nrow 9 old\nfooter\n"
    printed = "header\nrow 1\nrow 2\nrow 3\nrow 9\nfooter\n"
    assert refresh(shown, printed) == "header\nrow 1\n...\nrow 9\nfooter\n"
    # a line with `...` inside that still matches is kept as written
    assert refresh("wrote x (3 figures; ... s)\nold\n", "wrote x (3 figures; 2.5 s)\nnew\n") \
        == "wrote x (3 figures; ... s)\nnew\n"
    # a changed line keeps `...` where it hid a number (a timing)
    assert refresh("wrote x (3 figures; ... s)\n", "wrote x (4 figures; 2.5 s)\n") \
        == "wrote x (4 figures; ... s)\n"
    assert refresh('  "seconds": ...,\n  "n": 1\n', '  "seconds": 8.09,\n  "n": 2\n') \
        == '  "seconds": ...,\n  "n": 2\n'
    # nothing shown before: everything printed is shown
    assert refresh("", "a\nb\n") == "a\nb\n"


def test_console_parsing() -> None:
    cmds = parse_console("$ journeymodel a \\\n    --b\nout 1\n$ echo x; echo \"exit $?\"\nx\n", 10)
    assert [c.text for c in cmds] == ["journeymodel a \\\n    --b", "echo x; echo \"exit $?\""]
    assert [c.shown for c in cmds] == ["out 1\n", "x\n"]
    assert [c.line for c in cmds] == [10, 13]
    with pytest.raises(ValueError, match="before any `\\$ ` command"):
        parse_console("stray\n$ ls\n", 1)
