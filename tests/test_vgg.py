"""nstlab.vgg: layer names, truncation, pooling, every weights source, the normalized VGG."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torchvision

from nstlab import vgg, weights
from nstlab.settings import default_device
from nstlab.vgg import (
    CONV_LAYERS,
    VGG19_LAYERS,
    RandomWeightsWarning,
    VGGFeatures,
    WeightsUnavailableError,
    normalization_scales,
    normalize_features,
)


pytestmark = pytest.mark.usefixtures("private_torch_hub")  # empty model caches, own torch hub dir and scale cache


def _offline(monkeypatch):
    """Make any download attempt fail at once, as it does without a network."""

    def refuse(*args, **kwargs):
        raise WeightsUnavailableError("downloading failed: URLError: <urlopen error network is unreachable>")

    monkeypatch.setattr(vgg, "download", refuse)


def _save_as_imagenet(state: dict, monkeypatch) -> Path:
    """Put ``state`` in the torch hub cache as the ImageNet file, named after its SHA-256 as torchvision
    names its files (the download address points at that name; nothing is downloaded)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    monkeypatch.setenv(weights.URL_VARIABLE, f"http://127.0.0.1:9/vgg19-{hashlib.sha256(data).hexdigest()[:8]}.pth")
    path = vgg.imagenet_checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _other_weights(seed: int = 123) -> dict[str, torch.Tensor]:
    """A full torchvision-format VGG19 state dict, different from the 'random' weights."""
    torch.manual_seed(seed)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full file also holds the classifier
    return state


def test_layer_names_follow_torchvision_indices():
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])
    assert len(VGG19_LAYERS) == len(features) == 37
    assert VGG19_LAYERS[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert VGG19_LAYERS[-3:] == ["conv5_4", "relu5_4", "pool5"]
    for name, module in zip(VGG19_LAYERS, features):
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name[:4]]
        assert isinstance(module, kind), name
    assert len(CONV_LAYERS) == 16 and CONV_LAYERS[9] == "conv4_2"


def test_requested_layers_shapes_and_order():
    model = VGGFeatures(["relu1_1", "relu3_1", "conv4_2"], weights="random")
    out = model(torch.rand(2, 3, 64, 48))
    assert list(out) == ["relu1_1", "relu3_1", "conv4_2"]
    assert out["relu1_1"].shape == (2, 64, 64, 48)
    assert out["relu3_1"].shape == (2, 256, 16, 12)
    assert out["conv4_2"].shape == (2, 512, 8, 6)
    assert float(out["relu3_1"].min()) >= 0 and float(out["conv4_2"].min()) < 0  # conv is pre-ReLU


def test_network_is_truncated_at_the_deepest_layer():
    model = VGGFeatures(["relu2_1", "conv1_2"], weights="random")
    assert len(model.body) == VGG19_LAYERS.index("relu2_1") + 1
    full, _ = vgg.vgg19_features("random")
    calls = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: calls.append(n)) for n, m in zip(VGG19_LAYERS, full)]
    try:
        model(torch.rand(1, 3, 32, 32))
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == VGG19_LAYERS[: VGG19_LAYERS.index("relu2_1") + 1]


def test_frozen_but_differentiable_in_the_image():
    model = VGGFeatures(["relu2_2"], weights="random")
    assert all(not p.requires_grad for p in model.parameters())
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    model(x)["relu2_2"].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_conv_outputs_are_not_overwritten_by_relu():
    model = VGGFeatures(["conv1_1", "relu1_1"], weights="random")
    out = model(torch.rand(1, 3, 32, 32))
    assert float(out["conv1_1"].min()) < 0
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp_min(0))


def test_input_normalisation_is_imagenet_mean_std():
    model = VGGFeatures(["conv1_1"], weights="random")
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = model.body[0]((x - mean) / std)
    assert torch.allclose(model(x)["conv1_1"], expected, atol=1e-6)


def test_unknown_layer_and_bad_input():
    with pytest.raises(ValueError, match="unknown VGG19 layer.*conv6_1.*valid names: conv1_1"):
        VGGFeatures(["conv6_1"], weights="random")
    with pytest.raises(ValueError, match=r"\(1, 4, 32, 32\)"):
        VGGFeatures(["conv1_1"], weights="random")(torch.rand(1, 4, 32, 32))
    with pytest.raises(ValueError, match="pooling"):
        VGGFeatures(["conv1_1"], weights="random", pooling="min")


