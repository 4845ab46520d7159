"""Figure checks for the tests: "check numbers, not pictures" applied to a figure's layout."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox


def _legends(container: Any) -> list[Any]:
    """The legends of a figure or subfigure, of its subfigures and of its axes."""
    found = list(container.legends) + [ax.get_legend() for ax in container.axes if ax.get_legend() is not None]
    for sub in container.subfigs:
        found += _legends(sub)
    return found


def data_under_legends(fig: Figure) -> int:
    """How many pieces of data a figure's legends hide: line vertices in view, bars and other patches,
    and images of any of its axes lying (partly, for patches and images) under a legend.

    0 when every legend sits on empty space or outside the axes. Lays the figure out first.
    Returns: the count over all legends (a piece under two legends counts twice).
    """
    fig.draw_without_rendering()
    boxes = [legend.get_window_extent() for legend in _legends(fig)]
    hidden = 0
    for ax in fig.axes:
        frame = ax.get_window_extent()
        points = [
            line.get_transform().transform(np.column_stack(line.get_data()).astype(float)) for line in ax.get_lines()
        ]
        points = np.concatenate(points) if points else np.zeros((0, 2))
        points = points[np.isfinite(points).all(axis=1)]
        inside = (points[:, 0] >= frame.x0 - 1) & (points[:, 0] <= frame.x1 + 1)
        inside &= (points[:, 1] >= frame.y0 - 1) & (points[:, 1] <= frame.y1 + 1)
        points = points[inside]
        areas = [  # as drawn: clipped to the axes
            Bbox.intersection(artist.get_window_extent(), frame) for artist in [*ax.patches, *ax.images]
        ]
        areas = [area for area in areas if area is not None]
        for box in boxes:
            under = (points[:, 0] >= box.x0) & (points[:, 0] <= box.x1)
            under &= (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1)
            hidden += int(under.sum())
            hidden += sum(box.overlaps(area) for area in areas)
    return hidden


def image_axes(fig: Figure) -> list[Any]:
    """The axes of a figure (subfigures included) that show an image; colour bars are left out."""
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def footer(fig: Figure) -> str:
    """The figure's footer (its supxlabel: the weights line), "" if it has none."""
    return fig._supxlabel.get_text() if fig._supxlabel is not None else ""


def axes_titles(fig: Figure) -> str:
    """The titles of every axes of a figure, joined by " | " (to look for words in any of them)."""
    return " | ".join(ax.get_title() for ax in fig.axes)


MIN_TICK_GAP_PX = 4.0
"""The least room between two tick labels, in pixels at 100 dpi: about a space of 10-pt text."""


def tick_label_gaps(ax: Any) -> list[float]:
    """The horizontal gaps, in pixels, between neighbouring x tick labels of an axes as drawn (those in its
    view only); negative where two labels overlap. Lays the figure out first."""
    fig = ax.figure.figure  # the root figure, also of an axes in a subfigure
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    low, high = sorted(ax.get_xlim())
    shown = [(tick, label) for tick, label in zip(ax.get_xticks(), ax.get_xticklabels())
             if low <= tick <= high and label.get_visible() and label.get_text()]
    boxes = sorted((label.get_window_extent(renderer) for _, label in shown), key=lambda box: box.x0)
    return [right.x0 - left.x1 for left, right in zip(boxes, boxes[1:])]
