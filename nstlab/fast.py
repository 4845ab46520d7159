"""Fast style transfer (Johnson, Alahi & Fei-Fei, 2016) — engine layer: train a feed-forward network
once per style with the perceptual loss, then stylising a new image is a single forward pass.

- :class:`TransformerNet`: Johnson's image transformation network, with instance normalisation
  (Ulyanov et al., 2016) and nearest-neighbour upsampling + convolution instead of transposed
  convolutions (no checkerboard artefacts).
- :class:`PerceptualLoss`: content + style + total variation of a batch, with the normalised losses
  of :mod:`nstlab.losses` (as the engine's ``normalize_losses=True``), so the weights are unitless.
- :func:`train_fast`: the training loop over random augmented crops of a folder of content images
  (:mod:`nstlab.training_data`, whose names this module re-exports: ``fast.CropSampler``), with atomic,
  resumable checkpoints; :func:`save_model`, :func:`load_model`, :func:`stylize_fast`.

Imports the textbook layer and the kernels; its figures are in the experiments of notebook 11 and its
commands (``nstlab train-fast``, ``nstlab stylize-fast``) in :mod:`nstlab.cli`.
"""

from __future__ import annotations

import hashlib
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from nstlab import _kernels, losses
from nstlab.images import as_image, describe
from nstlab.settings import course_value, default_device, keep_freed_memory
from nstlab.training_data import HELD_OUT, CropSampler, content_paths
from nstlab.vgg import VGGFeatures

JOHNSON_CONTENT_LAYERS = ["relu2_2"]
"""Johnson et al.'s content layer (VGG16 relu2_2; the same name in VGG19)."""

JOHNSON_STYLE_LAYERS = ["relu1_2", "relu2_2", "relu3_4", "relu4_4"]
"""Johnson et al.'s style layers relu1_2, relu2_2, relu3_3, relu4_3 of VGG16: the last ReLU of
blocks 1-4. In VGG19 the last ReLUs of blocks 3 and 4 are relu3_4 and relu4_4."""

# Weights of the normalised terms, tuned with NSTLAB_WEIGHTS=random at 64-128 px, 150-300 steps, batch 2,
# styles van_gogh_night_cafe and van_gogh_cafe_terrace_at_night: unlike the engine, which starts from the
# content image, the network starts from a grey picture and must first learn to redraw the photo, so the
# style weight stays low: at 3 and above the held-out photos were lost under the style's blobs; at 0.3-1
# they stayed recognisable with the painting's palette and texture (1, the same as the gatys preset's).
DEFAULT_CONTENT_WEIGHT = 1.0
DEFAULT_STYLE_WEIGHT = 1.0
DEFAULT_TV_WEIGHT = 1.0
DEFAULT_LR = 1e-3  # Johnson et al.: Adam, learning rate 1e-3

CHECKPOINT_FORMAT = "nstlab.fast.v1"
RESUME_KEYS = (
    "style_id", "content_dir", "size", "style_size", "batch_size", "lr", "content_weight", "style_weight",
    "tv_weight", "content_layers", "style_layers", "channels", "n_residual", "seed", "weights_name",
)
"""Settings that must match for a checkpoint to be resumed (``steps`` may change: train longer)."""


# ----------------------------------------------------------------------------- the network


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Reflection padding (no dark borders) + convolution; keeps H, W when stride is 1."""
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_channels, out_channels, kernel, stride))


def _conv_norm_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        _conv(in_channels, out_channels, kernel, stride), nn.InstanceNorm2d(out_channels, affine=True), nn.ReLU()
    )


class ResidualBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))): two 3x3 convolutions that learn a correction to x."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_norm_relu(channels, channels, 3),
            _conv(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """Nearest-neighbour upsampling to a given (H, W), then 3x3 conv + IN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = _conv_norm_relu(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=tuple(size), mode="nearest"))


