"""The optimisation engine: ``stylize(content, style, **options) -> Result``.

Gatys-style transfer optimises the pixels of an image x so that its VGG19 features match the
content image's (content loss) and its Gram matrices match the style image's (style loss):

    total = content_weight * content + style_weight * style + tv_weight * tv

``PRESETS`` holds the three methods of the course ("gatys", "novak", "ssim") as plain option
dicts; every option can be overridden. ``DEFAULTS`` holds the options the presets share.

Loss scaling (``normalize_losses=True``, the default): each term is divided by a constant computed
once per scale from its own target, so the weights are unitless and mean the same for ImageNet and
random weights and at any size:

- content: mean (F - P)^2 / mean P^2, averaged over the content layers (a relative squared error);
- style: each key's E_l is divided by E_l(0, A) = sum A^2 / (4 Ca Cb M^2), the loss of a zero Gram,
  then weighted by the layer weights w_l (sum 1);
- tv: mean |x[i, j+1] - x[i, j]| + ... (``tv_loss(x, "l1", reduction="mean")``).

With ``normalize_losses=False`` the paper's raw formulas are used: content 1/2 sum (F - P)^2 summed
over the layers, style sum_l w_l E_l (the weights then need the papers' orders of magnitude).

A style image of another size than the output gives Grams summed over a different number of
positions M; each target Gram is therefore rescaled by M_output / M_style, so the style images'
sizes (``style_scale``) change which scale of texture is copied, not the loss scale.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nstlab import color, losses
from nstlab.images import as_image, resize
from nstlab.settings import default_device, keep_freed_memory, smoke_or
from nstlab.vgg import RELU_LAYERS, VGG19_LAYERS, VGGFeatures

# ----------------------------------------------------------------------------- options

GATYS_STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]

# How the weights were chosen (content_weight stays 1; the losses are normalised, see above).
# Tuned with NSTLAB_WEIGHTS=random (no pretrained weights on the build machines) at 128 px,
# content "tower_bridge" + style "van_gogh_cafe_terrace_at_night", checked on "chelsea_cat" +
# "van_gogh_night_cafe" and at 192 px (the normalised losses came out the same at both sizes).
# - gatys, style_weight in 0.1 ... 1000: at >= 10 the bridge melts into blobs, at 0.1-0.3 it
#   keeps only a faint yellow tint; at 1 the towers, the walkway and the river lights are clear
#   while the towers glow in the cafe's yellow and the sky takes its starry blue-violet dots. The
#   cat stays a cat up to 3. tv_weight in 0 ... 100: below 1 the untrained network leaves
#   single-pixel colour speckle, above 10 L1-TV turns the image into flat blocks; 3 is between.
# - novak: its normalised style term starts ~35x smaller (the shift adds a large constant part to
#   every Gram, which the zero-Gram reference includes); 10 / 30 / 100 tried, 30 keeps the bridge's
#   cables and the cat's fur with a clearly stronger painted texture than gatys.
# - ssim: the SSIM factor makes the style term ~3x smaller than gatys', but the content layer
#   relu5_2 of an untrained network barely constrains the layout: 0.1 / 0.3 / 1 / 3 / 10 tried at
#   128 px, everything above 0.3 loses the bridge; at the default 256 px, 0.3 keeps the towers and
#   the walkway with the cafe's yellow and starry sky. With ImageNet weights relu5_2 holds content
#   far better, so a larger style_weight may be wanted there.
PRESETS: dict[str, dict[str, Any]] = {
    # Gatys, Ecker & Bethge, "Image Style Transfer Using CNNs" (CVPR 2016).
    "gatys": {
        "content_layers": ["relu4_2"],  # Gatys: conv4_2, a post-ReLU blob in Caffe (in-place ReLU)
        "style_layers": GATYS_STYLE_LAYERS,  # Gatys: conv1_1 ... conv5_1 (post-ReLU, as above)
        "layer_weighting": "uniform",  # Gatys: w_l = 1/5
        "activation_shift": 0.0,
        "chained": False,
        "ssim_weighting": False,
        "optimizer": "lbfgs",  # Gatys: L-BFGS
        "init": "content",  # Jain & Venkitachalam: content init "often led to improved results"; Gatys used noise
        "pooling": "max",  # Jain & Venkitachalam: max pooling looked better than Gatys' average pooling
        "content_weight": 1.0,
        "style_weight": 1.0,  # tuned (above); Gatys' alpha/beta ratios are for raw losses
        "tv_weight": 3.0,  # tuned (above); Gatys had no TV term
        "steps": 300,  # one L-BFGS evaluation per step (neural-style runs 1000)
    },
    # Novak & Nikulin, "Improving the Neural Algorithm of Artistic Style" (2016), as summarised
    # in Jain & Venkitachalam's survey "Neural Style Transfer" (NYU).
    "novak": {
        "content_layers": ["relu4_2"],  # as Gatys
        "style_layers": list(RELU_LAYERS),  # "all the 16 convolutional layers" (post-ReLU)
        "layer_weighting": "geometric",  # w_i = 2^(N - i): earlier layers heavier
        "activation_shift": 1.0,  # "shift the activations by a constant (selected to be 1)"
        "chained": True,  # Grams of adjacent layers (l, l+1)
        "ssim_weighting": False,
        "optimizer": "lbfgs",  # as Gatys
        "init": "content",  # as the gatys preset
        "pooling": "max",
        "content_weight": 1.0,
        "style_weight": 30.0,  # tuned (above)
        "tv_weight": 3.0,  # tuned (above)
        "steps": 300,
    },
    # Prabhu & McAteer, "Structural Similarity in Neural Style Transfer" (blog post on their ACAI 2020 talk).
    "ssim": {
        "content_layers": ["relu5_2"],  # blog: block5_conv2 (Keras conv layers include the ReLU)
        "style_layers": GATYS_STYLE_LAYERS,  # blog: block1_conv1 ... block5_conv1
        "layer_weighting": "uniform",
        "activation_shift": 0.0,
        "chained": False,
        "ssim_weighting": True,  # E_l * (1 - SSIM(G~, A~)) / 2, window 11, sigma 1.5, max val 1
        "optimizer": "adam",  # blog: Adam
        "lr": 5 / 255,  # blog: learning rate 5 on 0..255 pixels -> 5/255 on [0, 1] pixels
        "adam_betas": (0.99, 0.999),  # blog: beta1 = 0.99; beta2 keeps Adam's default
        # The blog's "beta2 = 1e-1" is the TF tutorial's epsilon=1e-1 (AdamOptimizer(5, beta1=0.99,
        # epsilon=1e-1)): a beta2 of 0.1 would make Adam forget its second moment within two steps.
        # That eps is not copied either. Adam's step is lr * m / (sqrt(v) + eps), so eps only
        # matters relative to the gradients, whose size depends on the loss scaling: 0.1 suited the
        # tutorial's raw losses on 0..255 pixels. With the normalised losses the pixel gradients
        # are ~1e-3 (128 px, content init) and shrink with the size, so eps = 0.1 would divide
        # every step by ~70: after 300 steps the style term was still 0.50, against 0.068 with
        # PyTorch's eps = 1e-8, which is kept.
        "adam_eps": 1e-8,
        "init": "content",
        "pooling": "max",
        "content_weight": 1.0,  # blog: alpha = 1e3, beta = 1e-2 for its raw TF losses; not transferable
        "style_weight": 0.3,  # tuned (above)
        "tv_weight": 3.0,  # tuned (above); the blog has no TV term
        "steps": 1000,  # blog: N_iter = 10^3
    },
}

DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
"""lr when neither the user nor the preset sets one: L-BFGS' step multiplier 1 (torch default);
Adam 0.02 on [0, 1] pixels (the TensorFlow style-transfer tutorial's value, about the blog's 5/255)."""

LBFGS_HISTORY = 100
"""Number of L-BFGS correction pairs (torch's default, and neural-style's)."""

DEFAULTS: dict[str, Any] = {
    "size": None,  # long side of the result; None -> smoke_or(256, 64) (neural-style uses 512)
    "scales": None,  # None/1: one scale; k: k scales, each 2x smaller; or fractions ending in 1.0
    "steps": None,  # per scale (int or list); None -> the preset's, smoke_or(preset steps, 10)
    "style_weights": None,  # blend weights of several styles; None -> equal (normalised to sum 1)
    "style_scale": 1.0,  # style long side = style_scale * output long side (neural-style: 1.0)
    "normalize_losses": True,  # see the module docstring
    "preserve_color": None,  # None | "luminance" | "histogram" (Gatys et al., 2016, colour paper)
    "lr": None,  # None -> the preset's lr for its optimizer, else DEFAULT_LR
    "adam_betas": (0.9, 0.999),  # torch.optim.Adam defaults
    "adam_eps": 1e-8,
    "weights": None,  # None/"auto" follow NSTLAB_WEIGHTS; "imagenet", "random" or a path
    "normalized_vgg": False,  # Gatys et al.'s normalized VGG19 of those weights (nstlab.vgg.normalize_features)
    "seed": 0,  # seeds the noise initialisation; runs are bit-for-bit reproducible on CPU
    "device": None,  # None -> nstlab.settings.default_device()
    "callback": None,  # callable(StepInfo) -> None | bool; False stops the run
    "callback_every": 10,  # call the callback every k steps and on the last one
    "progress": True,  # tqdm bar (a widget in Jupyter)
}

OPTION_NAMES: tuple[str, ...] = tuple(sorted({"preset", *DEFAULTS, *PRESETS["gatys"]}))
INITS = ("content", "noise", "style")
OPTIMIZERS = ("lbfgs", "adam")
PRESERVE_COLOR = (None, "luminance", "histogram")
POOLINGS = ("max", "avg")
WEIGHT_SCHEMES = ("uniform", "geometric")
SMOKE_SIZE, SMOKE_STEPS = 64, 10


def _fail(name: str, message: str) -> NoReturn:
    raise ValueError(f"stylize: {name} {message}")


def _number(name: str, value: Any, low: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(name, f"must be a finite number, got {value!r}")
    if positive and not value > 0:
        _fail(name, f"must be > 0, got {value!r}")
    if low is not None and value < low:
        _fail(name, f"must be >= {low}, got {value!r}")
    return float(value)


def _integer(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(name, f"must be an int >= {low}, got {value!r}")
    return int(value)


def _choice(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    if not any(value == a and type(value) is type(a) for a in allowed):
        _fail(name, f"must be one of {tuple(allowed)}, got {value!r}")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(name, f"must be True or False, got {value!r}")
    return value


def _layers(name: str, value: Any) -> list[str]:
    layers = [value] if isinstance(value, str) else value
    if not isinstance(layers, (list, tuple)) or not layers or not all(isinstance(n, str) for n in layers):
        _fail(name, f"must be a non-empty list of VGG19 layer names, got {value!r}")
    unknown = [n for n in layers if n not in VGG19_LAYERS]
    if unknown:
        _fail(name, f"has unknown layer(s) {unknown}; valid names: {', '.join(VGG19_LAYERS)}")
    if len(set(layers)) != len(layers):
        _fail(name, f"has duplicates: {list(layers)}")
    return list(layers)


def resolve_options(preset: str = "gatys", **options: Any) -> dict[str, Any]:
    """Every option of :func:`stylize`: DEFAULTS, then PRESETS[preset], then ``options``.

    Raises TypeError for an unknown option name and ValueError (naming the option and the allowed
    values) for a bad value. ``size`` and ``steps`` defaults go through ``smoke_or``.
    Returns: a dict of every option, with ``steps`` as a list per scale, ``lr`` resolved for the
    optimizer, and ``scale_fractions`` (see :func:`scale_fractions`) added.
    """
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(f"stylize: unknown option(s) {unknown}; valid options: {', '.join(OPTION_NAMES)}")
    if not isinstance(preset, str) or preset not in PRESETS:
        _fail("preset", f"must be one of {tuple(PRESETS)}, got {preset!r}")
    opts = {**DEFAULTS, **PRESETS[preset], "preset": preset}
    if options.get("lr") is None and options.get("optimizer", opts["optimizer"]) != opts["optimizer"]:
        opts["lr"] = None  # the preset's lr belongs to the preset's optimizer
    opts.update(options)
    if opts["size"] is None:
        opts["size"] = smoke_or(256, SMOKE_SIZE)
    if "steps" not in options or options["steps"] is None:
        opts["steps"] = smoke_or(PRESETS[preset]["steps"], SMOKE_STEPS)

    opts["size"] = _integer("size", opts["size"], 16)
    opts["content_layers"] = _layers("content_layers", opts["content_layers"])
    opts["style_layers"] = _layers("style_layers", opts["style_layers"])
    for name in ("content_weight", "style_weight", "tv_weight"):
        opts[name] = _number(name, opts[name], low=0.0)
    opts["style_scale"] = _number("style_scale", opts["style_scale"], positive=True)
    opts["activation_shift"] = _number("activation_shift", opts["activation_shift"])
    for name in ("chained", "ssim_weighting", "normalize_losses", "normalized_vgg", "progress"):
        _flag(name, opts[name])
    if opts["chained"] and len(opts["style_layers"]) < 2:
        _fail("style_layers", f"needs at least 2 layers when chained=True, got {opts['style_layers']}")
    _choice("layer_weighting", opts["layer_weighting"], WEIGHT_SCHEMES)
    _choice("preserve_color", opts["preserve_color"], PRESERVE_COLOR)
    _choice("optimizer", opts["optimizer"], OPTIMIZERS)
    _choice("pooling", opts["pooling"], POOLINGS)
    if not isinstance(opts["init"], torch.Tensor) and opts["init"] not in INITS:
        _fail("init", f"must be one of {INITS} or an image tensor, got {opts['init']!r}")
    if opts["lr"] is None:
        opts["lr"] = DEFAULT_LR[opts["optimizer"]]
    opts["lr"] = _number("lr", opts["lr"], positive=True)
    betas = opts["adam_betas"]
    if not isinstance(betas, (list, tuple)) or len(betas) != 2 or not all(
        isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas
    ):
        _fail("adam_betas", f"must be two numbers in [0, 1), got {betas!r}")
    opts["adam_betas"] = (float(betas[0]), float(betas[1]))
    opts["adam_eps"] = _number("adam_eps", opts["adam_eps"], positive=True)
    opts["seed"] = _integer("seed", opts["seed"], 0)
    opts["callback_every"] = _integer("callback_every", opts["callback_every"], 1)
    if opts["callback"] is not None and not callable(opts["callback"]):
        _fail("callback", f"must be callable or None, got {type(opts['callback']).__name__}")
    if opts["weights"] is not None and not isinstance(opts["weights"], (str, os.PathLike)):
        _fail("weights", f"must be 'imagenet', 'random', 'auto' or a path, got {opts['weights']!r}")
    opts["scale_fractions"] = scale_fractions(opts["scales"])
    opts["steps"] = _steps_per_scale(opts["steps"], len(opts["scale_fractions"]))
    return opts


def scale_fractions(scales: int | Sequence[float] | None) -> list[float]:
    """``scales`` as fractions of the final size: None/1 -> [1.0]; 3 -> [0.25, 0.5, 1.0];
    a list such as [0.25, 0.5, 1.0] is checked (increasing, in (0, 1], ending in 1.0)."""
    if scales is None:
        return [1.0]
    if isinstance(scales, int) and not isinstance(scales, bool):
        _integer("scales", scales, 1)
        return [0.5 ** (scales - 1 - i) for i in range(scales)]
    if (
        not isinstance(scales, (list, tuple))
        or not scales
        or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1 for f in scales)
        or any(b <= a for a, b in zip(scales[:-1], scales[1:]))
        or scales[-1] != 1
    ):
        _fail("scales", f"must be None, an int >= 1, or increasing fractions in (0, 1] ending in 1.0, got {scales!r}")
    return [float(f) for f in scales]


def _steps_per_scale(steps: int | Sequence[int], n_scales: int) -> list[int]:
    if isinstance(steps, (list, tuple)):
        if len(steps) != n_scales:
            _fail("steps", f"has {len(steps)} entries but there are {n_scales} scales")
        return [_integer("steps", s, 1) for s in steps]
    return [_integer("steps", steps, 1)] * n_scales


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


def estimate_memory(size_hw: tuple[int, int], deepest_layer: str) -> int:
    """Estimated peak bytes of one forward + backward pass of VGG19 (float32, batch 1).

    Inputs:
    - size_hw: (H, W) of the image optimised; deepest_layer: the last VGG19 layer evaluated.
    Returns: MEMORY_FACTOR * sum over the modules up to ``deepest_layer`` of C * H * W * 4 bytes.
    """
    if deepest_layer not in VGG19_LAYERS:
        raise ValueError(f"estimate_memory: unknown layer {deepest_layer!r}")
    h, w = int(size_hw[0]), int(size_hw[1])
    elements = 3 * h * w  # the image itself
    for name in VGG19_LAYERS[: VGG19_LAYERS.index(deepest_layer) + 1]:
        if name.startswith("pool"):
            h, w = h // 2, w // 2
        elements += _channels(name) * h * w
    return int(MEMORY_FACTOR * 4 * elements)


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


def check_memory(size_hw: tuple[int, int], deepest_layer: str, device: torch.device) -> None:
    """Raise InsufficientMemoryError if the estimate exceeds the free memory of ``device``."""
    need = estimate_memory(size_hw, deepest_layer)
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
    the run ended early (None when it completed).
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

    def to_dict(self) -> dict[str, Any]:
        """Everything but the images, JSON-serialisable."""
        return {
            "settings": self.settings,
            "weights_name": self.weights_name,
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
        """One line: steps, final and best loss, time, weights, and why it stopped if it did."""
        n = len(self.history["total"])
        last = f"{self.history['total'][-1]:.4g}" if n else "-"
        line = (
            f"{n} steps in {sum(self.step_times):.1f} s, loss {last} (best {self.best_loss:.4g} "
            f"at step {self.best_step}), {self.weights_name} VGG19"
        )
        return line + (f"; {self.stopped_reason}" if self.stopped_reason else "")


# ----------------------------------------------------------------------------- targets and losses


def feature_extractor(
    layers: list[str],
    weights: str | os.PathLike | None = None,
    pooling: str = "max",
    device: Any = None,
    normalized: bool = False,
) -> VGGFeatures:
    """The engine's VGG19: run only up to the deepest of ``layers``; channels_last on an x86-64 CPU,
    where it made a step faster (benchmarks/README.md), the default layout elsewhere (not measured)."""
    device = default_device(device)
    x86_64 = platform.machine().lower() in ("x86_64", "amd64")
    memory_format = torch.channels_last if device.type == "cpu" and x86_64 else torch.contiguous_format
    return VGGFeatures(
        layers, weights=weights, pooling=pooling, normalized=normalized, device=device, memory_format=memory_format
    )


def _positions(feats: dict[str, torch.Tensor], key: losses.StyleKey) -> int:
    """M of a style key: H*W of its layer, or of the larger map of a chained pair."""
    names = (key,) if isinstance(key, str) else key
    return max(feats[n].shape[-2] * feats[n].shape[-1] for n in names)


@torch.no_grad()
def _targets(
    vgg: VGGFeatures, content: torch.Tensor, styles: list[torch.Tensor], blend: list[float], opts: dict
) -> tuple[dict, dict, dict]:
    """Content features P, blended style Grams A and the per-term factors, for one scale.

    Returns: (P {layer: (1, C, H, W)}, A {key: (1, Ca, Cb)}, factors {"content": {layer: c},
    "style": {key: w_l / scale_l}}) so that content = sum_l c_l * loss_l, style = sum w'_l E_l.
    """
    content_feats = vgg(content)
    keys = losses.style_keys(opts["style_layers"], opts["chained"]) if styles else []
    grams: dict = {}
    for image, weight in zip(styles, blend):
        feats = vgg(image)
        for key, gram in losses.style_grams(feats, keys, opts["activation_shift"]).items():
            rescaled = weight * gram * (_positions(content_feats, key) / _positions(feats, key))
            grams[key] = grams[key] + rescaled if key in grams else rescaled
    targets = {layer: content_feats[layer] for layer in opts["content_layers"]}
    layer_w = losses.layer_weights(keys, opts["layer_weighting"]) if keys else {}
    if not opts["normalize_losses"]:
        return targets, grams, {"content": {layer: 1.0 for layer in targets}, "style": layer_w}
    n = len(targets)
    content_f = {layer: 1.0 / (n * max(float(p.pow(2).mean()), 1e-30)) for layer, p in targets.items()}
    style_f = {}
    for key, a in grams.items():
        zero_loss = float(losses.style_layer_loss(torch.zeros_like(a), a, _positions(content_feats, key)))
        style_f[key] = layer_w[key] / max(zero_loss, 1e-30)
    return targets, grams, {"content": content_f, "style": style_f}


def _loss_terms(
    x: torch.Tensor, vgg: VGGFeatures, targets: dict, grams: dict, factors: dict, opts: dict
) -> dict[str, torch.Tensor]:
    """The loss terms of image x (1, 3, H, W): {"total", "content", "style", "tv"} scalars."""
    feats = vgg(x)
    reduction = "mean" if opts["normalize_losses"] else "sum_half"
    zero = x.new_zeros(())  # the value of a term without layers (texture synthesis, reconstruction)
    content = sum(
        (c * losses.content_loss(feats[layer], targets[layer], reduction) for layer, c in factors["content"].items()),
        zero,
    )
    style_fn = losses.ssim_weighted_style_loss if opts["ssim_weighting"] else losses.style_loss
    style = style_fn(feats, grams, factors["style"], shift=opts["activation_shift"]) if grams else zero
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
) -> dict[str, Any]:
    """Run ``opts["steps"][scale]`` steps from x0, appending to history and step_times.

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
        optimizer.zero_grad(set_to_none=True)
        evaluated["image"] = x.detach().clone()
        terms = loss_fn(x)
        terms["total"].backward()
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
                out["stopped_reason"] = (
                    f"non-finite values at step {step}: {problem}; kept the last finite image. The "
                    f"learning rate is probably too high: try lr={opts['lr'] / 10:g} (now {opts['lr']:g})"
                )
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