def test_avg_pooling_swaps_every_pool():
    avg = VGGFeatures(["relu3_1"], weights="random", pooling="avg")
    mx = VGGFeatures(["relu3_1"], weights="random", pooling="max")
    assert sum(isinstance(m, nn.AvgPool2d) for m in avg.body) == 2
    assert not any(isinstance(m, nn.MaxPool2d) for m in avg.body)
    x = torch.rand(1, 3, 32, 32)
    assert avg(x)["relu3_1"].shape == mx(x)["relu3_1"].shape
    assert not torch.allclose(avg(x)["relu3_1"], mx(x)["relu3_1"])


def test_random_weights_are_seeded_and_reproducible():
    a, _ = vgg._build("random", "max")
    b, _ = vgg._build("random", "max")
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert VGGFeatures(["conv1_1"], weights="random").weights_name == "random"
    assert "RANDOM" in VGGFeatures(["conv1_1"], weights="random").label


def test_imagenet_weights_come_from_the_torch_hub_cache(tmp_path, monkeypatch):
    _offline(monkeypatch)
    assert vgg.imagenet_checkpoint_path() == tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    state = _other_weights()
    _save_as_imagenet(state, monkeypatch)
    model = VGGFeatures(["conv1_1"], weights="imagenet")
    assert model.weights_name == "imagenet" and "ImageNet" in model.label
    assert torch.equal(model.body[0].weight, state["features.0.weight"])


def test_imagenet_download_path_is_the_real_torchvision_one(monkeypatch):
    """Without a cached file, the loader downloads torchvision's file into the hub cache, with a progress bar."""
    assert weights.imagenet_url() == torchvision.models.VGG19_Weights.IMAGENET1K_V1.url
    seen = {}

    def fake_download(*args, **kwargs):
        seen.update(kwargs, target=weights.download_target(*args))
        return _save_as_imagenet(_other_weights(), monkeypatch)

    monkeypatch.setattr(vgg, "download", fake_download)
    model = VGGFeatures(["conv1_1"], weights="imagenet")
    assert seen["target"].name == "vgg19-dcbb9e9d.pth" and seen["target"].parent.name == "checkpoints"
    assert seen.get("progress") is True
    assert model.weights_name == "imagenet"


