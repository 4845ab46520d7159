"""Notebook 11, fast style transfer — faces layer: a trained network on held-out photos with its
training curves, and the time of one forward pass against an optimisation.
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure

from nstlab import fast, plotting
from nstlab.images import as_image
from nstlab.optimize import stylize
from nstlab.settings import default_device

from .common import course_size, course_steps


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
