"""Benchmark of nstlab's optimisation step against the hardware floor and a naive baseline.

One run measures, on the same images, size and device, with fixed seeds and random VGG19 weights:

- floor: one forward + backward pass of the VGG19 layers up to a preset's deepest layer, built as
  the engine builds its network (``nstlab.optimize.feature_extractor``), with no loss code at all,
  timed once after each of nstlab's steps so that both are measured over the same minutes;
- naive baseline: a tutorial-style Gatys implementation written below (a copy of the whole
  ``features`` stack with loss modules inserted, the style Grams recomputed from the style
  features every step, full resolution only, L-BFGS with a closure), with exactly the objective
  of nstlab's "gatys" preset;
- nstlab: ``stylize`` for every preset in every precision of ``--precisions`` (its closures timed too), a
  reduced-precision floor, and gatys at a big size (1024 px);
- peers, per L-BFGS iteration (one loss evaluation each): neural-style-pt (PyPI ``neural-style``, the ``bench``
  extra; run through its own command line on the same random VGG19) and the naive baseline;
- time to quality: the wall time nstlab (multi-scale, L-BFGS) needs, in each precision, to reach the loss the
  baseline reaches after ``--steps`` L-BFGS steps, both measured with the baseline's own loss;
- with ``--quality-steps N``: each preset run N steps in each precision, and how far the reduced-precision
  results are from the fp32 one (objective evaluated in fp32, pixels, SSIM).

Run ``python benchmarks/bench.py --size 256 --device cpu``; benchmarks/README.md defines every number.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout without installing nstlab
    sys.path.insert(0, str(ROOT))

from nstlab import optimize  # noqa: E402
from nstlab._kernels import PRECISIONS, gram, resolve_precision  # noqa: E402
from nstlab.images import as_image, dither, resize, save_image  # noqa: E402
from nstlab.optimize import PRESETS, feature_extractor, objective, resolve_options, stylize  # noqa: E402
from nstlab.ssim import ssim  # noqa: E402
from nstlab.settings import default_device, keep_freed_memory  # noqa: E402
from nstlab.vgg import IMAGENET_MEAN, IMAGENET_STD, VGG19_LAYERS, vgg19_features  # noqa: E402

WEIGHTS = "random"
"""The issue's setting: the seeded untrained VGG19 (no download), for the baseline and nstlab alike."""


@dataclass
class Config:
    """What one benchmark run measures (the command-line options, see ``parse_args``)."""

    size: int = 256
    device: str = "cpu"
    threads: int | None = None
    content: str = "tower_bridge"
    style: str = "van_gogh_cafe_terrace_at_night"
    repeats: int = 7
    presets: list[str] = field(default_factory=lambda: list(PRESETS))
    steps: int = 300
    preset_steps: int = 50
    ttq_scales: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])
    ttq_coarse_steps: list[int] = field(default_factory=lambda: [50, 50])
    ttq_max_steps: int = 300
    big_size: int = 1024
    big_steps: int = 8
    precisions: list[str] = field(default_factory=lambda: ["fp32", "auto"])
    peer_steps: int = 40
    quality_steps: int = 0
    quality_only: bool = False
    out: str | None = None


