"""nstlab.experiments.nb07_ssim_weighted_style (notebook 07): SSIM step by step, distortions at one distance,
SSIM between Gram matrices and the SSIM-weighted style loss against Gatys. Tiny sizes, few steps."""

from __future__ import annotations

import pytest
import torch

from figure_checks import axes_titles
from nstlab import experiments
from nstlab.experiments import nb07_ssim_weighted_style as nb07
from nstlab.images import sample_image
from nstlab.plotting import MAX_FIGURE_WIDTH
from nstlab.ssim import ssim
from nstlab.vgg import GATYS_STYLE_LAYERS

CONTENT, STYLE = "chelsea_cat", "van_gogh_church_at_auvers"


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_ssim_components_multiply_to_the_ssim_map():
    x = _rand(2, 3, 16, 20, seed=1)
    y = (0.6 * x + 0.4 * _rand(2, 3, 16, 20, seed=2)).clamp(0, 1)
    parts = experiments.ssim_components(x, y)
    reference = ssim(x, y, reduction="none")
    assert parts["luminance"].shape == reference.shape == (2, 3, 6, 10)
    product = parts["luminance"] * parts["contrast"] * parts["structure"]
    assert torch.allclose(product, reference, atol=1e-10)
    assert torch.allclose(parts["ssim"].mean(dim=(1, 2, 3)), ssim(x, y), atol=1e-10)
    same = experiments.ssim_components(x, x)
    for key in ("luminance", "contrast", "structure", "ssim"):
        assert torch.allclose(same[key], torch.ones_like(same[key]), atol=1e-8), key
    with pytest.raises(ValueError, match="window"):
        experiments.ssim_components(x[..., :8, :8], y[..., :8, :8])


def test_visualize_ssim_components_has_six_panels_and_a_colour_bar():
    x = _rand(1, 1, 24, 24, seed=3)
    fig = experiments.visualize_ssim_components(x, (x + 0.1).clamp(0, 1))
    assert len(fig.axes) == 7
    assert "structure (mean" in axes_titles(fig)
    assert fig.get_size_inches()[0] <= MAX_FIGURE_WIDTH  # wider, a notebook shrinks its text


def test_match_distortions_reaches_the_target_mse():
    img = sample_image(CONTENT, 48)

    def mse(a, b):
        return float((a - b).pow(2).mean())

    found = experiments.match_distortions(img, 0.01, mse)
    assert list(found) == list(experiments.DISTORTIONS)
    for kind, (out, strength, reached) in found.items():
        assert out.shape == img.shape and strength > 0
        assert reached == pytest.approx(0.01, rel=0.02), kind
        assert mse(img, out) == pytest.approx(reached)


def test_visualize_equal_distance_titles_every_distortion_with_the_matched_value():
    fig = experiments.visualize_equal_distance(CONTENT, "mse", 0.01, size=48)
    assert len(fig.axes) == 1 + len(experiments.DISTORTIONS)
    for ax in fig.axes[1:]:
        assert "MSE 0.010" in ax.get_title() and "SSIM" in ax.get_title()
        assert "not reached" not in ax.get_title()
    fig.draw_without_rendering()
    assert fig.get_size_inches()[0] <= MAX_FIGURE_WIDTH
    assert min(ax.title.get_fontsize() for ax in fig.axes) >= 10
    footer_top = fig._supxlabel.get_window_extent().y1
    band = min(ax.get_window_extent().y0 for ax in fig.axes) - footer_top
    assert band / fig.dpi < 0.15  # inches between the images and the footer: no empty band
    with pytest.raises(ValueError, match="match must be"):
        experiments.visualize_equal_distance(CONTENT, "psnr", 0.01, size=32)


def test_visualize_equal_distance_marks_the_distortions_that_miss_the_target():
    # tower_bridge, 48 px, random weights: even a flat image (contrast t = 1) or blur sigma 16 px stay
    # below a content loss of 0.3 (about 0.09); brighter and noisier images reach it
    fig = experiments.visualize_equal_distance("tower_bridge", "content", 0.3, size=48)
    titles = {ax.get_title().split(" (")[0]: ax.get_title() for ax in fig.axes[1:]}
    missed = [kind for kind, title in titles.items() if "max strength: target not reached" in title]
    assert missed == ["contrast", "blur"]
    assert "(t = 1)" in titles["contrast"] and "(t = 16)" in titles["blur"]  # the largest strengths
    for kind in ("brightness", "noise"):
        assert "content 0.300" in titles[kind]


