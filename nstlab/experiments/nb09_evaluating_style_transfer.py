"""Notebook 09, evaluating style transfer — faces layer: Yuan & Huang's intensity and contrast
experiments, their one-layer-at-a-time runs, their LPIPS-form distance as the content loss against Gatys'
L2 one, and one run measured with the yardsticks of ``common.evaluate_images`` (the same for every method).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nstlab import losses, plotting
from nstlab.optimize import Result
from nstlab.plotting import MAX_FIGURE_WIDTH, draw_image
from nstlab.vgg import GATYS_STYLE_LAYERS, VGGFeatures

from .nb02_content_loss import RECONSTRUCTION_LAYERS
from .common import (
    _fmt_value,
    _given,
    _image,
    _lpips_between,
    course_size,
    distort,
    evaluate_results,
    run_variants,
)


def _lpips(vgg: VGGFeatures, a: torch.Tensor, b: torch.Tensor) -> float:
    """The LPIPS-form distance of two (1, 3, H, W) images through ``vgg`` (its layers: LPIPS_LAYERS)."""
    with torch.no_grad():
        return _lpips_between(vgg(a.to(vgg.device)), vgg(b.to(vgg.device)))


def _l2(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared difference on LPIPS' [-1, 1] pixel scale (white vs black gives 4)."""
    return float((2 * a - 2 * b).pow(2).mean())


YUAN_HUANG_INTENSITY = {("white", "black"): 0.4538, ("white", "grey"): 0.4945, ("grey", "black"): 0.5390}
"""The perceptual (LPIPS) distances of flat images in Yuan & Huang's Fig. 5 ("Learning with Image Style
Transfer", NYU 2021: the course's nst_layers_lpips_perceptual.txt), for comparison."""


def intensity_rows(size: int = 64, weights: str | None = "auto") -> list[dict[str, Any]]:
    """Yuan & Huang's intensity experiment (their Fig. 5): L2 and LPIPS-form distances of flat images.

    Inputs:
    - size: side of the square white (1), black (0) and grey (0.5) images; weights: VGG19 weights.
    Returns:
    - one dict per pair (white, black), (white, grey), (grey, black): "pair", "L2" (mean squared
      difference on [-1, 1] pixels, as LPIPS scales them), "perceptual", and "Yuan & Huang's
      perceptual" (:data:`YUAN_HUANG_INTENSITY`: learned LPIPS weights, ImageNet features).
    """
    flat = {name: torch.full((1, 3, size, size), v) for name, v in (("white", 1.0), ("black", 0.0), ("grey", 0.5))}
    vgg = VGGFeatures(losses.LPIPS_LAYERS, weights=weights)
    return [
        {
            "pair": f"({a}, {b})",
            "L2": _l2(flat[a], flat[b]),
            "perceptual": _lpips(vgg, flat[a], flat[b]),
            "Yuan & Huang's perceptual": YUAN_HUANG_INTENSITY[(a, b)],
        }
        for a, b in YUAN_HUANG_INTENSITY
    ]


def contrast_images(
    image: Any = "tower_bridge", levels: Sequence[float] = (1.0, 0.75, 0.5), size: int | None = None
) -> dict[str, torch.Tensor]:
    """The image at several contrasts: mu + c (x - mu), mu the mean of each channel.

    Returns:
    - {"image 1 (c = 1)": ..., "image 2 (c = 0.75)": ..., ...}: (1, 3, H, W) tensors.
    """
    img = _image(image, course_size(size))
    return {f"image {i} (c = {c:g})": distort(img, "contrast", 1 - c) for i, c in enumerate(levels, start=1)}


def contrast_rows(
    image: Any = "tower_bridge",
    levels: Sequence[float] = (1.0, 0.75, 0.5),
    size: int | None = None,
    weights: str | None = "auto",
) -> list[dict[str, Any]]:
    """Yuan & Huang's contrast experiment (their Fig. 6): image 1 against the lower-contrast versions.

    Returns:
    - one dict per pair (image 1, image k): "pair", "L2", "perceptual", and both as a ratio to the
      first pair's (Yuan & Huang: L2 grows about 4x from c = 0.75 to 0.5, perceptual about 3.6x).
    """
    images = list(contrast_images(image, levels, size).values())
    vgg = VGGFeatures(losses.LPIPS_LAYERS, weights=weights)
    rows = []
    for k in range(1, len(images)):
        l2, perceptual = _l2(images[0], images[k]), _lpips(vgg, images[0], images[k])
        rows.append({"pair": f"(image 1, image {k + 1})", "L2": l2, "perceptual": perceptual})
    for row in rows:
        row["L2 ratio"] = row["L2"] / rows[0]["L2"]
        row["perceptual ratio"] = row["perceptual"] / rows[0]["perceptual"]
    return rows


