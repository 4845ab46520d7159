"""Tests for nstlab.plotting: what each figure contains (panels, titles, scales, footers)."""

from __future__ import annotations

import io

import matplotlib.colors
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from figure_checks import MIN_TICK_GAP_PX, data_under_legends, tick_label_gaps
from nstlab import plotting
from nstlab.images import sample_image
from nstlab.optimize import Result


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _result(best_step: int = 3, weights_name: str = "random", steps: int = 4, seed: int = 0) -> Result:
    image = torch.rand(1, 3, 16, 24, generator=_gen(seed))
    history = {
        "total": [10.0 - k for k in range(steps)],
        "content": [0.0] + [0.1 * k for k in range(1, steps)],
        "style": [5.0 / (k + 1) for k in range(steps)],
        "tv": [0.01] * steps,
        "scale": [0] * steps,
    }
    return Result(
        image=image,
        best_image=image.flip(-1),
        best_loss=min(history["total"]),
        best_step=best_step,
        history=history,
        step_times=[0.1] * steps,
        settings={},
        weights_name=weights_name,
    )


def _image_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_images() and not ax.axison]


def _footer(fig: Figure) -> str:
    return fig._supxlabel.get_text() if fig._supxlabel is not None else ""


def test_weights_footer_warns_only_for_random_weights():
    assert plotting.weights_footer("random") == (
        "VGG19: RANDOM (untrained) weights — pictures show colour/texture transfer only"
    )
    assert plotting.weights_footer("imagenet") == "VGG19: ImageNet weights"
    assert plotting.weights_footer("/tmp/my_vgg.pth") == "VGG19: weights from my_vgg.pth"


def test_runs_footer_names_each_weights_and_precision_once():
    a, b, c = _result(seed=1), _result(seed=2), _result(seed=3, weights_name="imagenet")
    b.precision = c.precision = "bf16"
    assert plotting.runs_footer([a, a]) == (
        "VGG19: RANDOM (untrained) weights (network in fp32) — pictures show colour/texture transfer only"
    )
    assert plotting.runs_footer([a, b, c]).split("; ") == [
        "VGG19: RANDOM (untrained) weights (network in fp32) — pictures show colour/texture transfer only",
        "VGG19: RANDOM (untrained) weights (network in bf16) — pictures show colour/texture transfer only",
        "VGG19: ImageNet weights (network in bf16)",
    ]


def test_plot_images_list_dict_and_batches():
    a = torch.rand(1, 3, 8, 10, generator=_gen(1))
    b = torch.rand(3, 8, 10, generator=_gen(2))
    fig = plotting.plot_images([a, b], titles=["a", "b"], suptitle="two", footer="made by test")
    axes = _image_axes(fig)
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    np.testing.assert_allclose(axes[0].get_images()[0].get_array(), a[0].permute(1, 2, 0).numpy(), atol=1e-6)
    assert fig._suptitle.get_text() == "two" and _footer(fig) == "made by test"

    batch = torch.rand(3, 3, 8, 8, generator=_gen(3))
    fig = plotting.plot_images({"batch": batch, "grey": torch.rand(1, 1, 8, 8, generator=_gen(4))}, ncols=2)
    assert [ax.get_title() for ax in _image_axes(fig)] == ["batch [0]", "batch [1]", "batch [2]", "grey"]
    assert len(fig.axes) == 4  # 2 columns x 2 rows
    assert _image_axes(fig)[3].get_images()[0].get_array().shape == (8, 8, 3)


def test_plot_images_shrinks_panels_to_the_notebook_width():
    images = [torch.rand(3, 8, 16, generator=_gen(k)) for k in range(5)]
    gap = plotting.PANEL_GAP
    narrow = plotting.plot_images(images, ncols=2)  # rows of 2, 2, 1; each image 3 in wide as asked
    assert narrow.get_size_inches()[0] == pytest.approx(2 * (3.0 + gap))
    narrow.draw_without_rendering()
    rows = [round(ax.get_window_extent().y0) for ax in _image_axes(narrow)]
    assert [rows.count(y) for y in sorted(set(rows), reverse=True)] == [2, 2, 1]
    wide = plotting.plot_images(images, ncols=5)  # 5 x 3 in would be 15 in: one row, shrunk to 13 in
    assert wide.get_size_inches()[0] == pytest.approx(plotting.MAX_FIGURE_WIDTH)
    assert len(wide.subfigs) == 1


