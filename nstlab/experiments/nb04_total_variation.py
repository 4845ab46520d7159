"""Notebook 04, total variation — faces layer: TV of clean, noisy and smoothed images, TV denoising
(L1 and squared), and the TV weight of a style transfer run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.ticker
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nstlab import losses
from nstlab.images import as_image, resize
from nstlab.optimize import Result
from nstlab.plotting import draw_image, image_array
from nstlab.settings import smoke_or

from .common import (
    SWEEP_CONTENT,
    SWEEP_STYLE,
    Table,
    _footer,
    _image,
    _preset_value,
    course_size,
    distort,
    run_variants,
)

DENOISE_STEPS = 300
"""Adam steps of :func:`tv_denoise` on the pixels (100 in smoke mode: fewer would leave the noise in).
Not the optimisation steps of a style transfer run, which are :func:`course_steps`."""


def tv_table(images: Mapping[str, torch.Tensor]) -> Table:
    """The total variation of each image: L1 (sum and mean |difference|) and squared (mean).

    Inputs: images: {name: (1, C, H, W) in [0, 1]}. Returns: a Table with one row per image.
    """
    rows = []
    for name, img in images.items():
        img = as_image(img).double()
        rows.append({
            "image": name,
            "TV L1 (sum)": float(losses.tv_loss(img, "l1")),
            "TV L1 (mean |∇|)": float(losses.tv_loss(img, "l1", reduction="mean")),
            "TV squared (mean)": float(losses.tv_loss(img, "l2", beta=2.0, reduction="mean")),
        })
    return Table(list(rows[0]), rows, title="total variation")


def _variation_map(img: torch.Tensor) -> np.ndarray:
    """|x[i, j+1] - x[i, j]| + |x[i+1, j] - x[i, j]| summed over channels, (H-1, W-1)."""
    dx = (img[..., :-1, 1:] - img[..., :-1, :-1]).abs()
    dy = (img[..., 1:, :-1] - img[..., :-1, :-1]).abs()
    return (dx + dy)[0].sum(0).cpu().numpy()


def _panel_height(img: torch.Tensor, width: float, title_lines: int = 3) -> float:
    """Inches of height for a panel ``width`` inches wide showing img (..., H, W) with a title."""
    return width * img.shape[-2] / img.shape[-1] + 0.17 * title_lines + 0.1


def visualize_tv_noise(
    image: Any = "chelsea_cat", noise_std: float = 0.1, sigma: float = 1.0, size: int | None = None, seed: int = 0
) -> Figure:
    """A clean image, with Gaussian noise and smoothed; below, the map of |∇x| whose sum is the TV.

    Inputs: image; noise_std: noise level; sigma: blur in px; size: long side (default :func:`course_size`).
    Returns: the Figure (titles give L1 TV as mean |∇| and squared TV as mean ∇²).
    """
    clean = _image(image, course_size(size))
    images = {"clean": clean, f"noisy (σ = {noise_std:g})": distort(clean, "noise", noise_std, seed),
              f"smoothed (blur σ = {sigma:g} px)": distort(clean, "blur", sigma)}
    table = tv_table(images)
    fig = Figure(figsize=(10, _panel_height(clean, 3.0, 2) + _panel_height(clean, 3.0, 1) + 0.4), layout="constrained")
    axes = fig.subplots(2, 3)
    maps = {name: _variation_map(img) for name, img in images.items()}
    top = max(float(m.max()) for m in maps.values())
    for col, ((name, img), row) in enumerate(zip(images.items(), table.rows)):
        tv_l1, tv_squared = row["TV L1 (mean |∇|)"], row["TV squared (mean)"]
        draw_image(axes[0, col], img, f"{name}\nTV L1 {tv_l1:.4f}, TV² {tv_squared:.4f}")
        shown = axes[1, col].imshow(maps[name], cmap="magma", vmin=0, vmax=top)
        axes[1, col].set_title("|∂x| + |∂y| (summed over RGB)", fontsize=9)
        axes[1, col].axis("off")
    fig.colorbar(shown, ax=axes[1, :].tolist(), shrink=0.8)
    fig.suptitle("Total variation measures high-frequency content: noise raises it, smoothing lowers it")
    return fig


def psnr(x: torch.Tensor, reference: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of x against reference, both in [0, 1] (same shape)."""
    if x.shape != reference.shape:
        raise ValueError(f"psnr: x has shape {tuple(x.shape)} but reference has shape {tuple(reference.shape)}")
    mse = float((x.double() - reference.double()).pow(2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def tv_denoise(
    noisy: torch.Tensor, tv_weight: float, kind: str = "l1", steps: int | None = None, lr: float = 0.01
) -> torch.Tensor:
    """Denoise by minimising ½·mean (x - y)² + tv_weight · TV(x) over the pixels x (Rudin, Osher &
    Fatemi's model for kind="l1"; kind="l2" is the squared TV, β = 2), with Adam from x = y.

    Inputs: noisy: (N, C, H, W) y in [0, 1]; tv_weight >= 0; kind: "l1" | "l2" (TV with reduction
    "mean"); steps: default DENOISE_STEPS (100 in smoke mode); lr: Adam's step on [0, 1] pixels.
    Returns: (N, C, H, W) in [0, 1].
    """
    if not tv_weight >= 0:
        raise ValueError(f"tv_denoise: tv_weight must be >= 0, got {tv_weight!r}")
    y = noisy.detach()
    x = y.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    for _ in range(smoke_or(DENOISE_STEPS, 100) if steps is None else steps):
        optimizer.zero_grad(set_to_none=True)
        loss = 0.5 * (x - y).pow(2).mean() + tv_weight * losses.tv_loss(x, kind, beta=2.0, reduction="mean")
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return x.detach()


def visualize_tv_denoising(
    image: Any = "chelsea_cat",
    noise_std: float = 0.1,
    l1_weight: float = 0.1,
    l2_weight: float = 0.5,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
) -> Figure:
    """TV denoising: clean, noisy, denoised with L1 TV and with squared TV; PSNR and TV in the titles,
    and a zoomed crop of each below.

    Inputs: image; noise_std; l1_weight, l2_weight: the TV weights; size: default :func:`course_size`;
    steps: Adam steps (default DENOISE_STEPS, 100 in smoke mode). Returns: the Figure.
    """
    clean = _image(image, course_size(size))
    noisy = distort(clean, "noise", noise_std, seed)
    images = {
        "clean": clean,
        f"noisy (σ = {noise_std:g})": noisy,
        f"L1 TV, λ = {l1_weight:g}": tv_denoise(noisy, l1_weight, "l1", steps),
        f"squared TV, λ = {l2_weight:g}": tv_denoise(noisy, l2_weight, "l2", steps),
    }
    h, w = clean.shape[-2:]
    ch, cw = max(h // 3, 8), max(w // 3, 8)
    top, left = (h - ch) // 2, (w - cw) // 2
    height = _panel_height(clean, 11 / 4) + _panel_height(clean[..., :ch, :cw], 11 / 4)
    fig = Figure(figsize=(11, height), layout="constrained")
    axes = fig.subplots(2, 4)
    for col, (name, img) in enumerate(images.items()):
        tv = float(losses.tv_loss(img, "l1", reduction="mean"))
        quality = "" if name == "clean" else f"\nPSNR {psnr(img, clean):.1f} dB"
        draw_image(axes[0, col], img, f"{name}{quality}\nTV L1 {tv:.4f}")
        axes[1, col].imshow(image_array(img[..., top:top + ch, left:left + cw]), interpolation="nearest")
        axes[1, col].set_title("centre crop", fontsize=8)
        axes[1, col].axis("off")
    fig.suptitle(
        "Denoising by minimising ½·mean(x − y)² + λ·TV(x): L1 TV keeps edges sharp, squared TV blurs them"
    )
    return fig


TV_WEIGHT_FACTORS = (0.0, 1.0, 10.0, 100.0)
"""Notebook 04's sweep: tv_weight as multiples of the preset's (0 = no TV term); smoke mode uses 0, 1, 100."""


def tv_weight_sweep(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    tv_weights: Sequence[float] | None = None,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> dict[float, Result]:
    """One Gatys run per tv_weight, same inputs and seed. tv_weights default: TV_WEIGHT_FACTORS times
    the preset's tv_weight (smoke: 0, 1 and 100 times). Returns: {tv_weight: Result} in the order given."""
    if tv_weights is None:
        factors = smoke_or(TV_WEIGHT_FACTORS, (0.0, 1.0, 100.0))
        tv_weights = [f * _preset_value("tv_weight", options) for f in factors]
    variants = {float(w): {"tv_weight": float(w)} for w in tv_weights}
    return run_variants(content, style, variants, size, steps, seed, weights, **options)


def _weight_axis(ax: Axes, weights: Sequence[float], name: str) -> str:
    """Put weights >= 0 (0 among them, say) on a symlog x axis, ticked at each weight, and return its label.

    The axis is linear from 0 to the smallest positive weight w0, logarithmic above, and [0, w0] is as
    wide as one decade: so 0, w0, 10 w0, 100 w0 are evenly spaced and every distance is to scale.
    Without a positive weight, or with a negative one, the axis stays linear.
    """
    positive = [w for w in weights if w > 0]
    if positive and min(weights) >= 0:
        w0 = min(positive)
        ax.set_xscale("symlog", linthresh=w0, linscale=0.9)  # matplotlib widens [0, w0] by 1 / 0.9: one decade
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks(list(weights), [f"{w:g}" for w in weights])
        ax.set_xlim(-0.25 * w0, max(weights) * 10**0.25)  # margins of a quarter decade; no negative weights shown
        return f"{name} (linear up to {w0:g}, log scale above)"
    ax.set_xticks(list(weights), [f"{w:g}" for w in weights])
    return name


def visualize_tv_weight_sweep(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    tv_weights: Sequence[float] | None = None,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """The results of :func:`tv_weight_sweep` in a row, each titled with its TV (mean |∇|), and a
    plot of the result's TV against tv_weight, with the content's and the style's TV for reference.

    Returns: the Figure.
    """
    size = course_size(size)
    c, s = _image(content, size), _image(style)
    results = tv_weight_sweep(c, s, tv_weights, size, steps, seed, weights, **options)
    tvs = {w: float(losses.tv_loss(r.image, "l1", reduction="mean")) for w, r in results.items()}
    panels = [(f"tv_weight = {w:g}\nTV {tvs[w]:.4f}", r.image) for w, r in results.items()]
    fig = Figure(figsize=(max(2.6 * len(panels) + 4.2, 9.0), 3.4), layout="constrained")
    grid = fig.add_gridspec(1, len(panels) + 1, width_ratios=[1.0] * len(panels) + [1.6])
    for i, (title, img) in enumerate(panels):
        draw_image(fig.add_subplot(grid[0, i]), img, title)
    ax = fig.add_subplot(grid[0, -1])
    ax.plot(list(results), list(tvs.values()), marker="o", label="result")
    ax.axhline(float(losses.tv_loss(c, "l1", reduction="mean")), color="grey", linestyle="--", label="content image")
    style_tv = float(losses.tv_loss(resize(s, size), "l1", reduction="mean"))
    ax.axhline(style_tv, color="tab:red", linestyle=":", label="style image")
    ax.set(xlabel=_weight_axis(ax, list(results), "tv_weight"), ylabel="TV (mean |∇|)", title="TV of the result")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    steps_done = len(next(iter(results.values())).history["total"])
    fig.suptitle(f"TV weight sweep: {steps_done} steps, {size} px, seed {seed}")
    fig.supxlabel(_footer(results), fontsize=8)
    return fig
