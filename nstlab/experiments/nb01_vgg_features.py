"""Notebook 01, VGG19 features — faces layer: the layer table, receptive fields and what each depth keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from nstlab.plotting import MAX_FIGURE_WIDTH
from nstlab.vgg import GATYS_STYLE_LAYERS, RELU_LAYERS, VGG19_LAYERS, VGGFeatures, vgg19_features

from .common import Table, _image, course_size


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


def visualize_layer_geometry(image: Any = "tower_bridge", size: int | None = None) -> Figure:
    """How VGG19 trades space for channels, and how far each unit sees.

    Left: channels and spatial positions H·W after every ReLU and pool (log scale). Middle: receptive
    field and stride. Right: the image with the receptive field of one unit of relu1_1 ... relu5_1.
    Inputs: image: tensor, path or bundled name; size: long side (default :func:`course_size`).
    Returns: the Figure.
    """
    x = _image(image, course_size(size))
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
    for layer, colour in zip(GATYS_STYLE_LAYERS, colours):
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
    x = _image(image, course_size(size))
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