def test_plot_images_gives_mixed_shapes_one_height_and_no_empty_band():
    landscape, portrait = torch.rand(1, 3, 40, 80, generator=_gen(1)), torch.rand(1, 3, 80, 60, generator=_gen(2))
    fig = plotting.plot_images({"wide": landscape, "tall": portrait, "wide again": landscape}, footer="footer")
    fig.draw_without_rendering()
    boxes = [ax.get_window_extent() for ax in _image_axes(fig)]
    assert max(b.height for b in boxes) < 1.02 * min(b.height for b in boxes)  # one height
    assert boxes[0].width == pytest.approx(2 * boxes[0].height, rel=0.02)  # widths in proportion
    assert boxes[0].width / fig.dpi == pytest.approx(3.0, rel=0.03)  # the widest image is `size` wide
    gap = min(b.y0 for b in boxes) - fig._supxlabel.get_window_extent().y1
    assert 0 <= gap < 0.15 * fig.dpi


def test_plot_images_rejects_bad_input():
    with pytest.raises(ValueError, match="2 images but 1 titles"):
        plotting.plot_images([torch.rand(3, 8, 8), torch.rand(3, 8, 8)], titles=["only one"])
    with pytest.raises(ValueError, match="no images"):
        plotting.plot_images([])


def test_plot_losses_one_line_per_term_and_log_scale():
    history = _result().history
    fig = plotting.plot_losses(history, title="losses")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["total", "content", "style", "tv"]
    assert ax.get_yscale() == "log"  # the zero content loss at step 0 is masked, not a reason for linear
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), history["total"])
    assert ax.get_title() == "losses"

    fig = plotting.plot_losses({"total": [1.0, -2.0]})
    assert fig.axes[0].get_yscale() == "linear"
    assert plotting.plot_losses({"total": [1.0, 2.0]}, log=False).axes[0].get_yscale() == "linear"


def test_plot_losses_legend_outside_the_axes_and_dots_on_short_curves():
    steps = 200  # curves through every corner of the axes: no room inside for a legend
    k = np.arange(steps)
    history = {"total": list(2.0 + np.sin(k / 3.0)), "content": list(1.0 + 0.9 * np.cos(k / 5.0)),
               "style": list(np.linspace(0.05, 3.0, steps)), "tv": list(np.linspace(3.0, 0.05, steps))}
    fig = plotting.plot_losses(history, title="training")
    ax = fig.axes[0]
    assert data_under_legends(fig) == 0
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1  # right of the axes
    assert all(line.get_marker() in ("None", None, "") for line in ax.get_lines())  # 200 points: lines only

    one_step = plotting.plot_losses({"total": [2.0], "content": [0.5], "style": [1.0]})
    ax = one_step.axes[0]
    assert [line.get_marker() for line in ax.get_lines()] == ["o", "o", "o"]  # a single point still shows
    one_step.draw_without_rendering()
    low, high = ax.get_xlim()
    assert [t for t in ax.get_xticks() if low <= t <= high] == [0]  # the one step, no -0.04 ... 0.04


def test_data_under_legends_counts_hidden_points_bars_and_images():
    fig = Figure()
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, 1, 2], label="line")
    ax.legend(loc="center")
    assert data_under_legends(fig) == 1  # the middle vertex
    ax.get_legend().remove()
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    assert data_under_legends(fig) == 0

    fig = Figure()
    bars, image = fig.subplots(1, 2)
    bars.bar([0, 1], [5.0, 1.0], label="bars")
    bars.legend(loc="upper left")  # over the top of the tall first bar
    image.imshow(np.zeros((4, 4)))
    image.plot([0, 3], [0, 3], label="diagonal")
    image.legend(loc="lower left")
    assert data_under_legends(fig) == 1 + 1  # the bar, and the image (no vertex of the diagonal)


