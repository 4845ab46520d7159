"""Notebook 06, Novak & Nikulin's improvements — faces layer: Gram sparsity and the activation shift,
uniform vs geometric layer weights, and the ablation (each change alone, all four together).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from nstlab import losses, plotting
from nstlab.optimize import Result
from nstlab.vgg import GATYS_STYLE_LAYERS, RELU_LAYERS, VGGFeatures

from .common import (
    SWEEP_CONTENT,
    SWEEP_STYLE,
    Table,
    _image,
    _option_summary,
    course_size,
    plot_runs,
    run_variants,
    visualize_stylize,
)

SCHEME_LABELS = {"uniform": "uniform (Gatys)", "geometric": "geometric (Novak & Nikulin)"}
"""The legend of each of ``nstlab.losses.WEIGHT_SCHEMES`` in :func:`visualize_layer_weights`."""


def gram_sparsity(gram: torch.Tensor, rel_tol: float = 1e-3) -> float:
    """Fraction of the entries of ``gram`` (any shape) with |G_ij| <= rel_tol · max |G|."""
    g = gram.detach().abs()
    top = float(g.max()) if g.numel() else 0.0
    return float((g <= rel_tol * top).double().mean()) if g.numel() else 0.0


def gram_sparsity_table(
    image: Any = SWEEP_STYLE,
    layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    shifts: Sequence[float] = (0.0, 1.0, -1.0),
    size: int | None = None,
    weights: str | None = "auto",
    rel_tol: float = 1e-3,
) -> Table:
    """Per layer: the fraction of zero activations, then for each shift s the fraction of Gram entries
    that are exactly 0 and that are near 0 (|G_ij| <= rel_tol · max |G|), G of F + s.

    Inputs: image; layers; shifts; size: long side (default :func:`course_size`). Returns: a Table (%).
    """
    x = _image(image, course_size(size))
    net = VGGFeatures(list(layers), weights=weights)
    with torch.no_grad():
        feats = net(x.to(net.device))
    rows = []
    for layer in layers:
        f = feats[layer].double()
        row: dict[str, Any] = {"layer": layer, "zero activations (%)": 100 * float((f == 0).double().mean())}
        for s in shifts:
            g = losses.gram_matrix(f, shift=s)
            row[f"G = 0, s={s:g} (%)"] = 100 * float((g == 0).double().mean())
            row[f"|G| ≤ {rel_tol:g}·max, s={s:g} (%)"] = 100 * gram_sparsity(g, rel_tol)
        rows.append(row)
    h, w = x.shape[-2:]
    return Table(list(rows[0]), rows, title=f"Gram sparsity of a {h}×{w} image — {net.label}", floatfmt=".1f")


def visualize_gram_shift(
    image: Any = SWEEP_STYLE,
    layer: str = "relu4_1",
    shifts: Sequence[float] = (0.0, 1.0, -1.0),
    size: int | None = None,
    weights: str | None = "auto",
    rel_tol: float = 1e-3,
) -> Figure:
    """The Gram matrix of one layer for each activation shift s (|G| on a log colour scale, exact
    zeros in the darkest colour), titled with the fraction of zero and near-zero entries.

    Inputs: image; layer; shifts; size: default :func:`course_size`. Returns: the Figure.
    """
    x = _image(image, course_size(size))
    net = VGGFeatures([layer], weights=weights)
    with torch.no_grad():
        f = net(x.to(net.device))[layer].double()
    fig = Figure(figsize=(4.3 * len(shifts), 4.0), layout="constrained")
    for ax, s in zip(fig.subplots(1, len(shifts), squeeze=False)[0], shifts):
        g = losses.gram_matrix(f, shift=s)
        zeros = 100 * float((g == 0).double().mean())
        small = 100 * gram_sparsity(g, rel_tol)
        title = f"shift s = {s:g}: {zeros:.1f}% exactly 0,\n{small:.1f}% ≤ {rel_tol:g}·max"
        plotting.plot_matrix(g, ax=ax, log=True, title=title)
    fig.suptitle(f"Gram matrix of {layer} ({f.shape[1]}×{f.shape[1]}) of F + s")
    fig.supxlabel(plotting.weights_footer(net.weights_name), fontsize=8)
    return fig


def visualize_layer_weights(layers: Sequence[str] = tuple(RELU_LAYERS), chained: bool = False) -> Figure:
    """Each of ``losses.WEIGHT_SCHEMES`` as bars, uniform vs geometric (w_i ∝ 2^(N-i)) style-layer
    weights, on a linear and a log scale.

    Inputs: layers: style layers in network order; chained: weigh the adjacent pairs instead.
    Returns: the Figure.
    """
    keys = losses.style_keys(list(layers), chained)
    names = [k if isinstance(k, str) else f"{k[0]}×{k[1]}" for k in keys]
    schemes = {scheme: losses.layer_weights(keys, scheme) for scheme in losses.WEIGHT_SCHEMES}
    width = 0.8 / len(schemes)
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    x = np.arange(len(keys))
    for ax, log in zip(fig.subplots(1, 2), (False, True)):
        for i, (scheme, w) in enumerate(schemes.items()):
            offset = (i - (len(schemes) - 1) / 2) * width
            ax.bar(x + offset, [w[k] for k in keys], width=width, label=SCHEME_LABELS.get(scheme, scheme))
        ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("layer weight w_l (sum 1)")
        if log:
            ax.set_yscale("log")
        ax.set_title("log scale" if log else "linear scale", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.suptitle(f"Style layer weights for {len(keys)} {'chained pairs' if chained else 'layers'}")
    return fig


NOVAK_ABLATION: dict[str, dict[str, Any]] = {
    "gatys": {},
    "+ shift": {"activation_shift": -1.0},
    "+ 16 layers": {"style_layers": list(RELU_LAYERS)},
    "+ chained": {"chained": True},
    "+ geometric": {"layer_weighting": "geometric"},
    "novak (all four)": {"preset": "novak"},
}
"""Notebook 06's ablation: the gatys preset, each of Novak & Nikulin's changes alone, and all together."""


def variants_table(variants: Mapping[str, Mapping[str, Any]], title: str | None = None) -> Table:
    """Runs {name: stylize options} (e.g. :data:`NOVAK_ABLATION`) as a short table, one row per run:
    its options on one line, a list of more than four layers as "16 layers" (the dict's own repr
    prints such a list one layer a line). A run without options is "(the gatys preset)"."""
    rows = [{"run": name, "options": _option_summary(opts) or "(the gatys preset)"} for name, opts in variants.items()]
    return Table(["run", "options"], rows, title=title)


def novak_ablation(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> dict[str, Result]:
    """The runs of :data:`NOVAK_ABLATION` (or ``variants``) on the same inputs, size, steps and seed.
    Returns: {name: Result}."""
    return run_variants(content, style, variants or NOVAK_ABLATION, size, steps, seed, weights, **options)


def visualize_novak_ablation(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """:func:`novak_ablation` as a grid: each result titled with its final content and style losses,
    and their content and style loss curves. Returns: the Figure."""
    size = course_size(size)
    c, s = _image(content, size), _image(style)
    results = novak_ablation(c, s, variants, size, steps, seed, weights, **options)
    steps_done = len(next(iter(results.values())).history["total"])
    return plot_runs(
        results, ("content", "style"), {"content": c, "style": s},
        suptitle=f"Novak & Nikulin's changes, alone and together: {steps_done} steps, {size} px, seed {seed}",
    )


def visualize_novak_options(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    activation_shift: float = 0.0,
    all_layers: bool = False,
    chained: bool = False,
    geometric: bool = False,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """One run of the gatys preset with any of Novak & Nikulin's changes switched on (the widget of
    notebook 06): activation shift s, all 16 conv layers, chained Grams, geometric weights.
    Returns: the :func:`visualize_stylize` Figure."""
    changes: dict[str, Any] = {"activation_shift": float(activation_shift), "chained": bool(chained),
                               "layer_weighting": "geometric" if geometric else "uniform"}
    if all_layers:
        changes["style_layers"] = list(RELU_LAYERS)
    return visualize_stylize(content, style, size, steps, seed, weights, **{**changes, **options})
