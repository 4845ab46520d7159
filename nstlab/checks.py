"""Checks for the notebooks' "your turn" exercises — faces layer (they compare with the textbook functions).

Each ``check_*`` function runs the student's function and the package's reference on the same
fixed, seeded float64 inputs (several shapes, batches of more than one image included), prints
the maximum relative error with PASS or FAIL, and returns a :class:`CheckResult`. Where the gradient
matters (a function used inside a loss), it also back-propagates the same random weights through
both and compares the gradients. A check never raises: a function that returns None (or raises
NotImplementedError) is "not implemented yet", and any other error, a wrong type or a wrong shape
is reported in one line.

The student's functions travel between notebooks (each notebook is its own kernel) through small
files: :func:`save_solution` writes a function that passes its check to ``my_solutions/<name>.py``
next to the notebooks, :func:`load_solution` reads it back in a later notebook, checks it again, and
says clearly when it falls back to the package's reference instead. :func:`solution_or_reference`
does the same within one notebook. :func:`show_source` shows a textbook function's code, highlighted.
"""

from __future__ import annotations

import datetime
import html
import importlib.util
import inspect
import io
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nstlab import color, losses
from nstlab.ssim import local_statistics, ssim

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


def _clone(arg: Any, grad: bool = False) -> Any:
    """A fresh copy of a check's input: tensors (leaves that require grad if ``grad``), dicts of them, or as is."""
    if isinstance(arg, torch.Tensor):
        return arg.detach().clone().requires_grad_(grad and arg.is_floating_point())
    if isinstance(arg, Mapping):
        return {k: _clone(v, grad) for k, v in arg.items()}
    return arg


def _leaves(args: Sequence[Any]) -> list[torch.Tensor]:
    """The tensors of ``args`` (in dicts too) that require grad, in order."""
    found = []
    for a in args:
        values = a.values() if isinstance(a, Mapping) else [a]
        found += [v for v in values if isinstance(v, torch.Tensor) and v.requires_grad]
    return found


def _shape(args: Sequence[Any]) -> str:
    def one(a: Any) -> str:
        if isinstance(a, torch.Tensor):
            return str(tuple(a.shape))
        if isinstance(a, Mapping):
            return "{" + ", ".join(f"{k}: {tuple(v.shape)}" for k, v in a.items()) + "}"
        return a.__name__ if callable(a) and hasattr(a, "__name__") else repr(a)

    return " and ".join(one(a) for a in args)


def _gradients(output: torch.Tensor, leaves: list[torch.Tensor], seed: int) -> torch.Tensor:
    """d(sum(w * output))/d(leaves) for fixed random weights w, flattened into one vector."""
    w = _randn(*output.shape, seed=seed).to(output.dtype)
    grads = torch.autograd.grad((output * w).sum(), leaves, allow_unused=True)
    return torch.cat([(torch.zeros_like(x) if g is None else g).flatten() for g, x in zip(grads, leaves)])