class TransformerNet(nn.Module):
    """Johnson et al.'s image transformation network.

    9x9 conv (c) -> two 3x3 stride-2 convs (2c, 4c) -> ``n_residual`` residual blocks -> two
    upsampling blocks (2c, c) -> 9x9 conv to 3 channels -> sigmoid. Instance norm (affine) + ReLU
    follow every conv but the last. The upsampling returns exactly to the encoder's sizes, so any
    H, W >= 8 (odd too) comes back unchanged.

    Inputs to forward: images (N, 3, H, W) in [0, 1].
    Returns: stylised images (N, 3, H, W) in (0, 1).
    Attributes: ``channels``, ``n_residual``; ``meta`` (dict of str/float/int) describes how the
    network was trained (style, steps, ``weights_name`` of the VGG19 used) and is saved with it.
    """

    MIN_SIDE = 8

    def __init__(self, channels: int = 32, n_residual: int = 5) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("n_residual", n_residual)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TransformerNet: {name} must be an int >= 1, got {value!r}")
        c = channels
        self.channels, self.n_residual = channels, n_residual
        self.meta: dict[str, Any] = {}
        self.stem = _conv_norm_relu(3, c, 9)
        self.down1 = _conv_norm_relu(c, 2 * c, 3, stride=2)
        self.down2 = _conv_norm_relu(2 * c, 4 * c, 3, stride=2)
        self.residuals = nn.Sequential(*[ResidualBlock(4 * c) for _ in range(n_residual)])
        self.up1 = UpsampleConv(4 * c, 2 * c)
        self.up2 = UpsampleConv(2 * c, c)
        self.head = _conv(c, 3, 9)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3 or min(images.shape[-2:]) < self.MIN_SIDE:
            raise ValueError(
                f"TransformerNet expects images (N, 3, H, W) with H, W >= {self.MIN_SIDE}, got {tuple(images.shape)}"
            )
        x0 = self.stem(images)  # (N, c, H, W)
        x1 = self.down1(x0)  # (N, 2c, ceil(H/2), ceil(W/2))
        x = self.residuals(self.down2(x1))  # (N, 4c, ~H/4, ~W/4)
        x = self.up1(x, x1.shape[-2:])
        x = self.up2(x, x0.shape[-2:])
        return torch.sigmoid(self.head(x))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------- the loss


