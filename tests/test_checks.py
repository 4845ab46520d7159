"""Tests for nstlab.checks: references and independent solutions pass, typical mistakes fail
with a clear one-line message, and nothing raises; solutions saved in one notebook load in another, with a
printed fallback to the reference; show_source shows the textbook."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nstlab import checks, color, losses
from nstlab.ssim import ssim


def test_rel_error():
    assert checks.rel_error(1.0, 1.0) == 0.0
    assert checks.rel_error([1.0, 2.0], [1.0, 3.0]) == pytest.approx(0.2)
    assert checks.rel_error(0.0, 0.0) == 0.0
    assert checks.rel_error(torch.tensor([0.0]), torch.tensor([1e-9])) == pytest.approx(0.1)


CHECKS_AND_REFERENCES = [(exercise.check, exercise.reference) for exercise in checks.EXERCISES.values()]


def test_every_check_is_an_exercise():
    names = {name.removeprefix("check_") for name in dir(checks) if name.startswith("check_")}
    assert names == set(checks.EXERCISES)


@pytest.mark.parametrize("check, reference", CHECKS_AND_REFERENCES, ids=list(checks.EXERCISES))
def test_references_pass(check, reference, capsys):
    result = check(reference)
    assert result.passed and result.max_rel_error is not None and result.max_rel_error <= checks.TOLERANCE
    printed = capsys.readouterr().out.strip()
    assert printed == str(result) == result.message
    assert printed.endswith("— PASS") and "max relative error" in printed


def _student_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM written from the formula with a 2-D Gaussian kernel (not the package's separable one)."""
    t = torch.arange(11, dtype=x.dtype) - 5
    g = torch.exp(-(t**2) / (2 * 1.5**2))
    kernel = torch.outer(g, g) / torch.outer(g, g).sum()
    c = x.shape[1]
    k = kernel.expand(c, 1, 11, 11)

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, k, groups=c)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.mean(dim=(1, 2, 3))


def _student_gram(feat: torch.Tensor) -> torch.Tensor:
    return torch.einsum("nchw,ndhw->ncd", feat, feat)


def _student_shifted_gram(feat: torch.Tensor, shift: float) -> torch.Tensor:
    f = feat.flatten(2) + shift
    return torch.einsum("ncm,ndm->ncd", f, f)


def _student_chained_gram(feat_a: torch.Tensor, feat_b: torch.Tensor) -> torch.Tensor:
    up = F.interpolate(feat_b, size=feat_a.shape[-2:], mode="bilinear", align_corners=False)
    return feat_a.flatten(2) @ up.flatten(2).transpose(1, 2)


