"""The experiments of notebooks 00-03 (images, VGG features, content loss, Gram matrices), at tiny sizes."""

from __future__ import annotations

import math

import pytest
import torch
from matplotlib.patches import Rectangle

from figure_checks import data_under_legends
from nstlab import experiments as ex
from nstlab.images import list_images, resize, sample_image
from nstlab.vgg import IMAGENET_MEAN, VGG19_LAYERS, VGGFeatures

W = "random"


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def _footer(fig) -> str:
    return fig._supxlabel.get_text() if fig._supxlabel is not None else ""


# ----------------------------------------------------------------------------- Table and Banner


def test_table_aligns_numbers_right_and_keeps_raw_values():
    rows = [{"name": "a", "value": 1.23456}, {"name": "long name", "value": 10}, {"name": "c"}]
    t = ex.Table(["name", "value"], rows)
    lines = str(t).splitlines()
    assert lines[0].split() == ["name", "value"]
    assert lines[2].endswith(" 1.23") and lines[3].endswith("   10")  # right-aligned, 3 significant digits
    assert t.column("value") == [1.23456, 10, ""]
    assert "<td>long name</td>" in t._repr_html_()
    with pytest.raises(KeyError, match="no column 'missing'"):
        t.column("missing")


def test_table_html_puts_the_title_above_the_table_not_in_a_caption():
    t = ex.Table(["a"], [{"a": 1}], title="a title much wider than the one narrow column")
    html = t._repr_html_()
    assert "<caption" not in html  # a caption wraps to the width of the table
    assert html.index("a title much wider") < html.index("<table>")
    assert "<caption" not in ex.Table(["a"], [{"a": 1}])._repr_html_() and "<table>" in t._repr_html_()


def test_table_per_column_format():
    t = ex.Table(["x", "y"], [{"x": 12.345, "y": 12.345}], formats={"y": ".1f"})
    assert str(t).splitlines()[-1].split() == ["12.3", "12.3"]
    t = ex.Table(["x", "y"], [{"x": 123456.0, "y": 123456.0}], formats={"y": ".1f"})
    assert str(t).splitlines()[-1].split() == ["1.23e+05", "123456.0"]


def test_banner_frames_its_text_and_warns_visibly():
    warning = ex.Banner("random weights", "details here", warning=True)
    text = str(warning)
    assert "RANDOM WEIGHTS" in text and "details here" in text
    assert text.splitlines()[0] == text.splitlines()[-1] and set(text.splitlines()[0]) == {"!"}
    assert "#b00020" in warning._repr_html_()
    assert set(str(ex.Banner("ok")).splitlines()[0]) == {"="}


def test_weights_banner_names_random_weights_as_a_warning():
    banner = ex.weights_banner(W)
    assert banner.warning and "RANDOM" in banner.text and "colour and texture" in banner.detail


def test_environment_table(monkeypatch):
    monkeypatch.setenv("NSTLAB_SMOKE", "1")
    rows = {r["item"]: r["value"] for r in ex.environment_table(W).rows}
    assert rows["torch"] == torch.__version__
    assert rows["smoke mode"].startswith("ON")
    assert "RANDOM" in rows["VGG19 weights in use"]
    monkeypatch.setenv("NSTLAB_SMOKE", "0")
    rows = {r["item"]: r["value"] for r in ex.environment_table(W).rows}
    assert rows["smoke mode"].startswith("off")


# ----------------------------------------------------------------------------- 00: images


def test_wrap_name_breaks_at_underscores_only():
    wrapped = ex._wrap_name("van_gogh_painter_on_road_to_tarascon", width=14)
    assert wrapped.replace("\n", "") == "van_gogh_painter_on_road_to_tarascon"
    assert all(len(line) <= 15 for line in wrapped.splitlines())
    assert ex._wrap_name("coffee") == "coffee"


