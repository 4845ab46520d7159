"""Notebook 08, colour preservation — faces layer: YIQ channels, luminance matching, colour histogram
matching and its Gaussian (W2) colour distance, and stylize's three ``preserve_color`` settings — the
luminance-only one built from the student's own YIQ and recombination if given (:func:`luminance_transfer_with`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from matplotlib.figure import Figure

from nstlab import color
from nstlab.plotting import MAX_FIGURE_WIDTH, draw_image, image_array

from nstlab.optimize import Result
from nstlab.settings import is_smoke

from .common import (
    _given,
    _image,
    course_size,
    course_steps,
    metric_titles,
    plot_runs,
    run_variants,
    stylize_variant,
)


def visualize_yiq_channels(image: Any = "eilean_donan_castle", size: int | None = None) -> Figure:
    """An RGB image and its Y (luminance), I and Q (chrominance) channels.

    Inputs:
    - image: tensor, path, bundled name or ImagePicker; size: long side (default :func:`course_size`).
    Returns:
    - the Figure: 4 image axes (RGB, Y in grey, I and Q on a diverging map centred at 0).
    """
    img = _image(image, course_size(size))
    yiq = color.rgb_to_yiq(img)[0].cpu().numpy()
    fig = Figure(figsize=(13, 3.2), layout="constrained")
    axes = fig.subplots(1, 4)
    axes[0].imshow(image_array(img))
    axes[0].set_title("RGB", fontsize=9)
    panels = [
        ("Y = 0.299 R + 0.587 G + 0.114 B", yiq[0], "gray", (0.0, 1.0)),
        ("I (orange ↔ blue)", yiq[1], "RdBu_r", (-0.6, 0.6)),
        ("Q (purple ↔ green)", yiq[2], "PiYG_r", (-0.53, 0.53)),
    ]
    for ax, (title, channel, cmap, (lo, hi)) in zip(axes[1:], panels):
        image_ = ax.imshow(channel, cmap=cmap, vmin=lo, vmax=hi)
        fig.colorbar(image_, ax=ax, shrink=0.75)
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.axis("off")
    return fig


def visualize_luminance_matching(
    content: Any = "eilean_donan_castle", style: Any = "van_gogh_night_cafe", size: int | None = None
) -> Figure:
    """The content's luminance, the style's, the style's matched to the content's mean and standard
    deviation (:func:`nstlab.color.luminance_only_inputs`), and the three histograms.

    Returns:
    - the Figure: 3 image axes and 1 histogram axes.
    """
    size = course_size(size)
    content_img, style_img = _image(content, size), _image(style, size)
    content_lum, style_matched = color.luminance_only_inputs(content_img, style_img)
    lums = {
        "content Y": content_lum[:, :1],
        "style Y": color.luminance(style_img),
        "style Y matched": style_matched[:, :1],
    }
    fig = Figure(figsize=(13, 3.2), layout="constrained")
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.3]})
    for ax, (name, y) in zip(axes, lums.items()):
        ax.imshow(y[0, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{name}\nmean {float(y.mean()):.3f}, sd {float(y.std(correction=0)):.3f}", fontsize=9)
        ax.axis("off")
        axes[3].hist(y.flatten().cpu().numpy(), bins=40, range=(-0.2, 1.2), histtype="step", label=name, density=True)
    axes[3].set_title("luminance histograms", fontsize=9)
    axes[3].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)  # off the curves
    return fig


def color_statistics(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean colour and 3x3 colour covariance (population) of the first image, in float64.

    Inputs:
    - img: (N, 3, H, W) RGB.
    Returns:
    - (mean (3,), covariance (3, 3)).
    """
    pixels = img[0].to(torch.float64).flatten(1)  # (3, M)
    mean = pixels.mean(dim=1)
    centred = pixels - mean[:, None]
    return mean, centred @ centred.T / pixels.shape[1]