def test_imagenet_offline_error_says_how_to_fix(monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(WeightsUnavailableError) as err:
        VGGFeatures(["conv1_1"], weights="imagenet")
    message = str(err.value)
    assert str(vgg.imagenet_checkpoint_path()) in message
    assert "vgg19-dcbb9e9d.pth" in message and "NSTLAB_WEIGHTS=random" in message


def test_auto_falls_back_to_random_with_a_visible_warning(monkeypatch):
    _offline(monkeypatch)
    with pytest.warns(RandomWeightsWarning, match="UNTRAINED"):
        model = VGGFeatures(["conv1_1"], weights="auto")
    assert model.weights_name == "random"


def test_auto_uses_imagenet_when_available(monkeypatch):
    _offline(monkeypatch)
    _save_as_imagenet(_other_weights(), monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        assert VGGFeatures(["conv1_1"], weights="auto").weights_name == "imagenet"


def test_a_corrupt_imagenet_file_is_never_loaded(monkeypatch):
    """A file whose SHA-256 does not match its name: "imagenet" fails with the fix, "auto" falls back."""
    _offline(monkeypatch)
    path = vgg.imagenet_checkpoint_path()  # vgg19-dcbb9e9d.pth holding other bytes
    path.parent.mkdir(parents=True)
    torch.save(_other_weights(), path)
    with pytest.raises(WeightsUnavailableError, match="(?s)corrupt.*Fix: nstlab weights download"):
        VGGFeatures(["conv1_1"], weights="imagenet")
    with pytest.warns(RandomWeightsWarning, match="(?s)UNTRAINED.*corrupt.*nstlab weights download"):
        model = VGGFeatures(["conv1_1"], weights="auto")
    assert model.weights_name == "random"


def test_a_file_put_in_place_later_is_used_without_a_restart(monkeypatch):
    """A class that downloads the file while a notebook runs gets ImageNet weights at the next cell."""
    _offline(monkeypatch)
    with pytest.warns(RandomWeightsWarning):
        assert VGGFeatures(["conv1_1"], weights="auto").weights_name == "random"
    _save_as_imagenet(_other_weights(), monkeypatch)
    assert VGGFeatures(["conv1_1"], weights="auto").weights_name == "imagenet"


def test_environment_variable_overrides_the_default(monkeypatch):
    _offline(monkeypatch)
    monkeypatch.setenv("NSTLAB_WEIGHTS", "random")
    assert VGGFeatures(["conv1_1"]).weights_name == "random"
    assert VGGFeatures(["conv1_1"], weights="auto").weights_name == "random"
    with pytest.raises(WeightsUnavailableError):  # an explicit choice is not overridden
        VGGFeatures(["conv1_1"], weights="imagenet")
    monkeypatch.delenv("NSTLAB_WEIGHTS")
    with pytest.raises(WeightsUnavailableError):  # the default without the variable is ImageNet
        VGGFeatures(["conv1_1"])


def test_state_dict_files_full_and_features_only(tmp_path):
    full = _other_weights()
    torch.save(full, tmp_path / "full.pth")
    torch.save({k: v for k, v in full.items() if k.startswith("features.")}, tmp_path / "features.pth")
    for name in ("full.pth", "features.pth"):
        model = VGGFeatures(["conv1_1"], weights=tmp_path / name)
        assert torch.equal(model.body[0].weight, full["features.0.weight"])
        assert model.weights_name == str(tmp_path / name)


def test_wrong_state_dict_names_missing_keys(tmp_path):
    state = _other_weights()
    del state["features.34.weight"], state["features.34.bias"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(WeightsUnavailableError, match=r"missing keys: features\.34\.weight, features\.34\.bias"):
        VGGFeatures(["conv1_1"], weights=tmp_path / "partial.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match=r"junk\.pth: cannot be read"):
        VGGFeatures(["conv1_1"], weights=tmp_path / "junk.pth")
    with pytest.raises(WeightsUnavailableError, match="neither"):
        VGGFeatures(["conv1_1"], weights=tmp_path / "missing.pth")


def _images() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(1, 3, 48, 48, generator=g), torch.rand(1, 3, 40, 56, generator=g)]


def test_normalized_vgg_has_unit_mean_channel_activations():
    features, _ = vgg.vgg19_features("random")
    scales = normalization_scales(features, _images())
    assert set(scales) == set(CONV_LAYERS) and scales["conv3_1"].shape == (256,)
    normalized = normalize_features(features, scales)
    after = normalization_scales(normalized, _images())
    divisors = vgg.normalization_divisors(scales)
    for name in CONV_LAYERS:
        kept = divisors[name] == scales[name]  # not floored: mean activation exactly 1
        assert int(kept.sum()) > 0.8 * len(kept)
        assert torch.allclose(after[name][kept], torch.ones(int(kept.sum())), rtol=1e-3), name
        # floored channels (rare or dead on these images) stay below 1: m / floor
        assert bool((after[name][~kept] < 1).all()), name


def test_normalization_divisors_floor_rare_channels_at_a_fraction_of_the_median():
    m = torch.tensor([0.0, 1e-9, 0.5, 1.0, 2.0])
    divisors = vgg.normalization_divisors({"conv1_1": m})["conv1_1"]
    floor = vgg.NORMALIZATION_FLOOR * 0.5  # 0.5: the (lower) median of the positive means
    assert torch.equal(divisors, torch.tensor([floor, floor, 0.5, 1.0, 2.0]))
    all_dead = vgg.normalization_divisors({"conv1_1": torch.zeros(3)})["conv1_1"]
    assert torch.equal(all_dead, torch.full((3,), vgg.NORMALIZATION_FLOOR))


def test_normalized_vgg_computes_the_same_up_to_per_channel_scale():
    features, _ = vgg.vgg19_features("random")
    scales = normalization_scales(features, _images())
    normalized = normalize_features(features, scales)
    divisors = vgg.normalization_divisors(scales)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a, b = x, x
        for name, m_orig, m_norm in zip(VGG19_LAYERS, features, normalized):
            a, b = m_orig(a), m_norm(b)
            if name.startswith("relu"):
                d = divisors["conv" + name[4:]].view(1, -1, 1, 1)
                assert torch.allclose(b * d, a, rtol=1e-4, atol=1e-5), name


def test_normalized_module_uses_the_bundled_images_and_caches_scales(tmp_path):
    model = VGGFeatures(["relu1_1", "relu5_1"], weights="random", normalized=True)
    cached = list((tmp_path / "cache").glob("vgg19_norm_scales_random_max_*px.pt"))
    assert cached, "scales were not cached on disk"
    scales = torch.load(cached[0], weights_only=True)
    images = vgg.default_normalization_images(vgg._normalization_image_size())
    out = normalization_scales(model.body, images)  # the truncated normalized body
    assert torch.allclose(out["conv1_1"][scales["conv1_1"] > 0].mean(), torch.tensor(1.0), rtol=1e-3)


def test_device_choice(monkeypatch):
    monkeypatch.setenv("NSTLAB_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    assert default_device("cpu") == torch.device("cpu")
    monkeypatch.delenv("NSTLAB_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert default_device().type == expected
    assert VGGFeatures(["conv1_1"], weights="random", device="cpu").device == torch.device("cpu")
