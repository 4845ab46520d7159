"""Tests for nstlab.checks: references and independent solutions pass, typical mistakes fail
with a clear one-line message, and nothing raises."""

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


CHECKS_AND_REFERENCES = [
    (checks.check_content_loss, losses.content_loss),
    (checks.check_gram_matrix, losses.gram_matrix),
    (checks.check_tv_loss, losses.tv_loss),
    (checks.check_ssim, ssim),
    (checks.check_rgb_to_yiq, color.rgb_to_yiq),
    (checks.check_luminance_only, color.recombine_luminance),
]


@pytest.mark.parametrize("check, reference", CHECKS_AND_REFERENCES)
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


def _student_yiq(img: torch.Tensor) -> torch.Tensor:
    r, g, b = img.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    i = 0.59590059 * r - 0.27455667 * g - 0.32134392 * b
    q = 0.21153661 * r - 0.52273617 * g + 0.31119955 * b
    return torch.stack([y, i, q], dim=1)


@pytest.mark.parametrize(
    "check, solution",
    [
        (checks.check_gram_matrix, _student_gram),
        (checks.check_ssim, _student_ssim),
        (checks.check_rgb_to_yiq, _student_yiq),
        (checks.check_content_loss, lambda x, p: float(((x - p) ** 2).sum() / 2)),  # a float is fine
    ],
)
def test_independent_solutions_pass(check, solution):
    assert check(solution).passed


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
