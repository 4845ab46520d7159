"""Notebook 05, Gatys et al.'s algorithm — faces layer: the algorithm written out (:func:`gatys_loop`, the
reference solution of the notebook's own loop), the layers' loss scales and the normalised VGG19, the α/β sweep,
the style layers taken cumulatively against α/β, the survey's raw α, and one design choice at a time
(initialisation, optimiser, pooling, network).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from nstlab import losses, plotting
from nstlab import vgg as _vgg
from nstlab.images import resize
from nstlab.optimize import Result
from nstlab.plotting import draw_image
from nstlab.settings import smoke_or
from nstlab.vgg import GATYS_STYLE_LAYERS, VGGFeatures

from .common import (
    SWEEP_CONTENT,
    SWEEP_STYLE,
    Table,
    _footer,
    _image,
    _preset_value,
    _run_description,
    course_size,
    plot_runs,
    run_variants,
)
from .nb02_content_loss import optimize_pixels


GATYS_COMPARISONS: dict[str, dict[str, dict[str, Any]]] = {
    "init": {"init: content": {"init": "content"}, "init: noise": {"init": "noise"}},
    "optimizer": {"L-BFGS": {"optimizer": "lbfgs"}, "Adam": {"optimizer": "adam"}},
    "pooling": {"max pooling": {"pooling": "max"}, "average pooling": {"pooling": "avg"}},
    "vgg": {"plain VGG19": {"normalized_vgg": False}, "normalized VGG19": {"normalized_vgg": True}},
}
"""The design choices compared in notebook 05: {comparison: {variant name: stylize options}}."""


def visualize_comparison(
    which: str,
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """One of :data:`GATYS_COMPARISONS` ("init", "optimizer", "pooling", "vgg") on the same inputs and seed.

    Inputs: which: the comparison; content, style: images; size: long side (default :func:`course_size`);
    steps: per run (default :func:`course_steps`); options: other ``stylize`` options for both runs.
    Returns: the Figure: content, style, both results, their loss curves (and loss vs time for "optimizer").
    """
    if which not in GATYS_COMPARISONS:
        raise ValueError(f"visualize_comparison: which must be one of {tuple(GATYS_COMPARISONS)}, got {which!r}")
    size = course_size(size)
    c, s = _image(content, size), _image(style)
    results = run_variants(c, s, GATYS_COMPARISONS[which], size, steps, seed, weights, **options)
    steps_done = len(next(iter(results.values())).history["total"])
    return plot_runs(
        results, ("total", "content", "style"), {"content": c, "style": s}, time_axis=which == "optimizer",
        suptitle=f"{' vs '.join(map(str, results))}: {steps_done} steps, {size} px, seed {seed}",
    )


STYLE_WEIGHT_FACTORS = (1e-2, 1e-1, 1.0, 1e1)
"""Notebook 05's sweep: β as multiples of the preset's style_weight; smoke mode uses 0.1, 1 and 10."""


def style_weight_sweep(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    style_weights: Sequence[float] | None = None,
    content_weight: float = 1.0,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> dict[float, Result]:
    """One run per style weight β (content weight α fixed), same inputs and seed: Gatys et al.'s Fig. 3 row.

    Inputs: style_weights: default STYLE_WEIGHT_FACTORS times the preset's style_weight (smoke: 0.1, 1
    and 10 times); others as :func:`run_variants`.
    Returns: {β: Result}, in the order given.
    """
    if not style_weights:
        factors = smoke_or(STYLE_WEIGHT_FACTORS, (1e-1, 1.0, 1e1))
        style_weights = [f * _preset_value("style_weight", options) for f in factors]
    variants = {float(w): {"style_weight": float(w)} for w in style_weights}
    return run_variants(content, style, variants, size, steps, seed, weights, content_weight=content_weight, **options)


def visualize_style_weight_sweep(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    style_weights: Sequence[float] | None = None,
    content_weight: float = 1.0,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """The α/β trade-off: content, one result per β titled with α/β, the style image, and the final
    content and style losses against β (log-log).

    Inputs: as :func:`style_weight_sweep`. Returns: the Figure.
    """
    size = course_size(size)
    c, s = _image(content, size), _image(style)
    results = style_weight_sweep(c, s, style_weights, content_weight, size, steps, seed, weights, **options)
    panels = [("content", c)] + [
        (f"β = {w:.0e}\nα/β = {content_weight / w:.0e}", r.image) for w, r in results.items()
    ] + [("style", s)]
    fig = Figure(figsize=(max(2.3 * len(panels), 8.0), 6.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.1])
    for ax, (title, img) in zip(top.subplots(1, len(panels), squeeze=False)[0], panels):
        draw_image(ax, img, title)
    ax = bottom.subplots()
    betas = list(results)
    for term, marker in (("content", "o"), ("style", "s")):
        ax.plot(betas, [r.history[term][-1] for r in results.values()], marker=marker, label=f"final {term} loss")
    ax.set(xscale="log", yscale="log", xlabel=f"style weight β (α = {content_weight:g})", ylabel="loss (unweighted)")
    ax.set_title("the trade-off: more style weight, less style loss, more content loss", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    steps_done = len(next(iter(results.values())).history["total"])
    fig.suptitle(f"α/β sweep (Gatys et al., Fig. 3): {steps_done} steps, {size} px, seed {seed}")
    fig.supxlabel(_footer(results), fontsize=8)
    return fig


def layer_loss_scales(
    image: Any = SWEEP_STYLE,
    layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    size: int | None = None,
    weights: str | None = "auto",
    normalized: bool = False,
    pooling: str = "max",
) -> dict[str, dict[str, float]]:
    """Per layer: the mean activation of ``image`` and its style-loss scale E_l(0, A) = ΣA²/(4N²M²),
    the loss of an all-zero Gram (what ``normalize_losses`` divides each E_l by).

    Inputs: image: the style image; size: long side (default :func:`course_size`); normalized: use
    the normalized VGG19 (every channel's mean activation 1 over the bundled images).
    Returns: {"mean activation": {layer: value}, "E_l(0, A)": {layer: value}}.
    """
    x = _image(image, course_size(size))
    net = VGGFeatures(list(layers), weights=weights, pooling=pooling, normalized=normalized)
    with torch.no_grad():
        feats = net(x.to(net.device))
    out: dict[str, dict[str, float]] = {"mean activation": {}, "E_l(0, A)": {}}
    for layer in layers:
        f = feats[layer].double()
        out["mean activation"][layer] = float(f.mean())
        out["E_l(0, A)"][layer] = losses.style_target(losses.gram_matrix(f, "hw"), f.shape[-2] * f.shape[-1]).scale
    return out


def visualize_layer_scales(
    image: Any = SWEEP_STYLE,
    layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    size: int | None = None,
    weights: str | None = "auto",
) -> Figure:
    """Why losses need normalising: per style layer, the mean activation and the raw style-loss
    scale E_l(0, A), for the plain and the normalized VGG19 (bars, log scale).

    Inputs: as :func:`layer_loss_scales`. Returns: the Figure.
    """
    plain = layer_loss_scales(image, layers, size, weights, normalized=False)
    norm = layer_loss_scales(image, layers, size, weights, normalized=True)
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    x = np.arange(len(layers))
    axes = fig.subplots(1, 2)
    for ax, key in zip(axes, ("mean activation", "E_l(0, A)")):
        for offset, (label, values) in zip((-0.2, 0.2), (("plain VGG19", plain), ("normalized VGG19", norm))):
            ax.bar(x + offset, [values[key][layer] for layer in layers], width=0.4, label=label)
        ax.set_xticks(x, list(layers))
        ax.set_yscale("log")
        ax.set_title(key if key == "mean activation" else "style loss of a zero Gram, E_l(0, A)", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    # one legend for both panels, right of them: inside, it hid the top of the first bars
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=9)
    label = VGGFeatures([layers[0]], weights=weights).weights_name
    fig.suptitle("Scales of the layers' activations and raw style losses (style image)")
    fig.supxlabel(plotting.weights_footer(label), fontsize=8)
    return fig


def normalization_factor_table(weights: str | None = "auto", pooling: str = "max") -> Table:
    """What the normalized VGG19 does to each conv layer's channels: it divides channel o by its mean
    activation m_o over the bundled images (``nstlab.vgg.cached_normalization_scales``), so a rarely
    active channel is multiplied by a large factor; ``nstlab.vgg.normalization_divisors`` floors m_o
    at NORMALIZATION_FLOOR x the layer's median, which caps that factor.

    Returns: a Table, one row per conv layer: dead channels (m = 0), channels below the floor (dead
    ones included), smallest positive and median m, the largest factor 1/m without the floor and
    the largest factor the normalized network uses.
    """
    scales, name = _vgg.cached_normalization_scales(weights, pooling)
    divisors = _vgg.normalization_divisors(scales)
    rows = []
    for layer, m in scales.items():
        alive = m[m > 0].double()
        rows.append({
            "layer": layer,
            "dead channels": int((m == 0).sum()),
            "floored channels": int((divisors[layer] > m).sum()),
            "smallest m": float(alive.min()),
            "median m": float(alive.median()),
            "largest 1/m": float(1 / alive.min()),
            "largest factor used": float(1 / divisors[layer].double().min()),
        })
    return Table(list(rows[0]), rows, title=f"normalized VGG19: per-channel factors — {_vgg.weights_label(name)}")


# ----------------------------------------------------------------------------- the algorithm, written out

GATYS_CONTENT_LAYER = "relu4_2"
"""The gatys preset's content layer (Gatys' conv4_2, post-ReLU)."""


@torch.no_grad()
def gatys_targets(
    vgg: VGGFeatures,
    content: torch.Tensor,
    style: torch.Tensor,
    content_layers: Sequence[str] = (GATYS_CONTENT_LAYER,),
    style_layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    gram_matrix: Callable[[torch.Tensor], torch.Tensor] = losses.gram_matrix,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Step 1 of the algorithm, once: the content features P_l and the style Grams A_l, averaged over positions.

    Inputs: vgg: a :class:`VGGFeatures` with every layer; content (1, 3, H, W) and style (1, 3, Hs, Ws)
    images on its device; gram_matrix: feat (N, C, H, W) -> (N, C, C), unnormalised.
    Returns: ({layer: P_l (1, C, H_l, W_l)}, {layer: A_l / M_l (1, C, C)}).
    """
    content_feats, style_feats = vgg(content), vgg(style)
    P = {layer: content_feats[layer] for layer in content_layers}
    A = {layer: gram_matrix(style_feats[layer]) / _positions(style_feats[layer]) for layer in style_layers}
    return P, A


