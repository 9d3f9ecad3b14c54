"""Coursework checks and the notebook stripper.

* every check passes on implementations that call the library, and prints one deterministic line;
* every check fails, with the expected hint, on the typical student mistakes;
* wrong types, shapes, NaN, in-place changes and the unwritten stub give clear messages;
* ``strip`` turns the solutions notebook into a student version whose check cells report "not written yet".
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from mtl_lab.cli import main
from mtl_lab.exercises import EXERCISES, ExerciseError, strip_notebook, strip_solutions
from mtl_lab.exercises.gradient_surgery import library_mgda_weight, library_pcgrad_projections
from mtl_lab.exercises.loss_weighting import library_dwa_weights, library_uncertainty_slope
from mtl_lab.exercises.soft_sharing import reference_penalty
from mtl_lab.exercises.strip import STUB
from mtl_lab.gradients import task_gradients
from mtl_lab.metrics import delta_m
from mtl_lab.models.soft_sharing import SoftSharing
from mtl_lab.tasks import binary, regression
from mtl_lab.weighting import aggregate

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "coursework" / "coursework_solutions.ipynb"


# --------------------------------------------------------------------------- library-backed answers


def pcgrad_projection(g_i, g_j):
    return library_pcgrad_projections(g_i, g_j)[0]


def pcgrad_two_tasks(g_1, g_2):
    return aggregate("pcgrad", torch.stack([g_1, g_2]))


def task_gradient_matrix(losses, params):
    return task_gradients(losses, params, [[] for _ in losses])[0]


def penalty(thetas, lam):
    centred = thetas - thetas.mean(dim=0, keepdim=True)
    return lam * thetas.shape[0] * (centred**2).sum()  # Σ_{i<j} ‖θ_i − θ_j‖² = T·Σ_i ‖θ_i − θ̄‖²


REFERENCE = {
    "pcgrad_projection": pcgrad_projection,
    "pcgrad_two_tasks": pcgrad_two_tasks,
    "mgda_two_tasks": library_mgda_weight,
    "task_gradients": task_gradient_matrix,
    "dwa_weights": library_dwa_weights,
    "uncertainty_optimum": torch.log,
    "delta_m": delta_m,
    "coupling_penalty": penalty,
}


@pytest.mark.parametrize("name", list(EXERCISES))
def test_every_check_passes_on_the_library_and_says_so_in_one_line(name, capsys):
    exercise = EXERCISES[name]
    exercise.check(REFERENCE[name])
    exercise.check(REFERENCE[name], n_cases=9, seed=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"✓ {name}: ") and lines[0].endswith(" cases passed")
    assert lines[1] == f"✓ {name}: 9 cases passed"


def test_the_references_behind_the_checks_agree_with_the_library():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        g_1, g_2 = torch.randn(2, 4, generator=g, dtype=torch.float64)
        p_1, p_2 = library_pcgrad_projections(g_1, g_2)
        assert torch.allclose(p_1 + p_2, aggregate("pcgrad", torch.stack([g_1, g_2])))
        if g_1 @ g_2 < 0:
            assert abs(float(p_1 @ g_2)) < 1e-10 and abs(float(p_2 @ g_1)) < 1e-10
        alpha = float(((g_2 - g_1) @ g_2 / ((g_1 - g_2) @ (g_1 - g_2))).clamp(0, 1))
        assert math.isclose(library_mgda_weight(g_1, g_2), alpha, abs_tol=1e-12)
    losses = torch.tensor([0.2, 1.0, 7.0], dtype=torch.float64)
    assert torch.allclose(library_uncertainty_slope(losses, torch.log(losses)), torch.zeros(3, dtype=torch.float64))
    assert torch.equal(library_dwa_weights([[1.0, 2.0]], 2, 2.0), torch.ones(2, dtype=torch.float64))
    torch.manual_seed(0)
    model = SoftSharing([binary("a"), regression("b"), binary("c")], input_shape=(5,), hidden=(4,), coupling=0.3,
                        same_init=False)
    with torch.no_grad():
        assert torch.allclose(reference_penalty(model.column_vectors(), 0.3), model.regularizer())


# --------------------------------------------------------------------------- typical mistakes


def project_always(g_i, g_j):
    return g_i - (g_i @ g_j) / (g_j @ g_j) * g_j


def project_with_wrong_sign(g_i, g_j):
    dot = g_i @ g_j
    return g_i + dot / (g_j @ g_j) * g_j if dot < 0 else g_i


def project_in_place(g_i, g_j):
    dot = g_i @ g_j
    if dot < 0:
        g_i -= dot / (g_j @ g_j) * g_j
    return g_i


def project_non_strict(g_i, g_j):
    dot = g_i @ g_j
    return g_i - dot / (g_j @ g_j) * g_j if dot <= 0 else g_i


def pcgrad_mean(g_1, g_2):
    return pcgrad_two_tasks(g_1, g_2) / 2


def pcgrad_sequential(g_1, g_2):
    p_1 = pcgrad_projection(g_1, g_2)
    return p_1 + pcgrad_projection(g_2, p_1)


def mgda_unclipped(g_1, g_2):
    return float((g_2 - g_1) @ g_2 / ((g_1 - g_2) @ (g_1 - g_2)))


def mgda_no_equal_case(g_1, g_2):
    return min(max(mgda_unclipped(g_1, g_2), 0.0), 1.0)


def mgda_weight_of_g2(g_1, g_2):
    return 1.0 - library_mgda_weight(g_1, g_2)


def dwa_previous_epochs(epoch_losses, n_tasks, temperature):
    if len(epoch_losses) < 3:
        return library_dwa_weights(epoch_losses, n_tasks, temperature)
    return library_dwa_weights(epoch_losses[:-1], n_tasks, temperature)


def dwa_inverted(epoch_losses, n_tasks, temperature):
    return library_dwa_weights(epoch_losses[:-2] + epoch_losses[-2:][::-1], n_tasks, temperature)


def dwa_sums_to_one(epoch_losses, n_tasks, temperature):
    return library_dwa_weights(epoch_losses, n_tasks, temperature) / n_tasks


def dwa_no_warm_up(epoch_losses, n_tasks, temperature):
    rates = torch.tensor(epoch_losses[-1]) / torch.tensor(epoch_losses[-2])
    return n_tasks * torch.softmax(rates / temperature, dim=0)


def delta_m_ignoring_direction(metrics, baseline, higher_is_better):
    return delta_m(metrics, baseline, {t: True for t in higher_is_better})


def delta_m_fraction(metrics, baseline, higher_is_better):
    return delta_m(metrics, baseline, higher_is_better) / 100


def delta_m_sum(metrics, baseline, higher_is_better):
    return delta_m(metrics, baseline, higher_is_better) * len(baseline)


def penalty_all_ordered_pairs(thetas, lam):
    return 2 * penalty(thetas, lam)


def penalty_as_float(thetas, lam):
    return penalty(thetas, lam).item()


def penalty_detached(thetas, lam):
    return penalty(thetas.detach(), lam)


def penalty_negative(thetas, lam):
    return -penalty(thetas, lam)


def gradients_accumulated(losses, params):
    rows = []
    for loss in losses:
        loss.backward(retain_graph=True)
        rows.append(torch.cat([torch.zeros(p.numel(), dtype=p.dtype) if p.grad is None else p.grad.reshape(-1)
                               for p in params]))
    return torch.stack(rows)


def gradients_without_retain(losses, params):
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        rows.append(torch.cat([torch.zeros(p.numel(), dtype=p.dtype) if g is None else g.reshape(-1)
                               for p, g in zip(params, grads)]))
    return torch.stack(rows)


def gradients_without_allow_unused(losses, params):
    grads = [torch.autograd.grad(loss, params, retain_graph=True) for loss in losses]
    return torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in grads])


def gradients_transposed(losses, params):
    return task_gradient_matrix(losses, params).T


def uncertainty_classification_form(losses):
    return torch.log(2 * losses)


def uncertainty_wrong_sign(losses):
    return -torch.log(losses)


MISTAKES = [
    ("pcgrad_projection", project_always, ["same direction, different lengths", "project only when"]),
    ("pcgrad_projection", project_with_wrong_sign, ["subtract the projection"]),
    ("pcgrad_projection", project_in_place, ["changed its input 'g_i' in place", "work on a copy"]),
    ("pcgrad_projection", project_non_strict, ["zero second gradient", "NaN", "no division by ‖g‖² = 0"]),
    ("pcgrad_two_tasks", pcgrad_mean, ["sums the projected gradients", "does not average"]),
    ("pcgrad_two_tasks", pcgrad_sequential, ["project g_2 off the original g_1"]),
    ("pcgrad_two_tasks", lambda g_1, g_2: g_1 + g_2, ["opposite gradients", "both gradients must be projected"]),
    ("mgda_two_tasks", mgda_unclipped, ["is outside [0, 1]", "clip α to [0, 1]"]),
    ("mgda_two_tasks", mgda_no_equal_case, ["identical gradients", "NaN", "return 0.5"]),
    ("mgda_two_tasks", mgda_weight_of_g2, ["α is the weight of g_1", "expected α = 0.4878"]),
    ("dwa_weights", dwa_previous_epochs, ["random history", "an off-by-one in the epochs?"]),
    ("dwa_weights", dwa_inverted, ["the newer epoch over the older one"]),
    ("dwa_weights", dwa_sums_to_one, ["no finished epoch", "every weight is 1"]),
    ("dwa_weights", dwa_no_warm_up, ["IndexError", "no descending rate yet"]),
    ("uncertainty_optimum", uncertainty_classification_form, ["the objective's slope there is [0.25, 0.25]",
                                                              "classification form"]),
    ("uncertainty_optimum", uncertainty_wrong_sign, ["check the sign"]),
    ("delta_m", delta_m_ignoring_direction, ["expected: 11.11", "received: -8.889", "relative change by −1"]),
    ("delta_m", delta_m_fraction, ["multiply by 100"]),
    ("delta_m", delta_m_sum, ["average over the tasks"]),
    ("coupling_penalty", penalty_all_ordered_pairs, ["each pair once"]),
    ("coupling_penalty", penalty_as_float, ["returned a float, not a torch.Tensor", "autograd"]),
    ("coupling_penalty", penalty_detached, ["has no gradient", "no .item()"]),
    ("coupling_penalty", penalty_negative, ["wrong penalty"]),
    ("task_gradients", gradients_accumulated, ["wrong row(s) [1]", "p.grad accumulates"]),
    ("task_gradients", gradients_without_retain, ["RuntimeError", "retain_graph=True"]),
    ("task_gradients", gradients_without_allow_unused, ["RuntimeError", "allow_unused=True"]),
    ("task_gradients", gradients_transposed, ["shape (9, 2), expected (2, 9)", "one row per task"]),
]


@pytest.mark.parametrize("name,function,fragments", MISTAKES, ids=[f"{m[0]}-{m[1].__name__}" for m in MISTAKES])
def test_typical_mistakes_fail_with_their_hint(name, function, fragments, capsys):
    with pytest.raises(ExerciseError) as info:
        EXERCISES[name].check(function)
    message = str(info.value)
    assert message.startswith(f"{name} failed on case ")
    assert "inputs:" in message and "hint:" in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert "✓" not in capsys.readouterr().out


def test_a_failure_names_the_case_with_its_rounded_inputs_expected_and_received():
    with pytest.raises(ExerciseError) as info:
        EXERCISES["pcgrad_projection"].check(project_with_wrong_sign)
    assert str(info.value).splitlines() == [
        "pcgrad_projection failed on case 2 of 25 (opposite gradients): wrong projection",
        "  inputs:   g_i = [1, 2, -0.5], g_j = [-2, -4, 1]",
        "  expected: [0, 0, 0]",
        "  received: [2, 4, -1]",
        "  hint: subtract the projection, do not add it: g_i − (g_i·g_j / ‖g_j‖²)·g_j.",
    ]


# --------------------------------------------------------------------------- wrong types, stubs, bad calls


@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_unwritten_stub_gets_a_friendly_message(name):
    def stub(*args):
        raise NotImplementedError("write your solution here")

    with pytest.raises(ExerciseError) as info:
        EXERCISES[name].check(stub)
    assert str(info.value) == (
        f"{name}: stub is not written yet — it raised NotImplementedError (write your solution here). Replace the "
        "`raise NotImplementedError(...)` line with your code, run that cell, then run this check again."
    )
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_stub_called_by_the_checked_function_is_named():
    def project_conflicting(g_i, g_j):
        raise NotImplementedError("write your solution here")

    def pcgrad(g_1, g_2):
        return project_conflicting(g_1, g_2) + project_conflicting(g_2, g_1)

    with pytest.raises(ExerciseError, match=r"project_conflicting \(called by pcgrad\) is not written yet"):
        EXERCISES["pcgrad_two_tasks"].check(pcgrad)


@pytest.mark.parametrize(
    "name,function,fragment",
    [
        ("pcgrad_projection", lambda g_i, g_j: g_i.tolist(), "returned a list, not a torch.Tensor"),
        ("pcgrad_projection", lambda g_i, g_j: None, "did you forget the `return` statement?"),
        ("pcgrad_two_tasks", lambda g_1, g_2: torch.cat([g_1, g_2]), "a tensor of shape (6,), expected (3,)"),
        ("pcgrad_two_tasks", lambda g_1, g_2: g_1 * float("nan"), "returned NaN or infinity"),
        ("mgda_two_tasks", lambda g_1, g_2: torch.tensor([0.5, 0.5]), "expected one number"),
        ("mgda_two_tasks", lambda g_1, g_2: "0.5", "returned a str, expected a number"),
        ("dwa_weights", lambda h, n, temp: torch.ones(n + 1), "shape (4,), expected (3,)"),
        ("delta_m", lambda m, b, h: [1.0], "returned a list, expected a number"),
        ("uncertainty_optimum", lambda losses: losses.numpy(), "returned a numpy.ndarray, not a torch.Tensor"),
    ],
)
def test_wrong_types_shapes_and_nan_are_named(name, function, fragment):
    with pytest.raises(ExerciseError) as info:
        EXERCISES[name].check(function)
    assert fragment in str(info.value)


def test_other_exceptions_name_the_case_and_keep_the_cause():
    def broken(g_1, g_2):
        return g_1 @ g_2 @ g_2

    with pytest.raises(ExerciseError) as info:
        EXERCISES["pcgrad_two_tasks"].check(broken)
    assert "case 1 of 25 (orthogonal pair): broken raised RuntimeError" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_checks_are_deterministic_by_seed_and_validate_their_own_arguments():
    def first_line(seed):
        with pytest.raises(ExerciseError) as info:
            EXERCISES["dwa_weights"].check(dwa_previous_epochs, seed=seed)
        return str(info.value)

    assert first_line(0) == first_line(0)
    assert first_line(0) != first_line(1)
    with pytest.raises(ValueError, match="n_cases must be an int ≥ 1, got 0"):
        EXERCISES["delta_m"].check(delta_m, n_cases=0)
    with pytest.raises(ExerciseError, match="pass your function itself"):
        EXERCISES["delta_m"].check(delta_m(  # the result of a call, not the function
            {"a": 1.0}, {"a": 1.0}, {"a": True}))


# --------------------------------------------------------------------------- strip


def solutions_notebook():
    code = 'def f(x):\n    """Double x."""\n    ### BEGIN SOLUTION\n    y = 2 * x\n    return y\n    ### END SOLUTION\n'
    cell = new_code_cell(code, execution_count=3, outputs=[new_output("stream", name="stdout", text="hi\n")])
    plain = new_code_cell("print(f(2))", execution_count=4, outputs=[new_output("stream", name="stdout", text="4\n")])
    answer = new_markdown_cell("Why?\n\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->\nMore text.")
    hidden = new_code_cell("secret = 42")
    hidden.metadata["tags"] = ["solution"]
    return new_notebook(cells=[cell, plain, answer, hidden])


def test_strip_replaces_blocks_by_an_indented_stub_and_clears_outputs():
    notebook, report = strip_solutions(solutions_notebook())
    assert (report.code_blocks, report.markdown_blocks, report.removed_cells) == (1, 1, 1)
    code, plain, answer = notebook.cells
    assert code.source == f"def f(x):\n    \"\"\"Double x.\"\"\"\n    {STUB}\n"
    assert code.outputs == [] and code.execution_count is None
    assert plain.outputs == [] and plain.execution_count is None
    assert answer.source == "Why?\n\n*Write your answer here.*\nMore text."
    namespace = {}
    exec(code.source, namespace)
    with pytest.raises(NotImplementedError, match="write your solution here"):
        namespace["f"](1)


def test_strip_can_keep_the_outputs_of_unchanged_cells():
    notebook, _ = strip_solutions(solutions_notebook(), clear_all_outputs=False)
    assert notebook.cells[0].outputs == [] and notebook.cells[1].outputs[0].text == "4\n"


@pytest.mark.parametrize(
    "source,message",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "cell 1 (code): '### BEGIN SOLUTION' on line 1 has no matching '### END"),
        ("x = 1\n### END SOLUTION\n", "cell 1 (code): '### END SOLUTION' on line 2 has no matching '### BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "on line 2 inside the block opened on line 1"),
        ("x = 1  # no solution here\n", "no solution found"),
    ],
)
def test_strip_refuses_unbalanced_markers_and_notebooks_without_solutions(source, message):
    with pytest.raises(ValueError) as info:
        strip_solutions(new_notebook(cells=[new_code_cell(source)]))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_strip_cli_writes_the_student_version_and_reports_bad_paths_in_one_line(tmp_path, capsys):
    solutions, student = tmp_path / "solutions.ipynb", tmp_path / "student.ipynb"
    nbformat.write(solutions_notebook(), solutions)
    assert main(["exercises", "strip", str(solutions), str(student)]) == 0
    assert "1 code solution(s) replaced by stubs, 1 markdown answer(s) hidden, 1 solution cell(s) removed" in \
        capsys.readouterr().out
    assert len(nbformat.read(student, as_version=4).cells) == 3
    assert nbformat.read(student, as_version=4).cells[1].outputs == []
    assert main(["exercises", "strip", "--keep-outputs", str(solutions), str(student)]) == 0
    assert nbformat.read(student, as_version=4).cells[1].outputs[0].text == "4\n"
    (tmp_path / "broken.ipynb").write_text("{not json")
    for args, message in [
        ([str(tmp_path / "missing.ipynb"), str(student)], "does not exist"),
        ([str(solutions), str(solutions)], "would overwrite the solutions"),
        ([str(solutions), str(tmp_path / "no" / "such" / "dir.ipynb")], "does not exist"),
        ([str(tmp_path / "broken.ipynb"), str(student)], "is not a readable notebook"),
    ]:
        assert main(["exercises", "strip", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mtl-lab: error: ") and message in err and err.count("\n") == 1


def test_exercises_list_names_every_exercise(capsys):
    assert main(["exercises", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out and exercise.function in out for name, exercise in EXERCISES.items())


# --------------------------------------------------------------------------- the coursework notebook


def test_the_solutions_notebook_stores_a_pass_line_for_every_exercise():
    notebook = nbformat.read(SOLUTIONS, as_version=4)
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    for name in EXERCISES:
        assert f"✓ {name}: " in text, name


def test_the_stripped_notebook_defines_stubs_and_its_checks_say_not_written_yet(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    student = tmp_path / "coursework.ipynb"
    report = strip_notebook(SOLUTIONS, student)
    assert (report.code_blocks, report.markdown_blocks, report.removed_cells) == (len(EXERCISES), 2, 2)
    notebook = nbformat.read(student, as_version=4)
    assert not any("BEGIN SOLUTION" in c.source or "END SOLUTION" in c.source for c in notebook.cells)
    stubs = [c for c in notebook.cells if STUB in c.source]
    assert len(stubs) == len(EXERCISES)
    for cell in stubs:  # each stub cell still defines its function
        tree = ast.parse(cell.source)
        assert [type(node).__name__ for node in tree.body] == ["FunctionDef"]
    assert all(c.outputs == [] for c in notebook.cells if c.cell_type == "code")

    nbclient.NotebookClient(notebook, timeout=120, allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    checks = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith("check_")]
    assert len(checks) == len(EXERCISES)
    for cell in checks:
        (error,) = [o for o in cell.outputs if o.output_type == "error"]
        assert error.ename == "ExerciseError"
        assert "is not written yet — it raised NotImplementedError (write your solution here)" in error.evalue
    setup = next(c for c in notebook.cells if c.cell_type == "code")
    assert not any(o.output_type == "error" for o in setup.outputs)
