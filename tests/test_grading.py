"""Tests for nstlab.grading (the course as nbgrader assignments) and checks.grade, its hidden tests.

The last test is the whole term, offline: export, ``nbgrader generate_assignment``, students' notebooks filled with a
correct and with a wrong solution, ``nbgrader autograde``, the grade book.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nstlab
from nstlab import checks, cli, color, grading, losses
from nstlab.ssim import gaussian_window

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _with_stub(text: str) -> str:
    return f"def my_f(x):\n    # double it\n    {grading.STUB[0]}\n    {grading.STUB[1]}"


# ----------------------------------------------------------------------------- checks.grade: the hidden tests


def test_grade_passes_the_references_and_says_so(capsys):
    for name, exercise in checks.EXERCISES.items():
        checks.grade(name, exercise.reference)
        assert capsys.readouterr().out == f"{name}: passes on the notebook's inputs and on hidden ones (seeds 1, 2)\n"


def test_the_hidden_inputs_have_other_shapes_and_values():
    seen = {}
    for seed in (0, *checks.HIDDEN_SEEDS):
        shapes = []
        def spy(f, shapes=shapes):
            shapes.append((tuple(f.shape), float(f.detach().sum())))
            return losses.gram_matrix(f)

        checks.check_gram_matrix(spy, seed=seed)
        seen[seed] = shapes
    assert [s for s, _ in seen[0]] == [(1, 3, 4, 5), (2, 4, 3, 3), (3, 5, 6, 2)]  # what the notebook shows
    for seed in checks.HIDDEN_SEEDS:
        assert [s for s, _ in seen[seed]] != [s for s, _ in seen[0]]
        assert all(a != b for (_, a), (_, b) in zip(seen[seed], seen[0]))


def test_grade_fails_a_function_that_only_fits_the_notebooks_inputs():
    shown = [(1, 4, 5, 6), (2, 3, 4, 4), (3, 8, 2, 7)]

    def fitted(x, p):  # right on the shapes the notebook shows, off by a factor elsewhere
        scale = 0.5 if tuple(x.shape) in shown else 1.0
        return scale * ((x - p) ** 2).sum()

    assert checks.check_content_loss(fitted).passed
    with pytest.raises(AssertionError, match=r"content_loss: max relative error .* FAIL .*\(hidden inputs, seed 1\)"):
        checks.grade("content_loss", fitted)


def test_grade_fails_a_function_without_gradient_or_written():
    with pytest.raises(AssertionError, match="carries no gradient"):
        checks.grade("tv_loss", lambda img: losses.tv_loss(img).detach())
    with pytest.raises(AssertionError, match="not implemented yet"):
        checks.grade("gram_matrix", lambda feat: None)


def test_grade_fails_a_function_that_floods_the_output(capsys):
    def chatty(x, p):
        print("x" * 1000)
        return 0.5 * ((x - p) ** 2).sum()

    checks.grade("content_loss", chatty)  # 3 calls of 1000 characters: allowed
    capsys.readouterr()

    def flooding(x, p):
        print("x" * checks.OUTPUT_LIMIT)
        return 0.5 * ((x - p) ** 2).sum()

    with pytest.raises(AssertionError, match=r"content_loss: your function printed 300,003 characters"):
        checks.grade("content_loss", flooding)
    assert capsys.readouterr().out == ""  # nothing of it reaches the notebook


# ----------------------------------------------------------------------------- the export


def test_with_solution_puts_the_solution_region_at_the_stubs_indentation():
    got = grading.with_solution(_with_stub(""), "y = 2 * x\n\nreturn y")
    assert got == ("def my_f(x):\n    # double it\n    ### BEGIN SOLUTION\n    y = 2 * x\n\n    return y\n"
                   "    ### END SOLUTION")
    with pytest.raises(ValueError, match="must hold the stub"):
        grading.with_solution("def my_f(x):\n    return None", "return 2 * x")


def test_every_stub_of_the_course_is_one_graded_exercise():
    """Each notebook's stubs are exactly the GRADED exercises of that notebook, in the one stub style."""
    stubs = {}
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            text = _source(cell)
            if "YOUR CODE HERE" in text:
                assert len(grading._stub_at(text.split("\n"))) == 1, f"{path.name}: {text[:60]!r}: not the one stub"
                assert text.count("YOUR CODE HERE") == 1 and "NotImplementedError(" not in text
                stubs.setdefault(path.stem[:2], []).append(text.split("def ", 1)[1].split("(", 1)[0])
    graded = {}
    for ex in grading.GRADED:
        graded.setdefault(ex.notebook, []).append(ex.function)
    assert stubs == graded


