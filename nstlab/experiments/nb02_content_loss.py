"""Notebook 02, the content loss — faces layer: the optimisation loop over the pixels (:func:`optimize_pixels`, the
reference solution of the notebook's exercise), reconstructing an image from white noise through one layer at a
time (Gatys et al. 2016, Fig. 1), and the layer names of the paper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from matplotlib.figure import Figure

from nstlab import plotting
from nstlab.optimize import Result, stylize
from nstlab.presets import DEFAULT_LR_BY_OPTIMIZER, OPTIMIZERS
from nstlab.vgg import VGG19_LAYERS

from .common import _final, _image, _run_description, course_size, course_steps, plot_runs


RECONSTRUCTION_LAYERS = ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"]
"""Gatys et al.'s content reconstructions (Fig. 1): their conv1_2 ... conv5_2, post-ReLU blobs in Caffe."""


def paper_name(layer: str) -> str:
    """Gatys et al.'s name of a layer: their Caffe VGG19 applies each ReLU in place, so the blob
    "conv4_2" holds the post-ReLU values, nstlab's "relu4_2". Other names are unchanged."""
    if layer not in VGG19_LAYERS:
        raise ValueError(f"paper_name: unknown VGG19 layer {layer!r}")
    return "conv" + layer[len("relu"):] if layer.startswith("relu") else layer


def layer_label(layer: str) -> str:
    """A layer's name for a panel title, with what it is in Gatys et al.'s paper: "relu4_2 (paper: conv4_2)";
    "conv4_2 (pre-ReLU)", since the paper's conv4_2 is post-ReLU and its pre-ReLU values are no paper
    layer; a pool keeps its name alone (the same in both)."""
    paper = paper_name(layer)
    if paper != layer:
        return f"{layer} (paper: {paper})"
    return f"{layer} (pre-ReLU)" if layer.startswith("conv") else layer


def optimize_pixels(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    steps: int,
    optimizer: str = "lbfgs",
) -> tuple[torch.Tensor, list[float]]:
    """Minimise ``loss_fn(x)`` over the pixels x from ``x0``: the reference solution of notebook 02's loop.

    The pixels are the only parameter (the network in ``loss_fn`` stays frozen). The optimisers are ``stylize``'s:
    L-BFGS with one evaluation per step, 100 stored pairs, step 1 and zero tolerances, or Adam with learning rate
    0.02; the pixels are left free during the run. ``optimizer.step`` takes a closure because L-BFGS may evaluate
    the loss more than once per step (its line search does; with ``max_iter=1`` and no line search it is once).

    Inputs: loss_fn(x (N, 3, H, W)) -> scalar tensor; x0: the start (not changed); steps: optimiser steps;
    optimizer: "lbfgs" or "adam".
    Returns: (x after the last step, detached and clamped to [0, 1]; the loss of every step).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimize_pixels: optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    x = x0.detach().clone().requires_grad_(True)
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=100, tolerance_grad=0, tolerance_change=0)
    else:
        opt = torch.optim.Adam([x], lr=DEFAULT_LR_BY_OPTIMIZER["adam"])
    history: list[float] = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        history.append(float(loss.detach()))
        return loss

    for _ in range(steps):
        opt.step(closure)
    return x.detach().clamp(0, 1), history


def plot_pixel_loops(
    image: torch.Tensor, runs: Mapping[str, tuple[torch.Tensor, Sequence[float]]], reference: Result
) -> Figure:
    """The target ``image``, the images of ``runs`` ({name: (image, losses)}, e.g. your loop with each optimiser)
    and of ``stylize``'s ``reference`` run, with every loss curve (the reference's total)."""
    panels = [("original", image)] + [(f"yours, {name}", img) for name, (img, _) in runs.items()]
    panels.append(("stylize", reference.image))
    curves = {f"yours, {name}": list(history) for name, (_, history) in runs.items()}
    curves["stylize"] = reference.history["total"]
    return plotting.plot_images_and_losses(panels, curves, plotting.runs_footer([reference]),
                                           "the loss of every step")


def content_reconstructions(
    image: Any = "tower_bridge",
    layers: Sequence[str] = tuple(RECONSTRUCTION_LAYERS),
    size: int | None = None,
    steps: int | None = None,
    optimizer: str = "lbfgs",
    tv_weight: float = 0.0,
    weights: str | None = "auto",
    seed: int = 0,
) -> dict[str, Result]:
    """Reconstruct ``image`` from white noise through each layer alone (content loss only).

    Inputs: image: tensor, path, bundled name or ImagePicker; layers: one run per layer; size: long
    side (default :func:`course_size`); steps: per run (default :func:`course_steps`); optimizer: "lbfgs"
    (as Gatys) or "adam"; tv_weight: 0 as in the paper; seed: the same noise for every run.
    Returns: {layer: Result}, in the order of ``layers``.
    """
    size = course_size(size)
    steps = course_steps(steps)
    target = _image(image, size)
    return {
        layer: stylize(target, None, content_layers=[layer], init="noise", optimizer=optimizer, steps=steps,
                       size=size, tv_weight=tv_weight, weights=weights, seed=seed, progress=False)
        for layer in layers
    }


def plot_content_reconstructions(image: Any, results: Mapping[str, Result]) -> Figure:
    """The image and its reconstructions {layer: Result} (from :func:`content_reconstructions`),
    titled with :func:`layer_label` and the final relative error; curves below."""
    titles = {layer: f"{layer_label(layer)}\nerror {_final(r, 'content'):.3g}" for layer, r in results.items()}
    first = next(iter(results.values()))
    return plot_runs(
        results, ("content",), {"original": _image(image, first.settings["size"])}, titles, fontsize=9,
        suptitle=f"Content reconstructions from white noise, {_run_description(results)}; error Σ(F−P)² / ΣP²",
    )


def visualize_content_reconstructions(
    image: Any = "tower_bridge",
    layers: Sequence[str] = tuple(RECONSTRUCTION_LAYERS),
    size: int | None = None,
    steps: int | None = None,
    optimizer: str = "lbfgs",
    weights: str | None = "auto",
    seed: int = 0,
) -> Figure:
    """Gatys et al. Fig. 1 (content): the image reconstructed from noise through each layer, and the curves.

    Inputs: as :func:`content_reconstructions`. Returns: the Figure.
    """
    results = content_reconstructions(image, layers, size, steps, optimizer, weights=weights, seed=seed)
    return plot_content_reconstructions(image, results)


def visualize_content_reconstruction(
    image: Any = "tower_bridge",
    layer: str = "relu4_2",
    steps: int | None = None,
    optimizer: str = "lbfgs",
    size: int | None = None,
    weights: str | None = "auto",
    seed: int = 0,
) -> Figure:
    """One content reconstruction (the widget of notebook 02): the image, the result, the curve."""
    return visualize_content_reconstructions(image, [layer], size, steps, optimizer, weights, seed)
