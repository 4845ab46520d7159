"""Notebook 00, setup and images — faces layer: the environment, the bundled images, preprocessing and ImageNet
normalisation (the weights banner at the top of every notebook is common.weights_banner).
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch
import torchvision
from matplotlib.figure import Figure

from nstlab import __version__ as nstlab_version
from nstlab import plotting
from nstlab.images import list_images, load_image, resize, sample_image_path
from nstlab.settings import MODE_NOTES, default_device, mode_and_source
from nstlab.vgg import IMAGENET_MEAN, IMAGENET_STD, VGGFeatures, imagenet_normalize

from .common import Table, _image, course_size


def environment_table(weights: str | None = "auto") -> Table:
    """Versions, device, the course's mode (real, quick or smoke) and the weights in use, a row each (a Table)."""
    vgg = VGGFeatures(["relu1_1"], weights=weights, device="cpu")
    mode, source = mode_and_source()
    rows = [
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("nstlab", nstlab_version),
        ("device (nstlab.default_device)", str(default_device())),
        ("CPU threads (torch)", str(torch.get_num_threads())),
        ("mode (nstlab.set_mode, NSTLAB_MODE)", f"{mode}, from {source}: {MODE_NOTES[mode]}"),
        ("NSTLAB_WEIGHTS", os.environ.get("NSTLAB_WEIGHTS", "") or "(not set)"),
        ("VGG19 weights in use", vgg.label),
    ]
    return Table(["item", "value"], [{"item": k, "value": v} for k, v in rows])


def _wrap_name(name: str, width: int = 22) -> str:
    """Break a long image name at underscores so it fits under a small panel."""
    lines, current = [], ""
    for part in name.split("_"):
        piece = part if not current else f"_{part}"
        if current and len(current) + len(piece) > width:
            lines.append(current + "_")
            current = part
        else:
            current += piece
    return "\n".join(lines + [current])


def visualize_bundled_images(kind: str = "content", size: int | None = None, ncols: int = 5) -> Figure:
    """Every bundled ``kind`` ("content" or "style") image in a grid, titled with its name and stored size.

    Inputs: size: long side shown (default :func:`course_size`); ncols: panels per row.
    Returns: the Figure.
    """
    size = course_size(size)
    images, titles = [], []
    for name in list_images(kind):
        full = load_image(sample_image_path(name))
        h, w = full.shape[-2:]
        images.append(resize(full, size) if max(h, w) > size else full)
        titles.append(f"{_wrap_name(name)}\n{w}×{h} px")
    return plotting.plot_images(
        images, titles=titles, ncols=ncols, size=2.6, suptitle=f"The {len(images)} bundled {kind} images"
    )


def visualize_preprocessing(image: Any = "tower_bridge", size: int | None = None) -> Figure:
    """The image as stored and after ``resize`` to long side ``size`` (aspect kept), drawn to scale.

    Inputs: image: tensor, path or bundled name; size: default :func:`course_size`.
    Returns: the Figure; axes are in pixels and titles give the tensor shapes.
    """
    size = course_size(size)
    full = _image(image)
    small = resize(full, size)
    widths = [full.shape[-1], small.shape[-1]]  # panel widths in proportion: both drawn to the same scale
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": widths})
    for ax, img, what in zip(axes, (full, small), ("as stored", f"resize(image, {size})")):
        ax.imshow(img[0].permute(1, 2, 0).numpy(), interpolation="nearest")
        h, w = img.shape[-2:]
        ax.set_title(f"{what}\nshape {tuple(img.shape)}, aspect {w / h:.3f}", fontsize=10)
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
    fig.suptitle("Preprocessing: float32 RGB in [0, 1], long side resized with antialiasing, aspect kept")
    return fig


def visualize_imagenet_normalization(image: Any = "tower_bridge", size: int | None = None, bins: int = 64) -> Figure:
    """The image and its per-channel pixel histograms before and after ImageNet normalisation.

    Inputs: image: tensor, path or bundled name; size: long side (default :func:`course_size`).
    Returns: the Figure (dashed lines: the ImageNet channel means, which normalisation moves to 0).
    """
    x = _image(image, course_size(size))
    z = imagenet_normalize(x)
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1.3, 1.3]})
    axes[0].imshow(x[0].permute(1, 2, 0).numpy())
    axes[0].set_title(f"input {tuple(x.shape)}", fontsize=10)
    axes[0].axis("off")
    colours = ("tab:red", "tab:green", "tab:blue")
    for ax, data, centre, what in (
        (axes[1], x, IMAGENET_MEAN, "before: pixel value in [0, 1]"),
        (axes[2], z, (0.0, 0.0, 0.0), "after: (x − mean) / std"),
    ):
        for c, (colour, channel) in enumerate(zip(colours, "RGB")):
            values = data[0, c].flatten().numpy()
            ax.hist(values, bins=bins, histtype="step", color=colour, linewidth=1.4,
                    label=f"{channel}: mean {values.mean():.2f}, std {values.std():.2f}")
            ax.axvline(centre[c], color=colour, linestyle="--", linewidth=0.9)
        ax.set_title(what, fontsize=10)
        ax.set_xlabel("value")
        ax.set_ylabel("pixels")
        ax.legend(fontsize=8)
    means = ", ".join(f"{m:.3f}" for m in IMAGENET_MEAN)
    stds = ", ".join(f"{s:.3f}" for s in IMAGENET_STD)
    fig.suptitle(f"ImageNet normalisation inside VGGFeatures: mean ({means}), std ({stds}) for R, G, B")
    return fig
