"""Checks for the notebooks' "your turn" exercises — faces layer (they compare with the textbook functions).

Each ``check_*`` function runs the student's function and the package's reference on the same
fixed, seeded float64 inputs (several shapes, batches of more than one image included), prints
the maximum relative error with PASS or FAIL, and returns a :class:`CheckResult`. It never raises:
a function that returns None (or raises NotImplementedError) is "not implemented yet", and any
other error, a wrong type or a wrong shape is reported in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nstlab import color, losses
from nstlab.ssim import ssim

TOLERANCE = 1e-6
"""Largest accepted relative error (inputs are float64)."""


def rel_error(x: Any, y: Any) -> float:
    """Maximum elementwise relative error max |x - y| / max(1e-8, |x| + |y|), as in CS231n."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    return float(((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8)).max())


@dataclass
class CheckResult:
    """The outcome of one check; ``str()`` gives the printed line."""

    name: str
    passed: bool
    max_rel_error: float | None  # None when the function could not be compared
    message: str

    def __str__(self) -> str:
        return self.message


def _shape(args: Sequence[torch.Tensor]) -> str:
    return " and ".join(str(tuple(a.shape)) for a in args)


def _compare(
    name: str,
    student: Callable[..., Any],
    reference: Callable[..., torch.Tensor],
    cases: list[tuple[torch.Tensor, ...]],
) -> CheckResult:
    """Run both functions on every case, print one line and return the CheckResult."""

    def finish(passed: bool, error: float | None, text: str) -> CheckResult:
        result = CheckResult(name, passed, error, f"{name}: {text}")
        print(result)
        return result

    worst = 0.0
    for args in cases:
        expected = reference(*(a.clone() for a in args))
        where = f"input {_shape(args)}"
        try:
            got = student(*(a.clone() for a in args))
        except NotImplementedError:
            return finish(False, None, "not implemented yet (your function raised NotImplementedError)")
        except Exception as err:  # one line instead of a traceback
            return finish(False, None, f"FAIL — your function raised {type(err).__name__}: {err} ({where})")
        if got is None:
            return finish(False, None, "not implemented yet (your function returned None)")
        try:
            got = torch.as_tensor(got.detach() if isinstance(got, torch.Tensor) else got, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return finish(False, None, f"FAIL — expected a tensor, got {type(got).__name__} ({where})")
        if got.shape != expected.shape:
            shapes = f"returned shape {tuple(got.shape)} for {where}; expected {tuple(expected.shape)}"
            return finish(False, None, f"FAIL — {shapes}")
        error = rel_error(got, expected)
        if not error <= TOLERANCE:  # also catches NaN
            return finish(False, error, f"max relative error {error:.1e} — FAIL (tolerance {TOLERANCE:.0e}, {where})")
        worst = max(worst, error)
    return finish(True, worst, f"max relative error {worst:.1e} — PASS")


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def check_content_loss(fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> CheckResult:
    """fn(x_feat (N, C, H, W), target_feat (N, C, H, W)) -> scalar 1/2 sum (F - P)^2."""
    shapes = [(1, 4, 5, 6), (2, 3, 4, 4), (3, 8, 2, 7)]
    cases = [(_randn(*s, seed=i), _randn(*s, seed=100 + i)) for i, s in enumerate(shapes)]
    return _compare("content_loss", fn, losses.content_loss, cases)


def check_gram_matrix(fn: Callable[[torch.Tensor], Any]) -> CheckResult:
    """fn(feat (N, C, H, W)) -> (N, C, C) unnormalised Gram matrices G_ij = sum_k F_ik F_jk."""
    shapes = [(1, 3, 4, 5), (2, 4, 3, 3), (3, 5, 6, 2)]
    cases = [(_randn(*s, seed=i),) for i, s in enumerate(shapes)]
    return _compare("gram_matrix", fn, losses.gram_matrix, cases)


def check_tv_loss(fn: Callable[[torch.Tensor], Any]) -> CheckResult:
    """fn(img (N, C, H, W)) -> scalar anisotropic L1 total variation, summed over the batch."""
    shapes = [(1, 3, 5, 6), (2, 3, 4, 7), (1, 1, 3, 3)]
    cases = [(_rand(*s, seed=i),) for i, s in enumerate(shapes)]
    return _compare("tv_loss", fn, lambda img: losses.tv_loss(img, "l1", reduction="sum"), cases)


def check_ssim(fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> CheckResult:
    """fn(x, y (N, C, H, W)) -> (N,) mean SSIM per image (Gaussian window 11, sigma 1.5, L = 1)."""
    shapes = [(1, 1, 16, 16), (2, 3, 13, 15), (1, 3, 11, 11)]
    cases = []
    for i, s in enumerate(shapes):
        x = _rand(*s, seed=i)
        cases.append((x, (0.7 * x + 0.3 * _rand(*s, seed=100 + i)).clamp(0, 1)))
    return _compare("ssim", fn, ssim, cases)


def check_rgb_to_yiq(fn: Callable[[torch.Tensor], Any]) -> CheckResult:
    """fn(img (N, 3, H, W) RGB) -> (N, 3, H, W) YIQ."""
    shapes = [(1, 3, 4, 5), (2, 3, 3, 3)]
    cases = [(_rand(*s, seed=i),) for i, s in enumerate(shapes)]
    return _compare("rgb_to_yiq", fn, color.rgb_to_yiq, cases)


def check_luminance_only(fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> CheckResult:
    """fn(stylized, content (N, 3, H, W)) -> RGB with the Y of stylized and the I, Q of content,
    clamped to [0, 1] (the last step of luminance-only transfer)."""
    shapes = [(1, 3, 4, 5), (2, 3, 3, 3)]
    cases = [(_rand(*s, seed=i), _rand(*s, seed=100 + i)) for i, s in enumerate(shapes)]
    return _compare("luminance_only", fn, color.recombine_luminance, cases)