# ----------------------------------------------------------------------------- measuring


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _proc_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak memory of a code section, in bytes (``.peak``).

    CUDA: ``torch.cuda.max_memory_allocated`` (tensors only). CPU: the process' peak resident set
    (``VmHWM``), reset at the start of the section through ``/proc/self/clear_refs`` after freed
    memory is returned to the OS; it includes Python, torch and the network weights. Where the reset
    is impossible, ``resettable`` is False and the peak is the process' peak so far.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak: int | None = None
        self.resettable = True

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.resettable = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak = int(torch.cuda.max_memory_allocated(self.device))
            return
        hwm = _proc_status_kib("VmHWM")
        if hwm is None:
            import resource

            self.resettable = False
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak = hwm * 1024


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def load_pair(content: str, style: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Content at long side ``size`` and the style resized to the content's (H, W) (tutorial style).

    Returns: two (1, 3, H, W) CPU tensors in [0, 1].
    """
    c = as_image(content, size)
    return c, resize(as_image(style), tuple(c.shape[-2:]))


def deepest_layer(preset: str) -> str:
    opts = PRESETS[preset]
    return max(opts["content_layers"] + opts["style_layers"], key=VGG19_LAYERS.index)


# ----------------------------------------------------------------------------- floor


def floor_pass(
    image: torch.Tensor, deepest: str, device: torch.device, precision: str = "fp32"
) -> Callable[[], float]:
    """A function that runs one timed forward + backward pass up to ``deepest`` and returns its seconds.

    The network is the engine's own (``feature_extractor``: same truncation, memory format, and the dtype of
    ``precision``); the backward pass starts from a fixed gradient on the deepest layer's output: no loss
    code. One untimed warm-up pass is run here (it builds the oneDNN/cuDNN kernels).
    """
    vgg = feature_extractor([deepest], WEIGHTS, "max", device, precision=precision)
    x = image.detach().to(device).requires_grad_(True)
    out = vgg(x)[deepest]  # the warm-up pass, which also gives the gradient's shape
    grad = torch.ones_like(out)
    out.backward(grad)
    x.grad = None
    return _timed_pass(lambda: vgg(x)[deepest].backward(grad), x, device)


def gram_products_pass(image: torch.Tensor, preset: str, device: torch.device) -> Callable[[], float]:
    """Like :func:`floor_pass`, with the preset's own (non-chained) Gram products added and nothing else:
    the loss is sum_l <G_l, R_l> with fixed symmetric R_l, so each layer costs its Gram product
    (``nstlab._kernels.gram``, the engine's code), one elementwise product with R_l, the backward
    product dF = (R + R^T) F and the addition of dF into the network's gradient. No content, TV or
    (G - A)^2 code, no bookkeeping: the least that any loss on these Grams adds to the floor.
    """
    opts = PRESETS[preset]
    deepest = deepest_layer(preset)
    vgg = feature_extractor(sorted({*opts["style_layers"], deepest}, key=VGG19_LAYERS.index), WEIGHTS, "max", device)
    x = image.detach().to(device).requires_grad_(True)
    g = torch.Generator(device="cpu").manual_seed(0)
    with torch.no_grad():
        feats = vgg(x)
        weights = {}
        for layer in opts["style_layers"]:
            c = feats[layer].shape[1]
            r = torch.randn(1, c, c, generator=g)
            weights[layer] = (r + r.transpose(1, 2)).to(device)
        grad = torch.ones_like(feats[deepest])

    def loss(feats: dict[str, torch.Tensor]) -> torch.Tensor:
        grams = sum((gram(feats[layer]) * r).sum() for layer, r in weights.items())
        return grams + (feats[deepest] * grad).sum()  # the floor's gradient of ones at the deepest layer

    one_pass = _timed_pass(lambda: loss(vgg(x)).backward(), x, device)
    one_pass()  # warm-up
    return one_pass


def _timed_pass(forward_backward: Callable[[], None], x: torch.Tensor, device: torch.device) -> Callable[[], float]:
    """A function that runs ``forward_backward`` (which fills x.grad) once and returns its seconds, x.grad cleared."""

    def one_pass() -> float:
        _sync(device)
        start = time.perf_counter()
        forward_backward()
        _sync(device)
        x.grad = None
        return time.perf_counter() - start

    return one_pass


def lbfgs_update_times(shape: tuple[int, ...], device: torch.device, repeats: int) -> list[float]:
    """Seconds of the optimiser's own work per step (the two-loop recursion over the stored pairs,
    the history update) of the engine's L-BFGS with a **full** history (``LBFGS_HISTORY`` pairs),
    for pixels of ``shape``: a short run keeps only a few pairs, and this cost grows with them.

    The objective is a cheap, separable, non-convex function of the pixels whose curvature pairs
    are all accepted; its own time (measured inside the closure) is subtracted from each step.
    """
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(shape, generator=g).to(device).requires_grad_(True)
    a, b = (torch.rand(shape, generator=g).to(device) * k for k in (100.0, 3.0))
    optimizer = optimize._make_optimizer(x, {"optimizer": "lbfgs", "lr": 1.0})
    inside = [0.0]

    def closure() -> torch.Tensor:
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = 0.5 * (a * x * x).sum() + torch.cos(b * x).sum()
        loss.backward()
        _sync(device)
        inside[0] = time.perf_counter() - start
        return loss

    times = []
    with keep_freed_memory():  # as in stylize
        for i in range(optimize.LBFGS_HISTORY + 1 + repeats):
            _sync(device)
            start = time.perf_counter()
            optimizer.step(closure)
            _sync(device)
            if i > optimize.LBFGS_HISTORY:  # the history is full from here on
                times.append(time.perf_counter() - start - inside[0])
    pairs = len(optimizer.state[x]["old_dirs"])
    if pairs != optimize.LBFGS_HISTORY:
        raise RuntimeError(f"lbfgs_update_times: the history holds {pairs} pairs, not {optimize.LBFGS_HISTORY}")
    return times


# ----------------------------------------------------------------------------- the naive baseline


class Normalization(nn.Module):
    """ImageNet mean/std normalisation as the first module of the copied network."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(-1, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(-1, 1, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.mean) / self.std


