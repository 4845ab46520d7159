"""nstlab.experiments.nb02_content_loss (notebook 02): the paper's layer names and reconstructions from white noise
through one layer at a time."""

from __future__ import annotations

import math

import pytest
import torch

from figure_checks import footer, image_axes
from nstlab import experiments as ex
from nstlab.optimize import stylize
from nstlab.vgg import VGGFeatures

W = "random"


def test_layer_label_names_the_paper_layer_only_where_there_is_one():
    assert ex.layer_label("relu4_2") == "relu4_2 (paper: conv4_2)"  # Gatys' conv4_2 blob is post-ReLU
    assert ex.layer_label("conv4_2") == "conv4_2 (pre-ReLU)"  # not "conv4_2 (conv4_2)": no paper layer
    assert ex.layer_label("pool3") == "pool3"


def test_paper_name():
    assert ex.paper_name("relu4_2") == "conv4_2" and ex.paper_name("pool3") == "pool3"
    assert [ex.paper_name(n) for n in ex.RECONSTRUCTION_LAYERS] == [f"conv{b}_2" for b in range(1, 6)]
    with pytest.raises(ValueError, match="relu9_9"):
        ex.paper_name("relu9_9")


def test_content_reconstructions_lower_the_content_loss():
    image = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(2))
    results = ex.content_reconstructions(image, ["relu1_2", "relu3_2"], size=32, steps=3, weights=W)
    assert list(results) == ["relu1_2", "relu3_2"]
    for result in results.values():
        curve = result.history["content"]
        assert len(curve) == 3 and all(math.isfinite(v) for v in curve)
        assert curve[-1] < curve[0]
        assert result.image.shape == (1, 3, 24, 32)
        assert result.settings["init"] == "noise"


def test_content_reconstruction_figure():
    fig = ex.visualize_content_reconstructions("chelsea_cat", ["relu1_2", "relu2_2"], size=32, steps=2, weights=W)
    panels = image_axes(fig)
    assert len(panels) == 3 and len(fig.axes) == 4
    assert panels[2].get_title().startswith("relu2_2 (paper: conv2_2)\nerror ")
    curves = [ax for ax in fig.axes if not ax.images][0]
    assert len(curves.get_lines()) == 2
    assert "RANDOM" in footer(fig)
    single = ex.visualize_content_reconstruction("coffee", "conv4_2", steps=1, size=32, weights=W)
    assert len(image_axes(single)) == 2
    assert image_axes(single)[1].get_title().startswith("conv4_2 (pre-ReLU)\nerror ")
    curve = [ax for ax in single.axes if not ax.images][0].get_lines()[0]
    assert curve.get_marker() == "o"  # one step: a dot, not an invisible one-point line


def _content_problem(size: int = 32):
    """Notebook 02's reconstruction with the loop: the relative content error at relu2_2, from seeded noise."""
    vgg = VGGFeatures(["relu2_2"], weights=W)
    content = torch.rand(1, 3, size * 3 // 4, size, generator=torch.Generator().manual_seed(3))
    x0 = torch.rand(content.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        target = vgg(content)["relu2_2"]

    def relative_content_error(x):
        return ((vgg(x)["relu2_2"] - target) ** 2).sum() / (target**2).sum()

    return content, x0, relative_content_error


def test_optimize_pixels_is_stylize_at_its_first_step_and_descends():
    """The notebook's claim: the loop with the relative content error evaluates at its first step what stylize does
    (the same image, the same objective), to float rounding; both optimisers lower it."""
    content, x0, loss = _content_problem()
    runs = {name: ex.optimize_pixels(loss, x0, 4, name) for name in ("lbfgs", "adam")}
    packaged = stylize(content, None, content_layers=["relu2_2"], init=x0, tv_weight=0, steps=4, size=32,
                       precision="fp32", weights=W, seed=0, progress=False)
    agreement = ex.loop_agreement(runs["lbfgs"][1], packaged.history["total"])
    assert agreement["first step"] <= ex.FIRST_STEP_TOLERANCE
    for image, history in runs.values():
        assert len(history) == 4 and history[-1] < history[0]
        assert image.shape == x0.shape and 0 <= float(image.min()) and float(image.max()) <= 1
        assert not image.requires_grad
    assert runs["lbfgs"][1][-1] < runs["adam"][1][-1]  # L-BFGS' few steps go further
    assert torch.equal(x0, torch.rand(x0.shape, generator=torch.Generator().manual_seed(0)))  # the start is kept
    fig = ex.plot_pixel_loops(content, runs, packaged)
    assert [ax.get_title() for ax in image_axes(fig)] == ["original", "yours, lbfgs", "yours, adam", "stylize"]
    curves = [ax for ax in fig.axes if not ax.images][0]
    assert [line.get_label() for line in curves.get_lines()] == ["yours, lbfgs", "yours, adam", "stylize"]
    assert "RANDOM" in footer(fig)


def test_optimize_pixels_rejects_an_unknown_optimizer():
    with pytest.raises(ValueError, match=r"optimizer must be one of \('lbfgs', 'adam'\), got 'sgd'"):
        ex.optimize_pixels(lambda x: x.sum(), torch.zeros(1, 3, 2, 2), 1, "sgd")
