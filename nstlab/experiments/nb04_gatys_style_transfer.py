"""Notebook 04, Gatys et al.'s algorithm — faces layer: the layers' loss scales and the normalised VGG19,
the α/β sweep, and one design choice at a time (initialisation, optimiser, pooling, network).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from nstlab import losses, plotting
from nstlab import vgg as _vgg
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
    course_size,
    plot_runs,
    run_variants,
)


GATYS_COMPARISONS: dict[str, dict[str, dict[str, Any]]] = {
    "init": {"init: content": {"init": "content"}, "init: noise": {"init": "noise"}},
    "optimizer": {"L-BFGS": {"optimizer": "lbfgs"}, "Adam": {"optimizer": "adam"}},
    "pooling": {"max pooling": {"pooling": "max"}, "average pooling": {"pooling": "avg"}},
    "vgg": {"plain VGG19": {"normalized_vgg": False}, "normalized VGG19": {"normalized_vgg": True}},
}
"""The design choices compared in notebook 04: {comparison: {variant name: stylize options}}."""


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
"""Notebook 04's sweep: β as multiples of the preset's style_weight; smoke mode uses 0.1, 1 and 10."""


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
