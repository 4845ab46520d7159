"""The course as nbgrader assignments — faces layer: ``nstlab course export-nbgrader DIR``.

nbgrader (JupyterHub's grading tool) releases notebooks with the solutions removed, collects the students'
copies and runs hidden tests that award points. :func:`export_nbgrader` writes an nbgrader course folder from the
course's own notebooks, which stay the one source of the text:

* ``source/<notebook>/<notebook>.ipynb`` for each notebook with exercises. Each exercise's answer cell (the cell
  that defines the student's function and holds the stub ``# YOUR CODE HERE`` / ``raise NotImplementedError``)
  becomes an autograded answer cell whose solution region holds the reference solution of :data:`GRADED`;
  ``nbgrader generate_assignment`` puts the same stub back, so the released notebook is the course's notebook.
* The cell that checks the exercise becomes a locked test cell worth the exercise's points. Its visible part
  is the check the student runs (it prints PASS or FAIL); its hidden part (:func:`nstlab.checks.grade`) runs the
  check again on hidden inputs, other values and shapes and the gradient where it matters, and raises when
  the function fails or floods the output. The Gatys loop is graded by its first step's objective and its
  curve against ``stylize``.
* ``nbgrader_config.py``: grading runs the course's smoke mode with the untrained VGG19 (no download, seconds per
  notebook) and stops a cell after :data:`CELL_TIMEOUT` seconds, so that a submission that never ends costs its
  points and not the batch.

docs/teaching.md walks through export, release, collection, autograding and the grade book.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nstlab.checks import EXERCISES

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
"""The course's notebooks, next to the package in the repository."""

STUB = ("# YOUR CODE HERE", "raise NotImplementedError")
"""The two lines where an exercise's answer goes, in every notebook (nbgrader's own stub, without parentheses)."""

CELL_TIMEOUT = 60
"""Seconds a cell may run in a grading run before nbgrader stops it: about 15 times the longest cell of the course
in a grading run, 4.1 s (notebook 07's SSIM-weighted run in the student's loop; measured 2026-12-07 on the build
machine, an Intel Xeon, 2 cores, autograding every notebook with exercises in tests/test_grading.py)."""


@dataclass(frozen=True)
class GradedExercise:
    """One graded exercise: where it is in the course, how it is tested, its points and its reference solution."""

    notebook: str  # the notebook's number, e.g. "02"
    function: str  # the student's function, defined in the answer cell (the only cell with "def <function>(")
    test: str  # the test cell is the first code cell after the answer cell that holds this text
    hidden: str  # the hidden tests: Python run after the visible part of the test cell
    points: int
    solution: str  # what replaces the stub in the answer cell (indented like the stub)


def _checked(name: str, function: str, points: int, solution: str) -> GradedExercise:
    """An exercise with a ``checks.check_<name>``: the visible test is that check, the hidden one ``checks.grade``."""
    return GradedExercise(EXERCISES[name].notebook, function, f"checks.check_{name}({function})",
                          f"checks.grade({name!r}, {function})", points, solution)


_GATYS_LOOP_HIDDEN = """\
torch.backends.cudnn.allow_tf32 = False  # float32 on a GPU too, as for the comparison above
_, graded_history = my_gatys_loop(x0, vgg, P, A, LOOP_STEPS, content_loss=content_loss, gram_matrix=gram_matrix,
                                  tv_loss=tv_loss)
torch.backends.cudnn.allow_tf32 = True
graded = experiments.loop_agreement(graded_history, packaged.history["total"])
assert graded["first step"] <= experiments.FIRST_STEP_TOLERANCE, (
    f"the first step's objective differs from stylize's by {graded['first step']:.1e}: not the same objective")
assert graded["largest"] <= experiments.LOOP_TOLERANCE, (
    f"the loss curve departs from stylize's by {graded['largest']:.1e}: not the same optimiser")"""