def _student_cholesky(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image, a loop over the batch, torch.cov (the covariance over the pixels: correction=0)."""
    out = []
    for s, t in zip(source, target):
        xs, xt = s.flatten(1), t.flatten(1)
        lt, ls = (torch.linalg.cholesky(torch.cov(x, correction=0)) for x in (xt, xs))
        a = lt @ torch.linalg.inv(ls)
        out.append((a @ (xs - xs.mean(1, keepdim=True)) + xt.mean(1, keepdim=True)).reshape(s.shape))
    return torch.stack(out)


def _student_perceptual(x_feats, y_feats):
    total = 0
    for name, x in x_feats.items():
        cos = F.cosine_similarity(x, y_feats[name].expand_as(x), dim=1, eps=0)  # |x^ - y^|^2 = 2 - 2 cos
        total = total + (2 - 2 * cos).mean(dim=(1, 2))
    return total


def _student_training_step(model, optimizer, batch, loss_fn):
    for p in model.parameters():
        p.grad = None
    terms = loss_fn(model(batch), batch)
    terms["total"].backward()
    optimizer.step()
    return terms


def _student_yiq(img: torch.Tensor) -> torch.Tensor:
    r, g, b = img.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    i = 0.59590059 * r - 0.27455667 * g - 0.32134392 * b
    q = 0.21153661 * r - 0.52273617 * g + 0.31119955 * b
    return torch.stack([y, i, q], dim=1)


def _student_loop(loss_fn, x0, steps, optimizer="lbfgs", zero_grad=True, clamp=True, history_size=100,
                  in_place=False):
    """A pixel loop written independently (Adam built first, a closure with a local name, the step count kept);
    the keywords make it one of the typical mistakes."""
    pixels = x0 if in_place else x0.clone().detach()
    pixels.requires_grad = True
    opt = (torch.optim.Adam([pixels], lr=0.02) if optimizer == "adam" else
           torch.optim.LBFGS([pixels], lr=1, max_iter=1, history_size=history_size, tolerance_grad=0,
                             tolerance_change=0))
    losses_seen = []

    def evaluate():
        if zero_grad:
            opt.zero_grad()
        value = loss_fn(pixels)
        value.backward()
        losses_seen.append(value.item())
        return value

    for _ in range(steps):
        opt.step(evaluate)
    out = pixels.detach()
    return (out.clamp(0, 1) if clamp else out), losses_seen


@pytest.mark.parametrize(
    "check, solution",
    [
        (checks.check_gram_matrix, _student_gram),
        (checks.check_ssim, _student_ssim),
        (checks.check_rgb_to_yiq, _student_yiq),
        (checks.check_content_loss, lambda x, p: 0.5 * torch.sum((x - p) ** 2)),
        (checks.check_shifted_gram, _student_shifted_gram),
        (checks.check_chained_gram, _student_chained_gram),
        (checks.check_cholesky_transfer, _student_cholesky),
        (checks.check_perceptual_distance, _student_perceptual),
        (checks.check_training_step, _student_training_step),
        (checks.check_optimize, _student_loop),
    ],
)
def test_independent_solutions_pass(check, solution):
    assert check(solution).passed


def _forgets_zero_grad(model, optimizer, batch, loss_fn):
    terms = loss_fn(model(batch), batch)
    terms["total"].backward()
    optimizer.step()
    return terms


def _forgets_the_step(model, optimizer, batch, loss_fn):
    optimizer.zero_grad()
    terms = loss_fn(model(batch), batch)
    terms["total"].backward()
    return terms


def _nearest_chained_gram(feat_a, feat_b):
    up = F.interpolate(feat_b, size=feat_a.shape[-2:], mode="nearest")
    return feat_a.flatten(2) @ up.flatten(2).transpose(1, 2)


def _perceptual_without_unit_vectors(x_feats, y_feats):
    return sum(((x - y_feats[k]) ** 2).sum(dim=1).mean(dim=(1, 2)) for k, x in x_feats.items())


def _flat(feat: torch.Tensor) -> torch.Tensor:
    return feat.reshape(feat.shape[0], feat.shape[1], -1)


def _rounded_yiq(img: torch.Tensor) -> torch.Tensor:
    """YIQ with the matrix rounded to three decimals: close, but not the reference."""
    m = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=img.dtype)
    return torch.einsum("ij,njhw->nihw", m, img)


def _nan_gram(feat: torch.Tensor) -> torch.Tensor:
    return torch.full((feat.shape[0], feat.shape[1], feat.shape[1]), math.nan, dtype=feat.dtype)


SHAPE_FAIL = "FAIL — returned shape"
MISMATCH = "FAIL (tolerance 1e-06"
NO_GRADIENT = "FAIL — the values are right, but your result carries no gradient"


@pytest.mark.parametrize(
    "check, wrong, expected",
    [
        (checks.check_gram_matrix, lambda f: losses.gram_matrix(f, "hw"), MISMATCH),
        (checks.check_gram_matrix, lambda f: _flat(f) @ _flat(f), "FAIL — your function raised RuntimeError"),
        (
            checks.check_gram_matrix,
            lambda f: losses.gram_matrix(f)[0],
            f"{SHAPE_FAIL} (3, 3) for input (1, 3, 4, 5); expected (1, 3, 3)",
        ),
        (checks.check_content_loss, lambda x, p: ((x - p) ** 2).sum(), MISMATCH),
        (checks.check_content_loss, lambda x, p: float(((x - p) ** 2).sum().detach() / 2), NO_GRADIENT),
        (checks.check_gram_matrix, lambda f: losses.gram_matrix(f).detach(), NO_GRADIENT),
        (checks.check_shifted_gram, lambda f, s: losses.gram_matrix(f) + s, MISMATCH),  # shifts G, not F
        (checks.check_shifted_gram, lambda f, s: losses.gram_matrix(f + s, "hw"), MISMATCH),
        (checks.check_chained_gram, _nearest_chained_gram, MISMATCH),
        (checks.check_chained_gram, lambda a, b: losses.chained_gram(a, b, "hw"), MISMATCH),
        (checks.check_cholesky_transfer, lambda s, t: color.match_color_histogram(s, t, "sym", clamp=False), MISMATCH),
        (checks.check_cholesky_transfer, lambda s, t: checks.cholesky_transfer(t, s), SHAPE_FAIL),  # roles swapped
        (checks.check_perceptual_distance, _perceptual_without_unit_vectors, MISMATCH),
        (checks.check_perceptual_distance, lambda x, y: losses.perceptual_distance(x, y).sum(), SHAPE_FAIL),
        (checks.check_training_step, _forgets_zero_grad, "parameter updates 2.0e+00; 2 steps) — FAIL"),
        (checks.check_training_step, _forgets_the_step, "parameter updates 1.0e+00; 2 steps) — FAIL"),
        (checks.check_training_step, lambda m, o, b, f: f(m(b), b)["total"].item(), "FAIL — expected the loss terms"),
        (checks.check_optimize, lambda *a: _student_loop(*a, zero_grad=False), "in the losses with lbfgs — FAIL"),
        (checks.check_optimize, lambda *a: _student_loop(*a, clamp=False),
         "in the final image (not clamped to [0, 1]?) with lbfgs"),
        (checks.check_optimize, lambda *a: _student_loop(*a, history_size=2), "in the final image with lbfgs — FAIL"),
        (checks.check_optimize, lambda *a: _student_loop(*a, in_place=True),
         "FAIL — your loop changed x0 (lbfgs): optimise a copy of it"),
        (checks.check_optimize, lambda f, x, n, o: _student_loop(f, x, n + 1, o), "FAIL — 5 losses for 4 steps"),
        (checks.check_tv_loss, lambda img: losses.tv_loss(img, "l2"), MISMATCH),
        (checks.check_tv_loss, lambda img: losses.tv_loss(img, "l1", reduction="mean"), MISMATCH),
        (
            checks.check_ssim,
            lambda x, y: ssim(x, y).mean(),
            f"{SHAPE_FAIL} () for input (1, 1, 16, 16) and (1, 1, 16, 16); expected (1,)",
        ),
        (checks.check_ssim, lambda x, y: ssim(x, y, sigma=1.0), MISMATCH),
        (checks.check_rgb_to_yiq, _rounded_yiq, MISMATCH),
        (checks.check_luminance_only, lambda s, c: color.recombine_luminance(s, c, clamp=False), MISMATCH),
        (checks.check_gram_matrix, lambda f: "a string", "FAIL — expected a tensor, got str"),
        (checks.check_gram_matrix, _nan_gram, "max relative error nan — FAIL"),
    ],
)
def test_mistakes_fail_with_a_clear_message(check, wrong, expected, capsys):
    result = check(wrong)
    assert not result.passed
    assert expected in result.message
    assert capsys.readouterr().out.strip() == result.message


def test_wrong_values_report_the_error():
    result = checks.check_gram_matrix(lambda f: losses.gram_matrix(f, "hw"))
    assert result.max_rel_error == pytest.approx(19 / 21)  # G / 20 against G on the first (1, 3, 4, 5) input
    assert "max relative error 9.0e-01 — FAIL" in result.message


def test_not_implemented(capsys):
    def stub(feat):
        pass

    def raising(feat):
        raise NotImplementedError

    assert checks.check_gram_matrix(stub).message == "gram_matrix: not implemented yet (your function returned None)"
    result = checks.check_tv_loss(raising)
    assert not result.passed and result.max_rel_error is None
    assert result.message == "tv_loss: not implemented yet (your function raised NotImplementedError)"
    assert "Traceback" not in capsys.readouterr().out


# ----------------------------------------------------------------------------- solutions that travel


def my_gram(feat):
    """A student's Gram, with a helper import the saved file must provide (torch)."""
    f = feat.flatten(2)
    return torch.bmm(f, f.transpose(1, 2))


def my_wrong_gram(feat):
    return losses.gram_matrix(feat, "hw")


@pytest.fixture
def solutions(tmp_path, monkeypatch):
    monkeypatch.setenv("NSTLAB_SOLUTIONS", str(tmp_path / "my_solutions"))
    return tmp_path / "my_solutions"


def test_a_passing_solution_is_saved_and_loaded_back(solutions, capsys):
    path = checks.save_solution(my_gram, "gram_matrix")
    assert path == solutions / "gram_matrix.py" and path.is_file()
    text = path.read_text()
    assert "def my_gram(feat):" in text and "solution = my_gram" in text and "notebook 03" in text
    capsys.readouterr()
    loaded = checks.load_solution("gram_matrix")
    assert loaded is not losses.gram_matrix and loaded.__name__ == "my_gram"
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("gram_matrix: max relative error") and out[0].endswith("— PASS")
    assert out[1] == f"gram_matrix: using your my_gram from {path} (notebook 03)"
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    assert torch.allclose(loaded(x), losses.gram_matrix(x))


def test_a_failing_solution_is_not_saved(solutions, capsys):
    assert checks.save_solution(my_wrong_gram, "gram_matrix") is None
    assert not (solutions / "gram_matrix.py").exists()
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == ("gram_matrix: not saved — it does not pass its check yet; until it does, later notebooks use "
                    "the package's nstlab.losses.gram_matrix")


def test_a_lambda_is_not_saved(solutions, capsys):
    assert checks.save_solution(lambda f: losses.gram_matrix(f), "gram_matrix") is None
    assert "cannot be read (a lambda; write it with def)" in capsys.readouterr().out


def test_loading_falls_back_to_the_reference_and_says_why(solutions, capsys):
    assert checks.load_solution("tv_loss") is losses.tv_loss  # nothing saved
    out = capsys.readouterr().out
    assert "tv_loss: no saved solution" in out and "notebook 04's exercise" in out
    assert out.strip().endswith("using the package's nstlab.losses.tv_loss")
    solutions.mkdir()
    (solutions / "tv_loss.py").write_text("def broken(img):\n    return img.sum(\n")  # a syntax error
    assert checks.load_solution("tv_loss") is losses.tv_loss
    assert "cannot be loaded (SyntaxError" in capsys.readouterr().out
    (solutions / "tv_loss.py").write_text("def wrong(img):\n    return img.sum()\n\nsolution = wrong\n")
    assert checks.load_solution("tv_loss") is losses.tv_loss
    out = capsys.readouterr().out.splitlines()
    assert "FAIL" in out[0]
    assert out[1] == "tv_loss: your saved function does not pass its check — using the package's nstlab.losses.tv_loss"


def test_unknown_exercise_names_are_refused():
    with pytest.raises(ValueError, match="no exercise named 'gram'"):
        checks.load_solution("gram")


def test_solution_or_reference(capsys):
    assert checks.solution_or_reference(my_gram, "gram_matrix") is my_gram
    assert capsys.readouterr().out.splitlines()[-1] == "gram_matrix: using your my_gram"
    assert checks.solution_or_reference(my_wrong_gram, "gram_matrix") is losses.gram_matrix
    assert capsys.readouterr().out.splitlines()[-1] == (
        "gram_matrix: nstlab.losses.gram_matrix stands in for yours until it passes")


def test_run_yours_or_reference(capsys):
    def mine(x):
        raise NotImplementedError

    def reference(x):
        return 2 * x

    assert checks.run_yours_or_reference(mine, reference, 3) == 6
    assert "your mine is not written yet: running the reference solution" in capsys.readouterr().out
    assert checks.run_yours_or_reference(lambda x: x + 1, reference, 3) == 4

    def buggy(x):
        raise KeyError("mine")

    with pytest.raises(KeyError):  # a real error of yours is yours to see
        checks.run_yours_or_reference(buggy, reference, 3)


# ----------------------------------------------------------------------------- show_source


def test_show_source_shows_the_textbook_highlighted():
    shown = checks.show_source(losses.gram_matrix)
    assert shown.name == "nstlab.losses.gram_matrix" and shown.path == "nstlab/losses.py"
    assert shown.code.startswith("def gram_matrix(") and "gram = f @ f.transpose(1, 2)" in shown.code
    lines = (checks.Path(losses.__file__).read_text().splitlines())
    assert lines[shown.line - 1].startswith("def gram_matrix(")
    html = shown._repr_html_()
    assert "nstlab.losses.gram_matrix" in html and "<span" in html and "style=" in html  # inline colours
    assert str(shown).startswith("# nstlab.losses.gram_matrix — nstlab/losses.py, line")
    from nstlab import experiments
    assert checks.show_source(experiments.gatys_loop).name == "nstlab.experiments.gatys_loop"


def test_show_source_refuses_the_engine_kernels():
    from nstlab import _kernels

    with pytest.raises(ValueError, match="engine's fast paths"):
        checks.show_source(_kernels.gram)