class PerceptualLoss(nn.Module):
    """Johnson et al.'s perceptual loss of a batch of network outputs, with the engine's scaling.

    total = content_weight * content + style_weight * style + tv_weight * tv, each term averaged
    over the batch:

    - content: the mean over the content layers of :func:`nstlab.losses.normalized_content_loss`,
      P_l from the input batch;
    - style: :func:`nstlab.losses.normalized_style_loss` with uniform w_l; the style image's Grams are
      computed once (its long side ``style_size``) and made into :class:`nstlab.losses.StyleTarget` for
      the output's size;
    - tv: ``tv_loss(output, "l1", reduction="mean")``.

    Inputs to forward: output (N, 3, H, W) of the network, content (N, 3, H, W) its input.
    Returns: {"total", "content", "style", "tv"} scalars (terms unweighted, as in the engine).
    """

    def __init__(
        self,
        style: torch.Tensor | str | os.PathLike,
        style_size: int,
        content_layers: Sequence[str] = JOHNSON_CONTENT_LAYERS,
        style_layers: Sequence[str] = JOHNSON_STYLE_LAYERS,
        content_weight: float = DEFAULT_CONTENT_WEIGHT,
        style_weight: float = DEFAULT_STYLE_WEIGHT,
        tv_weight: float = DEFAULT_TV_WEIGHT,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        weights_of_terms = {"content_weight": content_weight, "style_weight": style_weight, "tv_weight": tv_weight}
        for name, value in weights_of_terms.items():
            _check_number("PerceptualLoss", name, value, low=0.0)
        self.content_layers, self.style_layers = list(content_layers), list(style_layers)
        layers = list(dict.fromkeys(self.content_layers + self.style_layers))
        self.vgg = VGGFeatures(layers, weights=weights, device=device, dtype=_kernels.DTYPES[precision])
        self.weights_name = self.vgg.weights_name
        self.content_weight, self.style_weight = float(content_weight), float(style_weight)
        self.tv_weight = float(tv_weight)
        keys = losses.style_keys(self.style_layers, chained=False)
        self.layer_weights = losses.layer_weights(keys, "uniform")
        style_image = as_image(style, style_size).to(self.vgg.device)
        if style_image.shape[0] != 1:
            raise ValueError(f"PerceptualLoss: style must be one image (1, 3, H, W), got {tuple(style_image.shape)}")
        with torch.no_grad():
            feats = self.vgg(style_image)
            self.mean_grams = {key: losses.gram_matrix(feats[key].float(), "hw") for key in keys}  # {layer: (1, C, C)}

    def forward(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        if output.shape != content.shape:
            raise ValueError(
                f"PerceptualLoss: output has shape {tuple(output.shape)} but content has shape {tuple(content.shape)}"
            )
        n = output.shape[0]
        output = output.float()  # the losses are float32 whatever precision the networks run in
        with torch.no_grad():
            targets = self.vgg(content)
        feats = self.vgg(output)
        content_term = sum(
            losses.normalized_content_loss(feats[layer].float(), targets[layer].float())
            for layer in self.content_layers
        ) / (len(self.content_layers) * n)
        style_targets = {
            key: losses.style_target(g, losses.n_positions(feats, key)) for key, g in self.mean_grams.items()
        }
        grams = _kernels.style_grams(feats, style_targets)
        style_term = losses.normalized_style_loss(grams, style_targets, self.layer_weights) / n
        tv_term = losses.tv_loss(output, "l1", reduction="mean") / n
        total = self.content_weight * content_term + self.style_weight * style_term + self.tv_weight * tv_term
        return {"total": total, "content": content_term, "style": style_term, "tv": tv_term}


# ----------------------------------------------------------------------------- checkpoints


def _atomic_save(obj: dict, path: Path) -> None:
    """torch.save to ``path`` through a temporary file and os.replace: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _model_record(model: TransformerNet) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "architecture": {"channels": model.channels, "n_residual": model.n_residual},
        "meta": dict(model.meta),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def save_model(model: TransformerNet, path: str | os.PathLike) -> Path:
    """Save a network (weights, architecture, ``meta``) atomically; :func:`load_model` reads it."""
    path = Path(path)
    _atomic_save(_model_record(model), path)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The dict stored in a model or checkpoint file, loaded with ``weights_only=True``.

    Raises FileNotFoundError for a missing file and ValueError for any file that is not an
    nstlab fast-style model (the message says what was found).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip, pickle or torch errors all mean "not one of our files"
        raise ValueError(
            f"{path}: not an nstlab fast-style model (torch.load failed: {type(err).__name__}: {err})"
        ) from None
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        if isinstance(record, dict):
            found = f"a dict with keys {sorted(map(str, record))[:6]}"
        else:
            found = type(record).__name__
        raise ValueError(
            f"{path}: not an nstlab fast-style model (expected format {CHECKPOINT_FORMAT!r}, found {found}); "
            "train one with nstlab.fast.train_fast or 'nstlab train-fast'"
        )
    return record


def _model_from_record(record: dict[str, Any], source: str) -> TransformerNet:
    try:
        model = TransformerNet(**record["architecture"])
        model.load_state_dict(record["model"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise ValueError(f"{source}: broken nstlab fast-style model ({type(err).__name__}: {err})") from None
    model.meta = dict(record.get("meta", {}))
    return model


def load_model(path: str | os.PathLike, device: str | torch.device | None = None) -> TransformerNet:
    """A network saved by :func:`save_model` or a :func:`train_fast` checkpoint, in eval mode.

    Raises FileNotFoundError / ValueError (see :func:`read_checkpoint`).
    """
    model = _model_from_record(read_checkpoint(path), str(path))
    return model.to(default_device(device)).eval()


# ----------------------------------------------------------------------------- training


@dataclass
class FastStepInfo:
    """What the training callback receives after every step."""

    step: int  # number of steps done so far (1-based)
    total_steps: int
    losses: dict[str, float]  # "total", "content", "style", "tv" of this step's batch
    model: TransformerNet = field(repr=False)


@dataclass
class FastTrainingResult:
    """The outcome of :func:`train_fast`.

    history: {"total", "content", "style", "tv": one float per step, from step 1 (including the
    steps of a resumed checkpoint)}; step_times: seconds per step of this run only.
    steps: steps done in total; resumed_from: the checkpoint's step (0 for a fresh start).
    interrupted: stopped by KeyboardInterrupt or the callback; stopped_reason says why it ended early.
    """

    model: TransformerNet = field(repr=False)
    history: dict[str, list[float]] = field(repr=False)
    steps: int
    weights_name: str
    interrupted: bool = False
    stopped_reason: str | None = None
    resumed_from: int = 0
    step_times: list[float] = field(default_factory=list, repr=False)
    settings: dict[str, Any] = field(default_factory=dict, repr=False)
    precision: str = "fp32"  # what the networks computed in; weights and losses are float32

    def summary(self) -> str:
        """One line: steps, loss first -> last, time per step, weights, and why it stopped."""
        total = self.history["total"]
        loss = f"loss {total[0]:.4g} -> {total[-1]:.4g}" if total else "no steps"
        pace = f", {statistics.mean(self.step_times):.2f} s/step" if self.step_times else ""
        resumed = f" (resumed from {self.resumed_from})" if self.resumed_from else ""
        line = f"{self.steps} steps{resumed}, {loss}{pace}, {self.weights_name} VGG19 in {self.precision}"
        return line + (f"; {self.stopped_reason}" if self.stopped_reason else "")


def _check_number(fn: str, name: str, value: Any, low: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{fn}: {name} must be a finite number, got {value!r}")
    if (positive and not value > 0) or (low is not None and value < low):
        raise ValueError(f"{fn}: {name} must be {'> 0' if positive else f'>= {low}'}, got {value!r}")
    return float(value)


def _check_int(fn: str, name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{fn}: {name} must be an int >= {low}, got {value!r}")
    return value


def _style_id(style_image: torch.Tensor) -> str:
    """A short hash of the style image's pixels: resuming with another style is refused."""
    return hashlib.sha1(style_image.float().contiguous().numpy().tobytes()).hexdigest()[:16]


def _check_resumable(stored: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    different = [k for k in RESUME_KEYS if stored.get(k) != config[k]]
    if different:
        shown = "; ".join(
            f"style image: checkpoint {stored.get('style')!r}, now {config['style']!r}"
            if k == "style_id"
            else f"{k}: checkpoint {stored.get(k)!r}, now {config[k]!r}"
            for k in different
        )
        raise ValueError(
            f"{path}: cannot resume, the checkpoint was trained with other settings ({shown}); "
            "use another checkpoint file or resume=False (CLI: --restart) to start again"
        )


TRAIN_DEFAULTS = {
    "real": {"steps": 2000, "size": 256, "batch_size": 4, "checkpoint_every": 100},
    "quick": {"steps": 200, "size": 128, "batch_size": 2, "checkpoint_every": 50},
    "smoke": {"steps": 4, "size": 64, "batch_size": 2, "checkpoint_every": 2},
}
""":func:`train_fast`'s defaults in each of the course's modes (nstlab.settings)."""


def train_defaults() -> dict[str, int]:
    """:data:`TRAIN_DEFAULTS` of the course's mode now."""
    return course_value(**TRAIN_DEFAULTS)


def train_fast(
    style: torch.Tensor | str | os.PathLike,
    content_dir: str | os.PathLike | None = None,
    *,
    steps: int | None = None,
    size: int | None = None,
    batch_size: int | None = None,
    lr: float = DEFAULT_LR,
    content_weight: float = DEFAULT_CONTENT_WEIGHT,
    style_weight: float = DEFAULT_STYLE_WEIGHT,
    tv_weight: float = DEFAULT_TV_WEIGHT,
    style_size: int | None = None,
    channels: int = 32,
    n_residual: int = 5,
    content_layers: Sequence[str] = JOHNSON_CONTENT_LAYERS,
    style_layers: Sequence[str] = JOHNSON_STYLE_LAYERS,
    held_out: Sequence[str] = HELD_OUT,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    seed: int = 0,
    device: str | torch.device | None = None,
    weights: str | os.PathLike | None = None,
    progress: bool = True,
    callback: Callable[[FastStepInfo], bool | None] | None = None,
    precision: str = "auto",
) -> FastTrainingResult:
    """Train a :class:`TransformerNet` for one style with Adam on the :class:`PerceptualLoss`.

    Inputs:
    - style: tensor (1, 3, H, W) in [0, 1], a path, or a bundled style name.
    - content_dir: folder of training photos; None -> the bundled content images minus ``held_out``.
    - steps, size (the crops' side), batch_size, checkpoint_every: default :data:`TRAIN_DEFAULTS` of the
      course's mode (real: 2000 steps, 256 px, 4; quick: 200, 128, 2; smoke: 4, 64, 2);
      style_size: the style image's long side (default ``size``).
    - checkpoint: file saved atomically every ``checkpoint_every`` steps (real: 100), at the
      end and on interruption; if it exists and ``resume``, training continues from it (the same
      settings are required; ``steps`` may grow). It is also a model file for :func:`load_model`.
    - callback(FastStepInfo) after every step; returning False stops (interrupted=True).
    - precision: what the two networks compute in ("auto", "fp32", "bf16", "fp16", as ``stylize``); the
      network's weights, Adam's state and the losses stay float32.
    Returns: a :class:`FastTrainingResult`; its model is in eval mode on ``device``. Batches
    depend only on (seed, step), so on CPU a resumed run reproduces an uninterrupted one exactly.
    """
    fn = "train_fast"
    defaults = train_defaults()
    steps = _check_int(fn, "steps", defaults["steps"] if steps is None else steps, 1)
    size = _check_int(fn, "size", defaults["size"] if size is None else size, 16)
    batch_size = _check_int(fn, "batch_size", defaults["batch_size"] if batch_size is None else batch_size, 1)
    style_size = _check_int(fn, "style_size", size if style_size is None else style_size, 16)
    every = defaults["checkpoint_every"] if checkpoint_every is None else checkpoint_every
    every = _check_int(fn, "checkpoint_every", every, 1)
    lr = _check_number(fn, "lr", lr, positive=True)
    seed = _check_int(fn, "seed", seed, 0)
    device = default_device(device)
    precision = _kernels.resolve_precision(precision, device)
    paths = content_paths(content_dir, held_out)
    style_image = as_image(style)
    loss_fn = PerceptualLoss(
        style_image, style_size, content_layers, style_layers, content_weight, style_weight, tv_weight, weights, device,
        precision,
    )
    scaler = _kernels.LossScaler(enabled=precision == "fp16")
    config = {
        "style": describe(style),
        "style_id": _style_id(style_image),
        "content_dir": f"bundled minus {list(held_out)}" if content_dir is None else str(Path(content_dir).resolve()),
        "steps": steps,
        "size": size,
        "style_size": style_size,
        "batch_size": batch_size,
        "lr": lr,
        "content_weight": loss_fn.content_weight,
        "style_weight": loss_fn.style_weight,
        "tv_weight": loss_fn.tv_weight,
        "content_layers": loss_fn.content_layers,
        "style_layers": loss_fn.style_layers,
        "channels": channels,
        "n_residual": n_residual,
        "seed": seed,
        "weights_name": loss_fn.weights_name,
        "precision": precision,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TransformerNet(channels, n_residual)
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, list[float]] = {"total": [], "content": [], "style": [], "tv": []}
    start = 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and resume and checkpoint.exists():
        record = read_checkpoint(checkpoint)
        if "optimizer" not in record:
            raise ValueError(f"{checkpoint}: a model file without training state; cannot resume (use resume=False)")
        _check_resumable(record["config"], config, checkpoint)
        model.load_state_dict(record["model"])
        optimizer.load_state_dict(record["optimizer"])
        start = int(record["step"])
        history = {k: [float(v) for v in record["history"][k]] for k in history}
    saved = start if start > 0 else None  # the step the checkpoint file holds for this run

    def save(done: int) -> None:
        nonlocal saved
        model.meta = {"style": config["style"], "steps": done, "size": size, "weights_name": loss_fn.weights_name}
        record = _model_record(model)
        record.update(optimizer=optimizer.state_dict(), step=done, history=history, config=config)
        _atomic_save(record, checkpoint)
        saved = done

    sampler = CropSampler(paths, size, batch_size, seed)
    done, updating, step_times = start, False, []
    interrupted, reason = False, None
    try:
        desc = f"train-fast [{loss_fn.weights_name} VGG, {precision}]"
        # Freed CPU memory is reused instead of faulted in afresh each step (256 px, batch 4: ~1.4x).
        bar = tqdm(total=steps, initial=min(start, steps), desc=desc, disable=not progress)
        with keep_freed_memory(), bar:
            for step in range(start, steps):
                began = time.perf_counter()
                batch = sampler.batch(step).to(device)
                optimizer.zero_grad(set_to_none=True)
                with _kernels.network_autocast(device, precision):
                    output = model(batch)
                terms = loss_fn(output, batch)
                values = {k: float(v.detach()) for k, v in terms.items()}
                if not all(math.isfinite(v) for v in values.values()):
                    reason = f"non-finite loss at step {step + 1} ({values}); try a smaller lr (now {lr:g})"
                    break
                updating = True
                if scaler.backward(terms["total"], list(model.parameters())):
                    optimizer.step()  # fp16: a step whose gradients overflowed is skipped (a smaller scale next)
                updating = False
                done = step + 1
                for k, v in values.items():
                    history[k].append(v)
                step_times.append(time.perf_counter() - began)
                if checkpoint is not None and done % every == 0:
                    save(done)
                bar.update(1)
                bar.set_postfix_str(" ".join(f"{k}={v:.3g}" for k, v in values.items()), refresh=False)
                if callback is not None and callback(FastStepInfo(done, steps, values, model)) is False:
                    interrupted, reason = True, f"stopped by callback after step {done}"
                    break
    except KeyboardInterrupt:
        interrupted, reason = True, f"interrupted (KeyboardInterrupt) after step {done}"
    if updating:  # interrupted inside optimizer.step(): the weights may be half-updated
        if saved is not None:
            record = read_checkpoint(checkpoint)
            model.load_state_dict(record["model"])
            done = int(record["step"])
            history = {k: [float(v) for v in record["history"][k]] for k in history}
            step_times = step_times[: done - start]
            reason += f"; went back to the checkpoint of step {done}"
        else:
            reason += "; the last update may be incomplete (no checkpoint to go back to)"
    elif checkpoint is not None and done > 0 and done != saved:
        save(done)
    model.meta = {"style": config["style"], "steps": done, "size": size, "weights_name": loss_fn.weights_name}
    return FastTrainingResult(
        model=model.eval(),
        history=history,
        steps=done,
        weights_name=loss_fn.weights_name,
        interrupted=interrupted,
        stopped_reason=reason,
        resumed_from=start,
        step_times=step_times,
        settings=config,
        precision=precision,
    )


# ----------------------------------------------------------------------------- using a network


def stylize_fast(
    model: TransformerNet, image: torch.Tensor | str | os.PathLike, size: int | None = None, precision: str = "auto"
) -> torch.Tensor:
    """Stylise one image with a trained network: one forward pass, no gradients.

    Inputs: image: tensor (1, 3, H, W) / (3, H, W) in [0, 1], a path or a bundled image name;
    size: long side to resize it to first (None keeps its size); precision: as ``stylize``'s. Runs on the
    model's device.
    Returns: (1, 3, H, W) float32 CPU tensor in [0, 1].
    """
    device = next(model.parameters()).device
    precision = _kernels.resolve_precision(precision, device)
    x = as_image(image, size).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _kernels.network_autocast(device, precision):
            out = model(x)
    finally:
        model.train(was_training)
    return out.float().clamp(0, 1).cpu()
