"""Notebook 11, fast style transfer — faces layer: one training step written out (:func:`training_step`, the
reference solution of the notebook's exercise), a trained network on held-out photos with its training curves, the
time of one forward pass against an optimisation, and the survey's Fig. 10: every method of the course side by side.
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure

from nstlab import fast, plotting
from nstlab.images import as_image
from nstlab.optimize import stylize
from nstlab.settings import default_device

from .common import course_size, course_steps, run_variants


def stylize_test_images(
    model: fast.TransformerNet, test_images: Sequence[str] = fast.HELD_OUT, size: int | None = None
) -> dict[str, torch.Tensor]:
    """The network's output for each bundled image of ``test_images`` at long side ``size`` (default
    :func:`course_size`). Returns: {title: (1, 3, H, W)}, titled "name (held out)" for fast.HELD_OUT."""
    size = course_size(size)
    return {
        f"{name} (held out)" if name in fast.HELD_OUT else name: fast.stylize_fast(model, name, size)
        for name in test_images
    }


def plot_training(result: fast.FastTrainingResult, outputs: Mapping[str, torch.Tensor]) -> Figure:
    """The network's ``outputs`` {title: (1, 3, H, W)} (e.g. :func:`stylize_test_images`), the style image
    at their long side and the training's loss curves, with the weights footer."""
    panels = list(outputs.items())
    style = result.settings["style"]
    if not style.startswith("tensor("):
        size = max(panels[0][1].shape[-2:]) if panels else course_size(None)
        panels.append((f"style: {os.path.splitext(os.path.basename(style))[0]}", as_image(style, size)))
    return plotting.plot_images_and_losses(panels, result.history, plotting.runs_footer([result]),
                                           f"training ({result.steps} steps)")


def visualize_training(
    style: torch.Tensor | str | os.PathLike,
    style_weight: float = fast.DEFAULT_STYLE_WEIGHT,
    content_weight: float = fast.DEFAULT_CONTENT_WEIGHT,
    tv_weight: float = fast.DEFAULT_TV_WEIGHT,
    test_images: Sequence[str] = fast.HELD_OUT,
    test_size: int | None = None,
    **train_options: Any,
) -> Figure:
    """Train a network (:func:`nstlab.fast.train_fast` with ``train_options``), run it on ``test_images``
    (long side ``test_size``, default :func:`course_size`) and :func:`plot_training` it: the function behind
    the notebook's re-training widget."""
    result = fast.train_fast(
        style, content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight, **train_options
    )
    return plot_training(result, stylize_test_images(result.model, test_images, test_size))


@dataclass
class SpeedComparison:
    """Time to stylise the same image on the same device: optimisation vs one forward pass."""

    optimization_seconds: float
    forward_seconds: float  # median of ``repeats`` passes after one warm-up pass
    steps: int  # optimisation steps
    size_hw: tuple[int, int]
    device: str
    weights_name: str
    optimized_image: torch.Tensor = field(repr=False)
    fast_image: torch.Tensor = field(repr=False)

    @property
    def speedup(self) -> float:
        return self.optimization_seconds / max(self.forward_seconds, 1e-12)

    def table(self) -> str:
        """A small text table of the two timings."""
        h, w = self.size_hw
        return "\n".join(
            [
                f"{h}x{w} px on {self.device}",
                f"{'method':<34}{'seconds':>10}",
                f"{f'optimisation ({self.steps} steps)':<34}{self.optimization_seconds:>10.3f}",
                f"{'feed-forward network (1 pass)':<34}{self.forward_seconds:>10.4f}",
                f"speed-up: {self.speedup:.0f}x",
            ]
        )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare_speed(
    model: fast.TransformerNet,
    content: torch.Tensor | str | os.PathLike,
    style: torch.Tensor | str | os.PathLike,
    size: int | None = None,
    steps: int | None = None,
    device: str | torch.device | None = None,
    weights: str | os.PathLike | None = None,
    repeats: int = 3,
    **stylize_options: Any,
) -> SpeedComparison:
    """Time :func:`nstlab.optimize.stylize` and :func:`nstlab.fast.stylize_fast` on the same image and device.

    Inputs: content/style as for ``stylize``; size: long side (default :func:`course_size`); steps: the
    optimisation's steps (default :func:`course_steps`); stylize_options go to ``stylize``.
    Returns: a :class:`SpeedComparison` (wall-clock seconds, both images).
    """
    size = fast._check_int("compare_speed", "size", course_size(size), 16)
    repeats = fast._check_int("compare_speed", "repeats", repeats, 1)
    device = default_device(device)
    image = as_image(content, size)
    _sync(device)
    began = time.perf_counter()
    steps = course_steps(steps)
    result = stylize(
        image, style, size=size, steps=steps, device=device, weights=weights, progress=False, **stylize_options
    )
    _sync(device)
    optimization_seconds = time.perf_counter() - began
    net = model if next(model.parameters()).device == device else copy.deepcopy(model).to(device)
    fast_image = fast.stylize_fast(net, image)  # warm-up (allocations, kernel choice)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fast_image = fast.stylize_fast(net, image)
        _sync(device)
        times.append(time.perf_counter() - began)
    return SpeedComparison(
        optimization_seconds=optimization_seconds,
        forward_seconds=statistics.median(times),
        steps=len(result.history["total"]),
        size_hw=tuple(image.shape[-2:]),
        device=str(device),
        weights_name=result.weights_name,
        optimized_image=result.image,
        fast_image=fast_image,
    )


