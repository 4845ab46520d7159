"""The course's experiments as plain functions — faces layer: each notebook and its widget call these, and so
do the tests.

Each ``visualize_…`` function runs one experiment at the given settings and returns a matplotlib Figure
(or a small table); the notebooks' widget cells wrap them with :func:`nstlab.widgets.rerun`.
"""

from __future__ import annotations

import copy
import hashlib
import html
import math
import os
import platform
import statistics
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib.colors
import matplotlib.ticker
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torchvision.transforms.functional import gaussian_blur

from nstlab import __version__ as nstlab_version
from nstlab import color, fast, losses, plotting
from nstlab import vgg as _vgg
from nstlab.images import as_image, list_images, load_image, resize, sample_image_path
from nstlab.optimize import PRESETS, Result, resolve_options, stylize
from nstlab.plotting import MAX_FIGURE_WIDTH, draw_image, image_array, image_rows_figure
from nstlab.settings import default_device, is_smoke, smoke_or
from nstlab.ssim import gaussian_window, local_statistics, ssim
from nstlab.vgg import (
    GATYS_STYLE_LAYERS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    RELU_LAYERS,
    VGG19_LAYERS,
    VGGFeatures,
    imagenet_normalize,
    vgg19_features,
)

# --- notebooks 00-03: images, VGG features, content loss, Gram matrices ---------------------------------

RECONSTRUCTION_LAYERS = ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"]
"""Gatys et al.'s content reconstructions (Fig. 1): their conv1_2 ... conv5_2, post-ReLU blobs in Caffe."""

TEXTURE_LAYERS = GATYS_STYLE_LAYERS
"""Gatys et al.'s style layers: their conv1_1 ... conv5_1 (post-ReLU, as above)."""

GRAM_CONVENTIONS = ("none", "1/(HW)", "1/(CHW)", "Gatys E_l")
"""The style-loss conventions of the course's sources compared in notebook 03 (see :func:`style_loss_conventions`)."""


@dataclass(repr=False)
class Table:
    """A small table for the notebooks: HTML in Jupyter, aligned plain text in ``print`` and elsewhere.

    ``rows`` hold the raw values (numbers stay numbers, so code and tests can read them); floats
    are shown with ``formats[column]`` if given, else ``floatfmt``. A row may leave a column out.
    ``column(name)`` returns one column's values.
    """

    columns: list[str]
    rows: list[dict[str, Any]]
    title: str | None = None
    floatfmt: str = ".3g"
    formats: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> list[Any]:
        """The values of one column, top to bottom ("" where a row leaves it out)."""
        if name not in self.columns:
            raise KeyError(f"Table has no column {name!r}; columns: {self.columns}")
        return [row.get(name, "") for row in self.rows]

    def _cell(self, row: dict[str, Any], column: str) -> str:
        value = row.get(column, "")
        return format(value, self.formats.get(column, self.floatfmt)) if isinstance(value, float) else str(value)

    def __str__(self) -> str:
        cells = [[self._cell(row, c) for c in self.columns] for row in self.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        numeric = [all(isinstance(row[c], (int, float)) for row in self.rows if c in row) for c in self.columns]

        def line(values: list[str]) -> str:
            return "  ".join(
                v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric)
            ).rstrip()

        head = [self.title] if self.title else []
        return "\n".join(head + [line(self.columns), line(["-" * w for w in widths])] + [line(r) for r in cells])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(self._cell(row, c))}</td>" for c in self.columns) + "</tr>"
            for row in self.rows
        )
        # the title above the table, not a <caption>: a caption wraps to the width of a narrow table
        title = f"<div style='font-weight:bold;margin:4px 0'>{esc(self.title)}</div>" if self.title else ""
        return f"<div>{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


@dataclass(frozen=True)
class Banner:
    """A line that must not be missed (e.g. the weights in use): a coloured box in Jupyter, framed text elsewhere."""

    text: str
    detail: str = ""
    warning: bool = False

    def __str__(self) -> str:
        body = [self.text.upper()] + textwrap.wrap(self.detail, 88)
        width = max(len(line) for line in body) + 4
        frame = ("!" if self.warning else "=") * width
        return "\n".join([frame] + [f"  {line}" for line in body] + [frame])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#b00020" if self.warning else "#1b5e20"
        background = "#fdecea" if self.warning else "#e8f5e9"
        return (
            f"<div style='border:3px solid {colour};background:{background};padding:10px 14px;margin:6px 0'>"
            f"<div style='font-size:20px;font-weight:bold;color:{colour}'>{html.escape(self.text)}</div>"
            f"<div style='margin-top:4px'>{html.escape(self.detail)}</div></div>"
        )


