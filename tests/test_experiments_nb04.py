"""nstlab.experiments.nb04_total_variation (notebook 04) at tiny sizes: TV of noisy and smoothed images, TV
denoising and the TV weight sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nstlab
from figure_checks import image_axes
from nstlab import experiments as ex
from nstlab import losses
from nstlab.experiments import nb04_total_variation as nb04
from nstlab.optimize import PRESETS

SIZE, STEPS = 64, 2

pytestmark = pytest.mark.usefixtures("random_weights_and_private_cache")


def _all_titles(fig):
    titles = [ax.get_title() for ax in fig.axes]
    for sub in getattr(fig, "subfigs", []):
        titles += [ax.get_title() for ax in sub.axes]
    return titles


def test_tv_table_uses_both_forms():
    img = torch.rand(1, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    (row,) = ex.tv_table({"x": img}).rows
    assert row["TV L1 (sum)"] == pytest.approx(float(losses.tv_loss(img.double(), "l1")))
    assert row["TV L1 (mean |∇|)"] == pytest.approx(row["TV L1 (sum)"] / (3 * (9 * 6 + 8 * 7)))
    assert row["TV squared (mean)"] == pytest.approx(float(losses.tv_loss(img.double(), "l2", reduction="mean")))


def test_noise_raises_and_smoothing_lowers_the_tv():
    cat = nstlab.sample_image("chelsea_cat", SIZE)
    noisy = ex.distort(cat, "noise", 0.1, seed=3)
    assert torch.equal(noisy, ex.distort(cat, "noise", 0.1, seed=3)) and 0 <= noisy.min() and noisy.max() <= 1
    tv = [float(losses.tv_loss(x, "l1")) for x in (cat, noisy, ex.distort(cat, "blur", 1.0))]
    assert tv[1] > 2 * tv[0] > 2 * tv[2]


def test_psnr():
    ref = torch.full((1, 3, 4, 4), 0.5)
    assert ex.psnr(ref + 0.1, ref) == pytest.approx(20.0, abs=1e-4)
    assert ex.psnr(ref, ref) == math.inf
    with pytest.raises(ValueError, match="shape"):
        ex.psnr(ref, ref[..., :2])


def test_tv_denoise_removes_noise():
    cat = nstlab.sample_image("chelsea_cat", SIZE)
    noisy = ex.distort(cat, "noise", 0.1, seed=0)
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
    assert len(image_axes(fig)) == 6
    assert any("noisy" in t for t in _all_titles(fig))
    fig = ex.visualize_tv_denoising("chelsea_cat", size=SIZE, steps=10)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 8 and sum("PSNR" in t for t in titles) == 3


def test_tv_weight_sweep_lowers_the_tv(sweep_images):
    c, s = sweep_images
    results = ex.tv_weight_sweep(c, s, tv_weights=(0.0, 1e2, 1e5), size=SIZE, steps=3, init="noise",
                                 optimizer="adam", lr=0.1, style_weight=1.0)
    assert list(results) == [0.0, 1e2, 1e5]
    tvs = [float(losses.tv_loss(r.image, "l1", reduction="mean")) for r in results.values()]
    assert tvs[0] > tvs[1] > tvs[2]


def test_visualize_tv_weight_sweep(sweep_images):
    c, s = sweep_images
    fig = ex.visualize_tv_weight_sweep(c, s, tv_weights=(0.0, 10.0), size=SIZE, steps=STEPS)
    assert len(fig.axes) == 3
    assert fig.axes[0].get_title().startswith("tv_weight = 0\nTV ")
    assert len(fig.axes[-1].get_lines()) == 3  # the results, the content's TV, the style's TV
    plot = fig.axes[-1]
    assert plot.get_xscale() == "symlog" and list(plot.get_lines()[0].get_xdata()) == [0.0, 10.0]  # the weights
    assert plot.get_xlabel() == "tv_weight (linear up to 10, log scale above)"


def test_tv_weight_sweep_defaults_to_multiples_of_the_preset(sweep_images, monkeypatch):
    monkeypatch.setenv("NSTLAB_SMOKE", "1")  # smoke mode's multiples (0, 1, 100), whatever mode the shell has
    c, s = sweep_images
    gamma = PRESETS["gatys"]["tv_weight"]
    assert list(ex.tv_weight_sweep(c, s, size=SIZE, steps=1)) == [0.0, gamma, 100 * gamma]  # smoke mode


def test_weight_axis_puts_zero_and_decades_to_scale():
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    assert nb04._weight_axis(ax, [0.0, 3.0, 30.0, 300.0], "tv_weight") == "tv_weight (linear up to 3, log scale above)"
    x = ax.xaxis.get_transform().transform([0.0, 3.0, 30.0, 300.0])
    assert np.diff(x) == pytest.approx([x[1] - x[0]] * 3)  # 0..3 as wide as a decade: evenly spaced, to scale
    assert ax.xaxis.get_transform().transform([0.0, 3.0, 300.0])[2] == pytest.approx(x[3])  # smoke: 100 is two decades
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "3", "30", "300"]
    assert ax.get_xlim()[0] == pytest.approx(-0.75)  # 0 near the left edge: no empty negative side
    linear = Figure().subplots()
    assert nb04._weight_axis(linear, [0.0], "tv_weight") == "tv_weight" and linear.get_xscale() == "linear"
