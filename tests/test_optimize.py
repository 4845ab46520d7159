"""End-to-end tests of nstlab.optimize.stylize at 64 px with the untrained VGG19 (NSTLAB_WEIGHTS=random)."""

from __future__ import annotations

import json
import math

import pytest
import torch

import nstlab.color
import nstlab.losses
import nstlab.optimize
from nstlab.color import rgb_to_yiq
from nstlab.images import as_image, resize
from nstlab.optimize import (
    MEMORY_FACTOR,
    InsufficientMemoryError,
    Result,
    StepInfo,
    estimate_memory,
    objective,
    stylize,
)
from nstlab.presets import DEFAULTS, OPTION_NAMES, PRESETS, resolve_options, scale_fractions
from nstlab.vgg import VGGFeatures

CONTENT, STYLE, STYLE2 = "tower_bridge", "van_gogh_cafe_terrace_at_night", "van_gogh_harvest"
SIZE = 64


@pytest.fixture(autouse=True)
def _random_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSTLAB_WEIGHTS", "random")
    monkeypatch.setenv("NSTLAB_DEVICE", "cpu")


@pytest.fixture(scope="module")
def content() -> torch.Tensor:
    return as_image(CONTENT, SIZE)


@pytest.fixture(scope="module")
def style() -> torch.Tensor:
    return as_image(STYLE, SIZE)


def run(content, style, **options) -> Result:
    options.setdefault("size", SIZE)
    options.setdefault("progress", False)
    return stylize(content, style, **options)


def assert_valid_image(img: torch.Tensor, hw: tuple[int, int]) -> None:
    assert img.shape == (1, 3, *hw) and img.device.type == "cpu"
    assert bool(torch.isfinite(img).all())
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0


# ----------------------------------------------------------------------------- presets


def test_presets_define_the_same_options_and_only_known_ones() -> None:
    keys = set(PRESETS["gatys"])
    for name, preset in PRESETS.items():
        assert set(preset) - {"lr", "adam_betas", "adam_eps"} == keys - {"lr", "adam_betas", "adam_eps"}, name
        assert set(preset) <= set(OPTION_NAMES)
    assert set(DEFAULTS) <= set(OPTION_NAMES)