def _compare(
    name: str,
    student: Callable[..., Any],
    reference: Callable[..., torch.Tensor],
    cases: list[tuple[Any, ...]],
    grad: bool = False,
) -> CheckResult:
    """Run both functions on every case, print one line and return the CheckResult.

    ``grad``: also compare the gradients of sum(w * output) with respect to every float input, for fixed
    random weights w (a function used inside a loss must let the gradient through)."""

    def finish(passed: bool, error: float | None, text: str) -> CheckResult:
        result = CheckResult(name, passed, error, f"{name}: {text}")
        print(result)
        return result

    worst, worst_grad = 0.0, 0.0
    for i, args in enumerate(cases):
        ref_args = [_clone(a, grad) for a in args]
        expected = reference(*ref_args)
        where = f"input {_shape(args)}"
        mine = [_clone(a, grad) for a in args]
        try:
            got = student(*mine)
        except NotImplementedError:
            return finish(False, None, "not implemented yet (your function raised NotImplementedError)")
        except Exception as err:  # one line instead of a traceback
            return finish(False, None, f"FAIL — your function raised {type(err).__name__}: {err} ({where})")
        if got is None:
            return finish(False, None, "not implemented yet (your function returned None)")
        try:
            values = torch.as_tensor(got.detach() if isinstance(got, torch.Tensor) else got, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return finish(False, None, f"FAIL — expected a tensor, got {type(got).__name__} ({where})")
        if values.shape != expected.shape:
            shapes = f"returned shape {tuple(values.shape)} for {where}; expected {tuple(expected.shape)}"
            return finish(False, None, f"FAIL — {shapes}")
        error = rel_error(values, expected.detach())
        if not error <= TOLERANCE:  # also catches NaN
            return finish(False, error, f"max relative error {error:.1e} — FAIL (tolerance {TOLERANCE:.0e}, {where})")
        worst = max(worst, error)
        if not grad:
            continue
        if not isinstance(got, torch.Tensor) or not got.requires_grad:
            return finish(False, error, "FAIL — the values are right, but your result carries no gradient "
                                        f"(did you detach it, or leave torch for a Python number?) ({where})")
        g_error = rel_error(_gradients(got, _leaves(mine), 1000 + i), _gradients(expected, _leaves(ref_args), 1000 + i))
        if not g_error <= TOLERANCE:
            return finish(False, error, f"the values are right, but the gradient's max relative error is "
                                        f"{g_error:.1e} — FAIL (tolerance {TOLERANCE:.0e}, {where})")
        worst_grad = max(worst_grad, g_error)
    gradient = f" (gradient {worst_grad:.1e})" if grad else ""
    return finish(True, worst, f"max relative error {worst:.1e}{gradient} — PASS")


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _grown(shape: Sequence[int], seed: int, case: int = 0, keep: Sequence[int] = ()) -> tuple[int, ...]:
    """``shape`` itself for seed 0 (the inputs each notebook shows); for another seed, every dimension whose index
    is not in ``keep`` grows by 0 to 2, drawn from the seed and the case's number (:func:`grade`'s hidden inputs)."""
    if seed == 0:
        return tuple(shape)
    extra = torch.randint(0, 3, (len(shape),), generator=torch.Generator().manual_seed(100 * seed + case))
    return tuple(d if i in keep else d + int(e) for i, (d, e) in enumerate(zip(shape, extra)))


# ----------------------------------------------------------------------------- the exercises' checks


# Each check takes ``seed``: 0 gives the inputs the notebooks show; :func:`grade` adds other seeds, which draw other
# values and other shapes (see :func:`_grown`).


def check_content_loss(fn: Callable[[torch.Tensor, torch.Tensor], Any], *, seed: int = 0) -> CheckResult:
    """fn(x_feat (N, C, H, W), target_feat (N, C, H, W)) -> scalar tensor 1/2 sum (F - P)^2 (gradient too)."""
    k = 1000 * seed
    shapes = [_grown(s, seed, i) for i, s in enumerate([(1, 4, 5, 6), (2, 3, 4, 4), (3, 8, 2, 7)])]
    cases = [(_randn(*s, seed=k + i), _randn(*s, seed=k + 100 + i)) for i, s in enumerate(shapes)]
    return _compare("content_loss", fn, losses.content_loss, cases, grad=True)


def check_gram_matrix(fn: Callable[[torch.Tensor], Any], *, seed: int = 0) -> CheckResult:
    """fn(feat (N, C, H, W)) -> (N, C, C) unnormalised Gram matrices G_ij = sum_k F_ik F_jk (gradient too)."""
    shapes = [_grown(s, seed, i) for i, s in enumerate([(1, 3, 4, 5), (2, 4, 3, 3), (3, 5, 6, 2)])]
    cases = [(_randn(*s, seed=1000 * seed + i),) for i, s in enumerate(shapes)]
    return _compare("gram_matrix", fn, losses.gram_matrix, cases, grad=True)


def check_tv_loss(fn: Callable[[torch.Tensor], Any], *, seed: int = 0) -> CheckResult:
    """fn(img (N, C, H, W)) -> scalar anisotropic L1 total variation, summed over the batch (gradient too)."""
    shapes = [_grown(s, seed, i) for i, s in enumerate([(1, 3, 5, 6), (2, 3, 4, 7), (1, 1, 3, 3)])]
    cases = [(_rand(*s, seed=1000 * seed + i),) for i, s in enumerate(shapes)]
    return _compare("tv_loss", fn, losses.tv_loss, cases, grad=True)


def _joined(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn, with a tuple of tensors as its result joined into one flat tensor (None stays None) for :func:`_compare`."""

    def run(*args: Any) -> Any:
        out = fn(*args)
        return None if out is None else torch.cat([t.flatten() for t in out])

    run.__name__ = getattr(fn, "__name__", "function")
    return run


def local_moments(x: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference of :func:`check_local_moments`: the Gaussian-weighted local mean and variance of x, the first
    and third maps of ``nstlab.ssim.local_statistics(x, x)``."""
    mu, _, var, _, _ = local_statistics(x, x, window_size, sigma)
    return mu, var


def check_local_moments(fn: Callable[..., Any], *, seed: int = 0) -> CheckResult:
    """fn(x (N, C, H, W), window_size=11, sigma=1.5) -> (mu, var), each (N, C, H - 10, W - 10): the local mean and
    variance of SSIM's Gaussian window, per channel, without padding (gradient too)."""
    shapes = [_grown(s, seed, i) for i, s in enumerate([(1, 1, 12, 13), (2, 3, 11, 16)])]
    cases = [(_rand(*s, seed=1000 * seed + 90 + i),) for i, s in enumerate(shapes)]
    return _compare("local_moments", _joined(fn), _joined(local_moments), cases, grad=True)


def check_ssim(fn: Callable[[torch.Tensor, torch.Tensor], Any], *, seed: int = 0) -> CheckResult:
    """fn(x, y (N, C, H, W)) -> (N,) mean SSIM per image (Gaussian window 11, sigma 1.5, L = 1; gradient too)."""
    shapes = [_grown(s, seed, i) for i, s in enumerate([(1, 1, 16, 16), (2, 3, 13, 15), (1, 3, 11, 11)])]
    cases = []
    for i, s in enumerate(shapes):
        x = _rand(*s, seed=1000 * seed + i)
        cases.append((x, (0.7 * x + 0.3 * _rand(*s, seed=1000 * seed + 100 + i)).clamp(0, 1)))
    return _compare("ssim", fn, ssim, cases, grad=True)


def check_rgb_to_yiq(fn: Callable[[torch.Tensor], Any], *, seed: int = 0) -> CheckResult:
    """fn(img (N, 3, H, W) RGB) -> (N, 3, H, W) YIQ."""
    shapes = [_grown(s, seed, i, keep=[1]) for i, s in enumerate([(1, 3, 4, 5), (2, 3, 3, 3)])]
    cases = [(_rand(*s, seed=1000 * seed + i),) for i, s in enumerate(shapes)]
    return _compare("rgb_to_yiq", fn, color.rgb_to_yiq, cases)


def check_luminance_only(fn: Callable[[torch.Tensor, torch.Tensor], Any], *, seed: int = 0) -> CheckResult:
    """fn(stylized, content (N, 3, H, W)) -> RGB with the Y of stylized and the I, Q of content,
    clamped to [0, 1] (the last step of luminance-only transfer)."""
    k = 1000 * seed
    shapes = [_grown(s, seed, i, keep=[1]) for i, s in enumerate([(1, 3, 4, 5), (2, 3, 3, 3)])]
    cases = [(_rand(*s, seed=k + i), _rand(*s, seed=k + 100 + i)) for i, s in enumerate(shapes)]
    return _compare("luminance_only", fn, color.recombine_luminance, cases)


def shifted_gram(feat: torch.Tensor, shift: float) -> torch.Tensor:
    """The reference of :func:`check_shifted_gram`: ``losses.gram_matrix(feat, shift=shift)``, the Gram of F + s."""
    return losses.gram_matrix(feat, shift=shift)


def _toy_pixel_loss(seed: int) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """A small non-convex loss over (1, 3, H, W) "pixels" and its start, in float64: sum (x^2 - t)^2 plus a
    smoothness term, with targets t up to 2.25, so that the minimiser leaves [0, 1] (the returned image is clamped)."""
    shape = _grown((1, 3, 5, 6), seed, keep=[0, 1])
    x0 = _rand(*shape, seed=1000 * seed + 60)
    target = 2.25 * _rand(*shape, seed=1000 * seed + 61)

    def loss(x: torch.Tensor) -> torch.Tensor:
        return ((x**2 - target) ** 2).sum() + 0.5 * ((x[..., 1:] - x[..., :-1]) ** 2).sum()

    return loss, x0


def check_optimize(fn: Callable[..., Any], *, seed: int = 0) -> CheckResult:
    """fn(loss_fn, x0, steps, optimizer) -> (x clamped to [0, 1], the loss of every step): the optimisation loop over
    the pixels, with ``stylize``'s L-BFGS (one evaluation per step, 100 pairs, step 1, zero tolerances) and Adam
    (learning rate 0.02). Checked on a small float64 loss, 4 steps of each optimiser, against the reference
    :func:`nstlab.experiments.optimize_pixels`: the losses, the image, and that x0 is left unchanged."""
    from nstlab.experiments.nb02_content_loss import optimize_pixels

    name = "optimize"

    def finish(passed: bool, error: float | None, text: str) -> CheckResult:
        result = CheckResult(name, passed, error, f"{name}: {text}")
        print(result)
        return result

    worst = 0.0
    for optimizer in ("lbfgs", "adam"):
        loss, x0 = _toy_pixel_loss(seed)
        expected_x, expected_losses = optimize_pixels(loss, x0, 4, optimizer)
        start = x0.clone()
        try:
            out = fn(loss, x0, 4, optimizer)
        except NotImplementedError:
            return finish(False, None, "not implemented yet (your function raised NotImplementedError)")
        except Exception as err:
            return finish(False, None, f"FAIL — your function raised {type(err).__name__}: {err} ({optimizer})")
        if out is None:
            return finish(False, None, "not implemented yet (your function returned None)")
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], torch.Tensor)):
            return finish(False, None, f"FAIL — expected (image, list of losses), got {type(out).__name__}")
        x, history = out
        if not torch.equal(x0, start):
            return finish(False, None, f"FAIL — your loop changed x0 ({optimizer}): optimise a copy of it")
        if len(history) != len(expected_losses):
            return finish(False, None, f"FAIL — {len(history)} losses for 4 steps of {optimizer}; expected "
                                       f"{len(expected_losses)} (one per step)")
        if x.shape != expected_x.shape:
            return finish(False, None, f"FAIL — the image has shape {tuple(x.shape)}; expected {tuple(x0.shape)}")
        error = max(rel_error(history, expected_losses), rel_error(x.detach(), expected_x))
        if not error <= TOLERANCE:
            where = ("losses" if rel_error(history, expected_losses) > TOLERANCE else
                     "final image (not clamped to [0, 1]?)" if x.min() < 0 or x.max() > 1 else "final image")
            return finish(False, error, f"max relative error {error:.1e} in the {where} with {optimizer} — FAIL "
                                        f"(tolerance {TOLERANCE:.0e})")
        worst = max(worst, error)
    return finish(True, worst, f"max relative error {worst:.1e} (L-BFGS and Adam, 4 steps each) — PASS")


