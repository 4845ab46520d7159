"""nstlab.experiments.nb00_setup_and_images (notebook 00): the environment table, the bundled images, preprocessing
and ImageNet normalisation (the weights banner of every notebook: test_weights_banner.py)."""

from __future__ import annotations

import pytest
import torch

from figure_checks import image_axes
from nstlab import experiments as ex
from nstlab.experiments import nb00_setup_and_images as nb00
from nstlab.images import list_images
from nstlab.vgg import IMAGENET_MEAN, VGGFeatures, imagenet_normalize

W = "random"


def test_environment_table(monkeypatch):
    mode = "mode (nstlab.set_mode, NSTLAB_MODE)"
    monkeypatch.setenv("NSTLAB_SMOKE", "1")
    rows = {r["item"]: r["value"] for r in ex.environment_table(W).rows}
    assert rows["torch"] == torch.__version__
    assert rows[mode] == "smoke, from NSTLAB_SMOKE=1: for the tests: 64 px and a few steps; the pictures mean nothing"
    assert "RANDOM" in rows["VGG19 weights in use"]
    monkeypatch.setenv("NSTLAB_SMOKE", "0")
    rows = {r["item"]: r["value"] for r in ex.environment_table(W).rows}
    assert rows[mode].startswith("real, from the default: the real sizes")
    monkeypatch.setenv("NSTLAB_MODE", "quick")
    rows = {r["item"]: r["value"] for r in ex.environment_table(W).rows}
    assert rows[mode].startswith("quick, from NSTLAB_MODE=quick: for live teaching")


def test_wrap_name_breaks_at_underscores_only():
    wrapped = nb00._wrap_name("van_gogh_painter_on_road_to_tarascon", width=14)
    assert wrapped.replace("\n", "") == "van_gogh_painter_on_road_to_tarascon"
    assert all(len(line) <= 15 for line in wrapped.splitlines())
    assert nb00._wrap_name("coffee") == "coffee"


@pytest.mark.parametrize("kind", ["content", "style"])
def test_bundled_images_grid_has_one_titled_panel_per_image(kind):
    fig = ex.visualize_bundled_images(kind, size=32)
    panels = image_axes(fig)
    names = list_images(kind)
    assert len(panels) == len(names)
    for ax, name in zip(panels, names):
        assert ax.get_title().replace("\n", "").startswith(name)
        assert " px" in ax.get_title()
        assert max(ax.images[0].get_array().shape[:2]) <= 32


def test_preprocessing_shows_both_shapes_and_keeps_the_aspect():
    fig = ex.visualize_preprocessing("tower_bridge", 48)
    full, small = image_axes(fig)
    big_shape = full.images[0].get_array().shape
    small_shape = small.images[0].get_array().shape
    assert max(small_shape[:2]) == 48 and max(big_shape[:2]) > 48
    assert abs(big_shape[1] / big_shape[0] - small_shape[1] / small_shape[0]) < 0.05
    assert f"(1, 3, {small_shape[0]}, {small_shape[1]})" in small.get_title()


def test_imagenet_normalize_is_what_vgg_features_does():
    mean_colour = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    assert torch.allclose(imagenet_normalize(mean_colour), torch.zeros(2, 3, 4, 4), atol=1e-6)
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    vgg = VGGFeatures(["conv1_1"], weights=W, device="cpu")
    with torch.no_grad():
        assert torch.allclose(vgg(x)["conv1_1"], vgg.body[0](imagenet_normalize(x)), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(1, 4, 2, 2\)"):
        imagenet_normalize(torch.zeros(1, 4, 2, 2))


def test_normalization_figure_has_histograms_before_and_after():
    fig = ex.visualize_imagenet_normalization("coffee", size=32, bins=8)
    assert len(fig.axes) == 3
    before, after = fig.axes[1], fig.axes[2]
    assert len(before.patches) == 3 and len(after.patches) == 3  # one step histogram per channel
    assert before.get_xlim()[0] >= -0.2 and after.get_xlim()[0] < -1  # values moved below 0
