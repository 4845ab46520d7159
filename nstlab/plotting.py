"""Figures for the course — faces layer: images side by side, loss curves, feature maps, Gram matrices.

Every function returns a ``matplotlib.figure.Figure`` made without pyplot, so nothing is left open
and a notebook shows the figure exactly once when it is the cell's value (or through ``display``).
Pictures of a stylised image carry a footer naming the VGG19 weights that made them.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.colors
import matplotlib.ticker
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from nstlab.images import as_image, to_pil
from nstlab.vgg import weights_label

MAX_FIGURE_WIDTH = 13.0
"""Inches: the widest figure drawn here. A notebook scales a wider one down to its column, text and all."""

LOSS_TERMS = ("total", "content", "style", "tv")
"""The loss curves drawn by :func:`plot_losses`, in this order (other keys but "scale" follow)."""

MARKER_MAX_POINTS = 30
"""A curve of at most this many points is drawn with a dot at each point (one point alone draws no line)."""


def curve_markers(n_points: int) -> dict[str, Any]:
    """Keyword arguments for ``Axes.plot`` of a curve of ``n_points`` values: small dots when the curve is
    short (a run of one step still shows), none on a long one (where they would hide the line)."""
    return {"marker": "o", "markersize": 3} if n_points <= MARKER_MAX_POINTS else {}


def step_axis(ax: Axes, label: str = "step") -> None:
    """Label the x axis of a curve against the step and tick it at whole steps only (a run of a single
    step gets the one tick 0, not -0.04 ... 0.04), as many ticks as the axis' width has room for (a fixed
    count ran "105" and "120" together on a narrow axis)."""
    ax.set_xlabel(label)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins="auto", integer=True, min_n_ticks=1))


def weights_footer(weights_name: str) -> str:
    """The label of the weights for a figure footer; untrained weights carry a warning."""
    label = weights_label(weights_name)
    if weights_name == "random":
        return f"{label} — pictures show colour/texture transfer only"
    return label


def runs_footer(runs: Sequence[Any]) -> str:
    """The footer of a figure of runs (``stylize``'s or ``train_fast``'s results): the weights of each and the
    precision its network computed in, each combination once, e.g. "VGG19: ImageNet weights (network in bf16)"."""
    seen = dict.fromkeys((run.weights_name, getattr(run, "precision", "fp32")) for run in runs)
    return "; ".join(
        weights_footer(name).replace(weights_label(name), f"{weights_label(name)} (network in {precision})", 1)
        for name, precision in seen
    )


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for ``ipywidgets.Image`` and ``IPython.display.Image``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def image_png(img: torch.Tensor) -> bytes:
    """The first image of a (N, 3, H, W) or (3, H, W) tensor in [0, 1] as PNG bytes."""
    buffer = io.BytesIO()
    to_pil(img).save(buffer, format="png")
    return buffer.getvalue()


def image_array(img: torch.Tensor) -> np.ndarray:
    """The first image of a (N, C, H, W) / (C, H, W) tensor (C = 1 or 3) as an (H, W, 3) array in [0, 1]."""
    return as_image(img)[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def _as_panels(images: Any, titles: Sequence[str] | None) -> list[tuple[str, torch.Tensor]]:
    """(title, (1, 3, H, W) image) per image; a batch of N images gives N panels."""
    if isinstance(images, torch.Tensor):
        images = [images]
    if isinstance(images, Mapping):
        names, tensors = list(images), list(images.values())
    else:
        tensors = list(images)
        names = list(titles) if titles is not None else [""] * len(tensors)
    if len(names) != len(tensors):
        raise ValueError(f"plot_images: {len(tensors)} images but {len(names)} titles")
    panels = []
    for name, tensor in zip(names, tensors):
        batch = as_image(tensor)  # (N, 3, H, W)
        for i, img in enumerate(batch):
            panels.append((name if len(batch) == 1 else f"{name} [{i}]", img[None]))
    return panels


def _grid(n: int, ncols: int | None, size: float, aspect: float) -> tuple[Figure, list[Axes]]:
    """n panels, ``size`` inches wide (less if a row would be wider than MAX_FIGURE_WIDTH) and
    ``size * aspect`` (plus room for titles) high, axes off."""
    ncols = min(n, ncols or 4)
    nrows = math.ceil(n / ncols)
    size = min(size, MAX_FIGURE_WIDTH / ncols)
    fig = Figure(figsize=(size * ncols, (size * aspect + 0.35) * nrows + 0.3), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes:
        ax.axis("off")
    return fig, axes


def draw_image(ax: Axes, img: torch.Tensor, title: str, fontsize: float = 9) -> None:
    """An image panel: the image in ``ax``, titled, axes off (small images drawn as crisp pixels)."""
    arr = image_array(img)
    ax.imshow(arr, interpolation="nearest" if max(arr.shape[:2]) < 128 else "antialiased")
    ax.set_title(title, fontsize=fontsize)
    ax.axis("off")


PANEL_GAP = 0.15
"""Inches between two image panels of a row (constrained layout's padding), for :func:`arrange_panels`."""


def arrange_panels(
    aspects: Sequence[float],
    max_width: float = MAX_FIGURE_WIDTH,
    max_height: float = 2.6,
    min_height: float = 1.5,
    max_per_row: int | None = None,
) -> tuple[list[list[int]], float]:
    """Split image panels into rows: images of a row share one height, their widths in proportion.

    The fewest rows (panels in order, counts as even as possible, at most ``max_per_row`` in a row)
    in which every row fits ``max_width`` with images at least ``min_height`` tall; if none does,
    one panel a row.

    Inputs: aspects: width / height of each panel's image; widths and heights in inches.
    Returns: (rows: lists of panel indices, image height in inches, at most ``max_height``).
    """
    if not aspects:
        raise ValueError("arrange_panels: no panels")
    n = len(aspects)
    for n_rows in range(math.ceil(n / (max_per_row or n)), n + 1):
        per = math.ceil(n / n_rows)
        rows = [list(range(i, min(i + per, n))) for i in range(0, n, per)]
        fits = min((max_width - PANEL_GAP * len(r)) / sum(aspects[i] for i in r) for r in rows)
        if fits >= min_height:
            break
    return rows, min(max_height, fits)


def _title_height(titles: Sequence[str], fontsize: float) -> float:
    """Inches taken by the tallest of these axes titles (lines of ``fontsize`` points and the title's pad)."""
    lines = max(t.count("\n") + 1 for t in titles)
    return lines * 1.25 * fontsize / 72 + 0.12


def image_rows_figure(
    panels: Sequence[tuple[str, torch.Tensor]],
    below: float = 0.0,
    fontsize: float = 10,
    min_height: float = 1.5,
    min_width: float = 0.0,
    suptitle: str | None = None,
    footer: str | None = None,
    max_height: float = 2.6,
    max_per_row: int | None = None,
) -> tuple[Figure, list[Axes], Any]:
    """A figure at most MAX_FIGURE_WIDTH wide: the images in rows (:func:`arrange_panels`), each row as
    tall as its images and titles (no empty band), and optionally a part ``below`` inches high.

    Inputs:
    - panels: (title, (1, 3, H, W) image) in order; fontsize: of the titles.
    - below: height of the part under the images (0: none); min_width: its width at least (inches).
    - suptitle, footer: text above everything and small text below.
    - min_height, max_height, max_per_row: for :func:`arrange_panels`.
    Returns: (the Figure, one image Axes per panel, the SubFigure below or None).
    """
    aspects = [img.shape[-1] / img.shape[-2] for _, img in panels]
    rows, height = arrange_panels(aspects, max_height=max_height, min_height=min_height, max_per_row=max_per_row)
    row_heights = [height + _title_height([panels[i][0] for i in row], fontsize) + 0.1 for row in rows]
    width = max(sum(aspects[i] for i in row) * height + PANEL_GAP * len(row) for row in rows)
    width = min(MAX_FIGURE_WIDTH, max(width, min_width))
    extra = (0.4 if suptitle else 0.0) + (0.3 if footer else 0.0)

    def build(fig_height: float, ratios: list[float]) -> tuple[Figure, list[Any], list[list[Axes]]]:
        fig = Figure(figsize=(width, fig_height), layout="constrained")
        parts = fig.subfigures(len(ratios), 1, squeeze=False, height_ratios=ratios)[:, 0].tolist()
        row_axes = []
        for part, row in zip(parts, rows):
            used = sum(aspects[i] for i in row) * height + PANEL_GAP * len(row)
            if used < width - 0.05:  # a short row in the middle third: its images keep the others' height
                part = part.subfigures(1, 3, width_ratios=[width - used, 2 * used, width - used])[1]
            widths = {"width_ratios": [aspects[i] for i in row]}
            row_axes.append(part.subplots(1, len(row), squeeze=False, gridspec_kw=widths)[0])
            for ax, i in zip(row_axes[-1], row):
                draw_image(ax, panels[i][1], panels[i][0], fontsize)
                ax.set_anchor("S")  # the image at the bottom of its box, so the spare height is all above it
        if suptitle:
            fig.suptitle(suptitle)
        if footer:
            fig.supxlabel(footer, fontsize=8)
        return fig, parts, row_axes

    ratios = row_heights + ([below] if below else [])
    fig, parts, row_axes = build(sum(ratios) + extra, ratios)
    # laid out once, each row's boxes are taller than its width-limited images: build again without that
    spare = [max(0.0, x - 0.03) for x in _spare_heights(fig, parts, row_axes)]  # 0.03 in: rounding
    heights = [part.bbox.height / fig.dpi for part in parts]
    trimmed = [h - s for h, s in zip(heights, spare)] + heights[len(spare):]
    fig, parts, row_axes = build(fig.get_size_inches()[1] - sum(spare), trimmed)
    return fig, [ax for axes in row_axes for ax in axes], parts[-1] if below else None


def _spare_heights(fig: Figure, parts: Sequence[Any], row_axes: Sequence[Sequence[Axes]]) -> list[float]:
    """Lay the figure out and return, per row of image axes (in its own subfigure of ``parts``), the
    inches of its height that its images and titles leave empty (constrained layout centres a
    width-limited image in a taller box)."""
    fig.draw_without_rendering()
    pad = 2 * fig.get_layout_engine().get()["h_pad"] * fig.dpi  # constrained layout's padding, top and bottom
    spare = []
    for part, axes in zip(parts, row_axes):
        used = Bbox.union([ax.get_tightbbox() for ax in axes]).height + pad
        spare.append(max(part.bbox.height - used, 0.0) / fig.dpi)
    return spare


def plot_images(
    images: Sequence[torch.Tensor] | Mapping[str, torch.Tensor] | torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 3.0,
    suptitle: str | None = None,
    footer: str | None = None,
) -> Figure:
    """Images side by side in rows (:func:`image_rows_figure`): the images of a row share one height,
    their widths in proportion, and no row is wider than MAX_FIGURE_WIDTH.

    Inputs:
    - images: a list of tensors, a dict {title: tensor}, or one tensor; each (N, 3, H, W), (3, H, W)
      or one channel, values in [0, 1]. Every image of a batch gets its own panel.
    - titles: one per tensor (for a list); ncols: panels per row at most (default: as many as fit).
    - size: inches of the widest image's width (the others as tall); images shrink by up to a
      quarter to need fewer rows, and more to fit the width.
    - suptitle: a title above; footer: a line of small text below.
    Returns: the Figure.
    """
    panels = _as_panels(images, titles)
    if not panels:
        raise ValueError("plot_images: no images given")
    height = size / max(img.shape[-1] / img.shape[-2] for _, img in panels)
    return image_rows_figure(panels, fontsize=10, min_height=0.75 * height, max_height=height,
                             max_per_row=ncols, suptitle=suptitle, footer=footer)[0]


def plot_losses(
    history: Mapping[str, Sequence[float]], ax: Axes | None = None, log: bool = True, title: str | None = None
) -> Figure:
    """One curve per loss term against the step ("scale" is drawn as dashed scale boundaries).

    Inputs:
    - history: {"total", "content", "style", "tv", ...: one float per step} (``Result.history``).
    - ax: draw into this axes (else a new figure); log: log y axis when the values are >= 0
      (zeros are not drawn).
    Returns: the Figure holding the axes; the legend sits outside the axes, right of it, so it
    covers no curve, and short curves have a dot per step.
    """
    if ax is None:
        ax = Figure(figsize=(6, 3.2), layout="constrained").subplots()
    names = [n for n in LOSS_TERMS if n in history] + [n for n in history if n not in LOSS_TERMS + ("scale",)]
    values = [np.asarray(history[n], dtype=float) for n in names]
    for name, v in zip(names, values):
        ax.plot(np.arange(len(v)), v, label=name, linewidth=2.0 if name == "total" else 1.2, **curve_markers(len(v)))
    drawn = np.concatenate(values) if values else np.zeros(0)
    if log and np.any(drawn > 0) and np.all(drawn >= 0):
        ax.set_yscale("log", nonpositive="mask")  # a zero (e.g. content loss at step 0) is left out
    scales = list(history.get("scale", []))
    for step in range(1, len(scales)):
        if scales[step] != scales[step - 1]:
            ax.axvline(step - 0.5, color="grey", linestyle="--", linewidth=0.8)
    step_axis(ax)
    ax.set_ylabel("loss (unweighted terms)")
    if names:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def plot_result(result: Any, content: Any = None, style: Any = None) -> Figure:
    """Content | style | result (| best, if it differs) and the loss curves, with a weights footer.

    Inputs:
    - result: a ``nstlab.optimize.Result``.
    - content, style: optional input images (tensors, paths or bundled names) to show first.
    Returns: the Figure.
    """
    panels: list[tuple[str, torch.Tensor]] = []
    if content is not None:
        panels.append(("content", as_image(content)))
    if style is not None:
        panels.append(("style", as_image(style)))
    steps = len(result.history["total"])
    ending = "stopped" if result.interrupted else "result"
    panels.append((f"{ending} ({steps} steps)", result.image))
    if result.best_step != steps - 1:  # the best is not simply the last evaluated image
        panels.append((f"best (step {result.best_step})", result.best_image))
    return plot_images_and_losses(panels, result.history, runs_footer([result]))


def plot_images_and_losses(
    panels: Sequence[tuple[str, torch.Tensor]],
    history: Mapping[str, Sequence[float]],
    footer: str,
    losses_title: str = "losses",
) -> Figure:
    """Images in a row, then the loss curves (:func:`plot_losses`), with a footer.

    Inputs:
    - panels: (title, (1, 3, H, W) image) pairs; history: {"total", ...: one float per step}.
    - footer: e.g. :func:`runs_footer` of the run; losses_title: above the curves.
    Returns: the Figure.
    """
    n = len(panels)
    fig = Figure(figsize=(3.0 * n + 4.5, 3.4), layout="constrained")
    grid = fig.add_gridspec(1, n + 1, width_ratios=[1.0] * n + [1.5])
    for i, (title, img) in enumerate(panels):
        draw_image(fig.add_subplot(grid[0, i]), img, title, fontsize=10)
    plot_losses(history, ax=fig.add_subplot(grid[0, n]), title=losses_title)
    fig.supxlabel(footer, fontsize=8)
    return fig


def _normalise(x: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a constant map becomes 0."""
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def plot_feature_maps(
    feat: torch.Tensor, n: int = 16, title: str | None = None, most_active: bool = False, ncols: int = 8
) -> Figure:
    """A grid of feature channels, each min-max normalised for display.

    Inputs:
    - feat: (1, C, H, W) or (C, H, W) features; n: how many channels to show.
    - most_active: show the n channels of largest mean activation instead of the first n.
    Returns: the Figure; panel titles give the channel index.
    """
    if feat.dim() == 4:
        if feat.shape[0] != 1:
            raise ValueError(f"plot_feature_maps: expected one feature map (1, C, H, W), got {tuple(feat.shape)}")
        feat = feat[0]
    if feat.dim() != 3:
        raise ValueError(f"plot_feature_maps: expected (1, C, H, W) or (C, H, W), got {tuple(feat.shape)}")
    maps = feat.detach().double().cpu()
    n = min(n, maps.shape[0])
    order = maps.mean(dim=(1, 2)).argsort(descending=True)[:n] if most_active else torch.arange(n)
    fig, axes = _grid(n, ncols, 1.5, maps.shape[1] / maps.shape[2])
    for ax, c in zip(axes, order.tolist()):
        ax.imshow(_normalise(maps[c].numpy()), cmap="viridis")
        ax.set_title(f"ch {c}", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_matrix(m: torch.Tensor, title: str | None = None, ax: Axes | None = None, log: bool = False) -> Figure:
    """A matrix (e.g. a Gram matrix) as an image with a colour bar.

    Inputs:
    - m: (C, C) or (1, C, C); log: colour by |m| on a log scale (shows how sparse a Gram is).
    Returns: the Figure holding the axes.
    """
    if m.dim() == 3 and m.shape[0] == 1:
        m = m[0]
    if m.dim() != 2:
        raise ValueError(f"plot_matrix: expected (C, C) or (1, C, C), got {tuple(m.shape)}")
    if ax is None:
        ax = Figure(figsize=(4.2, 3.6), layout="constrained").subplots()
    values = m.detach().double().cpu().numpy()
    if log:
        values = np.abs(values)
        top = max(values.max(), 1e-300)
        positive = values[values > 0]
        low = max(positive.min() if positive.size else top, top * 1e-12)
        image = ax.imshow(values, cmap="magma", norm=matplotlib.colors.LogNorm(vmin=low, vmax=top, clip=True))
        label = "|value| (log scale)"
    else:
        image = ax.imshow(values, cmap="viridis")
        label = "value"
    ax.figure.colorbar(image, ax=ax, label=label)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def final_losses(history: Mapping[str, Sequence[float]], terms: Sequence[str] = LOSS_TERMS) -> str:
    """The last value of each of ``terms`` in ``history`` (``Result.history``) for a panel title: "total 7"
    on a line of its own, the others on the next, "content 0.3, style 1.25, tv 0.01". Terms without
    values are left out."""
    final = {k: history[k][-1] for k in terms if history.get(k)}
    total = f"total {final.pop('total'):.3g}\n" if "total" in final else ""
    return total + ", ".join(f"{k} {v:.3g}" for k, v in final.items())


def plot_results_grid(results: Mapping[str, Any], footer: bool = True) -> Figure:
    """The "compare" grid: one result image per setting, titled with its name and final losses, in
    rows of one height (:func:`image_rows_figure`).

    Inputs:
    - results: {name: ``nstlab.optimize.Result``}.
    - footer: add the weights footer (the weights of every result).
    Returns: the Figure.
    """
    if not results:
        raise ValueError("plot_results_grid: no results given")
    panels = [(f"{name}\n{final_losses(result.history)}", result.image) for name, result in results.items()]
    text = runs_footer(list(results.values())) if footer else None
    return image_rows_figure(panels, fontsize=8, footer=text)[0]