_TARGET_FILTERS = (_randn(4, 3, 3, 3, seed=70), _randn(5, 4, 3, 3, seed=71))


def _tiny_features(img: torch.Tensor) -> dict[str, torch.Tensor]:
    """A stand-in for VGGFeatures in float64: two 3x3 convolutions with ReLU, average pooling between them."""
    a = torch.nn.functional.conv2d(img, _TARGET_FILTERS[0], padding=1).relu()
    b = torch.nn.functional.conv2d(torch.nn.functional.avg_pool2d(a, 2), _TARGET_FILTERS[1], padding=1).relu()
    return {"a": a, "b": b}


def check_gatys_targets(fn: Callable[..., Any], *, seed: int = 0) -> CheckResult:
    """fn(vgg, content, style, content_layers, style_layers, gram_matrix) -> (P, A): P = {content layer: the
    content's features}, A = {style layer: the style's Gram divided by its number of positions}. Checked with a small
    float64 stand-in for the network, a content and a style image of other sizes, against
    :func:`nstlab.experiments.gatys_targets`."""
    from nstlab.experiments import gatys_targets

    content = _rand(*_grown((1, 3, 8, 10), seed, 0, keep=[0, 1]), seed=1000 * seed + 80)
    style = _rand(*_grown((1, 3, 12, 8), seed, 1, keep=[0, 1]), seed=1000 * seed + 81)
    layers = (["b"], ["a", "b"])

    def as_vector(f: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            out = f(*args)
            if out is None:
                return None
            P, A = out
            return torch.cat([P[k].flatten() for k in layers[0]] + [A[k].flatten() for k in layers[1]])
        return run

    case = (_tiny_features, content, style, *layers, losses.gram_matrix)
    return _compare("gatys_targets", as_vector(fn), as_vector(gatys_targets), [case])


def check_shifted_gram(fn: Callable[[torch.Tensor, float], Any], *, seed: int = 0) -> CheckResult:
    """fn(feat (N, C, H, W), shift s) -> (N, C, C) Gram matrices of F + s, unnormalised (gradient too)."""
    shifts = [1.0, -1.0, 0.5] if seed == 0 else [0.25 * seed, -1.5, 2.0]
    shapes = [_grown(s, seed, i) for i, s in enumerate([(1, 3, 4, 5), (2, 4, 3, 3), (1, 5, 2, 6)])]
    cases = [(_randn(*s, seed=1000 * seed + i).relu(), shift) for i, (s, shift) in enumerate(zip(shapes, shifts))]
    return _compare("shifted_gram", fn, shifted_gram, cases, grad=True)


def check_chained_gram(fn: Callable[[torch.Tensor, torch.Tensor], Any], *, seed: int = 0) -> CheckResult:
    """fn(feat_a (N, Ca, H, W), feat_b (N, Cb, h, w) with h <= H, w <= W) -> (N, Ca, Cb) unnormalised
    Gram of feat_a and feat_b upsampled (bilinear, align_corners=False) to H x W (gradient too)."""
    pairs = [((1, 3, 6, 6), (1, 4, 3, 3)), ((2, 2, 4, 6), (2, 3, 2, 3)), ((1, 3, 4, 4), (1, 5, 4, 4))]
    k, cases = 1000 * seed, []
    for i, (a, b) in enumerate(pairs):
        a = _grown(a, seed, i, keep=[0])  # feat_a grows in C, H and W, feat_b in C only: it stays no larger
        b = _grown(b, seed, i, keep=[0, 2, 3])
        cases.append((_randn(*a, seed=k + i).relu(), _randn(*b, seed=k + 100 + i).relu()))
    return _compare("chained_gram", fn, losses.chained_gram, cases, grad=True)


def check_color_statistics(fn: Callable[[torch.Tensor], Any], *, seed: int = 0) -> CheckResult:
    """fn(img (N, 3, H, W)) -> (mu (N, 3, 1), Sigma (N, 3, 3)): the mean colour and the colour covariance
    1/M sum_k (x_k - mu)(x_k - mu)^T of each image, against ``color.color_statistics``."""
    shapes = [_grown(s, seed, i, keep=[1]) for i, s in enumerate([(1, 3, 4, 5), (2, 3, 6, 3)])]
    cases = [(_rand(*s, seed=1000 * seed + 95 + i) ** 2,) for i, s in enumerate(shapes)]
    return _compare("color_statistics", _joined(fn), _joined(color.color_statistics), cases)


def cholesky_transfer(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The reference of :func:`check_cholesky_transfer`: ``color.match_color_histogram`` in its Cholesky mode,
    without clamping and without the small ridge eps that guards flat images."""
    return color.match_color_histogram(source, target, "cholesky", clamp=False, eps=0.0)


def check_cholesky_transfer(fn: Callable[[torch.Tensor, torch.Tensor], Any], *, seed: int = 0) -> CheckResult:
    """fn(source (N, 3, H, W), target (N, 3, Ht, Wt)) -> source recoloured x' = L_t L_s^-1 (x - mu_s) + mu_t per
    image (L the Cholesky factor of the colour covariance), not clamped."""
    pairs = [((1, 3, 5, 6), (1, 3, 4, 7)), ((2, 3, 4, 4), (2, 3, 5, 5))]
    pairs = [(_grown(a, seed, i, keep=[0, 1]), _grown(b, seed, 10 + i, keep=[0, 1])) for i, (a, b) in enumerate(pairs)]
    k = 1000 * seed
    cases = [(_rand(*a, seed=k + i), _rand(*b, seed=k + 100 + i) ** 2) for i, (a, b) in enumerate(pairs)]
    return _compare("cholesky_transfer", fn, cholesky_transfer, cases)


Features = Mapping[str, torch.Tensor]


def check_perceptual_distance(fn: Callable[[Features, Features], Any], *, seed: int = 0) -> CheckResult:
    """fn(x_feats, y_feats: {layer: (N, C, H, W)}) -> (N,) sum over layers of the mean over positions of
    || x^ - y^ ||^2, x^ the feature vector at a position divided by its length (gradient too)."""
    layers = {"a": (2, 4, 5, 5), "b": (2, 6, 3, 2)}
    shapes = {k: _grown(s, seed, i, keep=[0]) for i, (k, s) in enumerate(layers.items())}
    one = _grown((3, 5, 4, 3), seed, keep=[0])
    k0 = 1000 * seed
    cases = [
        ({k: _randn(*s, seed=k0 + i).relu() + 0.01 for i, (k, s) in enumerate(shapes.items())},
         {k: _randn(*s, seed=k0 + 10 + i).relu() + 0.01 for i, (k, s) in enumerate(shapes.items())}),
        ({"c": _randn(*one, seed=k0 + 20)}, {"c": _randn(1, *one[1:], seed=k0 + 21)}),  # y: one image for the batch
    ]
    return _compare("perceptual_distance", fn, losses.perceptual_distance, cases, grad=True)


def check_training_step(fn: Callable[..., Any], *, seed: int = 0) -> CheckResult:
    """fn(model, optimizer, batch, loss_fn) -> the loss terms of the batch (a dict with "total"): one training
    step of a feed-forward network. Checked on a tiny float64 :class:`nstlab.fast.TransformerNet` with Adam and
    a small fixed loss: two steps (their batches drawn from ``seed``), starting each with stale gradients in the
    parameters, against the reference :func:`nstlab.experiments.training_step`; compares the loss and the update of
    every parameter."""
    from nstlab.experiments.nb11_fast_style_transfer import training_step

    name = "training_step"

    def finish(passed: bool, error: float | None, text: str) -> CheckResult:
        result = CheckResult(name, passed, error, f"{name}: {text}")
        print(result)
        return result

    runs = {}
    for who, step in (("reference", training_step), ("yours", fn)):
        model, optimizer = _tiny_training_setup()
        totals, updates = [], []
        for k in range(2):
            batch = _rand(2, 3, 12, 12, seed=1000 * seed + 50 + k)
            before = [p.detach().clone() for p in model.parameters()]
            for i, p in enumerate(model.parameters()):  # stale gradients: a step must start by clearing them
                p.grad = _randn(*p.shape, seed=200 + i)
            try:
                out = step(model, optimizer, batch, _tiny_loss)
            except NotImplementedError:
                return finish(False, None, "not implemented yet (your function raised NotImplementedError)")
            except Exception as err:
                return finish(False, None, f"FAIL — your function raised {type(err).__name__}: {err} (step {k + 1})")
            if out is None:
                return finish(False, None, "not implemented yet (your function returned None)")
            total = out.get("total") if isinstance(out, Mapping) else out
            if not isinstance(total, torch.Tensor) or total.numel() != 1:
                got = type(out).__name__
                return finish(False, None, f"FAIL — expected the loss terms (a dict with 'total'), got {got}")
            totals.append(float(total.detach()))
            updates.append(torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)]))
        runs[who] = (totals, updates)
    (ref_totals, ref_updates), (totals, updates) = runs["reference"], runs["yours"]
    loss_error = rel_error(totals, ref_totals)
    update_error = max(float((u - r).abs().max() / r.abs().max()) for u, r in zip(updates, ref_updates))
    error = max(loss_error, update_error)
    detail = f"(loss {loss_error:.1e}, parameter updates {update_error:.1e}; 2 steps)"
    if not error <= TOLERANCE:
        return finish(False, error, f"max relative error {error:.1e} {detail} — FAIL (tolerance {TOLERANCE:.0e})")
    return finish(True, error, f"max relative error {error:.1e} {detail} — PASS")


def _tiny_training_setup() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    from nstlab.fast import TransformerNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = TransformerNet(channels=4, n_residual=1).double().train()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


_TINY_FILTERS = _randn(6, 3, 3, 3, seed=7)
_TINY_STYLE = _rand(1, 3, 12, 12, seed=8)


def _tiny_loss(output: torch.Tensor, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """A perceptual loss in miniature (a fixed random 3x3 convolution + ReLU as the loss network): relative
    content and style (Gram) errors and the mean L1 TV, as ``nstlab.fast.PerceptualLoss`` combines them."""

    def features(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(x, _TINY_FILTERS, padding=1).relu()

    f, p = features(output), features(batch)
    a = losses.gram_matrix(features(_TINY_STYLE), "hw")
    content = ((f - p) ** 2).sum() / (p**2).sum()
    style = ((losses.gram_matrix(f, "hw") - a) ** 2).sum() / (a**2).sum()
    tv = losses.tv_loss(output, reduction="mean")
    return {"total": content + style + 0.1 * tv, "content": content, "style": style, "tv": tv}


# ----------------------------------------------------------------------------- your functions, in later notebooks


@dataclass(frozen=True)
class Exercise:
    """One "your turn" exercise: its check, the package's reference (what a fallback uses) and its notebook."""

    check: Callable[..., CheckResult]  # check(fn, *, seed=0)
    reference: Callable[..., Any]
    notebook: str


def _experiment(name: str) -> Callable[..., Any]:
    """The reference solution ``nstlab.experiments.<name>``, imported when first called (the experiments load
    matplotlib, which importing the checks does not)."""

    def reference(*args: Any, **kwargs: Any) -> Any:
        from nstlab import experiments

        return getattr(experiments, name)(*args, **kwargs)

    reference.__module__, reference.__name__, reference.__qualname__ = "nstlab.experiments", name, name
    return reference


EXERCISES: dict[str, Exercise] = {
    "content_loss": Exercise(check_content_loss, losses.content_loss, "02"),
    "optimize": Exercise(check_optimize, _experiment("optimize_pixels"), "02"),
    "gram_matrix": Exercise(check_gram_matrix, losses.gram_matrix, "03"),
    "tv_loss": Exercise(check_tv_loss, losses.tv_loss, "04"),
    "shifted_gram": Exercise(check_shifted_gram, shifted_gram, "06"),
    "chained_gram": Exercise(check_chained_gram, losses.chained_gram, "06"),
    "local_moments": Exercise(check_local_moments, local_moments, "07"),
    "ssim": Exercise(check_ssim, ssim, "07"),
    "rgb_to_yiq": Exercise(check_rgb_to_yiq, color.rgb_to_yiq, "08"),
    "luminance_only": Exercise(check_luminance_only, color.recombine_luminance, "08"),
    "color_statistics": Exercise(check_color_statistics, color.color_statistics, "08"),
    "cholesky_transfer": Exercise(check_cholesky_transfer, cholesky_transfer, "08"),
    "perceptual_distance": Exercise(check_perceptual_distance, losses.perceptual_distance, "09"),
    "gatys_targets": Exercise(check_gatys_targets, _experiment("gatys_targets"), "05"),
    "training_step": Exercise(check_training_step, _experiment("training_step"), "11"),
}
"""Every exercise by name: what :func:`save_solution`, :func:`load_solution` and :func:`solution_or_reference` take."""

SOLUTIONS_DIR = "my_solutions"
"""Where :func:`save_solution` writes, relative to the working directory (a notebook's folder in Jupyter);
the environment variable NSTLAB_SOLUTIONS overrides it."""

_HEADER = """# Your {name} from notebook {notebook}, saved by nstlab.checks.save_solution on {date}
# (it passed its check). Later notebooks read it with nstlab.checks.load_solution({name!r}).
import math

import torch
import torch.nn.functional as F

import nstlab
from nstlab import color, losses
from nstlab.ssim import gaussian_window

"""


HIDDEN_SEEDS = (1, 2)
"""The seeds of :func:`grade`'s hidden inputs (seed 0 gives the inputs the notebooks show)."""

OUTPUT_LIMIT = 100_000
"""The most characters a function may print while :func:`grade` runs it (a graded notebook stays readable)."""


def grade(name: str, fn: Callable[..., Any]) -> None:
    """The hidden test of an exercise in a graded notebook (see :mod:`nstlab.grading`): its check, output captured,
    on the notebook's inputs and on hidden ones (the seeds :data:`HIDDEN_SEEDS`: other values, other shapes, and
    the gradient where the check compares one).

    Inputs: name: the exercise, a key of :data:`EXERCISES`; fn: the student's function.
    Raises: AssertionError with the first failing check's line, or when fn printed more than
    :data:`OUTPUT_LIMIT` characters. Prints one line when every check passes.
    """
    exercise = _exercise("grade", name)
    for seed in (0, *HIDDEN_SEEDS):
        printed = io.StringIO()
        with redirect_stdout(printed):
            result = exercise.check(fn, seed=seed)
        n_printed = len(printed.getvalue()) - len(result.message) - 1
        if n_printed > OUTPUT_LIMIT:
            raise AssertionError(f"{name}: your function printed {n_printed:,} characters in its check (at most "
                                 f"{OUTPUT_LIMIT:,} are allowed in a graded run)")
        if not result.passed:
            raise AssertionError(f"{result.message} (hidden inputs, seed {seed})" if seed else result.message)
    print(f"{name}: passes on the notebook's inputs and on hidden ones (seeds {', '.join(map(str, HIDDEN_SEEDS))})")


def solutions_dir() -> Path:
    """The folder of saved solutions: $NSTLAB_SOLUTIONS, else ``my_solutions`` in the working directory."""
    return Path(os.environ.get("NSTLAB_SOLUTIONS") or SOLUTIONS_DIR)


def _exercise(fn_name: str, name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"{fn_name}: no exercise named {name!r}; the exercises are {sorted(EXERCISES)}")
    return EXERCISES[name]


def _reference_name(name: str) -> str:
    ref = EXERCISES[name].reference
    return f"{ref.__module__}.{ref.__qualname__}"


def _quiet_check(exercise: Exercise, fn: Callable[..., Any]) -> CheckResult:
    with redirect_stdout(io.StringIO()):
        return exercise.check(fn)


def save_solution(fn: Callable[..., Any], name: str) -> Path | None:
    """Save your function for later notebooks, if it passes its check (printed): its source code goes to
    ``my_solutions/<name>.py`` (see :func:`solutions_dir`). Define it with ``def`` in a cell.

    Inputs: fn: your function; name: the exercise, a key of :data:`EXERCISES` (e.g. "content_loss").
    Returns: the file written, or None (the reason is printed: it does not pass yet, or its source
    cannot be read).
    """
    exercise = _exercise("save_solution", name)
    if not exercise.check(fn).passed:
        print(f"{name}: not saved — it does not pass its check yet; until it does, later notebooks use "
              f"the package's {_reference_name(name)}")
        return None
    try:
        if getattr(fn, "__name__", "<lambda>") == "<lambda>":
            raise TypeError("a lambda; write it with def")
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as err:
        print(f"{name}: not saved — the source of your function cannot be read ({err})")
        return None
    folder = solutions_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    header = _HEADER.format(name=name, notebook=exercise.notebook, date=datetime.date.today().isoformat())
    path.write_text(f"{header}{source}\n\nsolution = {fn.__name__}\n")
    print(f"{name}: saved to {path} — later notebooks use it through checks.load_solution({name!r})")
    return path


def load_solution(name: str) -> Callable[..., Any]:
    """Your function saved by :func:`save_solution`, checked again — or the package's reference, saying why.

    Prints one line of the check and one line saying which function is used: yours from
    ``my_solutions/<name>.py``, or the reference because no file was saved, it cannot be imported, or it
    fails its check. Returns the function to use.
    """
    exercise = _exercise("load_solution", name)
    path = solutions_dir() / f"{name}.py"
    fallback = f"using the package's {_reference_name(name)}"
    if not path.is_file():
        print(f"{name}: no saved solution ({path} does not exist: do notebook {exercise.notebook}'s exercise, "
              f"then checks.save_solution there) — {fallback}")
        return exercise.reference
    try:
        spec = importlib.util.spec_from_file_location(f"my_solutions_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = module.solution
    except Exception as err:  # a broken file: say so, carry on with the reference
        print(f"{name}: {path} cannot be loaded ({type(err).__name__}: {err}) — {fallback}")
        return exercise.reference
    if exercise.check(fn).passed:
        print(f"{name}: using your {fn.__name__} from {path} (notebook {exercise.notebook})")
        return fn
    print(f"{name}: your saved function does not pass its check — {fallback}")
    return exercise.reference


def solution_or_reference(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Your function if it passes its check (printed), else the package's reference, saying so."""
    exercise = _exercise("solution_or_reference", name)
    if exercise.check(fn).passed:
        print(f"{name}: using your {getattr(fn, '__name__', 'function')}")
        return fn
    print(f"{name}: {_reference_name(name)} stands in for yours until it passes")
    return exercise.reference


def run_yours_or_reference(yours: Callable[..., Any], reference: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """yours(*args, **kwargs); if it is not written yet (raises NotImplementedError or returns None), says so
    and returns reference(*args, **kwargs) instead. Any other error of yours is raised: it is your bug to see."""
    try:
        out = yours(*args, **kwargs)
    except NotImplementedError:
        out = None
    if out is not None:
        print(f"ran your {getattr(yours, '__name__', 'function')}")
        return out
    print(f"your {getattr(yours, '__name__', 'function')} is not written yet: running the reference solution "
          f"{_qualified(reference)} instead (read it with checks.show_source)")
    return reference(*args, **kwargs)


def _qualified(obj: Any) -> str:
    module = getattr(obj, "__module__", "") or ""
    if module.startswith("nstlab.experiments."):
        module = "nstlab.experiments"  # every experiment is available there
    return f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', repr(obj)))}"


# ----------------------------------------------------------------------------- reading the reference


@dataclass(frozen=True)
class Source:
    """The source of a function or class, shown highlighted in a notebook and as plain text elsewhere."""

    name: str
    path: str
    line: int
    code: str

    def __str__(self) -> str:
        return f"# {self.name} — {self.path}, line {self.line}\n{self.code}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        body = highlight(self.code, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True))
        title = f"<b>{html.escape(self.name)}</b> — {html.escape(self.path)}, line {self.line}"
        return f"<div style='border-left:3px solid #888;padding-left:8px'><div>{title}</div>{body}</div>"


def show_source(obj: Any) -> Source:
    """The source code of a package function or class, highlighted: read the reference where you use it.

    E.g. ``checks.show_source(nstlab.losses.gram_matrix)`` as a cell's last line. The textbook functions
    (``nstlab.losses``, ``ssim``, ``color``, ``vgg``, ``images``) and the experiments are meant to be read;
    the engine's private fast paths (``nstlab._kernels``) are refused, with the textbook twin to read instead.
    Returns: a :class:`Source` (HTML in Jupyter, text in ``print``).
    """
    target = inspect.unwrap(obj)
    module = getattr(target, "__module__", "") or ""
    if module == "nstlab._kernels":
        raise ValueError(
            f"show_source: {target.__qualname__} is one of the engine's fast paths (nstlab._kernels), held equal "
            "to the textbook by tests/test_kernels.py; read the textbook version in nstlab.losses or nstlab.ssim"
        )
    try:
        lines, first = inspect.getsourcelines(target)
        path = inspect.getsourcefile(target) or "?"
    except (OSError, TypeError) as err:
        raise ValueError(f"show_source: no source for {obj!r} ({err})") from None
    root = Path(__file__).resolve().parent.parent
    try:
        shown = str(Path(path).resolve().relative_to(root))
    except ValueError:
        shown = path
    return Source(_qualified(target), shown, max(first, 1), textwrap.dedent("".join(lines)).rstrip() + "\n")