def test_export_writes_each_notebook_with_exercises_and_the_config(tmp_path):
    written = grading.export_nbgrader(tmp_path / "class")
    assert [p.stem[:2] for p in written] == sorted({ex.notebook for ex in grading.GRADED})
    for path in written:
        assert path == tmp_path / "class" / "source" / path.stem / path.name
        original = json.loads((ROOT / "notebooks" / path.name).read_text())
        nb = json.loads(path.read_text())
        assert len(nb["cells"]) == len(original["cells"])
        for mine, theirs in zip(nb["cells"], original["cells"]):
            meta = mine["metadata"].get("nbgrader")
            if meta is None:
                assert mine == theirs  # every other cell is the course's, untouched
            elif meta["solution"]:
                assert meta == {"grade": False, "grade_id": meta["grade_id"], "locked": False, "schema_version": 3,
                                "solution": True, "task": False}
                assert "### BEGIN SOLUTION" in _source(mine) and grading.STUB[0] not in _source(mine)
            else:
                ex = next(e for e in grading.GRADED if f"test_{e.function}" == meta["grade_id"])
                assert meta["points"] == ex.points and meta["locked"] and meta["grade"]
                visible, hidden = _source(mine).split("\n### BEGIN HIDDEN TESTS\n")
                assert visible == _source(theirs) and hidden == f"{ex.hidden}\n### END HIDDEN TESTS"
    config = (tmp_path / "class" / "nbgrader_config.py").read_text()
    assert f"c.Execute.timeout = {grading.CELL_TIMEOUT}\n" in config
    assert "NSTLAB_SMOKE='1', NSTLAB_WEIGHTS='random'" in config


def test_every_reference_solution_passes_its_hidden_tests(tmp_path, capsys):
    """The solution regions, run as the exported cells hold them (the Gatys loop: in the nbgrader test below)."""
    written = {p.stem[:2]: p for p in grading.export_nbgrader(tmp_path / "class")}
    for ex in grading.GRADED:
        if ex.function == "my_gatys_loop":
            continue
        nb = json.loads(written[ex.notebook].read_text())
        (cell,) = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == ex.function]
        namespace = {"torch": torch, "F": torch.nn.functional, "gaussian_window": gaussian_window, "nstlab": nstlab,
                     "checks": checks, "color": color, "losses": losses}  # what the notebooks import
        exec(_source(cell), namespace)
        exec(ex.hidden, namespace)
        assert "passes on the notebook's inputs and on hidden ones" in capsys.readouterr().out


def _course_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", folder)
    return folder


def test_export_names_a_stub_that_no_exercise_grades(tmp_path):
    folder = _course_copy(tmp_path)
    path = next(folder.glob("03_*.ipynb"))
    nb = json.loads(path.read_text())
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "extra", "metadata": {}, "outputs": [],
                        "source": _with_stub("")})
    path.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match=rf"03_.*\.ipynb: cell {len(nb['cells']) - 1} holds an exercise's stub"):
        grading.export_nbgrader(tmp_path / "class", notebooks=folder)


def test_export_names_a_missing_test_cell(tmp_path):
    folder = _course_copy(tmp_path)
    path = next(folder.glob("02_*.ipynb"))
    nb = json.loads(path.read_text())
    nb["cells"] = [c for c in nb["cells"] if "checks.check_content_loss(my_content_loss)" not in _source(c)]
    path.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match=r"02_content_loss.ipynb: no code cell after my_content_loss's holds its test"):
        grading.export_nbgrader(tmp_path / "class", notebooks=folder)


def test_export_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="no course notebooks"):
        grading.export_nbgrader(tmp_path / "class", notebooks=tmp_path)
    grading.export_nbgrader(tmp_path / "class")
    with pytest.raises(FileExistsError, match="exists already"):
        grading.export_nbgrader(tmp_path / "class")
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, got 0"):
        grading.export_nbgrader(tmp_path / "other", timeout=0)


def test_the_command_line_exports(tmp_path, capsys):
    assert cli.main(["course", "export-nbgrader", str(tmp_path / "class"), "--timeout", "30"]) == 0
    out = capsys.readouterr().out
    notebook = tmp_path / "class" / "source" / "05_gatys_style_transfer" / "05_gatys_style_transfer.ipynb"
    assert f"nstlab: wrote {notebook} (4 points)" in out and "03_gram_matrices_and_style.ipynb (1 point)" in out
    assert "next, in" in out and "nbgrader generate_assignment 02_content_loss" in out
    assert "c.Execute.timeout = 30\n" in (tmp_path / "class" / "nbgrader_config.py").read_text()
    assert cli.main(["course", "export-nbgrader", str(tmp_path / "class")]) == 1
    assert "exists already" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a term with nbgrader, offline

