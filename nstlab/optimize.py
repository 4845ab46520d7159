"""The optimisation engine: ``stylize(content, style, **options) -> Result`` — engine layer.

Gatys-style transfer optimises the pixels of an image x so that its VGG19 features match the
content image's (content loss) and its Gram matrices match the style image's (style loss):

    total = content_weight * content + style_weight * style + tv_weight * tv

The presets ("gatys", "novak", "ssim") and every option are in :mod:`nstlab.presets`.

Loss scaling (``normalize_losses=True``, the default): each term is divided by a constant computed
once per scale from its own target, so the weights are unitless and mean the same at any size
(:func:`nstlab.losses.normalized_content_loss`, :class:`nstlab.losses.StyleTarget`):

- content: sum (F - P)^2 / sum P^2, averaged over the content layers (a relative squared error);
- style: each key's E_l is divided by E_l(0, A) = sum A^2 / (4 Ca Cb M^2), the loss of a zero Gram,
  then weighted by the layer weights w_l (sum 1);
- tv: mean |x[i, j+1] - x[i, j]| + ... (``tv_loss(x, "l1", reduction="mean")``).

With ``normalize_losses=False`` the paper's raw formulas are used: content 1/2 sum (F - P)^2 summed
over the layers, style sum_l w_l E_l (the weights then need the papers' orders of magnitude).

``content_loss="lpips"`` replaces the content term by Yuan & Huang's LPIPS-form distance to the content
image (:func:`nstlab.losses.perceptual_distance` over ``losses.LPIPS_LAYERS``, unit weights), a sum of
per-layer cosine distances that needs no normalising; the style term stays Gatys'.

The target Grams are the style images' Grams averaged over their positions, times the output's
number of positions M, so the style images' sizes (``style_scale``) change which scale of texture is
copied, not the loss scale.

Imports the textbook layer and the kernels (``nstlab._kernels``: the Gram products), nothing above.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nstlab import _kernels, color, losses
from nstlab.images import as_image, describe, resize, target_size
from nstlab.presets import (
    DEFAULT_LR_BY_OPTIMIZER,
    DEFAULTS,
    LBFGS_HISTORY,
    OPTION_NAMES,
    PRESETS,
    _fail,
    resolve_options,
)
from nstlab.settings import default_device, keep_freed_memory
from nstlab.vgg import VGG19_LAYERS, VGGFeatures

__all__ = [
    "DEFAULT_LR_BY_OPTIMIZER", "DEFAULTS", "OPTION_NAMES", "PRESETS", "InsufficientMemoryError", "Result", "StepInfo",
    "resolve_options", "stylize",
]

# ----------------------------------------------------------------------------- memory


class InsufficientMemoryError(MemoryError):
    """The requested size will clearly not fit in memory; the message suggests a smaller size."""


MEMORY_FACTOR = 1.5
"""Peak memory / activation bytes of one forward pass. Autograd keeps the forward activations and
the backward pass adds the gradients of the layer being processed; measured on CPU (peak RSS of a
forward + backward to relu5_1, torch 2.x): 1.29x at 256 px, 1.20x at 512 px. 1.5 leaves a margin."""


def _channels(layer: str) -> int:
    block = int(layer[4] if layer.startswith("pool") else layer.split("_")[0][-1])
    return (64, 128, 256, 512, 512)[block - 1]


def estimate_memory(size_hw: tuple[int, int], deepest_layer: str, dtype: torch.dtype = torch.float32) -> int:
    """Estimated peak bytes of one forward + backward pass of VGG19 (batch 1) in ``dtype``.

    Inputs:
    - size_hw: (H, W) of the image optimised; deepest_layer: the last VGG19 layer evaluated.
    Returns: MEMORY_FACTOR * sum over the modules up to ``deepest_layer`` of C * H * W * bytes per value.
    """
    if deepest_layer not in VGG19_LAYERS:
        raise ValueError(f"estimate_memory: unknown layer {deepest_layer!r}")
    h, w = int(size_hw[0]), int(size_hw[1])
    elements = 3 * h * w  # the image itself
    for name in VGG19_LAYERS[: VGG19_LAYERS.index(deepest_layer) + 1]:
        if name.startswith("pool"):
            h, w = h // 2, w // 2
        elements += _channels(name) * h * w
    return int(MEMORY_FACTOR * dtype.itemsize * elements)


def available_memory(device: torch.device) -> int | None:
    """Free bytes on ``device``: CUDA free + cached memory, MemAvailable on CPU; None if unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def check_memory(
    size_hw: tuple[int, int], deepest_layer: str, device: torch.device, dtype: torch.dtype = torch.float32
) -> None:
    """Raise InsufficientMemoryError if the estimate exceeds the free memory of ``device``."""
    need = estimate_memory(size_hw, deepest_layer, dtype)
    free = available_memory(device)
    if free is None or need <= free:
        return
    fits = int(max(size_hw) * math.sqrt(free / need)) // 16 * 16
    raise InsufficientMemoryError(
        f"stylize: a {size_hw[0]}x{size_hw[1]} image up to {deepest_layer} needs about "
        f"{need / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB is free on {device}; "
        f"use a smaller size (about {fits} px would fit)"
    )


