"""nstlab.experiments.nb02_content_loss (notebook 02): the paper's layer names and reconstructions from white noise
through one layer at a time."""

from __future__ import annotations

import math

import pytest
import torch

from figure_checks import footer, image_axes
from nstlab import experiments as ex

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