WRONG = {
    "my_content_loss": "return ((x_feat - target_feat) ** 2).sum()",  # the 1/2 forgotten
    "my_optimize": "x = x0.detach().clone().requires_grad_(True)\n"  # no zero_grad: the gradients pile up
                   "opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=100, tolerance_grad=0, "
                   "tolerance_change=0) if optimizer == 'lbfgs' else torch.optim.Adam([x], lr=0.02)\n"
                   "history = []\n\ndef closure():\n    loss = loss_fn(x)\n    loss.backward()\n"
                   "    history.append(float(loss))\n    return loss\n\nfor _ in range(steps):\n"
                   "    opt.step(closure)\nreturn x.detach().clamp(0, 1), history",
    "my_gram_matrix": "n, c, h, w = feat.shape\nf = feat.reshape(n, c, h * w)\nreturn f @ f.transpose(1, 2) / (h * w)",
    "my_gatys_targets": "P = {l: vgg(content)[l] for l in content_layers}\n"  # Grams not averaged over positions
                        "A = {l: gram_matrix(vgg(style)[l]) for l in style_layers}\nreturn P, A",
    "my_gatys_loop": "optimizer.zero_grad()\nfeats = vgg(x)\n"
                     "content = sum(content_loss(feats[l], p) / content_loss(torch.zeros_like(p), p)\n"
                     "              for l, p in P.items())\n"
                     "style = sum(((gram_matrix(feats[l]) - a) ** 2).sum() / (a**2).sum() for l, a in A.items())\n"
                     "total = alpha * content + beta * style + gamma * tv_loss(x) / n_tv\ntotal.backward()\n"
                     "history.append(float(total))\nreturn total",  # no means over layers, Grams not averaged
    "my_tv_loss": "return (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().sum()",  # horizontal differences only
    "my_shifted_gram": "n, c, h, w = feat.shape\nf = feat.reshape(n, c, h * w)\nreturn f @ f.transpose(1, 2) + shift",
    "my_chained_gram": "b = torch.nn.functional.interpolate(feat_b, size=feat_a.shape[-2:], mode='nearest')\n"
                       "return feat_a.flatten(2) @ b.flatten(2).transpose(1, 2)",
    "my_local_moments": "mu = x.mean(dim=(2, 3), keepdim=True)\n"  # global moments: no window
                        "return mu, ((x - mu) ** 2).mean(dim=(2, 3), keepdim=True)",
    "my_color_statistics": "x = img.flatten(2)\nmu = x.mean(dim=2, keepdim=True)\n"  # the sample covariance
                           "return mu, (x - mu) @ (x - mu).transpose(1, 2) / (x.shape[2] - 1)",
    "my_ssim": "mu_x, mu_y = x.mean(dim=(2, 3)), y.mean(dim=(2, 3))\n"  # global means: no window, no structure
               "return ((2 * mu_x * mu_y + k1**2) / (mu_x**2 + mu_y**2 + k1**2)).mean(dim=1)",
    "my_rgb_to_yiq": "return torch.einsum('ji,njhw->nihw', color.YIQ_FROM_RGB.to(img.dtype), img)",  # transposed
    "my_recombine": "y = color.rgb_to_yiq(stylized)[:, :1]\niq = color.rgb_to_yiq(content)[:, 1:]\n"
                    "return color.yiq_to_rgb(torch.cat([y, iq], dim=1))",  # not clamped
    "my_cholesky_transfer": "xs, xt = source.flatten(2), target.flatten(2)\n"
                            "mu_s, mu_t = xs.mean(dim=2, keepdim=True), xt.mean(dim=2, keepdim=True)\n"
                            "A = torch.linalg.cholesky((xt - mu_t) @ (xt - mu_t).transpose(1, 2))\n"  # L_t only
                            "return (A @ (xs - mu_s) + mu_t).reshape(source.shape)",
    "my_perceptual_distance": "return sum(((x - y_feats[l]) ** 2).sum(dim=1).mean(dim=(1, 2))\n"
                              "           for l, x in x_feats.items())",
    "my_training_step": "terms = loss_fn(model(batch), batch)\nterms['total'].backward()\noptimizer.step()\n"
                        "return terms",  # stale gradients kept
}
"""A typical mistake for every exercise: a student who makes them all."""

