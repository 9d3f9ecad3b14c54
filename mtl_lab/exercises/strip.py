"""Make the student version of a solutions notebook: every solution is replaced by a stub that raises.

In a **code cell**, the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION`` (both included) become
one line, at the indentation of the ``BEGIN`` marker::

    def project_conflicting(g_i, g_j):              def project_conflicting(g_i, g_j):
        \"\"\"…\"\"\"                                       \"\"\"…\"\"\"
        ### BEGIN SOLUTION                     →        raise NotImplementedError("write your solution here")
        dot = g_i @ g_j
        …
        ### END SOLUTION

so the student version still defines every function, and its check cell reports "not written yet".
In a **markdown cell**, the text from ``<!-- BEGIN SOLUTION -->`` to ``<!-- END SOLUTION -->`` becomes
:data:`ANSWER_PLACEHOLDER`. A cell tagged ``solution`` is removed entirely. The outputs and execution
counts of changed cells are cleared — by default those of every cell, since a stored output can give an
answer away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CODE_BEGIN = "### BEGIN SOLUTION"
CODE_END = "### END SOLUTION"
MARKDOWN_BEGIN = "<!-- BEGIN SOLUTION -->"
MARKDOWN_END = "<!-- END SOLUTION -->"
SOLUTION_TAG = "solution"
STUB = 'raise NotImplementedError("write your solution here")'
ANSWER_PLACEHOLDER = "*Write your answer here.*"


@dataclass(frozen=True)
class StripReport:
    """What :func:`strip_solutions` changed."""

    code_blocks: int = 0
    markdown_blocks: int = 0
    removed_cells: int = 0

    @property
    def total(self) -> int:
        return self.code_blocks + self.markdown_blocks + self.removed_cells

    def summary(self) -> str:
        return (f"{self.code_blocks} code solution(s) replaced by stubs, {self.markdown_blocks} markdown answer(s) "
                f"hidden, {self.removed_cells} solution cell(s) removed")


def replace_blocks(source: str, begin: str, end: str, replacement: str, where: str) -> tuple[str, int]:
    """``source`` with every ``begin … end`` block (marker lines included) replaced by ``replacement``.

    ``replacement`` is indented like the ``begin`` line. ``ValueError`` naming ``where`` and the line
    when a block is not closed, closed twice, or nested.
    """
    lines = source.split("\n")
    out: list[str] = []
    opened_at: int | None = None
    blocks = 0
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        if marker == begin:
            if opened_at is not None:
                raise ValueError(f"{where}: {begin!r} on line {number} inside the block opened on line {opened_at}")
            opened_at = number
            out.append(line[: len(line) - len(line.lstrip())] + replacement)
        elif marker == end:
            if opened_at is None:
                raise ValueError(f"{where}: {end!r} on line {number} has no matching {begin!r}")
            opened_at = None
            blocks += 1
        elif opened_at is None:
            out.append(line)
    if opened_at is not None:
        raise ValueError(f"{where}: {begin!r} on line {opened_at} has no matching {end!r}")
    return "\n".join(out), blocks


def strip_solutions(notebook, clear_all_outputs: bool = True):
    """The student version of a notebook (an ``nbformat`` node, changed in place and returned) and a report.

    ``ValueError`` when a marker is unbalanced or the notebook holds no solution at all.
    """
    counts = {"code": 0, "markdown": 0}
    kept = []
    removed = 0
    for number, cell in enumerate(notebook.cells, start=1):
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            removed += 1
            continue
        where = f"cell {number} ({cell.cell_type})"
        if cell.cell_type == "code":
            cell.source, blocks = replace_blocks(cell.source, CODE_BEGIN, CODE_END, STUB, where)
        elif cell.cell_type == "markdown":
            cell.source, blocks = replace_blocks(cell.source, MARKDOWN_BEGIN, MARKDOWN_END, ANSWER_PLACEHOLDER, where)
        else:
            blocks = 0
        if blocks:
            counts[cell.cell_type] += blocks
        if cell.cell_type == "code" and (blocks or clear_all_outputs):
            cell.outputs = []
            cell.execution_count = None
        kept.append(cell)
    report = StripReport(counts["code"], counts["markdown"], removed)
    if report.total == 0:
        raise ValueError(f"no solution found: mark solutions with {CODE_BEGIN!r} … {CODE_END!r} in code cells, "
                         f"{MARKDOWN_BEGIN!r} … {MARKDOWN_END!r} in markdown cells, or tag a cell {SOLUTION_TAG!r}")
    notebook.cells = kept
    return notebook, report


def strip_notebook(source: str | Path, target: str | Path, clear_all_outputs: bool = True) -> StripReport:
    """Read the solutions notebook ``source``, write its student version to ``target``; return what changed.

    ``ValueError`` with a one-line message when ``source`` is missing or not a notebook, when ``target``
    is ``source`` itself, or from :func:`strip_solutions`.
    """
    try:
        import nbformat
    except ImportError:
        raise ValueError("stripping notebooks needs nbformat: pip install 'mtl-lab[lab]'") from None
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise ValueError(f"notebook {str(source)!r} does not exist")
    if target.resolve() == source.resolve():
        raise ValueError(f"the student version would overwrite the solutions {str(source)!r}: choose another path")
    if not target.parent.is_dir():
        raise ValueError(f"folder {str(target.parent)!r} does not exist")
    try:
        notebook = nbformat.read(source, as_version=4)
    except Exception as exc:  # nbformat raises JSON, validation and format errors of several types
        raise ValueError(f"{str(source)!r} is not a readable notebook: {str(exc).splitlines()[0]}") from None
    notebook, report = strip_solutions(notebook, clear_all_outputs)
    nbformat.write(notebook, target)
    return report
