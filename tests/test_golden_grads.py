"""The restructured training core gives the gradients the core gave before (``tests/golden/grads.pt``).

For every gradient path × {one process, rank 0 of two gloo ranks} × {with, without diagnostics}: the
``.grad`` of every parameter after one step on a fixed batch, the step's effective weights and the
diagnostics record (one process; with two ranks the diagnostics must be the whole batch's — the same on
both ranks and, up to the order of sums, the one-process ones). On the processor and torch build that
recorded the file (same fingerprint, see :func:`golden_grads.fingerprint`) the comparison is bitwise;
elsewhere float rounding may differ in the last bits (another SIMD width changes the order of sums), so it
is ``rtol=1e-5`` with an absolute floor of ``1e-6 × max|grad|`` — far below any change a different
algorithm would make (a method or path mix-up changes the gradients at the first significant digit).
"""

from __future__ import annotations

import math

import pytest
import torch
from golden_grads import FOLDER, PATHS, case_name, distributed_cases, fingerprint, one_step

GOLDEN = torch.load(FOLDER / "grads.pt", weights_only=True)
BITWISE = GOLDEN["fingerprint"] == fingerprint()


def assert_same(name: str, got: dict, want: dict, diagnostics: bool = True) -> None:
    assert sorted(got["grads"]) == sorted(want["grads"]), f"{name}: other parameters have gradients"
    for key, expected in want["grads"].items():
        actual = got["grads"][key]
        if BITWISE:
            assert torch.equal(actual, expected), f"{name}: grad of {key} differs (bitwise)"
        else:
            floor = 1e-6 * float(expected.abs().max())
            torch.testing.assert_close(actual, expected, rtol=1e-5, atol=floor, msg=f"{name}: grad of {key}")
    assert got["weights"] == pytest.approx(want["weights"], rel=0 if BITWISE else 1e-5, nan_ok=True), name
    if not diagnostics:
        return
    assert sorted(got["diagnostics"]) == sorted(want["diagnostics"]), name
    for key, value in want["diagnostics"].items():
        flat_got = torch.tensor(got["diagnostics"][key], dtype=torch.float64).flatten()
        flat_want = torch.tensor(value, dtype=torch.float64).flatten()
        if BITWISE:
            assert torch.equal(flat_got.nan_to_num(), flat_want.nan_to_num()), f"{name}: diagnostics {key}"
        else:
            torch.testing.assert_close(flat_got, flat_want, rtol=1e-4, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("diagnose", [False, True], ids=["nodiag", "diag"])
@pytest.mark.parametrize("path", list(PATHS))
def test_one_process_step_matches_the_golden_gradients(path, diagnose):
    torch.set_num_threads(1)  # as recorded
    name = case_name(path, diagnose, 1)
    assert_same(name, one_step(path, diagnose), GOLDEN["cases"][name])


def test_golden_file_covers_every_path_both_ways():
    names = set(GOLDEN["cases"])
    assert {case_name(p, d, 1) for p in PATHS for d in (False, True)} <= names
    assert len([n for n in names if n.endswith("2ranks")]) == 2 * (len(PATHS) - 1)
    assert all(math.isfinite(float(g.abs().sum())) for c in GOLDEN["cases"].values() for g in c["grads"].values())


def test_two_rank_step_matches_the_golden_gradients(tmp_path):
    ranks = distributed_cases(str(tmp_path))
    for name, want in GOLDEN["cases"].items():
        if not name.endswith("2ranks"):
            continue
        for rank in ranks:
            assert_same(name, rank[name], want, diagnostics=False)
        single = GOLDEN["cases"][name.replace("2ranks", "single")]["diagnostics"]
        for key, value in single.items():  # the whole batch's diagnostics on every rank (not a rank's share)
            expected = torch.tensor(value, dtype=torch.float64)
            for rank in ranks:
                got = torch.tensor(rank[name]["diagnostics"][key], dtype=torch.float64)
                torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6, equal_nan=True,
                                           msg=f"{name}: diagnostics {key}")