def gaussian_color_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """2-Wasserstein distance between the Gaussian fits of two images' colour distributions.

    W2^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_b^1/2 S_a S_b^1/2)^1/2): 0 exactly when the means
    and covariances match (what the colour transfer of :func:`nstlab.color.match_color_histogram`
    achieves; its "sym" mode is the optimal-transport map that reaches it).

    Inputs:
    - a, b: (N, 3, H, W) RGB (first images used), any sizes.
    Returns:
    - the distance (a float >= 0).
    """
    mu_a, s_a = color_statistics(a)
    mu_b, s_b = color_statistics(b)
    half_b = color.symmetric_power(s_b, 0.5)
    cross = color.symmetric_power(half_b @ s_a @ half_b, 0.5)
    w2 = float((mu_a - mu_b).pow(2).sum() + torch.trace(s_a + s_b - 2 * cross))
    scale = float(mu_a.pow(2).sum() + mu_b.pow(2).sum() + torch.trace(s_a + s_b))
    return math.sqrt(w2) if w2 > 1e-12 * scale else 0.0  # below that: rounding error of the square roots


def histogram_matching_rows(
    content: Any = "eilean_donan_castle",
    style: Any = "van_gogh_night_cafe",
    size: int | None = None,
    clamp: bool = False,
) -> list[dict[str, Any]]:
    """Colour statistics of the content, the style, and the style recoloured by each mode.

    Inputs:
    - content, style: images at long side ``size``; clamp: clamp the recoloured images to [0, 1]
      (then the statistics match only approximately).
    Returns:
    - one dict per image: "image", mean R, G, B, the six covariance entries, and
      "W2 to content" (:func:`gaussian_color_distance`).
    """
    size = course_size(size)
    content_img, style_img = _image(content, size), _image(style, size)
    images = {"content (target)": content_img, "style (source)": style_img}
    for mode in color.COLOR_MODES:
        images[f"style, {mode}"] = color.match_color_histogram(style_img, content_img, mode=mode, clamp=clamp)
    rows = []
    for name, img in images.items():
        mean, cov = color_statistics(img)
        row: dict[str, Any] = {"image": name}
        row.update({f"mean {c}": float(mean[i]) for i, c in enumerate("RGB")})
        pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
        row.update({f"cov {'RGB'[i]}{'RGB'[j]}": float(cov[i, j]) for i, j in pairs})
        row["W2 to content"] = gaussian_color_distance(img, content_img)
        rows.append(row)
    return rows


