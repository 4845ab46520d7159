"""The experiments of notebooks 04-06 (Gatys, total variation, Novak & Nikulin) at tiny sizes.

Runs are 64 px (the smallest size that reaches relu5_x) and 2-3 steps, with the seeded random VGG19.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nstlab
from figure_checks import data_under_legends
from nstlab import experiments as ex
from nstlab import losses
from nstlab.optimize import PRESETS, resolve_options
from nstlab.vgg import RELU_LAYERS, VGGFeatures

SIZE, STEPS = 64, 2
CONTENT, STYLE = "tower_bridge", "van_gogh_cafe_terrace_at_night"


@pytest.fixture(autouse=True)
def _random_weights_and_private_cache(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("NSTLAB_WEIGHTS", "random")
    monkeypatch.setenv("NSTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "nstlab-cache"))


@pytest.fixture(scope="module")
def images():
    return nstlab.sample_image(CONTENT, SIZE), nstlab.sample_image(STYLE, SIZE)


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images and not ax.get_label() == "<colorbar>"]


def _all_titles(fig):
    titles = [ax.get_title() for ax in fig.axes]
    for sub in getattr(fig, "subfigs", []):
        titles += [ax.get_title() for ax in sub.axes]
    return titles


# ----------------------------------------------------------------------------- shared runs


def test_run_variants_is_seeded_and_keeps_the_order(images):
    c, s = images
    results = ex.run_variants(c, s, {"b": {}, "a": {"style_weight": 10.0}}, size=SIZE, steps=STEPS)
    assert list(results) == ["b", "a"]
    assert not torch.equal(results["b"].image, results["a"].image)
    for r in results.values():
        assert r.image.shape[-2:] == c.shape[-2:]
        assert len(r.history["total"]) == STEPS and all(math.isfinite(v) for v in r.history["total"])
    ex.clear_run_cache()
    again = ex.run_variants(c, s, {"b": {}}, size=SIZE, steps=STEPS)["b"]
    assert again is not results["b"] and torch.equal(again.image, results["b"].image)  # recomputed, same pixels
    with pytest.raises(ValueError, match="no variants"):
        ex.run_variants(c, s, {})


def test_identical_runs_are_computed_once(images):
    c, s = images
    ex.clear_run_cache()
    first = ex.stylize_variant(c, s, size=SIZE, steps=1, progress=False)
    assert ex.stylize_variant(c.clone(), s, size=SIZE, steps=1, progress=True) is first  # progress aside
    same = {"size": SIZE, "steps": 1, "tv_weight": PRESETS["gatys"]["tv_weight"]}
    assert ex.stylize_variant(c, s, preset="gatys", **same) is first  # the same resolved options
    novak = {k: v for k, v in PRESETS["novak"].items() if k != "steps"}
    assert ex.stylize_variant(c, s, size=SIZE, steps=1, **novak) is ex.stylize_variant(c, s, preset="novak", **same)
    assert ex.stylize_variant(c, s, size=SIZE, steps=1, seed=1, init="noise") is not first
    assert ex.stylize_variant(c, s, size=SIZE, steps=1, callback=lambda info: None) is not first
    assert ex.stylize_variant(c.flip(-1), s, size=SIZE, steps=1) is not first


def test_stylize_variant_on_the_normalized_vgg_names_the_real_weights(images):
    c, s = images
    plain = ex.stylize_variant(c, s, size=SIZE, steps=STEPS, progress=False)
    normalized = ex.stylize_variant(c, s, normalized_vgg=True, size=SIZE, steps=STEPS, progress=False)
    assert normalized.weights_name == "random" and normalized.settings["normalized_vgg"] is True
    assert plain.settings["normalized_vgg"] is False
    assert not torch.equal(plain.image, normalized.image)


def test_plot_variants_lays_out_images_and_curves(images):
    c, s = images
    results = ex.run_variants(c, s, {"x": {}, "y": {"optimizer": "adam"}}, size=SIZE, steps=STEPS)
    fig = ex.plot_variants(results, terms=("total", "style"), time_axis=True, inputs={"content": c, "style": s})
    top, bottom = fig.subfigs
    assert len(top.axes) == 4 and [ax.get_title().split("\n")[0] for ax in top.axes] == ["content", "style", "x", "y"]
    assert [ax.get_title() for ax in bottom.axes] == ["total loss vs step", "style loss vs step", "total loss vs time"]
    assert all(len(ax.get_lines()) == 2 for ax in bottom.axes)
    assert "RANDOM" in fig.get_supxlabel()
    # one legend for the three plots, under them; none inside an axes
    assert [t.get_text() for t in bottom.legends[0].get_texts()] == ["x", "y"]
    assert all(ax.get_legend() is None for ax in bottom.axes) and data_under_legends(fig) == 0
    with pytest.raises(ValueError):
        ex.plot_variants({})


def test_plot_variants_draws_a_one_step_run_as_dots(images):
    c, s = images
    results = ex.run_variants(c, s, {"x": {}, "y": {"style_weight": 10.0}}, size=SIZE, steps=1)
    fig = ex.plot_variants(results, terms=("content", "style"))
    plots = fig.subfigs[-1].axes
    assert all(len(line.get_xdata()) == 1 and line.get_marker() == "o" for ax in plots for line in ax.get_lines())


# ----------------------------------------------------------------------------- notebook 04


@pytest.mark.parametrize("which", ["optimizer", "vgg"])
def test_visualize_comparison(which, images):
    c, s = images
    fig = ex.visualize_comparison(which, c, s, size=SIZE, steps=STEPS)
    top, bottom = fig.subfigs
    names = list(ex.GATYS_COMPARISONS[which])
    assert [ax.get_title().split("\n")[0] for ax in top.axes] == ["content", "style", *names]
    assert len(bottom.axes) == (4 if which == "optimizer" else 3)


def test_visualize_comparison_rejects_unknown_names():
    with pytest.raises(ValueError, match="which must be one of"):
        ex.visualize_comparison("colour")


def test_every_comparison_is_a_valid_stylize_option_set():
    for variants in ex.GATYS_COMPARISONS.values():
        assert len(variants) == 2
        for options in variants.values():
            resolve_options(**options)


def test_style_weight_sweep_trades_content_for_style(images):
    c, s = images
    results = ex.style_weight_sweep(c, s, style_weights=(1e-2, 1e4), size=SIZE, steps=3)
    low, high = results[1e-2], results[1e4]
    assert high.history["style"][-1] < low.history["style"][-1]
    assert high.history["content"][-1] > low.history["content"][-1]


def test_visualize_style_weight_sweep_titles_the_ratios(images):
    c, s = images
    fig = ex.visualize_style_weight_sweep(c, s, style_weights=(1e1, 1e3), content_weight=2.0, size=SIZE, steps=STEPS)
    top, bottom = fig.subfigs
    titles = [ax.get_title() for ax in top.axes]
    assert titles[0] == "content" and titles[-1] == "style" and len(titles) == 4
    assert "α/β = 2e-01" in titles[1] and "α/β = 2e-03" in titles[2]
    (plot,) = bottom.axes
    assert plot.get_xscale() == "log" and len(plot.get_lines()) == 2


def test_layer_loss_scales_match_the_definition(images):
    _, s = images
    layers = ["relu1_1", "relu3_1"]
    scales = ex.layer_loss_scales(s, layers, size=SIZE)
    with torch.no_grad():
        feats = VGGFeatures(layers)(s)
    for layer in layers:
        f = feats[layer].double()
        n, m = f.shape[1], f.shape[2] * f.shape[3]
        expected = float(losses.gram_matrix(f).pow(2).sum()) / (4 * n**2 * m**2)
        assert scales["E_l(0, A)"][layer] == pytest.approx(expected, rel=1e-9)
        assert scales["mean activation"][layer] == pytest.approx(float(f.mean()), rel=1e-9)


def test_normalized_vgg_brings_mean_activations_near_one(images):
    _, s = images
    plain = ex.layer_loss_scales(s, size=SIZE)["mean activation"]
    normalized = ex.layer_loss_scales(s, size=SIZE, normalized=True)["mean activation"]
    for layer in plain:
        assert abs(math.log(normalized[layer])) < abs(math.log(plain[layer]))


def test_visualize_layer_scales_draws_both_networks(images):
    _, s = images
    fig = ex.visualize_layer_scales(s, size=SIZE)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert len(ax.patches) == 2 * 5 and ax.get_yscale() == "log"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["plain VGG19", "normalized VGG19"]
    assert data_under_legends(fig) == 0  # no bar under the legend


def test_visualize_stylize_titles_its_options(images):
    c, s = images
    fig = ex.visualize_stylize(c, s, size=SIZE, steps=STEPS, init="noise", normalized_vgg=True)
    assert "init=noise" in fig.get_suptitle() and "normalized_vgg=True" in fig.get_suptitle()
    assert "RANDOM" in fig.get_supxlabel()


# ----------------------------------------------------------------------------- notebook 05


def test_tv_table_uses_both_forms():
    img = torch.rand(1, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    (row,) = ex.tv_table({"x": img}).rows
    assert row["TV L1 (sum)"] == pytest.approx(float(losses.tv_loss(img.double(), "l1")))
    assert row["TV L1 (mean |∇|)"] == pytest.approx(row["TV L1 (sum)"] / (3 * (9 * 6 + 8 * 7)))
    assert row["TV squared (mean)"] == pytest.approx(float(losses.tv_loss(img.double(), "l2", reduction="mean")))


def test_noise_raises_and_smoothing_lowers_the_tv():
    cat = nstlab.sample_image("chelsea_cat", SIZE)
    noisy = ex.add_noise(cat, 0.1, seed=3)
    assert torch.equal(noisy, ex.add_noise(cat, 0.1, seed=3)) and 0 <= noisy.min() and noisy.max() <= 1
    tv = [float(losses.tv_loss(x, "l1")) for x in (cat, noisy, ex.smooth(cat, 1.0))]
    assert tv[1] > 2 * tv[0] > 2 * tv[2]


def test_smooth_keeps_shape_and_constants():
    flat = torch.full((1, 3, 12, 10), 0.3)
    out = ex.smooth(flat, 1.5)
    assert out.shape == flat.shape
    torch.testing.assert_close(out, flat)


def test_psnr():
    ref = torch.full((1, 3, 4, 4), 0.5)
    assert ex.psnr(ref + 0.1, ref) == pytest.approx(20.0, abs=1e-4)
    assert ex.psnr(ref, ref) == math.inf
    with pytest.raises(ValueError, match="shape"):
        ex.psnr(ref, ref[..., :2])


def test_tv_denoise_removes_noise():
    cat = nstlab.sample_image("chelsea_cat", SIZE)
    noisy = ex.add_noise(cat, 0.1, seed=0)
    assert torch.equal(ex.tv_denoise(noisy, 0.0, steps=20), noisy)  # no TV: the data term is already 0
    mild, strong = ex.tv_denoise(noisy, 0.1, steps=100), ex.tv_denoise(noisy, 1.0, steps=100)
    assert ex.psnr(mild, cat) > ex.psnr(noisy, cat) + 3
    tvs = [float(losses.tv_loss(x, "l1")) for x in (noisy, mild, strong)]
    assert tvs[0] > tvs[1] > tvs[2]
    squared = ex.tv_denoise(noisy, 0.5, kind="l2", steps=100)
    assert ex.psnr(squared, cat) > ex.psnr(noisy, cat) + 3
    with pytest.raises(ValueError, match="tv_weight"):
        ex.tv_denoise(noisy, -1.0)


def test_visualize_tv_noise_and_denoising():
    fig = ex.visualize_tv_noise("chelsea_cat", size=SIZE)
    assert len(_image_axes(fig)) == 6
    assert any("noisy" in t for t in _all_titles(fig))
    fig = ex.visualize_tv_denoising("chelsea_cat", size=SIZE, steps=10)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 8 and sum("PSNR" in t for t in titles) == 3


def test_tv_weight_sweep_lowers_the_tv(images):
    c, s = images
    results = ex.tv_weight_sweep(c, s, tv_weights=(0.0, 1e2, 1e5), size=SIZE, steps=3, init="noise",
                                 optimizer="adam", lr=0.1, style_weight=1.0)
    assert list(results) == [0.0, 1e2, 1e5]
    tvs = [float(losses.tv_loss(r.image, "l1", reduction="mean")) for r in results.values()]
    assert tvs[0] > tvs[1] > tvs[2]


def test_visualize_tv_weight_sweep(images):
    c, s = images
    fig = ex.visualize_tv_weight_sweep(c, s, tv_weights=(0.0, 10.0), size=SIZE, steps=STEPS)
    assert len(fig.axes) == 3
    assert fig.axes[0].get_title().startswith("tv_weight = 0\nTV ")
    assert len(fig.axes[-1].get_lines()) == 3  # the results, the content's TV, the style's TV
    plot = fig.axes[-1]
    assert plot.get_xscale() == "symlog" and list(plot.get_lines()[0].get_xdata()) == [0.0, 10.0]  # the weights
    assert plot.get_xlabel() == "tv_weight (linear up to 10, log scale above)"


def test_weight_axis_puts_zero_and_decades_to_scale():
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    assert ex._weight_axis(ax, [0.0, 3.0, 30.0, 300.0], "tv_weight") == "tv_weight (linear up to 3, log scale above)"
    x = ax.xaxis.get_transform().transform([0.0, 3.0, 30.0, 300.0])
    assert np.diff(x) == pytest.approx([x[1] - x[0]] * 3)  # 0..3 as wide as a decade: evenly spaced, to scale
    assert ax.xaxis.get_transform().transform([0.0, 3.0, 300.0])[2] == pytest.approx(x[3])  # smoke: 100 is two decades
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "3", "30", "300"]
    assert ax.get_xlim()[0] == pytest.approx(-0.75)  # 0 near the left edge: no empty negative side
    linear = Figure().subplots()
    assert ex._weight_axis(linear, [0.0], "tv_weight") == "tv_weight" and linear.get_xscale() == "linear"


# ----------------------------------------------------------------------------- notebook 06


def test_gram_sparsity_by_hand():
    g = torch.tensor([[0.0, 1.0], [1e-5, 2.0]])
    assert ex.gram_sparsity(g, rel_tol=1e-3) == 0.5
    assert ex.gram_sparsity(g, rel_tol=1e-6) == 0.25


def test_gram_sparsity_table_shift_removes_zeros(images):
    _, s = images
    table = ex.gram_sparsity_table(s, layers=["relu2_1", "relu4_1"], size=SIZE)
    assert table.column("layer") == ["relu2_1", "relu4_1"]
    for zero, near in zip(table.column("G = 0, s=0 (%)"), table.column("|G| ≤ 0.001·max, s=0 (%)")):
        assert 0 <= zero <= near <= 100
    assert sum(table.column("G = 0, s=0 (%)")) > 0  # ReLU features give exact zeros
    assert table.column("G = 0, s=1 (%)") == [0.0, 0.0]
    assert all(0 < z < 100 for z in table.column("zero activations (%)"))


def test_visualize_gram_shift(images):
    _, s = images
    fig = ex.visualize_gram_shift(s, layer="relu2_1", shifts=(0.0, 1.0), size=SIZE)
    matrices = [ax for ax in fig.axes if ax.images]
    assert len(matrices) == 2 and matrices[0].images[0].get_array().shape == (128, 128)
    assert matrices[0].get_title().startswith("shift s = 0") and matrices[1].get_title().startswith("shift s = 1: 0.0%")


@pytest.mark.parametrize("chained, n", [(False, 16), (True, 15)])
def test_visualize_layer_weights(chained, n):
    fig = ex.visualize_layer_weights(RELU_LAYERS, chained=chained)
    linear, log = fig.axes
    heights = [p.get_height() for p in linear.patches]
    assert len(heights) == 2 * n
    assert sum(heights[:n]) == pytest.approx(1.0) and sum(heights[n:]) == pytest.approx(1.0)
    assert heights[n] == pytest.approx(2 ** (n - 1) / (2**n - 1))  # the first geometric weight
    assert log.get_yscale() == "log"


def test_novak_ablation_variants_are_valid_options():
    assert list(ex.NOVAK_ABLATION)[0] == "gatys" and len(ex.NOVAK_ABLATION) == 6
    resolved = {name: resolve_options(**opts) for name, opts in ex.NOVAK_ABLATION.items()}
    gatys = resolved["gatys"]
    for name in ("+ shift", "+ 16 layers", "+ chained", "+ geometric"):
        changed = {k for k in gatys if resolved[name][k] != gatys[k]}
        assert len(changed) == 1, (name, changed)  # each change alone
    novak = resolved["novak (all four)"]
    assert novak["activation_shift"] != 0 and novak["chained"] and novak["layer_weighting"] == "geometric"
    assert len(novak["style_layers"]) == 16


def test_visualize_novak_ablation(images):
    c, s = images
    variants = {name: ex.NOVAK_ABLATION[name] for name in ("gatys", "+ chained")}
    fig = ex.visualize_novak_ablation(c, s, variants=variants, size=SIZE, steps=STEPS)
    top, bottom = fig.subfigs
    assert [ax.get_title().split("\n")[0] for ax in top.axes] == ["content", "style", "gatys", "+ chained"]
    assert [ax.get_title() for ax in bottom.axes] == ["content loss vs step", "style loss vs step"]
    assert fig.get_size_inches()[0] <= ex.MAX_FIGURE_WIDTH


def test_variants_table_prints_one_short_line_per_run():
    table = ex.variants_table(ex.NOVAK_ABLATION, title="the runs")
    assert table.column("run") == list(ex.NOVAK_ABLATION)
    options = dict(zip(table.column("run"), table.column("options")))
    assert options["gatys"] == "(the gatys preset)" and options["+ 16 layers"] == "style_layers=16 layers"
    assert options["novak (all four)"] == "preset=novak"
    assert len(str(table).splitlines()) == 1 + 2 + len(ex.NOVAK_ABLATION)  # title, header, rule, a line a run


def test_visualize_novak_options(images):
    c, s = images
    fig = ex.visualize_novak_options(c, s, activation_shift=-1.0, all_layers=True, chained=True, size=SIZE, steps=1)
    title = fig.get_suptitle()
    assert "activation_shift=-1" in title and "chained=True" in title and "16 layers" in title


def test_normalization_factor_table_matches_the_normalized_network():
    table = ex.normalization_factor_table("random")
    assert table.column("layer") == nstlab.CONV_LAYERS
    for row in table.rows:
        assert 0 < row["smallest m"] <= row["median m"]
        assert row["largest 1/m"] == pytest.approx(1 / row["smallest m"])
        cap = 1 / (nstlab.vgg.NORMALIZATION_FLOOR * row["median m"])
        uncapped = math.inf if row["dead channels"] else row["largest 1/m"]  # dead channels get the floor too
        assert row["largest factor used"] == pytest.approx(min(uncapped, cap), rel=1e-6)
        assert row["dead channels"] <= row["floored channels"]
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = VGGFeatures(["relu1_1"], weights="random", device="cpu")(x)["relu1_1"]
        normalized = VGGFeatures(["relu1_1"], weights="random", normalized=True, device="cpu")(x)["relu1_1"]
    ratios = plain.amax(dim=(2, 3)) / normalized.amax(dim=(2, 3))  # the divisor of each conv1_1 channel
    assert float(1 / ratios.min()) == pytest.approx(table.rows[0]["largest factor used"], rel=1e-4)
    assert float(ratios.median()) == pytest.approx(table.rows[0]["median m"], rel=1e-4)


def test_sweeps_default_to_multiples_of_the_preset(images):
    c, s = images
    beta, gamma = PRESETS["gatys"]["style_weight"], PRESETS["gatys"]["tv_weight"]
    assert list(ex.style_weight_sweep(c, s, size=SIZE, steps=1)) == [0.1 * beta, beta, 10 * beta]  # smoke mode
    assert list(ex.tv_weight_sweep(c, s, size=SIZE, steps=1)) == [0.0, gamma, 100 * gamma]
    novak = ex.style_weight_sweep(c, s, size=SIZE, steps=1, preset="novak")
    assert list(novak)[1] == PRESETS["novak"]["style_weight"]