def _positions(feat: torch.Tensor) -> int:
    return feat.shape[-2] * feat.shape[-1]


def gatys_loop(
    x0: torch.Tensor,
    vgg: VGGFeatures,
    P: Mapping[str, torch.Tensor],
    A: Mapping[str, torch.Tensor],
    steps: int,
    alpha: float = 1.0,
    beta: float = 1.0,
    gamma: float = 3.0,
    content_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = losses.content_loss,
    gram_matrix: Callable[[torch.Tensor], torch.Tensor] = losses.gram_matrix,
    tv_loss: Callable[[torch.Tensor], torch.Tensor] = losses.tv_loss,
) -> tuple[torch.Tensor, list[float]]:
    """Gatys et al.'s algorithm in one screen: the reference solution of notebook 05's "write it yourself".

    The objective is the gatys preset's (``stylize``'s normalised losses): every term divided by its value
    for an all-zero feature map or Gram, so it is a relative error, and the TV term a mean:
    total = alpha * content + beta * style + gamma * tv. The loop is :func:`optimize_pixels` (notebook 02's) with
    ``stylize``'s L-BFGS: one evaluation per step, 100 stored pairs, step 1, zero tolerances, the pixels left free.

    Inputs: x0: (1, 3, H, W) starting image (the content image for the gatys preset); vgg: the frozen
    network; P, A: from :func:`gatys_targets` (A may be empty: texture synthesis; P too: no content term);
    steps: L-BFGS steps; content_loss(F, P), gram_matrix(F), tv_loss(img): the three formulas (yours, or
    ``nstlab.losses``' with their defaults: 1/2 sum (F - P)^2, unnormalised Gram, L1 total variation).
    Returns: (the image clamped to [0, 1], the total loss of every step).
    """
    _, c, h, w = x0.shape
    n_tv = c * (h * (w - 1) + (h - 1) * w)  # the number of neighbour differences: tv_loss / n_tv is their mean

    def objective(x: torch.Tensor) -> torch.Tensor:
        feats = vgg(x)
        content = sum(content_loss(feats[l], p) / content_loss(torch.zeros_like(p), p) for l, p in P.items())
        style = sum(((gram_matrix(feats[l]) / _positions(feats[l]) - a) ** 2).sum() / (a**2).sum()
                    for l, a in A.items())
        return (alpha * content / max(len(P), 1) + beta * style / max(len(A), 1)
                + gamma * tv_loss(x) / n_tv)

    return optimize_pixels(objective, x0, steps, "lbfgs")


