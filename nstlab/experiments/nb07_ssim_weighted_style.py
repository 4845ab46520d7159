"""Notebook 07, the SSIM-weighted style loss — faces layer: SSIM step by step, distortions at one MSE,
SSIM between Gram matrices, how its factor reweights the style layers, and Gatys vs SSIM-weighted runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.colors
import numpy as np
import torch
from matplotlib.figure import Figure

from nstlab import losses, plotting
from nstlab.images import resize
from nstlab.optimize import PRESETS
from nstlab.plotting import MAX_FIGURE_WIDTH, image_rows_figure
from nstlab.ssim import local_statistics, ssim
from nstlab.vgg import GATYS_STYLE_LAYERS, VGGFeatures

from .common import (
    DISTORTIONS,
    EVAL_CONTENT_LAYER,
    _given,
    _image,
    _lpips_between,
    course_size,
    distort,
    evaluate_results,
    metric_titles,
    normalized_style_term,
    plot_runs,
    run_variants,
)

_MAX_STRENGTH = {"brightness": 1.0, "contrast": 1.0, "noise": 1.0, "blur": 16.0}
"""The largest strength of each of the DISTORTIONS that :func:`match_distortions` tries."""


def ssim_components(
    x: torch.Tensor,
    y: torch.Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
) -> dict[str, torch.Tensor]:
    """SSIM step by step: the local statistics and Wang et al.'s three factors.

    mu, sigma^2, sigma_xy are Gaussian-weighted local means, variances and covariance ('valid'
    window, as nstlab.ssim); luminance l = (2 mu_x mu_y + c1)/(mu_x^2 + mu_y^2 + c1), contrast
    c = (2 s_x s_y + c2)/(s_x^2 + s_y^2 + c2), structure s = (s_xy + c3)/(s_x s_y + c3) with
    c3 = c2 / 2, so that l * c * s is the SSIM map.

    Inputs:
    - x, y: (N, C, H, W) of the same shape, H, W >= window_size.
    Returns:
    - {"mu_x", "mu_y", "var_x", "var_y", "cov_xy", "luminance", "contrast", "structure", "ssim"}:
      maps of shape (N, C, H - window_size + 1, W - window_size + 1).
    """
    mu_x, mu_y, var_x, var_y, cov_xy = local_statistics(x, y, window_size, sigma)
    var_x, var_y = var_x.clamp_min(0), var_y.clamp_min(0)  # round-off could make them slightly negative
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    c3 = c2 / 2
    sd_x, sd_y = var_x.sqrt(), var_y.sqrt()
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    con = (2 * sd_x * sd_y + c2) / (var_x + var_y + c2)
    struct = (cov_xy + c3) / (sd_x * sd_y + c3)
    return {
        "mu_x": mu_x,
        "mu_y": mu_y,
        "var_x": var_x,
        "var_y": var_y,
        "cov_xy": cov_xy,
        "luminance": lum,
        "contrast": con,
        "structure": struct,
        "ssim": lum * con * struct,
    }


def visualize_ssim_components(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> Figure:
    """x, y and the maps of the three SSIM factors and their product (first image, first channel).

    Inputs:
    - x, y: (N, C, H, W) in [0, 1], H, W >= window_size.
    Returns:
    - the Figure: 6 image axes (x, y, luminance, contrast, structure, SSIM), each factor titled
      with its mean.
    """
    parts = ssim_components(x, y, window_size, sigma)
    fig = Figure(figsize=(MAX_FIGURE_WIDTH, 2.6), layout="constrained")
    axes = fig.subplots(1, 6)
    for ax, (title, img) in zip(axes[:2], [("x", x), ("y", y)]):
        ax.imshow(img[0, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    for ax, key in zip(axes[2:], ["luminance", "contrast", "structure", "ssim"]):
        m = parts[key][0, 0].detach().cpu().numpy()
        image = ax.imshow(m, cmap="viridis", vmin=min(0.0, float(m.min())), vmax=1)
        ax.set_title(f"{key} (mean {m.mean():.3f})", fontsize=9)
        ax.axis("off")
    fig.colorbar(image, ax=list(axes[2:]), shrink=0.8)
    return fig


def match_distortions(
    img: torch.Tensor,
    target: float,
    distance: Callable[[torch.Tensor, torch.Tensor], float],
    kinds: Sequence[str] = DISTORTIONS,
    seed: int = 0,
    iterations: int = 14,
) -> dict[str, tuple[torch.Tensor, float, float]]:
    """Each distortion at the strength where distance(img, distorted) equals ``target`` (bisection).

    Inputs:
    - img: (N, C, H, W) in [0, 1]; target: the distance to reach; distance: (a, b) -> float,
      growing with the strength; kinds: names from :data:`DISTORTIONS`.
    Returns:
    - {kind: (distorted image, strength, distance reached)}. The distance reached is >= ``target``
      (within the bisection's precision of it) unless even the largest strength stays below
      ``target``: then the largest strength is used and the distance reached is below ``target``.
    """
    out = {}
    for kind in kinds:
        lo, hi = 0.0, _MAX_STRENGTH[kind]
        if distance(img, distort(img, kind, hi, seed)) <= target:
            lo = hi
        else:
            for _ in range(iterations):
                mid = 0.5 * (lo + hi)
                if distance(img, distort(img, kind, mid, seed)) < target:
                    lo = mid
                else:
                    hi = mid
        t = hi if lo < hi else lo
        distorted = distort(img, kind, t, seed)
        out[kind] = (distorted, t, distance(img, distorted))
    return out


def visualize_equal_distance(
    image: Any = "chelsea_cat",
    match: str = "mse",
    target: float = 0.01,
    size: int | None = None,
    weights: str | None = "auto",
    seed: int = 0,
) -> Figure:
    """The image under each distortion, all at the same MSE (or content loss), with SSIM and LPIPS.

    Inputs:
    - image: tensor, path, bundled name or ImagePicker; size: long side (default :func:`course_size`).
    - match: "mse" (mean squared pixel error) or "content" (the normalised content loss at
      relu4_2); target: the value every distortion is tuned to.
    - weights: VGG19 weights for the content loss and LPIPS; seed: for the noise.
    Returns:
    - the Figure: 1 + len(DISTORTIONS) image axes in one row, titled with MSE, content loss, SSIM
      and LPIPS; a distortion whose largest strength stays below ``target`` (see
      :func:`match_distortions`) is shown at that strength, titled "max strength: target not reached".
    """
    if match not in ("mse", "content"):
        raise ValueError(f"visualize_equal_distance: match must be 'mse' or 'content', got {match!r}")
    img = _image(image, course_size(size))
    vgg = VGGFeatures([EVAL_CONTENT_LAYER, *losses.LPIPS_LAYERS], weights=weights)
    vgg_content = VGGFeatures([EVAL_CONTENT_LAYER], weights=weights)  # shallower: for the bisection
    img = img.to(vgg.device)
    with torch.no_grad():
        ref = vgg(img)

        def content(a: torch.Tensor, b: torch.Tensor) -> float:
            return float(losses.normalized_content_loss(vgg_content(b)[EVAL_CONTENT_LAYER], ref[EVAL_CONTENT_LAYER]))

        def mse(a: torch.Tensor, b: torch.Tensor) -> float:
            return float((a - b).pow(2).mean())

        found = match_distortions(img, target, mse if match == "mse" else content, seed=seed)
        panels = [("original", img)]
        for kind, (out, strength, reached) in found.items():
            feats = vgg(out)
            lpips = _lpips_between(feats, ref)
            missed = "\nmax strength: target not reached" if reached < target else ""
            title = (
                f"{kind} (t = {strength:.3g}){missed}\n"
                f"MSE {mse(img, out):.4f}, content {content(img, out):.3f}\n"
                f"SSIM {float(ssim(out, img)):.3f}, LPIPS {lpips:.3f}"
            )
            panels.append((title, out))
    name = "MSE" if match == "mse" else f"content loss ({EVAL_CONTENT_LAYER})"
    fig, _, _ = image_rows_figure(
        [(title, out.cpu()) for title, out in panels], min_height=1.0,
        suptitle=f"every distortion tuned to the same {name} = {target:g}",
        footer=plotting.weights_footer(vgg.weights_name),
    )
    return fig


def gram_ssim_rows(
    content: Any = "chelsea_cat",
    style: Any = "van_gogh_church_at_auvers",
    layers: Sequence[str] = GATYS_STYLE_LAYERS,
    size: int | None = None,
    noise: float = 0.05,
    weights: str | None = "auto",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """SSIM between the style image's Gram and (a) a slightly perturbed style's, (b) the content's.

    Grams are averaged over positions (so the images' sizes do not matter) and scaled to [0, 1]
    with the style Gram's range, as :func:`nstlab.losses.ssim_gram_factor` does.

    Inputs:
    - content, style: images (long side ``size``, default 256 / 64 in smoke mode).
    - noise: standard deviation of the seeded Gaussian noise added to the style image.
    Returns:
    - one dict per layer: "layer", "channels", SSIM and factor (1 - SSIM)/2 of both comparisons.
    """
    size = course_size(size)
    style_img = _image(style, size)
    perturbed = distort(style_img, "noise", noise, seed)
    vgg = VGGFeatures(list(layers), weights=weights)
    with torch.no_grad():
        fc = vgg(_image(content, size).to(vgg.device))
        fs = vgg(style_img.to(vgg.device))
        fp = vgg(perturbed.to(vgg.device))
    rows = []
    for layer in layers:
        a = losses.gram_matrix(fs[layer], "hw")
        f_p = losses.ssim_gram_factor(losses.gram_matrix(fp[layer], "hw"), a)
        f_c = losses.ssim_gram_factor(losses.gram_matrix(fc[layer], "hw"), a)
        rows.append(
            {
                "layer": layer,
                "channels": a.shape[-1],
                "SSIM(style, perturbed)": float(1 - 2 * f_p),
                "SSIM(style, content)": float(1 - 2 * f_c),
                "factor perturbed": float(f_p),
                "factor content": float(f_c),
            }
        )
    return rows


def visualize_gram_ssim(
    content: Any = "chelsea_cat",
    style: Any = "van_gogh_church_at_auvers",
    layer: str = "relu3_1",
    size: int | None = None,
    noise: float = 0.05,
    weights: str | None = "auto",
    seed: int = 0,
) -> Figure:
    """The scaled Grams Ã (style), G̃ (perturbed style) and G̃ (content) of one layer, and the
    SSIM of each comparison for every Gatys style layer.

    Inputs: as :func:`gram_ssim_rows`; layer: the layer whose Grams are drawn (one of
    GATYS_STYLE_LAYERS).
    Returns:
    - the Figure: 3 Gram axes (+ a colour bar) and 1 bar-chart axes.
    """
    if layer not in GATYS_STYLE_LAYERS:
        raise ValueError(f"visualize_gram_ssim: layer must be one of {GATYS_STYLE_LAYERS}, got {layer!r}")
    size = course_size(size)
    rows = gram_ssim_rows(content, style, GATYS_STYLE_LAYERS, size, noise, weights, seed)
    style_img = _image(style, size)
    vgg = VGGFeatures([layer], weights=weights)
    with torch.no_grad():
        grams = {
            name: losses.gram_matrix(vgg(img.to(vgg.device))[layer], "hw")
            for name, img in [
                ("style", style_img),
                ("perturbed", distort(style_img, "noise", noise, seed)),
                ("content", _image(content, size)),
            ]
        }
    row = next(r for r in rows if r["layer"] == layer)
    fig = Figure(figsize=(MAX_FIGURE_WIDTH, 3.6), layout="constrained")
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.4]})
    titles = {
        "style": "style Gram $\\tilde{A}$\n(the target)",
        "perturbed": f"perturbed style $\\tilde{{G}}$\nSSIM {row['SSIM(style, perturbed)']:.3f}",
        "content": f"content $\\tilde{{G}}$\nSSIM {row['SSIM(style, content)']:.3f}",
    }
    for ax, (name, g) in zip(axes, grams.items()):
        scaled, _ = losses.gram_to_unit_range(g, grams["style"])
        norm = matplotlib.colors.PowerNorm(0.5, vmin=0, vmax=1, clip=True)
        image = ax.imshow(scaled[0].cpu().numpy(), cmap="magma", norm=norm)
        ax.set_title(f"{layer}: {titles[name]}", fontsize=10)
        ax.axis("off")
    fig.colorbar(image, ax=list(axes[:3]), shrink=0.8, label="scaled Gram (square-root colours)")
    x = np.arange(len(rows))
    axes[3].bar(x - 0.2, [r["SSIM(style, perturbed)"] for r in rows], 0.4, label="style vs perturbed style")
    axes[3].bar(x + 0.2, [r["SSIM(style, content)"] for r in rows], 0.4, label="style vs content")
    axes[3].set_xticks(x, [r["layer"] for r in rows], fontsize=8)
    axes[3].set_ylabel("SSIM of the scaled Grams")
    axes[3].axhline(0, color="grey", linewidth=0.8)
    axes[3].set_ylim(min(0.0, min(r["SSIM(style, content)"] for r in rows)), 1.25)
    axes[3].legend(fontsize=8, loc="upper center", ncol=2)
    fig.supxlabel(plotting.weights_footer(vgg.weights_name), fontsize=8)
    return fig


def ssim_reweighting_rows(
    content: Any = "chelsea_cat",
    style: Any = "van_gogh_church_at_auvers",
    layers: Sequence[str] = GATYS_STYLE_LAYERS,
    size: int | None = None,
    weights: str | None = "auto",
    image: Any = None,
    ssim_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = ssim,
) -> list[dict[str, Any]]:
    """How the factor (1 - SSIM)/2 reweights the style layers, at one image x.

    Per layer: E_l (the engine's normalised term E_l / E_l(0, A)), the factor, and the layer's
    share of the style loss with uniform w_l, without (w_l E_l / sum) and with the factor
    (w_l E_l f_l / sum).

    Inputs:
    - content, style: images at long side ``size``; image: x (default: the content image, where
      the optimisation starts with init="content"), resized to the content's H, W.
    - ssim_fn(x, y) -> (N,): the SSIM to build the factor with (yours from the notebook's exercise, or
      ``nstlab.ssim.ssim``), applied as :func:`nstlab.losses.ssim_gram_factor` applies it.
    Returns:
    - one dict per layer: "layer", "E_l", "factor", "share plain", "share SSIM".
    """
    size = course_size(size)
    content_img = _image(content, size)
    x = content_img if image is None else resize(_image(image), tuple(content_img.shape[-2:]))
    vgg = VGGFeatures(list(layers), weights=weights)
    with torch.no_grad():
        fx = vgg(x.to(vgg.device))
        fs = vgg(_image(style, size).to(vgg.device))
        terms = {l: normalized_style_term(fx[l], fs[l]) for l in layers}
        factors = {l: _ssim_factor(losses.gram_matrix(fx[l], "hw"), losses.gram_matrix(fs[l], "hw"), ssim_fn)
                   for l in layers}
    plain_total = sum(terms.values())
    ssim_total = sum(terms[l] * factors[l] for l in layers)
    return [
        {
            "layer": l,
            "E_l": terms[l],
            "factor": factors[l],
            "share plain": terms[l] / plain_total,
            "share SSIM": terms[l] * factors[l] / ssim_total,
        }
        for l in layers
    ]


def _ssim_factor(gram: torch.Tensor, target: torch.Tensor, ssim_fn: Callable[..., torch.Tensor]) -> float:
    """(1 - ssim_fn(G~, A~)) / 2 of one image's Gram against the target's, both scaled by the target's range
    (as :func:`nstlab.losses.ssim_gram_factor`, with any SSIM of the check's signature)."""
    g, a = losses.gram_to_unit_range(gram, target)
    return float((1 - ssim_fn(g.unsqueeze(1), a.expand_as(g).unsqueeze(1))) / 2)


def visualize_ssim_reweighting(
    content: Any = "chelsea_cat",
    style: Any = "van_gogh_church_at_auvers",
    size: int | None = None,
    weights: str | None = "auto",
    ssim_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = ssim,
) -> Figure:
    """Bar charts: each Gatys style layer's factor (1 - SSIM)/2, and its share of the style loss
    with and without the factor, at the start of the optimisation (x = content); ``ssim_fn`` as in
    :func:`ssim_reweighting_rows`.

    Returns:
    - the Figure: 2 axes.
    """
    rows = ssim_reweighting_rows(content, style, GATYS_STYLE_LAYERS, size, weights, ssim_fn=ssim_fn)
    x = np.arange(len(rows))
    names = [r["layer"] for r in rows]
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.bar(x, [r["factor"] for r in rows], color="tab:purple")
    left.set_xticks(x, names, fontsize=8)
    left.set_ylim(0, max(0.5, max(r["factor"] for r in rows) * 1.1))
    left.set_title(r"SSIM factor $(1 - \mathrm{SSIM}(\tilde{G}, \tilde{A}))\,/\,2$ per layer", fontsize=10)
    right.bar(x - 0.2, [r["share plain"] for r in rows], 0.4, label=r"plain Gatys: $w_l E_l$")
    right.bar(x + 0.2, [r["share SSIM"] for r in rows], 0.4, label=r"SSIM-weighted: $w_l E_l\,(1 - \mathrm{SSIM})/2$")
    right.set_xticks(x, names, fontsize=8)
    right.set_title("each layer's share of the style loss at x = content", fontsize=9)
    right.legend(fontsize=8)
    fig.supxlabel(plotting.weights_footer(VGGFeatures(["relu1_1"], weights=weights).weights_name), fontsize=8)
    return fig


def preset_differences(a: str = "gatys", b: str = "ssim") -> list[dict[str, Any]]:
    """The options where two presets of :data:`nstlab.optimize.PRESETS` differ.

    Returns:
    - one dict per differing option: {"option", a, b}; options only one preset sets show "-".
    """
    for name in (a, b):
        if name not in PRESETS:
            raise ValueError(f"preset_differences: no preset {name!r}; presets are {list(PRESETS)}")
    keys = list(dict.fromkeys([*PRESETS[a], *PRESETS[b]]))
    return [
        {"option": k, a: PRESETS[a].get(k, "-"), b: PRESETS[b].get(k, "-")}
        for k in keys
        if PRESETS[a].get(k, "-") != PRESETS[b].get(k, "-")
    ]


SSIM_VARIANTS: dict[str, dict[str, Any]] = {
    "gatys": {"preset": "gatys"},
    "gatys + SSIM weighting": {"preset": "gatys", "ssim_weighting": True},
    "ssim (blog preset)": {"preset": "ssim"},
}
"""The side-by-side of notebook 07: plain Gatys, Gatys with only the SSIM factor added, and the
blog's whole recipe (SSIM factor, relu5_2 content layer, Adam)."""


def visualize_ssim_vs_gatys(
    content: Any = "chelsea_cat",
    style: Any = "van_gogh_church_at_auvers",
    size: int | None = None,
    steps: int | None = None,
    style_weight: float | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    variants: Mapping[str, Mapping[str, Any]] | None = None,
) -> Figure:
    """Plain Gatys vs the SSIM-weighted style loss on the same images, seed and steps.

    Every run gets the same size, steps, seed and weights; each variant (default
    :data:`SSIM_VARIANTS`) sets only its preset/options. ``style_weight`` overrides every variant's
    (None: each preset's own). Under each picture: the plain Gatys style and content losses of the
    result (one yardstick for all, see :func:`evaluate_images`).

    Returns:
    - the Figure of :func:`plot_runs` (2 inputs + one image per variant, 2 loss plots).
    """
    variants = SSIM_VARIANTS if variants is None else variants
    results = run_variants(content, style, variants, size, steps, seed, weights,
                           **_given(style_weight=style_weight))
    rows = evaluate_results(results, content, style, weights)
    titles = metric_titles(rows, show=("style loss", "content loss"))
    return plot_runs(results, ("content", "style"), {"content": content, "style": style}, titles)