def test_gram_ssim_rows_identical_without_noise_and_closer_to_a_perturbed_style():
    rows = experiments.gram_ssim_rows(CONTENT, STYLE, size=48, noise=0.0)
    assert [r["layer"] for r in rows] == GATYS_STYLE_LAYERS
    for row in rows:
        assert row["SSIM(style, perturbed)"] == pytest.approx(1.0, abs=1e-5)
        assert row["factor content"] == pytest.approx((1 - row["SSIM(style, content)"]) / 2)
    noisy = experiments.gram_ssim_rows(CONTENT, STYLE, size=48, noise=0.05)
    mean_perturbed = sum(r["SSIM(style, perturbed)"] for r in noisy) / len(noisy)
    mean_content = sum(r["SSIM(style, content)"] for r in noisy) / len(noisy)
    assert mean_content < mean_perturbed < 1.0


def test_visualize_gram_ssim_axes_and_layer_check():
    fig = experiments.visualize_gram_ssim(CONTENT, STYLE, "relu2_1", size=32)
    assert len(fig.axes) == 3 + 1 + 1  # three Grams, their colour bar, the bar chart
    assert "relu2_1: content" in axes_titles(fig)
    assert fig.axes[0].get_title().startswith(r"relu2_1: style Gram $\tilde{A}$")  # Ã, not "A~"
    assert r"content $\tilde{G}$" in fig.axes[2].get_title() and "~" not in axes_titles(fig).replace(r"\tilde", "")
    with pytest.raises(ValueError, match="layer must be one of"):
        experiments.visualize_gram_ssim(CONTENT, STYLE, "relu4_2", size=32)


def test_ssim_reweighting_rows_shares_sum_to_one_and_follow_the_factor():
    rows = experiments.ssim_reweighting_rows(CONTENT, STYLE, size=48)
    assert sum(r["share plain"] for r in rows) == pytest.approx(1.0)
    assert sum(r["share SSIM"] for r in rows) == pytest.approx(1.0)
    total = sum(r["E_l"] * r["factor"] for r in rows)
    for row in rows:
        assert 0 <= row["factor"] <= 1 and row["E_l"] > 0
        assert row["share SSIM"] == pytest.approx(row["E_l"] * row["factor"] / total)
    assert len(experiments.visualize_ssim_reweighting(CONTENT, STYLE, size=32).axes) == 2


def test_preset_differences_lists_only_differing_options():
    rows = {r["option"]: r for r in experiments.preset_differences("gatys", "ssim")}
    assert rows["ssim_weighting"]["gatys"] is False and rows["ssim_weighting"]["ssim"] is True
    assert rows["optimizer"]["ssim"] == "adam"
    assert "style_layers" not in rows and "init" not in rows
    assert experiments.preset_differences("gatys", "gatys") == []
    with pytest.raises(ValueError, match="no preset"):
        experiments.preset_differences("gatys", "johnson")


def test_visualize_ssim_vs_gatys_runs_every_variant():
    fig = experiments.visualize_ssim_vs_gatys(CONTENT, STYLE, size=32, steps=2)
    assert len(fig.axes) == 2 + len(experiments.SSIM_VARIANTS) + 2
    titles = axes_titles(fig)
    for name in experiments.SSIM_VARIANTS:
        assert name in titles
    panels = " | ".join(ax.get_title() for ax in fig.axes if ax.images)
    assert panels.count("style loss") == len(experiments.SSIM_VARIANTS)


def test_ssim_vs_gatys_keeps_each_presets_style_weight_unless_given(monkeypatch):
    seen = []
    real = experiments.run_variants

    def spy(*args, **common):
        seen.append(common)
        return real(*args, **common)

    monkeypatch.setattr(nb07, "run_variants", spy)
    experiments.visualize_ssim_vs_gatys(CONTENT, STYLE, size=32, steps=1)
    experiments.visualize_ssim_vs_gatys(CONTENT, STYLE, size=32, steps=1, style_weight=3.0)
    assert seen == [{}, {"style_weight": 3.0}]


