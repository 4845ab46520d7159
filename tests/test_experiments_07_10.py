"""Experiments of notebooks 07-10 (SSIM, colour, evaluation): tiny sizes, few steps, real properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from figure_checks import data_under_legends
from nstlab import color, experiments
from nstlab.images import sample_image
from nstlab.optimize import PRESETS
from nstlab.ssim import ssim

CONTENT, STYLE = "chelsea_cat", "van_gogh_church_at_auvers"


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _titles(fig) -> str:
    return " | ".join(ax.get_title() for ax in fig.axes)


# ----------------------------------------------------------------------------- tables and runs


def test_rows_table_collects_the_columns_and_formats_floats():
    table = experiments.rows_table([{"a": 1.23456789, "b": "x"}, {"a": 2.0, "c": 3}], title="T", digits=3)
    assert table.columns == ["a", "b", "c"]
    text = str(table)
    assert text.splitlines()[0] == "T" and "1.23" in text and "1.2345" not in text
    assert "<table>" in table._repr_html_()
    with pytest.raises(ValueError, match="no rows"):
        experiments.rows_table([])


def test_visualize_runs_draws_inputs_runs_and_one_plot_per_term():
    results = experiments.run_variants(CONTENT, STYLE, {"a": {}, "b": {"style_weight": 10.0}}, size=32, steps=2)
    rows = experiments.evaluate_results(results, CONTENT, STYLE)
    fig = experiments.visualize_runs(results, CONTENT, STYLE, rows, show=("style loss",), suptitle="two runs")
    assert len(fig.axes) == 4 + 2
    assert "style loss" in fig.axes[2].get_title() and fig.axes[2].get_title().startswith("a")
    assert fig.get_suptitle() == "two runs" and fig.get_size_inches()[0] <= experiments.MAX_FIGURE_WIDTH
    plots = fig.subfigs[-1]
    assert [t.get_text() for t in plots.legends[0].get_texts()] == ["a", "b"]  # one legend, under the plots
    assert all(ax.get_legend() is None for ax in plots.axes) and data_under_legends(fig) == 0
    assert all(line.get_marker() == "o" for ax in plots.axes for line in ax.get_lines())  # 2 steps: dots
    assert min(ax.title.get_fontsize() for ax in fig.axes) >= 10
    assert len(experiments.visualize_runs(results, terms=("style",)).axes) == 2 + 1
    assert len(experiments.visualize_runs(results, terms=()).axes) == 2
    with pytest.raises(ValueError, match="no results"):
        experiments.visualize_runs({})


# ----------------------------------------------------------------------------- 07


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
    assert "structure (mean" in _titles(fig)
    assert fig.get_size_inches()[0] <= experiments.MAX_FIGURE_WIDTH  # wider, a notebook shrinks its text


@pytest.mark.parametrize("kind", experiments.DISTORTIONS)
def test_distort_at_zero_strength_is_the_identity_and_grows_with_strength(kind):
    img = sample_image(CONTENT, 32)
    assert torch.allclose(experiments.distort(img, kind, 0.0), img, atol=1e-6)
    small = float((experiments.distort(img, kind, 0.05 if kind != "blur" else 0.5) - img).pow(2).mean())
    large = float((experiments.distort(img, kind, 0.3 if kind != "blur" else 3.0) - img).pow(2).mean())
    assert 0 < small < large


def test_distort_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        experiments.distort(sample_image(CONTENT, 32), "jpeg", 0.1)


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
    assert fig.get_size_inches()[0] <= experiments.MAX_FIGURE_WIDTH
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
    assert [r["layer"] for r in rows] == experiments.GATYS_STYLE_LAYERS
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
    assert "relu2_1: content" in _titles(fig)
    assert fig.axes[0].get_title().startswith(r"relu2_1: style Gram $\tilde{A}$")  # Ã, not "A~"
    assert r"content $\tilde{G}$" in fig.axes[2].get_title() and "~" not in _titles(fig).replace(r"\tilde", "")
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
    titles = _titles(fig)
    for name in experiments.SSIM_VARIANTS:
        assert name in titles
    assert titles.count("style loss") == len(experiments.SSIM_VARIANTS)


def test_ssim_vs_gatys_keeps_each_presets_style_weight_unless_given(monkeypatch):
    seen = []
    real = experiments.run_variants

    def spy(*args, **common):
        seen.append(common)
        return real(*args, **common)

    monkeypatch.setattr(experiments, "run_variants", spy)
    experiments.visualize_ssim_vs_gatys(CONTENT, STYLE, size=32, steps=1)
    experiments.visualize_ssim_vs_gatys(CONTENT, STYLE, size=32, steps=1, style_weight=3.0)
    assert seen == [{}, {"style_weight": 3.0}]


# ----------------------------------------------------------------------------- 08


def test_visualize_yiq_channels_and_luminance_matching_axes():
    assert len(experiments.visualize_yiq_channels("coffee", size=32).axes) == 4 + 3  # + 3 colour bars
    fig = experiments.visualize_luminance_matching(CONTENT, STYLE, size=32)
    assert len(fig.axes) == 4
    content_title, _, matched_title = (ax.get_title() for ax in fig.axes[:3])
    assert content_title.split("\n")[1] == matched_title.split("\n")[1]  # same mean and sd
    assert data_under_legends(fig) == 0  # the histograms' legend sits beside them


def test_histogram_matching_figure_fits_the_notebook_width():
    fig = experiments.visualize_histogram_matching(CONTENT, STYLE, size=32)
    assert len(fig.axes) == 2 * 5 and fig.get_size_inches()[0] <= experiments.MAX_FIGURE_WIDTH


def test_color_statistics_match_numpy():
    img = _rand(1, 3, 5, 7, seed=4)
    mean, cov = experiments.color_statistics(img)
    pixels = img[0].flatten(1).numpy()
    assert torch.allclose(mean, torch.from_numpy(pixels.mean(axis=1)))
    assert torch.allclose(cov, torch.from_numpy(np.cov(pixels, bias=True)))


def test_gaussian_color_distance_of_a_shift_is_its_length():
    img = _rand(1, 3, 8, 8, seed=5) * 0.5
    assert experiments.gaussian_color_distance(img, img) == 0.0
    assert experiments.gaussian_color_distance(img, img + 0.1) == pytest.approx(0.1 * math.sqrt(3), rel=1e-6)
    other = _rand(1, 3, 6, 9, seed=6)
    assert experiments.gaussian_color_distance(img, other) == pytest.approx(
        experiments.gaussian_color_distance(other, img), rel=1e-6
    )


def test_histogram_matching_rows_match_the_content_statistics_exactly_without_clamping():
    rows = {r["image"]: r for r in experiments.histogram_matching_rows(CONTENT, STYLE, size=32)}
    assert rows["style (source)"]["W2 to content"] > 0.05
    for mode in color.COLOR_MODES:
        row = rows[f"style, {mode}"]
        assert row["W2 to content"] < 1e-5
        for key in ("mean R", "cov GB"):
            assert row[key] == pytest.approx(rows["content (target)"][key], abs=1e-6)
    assert len(experiments.visualize_histogram_matching(CONTENT, STYLE, size=32).axes) == 10


def test_visualize_color_preservation_runs_three_modes():
    fig = experiments.visualize_color_preservation(CONTENT, STYLE, size=32, steps=2)
    assert len(fig.axes) == 2 + 3 + 2
    titles = _titles(fig)
    for name in experiments.COLOR_VARIANTS:
        assert name in titles
    assert titles.count("colour W2 to content") == 3


# ----------------------------------------------------------------------------- 09


def test_intensity_rows_reproduce_the_seed_l2_values():
    rows = experiments.intensity_rows(size=32)
    assert [r["pair"] for r in rows] == ["(white, black)", "(white, grey)", "(grey, black)"]
    assert [r["L2"] for r in rows] == pytest.approx([4.0, 1.0, 1.0])
    assert [r["Yuan & Huang's perceptual"] for r in rows] == [0.4538, 0.4945, 0.5390]  # their Fig. 5
    assert all(math.isfinite(r["perceptual"]) and r["perceptual"] > 0 for r in rows)


def test_contrast_rows_l2_grows_quadratically():
    rows = experiments.contrast_rows(CONTENT, (1.0, 0.75, 0.5), size=32)
    assert len(rows) == 2
    assert rows[1]["L2 ratio"] == pytest.approx(4.0, rel=1e-4)
    assert rows[1]["perceptual ratio"] > 1
    images = experiments.contrast_images(CONTENT, (1.0, 0.5), size=32)
    first, second = images.values()
    assert float(second.std()) < float(first.std())


def test_evaluate_images_is_zero_for_the_content_itself():
    content = sample_image(CONTENT, 48)
    noise = _rand(*content.shape, seed=7).float()
    rows = {r["image"]: r for r in experiments.evaluate_images({"same": content, "noise": noise}, CONTENT, STYLE)}
    same, other = rows["same"], rows["noise"]
    assert same["content loss"] == pytest.approx(0.0, abs=1e-6)
    assert same["SSIM to content"] == pytest.approx(1.0, abs=1e-5)
    assert same["LPIPS to content"] == pytest.approx(0.0, abs=1e-4)
    assert other["content loss"] > same["content loss"] and other["SSIM to content"] < 0.5
    assert all(math.isfinite(v) for row in rows.values() for k, v in row.items() if k != "image")
    with pytest.raises(ValueError, match="one size"):
        experiments.evaluate_images({"a": content, "b": noise[..., :40]}, CONTENT, STYLE)


def test_single_layer_runs_use_one_layer_each():
    style_runs = experiments.single_layer_style_runs(CONTENT, STYLE, ["relu1_1", "relu2_1"], size=32, steps=2)
    assert list(style_runs) == ["relu1_1", "relu2_1"]
    for layer, result in style_runs.items():
        assert result.settings["style_layers"] == [layer]
        assert result.settings["content_weight"] == 0.0 and result.settings["init"] == "noise"
    content_runs = experiments.single_layer_content_runs(
        CONTENT, STYLE, "relu2_1", ["relu1_2", "relu3_2"], size=32, steps=2
    )
    assert list(content_runs) == ["content relu1_2", "content relu3_2"]  # the shared style layer left out
    first = next(iter(content_runs.values()))
    assert first.settings["content_layers"] == ["relu1_2"] and first.settings["style_layers"] == ["relu2_1"]
    rows = experiments.evaluate_results(content_runs, CONTENT, STYLE)
    for row, result in zip(rows, content_runs.values()):
        assert row["own total loss"] == result.history["total"][-1] and row["steps"] == 2


def test_visualize_evaluation_shows_images_losses_and_a_table():
    fig = experiments.visualize_evaluation(CONTENT, STYLE, "gatys", size=32, steps=2)
    assert len(fig.axes) == 3 + 1 + 1
    assert fig.axes[3].get_title() == "the run's own loss terms"
    assert fig.axes[2].get_title() == f"gatys, style weight {PRESETS['gatys']['style_weight']:g}"  # the preset's
