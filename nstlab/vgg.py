"""VGG19 as a frozen feature extractor, with the layer names of the papers — textbook layer.

``VGGFeatures(["relu1_1", "relu3_1", "conv4_2"])`` returns those activations for an image batch
in [0, 1], running the network only as deep as the deepest requested layer.

Weights (argument ``weights``, or the ``NSTLAB_WEIGHTS`` environment variable):

- ``"imagenet"``: torchvision's ``VGG19_Weights.IMAGENET1K_V1``, through the torch hub cache
  (fetched and checked by :mod:`nstlab.weights`; a file whose SHA-256 does not match its name is
  never loaded).
- a path to a state-dict file (torchvision's full VGG19 file, or one holding only ``features.*``).
- ``"random"``: a seeded, untrained VGG19 (it still transfers colour and texture; every picture
  made with it must say so).
- ``"auto"``: ImageNet if it can be loaded, else random with a visible warning.

:func:`check_weights` says which of these the notebooks (``weights="auto"``) will get, and why.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from torchvision.models.vgg import cfgs, make_layers

from .settings import default_device, smoke_or
from .weights import (
    WeightsUnavailableError, download, hash_prefix, hash_problem, imagenet_checkpoint_path, imagenet_url, probe,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_SEED = 0
"""Seed of the ``"random"`` weights: the same untrained network on every machine."""


def _layer_names() -> list[str]:
    """Names of the 37 modules of torchvision's ``vgg19().features``, in order."""
    names: list[str] = []
    block, index = 1, 1
    for item in cfgs["E"]:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


VGG19_LAYERS: list[str] = _layer_names()
CONV_LAYERS: list[str] = [n for n in VGG19_LAYERS if n.startswith("conv")]
RELU_LAYERS: list[str] = [n for n in VGG19_LAYERS if n.startswith("relu")]
GATYS_STYLE_LAYERS: list[str] = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
"""Gatys et al.'s style layers conv1_1 ... conv5_1: post-ReLU blobs in their Caffe network (in-place ReLU)."""
POOLINGS = ("max", "avg")
MEMORY_FORMATS = (torch.contiguous_format, torch.channels_last)


class RandomWeightsWarning(UserWarning):
    """Shown when ``weights="auto"`` falls back to an untrained network."""


# --- choosing and loading weights --------------------------------------------------------------


def resolve_weights(weights: str | os.PathLike | None = None) -> str:
    """The weights to use: ``None`` and ``"auto"`` follow ``NSTLAB_WEIGHTS`` if it is set.

    Returns ``"imagenet"``, ``"random"``, ``"auto"`` or a file path (as a string).
    """
    if weights is None or weights == "auto":
        env = os.environ.get("NSTLAB_WEIGHTS", "").strip()
        weights = env or ("auto" if weights == "auto" else "imagenet")
    weights = str(weights)
    if weights in ("imagenet", "random", "auto"):
        return weights
    if not Path(weights).is_file():
        raise WeightsUnavailableError(
            f"weights={weights!r} is neither 'imagenet', 'random', 'auto' nor an existing state-dict file"
        )
    return weights