def naive_gram(x: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) -> (C, C) unnormalised Gram, as the PyTorch tutorial writes it."""
    a, b, c, d = x.size()
    features = x.view(a * b, c * d)
    return torch.mm(features, features.t())


class ContentLoss(nn.Module):
    """Records mean (F - P)^2 / mean P^2 (nstlab's normalised content term) and passes x on."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target.detach()
        self.loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(x, self.target) / self.target.pow(2).mean()
        return x


class StyleLoss(nn.Module):
    """Records w * E_l / E_l(0) = w * sum (G - A)^2 / sum A^2; A is recomputed from the style
    features in every forward pass (the Gatys constant 1/(4 N^2 M^2) cancels in the ratio)."""

    def __init__(self, target_feature: torch.Tensor, weight: float) -> None:
        super().__init__()
        self.target_feature = target_feature.detach()
        self.weight = weight
        self.loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = naive_gram(x)
        a = naive_gram(self.target_feature)
        self.loss = self.weight * (g - a).pow(2).sum() / a.pow(2).sum()
        return x


def naive_tv(img: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of horizontal and vertical neighbours (nstlab's tv term)."""
    dx = (img[..., :, 1:] - img[..., :, :-1]).abs()
    dy = (img[..., 1:, :] - img[..., :-1, :]).abs()
    return (dx.sum() + dy.sum()) / (dx.numel() + dy.numel())


class NaiveGatys:
    """The tutorial's model: Normalization + a copy of all 37 VGG19 ``features`` modules with a
    ContentLoss / StyleLoss module after each chosen layer. The objective is that of nstlab's
    "gatys" preset: content_weight * content + style_weight * style + tv_weight * tv."""

    def __init__(self, content: torch.Tensor, style: torch.Tensor, device: torch.device) -> None:
        opts = resolve_options("gatys")
        self.weights = (opts["content_weight"], opts["style_weight"], opts["tv_weight"])
        cnn = copy.deepcopy(vgg19_features(WEIGHTS)[0]).to(device).eval()
        self.model = nn.Sequential(Normalization(device))
        self.content_losses: list[ContentLoss] = []
        self.style_losses: list[StyleLoss] = []
        with torch.no_grad():
            for name, layer in zip(VGG19_LAYERS, cnn):
                self.model.add_module(name, layer)
                if name in opts["content_layers"]:
                    loss = ContentLoss(self.model(content))
                    self.model.add_module(f"content_loss_{name}", loss)
                    self.content_losses.append(loss)
                if name in opts["style_layers"]:
                    loss = StyleLoss(self.model(style), 1.0 / len(opts["style_layers"]))
                    self.model.add_module(f"style_loss_{name}", loss)
                    self.style_losses.append(loss)
        self.model.requires_grad_(False)

    def loss(self, img: torch.Tensor) -> torch.Tensor:
        """The total loss of img (1, 3, H, W); runs the whole copied network."""
        self.model(img)
        content = sum(cl.loss for cl in self.content_losses)
        style = sum(sl.loss for sl in self.style_losses)
        wc, ws, wt = self.weights
        return wc * content + ws * style + wt * naive_tv(img)

    @torch.no_grad()
    def yardstick(self, img: torch.Tensor) -> float:
        """The common measure of quality: this loss of the image clamped to [0, 1]."""
        return float(self.loss(img.clamp(0, 1)))


def run_naive(content: torch.Tensor, style: torch.Tensor, steps: int, device: torch.device) -> dict[str, Any]:
    """The baseline: ``steps`` L-BFGS evaluations from the content image, tutorial style.

    torch.optim.LBFGS with its defaults (max_iter=20 evaluations per .step(), history 100, lr 1)
    except zero tolerances, so that it never stops early; one step = one closure evaluation.
    Returns: {"model", "image", "losses", "step_times", "wall"}; wall includes building the model.
    """
    content, style = content.to(device), style.to(device)
    _sync(device)
    start = time.perf_counter()
    naive = NaiveGatys(content, style, device)
    img = content.detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([img], tolerance_grad=0.0, tolerance_change=0.0)
    starts: list[float] = []

    def closure() -> torch.Tensor:
        starts.append(time.perf_counter())
        optimizer.zero_grad()
        loss = naive.loss(img)
        loss.backward()
        return loss

    while len(starts) < steps:
        optimizer.param_groups[0]["max_iter"] = min(20, steps - len(starts))
        optimizer.step(closure)
    _sync(device)
    end = time.perf_counter()
    times = [b - a for a, b in zip(starts, starts[1:] + [end])]
    return {"model": naive, "image": img.detach(), "step_times": times, "wall": end - start}


# ----------------------------------------------------------------------------- nstlab


@contextlib.contextmanager
def closure_timer(device: torch.device) -> Iterator[list[float]]:
    """Record the seconds of every closure the engine's optimisers evaluate: the loss terms and
    their backward pass, i.e. a step without the optimiser's own update (instrumentation only)."""
    times: list[float] = []
    make = optimize._make_optimizer

    def make_timed(x: torch.Tensor, opts: dict) -> torch.optim.Optimizer:
        optimizer = make(x, opts)
        step = optimizer.step

        def timed_step(closure: Callable[[], torch.Tensor]) -> Any:
            def timed() -> torch.Tensor:
                _sync(device)
                start = time.perf_counter()
                loss = closure()
                _sync(device)
                times.append(time.perf_counter() - start)
                return loss

            return step(timed)

        optimizer.step = timed_step  # type: ignore[method-assign]
        return optimizer

    optimize._make_optimizer = make_timed
    try:
        yield times
    finally:
        optimize._make_optimizer = make


def nstlab_run(
    content: torch.Tensor, style: torch.Tensor, preset: str, device: torch.device, steps: int, precision: str,
    **options: Any,
) -> tuple[Any, list[float], float]:
    """``stylize`` for ``steps`` steps at the content's size in ``precision``, timing its closures too.

    Returns: (the Result, the closure times, the wall time of the whole call).
    """
    with closure_timer(device) as evals:
        _sync(device)
        start = time.perf_counter()
        result = stylize(
            content, style, preset=preset, steps=steps, size=max(content.shape[-2:]),
            weights=WEIGHTS, device=device, progress=False, precision=precision, **options,
        )
        _sync(device)
    return result, evals, time.perf_counter() - start


def nstlab_time_to_quality(
    content: torch.Tensor,
    style: torch.Tensor,
    target: float,
    yardstick: Callable[[torch.Tensor], float],
    device: torch.device,
    config: Config,
    precision: str,
) -> dict[str, Any]:
    """Wall time of ``stylize`` (gatys preset, L-BFGS, the config's scales, ``precision``) until
    yardstick(image) <= target.

    The callback evaluates the yardstick on the image after every step of the final scale and
    stops the run once the target is reached; the time spent inside the callback is subtracted.
    Returns: {"seconds", "reached", "final_steps", "yardstick", "steps", "median_seconds"};
    median_seconds = sum over scales of (steps at the scale x median step time there), a cross-check
    of the wall time that load from other processes hardly moves.
    """
    spent = 0.0
    found: dict[str, Any] = {"reached": False, "final_steps": 0, "yardstick": math.nan}

    def stop_at_target(info: Any) -> bool | None:
        nonlocal spent
        if info.scale != info.n_scales - 1:
            return None
        begin = time.perf_counter()
        value = yardstick(info.image.to(device))
        found.update(final_steps=found["final_steps"] + 1, yardstick=value, reached=value <= target)
        spent += time.perf_counter() - begin
        return False if found["reached"] else None

    _sync(device)
    start = time.perf_counter()
    result = stylize(
        content, style, preset="gatys", size=max(content.shape[-2:]), scales=config.ttq_scales,
        steps=[*config.ttq_coarse_steps, config.ttq_max_steps], weights=WEIGHTS, device=device, progress=False,
        callback=stop_at_target, callback_every=1, precision=precision,
    )
    _sync(device)
    seconds = time.perf_counter() - start - spent
    scales = range(len(config.ttq_scales))
    per_scale = [[t for t, k in zip(result.step_times, result.history["scale"]) if k == i] for i in scales]
    steady = sum(len(times) * median(times) for times in per_scale if times)
    return {**found, "seconds": seconds, "steps": [*config.ttq_coarse_steps, found["final_steps"]],
            "median_seconds": steady}


# ----------------------------------------------------------------------------- a peer: neural-style-pt

PEER = "neural_style"
"""neural-style-pt's module (PyPI ``neural-style``, the project's ``bench`` extra)."""


def peer_version() -> str | None:
    """The installed neural-style-pt version, or None when it is not installed."""
    if importlib.util.find_spec(PEER) is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neural-style")
    except PackageNotFoundError:
        return "unknown"


def run_peer(content: torch.Tensor, style: torch.Tensor, steps: int, device: torch.device) -> list[float]:
    """Seconds of each L-BFGS iteration (one loss evaluation and the update) of neural-style-pt's command line.

    It runs as a user runs it (``-backend nn -optimizer lbfgs``, history 100, content initialisation, the
    Gatys layers relu4_2 and relu1_1 ... relu5_1, max pooling) on the same images and the same random VGG19,
    saved in torchvision's key layout in a file whose name makes its loader pick VGG-19. With ``-print_iter 1``
    it prints a line after every evaluation; the intervals between those lines are the iterations.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_file = folder / "vgg19-random.pth"
        torch.save({f"features.{k}": v for k, v in vgg19_features(WEIGHTS)[0].state_dict().items()}, model_file)
        save_image(content, folder / "content.png")
        save_image(style, folder / "style.png")
        gpu = "c" if device.type == "cpu" else str(device.index or 0)
        command = [
            sys.executable, "-u", "-c", f"from {PEER}.neural_style import main; main()",
            "-content_image", str(folder / "content.png"), "-style_image", str(folder / "style.png"),
            "-image_size", str(max(content.shape[-2:])), "-model_file", str(model_file), "-disable_check",
            "-backend", "nn", "-optimizer", "lbfgs", "-num_iterations", str(steps), "-init", "image",
            "-pooling", "max", "-print_iter", "1", "-save_iter", "0", "-seed", "0", "-gpu", gpu,
            "-output_image", str(folder / "out.png"),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
        stamps: list[float] = []
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("Iteration "):  # printed once per evaluation, losses follow
                    stamps.append(time.perf_counter())
        if proc.returncode != 0 or len(stamps) < 3:
            raise RuntimeError(f"neural-style-pt failed (exit {proc.returncode}):\n{''.join(lines[-20:])}")
    return [b - a for a, b in zip(stamps, stamps[1:])]


def measure_peers(content: torch.Tensor, style: torch.Tensor, naive: dict[str, Any], gatys: dict[str, Any],
                  config: Config, device: torch.device, log: Callable[[str], None]) -> dict[str, Any]:
    """Per L-BFGS iteration over the first ``peer_steps`` iterations: neural-style-pt, the naive baseline and
    nstlab's gatys run in each precision (their first iteration left out), and peer / nstlab."""
    k = config.peer_steps
    nstlab_times = {p: median(r.step_times[1:k]) for p, r in gatys.items()}
    peers: dict[str, Any] = {"iterations": k, "nstlab": nstlab_times,
                             "naive baseline": {"seconds": median(naive["step_times"][1:k])}}
    version = peer_version()
    if version is None:
        log("  neural-style-pt is not installed (pip install -e '.[bench]'): its row is left out")
    else:
        times = run_peer(content, style, k, device)
        peers[f"neural-style-pt {version}"] = {"seconds": median(times[1:]), "times": times}
    for name, peer in peers.items():
        if name not in ("iterations", "nstlab"):
            peer["peer_vs_nstlab"] = {p: peer["seconds"] / t for p, t in nstlab_times.items()}
            log(f"  {name}: {peer['seconds']:.3f} s per iteration; / nstlab: "
                + ", ".join(f"{p} {v:.2f}" for p, v in peer["peer_vs_nstlab"].items()))
    return peers


# ----------------------------------------------------------------------------- quality in reduced precision


def measure_quality(content: torch.Tensor, style: torch.Tensor, config: Config, device: torch.device,
                    log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Each preset ``quality_steps`` steps in each precision from the content image: the final objective
    evaluated with a float32 network, and the reduced-precision images' distance to the fp32 image (mean
    absolute pixel difference, SSIM); for scale, the same distances for an fp32 run started from the content
    image with a 1/255 dither."""
    rows = []
    size = max(content.shape[-2:])
    for preset in config.presets:
        runs = {p: dict(init="content") for p in config.precisions}
        runs["fp32 dithered"] = dict(init=dither(content, seed=1))
        images, objectives = {}, {}
        for name, extra in runs.items():
            precision = name.split()[0]
            result = stylize(content, style, preset=preset, size=size, steps=config.quality_steps, weights=WEIGHTS,
                             device=device, progress=False, precision=precision, **extra)
            images[name] = result.image
            objectives[name] = objective(result.image, content, style, preset=preset, weights=WEIGHTS,
                                         device=device)["total"]
        for name in images:
            row = {"preset": preset, "size": size, "run": name, "steps": config.quality_steps,
                   "objective": objectives[name], "vs_fp32": objectives[name] / objectives["fp32"] - 1,
                   "pixel_difference": float((images[name] - images["fp32"]).abs().mean()),
                   "ssim": float(ssim(images[name], images["fp32"]))}
            rows.append(row)
            log(f"  quality {preset} {name}: objective {row['objective']:.5g} ({row['vs_fp32']:+.2%}), "
                f"mean |difference| {row['pixel_difference']:.4f}, SSIM {row['ssim']:.3f}")
    return rows


# ----------------------------------------------------------------------------- the run


def machine_info(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    mem = _proc_meminfo_gib()
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _proc_meminfo_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        return None
    return None


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _row(name: str, preset: str, kind: str, size: int, deepest: str, times: list[float], peak: int | None,
         precision: str = "fp32", **extra: Any) -> dict[str, Any]:
    return {"name": name, "preset": preset, "kind": kind, "size": size, "deepest": deepest, "precision": precision,
            "times": times, "seconds": median(times), "peak_bytes": peak, **extra}


def measure_preset(content: torch.Tensor, style: torch.Tensor, preset: str, steps: int, config: Config,
                   device: torch.device, log: Callable[[str], None]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Floors, nstlab evaluation and nstlab step of one preset at one size in each precision.

    Returns: the rows and {precision: Result}.
    """
    deepest = deepest_layer(preset)
    size = max(content.shape[-2:])
    # Passes in a row first (kept in the JSON as "alone", and their peak memory is the floor's), with
    # freed memory kept for reuse as stylize keeps it.
    with PeakMemory(device) as mem, keep_freed_memory():
        one_pass = floor_pass(content, deepest, device)
        floor_alone = [one_pass() for _ in range(config.repeats)]
    floor_peak = mem.peak
    rows: list[dict[str, Any]] = []
    results: dict[str, Any] = {}
    for precision in config.precisions:
        # The fp32 floor pass alternates with nstlab's steps (one after each step, from the callback,
        # outside the step's own time), so that both are measured over the same minutes of a host whose
        # speed drifts. Every precision's rows are divided by the fp32 floor passes of their own run.
        floor: list[float] = []
        with PeakMemory(device) as mem:
            result, evals, wall = nstlab_run(
                content, style, preset, device, steps, precision, callback_every=1,
                callback=lambda info: floor.append(one_pass()) if info.step > 0 else None,
            )
        results[precision] = result
        tag = f"{preset} [{precision}]"
        if precision == "fp32":
            rows.append(_row(f"{preset}: floor, fp32 (forward + backward to {deepest})", preset, "floor", size,
                             deepest, floor, floor_peak, alone=floor_alone))
        else:  # the floor in this precision, each pass followed by an fp32 floor pass
            with PeakMemory(device) as reduced_mem, keep_freed_memory():
                reduced_pass = floor_pass(content, deepest, device, precision)
                reduced, paired = [], []
                for _ in range(config.repeats):
                    reduced.append(reduced_pass())
                    paired.append(one_pass())
            rows.append(_row(f"{tag}: floor in {precision} (/ its own {len(paired)} paired fp32 floor passes)",
                             preset, "floor", size, deepest, reduced, reduced_mem.peak, precision,
                             floor_times=paired))
        # The first step builds oneDNN/cuDNN plans: it is left out of the medians.
        rows += [
            _row(f"{tag}: nstlab loss evaluation (closure)", preset, "evaluation", size, deepest, evals[1:], None,
                 precision, floor_times=floor),
            _row(f"{tag}: nstlab step ({result.settings['optimizer']}, {steps} steps)", preset, "step", size,
                 deepest, result.step_times[1:], mem.peak, precision, floor_times=floor, wall=wall - sum(floor)),
        ]
        log(f"  {tag} at {size} px: fp32 floor {median(floor):.3f} s ({median(floor_alone):.3f} s in a row), "
            f"evaluation {median(evals[1:]):.3f} s, step {median(result.step_times[1:]):.3f} s, "
            f"{steps} steps in {wall - sum(floor):.1f} s")
    if preset == "gatys":
        update = lbfgs_update_times(tuple(content.shape), device, config.repeats)
        rows.append(_row(f"gatys: L-BFGS update alone, full history ({optimize.LBFGS_HISTORY} pairs)", preset,
                         "lbfgs_update", size, deepest, update, None))
        log(f"  L-BFGS update with a full history at {size} px: {median(update) * 1000:.1f} ms")
        # The Gram products alone, each pass followed by a floor pass (paired as above).
        products, paired_floor = [], []
        with keep_freed_memory():
            products_pass = gram_products_pass(content, preset, device)
            for _ in range(config.repeats):
                products.append(products_pass())
                paired_floor.append(one_pass())
        name = f"gatys: floor + Gram products, no loss code (/ its own {len(products)} paired floor passes)"
        rows.append(_row(name, preset, "gram_products", size, deepest, products, None, floor_times=paired_floor))
        log(f"  the Gram products alone at {size} px: {median(products):.3f} s, "
            f"{median(products) / median(paired_floor):.3f} x the floor passes between them")
    return rows, results


def run(config: Config, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every measurement of ``config``; returns the JSON-able results (see benchmarks/README.md)."""
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = default_device(config.device)  # a clear error for a device this machine lacks
    # "auto" is measured as what it resolves to here (each precision once).
    config.precisions = list(dict.fromkeys(resolve_precision(p, device) for p in config.precisions))
    torch.manual_seed(0)
    t_start = time.perf_counter()
    results: dict[str, Any] = {"config": asdict(config), "machine": machine_info(device),
                               "load_before": load_average()}
    content, style = load_pair(config.content, config.style, config.size)
    results["image_hw"] = list(content.shape[-2:])
    log(f"nstlab benchmark: {config.content} + {config.style}, {content.shape[-2]}x{content.shape[-1]} px, "
        f"{device}, {torch.get_num_threads()} threads, precisions {config.precisions}, "
        f"load average {results['load_before']}")

    if config.quality_only:
        quality = measure_quality(content, style, config, device, log)
        results.update(rows=[], quality=None, peers={}, precision_quality=quality)
        results.update(load_after=load_average(), total_seconds=time.perf_counter() - t_start)
        return results
    rows: list[dict[str, Any]] = []
    gatys: dict[str, Any] = {}
    for preset in config.presets:
        steps = config.steps if preset == "gatys" else config.preset_steps
        preset_rows, preset_results = measure_preset(content, style, preset, steps, config, device, log)
        rows += preset_rows
        gatys = preset_results if preset == "gatys" else gatys

    with PeakMemory(device) as mem:
        naive = run_naive(content, style, config.steps, device)
    rows.append(_row(f"gatys: naive baseline step (L-BFGS, {config.steps} steps)", "gatys", "baseline",
                     config.size, "pool5", naive["step_times"][1:], mem.peak, wall=naive["wall"]))
    yardstick = naive["model"].yardstick
    target = yardstick(naive["image"])
    log(f"  naive baseline: {median(naive['step_times'][1:]):.3f} s/step, {config.steps} steps in "
        f"{naive['wall']:.1f} s, loss {target:.5g}")
    quality: dict[str, Any] = {"baseline_seconds": naive["wall"], "baseline_steps": config.steps,
                               "baseline_loss": target, "baseline_loss_at_content": yardstick(content.to(device))}
    if "fp32" in gatys:  # the same objective, the same number of steps: a check of the yardstick
        quality.update(nstlab_same_steps_loss=yardstick(gatys["fp32"].image.to(device)),
                       nstlab_loss_at_content=gatys["fp32"].history["total"][0])
    baseline_steady = config.steps * median(naive["step_times"][1:])
    quality.update(baseline_median_seconds=baseline_steady, nstlab={})
    for precision in config.precisions:
        ttq = nstlab_time_to_quality(content, style, target, yardstick, device, config, precision)
        ttq.update(ratio=ttq["seconds"] / naive["wall"] if ttq["reached"] else math.inf,
                   ratio_from_medians=ttq["median_seconds"] / baseline_steady if ttq["reached"] else math.inf)
        quality["nstlab"][precision] = ttq
        log(f"  nstlab [{precision}] time to quality: {ttq['seconds']:.1f} s (steps per scale {ttq['steps']}, "
            f"reached={ttq['reached']}), ratio {ttq['ratio']:.3f}")
    peers = measure_peers(content, style, naive, gatys, config, device, log) if gatys else {}

    if config.big_size > 0:
        big_content, big_style = load_pair(config.content, config.style, config.big_size)
        rows += measure_preset(big_content, big_style, "gatys", config.big_steps, config, device, log)[0]
    if config.quality_steps > 0:
        results["precision_quality"] = measure_quality(content, style, config, device, log)

    results.update(rows=rows, quality=quality, peers=peers, load_after=load_average(),
                   total_seconds=time.perf_counter() - t_start)
    summarise(results)
    return results


def summarise(results: dict[str, Any]) -> None:
    """Add the ratios of the issue: each row / the fp32 floor passes it was paired with (or its preset's fp32
    floor row), and baseline / nstlab step."""
    floors = {(r["preset"], r["size"]): r["seconds"] for r in results["rows"]
              if r["kind"] == "floor" and r["precision"] == "fp32"}
    baseline = next((r for r in results["rows"] if r["kind"] == "baseline"), None)
    for r in results["rows"]:
        floor = median(r["floor_times"]) if "floor_times" in r else floors.get((r["preset"], r["size"]))
        r["vs_floor"] = r["seconds"] / floor if floor else None
        same = baseline is not None and r["kind"] == "step" and (r["preset"], r["size"]) == ("gatys", baseline["size"])
        r["baseline_vs_nstlab"] = baseline["seconds"] / r["seconds"] if same else None


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def table(results: dict[str, Any]) -> str:
    """The results as markdown tables, with the machine above and peers and time to quality below."""
    m, c = results["machine"], results["config"]
    h, w = results["image_hw"]
    lines = [
        f"{m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), {m['device']}"
        + (f" [{m['gpu']}]" if "gpu" in m else "")
        + f", torch {m['torch']}, {m['threads']} threads; load average {results['load_before']} before, "
        f"{results['load_after']} after",
        f"{c['content']} + {c['style']} at {c['size']} px ({h}x{w}), random VGG19 weights; seconds are medians; "
        "/ floor is to the fp32 floor",
        "",
    ]
    if results["rows"]:
        lines += ["| configuration | size | s / step | / floor | baseline / nstlab | peak memory (MiB) |",
                  "|---|---|---:|---:|---:|---:|"]
    for r in results["rows"]:
        mib = None if r["peak_bytes"] is None else r["peak_bytes"] / 2**20
        lines.append(
            f"| {r['name']} | {r['size']} px | {_fmt(r['seconds'], '.3f')} | {_fmt(r['vs_floor'], '.2f')} | "
            f"{_fmt(r['baseline_vs_nstlab'], '.2f')} | {_fmt(mib, '.0f')} |"
        )
    peers = results.get("peers") or {}
    if peers:
        precisions = list(peers["nstlab"])
        lines += [
            "",
            "Per L-BFGS iteration (one loss evaluation and the update), medians of iterations "
            f"2-{peers['iterations']}:",
            "",
            "| implementation | s / iteration | " + " | ".join(f"/ nstlab {p}" for p in precisions) + " |",
            "|---|---:|" + "---:|" * len(precisions),
        ]
        lines += [f"| nstlab, {p} | {t:.3f} |" + " – |" * len(precisions) for p, t in peers["nstlab"].items()]
        for name, peer in peers.items():
            if name not in ("iterations", "nstlab"):
                ratios = " | ".join(f"{peer['peer_vs_nstlab'][p]:.2f}" for p in precisions)
                lines.append(f"| {name} | {peer['seconds']:.3f} | {ratios} |")
    q = results["quality"] or {"nstlab": {}}
    if results["rows"]:
        lines += ["", f"Time to quality: the baseline's {q['baseline_steps']} L-BFGS steps take "
                  f"{q['baseline_seconds']:.1f} s and reach loss {q['baseline_loss']:.5g}; nstlab (gatys, L-BFGS, "
                  f"scales {c['ttq_scales']}):"]
    for precision, n in q["nstlab"].items():
        reached = (f"reaches {n['yardstick']:.5g} in {n['seconds']:.1f} s (steps per scale {n['steps']}): "
                   f"**{n['ratio']:.3f}** of the baseline's time, {n['ratio_from_medians']:.3f} from the median "
                   "step times" if n["reached"] else f"did not reach it within {n['seconds']:.1f} s")
        lines.append(f"- {precision}: {reached}.")
    if "nstlab_same_steps_loss" in q:
        lines.append(f"Same settings ({q['baseline_steps']} L-BFGS steps, one scale, fp32): nstlab's loss "
                     f"{q['nstlab_same_steps_loss']:.5g}, the baseline's {q['baseline_loss']:.5g}; at the content "
                     f"image {q['nstlab_loss_at_content']:.6g} and {q['baseline_loss_at_content']:.6g}.")
    if results.get("precision_quality"):
        lines += ["", f"Quality in reduced precision ({c['quality_steps']} steps from the content image, objective "
                  "evaluated in fp32; distances to the fp32 image):", "",
                  "| preset | run | objective | vs fp32 | mean abs pixel difference | SSIM |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['preset']} | {r['run']} | {r['objective']:.5g} | {r['vs_fp32']:+.2%} | "
                  f"{r['pixel_difference']:.4f} | {r['ssim']:.3f} |" for r in results["precision_quality"]]
    lines += ["", f"Total benchmark time: {results['total_seconds']:.0f} s."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> Config:
    d = Config()
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", type=int, default=d.size, help="long side of the images (px)")
    p.add_argument("--device", default=d.device, help="cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=d.threads, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--content", default=d.content, help="bundled content image")
    p.add_argument("--style", default=d.style, help="bundled style image")
    p.add_argument("--repeats", type=int, default=d.repeats, help="timed floor passes (after 1 warm-up)")
    p.add_argument("--presets", nargs="+", default=d.presets, choices=list(PRESETS))
    p.add_argument("--precisions", nargs="+", default=d.precisions, choices=list(PRECISIONS),
                   help="the network's precisions to measure ('auto': what stylize picks on this machine)")
    p.add_argument("--steps", type=int, default=d.steps,
                   help="L-BFGS steps of the baseline and of nstlab's gatys run (the same settings)")
    p.add_argument("--preset-steps", type=int, default=d.preset_steps, help="steps of the other presets' runs")
    p.add_argument("--ttq-scales", type=float, nargs="+", default=d.ttq_scales,
                   help="nstlab's scales for time to quality")
    p.add_argument("--ttq-coarse-steps", type=int, nargs="*", default=d.ttq_coarse_steps,
                   help="nstlab's steps at each scale but the last")
    p.add_argument("--ttq-max-steps", type=int, default=d.ttq_max_steps, help="nstlab's cap at the final scale")
    p.add_argument("--big-size", type=int, default=d.big_size, help="size of the big-image run (0 skips it)")
    p.add_argument("--big-steps", type=int, default=d.big_steps, help="steps of the big-image run")
    p.add_argument("--peer-steps", type=int, default=d.peer_steps,
                   help="L-BFGS iterations of neural-style-pt (and of the others' medians it is compared with)")
    p.add_argument("--quality-steps", type=int, default=d.quality_steps,
                   help="steps of each preset's quality run in each precision (0 skips them)")
    p.add_argument("--quality-only", action="store_true", help="only the quality runs (with --quality-steps N)")
    p.add_argument("--out", default=None, help="JSON file (default benchmarks/results/<device>_<size>px.json)")
    a = p.parse_args(argv)
    if len(a.ttq_coarse_steps) != len(a.ttq_scales) - 1:
        p.error(f"--ttq-coarse-steps needs {len(a.ttq_scales) - 1} values for scales {a.ttq_scales}")
    if min(a.steps, a.preset_steps, a.big_steps, a.peer_steps) < 2 or a.repeats < 1:
        p.error("--steps, --preset-steps, --big-steps and --peer-steps must be >= 2 (the first is a warm-up), "
                "--repeats >= 1")
    if a.quality_only and a.quality_steps < 1:
        p.error("--quality-only needs --quality-steps N")
    if a.peer_steps > a.steps:
        p.error(f"--peer-steps ({a.peer_steps}) cannot exceed --steps ({a.steps}): nstlab's run gives its medians")
    try:
        default_device(a.device)
    except ValueError as err:
        p.error(str(err))
    return Config(
        size=a.size, device=a.device, threads=a.threads, content=a.content, style=a.style, repeats=a.repeats,
        presets=a.presets, steps=a.steps, preset_steps=a.preset_steps, ttq_scales=a.ttq_scales,
        ttq_coarse_steps=a.ttq_coarse_steps, ttq_max_steps=a.ttq_max_steps, big_size=a.big_size,
        big_steps=a.big_steps, precisions=a.precisions, peer_steps=a.peer_steps, quality_steps=a.quality_steps,
        quality_only=a.quality_only,
        out=a.out,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    results = run(config)
    print("\n" + table(results))
    default = ROOT / "benchmarks" / "results" / f"{config.device.replace(':', '')}_{config.size}px.json"
    out = Path(config.out) if config.out else default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
