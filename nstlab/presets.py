"""The presets and options of :func:`nstlab.optimize.stylize` — engine layer.

``PRESETS`` holds the three methods of the course ("gatys", "novak", "ssim") as plain option dicts;
every option can be overridden. ``DEFAULTS`` holds the options the presets share, with where each
default comes from. :func:`resolve_options` merges and checks them (a TypeError for an unknown name,
a ValueError naming the option and what it accepts for a bad value).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, NoReturn

import torch

from nstlab._kernels import PRECISIONS
from nstlab.settings import course_value
from nstlab.vgg import GATYS_STYLE_LAYERS, POOLINGS, RELU_LAYERS, VGG19_LAYERS
from nstlab.losses import LPIPS_LAYERS, WEIGHT_SCHEMES

# How the weights were chosen (content_weight stays 1; the losses are normalised, see above).
# Tuned with NSTLAB_WEIGHTS=random (no pretrained weights on the build machines) at 128 px,
# content "tower_bridge" + style "van_gogh_cafe_terrace_at_night", checked on "chelsea_cat" +
# "van_gogh_night_cafe" and at 192 px (the normalised losses came out the same at both sizes).
# - gatys, style_weight in 0.1 ... 1000: at >= 10 the bridge melts into blobs, at 0.1-0.3 it
#   keeps only a faint yellow tint; at 1 the towers, the walkway and the river lights are clear
#   while the towers glow in the cafe's yellow and the sky takes its starry blue-violet dots. The
#   cat stays a cat up to 3. tv_weight in 0 ... 100: below 1 the untrained network leaves
#   single-pixel colour speckle, above 10 L1-TV turns the image into flat blocks; 3 is between.
# - novak: its normalised style term starts ~30x smaller than gatys' (0.069 against 2.0 at 128 px: the
#   shift adds a large part to every Gram, target included, which the zero-Gram reference includes).
#   Tuned first with s = +1 (10 / 30 / 100: 30 kept the bridge's cables and the cat's fur with a clearly
#   stronger painted texture than gatys); re-tuned with s = -1 (2026-12-07, same images, 128 px, 300
#   steps): 1 and 3 leave the photo almost as it is (final style term 0.048 and 0.021), 10 paints it
#   (0.0024, content 0.057), 30 gives the balance +1 had at 30 (style 0.00036 against 0.00044, content
#   0.077 against 0.068; the cat: 0.00046 against 0.00047, 0.025 against 0.022) and keeps the cat a cat,
#   100 pushes the content term to 0.096. 30 is kept.
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
        # Novak & Nikulin: s = -1. The survey's prose ("shift the activations by a constant (selected to be 1)")
        # gives no sign; its code takes the Gram of feature_maps - shift with shift 1, which is s = -1 too
        # (MrinalJain17/neural-style-transfer, pynache/models/losses.py, read at commit 468d947).
        "activation_shift": -1.0,
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

DEFAULT_LR_BY_OPTIMIZER = {"lbfgs": 1.0, "adam": 0.02}
"""lr when neither the user nor the preset sets one: L-BFGS' step multiplier 1 (torch default);
Adam 0.02 on [0, 1] pixels (the TensorFlow style-transfer tutorial's value, about the blog's 5/255)."""

LBFGS_HISTORY = 100
"""Number of L-BFGS correction pairs (torch's default, and neural-style's)."""

QUICK_SIZE, QUICK_STEPS_SHARE = 128, 0.2
"""Quick mode's defaults (nstlab.settings): 128 px and a fifth of the preset's steps."""

DEFAULTS: dict[str, Any] = {
    "size": None,  # long side of the result; None -> 256, quick mode 128, smoke 64 (neural-style uses 512)
    "scales": None,  # None/1: one scale; k: k scales, each 2x smaller; or fractions ending in 1.0
    "steps": None,  # per scale (int or list); None -> the preset's (quick mode: a fifth of them; smoke: 10)
    "style_weights": None,  # blend weights of several styles; None -> equal (normalised to sum 1)
    "style_scale": 1.0,  # style long side = style_scale * output long side (neural-style: 1.0)
    "normalize_losses": True,  # see the module docstring
    # "l2": Gatys' squared feature error at content_layers (relative with normalize_losses); "lpips": Yuan &
    # Huang's replacement (nst_layers_lpips_perceptual.txt §4.2), the LPIPS-form distance with unit weights
    # (losses.perceptual_distance) over losses.LPIPS_LAYERS, which then replace content_layers. That distance
    # is a sum of per-layer cosine distances, unitless already, so normalize_losses leaves it as it is.
    "content_loss": "l2",
    "preserve_color": None,  # None | "luminance" | "histogram" (Gatys et al., 2016, colour paper)
    "lr": None,  # None -> the preset's lr for its optimizer, else DEFAULT_LR_BY_OPTIMIZER
    "adam_betas": (0.9, 0.999),  # torch.optim.Adam defaults
    "adam_eps": 1e-8,
    "weights": None,  # None/"auto" follow NSTLAB_WEIGHTS; "imagenet", "random" or a path
    "normalized_vgg": False,  # Gatys et al.'s normalized VGG19 of those weights (nstlab.vgg.normalize_features)
    "seed": 0,  # seeds the noise initialisation; runs are bit-for-bit reproducible on CPU
    "device": None,  # None -> nstlab.settings.default_device()
    # The network's precision: "auto" picks bf16 where the hardware runs it natively (a CPU with AVX512-BF16
    # or AMX, a CUDA GPU; fp16 on a GPU without bf16), fp32 elsewhere; "fp32", "bf16", "fp16" force one.
    # The pixels, the optimiser and the losses stay float32 (nstlab._kernels.resolve_precision).
    "precision": "auto",
    "callback": None,  # callable(StepInfo) -> None | bool; False stops the run
    "callback_every": 10,  # call the callback every k steps and on the last one
    "progress": True,  # tqdm bar (a widget in Jupyter)
}

OPTION_NAMES: tuple[str, ...] = tuple(sorted({"preset", *DEFAULTS, *PRESETS["gatys"]}))
INITS = ("content", "noise", "style")
OPTIMIZERS = ("lbfgs", "adam")
PRESERVE_COLOR = (None, "luminance", "histogram")
CONTENT_LOSSES = ("l2", "lpips")
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


def default_size_steps(preset: str = "gatys") -> tuple[int, int]:
    """The size (long side, px) and steps of a run that gives neither, in the course's mode (nstlab.settings):
    256 px and the preset's steps; quick: QUICK_SIZE and QUICK_STEPS_SHARE of them; smoke: SMOKE_SIZE, SMOKE_STEPS."""
    steps = PRESETS[preset]["steps"]
    return (course_value(real=256, quick=QUICK_SIZE, smoke=SMOKE_SIZE),
            course_value(real=steps, quick=max(1, round(steps * QUICK_STEPS_SHARE)), smoke=SMOKE_STEPS))