def loop_agreement(history: Sequence[float], reference: Sequence[float]) -> dict[str, float]:
    """How closely one loss curve follows another, step by step: |h - r| / |r|.

    Returns: {"steps": the number compared, "first step": the difference at step 0 (the same image: only
    the objective can differ), "largest": the largest difference over all steps}.
    """
    n = min(len(history), len(reference))
    if n == 0:
        raise ValueError("loop_agreement: an empty curve")
    diff = [abs(h - r) / max(abs(r), 1e-30) for h, r in zip(history[:n], reference[:n])]
    return {"steps": n, "first step": diff[0], "largest": max(diff)}


LOOP_TOLERANCE = 5e-2
"""How closely a correct loop follows ``stylize(..., precision="fp32")``: 5 % at every step. Both compute the
same function in float32, but the engine in another order (a channels_last network, fused Gram products), and
L-BFGS amplifies those ~1e-7 rounding differences from step to step. Measured (2026-12-07, untrained VGG19, the
course's images) on a Xeon with AMX, and with oneDNN capped to AVX512_CORE_BF16 (as on an AMD EPYC) and to AVX2
(ATen too, as on an older CPU): at most 0.7 % over 20 steps at 64 px, 1.2 % over 20 steps at 128 px and 1.5 % over
50 steps at 256 px (AVX2; 0.4 % on the other two). An optimiser set otherwise departs further: step size 0.8
instead of 1 by 10-21 %, a strong-Wolfe line search by 94-148 %; a history of 10 pairs instead of 100 stays
within rounding (0.1-1.2 %) over these lengths and cannot be told apart. The first step compares the same image,
so there the two agree to rounding (FIRST_STEP_TOLERANCE)."""