def single_layer_style_runs(
    content: Any = "tower_bridge",
    style: Any = "van_gogh_cafe_terrace_at_night",
    layers: Sequence[str] = GATYS_STYLE_LAYERS,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
) -> dict[str, Result]:
    """Yuan & Huang's first experiment: style from one layer at a time, from noise, with the style loss alone
    (content weight 0 and TV weight 0: texture synthesis, as in notebook 03).

    Inputs:
    - content: only sets the output's size and aspect here; layers: the style layers to try.
    Returns:
    - {layer: Result}.
    """
    variants = {layer: {"style_layers": [layer]} for layer in layers}
    return run_variants(
        content, style, variants, size, steps, seed, weights,
        preset="gatys", content_weight=0.0, tv_weight=0.0, init="noise",
    )


def single_layer_content_runs(
    content: Any = "tower_bridge",
    style: Any = "van_gogh_cafe_terrace_at_night",
    style_layer: str = "relu3_1",
    layers: Sequence[str] = tuple(RECONSTRUCTION_LAYERS),
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
) -> dict[str, Result]:
    """Yuan & Huang's second experiment: one style layer fixed, one content layer at a time, noise init.

    Returns:
    - {"content <layer>": Result}: the names leave out the style layer, the same for every run (say
      it in a figure's suptitle; each Result's settings hold it).
    """
    variants = {f"content {layer}": {"style_layers": [style_layer], "content_layers": [layer]} for layer in layers}
    return run_variants(
        content, style, variants, size, steps, seed, weights, preset="gatys", init="noise"
    )


LPIPS_CONTENT_VARIANTS: dict[str, dict[str, Any]] = {
    "L2 content loss (Gatys)": {},
    "LPIPS-form content loss": {"content_loss": "lpips"},
    "LPIPS-form, α = 0.1": {"content_loss": "lpips", "content_weight": 0.1},
}
"""Yuan & Huang's §4.2 (their Fig. 7): Gatys' style loss kept, the content loss L2 or the LPIPS-form distance.
The third run lowers α: the two content terms are different functions, so one α does not pull as hard on both."""


def lpips_content_runs(
    content: Any = "tower_bridge",
    style: Any = "van_gogh_cafe_terrace_at_night",
    variants: Mapping[str, Mapping[str, Any]] = LPIPS_CONTENT_VARIANTS,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> dict[str, Result]:
    """The gatys preset with Gatys' L2 content loss and with Yuan & Huang's LPIPS-form one (``content_loss="lpips"``),
    same images, size, steps and seed. Returns: {name: Result} (measure them with :func:`evaluate_results`)."""
    return run_variants(content, style, variants, size, steps, seed, weights, preset="gatys", **options)


def _mpl_table(ax: Axes, rows: Sequence[Mapping[str, Any]], digits: int = 3) -> None:
    """A matplotlib table of ``rows`` (dicts) filling ``ax`` (axes turned off)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_fmt_value(row.get(c, ""), digits) for c in columns] for row in rows]
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=columns, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.3)


def visualize_evaluation(
    content: Any = "tower_bridge",
    style: Any = "van_gogh_cafe_terrace_at_night",
    preset: str = "gatys",
    style_weight: float | None = None,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    content_loss: str = "l2",
) -> Figure:
    """One run, its images and loss curves, and a table of its distances to the inputs.
    ``style_weight`` None: the preset's; ``content_loss``: "l2" (Gatys) or "lpips" (Yuan & Huang).

    Returns:
    - the Figure: content, style, result, the loss curves and a table (5 axes).
    """
    results = run_variants(
        content, style, {preset: {"preset": preset}}, size, steps, seed, weights,
        content_loss=content_loss, **_given(style_weight=style_weight),
    )
    rows = evaluate_results(results, content, style, weights)
    (result,) = results.values()
    fig = Figure(figsize=(MAX_FIGURE_WIDTH, 4.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.4, 0.9])
    axes = top.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.6]})
    panels = [
        ("content", _image(content)),
        ("style", _image(style)),
        (f"{preset}, style weight {result.settings['style_weight']:g}"
         + (", LPIPS-form content loss" if content_loss == "lpips" else ""), result.image),
    ]
    for ax, (title, img) in zip(axes, panels):
        draw_image(ax, img, title)
    plotting.plot_losses(result.history, ax=axes[3], title="the run's own loss terms")
    _mpl_table(bottom.subplots(), rows)
    fig.supxlabel(plotting.runs_footer([result]), fontsize=8)
    return fig