def _image(image: Any, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """A tensor, a path, a bundled image name or a ``widgets.ImagePicker`` -> (1, 3, H, W) in [0, 1].

    ``size`` (long side, or (H, W)) resizes the result as :func:`nstlab.images.resize` does.
    """
    picker = getattr(image, "image", None)
    if callable(picker) and not isinstance(image, torch.Tensor):  # a widgets.ImagePicker
        image = picker(size if isinstance(size, int) else None)
    return as_image(image, size)


# notebook 00: setup and images


def weights_banner(weights: str | None = "auto") -> Banner:
    """Which VGG19 weights the course will use, as a :class:`Banner` (a warning box for random weights)."""
    vgg = VGGFeatures(["relu1_1"], weights=weights, device="cpu")
    if vgg.weights_name == "random":
        detail = (
            "An untrained, seeded VGG19 is in use: every picture of the course then shows colour and "
            "texture transfer only, not what the ImageNet-trained network gives. For the real thing put "
            "the ImageNet file where nstlab.vgg.imagenet_checkpoint_path() says and unset NSTLAB_WEIGHTS."
        )
        return Banner(vgg.label, detail, warning=True)
    if vgg.weights_name == "imagenet":
        return Banner(vgg.label, "VGG19 trained on ImageNet (torchvision IMAGENET1K_V1), as in the papers.")
    return Banner(vgg.label, f"VGG19 weights loaded from {vgg.weights_name}.")


def environment_table(weights: str | None = "auto") -> Table:
    """Versions, device, smoke mode and weights in use, one row each (a :class:`Table`)."""
    vgg = VGGFeatures(["relu1_1"], weights=weights, device="cpu")
    smoke = "ON (NSTLAB_SMOKE=1: tiny sizes, few steps)" if is_smoke() else "off (real sizes and steps)"
    rows = [
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("nstlab", nstlab_version),
        ("device (nstlab.default_device)", str(default_device())),
        ("CPU threads (torch)", str(torch.get_num_threads())),
        ("smoke mode", smoke),
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

    Inputs: size: long side shown (default smoke_or(256, 96)); ncols: panels per row.
    Returns: the Figure.
    """
    size = size or smoke_or(256, 96)
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

    Inputs: image: tensor, path or bundled name; size: default smoke_or(256, 64).
    Returns: the Figure; axes are in pixels and titles give the tensor shapes.
    """
    size = size or smoke_or(256, 64)
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

    Inputs: image: tensor, path or bundled name; size: long side (default smoke_or(256, 64)).
    Returns: the Figure (dashed lines: the ImageNet channel means, which normalisation moves to 0).
    """
    x = _image(image, size or smoke_or(256, 64))
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


# notebook 01: VGG19 features


def receptive_fields(features: torch.nn.Sequential | None = None) -> dict[str, tuple[int, int]]:
    """Receptive field and stride (in input pixels) of every VGG19 module, from kernel sizes and strides.

    A module with kernel k and stride s grows the receptive field r by (k - 1) * j and multiplies the
    stride j ("jump") by s; the input has r = j = 1. Padding does not change r.
    Inputs: features: a VGG19 ``features`` stack (default: the untrained one; the geometry is the same).
    Returns: {layer: (r, j)} for the 37 names of ``VGG19_LAYERS``.
    """
    if features is None:
        features, _ = vgg19_features("random")
    r, j = 1, 1
    found = {}
    for name, module in zip(VGG19_LAYERS, features):
        kernel = getattr(module, "kernel_size", 1)
        stride = getattr(module, "stride", 1)
        k = kernel[0] if isinstance(kernel, tuple) else kernel
        s = stride[0] if isinstance(stride, tuple) else stride
        r, j = r + (k - 1) * j, j * s
        found[name] = (r, j)
    return found


def vgg_layer_table(size: int | tuple[int, int] = 224, weights: str | None = "auto") -> Table:
    """The 37 modules of VGG19's ``features`` for an input of ``size`` (long side, or (H, W)).

    Every column is computed by running an input of that size through the network: name, type,
    output channels, output H×W, values per image (C·H·W), receptive field and parameters.
    Returns: a :class:`Table` with one row per module.
    """
    features, _ = vgg19_features(weights)
    h, w = (size, size) if isinstance(size, int) else size
    fields = receptive_fields(features)
    x = torch.zeros(1, 3, h, w)
    rows = []
    with torch.no_grad():
        for index, (name, module) in enumerate(zip(VGG19_LAYERS, features)):
            x = module(x)
            rows.append({
                "#": index,
                "name": name,
                "type": type(module).__name__,
                "channels": x.shape[1],
                "H×W": f"{x.shape[2]}×{x.shape[3]}",
                "values C·H·W": x.shape[1] * x.shape[2] * x.shape[3],
                "receptive field (px)": fields[name][0],
                "stride (px)": fields[name][1],
                "parameters": sum(p.numel() for p in module.parameters()),
            })
    return Table(list(rows[0]), rows, title=f"VGG19 features for a 1×3×{h}×{w} input")


def plot_layer_geometry(image: Any = "tower_bridge", size: int | None = None) -> Figure:
    """How VGG19 trades space for channels, and how far each unit sees.

    Left: channels and spatial positions H·W after every ReLU and pool (log scale). Middle: receptive
    field and stride. Right: the image with the receptive field of one unit of relu1_1 ... relu5_1.
    Inputs: image: tensor, path or bundled name; size: long side (default smoke_or(256, 64)).
    Returns: the Figure.
    """
    x = _image(image, size or smoke_or(256, 64))
    h, w = x.shape[-2:]
    table = vgg_layer_table((h, w), weights="random")  # geometry only: the same for any weights
    rows = [r for r in table.rows if not r["name"].startswith("conv")]
    names = [r["name"] for r in rows]
    positions = [int(np.prod([int(v) for v in r["H×W"].split("×")])) for r in rows]
    fig = Figure(figsize=(MAX_FIGURE_WIDTH, 5.0), layout="constrained")
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1]})
    idx = np.arange(len(rows))
    axes[0].plot(idx, [r["channels"] for r in rows], "o-", label="channels C")
    axes[0].plot(idx, positions, "s-", label="positions H·W")
    axes[0].plot(idx, [r["values C·H·W"] for r in rows], "^--", label="values C·H·W", alpha=0.7)
    axes[0].set_yscale("log", base=2)
    axes[0].set_title(f"channels up, positions down ({h}×{w} input)", fontsize=10)
    axes[1].plot(idx, [r["receptive field (px)"] for r in rows], "o-", color="tab:purple", label="receptive field")
    axes[1].plot(idx, [r["stride (px)"] for r in rows], "s-", color="tab:grey", label="stride between units")
    axes[1].axhline(max(h, w), color="black", linestyle=":", linewidth=1, label=f"image long side ({max(h, w)} px)")
    axes[1].set_yscale("log", base=2)
    axes[1].set_title("what one unit sees (px)", fontsize=10)
    for ax in axes[:2]:
        ax.set_xticks(idx, names, rotation=90, fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[2].imshow(x[0].permute(1, 2, 0).numpy())
    fields = receptive_fields(vgg19_features("random")[0])
    colours = ("tab:red", "tab:orange", "yellow", "tab:green", "tab:cyan")
    for layer, colour in zip(TEXTURE_LAYERS, colours):
        r = fields[layer][0]
        axes[2].add_patch(Rectangle((w / 2 - r / 2, h / 2 - r / 2), r, r, fill=False, edgecolor=colour,
                                    linewidth=2, label=f"{layer}: {r} px"))
    axes[2].set_xlim(-0.5, w - 0.5)
    axes[2].set_ylim(h - 0.5, -0.5)
    # below the image, not on it: a legend inside would hide the corner it sits in
    axes[2].legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.03), ncols=2, frameon=False)
    axes[2].set_title("receptive field of one unit\n(centred, clipped to the image)", fontsize=10)
    axes[2].axis("off")
    return fig


def activation_table(
    image: Any = "tower_bridge",
    layers: Sequence[str] = tuple(RELU_LAYERS),
    size: int | None = None,
    shift: int = 4,
    weights: str | None = "auto",
) -> Table:
    """Statistics of the activations of ``image`` at each layer: what each depth keeps.

    Columns: channels, H×W, mean activation, zeros (% of values exactly 0 after the ReLU), dead
    channels (% of channels all 0), and "change under a shift": the relative change
    ||F(x') - F(x)|| / ||F(x)|| when the image is moved by ``shift`` pixels (x' = x moved left,
    both cropped to the same width). Shallow maps move with the image; deep ones barely change.
    The other columns describe the left crop x (H×W: its feature map's size).
    Returns: a :class:`Table`, one row per layer; its title names the crops and the weights.
    """
    x = _image(image, size or smoke_or(256, 64))
    if not 0 < shift < x.shape[-1] // 2:
        raise ValueError(f"activation_table: shift must be in (0, {x.shape[-1] // 2}), got {shift}")
    vgg = VGGFeatures(list(layers), weights=weights)
    with torch.no_grad():
        a = vgg(x[..., :, :-shift].to(vgg.device))
        b = vgg(x[..., :, shift:].to(vgg.device))
    rows = []
    for name in layers:
        f, g = a[name][0].cpu(), b[name][0].cpu()
        rows.append({
            "layer": name,
            "channels": f.shape[0],
            "H×W": f"{f.shape[1]}×{f.shape[2]}",
            "mean activation": float(f.mean()),
            "zeros (%)": float((f == 0).double().mean() * 100),
            "dead channels (%)": float((f.flatten(1).amax(dim=1) == 0).double().mean() * 100),
            f"change under a {shift}-px shift (%)": float((g - f).norm() / f.norm().clamp_min(1e-12) * 100),
        })
    h, w = x.shape[-2:]
    title = f"activations of two {h}×{w - shift} crops of a {h}×{w} image, {shift} px apart — {vgg.label}"
    percent = {c: ".1f" for c in rows[0] if c.endswith("(%)")}
    return Table(list(rows[0]), rows, title=title, formats=percent)


# notebooks 02-03: reconstructions from white noise


def paper_name(layer: str) -> str:
    """Gatys et al.'s name of a layer: their Caffe VGG19 applies each ReLU in place, so the blob
    "conv4_2" holds the post-ReLU values, nstlab's "relu4_2". Other names are unchanged."""
    if layer not in VGG19_LAYERS:
        raise ValueError(f"paper_name: unknown VGG19 layer {layer!r}")
    return "conv" + layer[len("relu"):] if layer.startswith("relu") else layer


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
    side (default smoke_or(256, 64)); steps: per run (default smoke_or(200, 5)); optimizer: "lbfgs"
    (as Gatys) or "adam"; tv_weight: 0 as in the paper; seed: the same noise for every run.
    Returns: {layer: Result}, in the order of ``layers``.
    """
    size = size or smoke_or(256, 64)
    steps = steps or smoke_or(200, 5)
    target = _image(image, size)
    return {
        layer: stylize(target, None, content_layers=[layer], init="noise", optimizer=optimizer, steps=steps,
                       size=size, tv_weight=tv_weight, weights=weights, seed=seed, progress=False)
        for layer in layers
    }


def texture_syntheses(
    style: Any = "van_gogh_church_at_auvers",
    layer_sets: Mapping[str, Sequence[str]] | None = None,
    size: int | None = None,
    steps: int | None = None,
    optimizer: str = "lbfgs",
    tv_weight: float = 0.0,
    weights: str | None = "auto",
    seed: int = 0,
) -> dict[str, Result]:
    """Synthesise a texture from white noise matching the Gram matrices of ``style`` (style loss only).

    Inputs: style: tensor, path, bundled name or ImagePicker; layer_sets: {name: style layers}, one
    run each (default: each of relu1_1 ... relu5_1 alone, then all five); size: long side of the
    texture (default smoke_or(256, 64); aspect of the style image); steps: per run (default
    smoke_or(200, 5)); optimizer: "lbfgs" or "adam"; seed: the same noise for every run.
    Returns: {name: Result}, in the order of ``layer_sets``.
    """
    size = size or smoke_or(256, 64)
    steps = steps or smoke_or(200, 5)
    if layer_sets is None:
        layer_sets = {**{layer: [layer] for layer in TEXTURE_LAYERS}, "all five": list(TEXTURE_LAYERS)}
    source = _image(style, size)
    return {
        name: stylize(None, source, style_layers=list(layers), init="noise", optimizer=optimizer, steps=steps,
                      size=size, tv_weight=tv_weight, weights=weights, seed=seed, progress=False)
        for name, layers in layer_sets.items()
    }


def plot_reconstruction_grid(
    reference: torch.Tensor,
    results: Mapping[str, Result],
    term: str,
    reference_title: str = "original",
    titles: Mapping[str, str] | None = None,
    suptitle: str | None = None,
) -> Figure:
    """The reference image and one result per run (in rows, :func:`image_rows_figure`), their ``term``
    loss curves below.

    Inputs: reference: (1, 3, H, W); results: {name: Result}; term: "content" or "style" (the curve
    drawn, from ``Result.history``); titles: panel titles per name (default: the name).
    Returns: the Figure, at most MAX_FIGURE_WIDTH wide, with one legend under the curves and the weights footer.
    """
    if not results:
        raise ValueError("plot_reconstruction_grid: no results given")
    panels = [(reference_title, reference)] + [
        ((titles or {}).get(name, name), result.image) for name, result in results.items()
    ]
    fig, _, below = image_rows_figure(panels, below=LOSS_PLOT_HEIGHT, fontsize=9, suptitle=suptitle,
                                      footer=_footer(results))
    curves = below.subplots()
    for name, result in results.items():
        values = np.asarray(result.history[term], dtype=float)
        curves.plot(np.arange(len(values)), values, label=name, **plotting.curve_markers(len(values)))
    curves.set_yscale("log")
    plotting.step_axis(curves)
    relative = "Σ(F−P)² / ΣP²" if term == "content" else "Σₗ wₗ Σ(G−A)² / ΣA²"
    curves.set_ylabel(f"{term} loss ({relative})", fontsize=9)
    curves.grid(alpha=0.3)
    _legend_below(below, curves)
    return fig


def _final(result: Result, term: str) -> float:
    return float(result.history[term][-1])


def _run_description(results: Mapping[str, Result]) -> str:
    """E.g. "200 lbfgs steps, 256 px" from the first result's history and settings."""
    first = next(iter(results.values()))
    return f"{len(first.history['total'])} {first.settings['optimizer']} steps, {first.settings['size']} px"


def layer_label(layer: str) -> str:
    """A layer's name for a panel title, with what it is in Gatys et al.'s paper: "relu4_2 (paper: conv4_2)";
    "conv4_2 (pre-ReLU)", since the paper's conv4_2 is post-ReLU and its pre-ReLU values are no paper
    layer; a pool keeps its name alone (the same in both)."""
    paper = paper_name(layer)
    if paper != layer:
        return f"{layer} (paper: {paper})"
    return f"{layer} (pre-ReLU)" if layer.startswith("conv") else layer


def plot_content_reconstructions(image: Any, results: Mapping[str, Result]) -> Figure:
    """The image and its reconstructions {layer: Result} (from :func:`content_reconstructions`),
    titled with :func:`layer_label` and the final relative error; curves below."""
    titles = {layer: f"{layer_label(layer)}\nerror {_final(r, 'content'):.3g}" for layer, r in results.items()}
    first = next(iter(results.values()))
    return plot_reconstruction_grid(
        _image(image, first.settings["size"]), results, "content", titles=titles,
        suptitle=f"Content reconstructions from white noise, {_run_description(results)}",
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


def plot_texture_syntheses(style: Any, results: Mapping[str, Result]) -> Figure:
    """The style image and the textures {name: Result} (from :func:`texture_syntheses`), titled with
    the layer set and the final relative style error; curves below."""
    titles = {name: f"{name}\nerror {_final(r, 'style'):.3g}" for name, r in results.items()}
    first = next(iter(results.values()))
    return plot_reconstruction_grid(
        _image(style, first.settings["size"]), results, "style", reference_title="style image", titles=titles,
        suptitle=f"Textures from white noise (Gram matrices only), {_run_description(results)}",
    )


def visualize_texture_syntheses(
    style: Any = "van_gogh_church_at_auvers",
    layer_sets: Mapping[str, Sequence[str]] | None = None,
    size: int | None = None,
    steps: int | None = None,
    optimizer: str = "lbfgs",
    weights: str | None = "auto",
    seed: int = 0,
) -> Figure:
    """Gatys et al. Fig. 1 (style): textures synthesised from noise with each layer set, and the curves.

    Inputs: as :func:`texture_syntheses`. Returns: the Figure.
    """
    results = texture_syntheses(style, layer_sets, size, steps, optimizer, weights=weights, seed=seed)
    return plot_texture_syntheses(style, results)


def visualize_texture_synthesis(
    style: Any = "van_gogh_church_at_auvers",
    layers: Sequence[str] = tuple(TEXTURE_LAYERS),
    steps: int | None = None,
    optimizer: str = "lbfgs",
    size: int | None = None,
    weights: str | None = "auto",
    seed: int = 0,
) -> Figure:
    """One texture synthesis with the chosen style layers (the widget of notebook 03)."""
    layers = list(layers)
    if not layers:
        raise ValueError("visualize_texture_synthesis: choose at least one style layer")
    return visualize_texture_syntheses(style, {" + ".join(layers): layers}, size, steps, optimizer, weights, seed)


# notebook 03: Gram matrix normalisations


def style_loss_conventions(
    x: Any = "noise",
    style: Any = "van_gogh_church_at_auvers",
    layers: Sequence[str] = tuple(TEXTURE_LAYERS),
    size: int | None = None,
    weights: str | None = "auto",
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """The same per-layer style loss between ``x`` and ``style`` under the sources' conventions.

    - "none": sum (G - A)^2 with G = F F^T (the course notes' formula, the SSIM blog);
    - "1/(HW)": G divided by the number of positions M = H W first;
    - "1/(CHW)": G divided by N M (C = N channels; the TF course notes' code);
    - "Gatys E_l": 1/(4 N^2 M^2) sum (G - A)^2 (Gatys et al.; the intro notes), = "1/(CHW)" / 4.
    Inputs: x: an image (tensor, path, name) or "noise" (seeded uniform noise of the style's shape);
    style: the style image; size: long side of both (default smoke_or(256, 64)).
    Returns: {convention: {layer: loss}} with the conventions of ``GRAM_CONVENTIONS``.
    """
    size = size or smoke_or(256, 64)
    target = _image(style, size)
    if isinstance(x, str) and x == "noise":
        image = torch.rand(target.shape, generator=torch.Generator().manual_seed(seed))
    else:
        image = _image(x, tuple(target.shape[-2:]))
    vgg = VGGFeatures(list(layers), weights=weights)
    with torch.no_grad():
        fx, fs = vgg(image.to(vgg.device)), vgg(target.to(vgg.device))
    table: dict[str, dict[str, float]] = {name: {} for name in GRAM_CONVENTIONS}
    for layer in layers:
        f, a = fx[layer].double(), fs[layer].double()  # float64: raw sums reach 1e15 and more
        m = f.shape[-2] * f.shape[-1]
        for name, normalize in (("none", "none"), ("1/(HW)", "hw"), ("1/(CHW)", "chw")):
            diff = losses.gram_matrix(f, normalize) - losses.gram_matrix(a, normalize)
            table[name][layer] = float(diff.pow(2).sum())
        table["Gatys E_l"][layer] = float(losses.style_layer_loss(losses.gram_matrix(f), losses.gram_matrix(a), m))
    return table


def gram_convention_table(
    x: Any = "noise",
    style: Any = "van_gogh_church_at_auvers",
    layers: Sequence[str] = tuple(TEXTURE_LAYERS),
    size: int | None = None,
    weights: str | None = "auto",
    seed: int = 0,
) -> Table:
    """:func:`style_loss_conventions` as a table: per layer N_l, M_l, and each convention's loss
    with the layer's share (%) of the total over the layers (uniform weights)."""
    size = size or smoke_or(256, 64)
    values = style_loss_conventions(x, style, layers, size, weights, seed)
    target = _image(style, size)
    shapes = {}
    with torch.no_grad():
        for layer, f in VGGFeatures(list(layers), weights="random", device="cpu")(target).items():
            shapes[layer] = (f.shape[1], f.shape[2] * f.shape[3])  # geometry only
    totals = {name: sum(v.values()) for name, v in values.items()}
    rows = []
    for layer in layers:
        row: dict[str, Any] = {"layer": layer, "N_l": shapes[layer][0], "M_l": shapes[layer][1]}
        for name in GRAM_CONVENTIONS:
            row[name] = values[name][layer]
            row[f"{name} share (%)"] = 100.0 * values[name][layer] / totals[name] if totals[name] > 0 else 0.0
        rows.append(row)
    rows.append({"layer": "sum", **{name: totals[name] for name in GRAM_CONVENTIONS}})
    columns = ["layer", "N_l", "M_l"] + [c for name in GRAM_CONVENTIONS for c in (name, f"{name} share (%)")]
    h, w = target.shape[-2:]
    what = "white noise" if isinstance(x, str) and x == "noise" else "x"
    shares = {f"{name} share (%)": ".1f" for name in GRAM_CONVENTIONS}
    title = f"style loss of {what} vs the style image at {h}×{w} px under each convention"
    return Table(columns, rows, title=title, formats=shares)


def size_dependence_table(
    content: Any = "tower_bridge",
    style: Any = "van_gogh_church_at_auvers",
    sizes: tuple[int, int] | None = None,
    layers: Sequence[str] = tuple(TEXTURE_LAYERS),
    content_layer: str = "relu4_2",
    weights: str | None = "auto",
    seed: int = 0,
) -> Table:
    """How each loss of white noise grows when the image side doubles: why α/β is tied to a convention.

    Rows: each style convention (sum over ``layers``, uniform weights) and Gatys' content loss
    1/2 sum (F - P)^2 at ``content_layer``. Columns: the loss at each of ``sizes`` (default
    smoke_or((128, 256), (48, 96))) and their ratio. Returns: a :class:`Table`.
    """
    sizes = sizes or smoke_or((128, 256), (48, 96))
    rows: dict[str, dict[str, Any]] = {name: {"loss": f"style, {name}"} for name in GRAM_CONVENTIONS}
    rows["content"] = {"loss": f"content ½Σ(F−P)² at {content_layer}"}
    vgg = VGGFeatures([content_layer], weights=weights)
    for size in sizes:
        values = style_loss_conventions("noise", style, layers, size, weights, seed)
        for name in GRAM_CONVENTIONS:
            rows[name][f"{size} px"] = sum(values[name].values())
        target = _image(content, size)
        noise = torch.rand(target.shape, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            f, p = vgg(noise.to(vgg.device))[content_layer], vgg(target.to(vgg.device))[content_layer]
        rows["content"][f"{size} px"] = float(losses.content_loss(f.double(), p.double()))
    ratio = f"× from {sizes[0]} to {sizes[1]} px"
    for row in rows.values():
        first, last = row[f"{sizes[0]} px"], row[f"{sizes[1]} px"]
        row[ratio] = last / first if first > 0 else float("nan")
    columns = ["loss", f"{sizes[0]} px", f"{sizes[1]} px", ratio]
    return Table(columns, list(rows.values()), title=f"losses of white noise — {vgg.label}")


# --- notebooks 04-06: Gatys, total variation, Novak & Nikulin -------------------------------------------

SWEEP_CONTENT, SWEEP_STYLE = "tower_bridge", "van_gogh_cafe_terrace_at_night"
"""The pair the engine's preset weights were tuned on (see nstlab.optimize.PRESETS): notebooks 04-06's defaults."""


def _run_steps(steps: int | None, real: int = 150) -> int:
    """Steps per run: ``steps`` if given, else smoke_or(real, 5)."""
    return steps or smoke_or(real, 5)


RUN_CACHE_SIZE = 32
"""How many results :func:`stylize_variant` remembers (the notebooks repeat their baseline run)."""

_RUNS: dict[str, Result] = {}


def clear_run_cache() -> None:
    """Forget the results remembered by :func:`stylize_variant`."""
    _RUNS.clear()


def _run_key(content: torch.Tensor, style: torch.Tensor, options: Mapping[str, Any]) -> str | None:
    """A fingerprint of the inputs' pixels and of every resolved option; None if the run has a callback."""
    if options.get("callback") is not None or isinstance(options.get("init"), torch.Tensor):
        return None
    opts = resolve_options(**{k: v for k, v in options.items() if k != "progress"})
    opts.pop("progress")
    opts.pop("preset")  # the resolved options decide the run, however they were given
    digest = hashlib.sha1(repr((sorted(opts.items(), key=str), os.environ.get("NSTLAB_WEIGHTS"))).encode())
    for t in (content, style):
        digest.update(repr((tuple(t.shape), t.dtype)).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def stylize_variant(content: Any, style: Any, **options: Any) -> Result:
    """:func:`nstlab.optimize.stylize`, remembering its results.

    A run is deterministic (seeded, bit-for-bit on CPU), so the last RUN_CACHE_SIZE results are
    remembered: the same inputs and options (``progress`` aside) return the same Result without
    recomputing. Runs with a callback are never cached. ``clear_run_cache()`` forgets them.

    Inputs: content, style: as ``stylize`` (ImagePickers too); options: any ``stylize`` option.
    Returns: the Result.
    """
    content, style = _image(content), _image(style)
    key = _run_key(content, style, options)
    if key is not None and key in _RUNS:
        return _RUNS[key]
    result = stylize(content, style, **options)
    if key is not None:
        _RUNS[key] = result
        while len(_RUNS) > RUN_CACHE_SIZE:
            del _RUNS[next(iter(_RUNS))]  # the oldest
    return result


def _given(**options: Any) -> dict[str, Any]:
    """The options that are not None: overrides for :func:`run_variants` (None keeps the preset's value)."""
    return {name: value for name, value in options.items() if value is not None}


def run_variants(
    content: Any,
    style: Any,
    variants: Mapping[Any, Mapping[str, Any]],
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **common: Any,
) -> dict[Any, Result]:
    """Run :func:`stylize_variant` once per variant on the same inputs, size, steps, seed and weights.

    Inputs:
    - content, style: tensors, paths, bundled names or ImagePickers.
    - variants: {name: options overriding ``common``}.
    - size: long side (default smoke_or(256, 64)); steps: per run (default smoke_or(150, 5)).
    - common: options for every run (a progress bar per run unless smoke mode or progress=False).
    Returns: {name: Result}, in the order of ``variants``.
    """
    if not variants:
        raise ValueError("run_variants: no variants given")
    size = size or smoke_or(256, 64)
    base = {
        "size": size, "steps": _run_steps(steps), "seed": seed, "weights": weights, "progress": not is_smoke(), **common
    }
    c, s = _image(content, size), _image(style)
    return {name: stylize_variant(c, s, **{**base, **variant}) for name, variant in variants.items()}


def _footer(results: Mapping[Any, Result]) -> str:
    return plotting.weights_footers([r.weights_name for r in results.values()])


def _panel_height(img: torch.Tensor, width: float, title_lines: int = 3) -> float:
    """Inches of height for a panel ``width`` inches wide showing img (..., H, W) with a title."""
    return width * img.shape[-2] / img.shape[-1] + 0.17 * title_lines + 0.1


def _legend_below(part: Any, ax: Axes, fontsize: float = 9) -> None:
    """One legend for all the plots of ``part`` (their curves share labels and colours), under them."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        part.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=fontsize)


LOSS_PLOT_HEIGHT = 3.3
"""Inches for a row of loss plots (with their titles, axis labels and the legend under them)."""


def plot_variants(
    results: Mapping[Any, Result],
    terms: Sequence[str] = ("total", "content", "style"),
    time_axis: bool = False,
    inputs: Mapping[str, torch.Tensor] | None = None,
    suptitle: str | None = None,
) -> Figure:
    """Results side by side (titled with their final ``terms``) above one loss-vs-step plot per term.

    Inputs:
    - results: {name: Result}; terms: history keys ("total", "content", "style", "tv").
    - time_axis: add a plot of the total loss against wall-clock seconds (cumulative step times).
    - inputs: images shown first, e.g. {"content": c, "style": s}; suptitle: a title on top.
    Returns: the Figure, at most MAX_FIGURE_WIDTH wide (images in two rows if need be; subfigures:
    the image rows, then the plots with one legend under them), with the weights footer.
    """
    if not results:
        raise ValueError("plot_variants: no results given")
    panels = [(name, img) for name, img in (inputs or {}).items()]
    for name, r in results.items():
        finals = ("\n" if len(terms) > 2 else ", ").join(f"{t} {r.history[t][-1]:.3g}" for t in terms if r.history[t])
        panels.append((f"{name}\n{finals}", r.image))
    n_plots = len(terms) + int(time_axis)
    fig, _, bottom = image_rows_figure(panels, below=LOSS_PLOT_HEIGHT, min_width=3.6 * n_plots,
                                       suptitle=suptitle, footer=_footer(results))
    plots = bottom.subplots(1, n_plots, squeeze=False)[0]
    for ax, term in zip(plots, terms):
        for name, r in results.items():
            values = r.history[term]
            ax.plot(np.arange(len(values)), values, label=str(name), **plotting.curve_markers(len(values)))
        ax.set(ylabel=f"{term} loss", title=f"{term} loss vs step")
        plotting.step_axis(ax)
    if time_axis:
        ax = plots[-1]
        for name, r in results.items():
            times = np.cumsum(r.step_times)
            ax.plot(times, r.history["total"], label=str(name), **plotting.curve_markers(len(times)))
        ax.set(xlabel="wall-clock time (s)", ylabel="total loss", title="total loss vs time")
    for ax in plots:
        values = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()])
        if values.size and np.all(values > 0):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    _legend_below(bottom, plots[0])
    return fig


# notebook 04: Gatys et al.

GATYS_COMPARISONS: dict[str, dict[str, dict[str, Any]]] = {
    "init": {"init: content": {"init": "content"}, "init: noise": {"init": "noise"}},
    "optimizer": {"L-BFGS": {"optimizer": "lbfgs"}, "Adam": {"optimizer": "adam"}},
    "pooling": {"max pooling": {"pooling": "max"}, "average pooling": {"pooling": "avg"}},
    "vgg": {"plain VGG19": {"normalized_vgg": False}, "normalized VGG19": {"normalized_vgg": True}},
}
"""The design choices compared in notebook 04: {comparison: {variant name: stylize options}}."""


def visualize_comparison(
    which: str,
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """One of :data:`GATYS_COMPARISONS` ("init", "optimizer", "pooling", "vgg") on the same inputs and seed.

    Inputs: which: the comparison; content, style: images; size: long side (default smoke_or(256, 64));
    steps: per run (default smoke_or(150, 5)); options: other ``stylize`` options for both runs.
    Returns: the Figure: content, style, both results, their loss curves (and loss vs time for "optimizer").
    """
    if which not in GATYS_COMPARISONS:
        raise ValueError(f"visualize_comparison: which must be one of {tuple(GATYS_COMPARISONS)}, got {which!r}")
    size = size or smoke_or(256, 64)
    c, s = _image(content, size), _image(style)
    results = run_variants(c, s, GATYS_COMPARISONS[which], size, steps, seed, weights, **options)
    steps_done = len(next(iter(results.values())).history["total"])
    return plot_variants(
        results, time_axis=which == "optimizer", inputs={"content": c, "style": s},
        suptitle=f"{' vs '.join(map(str, results))}: {steps_done} steps, {size} px, seed {seed}",
    )


STYLE_WEIGHT_FACTORS = (1e-2, 1e-1, 1.0, 1e1)
"""Notebook 04's sweep: β as multiples of the preset's style_weight; smoke mode uses 0.1, 1 and 10."""


def _preset_value(name: str, options: Mapping[str, Any]) -> Any:
    """The value of option ``name`` in the preset that ``options`` choose (default "gatys")."""
    return resolve_options(**{k: v for k, v in options.items() if k == "preset"})[name]


def style_weight_sweep(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    style_weights: Sequence[float] | None = None,
    content_weight: float = 1.0,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> dict[float, Result]:
    """One run per style weight β (content weight α fixed), same inputs and seed: Gatys et al.'s Fig. 3 row.

    Inputs: style_weights: default STYLE_WEIGHT_FACTORS times the preset's style_weight (smoke: 0.1, 1
    and 10 times); others as :func:`run_variants`.
    Returns: {β: Result}, in the order given.
    """
    if not style_weights:
        factors = smoke_or(STYLE_WEIGHT_FACTORS, (1e-1, 1.0, 1e1))
        style_weights = [f * _preset_value("style_weight", options) for f in factors]
    variants = {float(w): {"style_weight": float(w)} for w in style_weights}
    return run_variants(content, style, variants, size, steps, seed, weights, content_weight=content_weight, **options)


def visualize_style_weight_sweep(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    style_weights: Sequence[float] | None = None,
    content_weight: float = 1.0,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """The α/β trade-off: content, one result per β titled with α/β, the style image, and the final
    content and style losses against β (log-log).

    Inputs: as :func:`style_weight_sweep`. Returns: the Figure.
    """
    size = size or smoke_or(256, 64)
    c, s = _image(content, size), _image(style)
    results = style_weight_sweep(c, s, style_weights, content_weight, size, steps, seed, weights, **options)
    panels = [("content", c)] + [
        (f"β = {w:.0e}\nα/β = {content_weight / w:.0e}", r.image) for w, r in results.items()
    ] + [("style", s)]
    fig = Figure(figsize=(max(2.3 * len(panels), 8.0), 6.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.1])
    for ax, (title, img) in zip(top.subplots(1, len(panels), squeeze=False)[0], panels):
        draw_image(ax, img, title)
    ax = bottom.subplots()
    betas = list(results)
    for term, marker in (("content", "o"), ("style", "s")):
        ax.plot(betas, [r.history[term][-1] for r in results.values()], marker=marker, label=f"final {term} loss")
    ax.set(xscale="log", yscale="log", xlabel=f"style weight β (α = {content_weight:g})", ylabel="loss (unweighted)")
    ax.set_title("the trade-off: more style weight, less style loss, more content loss", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    steps_done = len(next(iter(results.values())).history["total"])
    fig.suptitle(f"α/β sweep (Gatys et al., Fig. 3): {steps_done} steps, {size} px, seed {seed}")
    fig.supxlabel(_footer(results), fontsize=8)
    return fig


def layer_loss_scales(
    image: Any = SWEEP_STYLE,
    layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    size: int | None = None,
    weights: str | None = "auto",
    normalized: bool = False,
    pooling: str = "max",
) -> dict[str, dict[str, float]]:
    """Per layer: the mean activation of ``image`` and its style-loss scale E_l(0, A) = ΣA²/(4N²M²),
    the loss of an all-zero Gram (what ``normalize_losses`` divides each E_l by).

    Inputs: image: the style image; size: long side (default smoke_or(256, 64)); normalized: use
    the normalized VGG19 (every channel's mean activation 1 over the bundled images).
    Returns: {"mean activation": {layer: value}, "E_l(0, A)": {layer: value}}.
    """
    x = _image(image, size or smoke_or(256, 64))
    net = VGGFeatures(list(layers), weights=weights, pooling=pooling, normalized=normalized)
    with torch.no_grad():
        feats = net(x.to(net.device))
    out: dict[str, dict[str, float]] = {"mean activation": {}, "E_l(0, A)": {}}
    for layer in layers:
        f = feats[layer].double()
        out["mean activation"][layer] = float(f.mean())
        out["E_l(0, A)"][layer] = losses.style_target(losses.gram_matrix(f, "hw"), f.shape[-2] * f.shape[-1]).scale
    return out


def visualize_layer_scales(
    image: Any = SWEEP_STYLE,
    layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    size: int | None = None,
    weights: str | None = "auto",
) -> Figure:
    """Why losses need normalising: per style layer, the mean activation and the raw style-loss
    scale E_l(0, A), for the plain and the normalized VGG19 (bars, log scale).

    Inputs: as :func:`layer_loss_scales`. Returns: the Figure.
    """
    plain = layer_loss_scales(image, layers, size, weights, normalized=False)
    norm = layer_loss_scales(image, layers, size, weights, normalized=True)
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    x = np.arange(len(layers))
    axes = fig.subplots(1, 2)
    for ax, key in zip(axes, ("mean activation", "E_l(0, A)")):
        for offset, (label, values) in zip((-0.2, 0.2), (("plain VGG19", plain), ("normalized VGG19", norm))):
            ax.bar(x + offset, [values[key][layer] for layer in layers], width=0.4, label=label)
        ax.set_xticks(x, list(layers))
        ax.set_yscale("log")
        ax.set_title(key if key == "mean activation" else "style loss of a zero Gram, E_l(0, A)", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    # one legend for both panels, right of them: inside, it hid the top of the first bars
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=9)
    label = VGGFeatures([layers[0]], weights=weights).weights_name
    fig.suptitle("Scales of the layers' activations and raw style losses (style image)")
    fig.supxlabel(plotting.weights_footer(label), fontsize=8)
    return fig


def normalization_factor_table(weights: str | None = "auto", pooling: str = "max") -> Table:
    """What the normalized VGG19 does to each conv layer's channels: it divides channel o by its mean
    activation m_o over the bundled images (``nstlab.vgg.cached_normalization_scales``), so a rarely
    active channel is multiplied by a large factor; ``nstlab.vgg.normalization_divisors`` floors m_o
    at NORMALIZATION_FLOOR x the layer's median, which caps that factor.

    Returns: a Table, one row per conv layer: dead channels (m = 0), channels below the floor (dead
    ones included), smallest positive and median m, the largest factor 1/m without the floor and
    the largest factor the normalized network uses.
    """
    scales, name = _vgg.cached_normalization_scales(weights, pooling)
    divisors = _vgg.normalization_divisors(scales)
    rows = []
    for layer, m in scales.items():
        alive = m[m > 0].double()
        rows.append({
            "layer": layer,
            "dead channels": int((m == 0).sum()),
            "floored channels": int((divisors[layer] > m).sum()),
            "smallest m": float(alive.min()),
            "median m": float(alive.median()),
            "largest 1/m": float(1 / alive.min()),
            "largest factor used": float(1 / divisors[layer].double().min()),
        })
    return Table(list(rows[0]), rows, title=f"normalized VGG19: per-channel factors — {_vgg.weights_label(name)}")


def _option_summary(options: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in options.items() if k not in ("progress", "weights", "callback")}
    parts = []
    for k, v in shown.items():
        if isinstance(v, float):
            v = f"{v:g}"
        elif isinstance(v, (list, tuple)) and len(v) > 4:
            v = f"{len(v)} layers"
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def visualize_stylize(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """One run of :func:`stylize_variant` shown with ``plotting.plot_result`` (the notebooks' widgets).

    Inputs: content, style: images or ImagePickers; size: long side (default smoke_or(256, 64));
    steps: default smoke_or(150, 5); options: any ``stylize`` option, and ``normalized_vgg``.
    Returns: the Figure, titled with the options used.
    """
    size = size or smoke_or(256, 64)
    c, s = _image(content, size), _image(style)
    options = {"progress": not is_smoke(), **options}
    result = stylize_variant(c, s, size=size, steps=_run_steps(steps), seed=seed, weights=weights, **options)
    fig = plotting.plot_result(result, c, s)
    fig.suptitle(f"{_option_summary(options) or 'gatys preset'} — {size} px, seed {seed}", fontsize=10)
    return fig


# notebook 05: total variation


def tv_table(images: Mapping[str, torch.Tensor]) -> Table:
    """The total variation of each image: L1 (sum and mean |difference|) and squared (mean).

    Inputs: images: {name: (1, C, H, W) in [0, 1]}. Returns: a Table with one row per image.
    """
    rows = []
    for name, img in images.items():
        img = as_image(img).double()
        rows.append({
            "image": name,
            "TV L1 (sum)": float(losses.tv_loss(img, "l1")),
            "TV L1 (mean |∇|)": float(losses.tv_loss(img, "l1", reduction="mean")),
            "TV squared (mean)": float(losses.tv_loss(img, "l2", beta=2.0, reduction="mean")),
        })
    return Table(list(rows[0]), rows, title="total variation")


def add_noise(img: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    """img + seeded Gaussian noise of standard deviation ``std``, clamped to [0, 1]. Same shape."""
    noise = torch.randn(img.shape, generator=torch.Generator().manual_seed(seed), dtype=img.dtype)
    return (img + std * noise.to(img.device)).clamp(0, 1)


def smooth(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (N, C, H, W) with standard deviation ``sigma`` px (kernel 2·⌈3σ⌉+1)."""
    k = 2 * math.ceil(3 * sigma) + 1
    return gaussian_blur(img, [k, k], [sigma, sigma])


def _variation_map(img: torch.Tensor) -> np.ndarray:
    """|x[i, j+1] - x[i, j]| + |x[i+1, j] - x[i, j]| summed over channels, (H-1, W-1)."""
    dx = (img[..., :-1, 1:] - img[..., :-1, :-1]).abs()
    dy = (img[..., 1:, :-1] - img[..., :-1, :-1]).abs()
    return (dx + dy)[0].sum(0).cpu().numpy()


def visualize_tv_noise(
    image: Any = "chelsea_cat", noise_std: float = 0.1, sigma: float = 1.0, size: int | None = None, seed: int = 0
) -> Figure:
    """A clean image, with Gaussian noise and smoothed; below, the map of |∇x| whose sum is the TV.

    Inputs: image; noise_std: noise level; sigma: blur in px; size: long side (default smoke_or(256, 64)).
    Returns: the Figure (titles give L1 TV as mean |∇| and squared TV as mean ∇²).
    """
    clean = _image(image, size or smoke_or(256, 64))
    images = {"clean": clean, f"noisy (σ = {noise_std:g})": add_noise(clean, noise_std, seed),
              f"smoothed (blur σ = {sigma:g} px)": smooth(clean, sigma)}
    table = tv_table(images)
    fig = Figure(figsize=(10, _panel_height(clean, 3.0, 2) + _panel_height(clean, 3.0, 1) + 0.4), layout="constrained")
    axes = fig.subplots(2, 3)
    maps = {name: _variation_map(img) for name, img in images.items()}
    top = max(float(m.max()) for m in maps.values())
    for col, ((name, img), row) in enumerate(zip(images.items(), table.rows)):
        tv_l1, tv_squared = row["TV L1 (mean |∇|)"], row["TV squared (mean)"]
        draw_image(axes[0, col], img, f"{name}\nTV L1 {tv_l1:.4f}, TV² {tv_squared:.4f}")
        shown = axes[1, col].imshow(maps[name], cmap="magma", vmin=0, vmax=top)
        axes[1, col].set_title("|∂x| + |∂y| (summed over RGB)", fontsize=9)
        axes[1, col].axis("off")
    fig.colorbar(shown, ax=axes[1, :].tolist(), shrink=0.8)
    fig.suptitle("Total variation measures high-frequency content: noise raises it, smoothing lowers it")
    return fig


def psnr(x: torch.Tensor, reference: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of x against reference, both in [0, 1] (same shape)."""
    if x.shape != reference.shape:
        raise ValueError(f"psnr: x has shape {tuple(x.shape)} but reference has shape {tuple(reference.shape)}")
    mse = float((x.double() - reference.double()).pow(2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def tv_denoise(
    noisy: torch.Tensor, tv_weight: float, kind: str = "l1", steps: int | None = None, lr: float = 0.01
) -> torch.Tensor:
    """Denoise by minimising ½·mean (x - y)² + tv_weight · TV(x) over the pixels x (Rudin, Osher &
    Fatemi's model for kind="l1"; kind="l2" is the squared TV, β = 2), with Adam from x = y.

    Inputs: noisy: (N, C, H, W) y in [0, 1]; tv_weight >= 0; kind: "l1" | "l2" (TV with reduction
    "mean"); steps: default smoke_or(300, 100); lr: Adam's step on [0, 1] pixels.
    Returns: (N, C, H, W) in [0, 1].
    """
    if not tv_weight >= 0:
        raise ValueError(f"tv_denoise: tv_weight must be >= 0, got {tv_weight!r}")
    y = noisy.detach()
    x = y.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    for _ in range(steps or smoke_or(300, 100)):
        optimizer.zero_grad(set_to_none=True)
        loss = 0.5 * (x - y).pow(2).mean() + tv_weight * losses.tv_loss(x, kind, beta=2.0, reduction="mean")
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return x.detach()


def visualize_tv_denoising(
    image: Any = "chelsea_cat",
    noise_std: float = 0.1,
    l1_weight: float = 0.1,
    l2_weight: float = 0.5,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
) -> Figure:
    """TV denoising: clean, noisy, denoised with L1 TV and with squared TV; PSNR and TV in the titles,
    and a zoomed crop of each below.

    Inputs: image; noise_std; l1_weight, l2_weight: the TV weights; size: default smoke_or(256, 64);
    steps: Adam steps (default smoke_or(300, 100)). Returns: the Figure.
    """
    clean = _image(image, size or smoke_or(256, 64))
    noisy = add_noise(clean, noise_std, seed)
    images = {
        "clean": clean,
        f"noisy (σ = {noise_std:g})": noisy,
        f"L1 TV, λ = {l1_weight:g}": tv_denoise(noisy, l1_weight, "l1", steps),
        f"squared TV, λ = {l2_weight:g}": tv_denoise(noisy, l2_weight, "l2", steps),
    }
    h, w = clean.shape[-2:]
    ch, cw = max(h // 3, 8), max(w // 3, 8)
    top, left = (h - ch) // 2, (w - cw) // 2
    height = _panel_height(clean, 11 / 4) + _panel_height(clean[..., :ch, :cw], 11 / 4)
    fig = Figure(figsize=(11, height), layout="constrained")
    axes = fig.subplots(2, 4)
    for col, (name, img) in enumerate(images.items()):
        tv = float(losses.tv_loss(img, "l1", reduction="mean"))
        quality = "" if name == "clean" else f"\nPSNR {psnr(img, clean):.1f} dB"
        draw_image(axes[0, col], img, f"{name}{quality}\nTV L1 {tv:.4f}")
        axes[1, col].imshow(image_array(img[..., top:top + ch, left:left + cw]), interpolation="nearest")
        axes[1, col].set_title("centre crop", fontsize=8)
        axes[1, col].axis("off")
    fig.suptitle(
        "Denoising by minimising ½·mean(x − y)² + λ·TV(x): L1 TV keeps edges sharp, squared TV blurs them"
    )
    return fig


TV_WEIGHT_FACTORS = (0.0, 1.0, 10.0, 100.0)
"""Notebook 05's sweep: tv_weight as multiples of the preset's (0 = no TV term); smoke mode uses 0, 1, 100."""


def tv_weight_sweep(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    tv_weights: Sequence[float] | None = None,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> dict[float, Result]:
    """One Gatys run per tv_weight, same inputs and seed. tv_weights default: TV_WEIGHT_FACTORS times
    the preset's tv_weight (smoke: 0, 1 and 100 times). Returns: {tv_weight: Result} in the order given."""
    if tv_weights is None:
        factors = smoke_or(TV_WEIGHT_FACTORS, (0.0, 1.0, 100.0))
        tv_weights = [f * _preset_value("tv_weight", options) for f in factors]
    variants = {float(w): {"tv_weight": float(w)} for w in tv_weights}
    return run_variants(content, style, variants, size, steps, seed, weights, **options)


def _weight_axis(ax: Axes, weights: Sequence[float], name: str) -> str:
    """Put weights >= 0 (0 among them, say) on a symlog x axis, ticked at each weight, and return its label.

    The axis is linear from 0 to the smallest positive weight w0, logarithmic above, and [0, w0] is as
    wide as one decade: so 0, w0, 10 w0, 100 w0 are evenly spaced and every distance is to scale.
    Without a positive weight, or with a negative one, the axis stays linear.
    """
    positive = [w for w in weights if w > 0]
    if positive and min(weights) >= 0:
        w0 = min(positive)
        ax.set_xscale("symlog", linthresh=w0, linscale=0.9)  # matplotlib widens [0, w0] by 1 / 0.9: one decade
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks(list(weights), [f"{w:g}" for w in weights])
        ax.set_xlim(-0.25 * w0, max(weights) * 10**0.25)  # margins of a quarter decade; no negative weights shown
        return f"{name} (linear up to {w0:g}, log scale above)"
    ax.set_xticks(list(weights), [f"{w:g}" for w in weights])
    return name


def visualize_tv_weight_sweep(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    tv_weights: Sequence[float] | None = None,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """The results of :func:`tv_weight_sweep` in a row, each titled with its TV (mean |∇|), and a
    plot of the result's TV against tv_weight, with the content's and the style's TV for reference.

    Returns: the Figure.
    """
    size = size or smoke_or(256, 64)
    c, s = _image(content, size), _image(style)
    results = tv_weight_sweep(c, s, tv_weights, size, steps, seed, weights, **options)
    tvs = {w: float(losses.tv_loss(r.image, "l1", reduction="mean")) for w, r in results.items()}
    panels = [(f"tv_weight = {w:g}\nTV {tvs[w]:.4f}", r.image) for w, r in results.items()]
    fig = Figure(figsize=(max(2.6 * len(panels) + 4.2, 9.0), 3.4), layout="constrained")
    grid = fig.add_gridspec(1, len(panels) + 1, width_ratios=[1.0] * len(panels) + [1.6])
    for i, (title, img) in enumerate(panels):
        draw_image(fig.add_subplot(grid[0, i]), img, title)
    ax = fig.add_subplot(grid[0, -1])
    ax.plot(list(results), list(tvs.values()), marker="o", label="result")
    ax.axhline(float(losses.tv_loss(c, "l1", reduction="mean")), color="grey", linestyle="--", label="content image")
    style_tv = float(losses.tv_loss(resize(s, size), "l1", reduction="mean"))
    ax.axhline(style_tv, color="tab:red", linestyle=":", label="style image")
    ax.set(xlabel=_weight_axis(ax, list(results), "tv_weight"), ylabel="TV (mean |∇|)", title="TV of the result")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    steps_done = len(next(iter(results.values())).history["total"])
    fig.suptitle(f"TV weight sweep: {steps_done} steps, {size} px, seed {seed}")
    fig.supxlabel(_footer(results), fontsize=8)
    return fig


# notebook 06: Novak & Nikulin


def gram_sparsity(gram: torch.Tensor, rel_tol: float = 1e-3) -> float:
    """Fraction of the entries of ``gram`` (any shape) with |G_ij| <= rel_tol · max |G|."""
    g = gram.detach().abs()
    top = float(g.max()) if g.numel() else 0.0
    return float((g <= rel_tol * top).double().mean()) if g.numel() else 0.0


def gram_sparsity_table(
    image: Any = SWEEP_STYLE,
    layers: Sequence[str] = tuple(GATYS_STYLE_LAYERS),
    shifts: Sequence[float] = (0.0, 1.0, -1.0),
    size: int | None = None,
    weights: str | None = "auto",
    rel_tol: float = 1e-3,
) -> Table:
    """Per layer: the fraction of zero activations, then for each shift s the fraction of Gram entries
    that are exactly 0 and that are near 0 (|G_ij| <= rel_tol · max |G|), G of F + s.

    Inputs: image; layers; shifts; size: long side (default smoke_or(256, 64)). Returns: a Table (%).
    """
    x = _image(image, size or smoke_or(256, 64))
    net = VGGFeatures(list(layers), weights=weights)
    with torch.no_grad():
        feats = net(x.to(net.device))
    rows = []
    for layer in layers:
        f = feats[layer].double()
        row: dict[str, Any] = {"layer": layer, "zero activations (%)": 100 * float((f == 0).double().mean())}
        for s in shifts:
            g = losses.gram_matrix(f, shift=s)
            row[f"G = 0, s={s:g} (%)"] = 100 * float((g == 0).double().mean())
            row[f"|G| ≤ {rel_tol:g}·max, s={s:g} (%)"] = 100 * gram_sparsity(g, rel_tol)
        rows.append(row)
    h, w = x.shape[-2:]
    return Table(list(rows[0]), rows, title=f"Gram sparsity of a {h}×{w} image — {net.label}", floatfmt=".1f")


def visualize_gram_shift(
    image: Any = SWEEP_STYLE,
    layer: str = "relu4_1",
    shifts: Sequence[float] = (0.0, 1.0, -1.0),
    size: int | None = None,
    weights: str | None = "auto",
    rel_tol: float = 1e-3,
) -> Figure:
    """The Gram matrix of one layer for each activation shift s (|G| on a log colour scale, exact
    zeros in the darkest colour), titled with the fraction of zero and near-zero entries.

    Inputs: image; layer; shifts; size: default smoke_or(256, 64). Returns: the Figure.
    """
    x = _image(image, size or smoke_or(256, 64))
    net = VGGFeatures([layer], weights=weights)
    with torch.no_grad():
        f = net(x.to(net.device))[layer].double()
    fig = Figure(figsize=(4.3 * len(shifts), 4.0), layout="constrained")
    for ax, s in zip(fig.subplots(1, len(shifts), squeeze=False)[0], shifts):
        g = losses.gram_matrix(f, shift=s)
        zeros = 100 * float((g == 0).double().mean())
        small = 100 * gram_sparsity(g, rel_tol)
        title = f"shift s = {s:g}: {zeros:.1f}% exactly 0,\n{small:.1f}% ≤ {rel_tol:g}·max"
        plotting.plot_matrix(g, ax=ax, log=True, title=title)
    fig.suptitle(f"Gram matrix of {layer} ({f.shape[1]}×{f.shape[1]}) of F + s")
    fig.supxlabel(plotting.weights_footer(net.weights_name), fontsize=8)
    return fig


def visualize_layer_weights(layers: Sequence[str] = tuple(RELU_LAYERS), chained: bool = False) -> Figure:
    """Uniform vs geometric (w_i ∝ 2^(N-i)) style-layer weights as bars, on a linear and a log scale.

    Inputs: layers: style layers in network order; chained: weigh the adjacent pairs instead.
    Returns: the Figure.
    """
    keys = losses.style_keys(list(layers), chained)
    names = [k if isinstance(k, str) else f"{k[0]}×{k[1]}" for k in keys]
    uniform, geometric = losses.layer_weights(keys, "uniform"), losses.layer_weights(keys, "geometric")
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    x = np.arange(len(keys))
    for ax, log in zip(fig.subplots(1, 2), (False, True)):
        ax.bar(x - 0.2, [uniform[k] for k in keys], width=0.4, label="uniform (Gatys)")
        ax.bar(x + 0.2, [geometric[k] for k in keys], width=0.4, label="geometric (Novak & Nikulin)")
        ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("layer weight w_l (sum 1)")
        if log:
            ax.set_yscale("log")
        ax.set_title("log scale" if log else "linear scale", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.suptitle(f"Style layer weights for {len(keys)} {'chained pairs' if chained else 'layers'}")
    return fig


NOVAK_ABLATION: dict[str, dict[str, Any]] = {
    "gatys": {},
    "+ shift": {"activation_shift": 1.0},
    "+ 16 layers": {"style_layers": list(RELU_LAYERS)},
    "+ chained": {"chained": True},
    "+ geometric": {"layer_weighting": "geometric"},
    "novak (all four)": {"preset": "novak"},
}
"""Notebook 06's ablation: the gatys preset, each of Novak & Nikulin's changes alone, and all together."""


def variants_table(variants: Mapping[str, Mapping[str, Any]], title: str | None = None) -> Table:
    """Runs {name: stylize options} (e.g. :data:`NOVAK_ABLATION`) as a short table, one row per run:
    its options on one line, a list of more than four layers as "16 layers" (the dict's own repr
    prints such a list one layer a line). A run without options is "(the gatys preset)"."""
    rows = [{"run": name, "options": _option_summary(opts) or "(the gatys preset)"} for name, opts in variants.items()]
    return Table(["run", "options"], rows, title=title)


def novak_ablation(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> dict[str, Result]:
    """The runs of :data:`NOVAK_ABLATION` (or ``variants``) on the same inputs, size, steps and seed.
    Returns: {name: Result}."""
    return run_variants(content, style, variants or NOVAK_ABLATION, size, steps, seed, weights, **options)


def visualize_novak_ablation(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """:func:`novak_ablation` as a grid: each result titled with its final content and style losses,
    and their content and style loss curves. Returns: the Figure."""
    size = size or smoke_or(256, 64)
    c, s = _image(content, size), _image(style)
    results = novak_ablation(c, s, variants, size, steps, seed, weights, **options)
    steps_done = len(next(iter(results.values())).history["total"])
    return plot_variants(
        results, terms=("content", "style"), inputs={"content": c, "style": s},
        suptitle=f"Novak & Nikulin's changes, alone and together: {steps_done} steps, {size} px, seed {seed}",
    )


def visualize_novak_options(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    activation_shift: float = 0.0,
    all_layers: bool = False,
    chained: bool = False,
    geometric: bool = False,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """One run of the gatys preset with any of Novak & Nikulin's changes switched on (the widget of
    notebook 06): activation shift s, all 16 conv layers, chained Grams, geometric weights.
    Returns: the :func:`visualize_stylize` Figure."""
    changes: dict[str, Any] = {"activation_shift": float(activation_shift), "chained": bool(chained),
                               "layer_weighting": "geometric" if geometric else "uniform"}
    if all_layers:
        changes["style_layers"] = list(RELU_LAYERS)
    return visualize_stylize(content, style, size, steps, seed, weights, **{**changes, **options})


# --- notebooks 07-10: SSIM, colour, evaluation, playground ----------------------------------------------

def _course_size(size: int | None) -> int:
    """``size``, or the course default long side (256 px; 64 px in smoke mode)."""
    return smoke_or(256, 64) if size is None else int(size)


def _course_steps(steps: int | None) -> int:
    """``steps``, or the course default (300; 5 in smoke mode)."""
    return smoke_or(300, 5) if steps is None else int(steps)


def _fmt_value(value: Any, digits: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (float, np.floating)):
        return str(value)
    return f"{value:.{digits}g}"


def rows_table(rows: Sequence[Mapping[str, Any]], title: str | None = None, digits: int = 4) -> Table:
    """A list of dicts (one per row) as a :class:`Table` (HTML in a notebook, text in ``print``).

    Inputs:
    - rows: dicts; the columns are their keys in order of first appearance.
    - title: shown above; digits: significant digits of floats.
    Returns:
    - the Table (its ``rows`` are the dicts given).
    """
    if not rows:
        raise ValueError("rows_table: no rows given")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return Table(columns=columns, rows=[dict(row) for row in rows], title=title, floatfmt=f".{digits}g")


def _mpl_table(ax: Axes, rows: Sequence[Mapping[str, Any]], digits: int = 3) -> None:
    """A matplotlib table of ``rows`` (dicts) filling ``ax`` (axes turned off)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_fmt_value(row.get(c, ""), digits) for c in columns] for row in rows]
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=columns, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.3)


def _add_weights_footer(fig: Figure, weights_names: Sequence[str]) -> None:
    fig.supxlabel(plotting.weights_footers(weights_names), fontsize=8)


def visualize_runs(
    results: Mapping[str, Result],
    content: Any = None,
    style: Any = None,
    metrics: Sequence[Mapping[str, Any]] | None = None,
    show: Sequence[str] = (),
    terms: Sequence[str] = ("content", "style"),
    suptitle: str | None = None,
) -> Figure:
    """Runs side by side: (content, style,) one image per run, and below one loss plot per term.

    Inputs:
    - results: {name: Result} (e.g. from :func:`run_variants`); content, style: inputs shown first.
    - metrics: rows from :func:`evaluate_results` (matched by their "image" key); ``show`` lists
      the metric columns written under each run's name.
    - terms: loss terms of ``Result.history``, one plot each with one curve per run (log y).
    - suptitle: a title on top (say there what all the runs share, so their names can be short).
    Returns:
    - the Figure, at most MAX_FIGURE_WIDTH wide: one image axes per input and run (in two rows if
      need be), then len(terms) plot axes with one legend under them.
    """
    if not results:
        raise ValueError("visualize_runs: no results given")
    by_name = {row["image"]: row for row in metrics or ()}
    panels = []
    if content is not None:
        panels.append(("content", _image(content)))
    if style is not None:
        panels.append(("style", _image(style)))
    for name, result in results.items():
        row = by_name.get(name, {})
        shown = [f"{key} {_fmt_value(row[key], 3)}" for key in show if key in row]
        panels.append(("\n".join([str(name)] + shown), result.image))
    fig, _, bottom = image_rows_figure(panels, below=LOSS_PLOT_HEIGHT if terms else 0.0, min_width=4.5 * len(terms),
                                       suptitle=suptitle, footer=_footer(results))
    if bottom is not None:
        plots = bottom.subplots(1, len(terms), squeeze=False)[0]
        for ax, term in zip(plots, terms):
            for name, result in results.items():
                values = result.history.get(term, [])
                ax.plot(np.arange(len(values)), values, label=str(name), **plotting.curve_markers(len(values)))
            values = [v for r in results.values() for v in r.history.get(term, [])]
            if values and min(values) > 0:
                ax.set_yscale("log")
            what = "total loss" if term == "total" else f"{term} term (unweighted)"
            ax.set_title(f"{what}, as each run defines it", fontsize=10)
            plotting.step_axis(ax)
            ax.grid(alpha=0.3)
        _legend_below(bottom, plots[0])
    return fig


# ----------------------------------------------------------------------------- yardsticks (notebooks 07, 09)

EVAL_CONTENT_LAYER = "relu4_2"
"""The content layer of the method-independent yardstick (Gatys' conv4_2)."""


def normalized_style_term(x_feat: torch.Tensor, style_feat: torch.Tensor) -> float:
    """The engine's normalised style term of one layer, E_l(G, A) / E_l(0, A) (losses.StyleTarget), for
    one image x (1, C, H, W) and the style image's features (1, C, Hs, Ws) of any size."""
    target = losses.style_target(losses.gram_matrix(style_feat, "hw"), x_feat.shape[-2] * x_feat.shape[-1])
    return float(losses.normalized_style_loss({0: losses.gram_matrix(x_feat)}, {0: target}, {0: 1.0}))


def evaluate_images(
    images: Mapping[str, torch.Tensor],
    content: Any,
    style: Any,
    weights: str | None = "auto",
    content_layer: str = EVAL_CONTENT_LAYER,
    style_layers: Sequence[str] = GATYS_STYLE_LAYERS,
) -> list[dict[str, Any]]:
    """Distances of each image to the content and style images, the same for every method.

    - "content loss": mean (F - P)^2 / mean P^2 at ``content_layer``;
    - "style loss": mean over ``style_layers`` of E_l / E_l(0, A) (Gatys, uniform weights, no
      shift, no SSIM factor); these two are the "gatys" preset's own normalised terms;
    - "SSIM to content": :func:`nstlab.ssim.ssim` on RGB;
    - "LPIPS to content", "LPIPS to style": :func:`nstlab.losses.perceptual_distance` over
      ``LPIPS_LAYERS`` (the style image resized to the image's H, W: the distance compares positions).

    Inputs:
    - images: {name: (1, 3, H, W)} in [0, 1], all of the same H, W.
    - content, style: tensors, paths, bundled names or ImagePickers (resized here).
    - weights: VGG19 weights (None/"auto": NSTLAB_WEIGHTS).
    Returns:
    - one dict per image: {"image": name, the five distances (floats)}.
    """
    if not images:
        raise ValueError("evaluate_images: no images given")
    shapes = {tuple(img.shape) for img in images.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 4 or next(iter(shapes))[:2] != (1, 3):
        raise ValueError(f"evaluate_images: images must all be (1, 3, H, W) of one size, got shapes {sorted(shapes)}")
    hw = tuple(next(iter(images.values())).shape[-2:])
    style_layers = list(style_layers)
    vgg = VGGFeatures([content_layer, *style_layers, *losses.LPIPS_LAYERS], weights=weights)
    style_full = _image(style)
    content_hw = resize(_image(content), hw).to(vgg.device)
    with torch.no_grad():
        fc = vgg(content_hw)
        fs = vgg(resize(style_full, max(hw)).to(vgg.device))
        fs_hw = vgg(resize(style_full, hw).to(vgg.device))
        rows = []
        for name, img in images.items():
            x = img.to(vgg.device)
            fx = vgg(x)
            style_terms = [normalized_style_term(fx[layer], fs[layer]) for layer in style_layers]
            lpips_c = losses.perceptual_distance(
                {k: fx[k] for k in losses.LPIPS_LAYERS}, {k: fc[k] for k in losses.LPIPS_LAYERS}
            )
            lpips_s = losses.perceptual_distance(
                {k: fx[k] for k in losses.LPIPS_LAYERS}, {k: fs_hw[k] for k in losses.LPIPS_LAYERS}
            )
            rows.append(
                {
                    "image": name,
                    "content loss": float(losses.normalized_content_loss(fx[content_layer], fc[content_layer])),
                    "style loss": sum(style_terms) / len(style_terms),
                    "SSIM to content": float(ssim(x, content_hw)),
                    "LPIPS to content": float(lpips_c),
                    "LPIPS to style": float(lpips_s),
                }
            )
    return rows


def evaluate_results(
    results: Mapping[str, Result], content: Any, style: Any, weights: str | None = "auto"
) -> list[dict[str, Any]]:
    """:func:`evaluate_images` of each result's image, plus its own final "total loss" and "steps".

    Inputs:
    - results: {name: Result} (e.g. from :func:`run_variants`); content, style: the inputs used.
    Returns:
    - one dict per result: {"image", "steps", "own total loss", the five distances}.
    """
    rows = evaluate_images({name: r.image for name, r in results.items()}, content, style, weights)
    for row, result in zip(rows, results.values()):
        total = result.history["total"]
        row["steps"] = len(total)
        row["own total loss"] = total[-1] if total else float("nan")
    order = ["image", "steps", "own total loss"]
    return [{**{k: row[k] for k in order}, **{k: v for k, v in row.items() if k not in order}} for row in rows]


# ----------------------------------------------------------------------------- 07: SSIM


def ssim_components(
    x: torch.Tensor,
    y: torch.Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
) -> dict[str, torch.Tensor]:
    """SSIM step by step: the local statistics and Wang et al.'s three factors.

    mu, sigma^2, sigma_xy are Gaussian-weighted local means, variances and covariance ('valid'
    window, as nstlab.ssim); luminance l = (2 mu_x mu_y + c1)/(mu_x^2 + mu_y^2 + c1), contrast
    c = (2 s_x s_y + c2)/(s_x^2 + s_y^2 + c2), structure s = (s_xy + c3)/(s_x s_y + c3) with
    c3 = c2 / 2, so that l * c * s is the SSIM map.

    Inputs:
    - x, y: (N, C, H, W) of the same shape, H, W >= window_size.
    Returns:
    - {"mu_x", "mu_y", "var_x", "var_y", "cov_xy", "luminance", "contrast", "structure", "ssim"}:
      maps of shape (N, C, H - window_size + 1, W - window_size + 1).
    """
    mu_x, mu_y, var_x, var_y, cov_xy = local_statistics(x, y, window_size, sigma)
    var_x, var_y = var_x.clamp_min(0), var_y.clamp_min(0)  # round-off could make them slightly negative
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    c3 = c2 / 2
    sd_x, sd_y = var_x.sqrt(), var_y.sqrt()
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    con = (2 * sd_x * sd_y + c2) / (var_x + var_y + c2)
    struct = (cov_xy + c3) / (sd_x * sd_y + c3)
    return {
        "mu_x": mu_x,
        "mu_y": mu_y,
        "var_x": var_x,
        "var_y": var_y,
        "cov_xy": cov_xy,
        "luminance": lum,
        "contrast": con,
        "structure": struct,
        "ssim": lum * con * struct,
    }


def visualize_ssim_components(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> Figure:
    """x, y and the maps of the three SSIM factors and their product (first image, first channel).

    Inputs:
    - x, y: (N, C, H, W) in [0, 1], H, W >= window_size.
    Returns:
    - the Figure: 6 image axes (x, y, luminance, contrast, structure, SSIM), each factor titled
      with its mean.
    """
    parts = ssim_components(x, y, window_size, sigma)
    fig = Figure(figsize=(MAX_FIGURE_WIDTH, 2.6), layout="constrained")
    axes = fig.subplots(1, 6)
    for ax, (title, img) in zip(axes[:2], [("x", x), ("y", y)]):
        ax.imshow(img[0, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    for ax, key in zip(axes[2:], ["luminance", "contrast", "structure", "ssim"]):
        m = parts[key][0, 0].detach().cpu().numpy()
        image = ax.imshow(m, cmap="viridis", vmin=min(0.0, float(m.min())), vmax=1)
        ax.set_title(f"{key} (mean {m.mean():.3f})", fontsize=9)
        ax.axis("off")
    fig.colorbar(image, ax=list(axes[2:]), shrink=0.8)
    return fig


DISTORTIONS = ("brightness", "contrast", "noise", "blur")
"""The distortions of :func:`distort`, as in Wang et al.'s "same MSE, different SSIM" figure."""

_MAX_STRENGTH = {"brightness": 1.0, "contrast": 1.0, "noise": 1.0, "blur": 16.0}


def _blur_reflect(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (window 2 ceil(3 sigma) + 1).

    Inputs:
    - img: (N, C, H, W); sigma: standard deviation in pixels (<= 0.01 returns img).
    Returns:
    - (N, C, H, W).
    """
    if sigma <= 0.01:
        return img
    r = min(math.ceil(3 * sigma), min(img.shape[-2:]) - 1)
    w = gaussian_window(2 * r + 1, sigma, dtype=img.dtype, device=img.device)
    c = img.shape[1]
    out = F.pad(img, (r, r, r, r), mode="reflect")
    out = F.conv2d(out, w.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, w.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def distort(img: torch.Tensor, kind: str, strength: float, seed: int = 0) -> torch.Tensor:
    """One of the :data:`DISTORTIONS` at a given strength t, clamped to [0, 1].

    "brightness": x + t; "contrast": mu + (1 - t)(x - mu) (mu the mean of each channel);
    "noise": x + t n with seeded n ~ N(0, 1); "blur": Gaussian blur of sigma = t pixels.

    Inputs:
    - img: (N, C, H, W) in [0, 1]; strength t >= 0; seed: for "noise".
    Returns:
    - (N, C, H, W) in [0, 1].
    """
    if kind not in DISTORTIONS:
        raise ValueError(f"distort: kind must be one of {DISTORTIONS}, got {kind!r}")
    if kind == "brightness":
        out = img + strength
    elif kind == "contrast":
        mu = img.mean(dim=(2, 3), keepdim=True)
        out = mu + (1 - strength) * (img - mu)
    elif kind == "noise":
        noise = torch.randn(img.shape, generator=torch.Generator().manual_seed(seed), dtype=img.dtype)
        out = img + strength * noise.to(img.device)
    else:
        out = _blur_reflect(img, strength)
    return out.clamp(0, 1)


def match_distortions(
    img: torch.Tensor,
    target: float,
    distance: Callable[[torch.Tensor, torch.Tensor], float],
    kinds: Sequence[str] = DISTORTIONS,
    seed: int = 0,
    iterations: int = 14,
) -> dict[str, tuple[torch.Tensor, float, float]]:
    """Each distortion at the strength where distance(img, distorted) equals ``target`` (bisection).

    Inputs:
    - img: (N, C, H, W) in [0, 1]; target: the distance to reach; distance: (a, b) -> float,
      growing with the strength; kinds: names from :data:`DISTORTIONS`.
    Returns:
    - {kind: (distorted image, strength, distance reached)}. The distance reached is >= ``target``
      (within the bisection's precision of it) unless even the largest strength stays below
      ``target``: then the largest strength is used and the distance reached is below ``target``.
    """
    out = {}
    for kind in kinds:
        lo, hi = 0.0, _MAX_STRENGTH[kind]
        if distance(img, distort(img, kind, hi, seed)) <= target:
            lo = hi
        else:
            for _ in range(iterations):
                mid = 0.5 * (lo + hi)
                if distance(img, distort(img, kind, mid, seed)) < target:
                    lo = mid
                else:
                    hi = mid
        t = hi if lo < hi else lo
        distorted = distort(img, kind, t, seed)
        out[kind] = (distorted, t, distance(img, distorted))
    return out


def visualize_equal_distance(
    image: Any = "chelsea_cat",
    match: str = "mse",
    target: float = 0.01,
    size: int | None = None,
    weights: str | None = "auto",
    seed: int = 0,
) -> Figure:
    """The image under each distortion, all at the same MSE (or content loss), with SSIM and LPIPS.

    Inputs:
    - image: tensor, path, bundled name or ImagePicker; size: long side (default 256, 64 in smoke).
    - match: "mse" (mean squared pixel error) or "content" (the normalised content loss at
      relu4_2); target: the value every distortion is tuned to.
    - weights: VGG19 weights for the content loss and LPIPS; seed: for the noise.
    Returns:
    - the Figure: 1 + len(DISTORTIONS) image axes in one row, titled with MSE, content loss, SSIM
      and LPIPS; a distortion whose largest strength stays below ``target`` (see
      :func:`match_distortions`) is shown at that strength, titled "max strength: target not reached".
    """
    if match not in ("mse", "content"):
        raise ValueError(f"visualize_equal_distance: match must be 'mse' or 'content', got {match!r}")
    img = _image(image, _course_size(size))
    vgg = VGGFeatures([EVAL_CONTENT_LAYER, *losses.LPIPS_LAYERS], weights=weights)
    vgg_content = VGGFeatures([EVAL_CONTENT_LAYER], weights=weights)  # shallower: for the bisection
    img = img.to(vgg.device)
    with torch.no_grad():
        ref = vgg(img)

        def content(a: torch.Tensor, b: torch.Tensor) -> float:
            return float(losses.normalized_content_loss(vgg_content(b)[EVAL_CONTENT_LAYER], ref[EVAL_CONTENT_LAYER]))

        def mse(a: torch.Tensor, b: torch.Tensor) -> float:
            return float((a - b).pow(2).mean())

        found = match_distortions(img, target, mse if match == "mse" else content, seed=seed)
        panels = [("original", img)]
        for kind, (out, strength, reached) in found.items():
            feats = vgg(out)
            lpips = losses.perceptual_distance(
                {k: feats[k] for k in losses.LPIPS_LAYERS}, {k: ref[k] for k in losses.LPIPS_LAYERS}
            )
            missed = "\nmax strength: target not reached" if reached < target else ""
            title = (
                f"{kind} (t = {strength:.3g}){missed}\n"
                f"MSE {mse(img, out):.4f}, content {content(img, out):.3f}\n"
                f"SSIM {float(ssim(out, img)):.3f}, LPIPS {float(lpips):.3f}"
            )
            panels.append((title, out))
    name = "MSE" if match == "mse" else f"content loss ({EVAL_CONTENT_LAYER})"
    fig, _, _ = image_rows_figure(
        [(title, out.cpu()) for title, out in panels], min_height=1.0,
        suptitle=f"every distortion tuned to the same {name} = {target:g}",
        footer=plotting.weights_footer(vgg.weights_name),
    )
    return fig


# ----------------------------------------------------------------------------- 07: SSIM between Grams


def gram_ssim_rows(
    content: Any = "chelsea_cat",
    style: Any = "van_gogh_church_at_auvers",
    layers: Sequence[str] = GATYS_STYLE_LAYERS,
    size: int | None = None,
    noise: float = 0.05,
    weights: str | None = "auto",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """SSIM between the style image's Gram and (a) a slightly perturbed style's, (b) the content's.

    Grams are averaged over positions (so the images' sizes do not matter) and scaled to [0, 1]
    with the style Gram's range, as :func:`nstlab.losses.ssim_gram_factor` does.

    Inputs:
    - content, style: images (long side ``size``, default 256 / 64 in smoke mode).
    - noise: standard deviation of the seeded Gaussian noise added to the style image.
    Returns:
    - one dict per layer: "layer", "channels", SSIM and factor (1 - SSIM)/2 of both comparisons.
    """
    size = _course_size(size)
    style_img = _image(style, size)
    perturbed = distort(style_img, "noise", noise, seed)
    vgg = VGGFeatures(list(layers), weights=weights)
    with torch.no_grad():
        fc = vgg(_image(content, size).to(vgg.device))
        fs = vgg(style_img.to(vgg.device))
        fp = vgg(perturbed.to(vgg.device))
    rows = []
    for layer in layers:
        a = losses.gram_matrix(fs[layer], "hw")
        f_p = losses.ssim_gram_factor(losses.gram_matrix(fp[layer], "hw"), a)
        f_c = losses.ssim_gram_factor(losses.gram_matrix(fc[layer], "hw"), a)
        rows.append(
            {
                "layer": layer,
                "channels": a.shape[-1],
                "SSIM(style, perturbed)": float(1 - 2 * f_p),
                "SSIM(style, content)": float(1 - 2 * f_c),
                "factor perturbed": float(f_p),
                "factor content": float(f_c),
            }
        )
    return rows


def visualize_gram_ssim(
    content: Any = "chelsea_cat",
    style: Any = "van_gogh_church_at_auvers",
    layer: str = "relu3_1",
    size: int | None = None,
    noise: float = 0.05,
    weights: str | None = "auto",
    seed: int = 0,
) -> Figure:
    """The scaled Grams Ã (style), G̃ (perturbed style) and G̃ (content) of one layer, and the
    SSIM of each comparison for every Gatys style layer.

    Inputs: as :func:`gram_ssim_rows`; layer: the layer whose Grams are drawn (one of
    GATYS_STYLE_LAYERS).
    Returns:
    - the Figure: 3 Gram axes (+ a colour bar) and 1 bar-chart axes.
    """
    if layer not in GATYS_STYLE_LAYERS:
        raise ValueError(f"visualize_gram_ssim: layer must be one of {GATYS_STYLE_LAYERS}, got {layer!r}")
    size = _course_size(size)
    rows = gram_ssim_rows(content, style, GATYS_STYLE_LAYERS, size, noise, weights, seed)
    style_img = _image(style, size)
    vgg = VGGFeatures([layer], weights=weights)
    with torch.no_grad():
        grams = {
            name: losses.gram_matrix(vgg(img.to(vgg.device))[layer], "hw")
            for name, img in [
                ("style", style_img),
                ("perturbed", distort(style_img, "noise", noise, seed)),
                ("content", _image(content, size)),
            ]
        }
    row = next(r for r in rows if r["layer"] == layer)
    fig = Figure(figsize=(MAX_FIGURE_WIDTH, 3.6), layout="constrained")
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.4]})
    titles = {
        "style": "style Gram $\\tilde{A}$\n(the target)",
        "perturbed": f"perturbed style $\\tilde{{G}}$\nSSIM {row['SSIM(style, perturbed)']:.3f}",
        "content": f"content $\\tilde{{G}}$\nSSIM {row['SSIM(style, content)']:.3f}",
    }
    for ax, (name, g) in zip(axes, grams.items()):
        scaled, _ = losses.gram_to_unit_range(g, grams["style"])
        norm = matplotlib.colors.PowerNorm(0.5, vmin=0, vmax=1, clip=True)
        image = ax.imshow(scaled[0].cpu().numpy(), cmap="magma", norm=norm)
        ax.set_title(f"{layer}: {titles[name]}", fontsize=10)
        ax.axis("off")
    fig.colorbar(image, ax=list(axes[:3]), shrink=0.8, label="scaled Gram (square-root colours)")
    x = np.arange(len(rows))
    axes[3].bar(x - 0.2, [r["SSIM(style, perturbed)"] for r in rows], 0.4, label="style vs perturbed style")
    axes[3].bar(x + 0.2, [r["SSIM(style, content)"] for r in rows], 0.4, label="style vs content")
    axes[3].set_xticks(x, [r["layer"] for r in rows], fontsize=8)
    axes[3].set_ylabel("SSIM of the scaled Grams")
    axes[3].axhline(0, color="grey", linewidth=0.8)
    axes[3].set_ylim(min(0.0, min(r["SSIM(style, content)"] for r in rows)), 1.25)
    axes[3].legend(fontsize=8, loc="upper center", ncol=2)
    _add_weights_footer(fig, [vgg.weights_name])
    return fig


def ssim_reweighting_rows(
    content: Any = "chelsea_cat",
    style: Any = "van_gogh_church_at_auvers",
    layers: Sequence[str] = GATYS_STYLE_LAYERS,
    size: int | None = None,
    weights: str | None = "auto",
    image: Any = None,
) -> list[dict[str, Any]]:
    """How the factor (1 - SSIM)/2 reweights the style layers, at one image x.

    Per layer: E_l (the engine's normalised term E_l / E_l(0, A)), the factor, and the layer's
    share of the style loss with uniform w_l, without (w_l E_l / sum) and with the factor
    (w_l E_l f_l / sum).

    Inputs:
    - content, style: images at long side ``size``; image: x (default: the content image, where
      the optimisation starts with init="content"), resized to the content's H, W.
    Returns:
    - one dict per layer: "layer", "E_l", "factor", "share plain", "share SSIM".
    """
    size = _course_size(size)
    content_img = _image(content, size)
    x = content_img if image is None else resize(_image(image), tuple(content_img.shape[-2:]))
    vgg = VGGFeatures(list(layers), weights=weights)
    with torch.no_grad():
        fx = vgg(x.to(vgg.device))
        fs = vgg(_image(style, size).to(vgg.device))
        terms = {l: normalized_style_term(fx[l], fs[l]) for l in layers}
        factors = {
            l: float(losses.ssim_gram_factor(losses.gram_matrix(fx[l], "hw"), losses.gram_matrix(fs[l], "hw")))
            for l in layers
        }
    plain_total = sum(terms.values())
    ssim_total = sum(terms[l] * factors[l] for l in layers)
    return [
        {
            "layer": l,
            "E_l": terms[l],
            "factor": factors[l],
            "share plain": terms[l] / plain_total,
            "share SSIM": terms[l] * factors[l] / ssim_total,
        }
        for l in layers
    ]


def visualize_ssim_reweighting(
    content: Any = "chelsea_cat",
    style: Any = "van_gogh_church_at_auvers",
    size: int | None = None,
    weights: str | None = "auto",
) -> Figure:
    """Bar charts: each Gatys style layer's factor (1 - SSIM)/2, and its share of the style loss
    with and without the factor, at the start of the optimisation (x = content).

    Returns:
    - the Figure: 2 axes.
    """
    rows = ssim_reweighting_rows(content, style, GATYS_STYLE_LAYERS, size, weights)
    x = np.arange(len(rows))
    names = [r["layer"] for r in rows]
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.bar(x, [r["factor"] for r in rows], color="tab:purple")
    left.set_xticks(x, names, fontsize=8)
    left.set_ylim(0, max(0.5, max(r["factor"] for r in rows) * 1.1))
    left.set_title(r"SSIM factor $(1 - \mathrm{SSIM}(\tilde{G}, \tilde{A}))\,/\,2$ per layer", fontsize=10)
    right.bar(x - 0.2, [r["share plain"] for r in rows], 0.4, label=r"plain Gatys: $w_l E_l$")
    right.bar(x + 0.2, [r["share SSIM"] for r in rows], 0.4, label=r"SSIM-weighted: $w_l E_l\,(1 - \mathrm{SSIM})/2$")
    right.set_xticks(x, names, fontsize=8)
    right.set_title("each layer's share of the style loss at x = content", fontsize=9)
    right.legend(fontsize=8)
    _add_weights_footer(fig, [VGGFeatures(["relu1_1"], weights=weights).weights_name])
    return fig


def preset_differences(a: str = "gatys", b: str = "ssim") -> list[dict[str, Any]]:
    """The options where two presets of :data:`nstlab.optimize.PRESETS` differ.

    Returns:
    - one dict per differing option: {"option", a, b}; options only one preset sets show "-".
    """
    for name in (a, b):
        if name not in PRESETS:
            raise ValueError(f"preset_differences: no preset {name!r}; presets are {list(PRESETS)}")
    keys = list(dict.fromkeys([*PRESETS[a], *PRESETS[b]]))
    return [
        {"option": k, a: PRESETS[a].get(k, "-"), b: PRESETS[b].get(k, "-")}
        for k in keys
        if PRESETS[a].get(k, "-") != PRESETS[b].get(k, "-")
    ]


SSIM_VARIANTS: dict[str, dict[str, Any]] = {
    "gatys": {"preset": "gatys"},
    "gatys + SSIM weighting": {"preset": "gatys", "ssim_weighting": True},
    "ssim (blog preset)": {"preset": "ssim"},
}
"""The side-by-side of notebook 07: plain Gatys, Gatys with only the SSIM factor added, and the
blog's whole recipe (SSIM factor, relu5_2 content layer, Adam)."""


def visualize_ssim_vs_gatys(
    content: Any = "chelsea_cat",
    style: Any = "van_gogh_church_at_auvers",
    size: int | None = None,
    steps: int | None = None,
    style_weight: float | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    variants: Mapping[str, Mapping[str, Any]] | None = None,
) -> Figure:
    """Plain Gatys vs the SSIM-weighted style loss on the same images, seed and steps.

    Every run gets the same size, steps, seed and weights; each variant (default
    :data:`SSIM_VARIANTS`) sets only its preset/options. ``style_weight`` overrides every variant's
    (None: each preset's own). Under each picture: the plain Gatys style and content losses of the
    result (one yardstick for all, see :func:`evaluate_images`).

    Returns:
    - the Figure of :func:`visualize_runs` (2 inputs + one image per variant, 2 loss plots).
    """
    variants = SSIM_VARIANTS if variants is None else variants
    results = run_variants(content, style, variants, _course_size(size), _course_steps(steps), seed, weights,
                           **_given(style_weight=style_weight))
    rows = evaluate_results(results, content, style, weights)
    return visualize_runs(results, content, style, rows, show=("style loss", "content loss"))


# ----------------------------------------------------------------------------- 08: colour


def visualize_yiq_channels(image: Any = "eilean_donan_castle", size: int | None = None) -> Figure:
    """An RGB image and its Y (luminance), I and Q (chrominance) channels.

    Inputs:
    - image: tensor, path, bundled name or ImagePicker; size: long side (default 256, 64 in smoke).
    Returns:
    - the Figure: 4 image axes (RGB, Y in grey, I and Q on a diverging map centred at 0).
    """
    img = _image(image, _course_size(size))
    yiq = color.rgb_to_yiq(img)[0].cpu().numpy()
    fig = Figure(figsize=(13, 3.2), layout="constrained")
    axes = fig.subplots(1, 4)
    axes[0].imshow(image_array(img))
    axes[0].set_title("RGB", fontsize=9)
    panels = [
        ("Y = 0.299 R + 0.587 G + 0.114 B", yiq[0], "gray", (0.0, 1.0)),
        ("I (orange ↔ blue)", yiq[1], "RdBu_r", (-0.6, 0.6)),
        ("Q (purple ↔ green)", yiq[2], "PiYG_r", (-0.53, 0.53)),
    ]
    for ax, (title, channel, cmap, (lo, hi)) in zip(axes[1:], panels):
        image_ = ax.imshow(channel, cmap=cmap, vmin=lo, vmax=hi)
        fig.colorbar(image_, ax=ax, shrink=0.75)
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.axis("off")
    return fig


def visualize_luminance_matching(
    content: Any = "eilean_donan_castle", style: Any = "van_gogh_night_cafe", size: int | None = None
) -> Figure:
    """The content's luminance, the style's, the style's matched to the content's mean and standard
    deviation (:func:`nstlab.color.luminance_only_inputs`), and the three histograms.

    Returns:
    - the Figure: 3 image axes and 1 histogram axes.
    """
    size = _course_size(size)
    content_img, style_img = _image(content, size), _image(style, size)
    content_lum, style_matched = color.luminance_only_inputs(content_img, style_img)
    lums = {
        "content Y": content_lum[:, :1],
        "style Y": color.luminance(style_img),
        "style Y matched": style_matched[:, :1],
    }
    fig = Figure(figsize=(13, 3.2), layout="constrained")
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.3]})
    for ax, (name, y) in zip(axes, lums.items()):
        ax.imshow(y[0, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{name}\nmean {float(y.mean()):.3f}, sd {float(y.std(correction=0)):.3f}", fontsize=9)
        ax.axis("off")
        axes[3].hist(y.flatten().cpu().numpy(), bins=40, range=(-0.2, 1.2), histtype="step", label=name, density=True)
    axes[3].set_title("luminance histograms", fontsize=9)
    axes[3].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)  # off the curves
    return fig


def color_statistics(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean colour and 3x3 colour covariance (population) of the first image, in float64.

    Inputs:
    - img: (N, 3, H, W) RGB.
    Returns:
    - (mean (3,), covariance (3, 3)).
    """
    pixels = img[0].to(torch.float64).flatten(1)  # (3, M)
    mean = pixels.mean(dim=1)
    centred = pixels - mean[:, None]
    return mean, centred @ centred.T / pixels.shape[1]


def gaussian_color_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """2-Wasserstein distance between the Gaussian fits of two images' colour distributions.

    W2^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_b^1/2 S_a S_b^1/2)^1/2): 0 exactly when the means
    and covariances match (what the colour transfer of :func:`nstlab.color.match_color_histogram`
    achieves; its "sym" mode is the optimal-transport map that reaches it).

    Inputs:
    - a, b: (N, 3, H, W) RGB (first images used), any sizes.
    Returns:
    - the distance (a float >= 0).
    """

    def sqrtm(m: torch.Tensor) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh(0.5 * (m + m.T))
        return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T

    mu_a, s_a = color_statistics(a)
    mu_b, s_b = color_statistics(b)
    half_b = sqrtm(s_b)
    cross = sqrtm(half_b @ s_a @ half_b)
    w2 = float((mu_a - mu_b).pow(2).sum() + torch.trace(s_a + s_b - 2 * cross))
    scale = float(mu_a.pow(2).sum() + mu_b.pow(2).sum() + torch.trace(s_a + s_b))
    return math.sqrt(w2) if w2 > 1e-12 * scale else 0.0  # below that: rounding error of the square roots


def histogram_matching_rows(
    content: Any = "eilean_donan_castle",
    style: Any = "van_gogh_night_cafe",
    size: int | None = None,
    clamp: bool = False,
) -> list[dict[str, Any]]:
    """Colour statistics of the content, the style, and the style recoloured by each mode.

    Inputs:
    - content, style: images at long side ``size``; clamp: clamp the recoloured images to [0, 1]
      (then the statistics match only approximately).
    Returns:
    - one dict per image: "image", mean R, G, B, the six covariance entries, and
      "W2 to content" (:func:`gaussian_color_distance`).
    """
    size = _course_size(size)
    content_img, style_img = _image(content, size), _image(style, size)
    images = {"content (target)": content_img, "style (source)": style_img}
    for mode in color.COLOR_MODES:
        images[f"style, {mode}"] = color.match_color_histogram(style_img, content_img, mode=mode, clamp=clamp)
    rows = []
    for name, img in images.items():
        mean, cov = color_statistics(img)
        row: dict[str, Any] = {"image": name}
        row.update({f"mean {c}": float(mean[i]) for i, c in enumerate("RGB")})
        pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
        row.update({f"cov {'RGB'[i]}{'RGB'[j]}": float(cov[i, j]) for i, j in pairs})
        row["W2 to content"] = gaussian_color_distance(img, content_img)
        rows.append(row)
    return rows


def visualize_histogram_matching(
    content: Any = "eilean_donan_castle",
    style: Any = "van_gogh_night_cafe",
    size: int | None = None,
    clamp: bool = True,
) -> Figure:
    """The style image recoloured to the content's palette by each mode, with RGB histograms.

    Returns:
    - the Figure: 5 image axes (content, style, then the "cholesky", "pca" and "sym" recolourings)
      above 5 histogram axes (each image's R, G, B; the content's dashed for reference).
    """
    size = _course_size(size)
    content_img, style_img = _image(content, size), _image(style, size)
    images = {"content (target palette)": content_img, "style (source)": style_img}
    for mode in color.COLOR_MODES:
        recoloured = color.match_color_histogram(style_img, content_img, mode=mode, clamp=clamp)
        images[f"style recoloured: {mode}"] = recoloured
    fig = Figure(figsize=(MAX_FIGURE_WIDTH, 5.4), layout="constrained")
    axes = fig.subplots(2, len(images), gridspec_kw={"height_ratios": [1.4, 1]})
    reference = content_img[0].flatten(1).cpu().numpy()
    for k, (name, img) in enumerate(images.items()):
        draw_image(axes[0, k], img, f"{name}\nW2 to content {gaussian_color_distance(img, content_img):.3f}")
        pixels = img[0].flatten(1).cpu().numpy()
        hist = {"bins": 32, "range": (0, 1), "histtype": "step", "density": True}
        for i, c in enumerate(("tab:red", "tab:green", "tab:blue")):
            axes[1, k].hist(pixels[i], color=c, **hist)
            axes[1, k].hist(reference[i], color=c, linestyle="--", alpha=0.5, **hist)
        axes[1, k].set_yticks([])
        axes[1, k].set_xlabel("R, G, B value (dashed: content)", fontsize=9)
    return fig


COLOR_VARIANTS: dict[str, dict[str, Any]] = {
    "plain transfer": {"preserve_color": None},
    "luminance only": {"preserve_color": "luminance"},
    "histogram matched": {"preserve_color": "histogram"},
}
"""The side-by-side of notebook 08: stylize's three ``preserve_color`` settings."""


def visualize_color_preservation(
    content: Any = "eilean_donan_castle",
    style: Any = "van_gogh_night_cafe",
    size: int | None = None,
    steps: int | None = None,
    style_weight: float | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    preset: str = "gatys",
) -> Figure:
    """Plain transfer, luminance-only transfer and histogram-matched transfer, same images and seed.

    Under each result: the colour distance (:func:`gaussian_color_distance`) to the content's
    palette and to the style's. ``style_weight`` None: the preset's.

    Returns:
    - the Figure of :func:`visualize_runs` (2 inputs + 3 results, 2 loss plots).
    """
    size = _course_size(size)
    results = run_variants(content, style, COLOR_VARIANTS, size, _course_steps(steps), seed, weights, preset=preset,
                           **_given(style_weight=style_weight))
    content_img, style_img = _image(content, size), _image(style, size)
    rows = [
        {
            "image": name,
            "colour W2 to content": gaussian_color_distance(r.image, content_img),
            "to style": gaussian_color_distance(r.image, style_img),
        }
        for name, r in results.items()
    ]
    return visualize_runs(results, content_img, style_img, rows, show=("colour W2 to content", "to style"))


# ----------------------------------------------------------------------------- 09: evaluation


def _lpips(vgg: VGGFeatures, a: torch.Tensor, b: torch.Tensor) -> float:
    with torch.no_grad():
        fa, fb = vgg(a.to(vgg.device)), vgg(b.to(vgg.device))
    return float(losses.perceptual_distance(fa, fb)[0])


def _l2(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared difference on LPIPS' [-1, 1] pixel scale (white vs black gives 4)."""
    return float((2 * a - 2 * b).pow(2).mean())


YUAN_HUANG_INTENSITY = {("white", "black"): 0.4538, ("white", "grey"): 0.4945, ("grey", "black"): 0.5390}
"""The perceptual (LPIPS) distances of flat images in Yuan & Huang's Fig. 5 ("Learning with Image Style
Transfer", NYU 2021: the course's nst_layers_lpips_perceptual.txt), for comparison."""


def intensity_rows(size: int = 64, weights: str | None = "auto") -> list[dict[str, Any]]:
    """Yuan & Huang's intensity experiment (their Fig. 5): L2 and LPIPS-form distances of flat images.

    Inputs:
    - size: side of the square white (1), black (0) and grey (0.5) images; weights: VGG19 weights.
    Returns:
    - one dict per pair (white, black), (white, grey), (grey, black): "pair", "L2" (mean squared
      difference on [-1, 1] pixels, as LPIPS scales them), "perceptual", and "Yuan & Huang's
      perceptual" (:data:`YUAN_HUANG_INTENSITY`: learned LPIPS weights, ImageNet features).
    """
    flat = {name: torch.full((1, 3, size, size), v) for name, v in (("white", 1.0), ("black", 0.0), ("grey", 0.5))}
    vgg = VGGFeatures(losses.LPIPS_LAYERS, weights=weights)
    return [
        {
            "pair": f"({a}, {b})",
            "L2": _l2(flat[a], flat[b]),
            "perceptual": _lpips(vgg, flat[a], flat[b]),
            "Yuan & Huang's perceptual": YUAN_HUANG_INTENSITY[(a, b)],
        }
        for a, b in YUAN_HUANG_INTENSITY
    ]


def contrast_images(
    image: Any = "tower_bridge", levels: Sequence[float] = (1.0, 0.75, 0.5), size: int | None = None
) -> dict[str, torch.Tensor]:
    """The image at several contrasts: mu + c (x - mu), mu the mean of each channel.

    Returns:
    - {"image 1 (c = 1)": ..., "image 2 (c = 0.75)": ..., ...}: (1, 3, H, W) tensors.
    """
    img = _image(image, _course_size(size))
    return {f"image {i} (c = {c:g})": distort(img, "contrast", 1 - c) for i, c in enumerate(levels, start=1)}


def contrast_rows(
    image: Any = "tower_bridge",
    levels: Sequence[float] = (1.0, 0.75, 0.5),
    size: int | None = None,
    weights: str | None = "auto",
) -> list[dict[str, Any]]:
    """Yuan & Huang's contrast experiment (their Fig. 6): image 1 against the lower-contrast versions.

    Returns:
    - one dict per pair (image 1, image k): "pair", "L2", "perceptual", and both as a ratio to the
      first pair's (Yuan & Huang: L2 grows about 4x from c = 0.75 to 0.5, perceptual about 3.6x).
    """
    images = list(contrast_images(image, levels, size).values())
    vgg = VGGFeatures(losses.LPIPS_LAYERS, weights=weights)
    rows = []
    for k in range(1, len(images)):
        l2, perceptual = _l2(images[0], images[k]), _lpips(vgg, images[0], images[k])
        rows.append({"pair": f"(image 1, image {k + 1})", "L2": l2, "perceptual": perceptual})
    for row in rows:
        row["L2 ratio"] = row["L2"] / rows[0]["L2"]
        row["perceptual ratio"] = row["perceptual"] / rows[0]["perceptual"]
    return rows


def single_layer_style_runs(
    content: Any = "tower_bridge",
    style: Any = "van_gogh_cafe_terrace_at_night",
    layers: Sequence[str] = GATYS_STYLE_LAYERS,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
) -> dict[str, Result]:
    """Yuan & Huang's first experiment: style from one layer at a time, content weight 0, noise init.

    Inputs:
    - content: only sets the output's size and aspect here; layers: the style layers to try.
    Returns:
    - {layer: Result}.
    """
    variants = {layer: {"style_layers": [layer]} for layer in layers}
    return run_variants(
        content, style, variants, _course_size(size), _course_steps(steps), seed, weights,
        preset="gatys", content_weight=0.0, init="noise",
    )


def single_layer_content_runs(
    content: Any = "tower_bridge",
    style: Any = "van_gogh_cafe_terrace_at_night",
    style_layer: str = "relu3_1",
    layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"),
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
) -> dict[str, Result]:
    """Yuan & Huang's second experiment: one style layer fixed, one content layer at a time, noise init.

    Returns:
    - {"content <layer>": Result}: the names leave out the style layer, the same for every run (say
      it in a figure's suptitle; each Result's settings hold it).
    """
    variants = {f"content {layer}": {"style_layers": [style_layer], "content_layers": [layer]} for layer in layers}
    return run_variants(
        content, style, variants, _course_size(size), _course_steps(steps), seed, weights, preset="gatys", init="noise"
    )


def visualize_evaluation(
    content: Any = "tower_bridge",
    style: Any = "van_gogh_cafe_terrace_at_night",
    preset: str = "gatys",
    style_weight: float | None = None,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
) -> Figure:
    """One run, its images and loss curves, and a table of its distances to the inputs.
    ``style_weight`` None: the preset's.

    Returns:
    - the Figure: content, style, result, the loss curves and a table (5 axes).
    """
    results = run_variants(
        content, style, {preset: {"preset": preset}}, _course_size(size), _course_steps(steps), seed, weights,
        **_given(style_weight=style_weight),
    )
    rows = evaluate_results(results, content, style, weights)
    (result,) = results.values()
    fig = Figure(figsize=(MAX_FIGURE_WIDTH, 4.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.4, 0.9])
    axes = top.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.6]})
    panels = [
        ("content", _image(content)),
        ("style", _image(style)),
        (f"{preset}, style weight {result.settings['style_weight']:g}", result.image),
    ]
    for ax, (title, img) in zip(axes, panels):
        draw_image(ax, img, title)
    plotting.plot_losses(result.history, ax=axes[3], title="the run's own loss terms")
    _mpl_table(bottom.subplots(), rows)
    _add_weights_footer(fig, [result.weights_name])
    return fig


# --- notebook 11: fast style transfer ------------------------------------------------------------------

def plot_training(
    result: fast.FastTrainingResult, test_images: Sequence[str] = fast.HELD_OUT, size: int | None = None
) -> Figure:
    """The trained network on ``test_images`` (bundled names, long side ``size``, default
    smoke_or(256, 64)), the style image and the loss curves, with the weights footer."""
    size = smoke_or(256, 64) if size is None else size
    panels = [
        (f"{name} (held out)" if name in fast.HELD_OUT else name, fast.stylize_fast(result.model, name, size))
        for name in test_images
    ]
    style = result.settings["style"]
    if not style.startswith("tensor("):
        panels.append((f"style: {os.path.splitext(os.path.basename(style))[0]}", as_image(style, size)))
    return plotting.plot_images_and_losses(panels, result.history, result.weights_name,
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
    """Train a network (:func:`nstlab.fast.train_fast` with ``train_options``) and :func:`plot_training` it:
    the function behind the notebook's re-training widget."""
    result = fast.train_fast(
        style, content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight, **train_options
    )
    return plot_training(result, test_images, test_size)


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

    Inputs: content/style as for ``stylize``; size: long side (smoke_or(256, 64)); steps: the
    optimisation's steps (default: the engine's); stylize_options go to ``stylize``.
    Returns: a :class:`SpeedComparison` (wall-clock seconds, both images).
    """
    size = fast._check_int("compare_speed", "size", smoke_or(256, 64) if size is None else size, 16)
    repeats = fast._check_int("compare_speed", "repeats", repeats, 1)
    device = default_device(device)
    image = as_image(content, size)
    _sync(device)
    began = time.perf_counter()
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