def _features_only(state: dict, source: str) -> dict[str, torch.Tensor]:
    """Keep the convolutional part of a VGG19 state dict; error naming the missing keys."""
    if not isinstance(state, dict):
        raise WeightsUnavailableError(f"{source}: expected a state dict, found {type(state).__name__}")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    expected = [f"{VGG19_LAYERS.index(c)}.{p}" for c in CONV_LAYERS for p in ("weight", "bias")]
    prefixed = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    found = prefixed if prefixed else state
    missing = [f"features.{k}" for k in expected if k not in found]
    if missing:
        raise WeightsUnavailableError(
            f"{source}: not a VGG19 state dict; missing keys: {', '.join(missing[:8])}"
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        )
    return {k: found[k] for k in expected}


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a VGG19 (or VGG19 ``features``) state dict safely (``weights_only=True``).

    A file whose name carries a SHA-256 prefix (``vgg19-dcbb9e9d.pth``) must match it. Only reads the file.
    """
    try:
        problem = hash_problem(path)
        state = None if problem else torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # OS, pickle, zip or torch errors: all mean "not a usable checkpoint"
        raise WeightsUnavailableError(f"{path}: cannot be read as a PyTorch state dict ({err})") from None
    if problem:
        raise WeightsUnavailableError(f"{path}: {problem}")
    return _features_only(state, str(path))


FIX_DOWNLOAD = "nstlab weights download"
"""The command that fetches (or replaces) the ImageNet file."""


def load_imagenet_state_dict(progress: bool = True) -> dict[str, torch.Tensor]:
    """ImageNet VGG19 ``features`` weights via the torch hub cache (downloaded once if possible)."""
    path = imagenet_checkpoint_path()
    if not path.is_file():
        try:
            path = download(progress=progress)
        except WeightsUnavailableError as err:  # offline, proxy, disk full: explain how to get going either way
            raise WeightsUnavailableError(
                f"could not get the ImageNet VGG19 weights: {err}.\n"
                f"  Fix: run '{FIX_DOWNLOAD}' where there is internet, or download {imagenet_url()}\n"
                f"       and place it at {path} (or set NSTLAB_WEIGHTS to its path)\n"
                "  or run offline with untrained weights: export NSTLAB_WEIGHTS=random"
            ) from None
    try:
        return load_state_dict_file(path)  # checks the hash first
    except WeightsUnavailableError as err:
        raise WeightsUnavailableError(f"{err}.\n  Fix: {FIX_DOWNLOAD} (it replaces the file)") from None


def _random_features() -> nn.Sequential:
    """VGG19 ``features`` with torchvision's initialisation, seeded with ``RANDOM_SEED``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        features = make_layers(cfgs["E"], batch_norm=False)
        for module in features:
            if isinstance(module, nn.Conv2d):  # as torchvision.models.VGG.__init__ does
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
    return features


def _build(weights: str, pooling: str) -> tuple[nn.Sequential, str]:
    """Uncached: the full 37-module VGG19 ``features`` stack and the name of the weights used."""
    features = _random_features()
    name = "random"
    if weights == "auto":
        try:
            features.load_state_dict(load_imagenet_state_dict())
            name = "imagenet"
        except WeightsUnavailableError as err:
            warnings.warn(
                "ImageNet VGG19 weights are not available, so an UNTRAINED (random) VGG19 is used: "
                f"results show colour and texture transfer only.\n{err}",
                RandomWeightsWarning,
                stacklevel=4,
            )
    elif weights == "imagenet":
        features.load_state_dict(load_imagenet_state_dict())
        name = "imagenet"
    elif weights != "random":
        features.load_state_dict(load_state_dict_file(weights))
        name = weights
    for i, module in enumerate(features):
        if isinstance(module, nn.ReLU):
            features[i] = nn.ReLU(inplace=False)  # conv outputs we return must not be overwritten
        elif isinstance(module, nn.MaxPool2d) and pooling == "avg":
            features[i] = nn.AvgPool2d(kernel_size=2, stride=2)
    features.eval().requires_grad_(False)
    return features, name


@functools.lru_cache(maxsize=8)
def _cached(weights: str, file_stamp: float, pooling: str) -> tuple[nn.Sequential, str]:
    return _build(weights, pooling)


def _file_stamp(resolved: str) -> float:
    """The mtime of the file that ``resolved`` weights come from (0 if none): a replaced file is reloaded."""
    if resolved == "random":
        return 0.0
    path = imagenet_checkpoint_path() if resolved in ("imagenet", "auto") else Path(resolved)
    return path.stat().st_mtime if path.is_file() else 0.0