GRADED: tuple[GradedExercise, ...] = (
    _checked("content_loss", "my_content_loss", 1, """\
return 0.5 * ((x_feat - target_feat) ** 2).sum()"""),
    _checked("optimize", "my_optimize", 2, """\
x = x0.detach().clone().requires_grad_(True)
if optimizer == "lbfgs":
    opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=100, tolerance_grad=0, tolerance_change=0)
else:
    opt = torch.optim.Adam([x], lr=0.02)
history = []


def closure():
    opt.zero_grad()
    loss = loss_fn(x)
    loss.backward()
    history.append(float(loss.detach()))
    return loss


for _ in range(steps):
    opt.step(closure)
return x.detach().clamp(0, 1), history"""),
    _checked("gram_matrix", "my_gram_matrix", 1, """\
n, c, h, w = feat.shape
f = feat.reshape(n, c, h * w)
return f @ f.transpose(1, 2)"""),
    _checked("gatys_targets", "my_gatys_targets", 1, """\
content_feats, style_feats = vgg(content), vgg(style)
P = {layer: content_feats[layer] for layer in content_layers}
A = {layer: gram_matrix(style_feats[layer]) / (style_feats[layer].shape[-2] * style_feats[layer].shape[-1])
     for layer in style_layers}
return P, A"""),
    GradedExercise("05", "my_gatys_loop", "experiments.loop_agreement(my_history", _GATYS_LOOP_HIDDEN, 3, """\
optimizer.zero_grad()
feats = vgg(x)
content = sum(content_loss(feats[l], p) / content_loss(torch.zeros_like(p), p) for l, p in P.items()) / len(P)
style = sum(((gram_matrix(feats[l]) / (feats[l].shape[-2] * feats[l].shape[-1]) - a) ** 2).sum() / (a**2).sum()
            for l, a in A.items()) / len(A)
tv = tv_loss(x) / n_tv
total = alpha * content + beta * style + gamma * tv
total.backward()
history.append(float(total.detach()))
return total"""),
    _checked("tv_loss", "my_tv_loss", 1, """\
vertical = (img[:, :, 1:, :] - img[:, :, :-1, :]).abs().sum()
horizontal = (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().sum()
return vertical + horizontal"""),
    _checked("shifted_gram", "my_shifted_gram", 1, """\
n, c, h, w = feat.shape
f = feat.reshape(n, c, h * w) + shift
return f @ f.transpose(1, 2)"""),
    _checked("chained_gram", "my_chained_gram", 2, """\
b = torch.nn.functional.interpolate(feat_b, size=feat_a.shape[-2:], mode="bilinear", align_corners=False)
return feat_a.flatten(2) @ b.flatten(2).transpose(1, 2)"""),
    _checked("local_moments", "my_local_moments", 1, """\
channels = x.shape[1]
w = gaussian_window(window_size, sigma, dtype=x.dtype)
window = torch.outer(w, w).expand(channels, 1, window_size, window_size)
mu = F.conv2d(x, window, groups=channels)
var = F.conv2d(x * x, window, groups=channels) - mu**2
return mu, var"""),
    _checked("ssim", "my_ssim", 2, """\
channels = x.shape[1]
coords = torch.arange(window_size, dtype=x.dtype) - (window_size - 1) / 2
g = torch.exp(-(coords**2) / (2 * sigma**2))
g = g / g.sum()
window = (g[:, None] * g[None, :]).expand(channels, 1, window_size, window_size)


def blur(img):
    return F.conv2d(img, window, groups=channels)


mu_x, mu_y = blur(x), blur(y)
var_x = blur(x * x) - mu_x**2
var_y = blur(y * y) - mu_y**2
cov = blur(x * y) - mu_x * mu_y
c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
return ssim_map.mean(dim=(1, 2, 3))"""),
    _checked("rgb_to_yiq", "my_rgb_to_yiq", 1, """\
M = color.YIQ_FROM_RGB.to(img.dtype)
return torch.einsum("ij,njhw->nihw", M, img)"""),
    _checked("luminance_only", "my_recombine", 1, """\
y = color.rgb_to_yiq(stylized)[:, :1]
iq = color.rgb_to_yiq(content)[:, 1:]
return color.yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp(0, 1)"""),
    _checked("color_statistics", "my_color_statistics", 1, """\
x = img.flatten(2)
mu = x.mean(dim=2, keepdim=True)
return mu, (x - mu) @ (x - mu).transpose(1, 2) / x.shape[2]"""),
    _checked("cholesky_transfer", "my_cholesky_transfer", 2, """\
xs, xt = source.flatten(2), target.flatten(2)
mu_s, mu_t = xs.mean(dim=2, keepdim=True), xt.mean(dim=2, keepdim=True)
cov_s = (xs - mu_s) @ (xs - mu_s).transpose(1, 2) / xs.shape[2]
cov_t = (xt - mu_t) @ (xt - mu_t).transpose(1, 2) / xt.shape[2]
A = torch.linalg.cholesky(cov_t) @ torch.linalg.inv(torch.linalg.cholesky(cov_s))
return (A @ (xs - mu_s) + mu_t).reshape(source.shape)"""),
    _checked("perceptual_distance", "my_perceptual_distance", 2, """\
total = 0
for layer, x in x_feats.items():
    x_hat = x / torch.linalg.vector_norm(x, dim=1, keepdim=True)
    y_hat = y_feats[layer] / torch.linalg.vector_norm(y_feats[layer], dim=1, keepdim=True)
    total = total + ((x_hat - y_hat) ** 2).sum(dim=1).mean(dim=(1, 2))
return total"""),
    _checked("training_step", "my_training_step", 2, """\
optimizer.zero_grad()
terms = loss_fn(model(batch), batch)
terms["total"].backward()
optimizer.step()
return terms"""),
)
"""Every graded exercise of the course, in order. The export fails, naming the cell, when a notebook holds a stub
that no entry covers, or an entry's cells are missing."""

