"""Notebook 03, Gram matrices and style — faces layer: the sources' style-loss conventions side by side,
how each grows with the image size, texture synthesis from white noise (Gatys et al. 2016, Fig. 1), and a
texture made in the notebook with the student's own Gram matrix and loop (drawn by :func:`plot_texture_with`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib.figure import Figure

from nstlab import losses, plotting
from nstlab.optimize import Result, stylize
from nstlab.vgg import GATYS_STYLE_LAYERS, VGGFeatures

from .common import Table, _final, _image, _run_description, course_size, course_steps, plot_runs


GRAM_CONVENTIONS = ("none", "1/(HW)", "1/(CHW)", "Gatys E_l")
"""The style-loss conventions of the course's sources compared in notebook 03 (see :func:`style_loss_conventions`)."""


def style_loss_conventions(
    x: Any = "noise",
    style: Any = "van_gogh_church_at_auvers",
    layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    size: int | None = None,
    weights: str | None = "auto",
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """The same per-layer style loss between ``x`` and ``style`` under the sources' conventions.

    - "none": sum (G - A)^2 with G = F F^T (the course notes' formula, the SSIM blog);
    - "1/(HW)": G divided by the number of positions M = H W first;
    - "1/(CHW)": G divided by N M (C = N channels; the TF course notes' code);
    - "Gatys E_l": 1/(4 N^2 M^2) sum (G - A)^2 (Gatys et al.; the intro notes), = "1/(CHW)" / 4.
    Inputs: x: an image (tensor, path, name) or "noise" (seeded uniform noise of the style's shape);
    style: the style image; size: long side of both (default :func:`course_size`).
    Returns: {convention: {layer: loss}} with the conventions of ``GRAM_CONVENTIONS``.
    """
    size = course_size(size)
    target = _image(style, size)
    if isinstance(x, str) and x == "noise":
        image = torch.rand(target.shape, generator=torch.Generator().manual_seed(seed))
    else:
        image = _image(x, tuple(target.shape[-2:]))
    vgg = VGGFeatures(list(layers), weights=weights)
    with torch.no_grad():
        fx, fs = vgg(image.to(vgg.device)), vgg(target.to(vgg.device))
    table: dict[str, dict[str, float]] = {name: {} for name in GRAM_CONVENTIONS}
    for layer in layers:
        f, a = fx[layer].double(), fs[layer].double()  # float64: raw sums reach 1e15 and more
        m = f.shape[-2] * f.shape[-1]
        for name, normalize in (("none", "none"), ("1/(HW)", "hw"), ("1/(CHW)", "chw")):
            diff = losses.gram_matrix(f, normalize) - losses.gram_matrix(a, normalize)
            table[name][layer] = float(diff.pow(2).sum())
        table["Gatys E_l"][layer] = float(losses.style_layer_loss(losses.gram_matrix(f), losses.gram_matrix(a), m))
    return table


def gram_convention_table(
    x: Any = "noise",
    style: Any = "van_gogh_church_at_auvers",
    layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    size: int | None = None,
    weights: str | None = "auto",
    seed: int = 0,
) -> Table:
    """:func:`style_loss_conventions` as a table: per layer N_l, M_l, and each convention's loss
    with the layer's share (%) of the total over the layers (uniform weights)."""
    size = course_size(size)
    values = style_loss_conventions(x, style, layers, size, weights, seed)
    target = _image(style, size)
    shapes = {}
    with torch.no_grad():
        for layer, f in VGGFeatures(list(layers), weights="random", device="cpu")(target).items():
            shapes[layer] = (f.shape[1], f.shape[2] * f.shape[3])  # geometry only
    totals = {name: sum(v.values()) for name, v in values.items()}
    rows = []
    for layer in layers:
        row: dict[str, Any] = {"layer": layer, "N_l": shapes[layer][0], "M_l": shapes[layer][1]}
        for name in GRAM_CONVENTIONS:
            row[name] = values[name][layer]
            row[f"{name} share (%)"] = 100.0 * values[name][layer] / totals[name] if totals[name] > 0 else 0.0
        rows.append(row)
    rows.append({"layer": "sum", **{name: totals[name] for name in GRAM_CONVENTIONS}})
    columns = ["layer", "N_l", "M_l"] + [c for name in GRAM_CONVENTIONS for c in (name, f"{name} share (%)")]
    h, w = target.shape[-2:]
    what = "white noise" if isinstance(x, str) and x == "noise" else "x"
    shares = {f"{name} share (%)": ".1f" for name in GRAM_CONVENTIONS}
    title = f"style loss of {what} vs the style image at {h}×{w} px under each convention"
    return Table(columns, rows, title=title, formats=shares)


def size_dependence_table(
    content: Any = "tower_bridge",
    style: Any = "van_gogh_church_at_auvers",
    sizes: tuple[int, int] | None = None,
    layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    content_layer: str = "relu4_2",
    weights: str | None = "auto",
    seed: int = 0,
) -> Table:
    """How each loss of white noise grows when the image side doubles: why α/β is tied to a convention.

    Rows: each style convention (sum over ``layers``, uniform weights) and Gatys' content loss
    1/2 sum (F - P)^2 at ``content_layer``. Columns: the loss at each of ``sizes`` (default: half the
    :func:`course_size` and the whole) and their ratio. Returns: a :class:`Table`.
    """
    sizes = sizes or (course_size(None) // 2, course_size(None))
    rows: dict[str, dict[str, Any]] = {name: {"loss": f"style, {name}"} for name in GRAM_CONVENTIONS}
    rows["content"] = {"loss": f"content ½Σ(F−P)² at {content_layer}"}
    vgg = VGGFeatures([content_layer], weights=weights)
    for size in sizes:
        values = style_loss_conventions("noise", style, layers, size, weights, seed)
        for name in GRAM_CONVENTIONS:
            rows[name][f"{size} px"] = sum(values[name].values())
        target = _image(content, size)
        noise = torch.rand(target.shape, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            f, p = vgg(noise.to(vgg.device))[content_layer], vgg(target.to(vgg.device))[content_layer]
        rows["content"][f"{size} px"] = float(losses.content_loss(f.double(), p.double()))
    ratio = f"× from {sizes[0]} to {sizes[1]} px"
    for row in rows.values():
        first, last = row[f"{sizes[0]} px"], row[f"{sizes[1]} px"]
        row[ratio] = last / first if first > 0 else float("nan")
    columns = ["loss", f"{sizes[0]} px", f"{sizes[1]} px", ratio]
    return Table(columns, list(rows.values()), title=f"losses of white noise — {vgg.label}")


def texture_syntheses(
    style: Any = "van_gogh_church_at_auvers",
    layer_sets: Mapping[str, Sequence[str]] | None = None,
    size: int | None = None,
    steps: int | None = None,
    optimizer: str = "lbfgs",
    tv_weight: float = 0.0,
    weights: str | None = "auto",
    seed: int = 0,
) -> dict[str, Result]:
    """Synthesise a texture from white noise matching the Gram matrices of ``style`` (style loss only).

    Inputs: style: tensor, path, bundled name or ImagePicker; layer_sets: {name: style layers}, one
    run each (default: each of relu1_1 ... relu5_1 alone, then all five); size: long side of the
    texture (default :func:`course_size`; aspect of the style image); steps: per run (default
    :func:`course_steps`); optimizer: "lbfgs" or "adam"; seed: the same noise for every run.
    Returns: {name: Result}, in the order of ``layer_sets``.
    """
    size = course_size(size)
    steps = course_steps(steps)
    if layer_sets is None:
        layer_sets = {**{layer: [layer] for layer in GATYS_STYLE_LAYERS}, "all five": list(GATYS_STYLE_LAYERS)}
    source = _image(style, size)
    return {
        name: stylize(None, source, style_layers=list(layers), init="noise", optimizer=optimizer, steps=steps,
                      size=size, tv_weight=tv_weight, weights=weights, seed=seed, progress=False)
        for name, layers in layer_sets.items()
    }


def plot_texture_syntheses(style: Any, results: Mapping[str, Result]) -> Figure:
    """The style image and the textures {name: Result} (from :func:`texture_syntheses`), titled with
    the layer set and the final relative style error; curves below."""
    titles = {name: f"{name}\nerror {_final(r, 'style'):.3g}" for name, r in results.items()}
    first = next(iter(results.values()))
    return plot_runs(
        results, ("style",), {"style image": _image(style, first.settings["size"])}, titles, fontsize=9,
        suptitle=f"Textures from white noise (Gram matrices only), {_run_description(results)}; "
                 "error Σₗ wₗ Σ(G−A)² / ΣA²",
    )


def visualize_texture_syntheses(
    style: Any = "van_gogh_church_at_auvers",
    layer_sets: Mapping[str, Sequence[str]] | None = None,
    size: int | None = None,
    steps: int | None = None,
    optimizer: str = "lbfgs",
    weights: str | None = "auto",
    seed: int = 0,
) -> Figure:
    """Gatys et al. Fig. 1 (style): textures synthesised from noise with each layer set, and the curves.

    Inputs: as :func:`texture_syntheses`. Returns: the Figure.
    """
    results = texture_syntheses(style, layer_sets, size, steps, optimizer, weights=weights, seed=seed)
    return plot_texture_syntheses(style, results)


def visualize_texture_synthesis(
    style: Any = "van_gogh_church_at_auvers",
    layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    steps: int | None = None,
    optimizer: str = "lbfgs",
    size: int | None = None,
    weights: str | None = "auto",
    seed: int = 0,
) -> Figure:
    """One texture synthesis with the chosen style layers (the widget of notebook 03)."""
    layers = list(layers)
    if not layers:
        raise ValueError("visualize_texture_synthesis: choose at least one style layer")
    return visualize_texture_syntheses(style, {" + ".join(layers): layers}, size, steps, optimizer, weights, seed)


def plot_texture_with(
    style: torch.Tensor,
    texture: torch.Tensor,
    history: Sequence[float],
    weights_name: str,
    reference: Result | None = None,
) -> Figure:
    """A texture made in the notebook (your Gram matrix in your loop) next to the ``style`` image, and the package's
    texture ``reference`` (a Result of :func:`texture_syntheses`) if given, with the relative style error of every
    step and the weights' name (``VGGFeatures.weights_name``) in the footer."""
    panels = [("style image", style), ("your texture", texture)]
    if reference is not None:
        panels.append(("stylize's texture", reference.image))
    return plotting.plot_images_and_losses(panels, {"style": list(history)}, plotting.weights_footer(weights_name),
                                           "relative style error of every step")
