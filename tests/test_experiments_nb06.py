"""nstlab.experiments.nb06_improved_style_transfer (notebook 06) at tiny sizes: Gram sparsity and the activation
shift, the layer weights, and Novak & Nikulin's ablation."""

from __future__ import annotations

import pytest
import torch

from nstlab import experiments as ex
from nstlab.optimize import resolve_options
from nstlab.plotting import MAX_FIGURE_WIDTH
from nstlab.vgg import RELU_LAYERS

SIZE, STEPS = 64, 2

pytestmark = pytest.mark.usefixtures("random_weights_and_private_cache")


def test_gram_sparsity_by_hand():
    g = torch.tensor([[0.0, 1.0], [1e-5, 2.0]])
    assert ex.gram_sparsity(g, rel_tol=1e-3) == 0.5
    assert ex.gram_sparsity(g, rel_tol=1e-6) == 0.25


def test_gram_sparsity_table_shift_removes_zeros(sweep_images):
    _, s = sweep_images
    table = ex.gram_sparsity_table(s, layers=["relu2_1", "relu4_1"], size=SIZE)
    assert table.column("layer") == ["relu2_1", "relu4_1"]
    for zero, near in zip(table.column("G = 0, s=0 (%)"), table.column("|G| ≤ 0.001·max, s=0 (%)")):
        assert 0 <= zero <= near <= 100
    assert sum(table.column("G = 0, s=0 (%)")) > 0  # ReLU features give exact zeros
    assert table.column("G = 0, s=1 (%)") == [0.0, 0.0]
    assert all(0 < z < 100 for z in table.column("zero activations (%)"))


def test_visualize_gram_shift(sweep_images):
    _, s = sweep_images
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


def test_visualize_novak_ablation(sweep_images):
    c, s = sweep_images
    variants = {name: ex.NOVAK_ABLATION[name] for name in ("gatys", "+ chained")}
    fig = ex.visualize_novak_ablation(c, s, variants=variants, size=SIZE, steps=STEPS)
    top, bottom = fig.subfigs
    assert [ax.get_title().split("\n")[0] for ax in top.axes] == ["content", "style", "gatys", "+ chained"]
    assert [ax.get_title() for ax in bottom.axes] == ["content loss vs step", "style loss vs step"]
    assert fig.get_size_inches()[0] <= MAX_FIGURE_WIDTH


def test_variants_table_prints_one_short_line_per_run():
    table = ex.variants_table(ex.NOVAK_ABLATION, title="the runs")
    assert table.column("run") == list(ex.NOVAK_ABLATION)
    options = dict(zip(table.column("run"), table.column("options")))
    assert options["gatys"] == "(the gatys preset)" and options["+ 16 layers"] == "style_layers=16 layers"
    assert options["novak (all four)"] == "preset=novak"
    assert len(str(table).splitlines()) == 1 + 2 + len(ex.NOVAK_ABLATION)  # title, header, rule, a line a run


def test_visualize_novak_options(sweep_images):
    c, s = sweep_images
    fig = ex.visualize_novak_options(c, s, activation_shift=-1.0, all_layers=True, chained=True, size=SIZE, steps=1)
    title = fig.get_suptitle()
    assert "activation_shift=-1" in title and "chained=True" in title and "16 layers" in title


def test_the_notebooks_novak_loss_written_out_is_stylizes_novak_preset(sweep_images):
    """Notebook 06's "whole method, in your loop": the 15 chained Grams of the shifted maps averaged over the larger
    map's positions, geometric weights, relative errors, with the content and TV terms and the preset's weights. At
    the first step it is stylize(preset="novak")'s objective to float rounding (measured 1.2e-7 at 64 px), and the
    student's loop then follows it (0.14 % after 10 steps)."""
    from nstlab import losses
    from nstlab.images import resize
    from nstlab.optimize import PRESETS, stylize
    from nstlab.vgg import VGGFeatures

    content, style = sweep_images
    novak = PRESETS["novak"]
    s = novak["activation_shift"]
    pairs = list(zip(RELU_LAYERS[:-1], RELU_LAYERS[1:]))
    w = {pair: 2.0 ** (len(pairs) - i) / (2.0 ** len(pairs) - 1) for i, pair in enumerate(pairs, start=1)}
    assert w == losses.layer_weights(losses.style_keys(RELU_LAYERS, chained=True), "geometric")
    vgg = VGGFeatures(RELU_LAYERS, weights="random")
    painting = resize(style, max(content.shape[-2:]))

    def chained(feats, a, b):
        return losses.chained_gram(feats[a] + s, feats[b] + s) / (feats[a].shape[-2] * feats[a].shape[-1])

    with torch.no_grad():
        P = vgg(content)["relu4_2"]
        A = {(a, b): chained(vgg(painting), a, b) for a, b in pairs}
    _, c, h, wd = content.shape
    n_tv = c * (h * (wd - 1) + (h - 1) * wd)

    def novak_objective(x):
        feats = vgg(x)
        content_term = losses.content_loss(feats["relu4_2"], P) / losses.content_loss(torch.zeros_like(P), P)
        style_term = sum(w[pair] * ((chained(feats, *pair) - a) ** 2).sum() / (a**2).sum() for pair, a in A.items())
        return (novak["content_weight"] * content_term + novak["style_weight"] * style_term
                + novak["tv_weight"] * losses.tv_loss(x) / n_tv)

    _, history = ex.optimize_pixels(novak_objective, content, 3)
    packaged = stylize(content, style, preset="novak", size=64, steps=3, precision="fp32", weights="random", seed=0,
                       progress=False)
    agreement = ex.loop_agreement(history, packaged.history["total"])
    assert agreement["first step"] <= ex.FIRST_STEP_TOLERANCE and agreement["largest"] <= ex.LOOP_TOLERANCE