def test_preset_values_follow_the_papers() -> None:
    gatys, novak, ssim = (resolve_options(p) for p in ("gatys", "novak", "ssim"))
    assert gatys["content_layers"] == ["relu4_2"]
    assert gatys["style_layers"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert (gatys["optimizer"], gatys["layer_weighting"], gatys["chained"]) == ("lbfgs", "uniform", False)
    assert len(novak["style_layers"]) == 16 and novak["style_layers"][-1] == "relu5_4"
    assert (novak["activation_shift"], novak["chained"], novak["layer_weighting"]) == (-1.0, True, "geometric")
    assert ssim["content_layers"] == ["relu5_2"] and ssim["ssim_weighting"] is True
    assert ssim["optimizer"] == "adam" and ssim["lr"] == pytest.approx(5 / 255)
    assert ssim["adam_betas"] == (0.99, 0.999)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_reduces_its_total_loss(content, style, preset) -> None:
    result = run(content, style, preset=preset, steps=4)
    total = result.history["total"]
    assert len(total) == 4 and all(math.isfinite(v) for v in total)
    assert total[-1] < total[0], total
    assert result.best_loss == min(total) and total[result.best_step] == result.best_loss
    assert result.settings["preset"] == preset
    assert result.interrupted is False and result.stopped_reason is None
    assert_valid_image(result.image, tuple(content.shape[-2:]))
    assert_valid_image(result.best_image, tuple(content.shape[-2:]))


def test_options_override_the_preset(content, style) -> None:
    result = run(content, style, preset="novak", steps=2, chained=False, style_layers=["relu1_1", "relu2_1"])
    assert result.settings["chained"] is False
    assert result.settings["style_layers"] == ["relu1_1", "relu2_1"]
    assert result.settings["activation_shift"] == -1.0  # the rest of the preset stays


@pytest.mark.parametrize("normalize", [True, False])
def test_first_step_losses_match_the_formulas(content, normalize) -> None:
    style = resize(as_image(STYLE), tuple(content.shape[-2:]))  # same size: no Gram rescaling
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    result = run(content, style, preset="gatys", steps=1, normalize_losses=normalize, precision="fp32")
    vgg = VGGFeatures(["relu4_2"] + layers, weights="random")
    with torch.no_grad():
        feats_s = vgg(style)
        grams_x = nstlab.losses.style_grams(vgg(content), layers)
        grams_s = nstlab.losses.style_grams(feats_s, layers)
    expected = 0.0
    for layer in layers:
        m = feats_s[layer].shape[-2] * feats_s[layer].shape[-1]
        e = float(nstlab.losses.style_layer_loss(grams_x[layer], grams_s[layer], m))
        zero = float(nstlab.losses.style_layer_loss(torch.zeros_like(grams_s[layer]), grams_s[layer], m))
        expected += e / 5 / (zero if normalize else 1.0)  # uniform weights 1/5
    assert result.history["content"][0] == 0.0  # content initialisation
    assert result.history["style"][0] == pytest.approx(expected, rel=1e-4)
    assert result.history["tv"][0] == pytest.approx(float(nstlab.losses.tv_loss(content, "l1", reduction="mean")))
    total = result.settings["style_weight"] * expected + result.settings["tv_weight"] * result.history["tv"][0]
    assert result.history["total"][0] == pytest.approx(total, rel=1e-4)


def test_lpips_content_loss_is_the_perceptual_distance_to_the_content(content, style) -> None:
    """Yuan & Huang's option: the content term is losses.perceptual_distance over LPIPS_LAYERS (unit weights),
    the style term stays Gatys'; the LPIPS layers replace content_layers."""
    opts = resolve_options(content_loss="lpips", content_layers=["relu4_2"])
    assert opts["content_layers"] == nstlab.losses.LPIPS_LAYERS and resolve_options()["content_loss"] == "l2"
    result = run(content, style, content_loss="lpips", steps=3, precision="fp32")
    assert result.settings["content_loss"] == "lpips" and result.history["content"][0] == 0.0  # content init
    vgg = VGGFeatures(nstlab.losses.LPIPS_LAYERS, weights="random")
    with torch.no_grad():
        expected = float(nstlab.losses.perceptual_distance(vgg(result.image), vgg(content)).sum())
    terms = objective(result.image, content, style, content_loss="lpips")
    assert expected > 0 and terms["content"] == pytest.approx(expected, rel=1e-4)
    plain = objective(result.image, content, style)
    assert terms["style"] == pytest.approx(plain["style"], rel=1e-5)  # the same style term
    assert terms["content"] != pytest.approx(plain["content"], rel=0.1)


# ----------------------------------------------------------------------------- optimisers, scales, seeds


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_lbfgs_and_adam_both_reduce_the_loss(content, style, optimizer) -> None:
    result = run(content, style, optimizer=optimizer, steps=5)
    assert result.settings["optimizer"] == optimizer
    assert result.history["total"][-1] < result.history["total"][0]
    assert len(result.step_times) == 5 and all(t > 0 for t in result.step_times)


def test_multiscale_returns_the_requested_size(content, style) -> None:
    result = run(CONTENT, STYLE, scales=2, steps=[3, 2])
    assert result.settings["scales"] == [0.5, 1.0]
    sizes = [tuple(hw) for hw in result.settings["sizes"]]
    assert [max(hw) for hw in sizes] == [32, 64]
    assert sizes[-1] == tuple(content.shape[-2:])
    assert result.history["scale"] == [0, 0, 0, 1, 1]
    assert result.best_step in (3, 4)  # the best image is tracked at the final scale
    assert_valid_image(result.image, sizes[-1])
    assert_valid_image(result.best_image, sizes[-1])


def test_scales_as_fractions_and_their_validation() -> None:
    assert scale_fractions(None) == [1.0] and scale_fractions(1) == [1.0]
    assert scale_fractions(3) == [0.25, 0.5, 1.0] and scale_fractions([0.5, 1.0]) == [0.5, 1.0]
    for bad in ([0.5], [1.0, 0.5], [0, 1.0], 0, "2"):
        with pytest.raises(ValueError, match="scales"):
            scale_fractions(bad)


def test_noise_init_with_a_seed_is_reproducible_bit_for_bit(content, style) -> None:
    a = run(content, style, init="noise", seed=3, steps=3)
    b = run(content, style, init="noise", seed=3, steps=3)
    c = run(content, style, init="noise", seed=4, steps=3)
    assert torch.equal(a.image, b.image) and torch.equal(a.best_image, b.best_image)
    assert a.history == b.history
    assert not torch.equal(a.image, c.image)


def test_init_tensor_and_style_init(content, style) -> None:
    grey = torch.full((1, 3, 20, 30), 0.5)
    seen: list[torch.Tensor] = []
    run(content, style, init=grey, steps=1, optimizer="adam", callback=lambda i: seen.append(i.image))
    assert seen[0].shape == (1, 3, *content.shape[-2:])
    assert float((seen[0] - 0.5).abs().max()) < 0.05  # one Adam step of lr 0.02 from grey
    result = run(content, style, init="style", steps=2)
    assert result.settings["init"] == "style"


# ----------------------------------------------------------------------------- stopping


def test_callback_every_k_steps_and_on_the_last(content, style) -> None:
    infos: list[StepInfo] = []
    run(content, style, steps=5, callback=infos.append, callback_every=2)
    assert [i.step for i in infos] == [1, 3, 4]
    assert all(i.total_steps == 5 and i.n_scales == 1 for i in infos)
    assert set(infos[0].losses) == {"total", "content", "style", "tv"}
    assert infos[0].image.shape == (1, 3, *content.shape[-2:])


def test_callback_returning_false_stops_with_the_best_image(content, style) -> None:
    images: list[torch.Tensor] = []

    def callback(info: StepInfo) -> bool:
        images.append(info.image)
        return info.step < 3

    result = run(content, style, steps=20, callback=callback, callback_every=1)
    assert result.interrupted is True and result.stopped_reason == "stopped by callback"
    assert len(result.history["total"]) == 4
    # Step k evaluates the image that step k - 1 produced (and showed to the callback).
    assert result.best_step >= 1
    assert torch.equal(result.best_image, images[result.best_step - 1])
    assert torch.equal(result.image, images[-1])


def test_keyboard_interrupt_returns_the_best_image_so_far(content, style) -> None:
    def callback(info: StepInfo) -> None:
        if info.step == 2:
            raise KeyboardInterrupt

    result = run(content, style, steps=20, callback=callback, callback_every=1)
    assert result.interrupted is True and "KeyboardInterrupt" in result.stopped_reason
    assert len(result.history["total"]) == 3
    assert result.best_loss == min(result.history["total"])
    assert_valid_image(result.best_image, tuple(content.shape[-2:]))


def test_absurd_learning_rate_is_caught_as_non_finite(content, style) -> None:
    # lr = 1e38 makes Adam's step lr / (1 - beta1) overflow float32 (inf * 0 = NaN in the update).
    result = run(content, style, optimizer="adam", lr=1e38, steps=10)
    assert result.interrupted is False
    assert "non-finite" in result.stopped_reason and "lr=" in result.stopped_reason
    assert len(result.history["total"]) < 10
    assert_valid_image(result.image, tuple(content.shape[-2:]))
    assert_valid_image(result.best_image, tuple(content.shape[-2:]))
    json.loads(result.to_json())  # strict JSON: no NaN anywhere


def test_lbfgs_with_an_absurd_step_is_caught_too(content, style) -> None:
    result = run(content, style, optimizer="lbfgs", lr=1e30, steps=10)
    assert "non-finite" in result.stopped_reason
    assert_valid_image(result.image, tuple(content.shape[-2:]))


# ----------------------------------------------------------------------------- targets computed once


def test_style_grams_and_vgg_passes_are_counted(monkeypatch, content, style) -> None:
    gram_calls: list[int] = []
    forwards: list[tuple[int, ...]] = []
    real_grams, real_forward = nstlab._kernels.style_grams, VGGFeatures.forward

    def counting_grams(*args, **kwargs):
        if not torch.is_grad_enabled():  # the style targets, not the Grams of the image being optimised
            gram_calls.append(1)
        return real_grams(*args, **kwargs)

    def counting_forward(self, images):
        forwards.append(tuple(images.shape))
        return real_forward(self, images)

    monkeypatch.setattr(nstlab._kernels, "style_grams", counting_grams)
    monkeypatch.setattr(VGGFeatures, "forward", counting_forward)
    run(CONTENT, [STYLE, STYLE2], scales=[0.5, 1.0], steps=3)
    assert len(gram_calls) == 2 * 2  # once per style per scale, never per step
    assert len(forwards) == 2 * (1 + 2 + 3)  # per scale: content, 2 styles, 1 per L-BFGS step


def test_texture_synthesis_without_content(style) -> None:
    tall = torch.rand(1, 3, 40, 20, generator=torch.Generator().manual_seed(1))
    result = stylize(None, tall, style_layers=["relu1_1", "relu2_1"], init="noise", size=32, steps=3, progress=False)
    assert result.image.shape == (1, 3, 32, 16)  # the style image's aspect
    assert result.history["content"] == [0.0, 0.0, 0.0]
    assert result.history["style"][-1] < result.history["style"][0]
    assert result.settings["content"] is None and result.settings["content_layers"] == []
    with pytest.raises(ValueError, match="init='noise'"):
        stylize(None, style, size=SIZE, steps=1, progress=False)  # init "content" needs a content image


def test_content_reconstruction_without_style(content) -> None:
    result = stylize(content, None, content_layers=["relu2_2"], init="noise", size=SIZE, steps=3, progress=False)
    assert result.image.shape == (1, 3, *content.shape[-2:])
    assert result.history["style"] == [0.0, 0.0, 0.0]
    assert result.history["content"][-1] < result.history["content"][0]
    assert result.settings["style"] is None and result.settings["style_layers"] == []
    with pytest.raises(ValueError, match="both None"):
        stylize(None, None, progress=False)


# ----------------------------------------------------------------------------- styles and colour


def test_style_blend_weights_are_normalised_and_used(content, style) -> None:
    single = run(content, style, steps=2)
    blended = run(content, [style, STYLE2], style_weights=[2, 0], steps=2)
    assert blended.settings["style_weights"] == [1.0, 0.0]
    assert torch.equal(single.image, blended.image)  # weight 0 removes the second style exactly
    mixed = run(content, [style, STYLE2], style_weights=[3, 1], steps=2)
    assert mixed.settings["style_weights"] == [0.75, 0.25]
    assert not torch.equal(single.image, mixed.image)


def test_style_scale_sets_the_style_size(content) -> None:
    result = run(content, STYLE, style_scale=0.5, steps=1)
    assert max(result.settings["style_sizes"][0][0]) == SIZE // 2


def test_preserve_color_luminance_keeps_the_content_chrominance(content, style) -> None:
    kept = run(content, style, preserve_color="luminance", steps=4)
    plain = run(content, style, steps=4)
    target_iq = rgb_to_yiq(resize(content, tuple(kept.image.shape[-2:])))[:, 1:]
    kept_err = (rgb_to_yiq(kept.image)[:, 1:] - target_iq).abs().mean()
    plain_err = (rgb_to_yiq(plain.image)[:, 1:] - target_iq).abs().mean()
    assert kept_err < 0.01 < plain_err
    best_err = (rgb_to_yiq(kept.best_image)[:, 1:] - target_iq).abs().mean()
    assert best_err < 0.01


def test_preserve_color_histogram_recolours_the_style(monkeypatch, content, style) -> None:
    calls = []
    real = nstlab.color.match_color_histogram

    def spy(source, target, *args, **kwargs):
        calls.append((source.shape, target.shape))
        return real(source, target, *args, **kwargs)

    monkeypatch.setattr(nstlab.color, "match_color_histogram", spy)
    result = run(content, style, preserve_color="histogram", steps=4)
    assert calls == [(style.shape, content.shape)]
    assert result.history["total"][-1] < result.history["total"][0]
    assert_valid_image(result.image, tuple(content.shape[-2:]))


# ----------------------------------------------------------------------------- validation and defaults


def test_unknown_option_is_a_type_error_listing_valid_ones(content, style) -> None:
    with pytest.raises(TypeError, match="stlye_weight.*valid options:.*style_weight"):
        stylize(content, style, stlye_weight=1.0)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"preset": "picasso"}, "preset must be one of"),
        ({"optimizer": "sgd"}, r"optimizer must be one of \('lbfgs', 'adam'\)"),
        ({"preserve_color": "yes"}, "preserve_color must be one of"),
        ({"content_loss": "l1"}, r"content_loss must be one of \('l2', 'lpips'\)"),
        ({"init": "zeros"}, "init must be one of"),
        ({"steps": 0}, "steps must be an int >= 1"),
        ({"steps": [3, 3]}, "steps has 2 entries but there are 1 scales"),
        ({"style_weight": -1.0}, "style_weight must be >= 0"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"content_layers": ["conv9_9"]}, "content_layers has unknown layer"),
        ({"style_layers": ["relu1_1"], "chained": True}, "needs at least 2 layers"),
        ({"adam_betas": (0.9, 1.5)}, "adam_betas must be two numbers"),
        ({"style_weights": [1.0, 2.0]}, "style_weights must be 1 non-negative numbers"),
        ({"size": 64, "scales": 4}, "too small for layer relu5_1"),
    ],
)
def test_bad_option_values_name_the_option(content, style, options, match) -> None:
    with pytest.raises(ValueError, match=match):
        stylize(content, style, progress=False, **options)