def test_plot_losses_marks_scale_changes_and_draws_into_given_axes():
    fig = Figure()
    ax = fig.subplots()
    out = plotting.plot_losses({"total": [3.0, 2.0, 1.5, 1.0, 0.5], "scale": [0, 0, 1, 1, 2]}, ax=ax)
    assert out is fig
    boundaries = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_xdata()[0] for line in boundaries] == [1.5, 3.5]


@pytest.mark.parametrize("best_step, n_images", [(3, 3), (1, 4)])
def test_plot_result_panels_losses_and_weights_footer(best_step, n_images):
    result = _result(best_step=best_step)
    content = torch.rand(1, 3, 16, 24, generator=_gen(5))
    fig = plotting.plot_result(result, content=content, style=torch.rand(1, 3, 20, 20, generator=_gen(6)))
    titles = [ax.get_title() for ax in _image_axes(fig)]
    assert len(titles) == n_images
    assert titles[:3] == ["content", "style", "result (4 steps)"]
    if n_images == 4:
        assert titles[3] == "best (step 1)"
    assert _footer(fig) == plotting.runs_footer([result])
    loss_axes = [ax for ax in fig.axes if ax.get_lines()]
    assert len(loss_axes) == 1 and loss_axes[0].get_title() == "losses"


def test_plot_result_without_inputs_and_interrupted():
    result = _result(weights_name="imagenet")
    result.interrupted = True
    fig = plotting.plot_result(result)
    assert [ax.get_title() for ax in _image_axes(fig)] == ["stopped (4 steps)"]
    assert _footer(fig) == "VGG19: ImageNet weights (network in fp32)"


def test_plot_feature_maps_first_and_most_active():
    feat = torch.rand(1, 6, 5, 7, generator=_gen(7))
    feat[0, 4] += 10.0  # the most active channel
    feat[0, 2] = 3.0  # a constant channel
    fig = plotting.plot_feature_maps(feat, n=4, title="relu1_1")
    axes = _image_axes(fig)
    assert [ax.get_title() for ax in axes] == ["ch 0", "ch 1", "ch 2", "ch 3"]
    first = axes[0].get_images()[0].get_array()
    assert first.min() == pytest.approx(0.0) and first.max() == pytest.approx(1.0)
    assert np.all(axes[2].get_images()[0].get_array() == 0)  # constant -> 0, not NaN
    assert fig._suptitle.get_text() == "relu1_1"

    fig = plotting.plot_feature_maps(feat[0], n=2, most_active=True)
    assert [ax.get_title() for ax in _image_axes(fig)] == ["ch 4", "ch 2"]
    with pytest.raises(ValueError, match=r"\(2, 6, 5, 7\)"):
        plotting.plot_feature_maps(feat.expand(2, -1, -1, -1))


def test_plot_matrix_colour_bar_and_log_scale():
    gram = torch.rand(1, 5, 5, generator=_gen(8))
    gram[0, 0, 1] = 0.0
    fig = plotting.plot_matrix(gram, title="Gram")
    assert len(fig.axes) == 2  # the matrix and its colour bar
    np.testing.assert_allclose(fig.axes[0].get_images()[0].get_array(), gram[0].numpy(), rtol=1e-6)
    assert fig.axes[0].get_title() == "Gram"

    fig = plotting.plot_matrix(-gram[0], log=True)
    image = fig.axes[0].get_images()[0]
    assert isinstance(image.norm, matplotlib.colors.LogNorm)
    assert image.norm.vmax == pytest.approx(float(gram.max()))
    assert image.norm.vmin == pytest.approx(float(gram[gram > 0].min()))
    with pytest.raises(ValueError, match=r"\(2, 5, 5\)"):
        plotting.plot_matrix(gram.expand(2, -1, -1))


def test_plot_results_grid_titles_and_footer():
    results = {"gatys": _result(seed=1), "novak": _result(seed=2, weights_name="imagenet")}
    fig = plotting.plot_results_grid(results)
    titles = [ax.get_title() for ax in _image_axes(fig)]
    assert titles[0] == "gatys\ntotal 7\ncontent 0.3, style 1.25, tv 0.01"
    assert titles[1].startswith("novak\n")
    assert _footer(fig) == (
        "VGG19: RANDOM (untrained) weights (network in fp32) — pictures show colour/texture transfer only; "
        "VGG19: ImageNet weights (network in fp32)"
    )
    assert _footer(plotting.plot_results_grid({"a": _result()}, footer=False)) == ""
    with pytest.raises(ValueError, match="no results"):
        plotting.plot_results_grid({})