# ----------------------------------------------------------------------------- one training step, written out


def training_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], Mapping[str, torch.Tensor]],
) -> Mapping[str, torch.Tensor]:
    """One training step of a feed-forward style network: the reference solution of notebook 11's exercise.

    Clear the stale gradients, stylise the batch, measure the perceptual loss of the outputs against the batch
    itself (the content target is the input photo), back-propagate to the network's weights, update them.
    ``nstlab.fast.train_fast`` does exactly this at every step (in float32; it adds reduced precision, a
    progress bar, checkpoints and a NaN guard).

    Inputs: model: the network (train mode); optimizer: over its parameters; batch: (N, 3, H, W) photos;
    loss_fn(output, batch) -> {"total", ...} (e.g. :class:`nstlab.fast.PerceptualLoss`).
    Returns: the loss terms of this batch, before the update.
    """
    optimizer.zero_grad()
    terms = loss_fn(model(batch), batch)
    terms["total"].backward()
    optimizer.step()
    return terms


def own_training_run(
    step: Callable[..., Mapping[str, torch.Tensor]],
    style: torch.Tensor | str | os.PathLike,
    steps: int = 3,
    size: int = 64,
    batch_size: int = 2,
    style_weight: float = fast.DEFAULT_STYLE_WEIGHT,
    seed: int = 0,
    weights: str | os.PathLike | None = None,
    **network: Any,
) -> list[float]:
    """``steps`` steps of ``step`` (yours, or :func:`training_step`) set up as :func:`nstlab.fast.train_fast` sets up
    its own: the network seeded with ``seed``, Adam at fast.DEFAULT_LR, the same batches, float32.

    Inputs: network: TransformerNet's ``channels``, ``n_residual``; the loss layers ``content_layers``,
    ``style_layers``. Returns: the total loss of every step.
    """
    layers = {k: network.pop(k) for k in ("content_layers", "style_layers") if k in network}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = fast.TransformerNet(**network)
    device = default_device(None)
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=fast.DEFAULT_LR)
    loss_fn = fast.PerceptualLoss(as_image(style), size, style_weight=style_weight, weights=weights, device=device,
                                  **layers)
    sampler = fast.CropSampler(fast.content_paths(), size, batch_size, seed)
    return [float(step(model, optimizer, sampler.batch(k).to(device), loss_fn)["total"].detach()) for k in range(steps)]


# ----------------------------------------------------------------------------- every method side by side

SURVEY_FIG10_VARIANTS: dict[str, dict[str, Any]] = {
    "Gatys et al.": {"preset": "gatys"},
    "Novak & Nikulin": {"preset": "novak"},
    "SSIM-weighted": {"preset": "ssim"},
    "colour preserved (luminance)": {"preset": "gatys", "preserve_color": "luminance"},
}
"""The optimisation methods of Jain & Venkitachalam's Fig. 10 (plus the SSIM-weighted loss of notebook 07), as
``stylize`` options; the feed-forward network is the fifth panel."""


def survey_methods(
    model: fast.TransformerNet,
    content: torch.Tensor | str | os.PathLike = "chelsea_cat",
    style: torch.Tensor | str | os.PathLike = "van_gogh_cafe_terrace_at_night",
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | os.PathLike | None = "auto",
) -> dict[str, Any]:
    """Every method of the course on the same content and style: :data:`SURVEY_FIG10_VARIANTS` with the same size,
    steps (each optimiser's step is one forward and backward pass) and seed, and one pass of ``model``.

    Returns: {method: Result} for the optimisations, and "feed-forward network": the network's (1, 3, H, W) image.
    """
    size = course_size(size)
    image = as_image(content, size)
    results: dict[str, Any] = run_variants(image, style, SURVEY_FIG10_VARIANTS, size, steps, seed, weights)
    results["feed-forward network"] = fast.stylize_fast(model, image)
    return results


def plot_survey_methods(
    content: torch.Tensor | str | os.PathLike, style: torch.Tensor | str | os.PathLike, methods: Mapping[str, Any]
) -> Figure:
    """The survey's Fig. 10 from :func:`survey_methods`' output: content, style, then one panel per method."""
    runs = [r for r in methods.values() if hasattr(r, "history")]
    first = runs[0]
    panels = {"content": as_image(content, first.settings["size"]), "style": as_image(style)}
    panels.update({name: r.image if hasattr(r, "history") else r for name, r in methods.items()})
    return plotting.plot_images(
        panels, size=2.6, footer=plotting.runs_footer(runs),
        suptitle=f"Every method on the same images (the survey's Fig. 10): {len(first.history['total'])} "
                 f"optimisation steps each, {first.settings['size']} px, seed {first.settings['seed']}",
    )
