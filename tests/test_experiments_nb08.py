"""nstlab.experiments.nb08_color_preservation (notebook 08): YIQ, luminance matching, colour histogram matching
and its colour distance, and stylize's three colour settings. Tiny sizes, few steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from figure_checks import axes_titles, data_under_legends
from nstlab import color, experiments
from nstlab.plotting import MAX_FIGURE_WIDTH

CONTENT, STYLE = "chelsea_cat", "van_gogh_church_at_auvers"


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_visualize_yiq_channels_and_luminance_matching_axes():
    assert len(experiments.visualize_yiq_channels("coffee", size=32).axes) == 4 + 3  # + 3 colour bars
    fig = experiments.visualize_luminance_matching(CONTENT, STYLE, size=32)
    assert len(fig.axes) == 4
    content_title, _, matched_title = (ax.get_title() for ax in fig.axes[:3])
    assert content_title.split("\n")[1] == matched_title.split("\n")[1]  # same mean and sd
    assert data_under_legends(fig) == 0  # the histograms' legend sits beside them


def test_histogram_matching_figure_fits_the_notebook_width():
    fig = experiments.visualize_histogram_matching(CONTENT, STYLE, size=32)
    assert len(fig.axes) == 2 * 5 and fig.get_size_inches()[0] <= MAX_FIGURE_WIDTH


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
    titles = axes_titles(fig)
    for name in experiments.COLOR_VARIANTS:
        assert name in titles
    assert titles.count("colour W2 to content") == 3


def test_luminance_transfer_from_your_functions_is_stylizes_luminance_mode():
    calls = []

    def my_yiq(img):
        calls.append("yiq")
        return color.rgb_to_yiq(img)

    # The same algorithm by two routes that round differently: your rgb_to_yiq (a matrix product) against stylize's
    # color.luminance (a weighted sum), 1 ulp apart. In fp32 the images after two steps differ by at most 1.8e-7,
    # measured (2026-12-07) on a Xeon with AMX and with ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 and =AVX2; the bound is
    # 1e-5. (They were bit-equal on an AMD EPYC, which is why this once said torch.equal.)
    mine = experiments.luminance_transfer_with(my_yiq, color.recombine_luminance, size=32, steps=2, weights="random",
                                               precision="fp32")
    variant = {"l": {"preserve_color": "luminance", "precision": "fp32"}}
    package = experiments.run_variants("eilean_donan_castle", "van_gogh_night_cafe", variant, 32, 2, 0, "random")["l"]
    assert calls == ["yiq", "yiq"]
    assert mine.history["total"][0] == pytest.approx(package.history["total"][0], rel=1e-6)
    torch.testing.assert_close(mine.image, package.image, rtol=0, atol=1e-5)
    torch.testing.assert_close(mine.best_image, package.best_image, rtol=0, atol=1e-5)
    fig = experiments.visualize_color_preservation(size=32, steps=2, weights="random", rgb_to_yiq=my_yiq,
                                                   recombine=color.recombine_luminance)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes[2:5]] == list(experiments.COLOR_VARIANTS)


def test_histogram_matching_figure_takes_your_cholesky():
    from nstlab import checks

    fig = experiments.visualize_histogram_matching(size=32, cholesky=checks.cholesky_transfer)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[2].startswith("style recoloured: your cholesky") and titles[3].startswith("style recoloured: image_analogies")
    package = [ax.get_title() for ax in experiments.visualize_histogram_matching(size=32).axes]
    assert package[2].split("W2")[1] == titles[2].split("W2")[1]  # the same recolouring