def resolve_options(preset: str = "gatys", **options: Any) -> dict[str, Any]:
    """Every option of :func:`stylize`: DEFAULTS, then PRESETS[preset], then ``options``.

    Raises TypeError for an unknown option name and ValueError (naming the option and the allowed
    values) for a bad value. ``size`` and ``steps`` default to the course's mode's (:func:`default_size_steps`).
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
    size, steps = default_size_steps(preset)
    if opts["size"] is None:
        opts["size"] = size
    if "steps" not in options or options["steps"] is None:
        opts["steps"] = steps

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
    if _choice("content_loss", opts["content_loss"], CONTENT_LOSSES) == "lpips":
        opts["content_layers"] = list(LPIPS_LAYERS)  # the LPIPS-form distance has its own layers
    _choice("optimizer", opts["optimizer"], OPTIMIZERS)
    _choice("pooling", opts["pooling"], POOLINGS)
    _choice("precision", opts["precision"], PRECISIONS)
    if not isinstance(opts["init"], torch.Tensor) and opts["init"] not in INITS:
        _fail("init", f"must be one of {INITS} or an image tensor, got {opts['init']!r}")
    if opts["lr"] is None:
        opts["lr"] = DEFAULT_LR_BY_OPTIMIZER[opts["optimizer"]]
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