@pytest.mark.parametrize("kind", ["content", "style"])
def test_bundled_images_grid_has_one_titled_panel_per_image(kind):
    fig = ex.visualize_bundled_images(kind, size=32)
    panels = _image_axes(fig)
    names = list_images(kind)
    assert len(panels) == len(names)
    for ax, name in zip(panels, names):
        assert ax.get_title().replace("\n", "").startswith(name)
        assert " px" in ax.get_title()
        assert max(ax.images[0].get_array().shape[:2]) <= 32


def test_preprocessing_shows_both_shapes_and_keeps_the_aspect():
    fig = ex.visualize_preprocessing("tower_bridge", 48)
    full, small = _image_axes(fig)
    big_shape = full.images[0].get_array().shape
    small_shape = small.images[0].get_array().shape
    assert max(small_shape[:2]) == 48 and max(big_shape[:2]) > 48
    assert abs(big_shape[1] / big_shape[0] - small_shape[1] / small_shape[0]) < 0.05
    assert f"(1, 3, {small_shape[0]}, {small_shape[1]})" in small.get_title()


def test_imagenet_normalize_is_what_vgg_features_does():
    mean_colour = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    assert torch.allclose(ex.imagenet_normalize(mean_colour), torch.zeros(2, 3, 4, 4), atol=1e-6)
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    vgg = VGGFeatures(["conv1_1"], weights=W, device="cpu")
    with torch.no_grad():
        assert torch.allclose(vgg(x)["conv1_1"], vgg.body[0](ex.imagenet_normalize(x)), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(1, 4, 2, 2\)"):
        ex.imagenet_normalize(torch.zeros(1, 4, 2, 2))


def test_normalization_figure_has_histograms_before_and_after():
    fig = ex.visualize_imagenet_normalization("coffee", size=32, bins=8)
    assert len(fig.axes) == 3
    before, after = fig.axes[1], fig.axes[2]
    assert len(before.patches) == 3 and len(after.patches) == 3  # one step histogram per channel
    assert before.get_xlim()[0] >= -0.2 and after.get_xlim()[0] < -1  # values moved below 0


# ----------------------------------------------------------------------------- 01: VGG19 features


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
    fig = ex.plot_layer_geometry("chelsea_cat", size=48)
    assert len(fig.axes) == 3
    assert sum(isinstance(p, Rectangle) for p in fig.axes[2].patches) == len(ex.TEXTURE_LAYERS)
    assert len(fig.axes[0].get_xticklabels()) == 21  # 16 ReLUs and 5 pools
    assert data_under_legends(fig) == 0  # the receptive-field legend is under the image, not on it
    image, chart = fig.axes[2].get_window_extent(), fig.axes[0].get_window_extent()
    assert fig.axes[2].get_legend().get_window_extent().y1 <= image.y0
    assert image.width >= 0.9 * chart.width  # the picture is as wide as a chart
    assert min(label.get_fontsize() for label in fig.axes[0].get_xticklabels()) >= 9
    assert fig.get_size_inches()[0] <= ex.MAX_FIGURE_WIDTH


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


# ----------------------------------------------------------------------------- 02-03: reconstructions


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
    panels = _image_axes(fig)
    assert len(panels) == 3 and len(fig.axes) == 4
    assert panels[2].get_title().startswith("relu2_2 (paper: conv2_2)\nerror ")
    curves = [ax for ax in fig.axes if not ax.images][0]
    assert len(curves.get_lines()) == 2
    assert "RANDOM" in _footer(fig)
    single = ex.visualize_content_reconstruction("coffee", "conv4_2", steps=1, size=32, weights=W)
    assert len(_image_axes(single)) == 2
    assert _image_axes(single)[1].get_title().startswith("conv4_2 (pre-ReLU)\nerror ")
    curve = [ax for ax in single.axes if not ax.images][0].get_lines()[0]
    assert curve.get_marker() == "o"  # one step: a dot, not an invisible one-point line


def test_texture_syntheses_take_the_style_aspect_and_lower_the_style_loss():
    style = torch.rand(1, 3, 40, 20, generator=torch.Generator().manual_seed(3))
    results = ex.texture_syntheses(style, {"a": ["relu1_1"], "b": ["relu1_1", "relu2_1"]}, size=32, steps=3, weights=W)
    assert list(results) == ["a", "b"]
    for result in results.values():
        assert result.image.shape == (1, 3, 32, 16)
        curve = result.history["style"]
        assert curve[-1] < curve[0] and all(math.isfinite(v) for v in curve)


def test_texture_syntheses_figure_fits_the_notebook_width():
    # the style image and six textures: one row of 2.3-in panels would be 16 in, shrunk to ~6-px text in a notebook
    fig = ex.visualize_texture_syntheses("van_gogh_harvest", size=32, steps=1, weights=W)
    assert len(_image_axes(fig)) == 1 + len(ex.TEXTURE_LAYERS) + 1
    assert fig.get_size_inches()[0] <= ex.MAX_FIGURE_WIDTH
    assert data_under_legends(fig) == 0 and "RANDOM" in _footer(fig)


def test_texture_synthesis_figure_and_default_layer_sets():
    fig = ex.visualize_texture_synthesis("van_gogh_harvest", ["relu1_1", "relu2_1"], steps=1, size=32, weights=W)
    panels = _image_axes(fig)
    assert len(panels) == 2 and panels[0].get_title() == "style image"
    assert panels[1].get_title().startswith("relu1_1 + relu2_1")
    with pytest.raises(ValueError, match="at least one"):
        ex.visualize_texture_synthesis("van_gogh_harvest", [], steps=1, size=32, weights=W)


# ----------------------------------------------------------------------------- 03: Gram normalisations


def test_style_loss_conventions_differ_by_the_expected_factors():
    values = ex.style_loss_conventions("noise", "van_gogh_harvest", ["relu1_1", "relu3_1"], size=48, weights=W)
    assert list(values) == list(ex.GRAM_CONVENTIONS)
    vgg = VGGFeatures(["relu1_1", "relu3_1"], weights=W)
    feats = vgg(resize(sample_image("van_gogh_harvest"), 48))
    for layer, f in feats.items():
        n, m = f.shape[1], f.shape[2] * f.shape[3]
        raw = values["none"][layer]
        assert raw > 0
        assert values["1/(HW)"][layer] == pytest.approx(raw / m**2, rel=1e-9)
        assert values["1/(CHW)"][layer] == pytest.approx(raw / (n * m) ** 2, rel=1e-9)
        assert values["Gatys E_l"][layer] == pytest.approx(raw / (4 * n**2 * m**2), rel=1e-9)


def test_style_loss_of_the_style_itself_is_zero():
    style = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    values = ex.style_loss_conventions(style, style, ["relu2_1"], size=32, weights=W)
    assert all(v["relu2_1"] == 0 for v in values.values())


def test_gram_convention_table_shares_sum_to_100():
    table = ex.gram_convention_table("noise", "van_gogh_harvest", size=48, weights=W)
    assert table.column("layer") == ex.TEXTURE_LAYERS + ["sum"]
    for name in ex.GRAM_CONVENTIONS:
        assert sum(table.column(f"{name} share (%)")[:-1]) == pytest.approx(100)
        assert table.rows[-1][name] == pytest.approx(sum(table.column(name)[:-1]))
    assert table.column("N_l")[:-1] == [64, 128, 256, 512, 512]
    # without normalisation the many positions of relu1_1 weigh 4x more per halving than with 1/(HW)
    assert table.rows[0]["none share (%)"] > table.rows[0]["1/(HW) share (%)"]


def test_size_dependence_table_unnormalised_loss_grows_fastest():
    table = ex.size_dependence_table("tower_bridge", "van_gogh_harvest", sizes=(32, 64), weights=W)
    ratio = {row["loss"]: row["× from 32 to 64 px"] for row in table.rows}
    gatys, raw = ratio["style, Gatys E_l"], ratio["style, none"]
    assert raw > 4 * gatys  # M^2 grows 16x, the normalised loss stays of the same order
    assert 1 < ratio["content ½Σ(F−P)² at relu4_2"]
    for row in table.rows:
        assert row["× from 32 to 64 px"] == pytest.approx(row["64 px"] / row["32 px"])
