"""The notebooks' stored outputs must not depend on one processor's rounding, and every lesson stays asserted.

Each cell whose output is left out of nbval's comparison (``# NBVAL_IGNORE_OUTPUT``: trained numbers whose last
digits vary with the processor) must be followed by a cell that asserts what those numbers teach, so that the
suite still fails when a lesson stops holding. ``notebooks/check_any_machine.py`` runs the notebooks on other
CPU code paths; its environments are checked here (running it takes minutes: see notebooks/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb")) + sorted(NOTEBOOKS.glob("coursework/*.ipynb"))
MARKER = "# NBVAL_IGNORE_OUTPUT"


def code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def ignored(source: str) -> bool:
    return any(line.strip() == MARKER for line in source.splitlines())


def asserts(source: str) -> bool:
    return any(line.strip().startswith("assert ") for line in source.splitlines())


def unchecked(cells: list[str]) -> list[int]:
    """Indices of the code cells that hide their output with no asserting (and compared) cell right after them."""
    return [i for i, source in enumerate(cells) if ignored(source)
            and not (i + 1 < len(cells) and asserts(cells[i + 1]) and not ignored(cells[i + 1]))]


def load_checker():
    spec = importlib.util.spec_from_file_location("check_any_machine", NOTEBOOKS / "check_any_machine.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(NOTEBOOKS))
    return module


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_every_ignored_output_is_followed_by_an_assertion(path):
    missing = unchecked(code_cells(path))
    assert not missing, f"{path.name}: code cells {missing} hide their output without a checking cell after them"


def test_unchecked_finds_a_hidden_output_without_its_check():
    hidden, check = f"{MARKER}\nprint(train())", "assert result > 0.9, 'the lesson'"
    assert unchecked([hidden, check]) == []
    assert unchecked([hidden, "print('no check')"]) == [0]
    assert unchecked(["x = 1", hidden]) == [1]  # the last cell
    assert unchecked([hidden, f"{MARKER}\n{check}"]) == [0, 1]  # a check whose output is hidden too


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_checking_cells_print_nothing(path):
    # a checking cell that printed would put its numbers back into the compared text
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    for before, cell in zip(code, code[1:]):
        if ignored("".join(before["source"])) and asserts("".join(cell["source"])):
            assert cell["outputs"] == [], f"{path.name}: checking cell {cell.get('id')} printed {cell['outputs']}"


def test_a_marker_must_be_a_line_of_its_own():
    # nbval reads the marker only when it is the whole comment of a line
    assert ignored(f"{MARKER}\nx = 1") and not ignored(f"x = 1  {MARKER}") and not ignored(f"{MARKER} (why)\n")


def test_check_environments():
    checker = load_checker()
    pinned = checker.environment("pinned", Path("/tmp/unused"))
    assert {key: pinned[key] for key in checker.PINNED_CPU} == checker.PINNED_CPU
    native = checker.environment("native", Path("/tmp/unused"))
    assert not set(checker.PINNED_CPU) & set(native)
    aten = checker.environment("aten-default", Path("/tmp/unused"))
    assert aten["ATEN_CPU_CAPABILITY"] == "default" and "MKL_CBWR" not in aten and "DNNL_MAX_CPU_ISA" not in aten


def test_two_threads_path_writes_a_startup_file(tmp_path):
    checker = load_checker()
    env = checker.environment("two-threads", tmp_path)
    startup = Path(env["IPYTHONDIR"]) / "profile_default" / "startup" / "00-threads.py"
    assert "_set_num_threads(2)" in startup.read_text()
    assert not set(checker.PINNED_CPU) & set(env)


def test_unknown_path_is_refused_with_the_choices():
    checker = load_checker()
    with pytest.raises(ValueError, match="unknown code path 'avx9'.*native"):
        checker.environment("avx9", Path("/tmp/unused"))
