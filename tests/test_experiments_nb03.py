"""nstlab.experiments.nb03_gram_matrices_and_style (notebook 03): the style-loss conventions, how they grow with
the image size, and texture synthesis from white noise."""

from __future__ import annotations

import math

import pytest
import torch

from figure_checks import data_under_legends, footer, image_axes
from nstlab import experiments as ex
from nstlab import losses
from nstlab.images import resize, sample_image
from nstlab.optimize import stylize
from nstlab.plotting import MAX_FIGURE_WIDTH
from nstlab.vgg import GATYS_STYLE_LAYERS, VGGFeatures

W = "random"


# ----------------------------------------------------------------------------- Gram normalisations


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
    assert table.column("layer") == GATYS_STYLE_LAYERS + ["sum"]
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


# ----------------------------------------------------------------------------- texture synthesis


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
    assert len(image_axes(fig)) == 1 + len(GATYS_STYLE_LAYERS) + 1
    assert fig.get_size_inches()[0] <= MAX_FIGURE_WIDTH
    assert data_under_legends(fig) == 0 and "RANDOM" in footer(fig)


def test_texture_synthesis_figure_and_default_layer_sets():
    fig = ex.visualize_texture_synthesis("van_gogh_harvest", ["relu1_1", "relu2_1"], steps=1, size=32, weights=W)
    panels = image_axes(fig)
    assert len(panels) == 2 and panels[0].get_title() == "style image"
    assert panels[1].get_title().startswith("relu1_1 + relu2_1")
    with pytest.raises(ValueError, match="at least one"):
        ex.visualize_texture_synthesis("van_gogh_harvest", [], steps=1, size=32, weights=W)


def test_the_notebooks_texture_objective_is_stylizes_style_term_and_the_loop_lowers_it():
    """Notebook 03 builds the texture in view: the relative Gram error averaged over the layers, with the student's
    Gram matrix (here an einsum) in the student's loop. At the first step it is stylize's style term on the same
    seeded noise, to float rounding; the loop lowers it; plot_texture_with draws it beside stylize's texture."""
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    style = sample_image("van_gogh_harvest", max_size=32)
    vgg = VGGFeatures(layers, weights=W)

    def my_gram(feat):
        f = feat.flatten(2)
        return torch.einsum("ncm,ndm->ncd", f, f)

    def averaged_gram(f):
        return my_gram(f) / (f.shape[-2] * f.shape[-1])

    with torch.no_grad():
        targets = {layer: averaged_gram(f) for layer, f in vgg(style).items()}

    def relative_style_error(x):
        feats = vgg(x)
        return sum(((averaged_gram(feats[l]) - a) ** 2).sum() / (a**2).sum() for l, a in targets.items()) / 3

    noise = torch.rand(style.shape, generator=torch.Generator().manual_seed(0))
    texture, history = ex.optimize_pixels(relative_style_error, noise, 4)
    assert len(history) == 4 and history[-1] < history[0]
    reference = ex.texture_syntheses(style, {"three": layers}, size=32, steps=4, weights=W)["three"]
    packaged = stylize(None, style, style_layers=layers, init="noise", tv_weight=0, steps=1, size=32, seed=0,
                       precision="fp32", weights=W, progress=False)
    assert abs(history[0] - packaged.history["style"][0]) <= ex.FIRST_STEP_TOLERANCE * packaged.history["style"][0]
    fig = ex.plot_texture_with(style, texture, history, vgg.weights_name, reference=reference)
    assert [ax.get_title() for ax in image_axes(fig)] == ["style image", "your texture", "stylize's texture"]
    assert "RANDOM" in fig.get_supxlabel()
    assert len(image_axes(ex.plot_texture_with(style, texture, history, vgg.weights_name))) == 2