MISBEHAVING = {
    "loops": "while True:\n    pass",
    "raises": "raise RuntimeError('not today')",
    "floods": "for i in range(100_000):\n    print(i)\nreturn 0.5 * ((x_feat - target_feat) ** 2).sum()",
}
"""Notebook 02 answered by students whose code never ends, raises, or prints 100,000 lines."""


def _answered(notebook: dict, answers: dict[str, str]) -> dict:
    """A released notebook with each answer cell's stub replaced by the answer for its function."""
    nb = json.loads(json.dumps(notebook))
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers and cell["metadata"]["nbgrader"]["solution"]:
            lines = _source(cell).split("\n")
            (at,) = grading._stub_at(lines)
            indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
            body = [indent + line if line else "" for line in answers[grade_id].split("\n")]
            cell["source"] = "\n".join([*lines[:at], *body, *lines[at + 2:]])
    return nb


def _nbgrader(course: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NSTLAB_")}  # the config must set the mode
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # nbgrader runs alembic
    done = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _grades(course: Path) -> dict[tuple[str, str], tuple[float, float]]:
    _nbgrader(course, "export", "--to", "grades.csv")
    rows = [line.split(",") for line in (course / "grades.csv").read_text().splitlines()]
    head = rows[0]
    a, s, score, top = (head.index(k) for k in ("assignment", "student_id", "raw_score", "max_score"))
    return {(r[a], r[s]): (float(r[score]), float(r[top])) for r in rows[1:]}


@pytest.mark.slow
def test_a_term_with_nbgrader_grades_right_and_wrong_and_survives_misbehaviour(tmp_path):
    """Export, release, answer, autograde: full points for the reference solutions, none for typical mistakes, in
    every notebook with exercises; code that never ends, raises or floods the output loses its points, and the
    batch goes on. The grading kernels run in smoke mode with the untrained network although the environment
    sets neither: the exported config does. About 6 minutes on the build machine (2 cores)."""
    pytest.importorskip("nbgrader")
    course = tmp_path / "class"
    written = grading.export_nbgrader(course)
    right = {ex.function: ex.solution for ex in grading.GRADED}
    students = {"right": right, "wrong": WRONG}
    students |= {name: right | {"my_content_loss": answer} for name, answer in MISBEHAVING.items()}
    for path in written:
        assignment = path.stem
        _nbgrader(course, "generate_assignment", assignment, "--force")
        released = json.loads((course / "release" / assignment / path.name).read_text())
        original = json.loads((ROOT / "notebooks" / path.name).read_text())
        assert [_source(c) for c in released["cells"]] == [_source(c) for c in original["cells"]], \
            "a released notebook is the course's notebook"
        for student, answers in students.items():
            if student in MISBEHAVING and not assignment.startswith("02"):
                continue
            folder = course / "submitted" / student / assignment
            folder.mkdir(parents=True)
            (folder / path.name).write_text(json.dumps(_answered(released, answers)))
        timeout = ["--Execute.timeout=15"] if assignment.startswith("02") else []  # the endless loop, quicker
        _nbgrader(course, "autograde", assignment, "--create", *timeout)
    grades = _grades(course)
    for path in written:
        top = sum(ex.points for ex in grading.GRADED if ex.notebook == path.stem[:2])
        assert grades[path.stem, "right"] == (top, top), path.stem
        assert grades[path.stem, "wrong"] == (0, top), path.stem
    for student in MISBEHAVING:  # their loop is right: only the content loss's point is lost
        assert grades["02_content_loss", student] == (2, 3), student
    graded = course / "autograded" / "floods" / "02_content_loss" / "02_content_loss.ipynb"
    assert graded.stat().st_size < 1_000_000  # nbgrader keeps 1000 lines of each cell's output
    cells = json.loads((course / "autograded" / "right" / "05_gatys_style_transfer" /
                        "05_gatys_style_transfer.ipynb").read_text())["cells"]
    shown = "".join("".join(out.get("text") or out.get("data", {}).get("text/plain", ""))
                    for cell in cells for out in cell.get("outputs", []))
    assert "VGG19: RANDOM (UNTRAINED) WEIGHTS" in shown  # the untrained network
    assert "largest over 5 steps" in shown and "follows stylize" in shown  # smoke mode's 5 steps of the loop