def test_ssim_reweighting_takes_your_ssim():
    calls = []

    def my_ssim(x, y):
        calls.append(x.shape)
        return ssim(x, y)

    mine = experiments.ssim_reweighting_rows(CONTENT, STYLE, ["relu1_1", "relu2_1"], size=32, ssim_fn=my_ssim)
    package = experiments.ssim_reweighting_rows(CONTENT, STYLE, ["relu1_1", "relu2_1"], size=32)
    assert len(calls) == 2 and calls[0] == (1, 1, 64, 64)  # each Gram as a one-channel image
    assert [r["factor"] for r in mine] == pytest.approx([r["factor"] for r in package], rel=1e-12)
    def zero(x, y):
        return 0 * ssim(x, y)

    halved = experiments.ssim_reweighting_rows(CONTENT, STYLE, ["relu1_1"], size=32, ssim_fn=zero)
    assert halved[0]["factor"] == pytest.approx(0.5)  # SSIM 0: the factor of unrelated Grams


def test_the_notebooks_ssim_objective_written_out_is_the_ssim_presets():
    """Notebook 07's "the SSIM-weighted loss, with your SSIM, in your loop": the content term at relu5_2, each style
    term's relative Gram error times (1 - SSIM(G~, A~)) / 2 on Grams averaged over positions, the TV mean, the ssim
    preset's weights. At the first step it is stylize(preset="ssim", optimizer="lbfgs")'s objective to float rounding
    (measured 0 at 64 px), and the loop then follows it (9e-6 after 8 steps)."""
    from nstlab import losses
    from nstlab.experiments import FIRST_STEP_TOLERANCE, LOOP_TOLERANCE, loop_agreement, optimize_pixels
    from nstlab.images import resize
    from nstlab.optimize import PRESETS, stylize
    from nstlab.vgg import VGGFeatures

    preset = PRESETS["ssim"]
    content_layer, style_layers = preset["content_layers"][0], preset["style_layers"]
    vgg = VGGFeatures([content_layer, *style_layers], weights="random")
    photo = sample_image("chelsea_cat", 64)
    painting = resize(sample_image("van_gogh_church_at_auvers"), max(photo.shape[-2:]))

    def averaged_gram(f):
        return losses.gram_matrix(f) / (f.shape[-2] * f.shape[-1])

    def ssim_factor(g, a):
        g_unit, a_unit = losses.gram_to_unit_range(g, a)
        return (1 - ssim(g_unit.unsqueeze(1), a_unit.unsqueeze(1))) / 2

    with torch.no_grad():
        P = vgg(photo)[content_layer]
        A = {layer: averaged_gram(f) for layer, f in vgg(painting).items() if layer in style_layers}
    _, c, h, w = photo.shape
    n_tv = c * (h * (w - 1) + (h - 1) * w)

    def ssim_objective(x):
        feats = vgg(x)
        content_term = losses.content_loss(feats[content_layer], P) / losses.content_loss(torch.zeros_like(P), P)
        style_term = sum((((averaged_gram(feats[l]) - a) ** 2).sum() / (a**2).sum()
                          * ssim_factor(averaged_gram(feats[l]), a)).sum() for l, a in A.items()) / len(A)
        return (preset["content_weight"] * content_term + preset["style_weight"] * style_term
                + preset["tv_weight"] * losses.tv_loss(x) / n_tv)

    _, history = optimize_pixels(ssim_objective, photo, 3)
    packaged = stylize("chelsea_cat", "van_gogh_church_at_auvers", preset="ssim", optimizer="lbfgs", size=64, steps=3,
                       precision="fp32", weights="random", seed=0, progress=False)
    agreement = loop_agreement(history, packaged.history["total"])
    assert agreement["first step"] <= FIRST_STEP_TOLERANCE and agreement["largest"] <= LOOP_TOLERANCE