def _describe(image: Any) -> str | None:
    if image is None:
        return None
    if isinstance(image, torch.Tensor):
        return f"tensor{tuple(image.shape)}"
    return str(image) if isinstance(image, (str, os.PathLike)) else type(image).__name__


def _scale_sizes(content_hw: tuple[int, int], opts: dict, deepest: str) -> list[tuple[int, int]]:
    """(H, W) of every scale; each must survive the pools before the deepest layer."""
    pools = sum(1 for n in VGG19_LAYERS[: VGG19_LAYERS.index(deepest)] if n.startswith("pool"))
    sizes = []
    for f in opts["scale_fractions"]:
        hw = resize_hw(content_hw, max(1, round(opts["size"] * f)))
        if min(hw) < 2**pools:
            _fail(
                "size",
                f"{opts['size']} with scales={opts['scales']!r} gives a {hw[0]}x{hw[1]} scale, too small "
                f"for layer {deepest} (needs >= {2**pools} px per side); use a larger size or fewer scales",
            )
        sizes.append(hw)
    return sizes


def resize_hw(hw: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(H, W) with the long side ``long_side`` and the aspect of ``hw``."""
    s = long_side / max(hw)
    return max(1, round(hw[0] * s)), max(1, round(hw[1] * s))


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
    check_memory(sizes[-1], deepest, device)

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

    vgg = feature_extractor(layers, opts["weights"], opts["pooling"], device, normalized=opts["normalized_vgg"])
    label = vgg.weights_name if vgg.weights_name in ("imagenet", "random") else Path(vgg.weights_name).name
    label += " normalized" if opts["normalized_vgg"] else ""
    style_sizes = [
        [resize_hw(tuple(s.shape[-2:]), max(1, round(opts["style_scale"] * max(hw)))) for s in styles] for hw in sizes
    ]
    history: dict[str, list] = {"total": [], "content": [], "style": [], "tv": [], "scale": []}
    step_times: list[float] = []
    total_steps = sum(opts["steps"])
    x = _initial_image(opts, content_img, styles, sizes[0], device)
    run = {"image": x, "best_image": x, "best_loss": math.inf, "best_step": -1}
    run.update(interrupted=False, stopped_reason=None)
    # Freed CPU memory is reused instead of faulted in afresh each step (big images on CPU: ~1.6x).
    bar = tqdm(total=total_steps, desc=f"stylize [{label} VGG]", disable=not opts["progress"])
    with keep_freed_memory(), bar:
        try:
            for i, hw in enumerate(sizes):
                content_s = resize(content_img, hw)
                styles_s = [resize(s, sz) for s, sz in zip(styles, style_sizes[i])]
                targets, grams, factors = _targets(vgg, content_s, styles_s, blend, opts)
                if i > 0:  # coarse to fine: start from the upsampled previous result
                    x = F.interpolate(run["image"], size=hw, mode="bilinear", align_corners=False).clamp(0, 1)

                def loss_fn(img: torch.Tensor, t=targets, g=grams, f=factors) -> dict[str, torch.Tensor]:
                    return _loss_terms(img, vgg, t, g, f, opts)

                first = sum(opts["steps"][:i])
                run = _optimize_scale(x, loss_fn, present, opts, i, first, total_steps, history, step_times, bar)
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
        content=_describe(content),
        style=None if style is None else [_describe(s) for s in styles_in],
        style_weights=blend,
        init=_describe(opts["init"]) if isinstance(opts["init"], torch.Tensor) else opts["init"],
        callback=getattr(opts["callback"], "__name__", "callback") if opts["callback"] is not None else None,
        device=str(device),
        weights=None if opts["weights"] is None else str(opts["weights"]),
        weights_name=vgg.weights_name,
        scales=opts["scale_fractions"],
        sizes=[list(hw) for hw in sizes],
        style_sizes=[[list(hw) for hw in per_scale] for per_scale in style_sizes],
        adam_betas=list(opts["adam_betas"]),
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
    )


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