FIRST_STEP_TOLERANCE = 1e-5
"""The first step's relative difference for the same objective: measured 0 to 1.1e-7 on the three CPUs above; a
missing term or normalisation is off by far more (the TV term left out: 4 %)."""


def plot_loop_vs_stylize(history: Sequence[float], result: Result, label: str = "your loop") -> Figure:
    """Two loss curves of the same objective (a hand-written loop's ``history`` and a ``stylize`` Result's total)
    and their relative difference per step, with the agreement in the title."""
    reference = result.history["total"]
    agreement = loop_agreement(history, reference)
    n = agreement["steps"]
    diff = [abs(h - r) / max(abs(r), 1e-30) for h, r in zip(history[:n], reference[:n])]
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    for values, name, style in ((reference, "stylize (fp32)", "-"), (history, label, "--")):
        left.plot(range(len(values)), values, style, label=name, **plotting.curve_markers(len(values)))
    left.set(yscale="log", ylabel="total loss")
    left.legend(fontsize=9)
    left.set_title("the same objective, two implementations", fontsize=10)
    right.semilogy(range(n), [max(d, 1e-12) for d in diff], marker=".")
    right.axhline(LOOP_TOLERANCE, color="grey", linestyle=":", label=f"tolerance {LOOP_TOLERANCE:g}")
    right.set(ylabel="|yours − stylize| / stylize")
    right.legend(fontsize=9)
    right.set_title(f"relative difference: {agreement['largest']:.1e} at most over {n} steps", fontsize=10)
    for ax in (left, right):
        plotting.step_axis(ax)
        ax.grid(alpha=0.3)
    fig.supxlabel(plotting.runs_footer([result]), fontsize=8)
    return fig