def test_smoke_switch_shrinks_only_size_and_steps(monkeypatch) -> None:
    monkeypatch.setenv("NSTLAB_SMOKE", "1")
    assert (resolve_options()["size"], resolve_options()["steps"]) == (64, [10])
    monkeypatch.setenv("NSTLAB_SMOKE", "0")
    assert (resolve_options()["size"], resolve_options()["steps"]) == (256, [300])
    assert resolve_options("ssim")["steps"] == [1000]
    assert resolve_options(steps=5)["steps"] == [5]


def test_lr_follows_the_optimizer_in_use() -> None:
    assert resolve_options("ssim", optimizer="lbfgs")["lr"] == 1.0
    assert resolve_options("gatys", optimizer="adam")["lr"] == 0.02
    assert resolve_options("gatys", optimizer="adam", lr=0.1)["lr"] == 0.1


# ----------------------------------------------------------------------------- memory


def test_estimate_memory_grows_with_size_and_depth() -> None:
    small, large = estimate_memory((64, 64), "relu5_1"), estimate_memory((128, 128), "relu5_1")
    assert 3.5 < large / small <= 4.0
    assert estimate_memory((64, 64), "relu1_1") < estimate_memory((64, 64), "relu3_1") < small
    # relu1_1 at 100x100: image 3 + conv1_1 64 + relu1_1 64 channels, float32, times the factor.
    assert estimate_memory((100, 100), "relu1_1") == int(MEMORY_FACTOR * 4 * (3 + 64 + 64) * 100 * 100)


def test_too_large_a_size_is_refused_before_running(monkeypatch, content, style) -> None:
    monkeypatch.setattr(nstlab.optimize, "available_memory", lambda device: 10 * 2**20)
    with pytest.raises(InsufficientMemoryError, match=r"smaller size \(about \d+ px would fit\)") as err:
        stylize(content, style, size=512, steps=1, progress=False)
    assert isinstance(err.value, MemoryError)
    result = stylize(content, style, size=SIZE, steps=1, progress=False)  # 64 px fits in 10 MiB
    assert result.history["total"]


# ----------------------------------------------------------------------------- result


def test_result_json_has_settings_history_and_timings(content, style) -> None:
    result = run(content, style, steps=3)
    data = json.loads(result.to_json())
    assert len(data["history"]["total"]) == 3 and len(data["step_times"]) == 3
    assert data["weights_name"] == "random" and data["settings"]["weights_name"] == "random"
    assert data["settings"]["sizes"] == [list(content.shape[-2:])]
    assert data["settings"]["content"].startswith("tensor")
    assert "random VGG19" in result.summary()