# ----------------------------------------------------------------------------- results


@dataclass
class StepInfo:
    """What the callback receives every ``callback_every`` steps."""

    step: int  # 0-based index of the step just done, counted over all scales
    total_steps: int
    scale: int  # 0-based scale index
    n_scales: int
    losses: dict[str, float]  # "total", "content", "style", "tv" of the image evaluated at this step
    image: torch.Tensor = field(repr=False)  # (1, 3, H, W) CPU copy of the current image


@dataclass
class Result:
    """The outcome of :func:`stylize`. Images are (1, 3, H, W) CPU float tensors in [0, 1].

    history: {"total", "content", "style", "tv": one float per step; "scale": scale index per step}.
    The terms are unweighted; total = content_weight*content + style_weight*style + tv_weight*tv.
    best_image is the evaluated image of lowest total loss at the last scale run (best_step indexes
    history). interrupted: stopped by KeyboardInterrupt or the callback; stopped_reason says why
    the run ended early (None when it completed). precision: what the network ran in ("fp32", "bf16",
    "fp16"; the pixels and losses are float32 in every case).
    """

    image: torch.Tensor = field(repr=False)
    best_image: torch.Tensor = field(repr=False)
    best_loss: float
    best_step: int
    history: dict[str, list] = field(repr=False)
    step_times: list[float] = field(repr=False)
    settings: dict[str, Any] = field(repr=False)
    weights_name: str
    interrupted: bool = False
    stopped_reason: str | None = None
    precision: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        """Everything but the images, JSON-serialisable."""
        return {
            "settings": self.settings,
            "weights_name": self.weights_name,
            "precision": self.precision,
            "interrupted": self.interrupted,
            "stopped_reason": self.stopped_reason,
            "best_step": self.best_step,
            "best_loss": self.best_loss if math.isfinite(self.best_loss) else None,
            "history": self.history,
            "step_times": self.step_times,
        }

    def to_json(self, indent: int | None = 1) -> str:
        """:meth:`to_dict` as JSON text (the CLI writes it next to the picture)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """One line: steps, final and best loss, time, weights and precision, and why it stopped if it did."""
        n = len(self.history["total"])
        last = f"{self.history['total'][-1]:.4g}" if n else "-"
        line = (
            f"{n} steps in {sum(self.step_times):.1f} s, loss {last} (best {self.best_loss:.4g} "
            f"at step {self.best_step}), {self.weights_name} VGG19 in {self.precision}"
        )
        return line + (f"; {self.stopped_reason}" if self.stopped_reason else "")


# ----------------------------------------------------------------------------- targets and losses


def feature_extractor(
    layers: list[str],
    weights: str | os.PathLike | None = None,
    pooling: str = "max",
    device: Any = None,
    normalized: bool = False,
    precision: str = "fp32",
) -> VGGFeatures:
    """The engine's VGG19: run only up to the deepest of ``layers``, in the engine's layout
    (:func:`nstlab._kernels.engine_memory_format`) and in ``precision`` ("fp32", "bf16" or "fp16")."""
    device = default_device(device)
    return VGGFeatures(
        layers,
        weights=weights,
        pooling=pooling,
        normalized=normalized,
        device=device,
        memory_format=_kernels.engine_memory_format(device),
        dtype=_kernels.DTYPES[precision],
    )


@dataclass
class Targets:
    """What the loss of one scale compares with, computed once: the content features P_l, the style
    targets (blended Grams A_l with their scales) and the layer weights w_l."""

    content: dict[str, torch.Tensor]
    style: dict[losses.StyleKey, losses.StyleTarget]
    layer_weights: dict[losses.StyleKey, float]


@torch.no_grad()
def _targets(
    vgg: VGGFeatures, content: torch.Tensor, styles: list[torch.Tensor], blend: list[float], opts: dict
) -> Targets:
    """The :class:`Targets` of one scale: content (1, 3, H, W), style images blended with weights ``blend``."""
    content_feats = vgg(content)
    keys = losses.style_keys(opts["style_layers"], opts["chained"]) if styles else []
    mean_grams: dict = {}  # sum_s b_s G_s / M_s: the style Grams averaged over positions, blended
    for image, weight in zip(styles, blend):
        feats = vgg(image)
        for key, gram in _kernels.style_grams(feats, keys, opts["activation_shift"]).items():
            part = weight * gram / losses.n_positions(feats, key)
            mean_grams[key] = mean_grams[key] + part if key in mean_grams else part
    style = {
        key: losses.style_target(g, losses.n_positions(content_feats, key), opts["normalize_losses"])
        for key, g in mean_grams.items()
    }
    layer_w = losses.layer_weights(keys, opts["layer_weighting"]) if keys else {}
    content = {layer: content_feats[layer].float() for layer in opts["content_layers"]}
    return Targets(content, style, layer_w)


def _loss_terms(x: torch.Tensor, vgg: VGGFeatures, targets: Targets, opts: dict) -> dict[str, torch.Tensor]:
    """The loss terms of image x (1, 3, H, W): {"total", "content", "style", "tv"} scalars."""
    feats = vgg(x)
    content = style = x.new_zeros(())  # the value of a term without layers (texture synthesis, reconstruction)
    if opts["content_loss"] == "lpips" and targets.content:  # Yuan & Huang: the LPIPS-form distance
        content = losses.perceptual_distance(
            {layer: feats[layer].to(p.dtype) for layer, p in targets.content.items()}, targets.content
        ).sum()
    else:
        for layer, p in targets.content.items():
            f = feats[layer].to(p.dtype)  # the loss is float32 whatever the network's precision
            if opts["normalize_losses"]:
                content = content + losses.normalized_content_loss(f, p) / len(targets.content)
            else:
                content = content + losses.content_loss(f, p)
    if targets.style:
        grams = _kernels.style_grams(feats, targets.style, opts["activation_shift"])
        ssim_factors = None
        if opts["ssim_weighting"]:
            ssim_factors = {key: _kernels.ssim_gram_factor(grams[key], t.gram) for key, t in targets.style.items()}
        style = losses.normalized_style_loss(grams, targets.style, targets.layer_weights, ssim_factors)
    tv = losses.tv_loss(x, "l1", reduction="mean")
    total = opts["content_weight"] * content + opts["style_weight"] * style + opts["tv_weight"] * tv
    return {"total": total, "content": content, "style": style, "tv": tv}


# ----------------------------------------------------------------------------- the loop


def _make_optimizer(x: torch.Tensor, opts: dict) -> torch.optim.Optimizer:
    if opts["optimizer"] == "adam":
        return torch.optim.Adam([x], lr=opts["lr"], betas=opts["adam_betas"], eps=opts["adam_eps"])
    # max_iter=1: each .step() is one forward + backward, so progress and Ctrl-C work per step.
    # Zero tolerances: the normalised losses have small gradients, which must not end the run.
    return torch.optim.LBFGS(
        [x], lr=opts["lr"], max_iter=1, history_size=LBFGS_HISTORY, tolerance_grad=0.0, tolerance_change=0.0
    )


def _finite(values: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in values.values())


def _nonfinite_advice(values: dict[str, float], opts: dict) -> str:
    """What to change after a non-finite loss: a weight, when its weighted term overflowed float32 while
    the unweighted terms stayed finite; else the learning rate."""
    terms = {name: values[name] for name in ("content", "style", "tv")}
    if _finite(terms):
        weighted = {name: opts[f"{name}_weight"] * v for name, v in terms.items()}
        too_large = [name for name, v in weighted.items() if not math.isfinite(v) or abs(v) > 1e36]
        if too_large or not math.isfinite(values["total"]):
            names = too_large or list(terms)
            shown = ", ".join(f"{name}_weight={opts[f'{name}_weight']:g}" for name in names)
            return f"The weighted loss overflowed float32: lower {shown}"
    return f"The learning rate is probably too high: try lr={opts['lr'] / 10:g} (now {opts['lr']:g})"


def _optimize_scale(
    x0: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    present: Callable[[torch.Tensor], torch.Tensor],
    opts: dict,
    scale: int,
    first_step: int,
    total_steps: int,
    history: dict[str, list],
    step_times: list[float],
    bar: Any,
    scaler: _kernels.LossScaler,
) -> dict[str, Any]:
    """Run ``opts["steps"][scale]`` steps from x0, appending to history and step_times; ``scaler`` scales
    the loss of an fp16 network's backward pass.

    Returns: {"image", "best_image", "best_loss", "best_step", "interrupted", "stopped_reason"}
    with images on x0's device (never containing NaN).
    """
    x = x0.detach().clone().requires_grad_(True)
    optimizer = _make_optimizer(x, opts)
    # Adam's pixels are clamped to [0, 1] after every step. L-BFGS builds its curvature model from
    # the steps it takes; clamping changes them behind its back and made it diverge (gatys preset,
    # style_weight 1e3, 128 px: loss 2.8 -> 1e4 within 30 steps), so, as in neural-style, its
    # pixels are free during the run and clamped only when shown or returned.
    clamp_each_step = opts["optimizer"] == "adam"
    evaluated: dict[str, Any] = {}

    def closure() -> torch.Tensor:
        evaluated["image"] = x.detach().clone()
        for _ in range(scaler.MAX_RETRIES + 1):  # fp16: again with a smaller loss scale after an overflow
            optimizer.zero_grad(set_to_none=True)
            terms = loss_fn(x)
            if scaler.backward(terms["total"], [x]):
                break
        evaluated["losses"] = {k: float(v.detach()) for k, v in terms.items()}
        return terms["total"]

    out = {"best_loss": math.inf, "best_step": -1, "best_image": x0, "interrupted": False, "stopped_reason": None}
    last_finite, nonfinite = x0, False
    n_scales = len(opts["steps"])
    try:
        for k in range(opts["steps"][scale]):
            step = first_step + k
            start = time.perf_counter()
            problem = None
            try:
                optimizer.step(closure)
            except RuntimeError as err:  # e.g. Adam's lr / (1 - beta1^t) overflowing float32
                if "overflow" not in str(err):
                    raise
                problem = f"the update overflowed ({err})"
            if clamp_each_step:
                with torch.no_grad():
                    x.clamp_(0.0, 1.0)
            seconds = time.perf_counter() - start
            values = evaluated["losses"]
            if problem is None and not _finite(values):
                problem = "loss " + ", ".join(f"{name}={v:.4g}" for name, v in values.items())
            if problem is None:
                for name, v in values.items():
                    history[name].append(v)
                history["scale"].append(scale)
                step_times.append(seconds)
                last_finite = evaluated["image"]
                if values["total"] < out["best_loss"]:
                    out.update(best_loss=values["total"], best_step=step, best_image=evaluated["image"])
                if not bool(torch.isfinite(x).all()):
                    problem = "the update produced non-finite pixels"
            if problem is not None:
                nonfinite = True
                out["stopped_reason"] = f"non-finite values at step {step}: {problem}; kept the last finite image. "
                out["stopped_reason"] += _nonfinite_advice(values, opts)
                break
            bar.set_postfix_str(" ".join(f"{name}={v:.3g}" for name, v in values.items()), refresh=False)
            bar.update(1)
            last = k == opts["steps"][scale] - 1
            if opts["callback"] is not None and ((step + 1) % opts["callback_every"] == 0 or last):
                info = StepInfo(step, total_steps, scale, n_scales, dict(values), present(x.detach()).cpu())
                if opts["callback"](info) is False:
                    out.update(interrupted=True, stopped_reason="stopped by callback")
                    break
    except KeyboardInterrupt:
        out.update(interrupted=True, stopped_reason="interrupted (KeyboardInterrupt)")
    current = x.detach()
    out["image"] = last_finite if nonfinite or not bool(torch.isfinite(current).all()) else current.clone()
    return out


# ----------------------------------------------------------------------------- stylize


def _scale_sizes(content_hw: tuple[int, int], opts: dict, deepest: str) -> list[tuple[int, int]]:
    """(H, W) of every scale; each must survive the pools before the deepest layer."""
    pools = sum(1 for n in VGG19_LAYERS[: VGG19_LAYERS.index(deepest)] if n.startswith("pool"))
    sizes = []
    for f in opts["scale_fractions"]:
        hw = target_size(*content_hw, max(1, round(opts["size"] * f)))
        if min(hw) < 2**pools:
            _fail(
                "size",
                f"{opts['size']} with scales={opts['scales']!r} gives a {hw[0]}x{hw[1]} scale, too small "
                f"for layer {deepest} (needs >= {2**pools} px per side); use a larger size or fewer scales",
            )
        sizes.append(hw)
    return sizes


def _load_inputs(
    content: Any, style: Any, opts: dict, device: torch.device
) -> tuple[torch.Tensor, list[torch.Tensor], list[float], list[Any]]:
    """Content (1, 3, H, W) or None, style images, blend weights summing to 1, the style inputs as given."""
    if content is None and style is None:
        _fail("content", "and style are both None; give at least one of them")
    content_img = None if content is None else as_image(content).to(device)
    styles_in = [] if style is None else list(style) if isinstance(style, (list, tuple)) else [style]
    if style is not None and not styles_in:
        _fail("style", "is an empty list")
    style_imgs = [as_image(s).to(device) for s in styles_in]
    for name, img in [("content", content_img)] * (content is not None) + [("style", s) for s in style_imgs]:
        if img.shape[0] != 1:
            _fail(name, f"must be a single image (1, 3, H, W), got shape {tuple(img.shape)}")
    blend = opts["style_weights"] if opts["style_weights"] is not None else [1.0] * len(style_imgs)
    if not style_imgs:
        return content_img, [], [], []
    if (
        not isinstance(blend, (list, tuple))
        or len(blend) != len(style_imgs)
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in blend)
        or not sum(blend) > 0
    ):
        _fail("style_weights", f"must be {len(style_imgs)} non-negative numbers with a positive sum, got {blend!r}")
    return content_img, style_imgs, [float(w) / sum(blend) for w in blend], styles_in


def stylize(content: Any, style: Any, **options: Any) -> Result:
    """Neural style transfer by optimising the pixels (Gatys et al.), with the presets' variants.

    Inputs:
    - content: tensor (1, 3, H, W) / (3, H, W) in [0, 1], a path, or a bundled image name; or None
      for texture synthesis (no content term; the result has the first style image's aspect and
      needs ``init="noise"`` or a tensor).
    - style: the same, or a list of them (blended with ``style_weights``); or None for a content
      reconstruction (no style term), as in Gatys et al.'s Fig. 1.
    - options: see ``OPTION_NAMES``; ``preset`` ("gatys", "novak", "ssim") picks PRESETS[preset],
      DEFAULTS and PRESETS document every default and its source. ``init`` may also be a tensor.
    Returns: a :class:`Result`; its image has long side ``size`` (aspect of the content kept).
    Stops cleanly (interrupted=True) on KeyboardInterrupt or a callback returning False, and on a
    non-finite loss (stopped_reason says so); raises InsufficientMemoryError before running when
    the size clearly does not fit, TypeError/ValueError for bad options, ImageError for bad images.
    """
    opts = resolve_options(**options)
    device = default_device(opts["device"])
    precision = _kernels.resolve_precision(opts["precision"], device)
    content_rgb, styles, blend, styles_in = _load_inputs(content, style, opts, device)
    if content_rgb is None:  # texture synthesis: the style image only gives the output's aspect
        if opts["init"] == "content" or opts["preserve_color"] is not None:
            _fail("content", "is None (texture synthesis): use init='noise' (or a tensor) and preserve_color=None")
        opts["content_layers"] = []
        content_rgb = styles[0]
    if not styles:  # content reconstruction: no style term
        if opts["init"] == "style" or opts["preserve_color"] is not None:
            _fail("style", "is None (content reconstruction): use init='noise' or 'content' and preserve_color=None")
        opts["style_layers"], opts["chained"] = [], False
    layers = list(dict.fromkeys(opts["content_layers"] + opts["style_layers"]))
    deepest = max(layers, key=VGG19_LAYERS.index)
    sizes = _scale_sizes(tuple(content_rgb.shape[-2:]), opts, deepest)
    check_memory(sizes[-1], deepest, device, _kernels.DTYPES[precision])

    content_img = content_rgb
    if opts["preserve_color"] == "histogram":  # the style recoloured to the content's colours
        styles = [color.match_color_histogram(s, content_rgb) for s in styles]
    elif opts["preserve_color"] == "luminance":  # transfer on luminances; I, Q put back by present()
        pairs = [color.luminance_only_inputs(content_rgb, s) for s in styles]
        content_img, styles = pairs[0][0], [p[1] for p in pairs]

    def present(img: torch.Tensor) -> torch.Tensor:
        """The working image clamped to [0, 1], in output colours (luminance mode: content's I, Q)."""
        img = img.clamp(0, 1)
        if opts["preserve_color"] != "luminance":
            return img
        return color.recombine_luminance(img, resize(content_rgb, tuple(img.shape[-2:])))

    vgg = feature_extractor(layers, opts["weights"], opts["pooling"], device, opts["normalized_vgg"], precision)
    scaler = _kernels.LossScaler(enabled=precision == "fp16")
    label = vgg.weights_name if vgg.weights_name in ("imagenet", "random") else Path(vgg.weights_name).name
    label += " normalized" if opts["normalized_vgg"] else ""
    style_sizes = [
        [target_size(*s.shape[-2:], max(1, round(opts["style_scale"] * max(hw)))) for s in styles] for hw in sizes
    ]
    history: dict[str, list] = {"total": [], "content": [], "style": [], "tv": [], "scale": []}
    step_times: list[float] = []
    total_steps = sum(opts["steps"])
    x = _initial_image(opts, content_img, styles, sizes[0], device)
    run = {"image": x, "best_image": x, "best_loss": math.inf, "best_step": -1}
    run.update(interrupted=False, stopped_reason=None)
    # Freed CPU memory is reused instead of faulted in afresh each step (big images on CPU: ~1.6x).
    bar = tqdm(total=total_steps, desc=f"stylize [{label} VGG, {precision}]", disable=not opts["progress"])
    with keep_freed_memory(), bar:
        try:
            for i, hw in enumerate(sizes):
                content_s = resize(content_img, hw)
                styles_s = [resize(s, sz) for s, sz in zip(styles, style_sizes[i])]
                targets = _targets(vgg, content_s, styles_s, blend, opts)
                if i > 0:  # coarse to fine: start from the upsampled previous result
                    x = F.interpolate(run["image"], size=hw, mode="bilinear", align_corners=False).clamp(0, 1)

                def loss_fn(img: torch.Tensor, t: Targets = targets) -> dict[str, torch.Tensor]:
                    return _loss_terms(img, vgg, t, opts)

                first = sum(opts["steps"][:i])
                run = _optimize_scale(
                    x, loss_fn, present, opts, i, first, total_steps, history, step_times, bar, scaler
                )
                if run["stopped_reason"] is not None:
                    break
        except KeyboardInterrupt:  # while a scale's targets were computed: keep the last result
            run.update(interrupted=True, stopped_reason="interrupted (KeyboardInterrupt)")

    def finish(img: torch.Tensor) -> torch.Tensor:
        if tuple(img.shape[-2:]) != sizes[-1]:  # stopped before the last scale
            img = F.interpolate(img, size=sizes[-1], mode="bilinear", align_corners=False)
        return present(img).detach().cpu()

    settings = {k: v for k, v in opts.items() if k not in ("callback", "init", "device", "weights", "scale_fractions")}
    settings.update(
        content=describe(content),
        style=None if style is None else [describe(s) for s in styles_in],
        style_weights=blend,
        init=describe(opts["init"]) if isinstance(opts["init"], torch.Tensor) else opts["init"],
        callback=getattr(opts["callback"], "__name__", "callback") if opts["callback"] is not None else None,
        device=str(device),
        weights=None if opts["weights"] is None else str(opts["weights"]),
        weights_name=vgg.weights_name,
        scales=opts["scale_fractions"],
        sizes=[list(hw) for hw in sizes],
        style_sizes=[[list(hw) for hw in per_scale] for per_scale in style_sizes],
        adam_betas=list(opts["adam_betas"]),
        precision=precision,
        precision_requested=opts["precision"],
    )
    return Result(
        image=finish(run["image"]),
        best_image=finish(run["best_image"]),
        best_loss=run["best_loss"],
        best_step=run["best_step"],
        history=history,
        step_times=step_times,
        settings=settings,
        weights_name=vgg.weights_name,
        interrupted=run["interrupted"],
        stopped_reason=run["stopped_reason"],
        precision=precision,
    )


def objective(image: torch.Tensor, content: Any, style: Any, **options: Any) -> dict[str, float]:
    """The loss terms of ``image`` under ``options``, as :func:`stylize`'s last scale defines them, evaluated
    with a float32 network: one yardstick for results of different runs (precision, optimiser, scales).

    Inputs:
    - image: (1, 3, H, W) in [0, 1], e.g. ``Result.image``; content, style and options as for
      :func:`stylize` (``size``, ``steps``, ``scales`` are ignored: the targets are made at H, W;
      ``preserve_color`` is not supported).
    Returns: {"total", "content", "style", "tv"} floats.
    """
    opts = resolve_options(**{**options, "precision": "fp32"})
    if opts["preserve_color"] is not None:
        _fail("preserve_color", "is not supported by objective(); compare runs without it")
    device = default_device(opts["device"])
    content_rgb, styles, blend, _ = _load_inputs(content, style, opts, device)
    hw = tuple(image.shape[-2:])
    layers = list(dict.fromkeys(opts["content_layers"] + opts["style_layers"]))
    vgg = feature_extractor(layers, opts["weights"], opts["pooling"], device, opts["normalized_vgg"])
    style_hw = [target_size(*s.shape[-2:], max(1, round(opts["style_scale"] * max(hw)))) for s in styles]
    targets = _targets(vgg, resize(content_rgb, hw), [resize(s, sz) for s, sz in zip(styles, style_hw)], blend, opts)
    with torch.no_grad():
        terms = _loss_terms(image.to(device), vgg, targets, opts)
    return {name: float(value) for name, value in terms.items()}


def _initial_image(
    opts: dict, content: torch.Tensor, styles: list[torch.Tensor], hw: tuple[int, int], device: torch.device
) -> torch.Tensor:
    """The starting image (1, 3, H, W) at the first scale: content, seeded noise, style or a tensor."""
    init = opts["init"]
    if isinstance(init, torch.Tensor):
        return resize(as_image(init).to(device), hw).clamp(0, 1)
    if init == "noise":
        generator = torch.Generator().manual_seed(opts["seed"])
        return torch.rand((1, 3, *hw), generator=generator).to(device)
    return resize(content if init == "content" else styles[0], hw).clamp(0, 1)