# ----------------------------------------------------------------------------- style layers taken cumulatively

CUMULATIVE_STYLE_LAYERS: dict[str, list[str]] = {
    " + ".join(f"conv{i}_1" for i in range(1, k + 1)) if k < 3 else f"conv1_1 … conv{k}_1": list(GATYS_STYLE_LAYERS[:k])
    for k in range(1, len(GATYS_STYLE_LAYERS) + 1)
}
"""Gatys et al.'s rows (their names, post-ReLU in nstlab): conv1_1; conv1_1 + conv2_1; ... ; conv1_1 … conv5_1."""

CUMULATIVE_BETA_FACTORS = (0.1, 1.0, 10.0)
"""The grid's columns: β as multiples of the preset's (α = 1), i.e. α/β from 10 to 0.1 times the preset's."""


def cumulative_style_runs(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    layer_sets: Mapping[str, Sequence[str]] | None = None,
    beta_factors: Sequence[float] = CUMULATIVE_BETA_FACTORS,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> dict[tuple[str, float], Result]:
    """Gatys et al.'s grid: the style layers taken cumulatively (rows) against the weight ratio (columns).

    Inputs: layer_sets: {row name: style layers} (default :data:`CUMULATIVE_STYLE_LAYERS`); beta_factors: β
    as multiples of the preset's; others as :func:`run_variants`.
    Returns: {(row name, β): Result}, rows in order, columns within each row.
    """
    layer_sets = CUMULATIVE_STYLE_LAYERS if layer_sets is None else layer_sets
    beta = _preset_value("style_weight", options)
    variants = {
        (name, f * beta): {"style_layers": list(layers), "style_weight": f * beta}
        for name, layers in layer_sets.items() for f in beta_factors
    }
    return run_variants(content, style, variants, size, steps, seed, weights, **options)


def plot_cumulative_style_grid(results: Mapping[tuple[str, float], Result], content_weight: float = 1.0) -> Figure:
    """The grid of :func:`cumulative_style_runs`: one row per layer set (named on the left), one column per β
    (titled with α/β), the weights footer."""
    rows = list(dict.fromkeys(name for name, _ in results))
    betas = list(dict.fromkeys(beta for _, beta in results))
    first = next(iter(results.values()))
    h, w = first.image.shape[-2:]
    cell = min(2.4, _GRID_WIDTH / (len(betas) + 0.7))
    fig = Figure(figsize=(cell * (len(betas) + 0.7), cell * h / w * len(rows) + 1.0), layout="constrained")
    axes = fig.subplots(len(rows), len(betas), squeeze=False)
    for i, name in enumerate(rows):
        for j, beta in enumerate(betas):
            draw_image(axes[i][j], results[(name, beta)].image, f"α/β = {content_weight / beta:.0e}" if i == 0 else "")
        axes[i][0].text(-0.06, 0.5, name, transform=axes[i][0].transAxes, rotation=90, ha="right", va="center",
                        fontsize=8)
    fig.suptitle(f"Style layers taken cumulatively (rows) against α/β (columns): {_run_description(results)}",
                 fontsize=10)
    fig.supxlabel(_footer(results), fontsize=8)
    return fig


_GRID_WIDTH = 10.0
"""Inches of the grid's width at most."""


def visualize_cumulative_style_grid(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    beta_factors: Sequence[float] = CUMULATIVE_BETA_FACTORS,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
) -> Figure:
    """Runs :func:`cumulative_style_runs` and draws :func:`plot_cumulative_style_grid`."""
    size = course_size(size)
    c, s = _image(content, size), _image(style)
    results = cumulative_style_runs(c, s, None, beta_factors, size, steps, seed, weights)
    return plot_cumulative_style_grid(results)


# ----------------------------------------------------------------------------- raw weights

SURVEY_ALPHA = 5.25e-7
"""Jain & Venkitachalam's content weight α (with β = 1) for their raw losses, "after a bunch of experiments". Their
code's raw losses are nstlab's (content 1/2 sum (F - P)^2, style sum_l E_l / 5; MrinalJain17/neural-style-transfer,
pynache/models/losses.py, read at commit 468d947), although their text prints 1/(2 N_l M_l) for the content loss."""


def raw_weight_runs(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    alpha: float = SURVEY_ALPHA,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
) -> dict[str, Result]:
    """The survey's α on nstlab's raw losses, next to the gatys preset (normalised losses), same inputs and seed.

    The raw run: ``normalize_losses=False`` (content 1/2 sum (F - P)^2, style sum_l E_l / 5), content_weight
    ``alpha``, style_weight 1 and no TV term, as the survey's L_total = α L_content + L_style.
    Returns: {"raw losses, α = …": Result, "gatys preset (normalised)": Result}.
    """
    variants = {
        f"raw losses, α = {alpha:.3g}": {"normalize_losses": False, "content_weight": alpha, "style_weight": 1.0,
                                          "tv_weight": 0.0},
        "gatys preset (normalised)": {},
    }
    return run_variants(content, style, variants, size, steps, seed, weights)


@torch.no_grad()
def raw_scale_rows(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    sizes: Sequence[int] | None = None,
    alpha: float = SURVEY_ALPHA,
    weights: str | None = "auto",
) -> list[dict[str, Any]]:
    """What a raw α means at each size: the raw terms at the two ends of the trade-off, and α in other conventions.

    Per size (default: half the :func:`course_size` and the whole): the raw content loss 1/2 sum (F - P)^2 at
    relu4_2 of the style image (resized to the content's shape) — where the content term ends when the style
    wins — and the raw style loss sum_l E_l / 5 of the content image — where the style term starts; α times
    the first over the second; N_l M_l at relu4_2. The survey's code computes nstlab's raw losses (its content
    loss is 1/2 sum (F - P)^2, ``mse_loss(reduction="sum") / 2``), so its α applies to them as it is; its text
    prints 1/(2 N_l M_l) sum (F - P)^2, and read that way the same α would be α / (N_l M_l) in nstlab's raw loss
    (the last column).
    Returns: one dict per size.
    """
    sizes = sizes or (course_size(None) // 2, course_size(None))
    vgg = VGGFeatures([GATYS_CONTENT_LAYER, *GATYS_STYLE_LAYERS], weights=weights)
    rows = []
    for size in sizes:
        c = _image(content, size).to(vgg.device)
        s = _image(style, size).to(vgg.device)
        fc, fs, fs_as_c = vgg(c), vgg(s), vgg(resize(s, tuple(c.shape[-2:])))
        p = fc[GATYS_CONTENT_LAYER].double()
        raw_content = float(losses.content_loss(fs_as_c[GATYS_CONTENT_LAYER].double(), p))
        targets = {l: losses.style_target(losses.gram_matrix(fs[l].double(), "hw"), _positions(fc[l]), False)
                   for l in GATYS_STYLE_LAYERS}
        grams = {l: losses.gram_matrix(fc[l].double()) for l in GATYS_STYLE_LAYERS}
        raw_style = float(losses.normalized_style_loss(grams, targets, losses.layer_weights(GATYS_STYLE_LAYERS)))
        nm = p.shape[1] * _positions(p)
        rows.append({
            "size": f"{tuple(c.shape[-2:])[0]}×{tuple(c.shape[-2:])[1]} px",
            "raw content of the style image": raw_content,
            "raw style of the content image": raw_style,
            "α × content / style": alpha * raw_content / raw_style,
            "N·M at relu4_2": nm,
            "α by the survey's printed formula": alpha / nm,
        })
    return rows
