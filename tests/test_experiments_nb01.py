"""nstlab.experiments.nb01_vgg_features (notebook 01): the layer table, receptive fields, the layer geometry
figure and what each depth keeps."""

from __future__ import annotations

import math

import pytest
from matplotlib.patches import Rectangle

from figure_checks import data_under_legends
from nstlab import experiments as ex
from nstlab.plotting import MAX_FIGURE_WIDTH
from nstlab.vgg import GATYS_STYLE_LAYERS, VGG19_LAYERS

W = "random"


def test_receptive_fields_follow_the_recurrence():
    fields = ex.receptive_fields()
    assert list(fields) == VGG19_LAYERS
    assert fields["relu1_1"] == (3, 1) and fields["pool1"] == (6, 2) and fields["conv2_1"] == (10, 2)
    assert fields["relu5_1"] == (156, 16) and fields["pool5"] == (268, 32)
    radii = [r for r, _ in fields.values()]
    assert radii == sorted(radii)


def test_vgg_layer_table_is_computed_from_the_network():
    table = ex.vgg_layer_table((40, 72), weights=W)
    assert table.column("name") == VGG19_LAYERS
    assert table.column("channels")[:5] == [64] * 5 and table.column("channels")[-1] == 512
    hw = table.column("H×W")
    assert hw[0] == "40×72" and hw[VGG19_LAYERS.index("pool1")] == "20×36" and hw[-1] == "1×2"
    conv_in = [3, 64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512]
    conv_out = conv_in[1:] + [512]
    expected = sum(9 * i * o + o for i, o in zip(conv_in, conv_out))
    assert sum(table.column("parameters")) == expected
    assert set(table.column("type")) == {"Conv2d", "ReLU", "MaxPool2d"}


def test_layer_geometry_figure():
    fig = ex.visualize_layer_geometry("chelsea_cat", size=48)
    assert len(fig.axes) == 3
    assert sum(isinstance(p, Rectangle) for p in fig.axes[2].patches) == len(GATYS_STYLE_LAYERS)
    assert len(fig.axes[0].get_xticklabels()) == 21  # 16 ReLUs and 5 pools
    assert data_under_legends(fig) == 0  # the receptive-field legend is under the image, not on it
    image, chart = fig.axes[2].get_window_extent(), fig.axes[0].get_window_extent()
    assert fig.axes[2].get_legend().get_window_extent().y1 <= image.y0
    assert image.width >= 0.9 * chart.width  # the picture is as wide as a chart
    assert min(label.get_fontsize() for label in fig.axes[0].get_xticklabels()) >= 9
    assert fig.get_size_inches()[0] <= MAX_FIGURE_WIDTH


def test_activation_table_shallow_maps_move_with_the_image():
    table = ex.activation_table("tower_bridge", size=64, shift=4, weights=W)
    assert table.column("layer") == [n for n in VGG19_LAYERS if n.startswith("relu")]
    assert table.column("H×W")[0] == "32×60"  # the 32×64 image cropped by the shift
    assert table.title.startswith("activations of two 32×60 crops of a 32×64 image, 4 px apart")
    change = table.column("change under a 4-px shift (%)")
    assert all(math.isfinite(c) and c > 0 for c in change)
    assert change[0] > change[-1]
    assert all(0 <= z <= 100 for z in table.column("zeros (%)"))
    assert "RANDOM" in table.title
    with pytest.raises(ValueError, match="shift"):
        ex.activation_table("tower_bridge", size=64, shift=40, weights=W)