@pytest.mark.parametrize("n", [2, 5, 9])
def test_plot_results_grid_has_no_empty_band_and_keeps_its_titles_inside(n):
    fig = plotting.plot_results_grid({f"run {i}": _result(seed=i) for i in range(n)})
    fig.draw_without_rendering()
    assert fig.get_size_inches()[0] <= plotting.MAX_FIGURE_WIDTH
    axes = _image_axes(fig)
    assert max(ax.title.get_window_extent().y1 for ax in axes) <= fig.bbox.height  # no title cut off
    gap = min(ax.get_window_extent().y0 for ax in axes) - fig._supxlabel.get_window_extent().y1
    assert 0 <= gap < 0.15 * fig.dpi  # pixels between the lowest images and the footer


def test_arrange_panels_fits_the_width_with_the_fewest_rows():
    gap = plotting.PANEL_GAP
    rows, height = plotting.arrange_panels([1.5] * 5)  # 07: content, style and three runs of a 3:2 image
    assert rows == [[0, 1, 2, 3, 4]] and height == pytest.approx((13.0 - 5 * gap) / 7.5)
    aspects = [2.0, 0.75] + [2.0] * 6  # 06: a 2:1 content, a portrait style and six runs
    rows, height = plotting.arrange_panels(aspects)
    assert rows == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert height == pytest.approx((13.0 - 4 * gap) / 8.0) and height >= 1.5
    assert plotting.arrange_panels([1.0, 1.0]) == ([[0, 1]], 2.6)  # small rows keep the largest height
    with pytest.raises(ValueError, match="no panels"):
        plotting.arrange_panels([])


def test_image_rows_figure_fits_13_inches_without_empty_bands():
    c, s = sample_image("tower_bridge", 64), sample_image("van_gogh_cafe_terrace_at_night", 64)
    panels = [("content", c), ("style", s)] + [(f"run {i}\nstyle 0.1", c) for i in range(6)]
    fig, axes, below = plotting.image_rows_figure(panels, below=3.0, suptitle="title", footer="footer")
    fig.draw_without_rendering()
    assert fig.get_size_inches()[0] <= plotting.MAX_FIGURE_WIDTH and len(axes) == 8 and below is fig.subfigs[-1]
    heights = [ax.get_window_extent().height for ax in axes]
    assert max(heights) < 1.02 * min(heights)  # every image of both rows as tall (within the padding's estimate)
    assert all(ax.title.get_fontsize() >= 10 for ax in axes)
    for row, part in zip((axes[:4], axes[4:]), fig.subfigs[:2]):
        box = part.bbox
        assert max(ax.get_tightbbox().y1 for ax in row) <= box.y1 + 1  # no title runs out of its row
        empty = min(ax.get_window_extent().y0 for ax in row) - box.y0
        assert empty / fig.dpi < 0.1  # inches of empty band under the images


def test_png_helpers():
    img = torch.rand(1, 3, 10, 14, generator=_gen(9))
    decoded = Image.open(io.BytesIO(plotting.image_png(img)))
    assert decoded.size == (14, 10)
    np.testing.assert_allclose(np.asarray(decoded) / 255.0, img[0].permute(1, 2, 0).numpy(), atol=1 / 255)
    png = plotting.figure_png(plotting.plot_images([img]))
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize("steps", [1, 7, 120, 300, 2000, 40000])
def test_step_axis_ticks_whole_steps_with_room_between_the_labels(steps):
    fig = Figure(figsize=(2.8, 2.4), dpi=100, layout="constrained")  # about a quarter of the notebook's width
    ax = fig.subplots()
    ax.plot(np.arange(steps), np.linspace(1, 0, steps))
    plotting.step_axis(ax)
    gaps = tick_label_gaps(ax)
    assert min(gaps, default=MIN_TICK_GAP_PX) >= MIN_TICK_GAP_PX, gaps
    low, high = ax.get_xlim()
    assert all(float(t).is_integer() for t in ax.get_xticks() if low <= t <= high)
