"""nstlab.experiments.nb09_evaluating_style_transfer (notebook 09): Yuan & Huang's intensity, contrast and
one-layer-at-a-time experiments, and one run measured with the yardsticks. Tiny sizes, few steps."""

from __future__ import annotations

import math

import pytest
import torch

from nstlab import experiments
from nstlab.optimize import PRESETS

CONTENT, STYLE = "chelsea_cat", "van_gogh_church_at_auvers"


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


def test_single_layer_style_runs_are_texture_syntheses():
    (result,) = experiments.single_layer_style_runs(CONTENT, STYLE, ["relu1_1"], size=32, steps=1).values()
    assert result.settings["tv_weight"] == 0.0 and result.settings["content_weight"] == 0.0


def test_lpips_content_runs_compare_the_two_content_losses():
    runs = experiments.lpips_content_runs(CONTENT, STYLE, size=32, steps=2)
    assert list(runs) == list(experiments.LPIPS_CONTENT_VARIANTS)
    l2, lpips, lower = runs.values()
    assert l2.settings["content_loss"] == "l2" and l2.settings["content_layers"] == ["relu4_2"]
    assert lpips.settings["content_loss"] == "lpips" and lpips.settings["content_layers"][-1] == "relu5_4"
    assert lower.settings["content_weight"] == 0.1
    assert l2.settings["style_layers"] == lpips.settings["style_layers"]  # Gatys' style loss kept
    rows = experiments.evaluate_results(runs, CONTENT, STYLE)
    assert all(r["style loss"] > 0 and r["content loss"] > 0 for r in rows)


def test_visualize_evaluation_takes_the_content_loss():
    fig = experiments.visualize_evaluation(CONTENT, STYLE, "gatys", size=32, steps=1, content_loss="lpips")
    assert fig.axes[2].get_title().endswith(", LPIPS-form content loss")


def test_the_notebooks_lpips_objective_written_out_is_stylizes_lpips_content_loss():
    """Notebook 09's "your distance as the content term of your loop": the LPIPS-form distance to the photo at the
    five LPIPS layers, Gatys' style term with Grams averaged over positions, the TV mean, the gatys preset's weights.
    At the first step it is stylize(content_loss="lpips")'s objective to float rounding (measured 1.1e-7 at 64 px),
    and the loop then follows it (8e-6 after 8 steps)."""
    from nstlab import losses
    from nstlab.images import resize, sample_image
    from nstlab.optimize import PRESETS, stylize
    from nstlab.vgg import VGGFeatures

    gatys = PRESETS["gatys"]
    vgg = VGGFeatures(list(dict.fromkeys([*losses.LPIPS_LAYERS, *gatys["style_layers"]])), weights="random")
    photo = sample_image("tower_bridge", 64)
    painting = resize(sample_image("van_gogh_cafe_terrace_at_night"), max(photo.shape[-2:]))

    def averaged_gram(f):
        return losses.gram_matrix(f) / (f.shape[-2] * f.shape[-1])

    with torch.no_grad():
        photo_feats = {layer: f for layer, f in vgg(photo).items() if layer in losses.LPIPS_LAYERS}
        A = {layer: averaged_gram(f) for layer, f in vgg(painting).items() if layer in gatys["style_layers"]}
    _, c, h, w = photo.shape
    n_tv = c * (h * (w - 1) + (h - 1) * w)

    def lpips_objective(x):
        feats = vgg(x)
        content_term = losses.perceptual_distance({l: feats[l] for l in losses.LPIPS_LAYERS}, photo_feats).sum()
        style_term = sum(((averaged_gram(feats[l]) - a) ** 2).sum() / (a**2).sum() for l, a in A.items()) / len(A)
        return (gatys["content_weight"] * content_term + gatys["style_weight"] * style_term
                + gatys["tv_weight"] * losses.tv_loss(x) / n_tv)

    _, history = experiments.optimize_pixels(lpips_objective, photo, 3)
    packaged = stylize("tower_bridge", "van_gogh_cafe_terrace_at_night", content_loss="lpips", size=64, steps=3,
                       precision="fp32", weights="random", seed=0, progress=False)
    agreement = experiments.loop_agreement(history, packaged.history["total"])
    assert agreement["first step"] <= experiments.FIRST_STEP_TOLERANCE and agreement["largest"] <= experiments.LOOP_TOLERANCE