def vgg19_features(weights: str | os.PathLike | None = None, pooling: str = "max") -> tuple[nn.Sequential, str]:
    """The frozen full VGG19 ``features`` stack (cached per weights and pooling) and its weights' name.

    The same module object is returned on every call with the same arguments: do not modify it.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    resolved = resolve_weights(weights)
    return _cached(resolved, _file_stamp(resolved), pooling)


def weights_label(weights_name: str) -> str:
    """A human label for pictures and logs, e.g. ``"VGG19: RANDOM (untrained) weights"``."""
    if weights_name == "imagenet":
        return "VGG19: ImageNet weights"
    if weights_name == "random":
        return "VGG19: RANDOM (untrained) weights"
    return f"VGG19: weights from {Path(weights_name).name}"


# --- which weights the notebooks will get ----------------------------------------------------------


@dataclass
class WeightsCheck:
    """What ``weights="auto"`` (the notebooks' choice) loads on this machine, and why.

    uses: ``"imagenet"``, ``"random"``, a file path, or ``"error"`` (the notebooks stop with an error).
    reasons: the facts behind it, one line each. fix: the step that gets trained weights, if one is needed.
    """

    uses: str
    reasons: list[str] = field(default_factory=list)
    fix: str | None = None

    @property
    def ok(self) -> bool:
        """False when the notebooks would run without trained weights (random, or an error)."""
        return self.uses not in ("random", "error")

    def lines(self) -> list[str]:
        """The check as text: what the course will use, the reasons indented, then ``fix: ...``."""
        uses = {
            "imagenet": "ImageNet VGG19 weights",
            "random": "RANDOM (untrained) VGG19 weights",
            "error": "no weights: the notebooks stop with an error",
        }.get(self.uses, f"the VGG19 weights in {self.uses}")
        fix = [f"fix: {self.fix}"] if self.fix else []
        return [f"the course will use {uses}", *(f"  {reason}" for reason in self.reasons), *fix]


def check_weights(timeout: float = 10.0) -> WeightsCheck:
    """Which weights ``weights="auto"`` will load here, and why, as :func:`vgg19_features` decides.

    Follows ``NSTLAB_WEIGHTS``; reads the file it would load (hash and state-dict keys); when the
    ImageNet file is missing, asks its download address whether it answers (at most ``timeout`` s).
    """
    env = os.environ.get("NSTLAB_WEIGHTS", "").strip()
    if env == "random":
        return WeightsCheck("random", ["NSTLAB_WEIGHTS=random asks for the untrained network"], "unset NSTLAB_WEIGHTS")
    if env not in ("", "auto", "imagenet"):
        return _check_file(env)
    if env == "imagenet":
        return _check_imagenet(["NSTLAB_WEIGHTS=imagenet: ImageNet weights or an error"], "error", timeout)
    return _check_imagenet(["NSTLAB_WEIGHTS is not set: ImageNet weights if they load, else random"], "random", timeout)


def _check_file(path: str) -> WeightsCheck:
    """The check for ``NSTLAB_WEIGHTS=path``."""
    said = f"NSTLAB_WEIGHTS={path}"
    fix = f"point NSTLAB_WEIGHTS at a readable VGG19 file (get one with: {FIX_DOWNLOAD} --to DIR)"
    if not Path(path).is_file():
        return WeightsCheck("error", [said, f"{path}: no such file"], fix)
    try:
        load_state_dict_file(path)
    except WeightsUnavailableError as err:
        return WeightsCheck("error", [said, str(err)], fix)
    verified = ", its SHA-256 matches its name" if hash_prefix(Path(path).name) else ""
    return WeightsCheck(path, [said, f"{path}: a readable VGG19 state dict{verified}"])


def _check_imagenet(reasons: list[str], fallback: str, timeout: float) -> WeightsCheck:
    """The check for ImageNet weights from the torch hub cache; ``fallback`` is what a failure gives."""
    path, url = imagenet_checkpoint_path(), imagenet_url()
    if path.is_file():
        try:
            load_state_dict_file(path)
        except WeightsUnavailableError as err:
            return WeightsCheck(fallback, [*reasons, str(err)], f"{FIX_DOWNLOAD} (it replaces the file)")
        return WeightsCheck("imagenet", [*reasons, f"{path}: found, its SHA-256 matches its name"])
    error = probe(url, timeout)
    if error is None:
        found = [*reasons, f"{path}: missing", f"{url} answers: the first use downloads it"]
        return WeightsCheck("imagenet", found, f"{FIX_DOWNLOAD} (now, instead of at the first use)")
    failed = [*reasons, f"{path}: missing", f"{url}: cannot be downloaded from here ({error})"]
    offline = f"offline: run it with --to DIR where there is internet, then copy the file to {path.parent}/"
    return WeightsCheck(fallback, failed, f"{FIX_DOWNLOAD} ({offline} or set NSTLAB_WEIGHTS to it)")


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """What :class:`VGGFeatures` does to its input first: (x - mean) / std per channel.

    Inputs: images (N, 3, H, W) in [0, 1]. Returns: (N, 3, H, W), ImageNet mean/std normalised.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"imagenet_normalize: expected (N, 3, H, W), got {tuple(images.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


# --- the "normalized VGG" of Gatys et al. --------------------------------------------------------


def _conv_relu_pairs(features: nn.Sequential) -> list[tuple[int, int]]:
    """(conv index, following ReLU index) for each conv layer of a VGG ``features`` stack."""
    return [(i, i + 1) for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]


@torch.no_grad()
def normalization_scales(features: nn.Sequential, images: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean activation of every channel after each conv+ReLU, over positions and images.

    Inputs:
    - features: a VGG19 ``features`` stack (37 modules).
    - images: list of (1, 3, H, W) tensors in [0, 1] (each image counts equally).
    Returns: {"conv1_1": (64,), ..., "conv5_4": (512,)} mean post-ReLU activations.
    """
    if not images:
        raise ValueError("normalization_scales needs at least one image")
    device = next(features.parameters()).device
    relu_names = {r: VGG19_LAYERS[c] for c, r in _conv_relu_pairs(features)}
    sums: dict[str, torch.Tensor] = {}
    for image in images:
        x = imagenet_normalize(image.to(device))
        for i, module in enumerate(features):
            x = module(x)
            if i in relu_names:
                name = relu_names[i]
                sums[name] = sums.get(name, 0) + x.mean(dim=(0, 2, 3))
    return {name: (total / len(images)).cpu() for name, total in sums.items()}


NORMALIZATION_FLOOR = 1e-3
"""No channel is divided by less than this fraction of its layer's median mean activation."""


def normalization_divisors(scales: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The per-channel divisors the normalized VGG19 uses: each channel's mean activation m, but at
    least ``NORMALIZATION_FLOOR`` times the median of its layer's positive means.

    Without the floor a channel that barely fires on the scale images (m ~ 1e-7 happens with random
    weights) would be multiplied by 1/m, and a few such channels would dominate every Gram matrix.
    Dead channels (m = 0) get the floor too.

    Inputs: scales: {conv layer: (C,) mean activations} from :func:`normalization_scales`.
    Returns: {conv layer: (C,) divisors > 0}.
    """
    divisors = {}
    for name, m in scales.items():
        alive = m[m > 0]
        floor = NORMALIZATION_FLOOR * (float(alive.median()) if alive.numel() else 1.0)
        divisors[name] = m.clamp(min=floor)
    return divisors


def normalize_features(features: nn.Sequential, scales: dict[str, torch.Tensor]) -> nn.Sequential:
    """A copy of ``features`` whose conv channels have mean activation 1 on the scale images.

    Each conv's output channel o is divided by its divisor d_l[o] (its mean m_l[o], floored: see
    :func:`normalization_divisors`), and its input channel i is multiplied by the previous layer's
    d_{l-1}[i] to undo that layer's division: every activation is the original one divided by a
    positive per-channel constant (ReLU and pooling commute with that), so the network computes the
    same thing up to scale.
    """
    normalized = copy.deepcopy(features)
    divisors = normalization_divisors(scales)
    previous: torch.Tensor | None = None
    for conv_index, _ in _conv_relu_pairs(normalized):
        conv = normalized[conv_index]
        d = divisors[VGG19_LAYERS[conv_index]].to(conv.weight)
        weight = conv.weight / d.view(-1, 1, 1, 1)
        if previous is not None:
            weight = weight * previous.view(1, -1, 1, 1)
        conv.weight.copy_(weight)
        conv.bias.copy_(conv.bias / d)
        previous = d
    return normalized


def default_normalization_images(size: int = 256) -> list[torch.Tensor]:
    """The bundled content and style images at ``size`` px: the default set for the scales."""
    from .images import list_images, sample_image

    names = list_images("content") + list_images("style")
    return [sample_image(name, max_size=size) for name in names]


def _normalization_image_size() -> int:
    return smoke_or(256, 64)


def _cache_dir() -> Path:
    return Path(os.environ.get("NSTLAB_CACHE") or Path.home() / ".cache" / "nstlab")


def _scales_cache_file(weights_name: str, pooling: str) -> Path:
    if weights_name in ("imagenet", "random"):
        tag = weights_name
    else:
        stat = os.stat(weights_name)
        tag = hashlib.sha1(f"{Path(weights_name).resolve()}:{stat.st_size}:{stat.st_mtime}".encode()).hexdigest()[:12]
    return _cache_dir() / f"vgg19_norm_scales_{tag}_{pooling}_{_normalization_image_size()}px.pt"


def cached_normalization_scales(
    weights: str | os.PathLike | None = None, pooling: str = "max"
) -> tuple[dict[str, torch.Tensor], str]:
    """The mean activations behind the normalized VGG19 (:func:`normalization_scales` of the
    bundled images), computed once per weights and pooling and kept in the nstlab cache directory
    (``NSTLAB_CACHE``, default ~/.cache/nstlab).

    Returns: (scales {conv layer: (C,)}, the weights' name).
    """
    features, name = vgg19_features(weights, pooling)
    cache_file = _scales_cache_file(name, pooling)
    if cache_file.is_file():
        try:
            return torch.load(cache_file, map_location="cpu", weights_only=True), name
        except Exception:  # a stale or broken cache file is recomputed, not fatal
            pass
    scales = normalization_scales(features, default_normalization_images(_normalization_image_size()))
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        torch.save(scales, cache_file)
    except OSError:
        pass  # a read-only home only costs a recomputation next time
    return scales, name


@functools.lru_cache(maxsize=4)
def _normalized_cached(weights: str, file_stamp: float, pooling: str) -> tuple[nn.Sequential, str]:
    features, name = _cached(weights, file_stamp, pooling)
    scales, _ = cached_normalization_scales(weights, pooling)
    return normalize_features(features, scales), name


# --- the module -----------------------------------------------------------------------------------


class VGGFeatures(nn.Module):
    """Frozen VGG19 returning the activations of the requested layers.

    Inputs to forward: images (N, 3, H, W) in [0, 1] (ImageNet mean/std is applied here).
    Returns: dict {layer: (N, C_l, H_l, W_l)} for exactly ``layers``, in their order.
    Attributes: ``layers``, ``weights_name`` ("imagenet", "random" or a path), ``pooling``,
    ``normalized``; ``body`` holds only the modules up to the deepest requested layer.
    ``memory_format=torch.channels_last`` runs the network, and returns the activations, in that
    layout (same values; faster on CPU, see benchmarks/README.md). ``dtype`` runs it in that precision
    (e.g. torch.bfloat16): the normalised input is cast to it and the activations come out in it.
    """

    def __init__(
        self,
        layers: list[str] | tuple[str, ...],
        weights: str | os.PathLike | None = None,
        pooling: str = "max",
        normalized: bool = False,
        device: str | torch.device | None = None,
        memory_format: torch.memory_format = torch.contiguous_format,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if memory_format not in MEMORY_FORMATS:
            raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {memory_format!r}")
        layers = list(dict.fromkeys(layers))
        if not layers:
            raise ValueError("VGGFeatures needs at least one layer name")
        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {unknown}; valid names: {', '.join(VGG19_LAYERS)}")
        if normalized:
            if pooling not in POOLINGS:
                raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
            resolved = resolve_weights(weights)
            full, self.weights_name = _normalized_cached(resolved, _file_stamp(resolved), pooling)
        else:
            full, self.weights_name = vgg19_features(weights, pooling)
        depth = max(VGG19_LAYERS.index(name) for name in layers) + 1
        device = default_device(device)
        if memory_format != torch.contiguous_format or dtype != torch.float32:
            full = _converted(full, memory_format, dtype)
        body = full[:depth]
        if device.type != "cpu":
            body = copy.deepcopy(body)  # the cached CPU network stays where it is
        self.body = body.to(device)
        self.layers = layers
        self.pooling = pooling
        self.normalized = normalized
        self.memory_format = memory_format
        self.dtype = dtype
        self._wanted = {VGG19_LAYERS.index(name): name for name in layers}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1))

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def label(self) -> str:
        """E.g. ``"VGG19: RANDOM (untrained) weights"``; put it on every picture."""
        return weights_label(self.weights_name)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"VGGFeatures expects images of shape (N, 3, H, W), got {tuple(images.shape)}")
        x = ((images - self.mean) / self.std).to(self.dtype)
        if self.memory_format != torch.contiguous_format:
            x = x.contiguous(memory_format=self.memory_format)
        found: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.body):
            x = module(x)
            if index in self._wanted:
                found[self._wanted[index]] = x
        return {name: found[name] for name in self.layers}


@functools.lru_cache(maxsize=4)
def _converted(full: nn.Sequential, memory_format: torch.memory_format, dtype: torch.dtype) -> nn.Sequential:
    """A copy of a cached network with its weights in ``memory_format`` and ``dtype`` (the shared one stays as is)."""
    return copy.deepcopy(full).to(dtype=dtype, memory_format=memory_format)


def clear_cache() -> None:
    """Forget the loaded networks (e.g. after placing a new weights file in the hub cache)."""
    _cached.cache_clear()
    _normalized_cached.cache_clear()
    _converted.cache_clear()