def visualize_histogram_matching(
    content: Any = "eilean_donan_castle",
    style: Any = "van_gogh_night_cafe",
    size: int | None = None,
    clamp: bool = True,
    cholesky: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> Figure:
    """The style image recoloured to the content's palette by each mode, with RGB histograms; ``cholesky``
    (source, target) -> recoloured source, e.g. yours from the exercise, makes the "cholesky" panel (in float64).

    Returns:
    - the Figure: 5 image axes (content, style, then the "cholesky", "image_analogies" and "sym" recolourings)
      above 5 histogram axes (each image's R, G, B; the content's dashed for reference).
    """
    size = course_size(size)
    content_img, style_img = _image(content, size), _image(style, size)
    images = {"content (target palette)": content_img, "style (source)": style_img}
    for mode in color.COLOR_MODES:
        if mode == "cholesky" and cholesky is not None:
            recoloured = cholesky(style_img.double(), content_img.double()).float()
            images["style recoloured: your cholesky"] = recoloured.clamp(0, 1) if clamp else recoloured
            continue
        recoloured = color.match_color_histogram(style_img, content_img, mode=mode, clamp=clamp)
        images[f"style recoloured: {mode}"] = recoloured
    fig = Figure(figsize=(MAX_FIGURE_WIDTH, 5.4), layout="constrained")
    axes = fig.subplots(2, len(images), gridspec_kw={"height_ratios": [1.4, 1]})
    reference = content_img[0].flatten(1).cpu().numpy()
    for k, (name, img) in enumerate(images.items()):
        draw_image(axes[0, k], img, f"{name}\nW2 to content {gaussian_color_distance(img, content_img):.3f}")
        pixels = img[0].flatten(1).cpu().numpy()
        hist = {"bins": 32, "range": (0, 1), "histtype": "step", "density": True}
        for i, c in enumerate(("tab:red", "tab:green", "tab:blue")):
            axes[1, k].hist(pixels[i], color=c, **hist)
            axes[1, k].hist(reference[i], color=c, linestyle="--", alpha=0.5, **hist)
        axes[1, k].set_yticks([])
        axes[1, k].set_xlabel("R, G, B value (dashed: content)", fontsize=9)
    return fig


COLOR_VARIANTS: dict[str, dict[str, Any]] = {
    "plain transfer": {"preserve_color": None},
    "luminance only": {"preserve_color": "luminance"},
    "histogram matched": {"preserve_color": "histogram"},
}
"""The side-by-side of notebook 08: stylize's three ``preserve_color`` settings."""


def visualize_color_preservation(
    content: Any = "eilean_donan_castle",
    style: Any = "van_gogh_night_cafe",
    size: int | None = None,
    steps: int | None = None,
    style_weight: float | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    preset: str = "gatys",
    rgb_to_yiq: Callable[[torch.Tensor], torch.Tensor] | None = None,
    recombine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> Figure:
    """Plain transfer, luminance-only transfer and histogram-matched transfer, same images and seed.

    Under each result: the colour distance (:func:`gaussian_color_distance`) to the content's
    palette and to the style's. ``style_weight`` None: the preset's. With ``rgb_to_yiq`` and ``recombine``
    (yours from the exercise), the luminance-only result is :func:`luminance_transfer_with` them.

    Returns:
    - the Figure of :func:`plot_runs` (2 inputs + 3 results, 2 loss plots).
    """
    size = course_size(size)
    common = {"preset": preset, **_given(style_weight=style_weight)}
    variants = dict(COLOR_VARIANTS)
    if rgb_to_yiq is not None and recombine is not None:
        del variants["luminance only"]
    results = run_variants(content, style, variants, size, course_steps(steps), seed, weights, **common)
    if rgb_to_yiq is not None and recombine is not None:
        mine = luminance_transfer_with(rgb_to_yiq, recombine, content, style, size, steps, seed, weights, **common)
        results = {name: results.get(name, mine) for name in COLOR_VARIANTS}
    content_img, style_img = _image(content, size), _image(style, size)
    rows = [
        {
            "image": name,
            "colour W2 to content": gaussian_color_distance(r.image, content_img),
            "to style": gaussian_color_distance(r.image, style_img),
        }
        for name, r in results.items()
    ]
    titles = metric_titles(rows, show=("colour W2 to content", "to style"))
    return plot_runs(results, ("content", "style"), {"content": content_img, "style": style_img}, titles)


def luminance_transfer_with(
    rgb_to_yiq: Callable[[torch.Tensor], torch.Tensor],
    recombine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    content: Any = "eilean_donan_castle",
    style: Any = "van_gogh_night_cafe",
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Result:
    """Luminance-only transfer built from *your* functions, step by step as ``preserve_color="luminance"`` does it.

    The luminances Y = rgb_to_yiq(image)[:, :1] of the content (long side ``size``) and of the style (as given;
    ``stylize`` resizes it), the style's matched to the content's mean and spread; ordinary style transfer on the
    two grey images (:func:`stylize_variant`, ``options`` as ``stylize``'s); then recombine(stylised, content):
    the stylised Y with the content's I and Q.
    Returns: the transfer's Result, its ``image`` and ``best_image`` replaced by the recombined RGB images.
    """
    size = course_size(size)
    content_img, style_img = _image(content, size), _image(style)
    yc, ys = rgb_to_yiq(content_img)[:, :1], rgb_to_yiq(style_img)[:, :1]
    sd_c, sd_s = yc.std(correction=0), ys.std(correction=0).clamp_min(1e-12)
    ys = (ys - ys.mean()) / sd_s * sd_c + yc.mean()
    result = stylize_variant(yc.repeat(1, 3, 1, 1), ys.repeat(1, 3, 1, 1), size=size, steps=course_steps(steps),
                             seed=seed, weights=weights, progress=not is_smoke(), **options)
    return dataclasses.replace(result, image=recombine(result.image, content_img),
                               best_image=recombine(result.best_image, content_img))