NBGRADER_CONFIG = '''\
"""nbgrader's settings for the nstlab course, written by `nstlab course export-nbgrader` (see docs/teaching.md)."""

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "nstlab"

# Where a solution was, the released notebook shows the stub of the course's own notebooks.
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError"}}

# Grading runs the course in its smoke mode (64 px, a few steps) with the untrained VGG19: no download, seconds
# per notebook. The second line runs in each grading kernel before the notebook does (IPython's exec_lines).
c.Execute.extra_arguments = [
    "--HistoryManager.hist_file=:memory:",
    "--IPKernelApp.exec_lines=import os; os.environ.update(NSTLAB_SMOKE='1', NSTLAB_WEIGHTS='random')",
]

# A cell that runs longer is interrupted and counts as failed: a submission that never ends loses the points of
# that cell, and the batch goes on. nbgrader also keeps at most 1000 lines of each cell's output.
c.Execute.timeout = {timeout}
c.LimitOutput.max_lines = 1000
'''


def _stub_at(lines: Sequence[str]) -> list[int]:
    """The line numbers where the two lines of :data:`STUB` start, at the same indentation."""
    found = []
    for i, (first, second) in enumerate(zip(lines, lines[1:])):
        indent = first[: len(first) - len(first.lstrip())]
        if first == indent + STUB[0] and second == indent + STUB[1]:
            found.append(i)
    return found


def with_solution(source: str, solution: str) -> str:
    """An answer cell's source with its stub replaced by nbgrader's solution region holding ``solution``.

    Inputs: source: the cell, with the two lines of :data:`STUB` exactly once; solution: unindented code.
    Returns: the source with ``### BEGIN SOLUTION``, the solution and ``### END SOLUTION`` at the stub's indentation.
    """
    lines = source.split("\n")
    found = _stub_at(lines)
    if len(found) != 1:
        raise ValueError(f"with_solution: the cell must hold the stub {STUB!r} once: {source[:80]!r}...")
    (at,) = found
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    body = [indent + line if line else "" for line in textwrap.dedent(solution).strip("\n").split("\n")]
    return "\n".join([*lines[:at], indent + "### BEGIN SOLUTION", *body, indent + "### END SOLUTION", *lines[at + 2:]])


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _nbgrader(cell: dict, grade_id: str, *, solution: bool = False, points: int | None = None) -> None:
    """Mark ``cell`` for nbgrader: an autograded answer (solution) or a locked test cell worth ``points``."""
    meta = {"grade": points is not None, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    cell["metadata"]["nbgrader"] = meta


def graded_notebook(notebook: dict, exercises: Sequence[GradedExercise], where: str) -> dict:
    """An nbgrader source notebook from one of the course's notebooks (a JSON dict; not changed).

    Every exercise's answer cell gets its solution region, the test cell its hidden tests and points.
    Raises ValueError naming the cell when an exercise's cells are missing or a stub is left that no exercise covers.
    """
    nb = json.loads(json.dumps(notebook))
    cells = nb["cells"]
    graded_answers = set()
    for ex in exercises:
        answers = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and f"def {ex.function}(" in _source(c)]
        if len(answers) != 1:
            raise ValueError(f"{where}: expected one cell defining {ex.function}, found {len(answers)}")
        (a,) = answers
        tests = [i for i, c in enumerate(cells) if i > a and c["cell_type"] == "code" and ex.test in _source(c)]
        if not tests:
            raise ValueError(f"{where}: no code cell after {ex.function}'s holds its test {ex.test!r}")
        t = tests[0]
        cells[a]["source"] = with_solution(_source(cells[a]), ex.solution)
        _nbgrader(cells[a], ex.function, solution=True)
        hidden = f"\n### BEGIN HIDDEN TESTS\n{ex.hidden}\n### END HIDDEN TESTS"
        cells[t]["source"] = _source(cells[t]) + hidden
        _nbgrader(cells[t], f"test_{ex.function}", points=ex.points)
        graded_answers.add(a)
    for i, c in enumerate(cells):
        if i not in graded_answers and _stub_at(_source(c).split("\n")):
            raise ValueError(f"{where}: cell {i} holds an exercise's stub that nstlab.grading.GRADED does not grade")
    return nb


def export_nbgrader(course_dir: str | Path, *, notebooks: str | Path = NOTEBOOKS,
                    timeout: int = CELL_TIMEOUT) -> list[Path]:
    """Write an nbgrader course folder from the course's notebooks: ``source/<notebook>/<notebook>.ipynb`` for every
    notebook with exercises, and ``nbgrader_config.py``.

    Inputs: course_dir: the folder (created; it must not hold a ``source`` folder yet); notebooks: the course's
    notebooks (default: the repository's); timeout: seconds a cell may run in a grading run.
    Returns: the notebooks written, in course order.
    """
    course_dir, notebooks = Path(course_dir), Path(notebooks)
    paths = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"export_nbgrader: no course notebooks (NN_name.ipynb) in {notebooks}")
    if (course_dir / "source").exists():
        raise FileExistsError(f"export_nbgrader: {course_dir / 'source'} exists already; export into a new folder")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ValueError(f"export_nbgrader: timeout must be a positive number of seconds, got {timeout!r}")
    written = []
    for path in paths:
        notebook = json.loads(path.read_text())
        exercises = [ex for ex in GRADED if ex.notebook == path.stem[:2]]
        graded = graded_notebook(notebook, exercises, path.name)
        if not exercises:
            continue
        target = course_dir / "source" / path.stem / path.name
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(graded, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    (course_dir / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(timeout=timeout))
    return written
