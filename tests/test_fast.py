"""Tests for nstlab.fast: the transformation network, the perceptual loss, training, checkpoints
and resuming, using a trained network, and the two CLI commands."""

from __future__ import annotations

import argparse
import shutil

import pytest
import torch

from nstlab import cli, fast, training_data
from nstlab.images import ImageError, load_image, resize, sample_image, save_image
from nstlab.losses import gram_matrix
from tiny_fast import STYLE, TINY

pytestmark = pytest.mark.usefixtures("one_thread")


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- network


@pytest.mark.parametrize("shape", [(2, 3, 66, 50), (1, 3, 9, 13), (1, 3, 32, 32)])
def test_network_keeps_the_shape_for_odd_sizes_and_outputs_in_unit_range(shape):
    net = fast.TransformerNet(channels=4, n_residual=1)
    with torch.no_grad():
        out = net(_rand(*shape))
    assert out.shape == shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("shape", [(1, 3, 7, 20), (1, 1, 32, 32), (3, 32, 32)])
def test_network_rejects_bad_input_naming_the_shape(shape):
    with pytest.raises(ValueError, match=str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")):
        fast.TransformerNet(channels=4, n_residual=1)(torch.zeros(shape))


def test_network_bad_arguments():
    with pytest.raises(ValueError, match="channels"):
        fast.TransformerNet(channels=0)
    with pytest.raises(ValueError, match="n_residual"):
        fast.TransformerNet(n_residual=2.5)


def test_parameter_count_is_johnsons_architecture():
    def conv(k, ci, co):  # weights + bias
        return k * k * ci * co + co

    def norm(c):  # affine instance norm: scale and shift
        return 2 * c

    c = 32
    expected = (
        conv(9, 3, c) + norm(c)
        + conv(3, c, 2 * c) + norm(2 * c)
        + conv(3, 2 * c, 4 * c) + norm(4 * c)
        + 5 * 2 * (conv(3, 4 * c, 4 * c) + norm(4 * c))
        + conv(3, 4 * c, 2 * c) + norm(2 * c)
        + conv(3, 2 * c, c) + norm(c)
        + conv(9, c, 3)
    )
    assert fast.count_parameters(fast.TransformerNet()) == expected


# ----------------------------------------------------------------------------- loss


def test_perceptual_loss_is_zero_for_the_content_in_its_own_style():
    image = sample_image("coffee", 32)
    loss = fast.PerceptualLoss(image, 32, ["relu2_2"], ["relu1_2", "relu2_2"], weights="random")
    terms = loss(image, image)
    assert float(terms["content"]) == 0.0
    assert float(terms["style"]) < 1e-10
    assert float(terms["tv"]) > 0
    expected = float(terms["tv"]) + fast.DEFAULT_STYLE_WEIGHT * float(terms["style"])
    assert float(terms["total"]) == pytest.approx(expected)


def test_perceptual_loss_is_a_batch_mean():
    style = sample_image(STYLE, 32)
    loss = fast.PerceptualLoss(style, 32, ["relu2_2"], ["relu1_2", "relu2_2"], weights="random")
    content, output = _rand(1, 3, 32, 32, seed=1), _rand(1, 3, 32, 32, seed=2)
    one = loss(output, content)
    two = loss(output.expand(2, -1, -1, -1), content.expand(2, -1, -1, -1))
    for name in one:
        assert float(two[name]) == pytest.approx(float(one[name]), rel=1e-5)
    with pytest.raises(ValueError, match=r"\(1, 3, 32, 32\).*\(1, 3, 32, 16\)"):
        loss(output, content[..., :16])


def test_perceptual_loss_terms_by_hand():
    """content = mean (F - P)^2 / mean P^2; style = sum_l w_l sum (G - rA)^2 / sum (rA)^2 with
    r = M_output / M_style (the style image is 48 px, the output 32 px); tv = mean |dx|, |dy|."""
    style = sample_image(STYLE)
    loss = fast.PerceptualLoss(style, 48, ["relu2_2"], ["relu1_2", "relu2_2"], weights="random")
    content, output = _rand(1, 3, 32, 32, seed=1), _rand(1, 3, 32, 32, seed=2)
    terms = loss(output, content)
    feats, targets, style_feats = loss.vgg(output), loss.vgg(content), loss.vgg(resize(style, 48))
    p, f = targets["relu2_2"], feats["relu2_2"]
    assert float(terms["content"]) == pytest.approx(float((f - p).pow(2).mean() / p.pow(2).mean()), rel=1e-4)
    expected_style = 0.0
    for layer in ("relu1_2", "relu2_2"):
        r = feats[layer][0, 0].numel() / style_feats[layer][0, 0].numel()
        a = r * gram_matrix(style_feats[layer])
        expected_style += 0.5 * float((gram_matrix(feats[layer]) - a).pow(2).sum() / a.pow(2).sum())
    assert float(terms["style"]) == pytest.approx(expected_style, rel=1e-4)
    dx, dy = output.diff(dim=-1).abs(), output.diff(dim=-2).abs()
    expected_tv = float((dx.sum() + dy.sum()) / (dx.numel() + dy.numel()))
    assert float(terms["tv"]) == pytest.approx(expected_tv, rel=1e-5)
    assert float(terms["total"]) == pytest.approx(
        float(terms["content"]) + fast.DEFAULT_STYLE_WEIGHT * float(terms["style"]) + float(terms["tv"]), rel=1e-5
    )


# ----------------------------------------------------------------------------- data


def test_augmented_crop_is_a_seeded_square_crop():
    image = sample_image("chelsea_cat", 80)
    a = training_data.augmented_crop(image, 24, torch.Generator().manual_seed(3))
    b = training_data.augmented_crop(image, 24, torch.Generator().manual_seed(3))
    assert a.shape == (1, 3, 24, 24) and torch.equal(a, b)
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    crops = [training_data.augmented_crop(image, 24, torch.Generator().manual_seed(s)) for s in range(6)]
    assert len({c.sum().item() for c in crops}) == 6
    # the whole square image at its own size: the crop is the image or its mirror
    square = sample_image("astronaut", 40)
    seen = set()
    for s in range(8):
        crop = training_data.augmented_crop(square, 40, torch.Generator().manual_seed(s), min_scale=1.0)
        assert torch.equal(crop, square) or torch.equal(crop, square.flip(-1))
        seen.add(torch.equal(crop, square))
    assert seen == {True, False}


def test_crop_sampler_batches_depend_only_on_seed_and_step():
    paths = training_data.content_paths()
    assert len(paths) == 8 and not any(p.stem in training_data.HELD_OUT for p in paths)
    a, b = training_data.CropSampler(paths, 24, 2, seed=5), training_data.CropSampler(paths, 24, 2, seed=5)
    assert torch.equal(a.batch(7), b.batch(7))
    assert not torch.equal(a.batch(7), training_data.CropSampler(paths, 24, 2, seed=6).batch(7))
    # an epoch (4 steps of 2 of the 8 images) visits every image exactly once
    assert sorted(i for step in range(4) for i in a.indices(step)) == list(range(8))
    assert a.batch(0).shape == (2, 3, 24, 24)


def test_content_paths_of_a_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    save_image(sample_image("coffee", 40), tmp_path / "a.png")
    save_image(sample_image("rocket", 40), tmp_path / "sub" / "b.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in training_data.content_paths(tmp_path)] == ["a.png", "b.jpg"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no training images"):
        training_data.content_paths(tmp_path / "empty")
    with pytest.raises(ValueError, match="not a folder"):
        training_data.content_paths(tmp_path / "a.png")


# ----------------------------------------------------------------------------- training


def test_training_reduces_the_perceptual_loss():
    result = fast.train_fast(STYLE, steps=30, seed=0, **TINY)
    total, content, style = (result.history[k] for k in ("total", "content", "style"))
    assert result.steps == 30 and len(total) == 30 and not result.interrupted
    assert sum(total[-5:]) < 0.7 * sum(total[:5])  # about 0.5 with seeds 0, 1, 2
    assert sum(style[-5:]) < 0.3 * sum(style[:5])  # about 0.1-0.15
    assert sum(content[-5:]) < sum(content[:5])  # about 0.8: redrawing the photo is learnt more slowly
    assert result.weights_name == "random" and result.model.meta["weights_name"] == "random"
    assert not result.model.training


def test_smoke_defaults_with_johnsons_layers(monkeypatch):
    monkeypatch.setenv("NSTLAB_SMOKE", "1")
    result = fast.train_fast(STYLE, channels=8, n_residual=1, progress=False, weights="random", device="cpu")
    assert result.steps == 4 and result.settings["size"] == 64 and result.settings["batch_size"] == 2
    assert result.settings["style_layers"] == fast.JOHNSON_STYLE_LAYERS
    assert all(len(v) == 4 for v in result.history.values())


def test_bad_training_arguments():
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        fast.train_fast(STYLE, steps=0, **TINY)
    with pytest.raises(ValueError, match="lr must be > 0"):
        fast.train_fast(STYLE, steps=1, lr=-1.0, **TINY)
    with pytest.raises(ValueError, match="style_weight"):
        fast.train_fast(STYLE, steps=1, style_weight=float("nan"), **TINY)
    with pytest.raises(ValueError, match=r"style must be one image \(1, 3, H, W\), got \(2, 3, "):
        fast.train_fast(torch.rand(2, 3, 40, 40), steps=1, **TINY)


def _stop_after(n: int, how: str):
    def callback(info: fast.FastStepInfo):
        if info.step == n:
            if how == "raise":
                raise KeyboardInterrupt
            return False
        return None

    return callback


@pytest.mark.parametrize("how", ["raise", "return False"])
def test_interrupted_training_resumes_exactly(tmp_path, how):
    ckpt = tmp_path / "model.pth"
    full = fast.train_fast(STYLE, steps=6, seed=1, **TINY)
    stop = _stop_after(4, how)
    cut = fast.train_fast(STYLE, steps=6, seed=1, checkpoint=ckpt, checkpoint_every=3, callback=stop, **TINY)
    assert cut.interrupted and cut.steps == 4 and "step 4" in cut.stopped_reason
    assert fast.read_checkpoint(ckpt)["step"] == 4  # saved on interruption, not only at step 3
    resumed = fast.train_fast(STYLE, steps=6, seed=1, checkpoint=ckpt, checkpoint_every=3, **TINY)
    assert resumed.resumed_from == 4 and resumed.steps == 6 and not resumed.interrupted
    assert resumed.history["total"][:4] == cut.history["total"]
    assert resumed.history == full.history
    for name, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    assert fast.read_checkpoint(ckpt)["step"] == 6


def test_a_killed_training_loses_only_the_steps_since_the_last_checkpoint(tmp_path):
    ckpt, snapshot = tmp_path / "model.pth", tmp_path / "killed.pth"

    def copy_at_step_5(info):  # the file as a hard kill during step 6 would leave it
        if info.step == 5:
            shutil.copy(ckpt, snapshot)

    full = fast.train_fast(STYLE, steps=6, seed=2, checkpoint=ckpt, checkpoint_every=3, callback=copy_at_step_5, **TINY)
    assert not list(tmp_path.glob("*.tmp"))
    assert fast.read_checkpoint(snapshot)["step"] == 3
    resumed = fast.train_fast(STYLE, steps=6, seed=2, checkpoint=snapshot, checkpoint_every=3, **TINY)
    assert resumed.resumed_from == 3 and resumed.history == full.history
    assert all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in full.model.state_dict().items())


def test_an_interrupt_inside_the_update_goes_back_to_the_checkpoint(tmp_path, monkeypatch):
    original, calls = torch.optim.Adam.step, []

    def step(self, *args, **kwargs):  # Ctrl-C in the middle of the 5th update
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    three = fast.train_fast(STYLE, steps=3, seed=3, **TINY)
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    cut = fast.train_fast(STYLE, steps=6, seed=3, checkpoint=tmp_path / "m.pth", checkpoint_every=3, **TINY)
    assert cut.interrupted and cut.steps == 3 and "checkpoint of step 3" in cut.stopped_reason
    assert cut.history == three.history and len(cut.step_times) == 3
    assert all(torch.equal(v, cut.model.state_dict()[k]) for k, v in three.model.state_dict().items())


def test_resume_refuses_other_settings_and_can_train_longer(tmp_path):
    ckpt = tmp_path / "model.pth"
    fast.train_fast(STYLE, steps=2, checkpoint=ckpt, **TINY)
    with pytest.raises(ValueError, match="style_weight: checkpoint 1.0, now 5.0"):
        fast.train_fast(STYLE, steps=3, checkpoint=ckpt, style_weight=5.0, **TINY)
    with pytest.raises(ValueError, match=f"style image: checkpoint '{STYLE}', now 'van_gogh_harvest'"):
        fast.train_fast("van_gogh_harvest", steps=3, checkpoint=ckpt, **TINY)
    done = fast.train_fast(STYLE, steps=2, checkpoint=ckpt, **TINY)
    assert done.resumed_from == 2 and done.steps == 2 and done.step_times == []
    longer = fast.train_fast(STYLE, steps=3, checkpoint=ckpt, **TINY)
    assert longer.resumed_from == 2 and longer.steps == 3 and len(longer.history["total"]) == 3
    fresh = fast.train_fast(STYLE, steps=1, checkpoint=ckpt, resume=False, style_weight=5.0, **TINY)
    assert fresh.resumed_from == 0 and fast.read_checkpoint(ckpt)["step"] == 1


# ----------------------------------------------------------------------------- model files


def test_model_round_trip_with_weights_only(tmp_path):
    net = fast.TransformerNet(channels=4, n_residual=2)
    net.meta = {"style": STYLE, "steps": 7, "weights_name": "random"}
    path = fast.save_model(net, tmp_path / "net.pth")
    record = torch.load(path, map_location="cpu", weights_only=True)
    assert record["architecture"] == {"channels": 4, "n_residual": 2}
    loaded = fast.load_model(path, device="cpu")
    assert loaded.meta == net.meta and not loaded.training
    x = _rand(1, 3, 20, 24)
    assert torch.equal(loaded(x), net(x))
    assert not list(tmp_path.glob("*.tmp"))


def test_a_training_checkpoint_is_a_model_file(tmp_path):
    result = fast.train_fast(STYLE, steps=2, checkpoint=tmp_path / "m.pth", **TINY)
    loaded = fast.load_model(tmp_path / "m.pth", device="cpu")
    assert loaded.meta["steps"] == 2 and loaded.meta["style"] == STYLE
    x = _rand(1, 3, 32, 32)
    assert torch.equal(loaded(x), result.model(x))


def test_load_model_explains_a_wrong_file(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth: not an nstlab fast-style model"):
        fast.load_model(junk)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match=r"other.pth: not an nstlab fast-style model .*conv.weight"):
        fast.load_model(other)
    pickled = tmp_path / "pickled.pth"
    torch.save(argparse.Namespace(a=1), pickled)  # weights_only=True refuses arbitrary objects
    with pytest.raises(ValueError, match="pickled.pth: not an nstlab fast-style model"):
        fast.load_model(pickled)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        fast.load_model(tmp_path / "missing.pth")


# ----------------------------------------------------------------------------- using a network


def test_stylize_fast_is_one_forward_pass_without_gradients():
    net = fast.TransformerNet(channels=4, n_residual=1).train()
    out = fast.stylize_fast(net, "chelsea_cat", size=48)
    assert out.shape == (1, 3, 32, 48) and out.device.type == "cpu" and not out.requires_grad
    assert net.training  # the model's mode is left as it was
    x = _rand(1, 3, 20, 30)
    exact = net.eval()(x).detach()
    assert torch.equal(fast.stylize_fast(net, x, precision="fp32"), exact)
    reduced = fast.stylize_fast(net, x, precision="bf16")  # autocast: bf16 layers, a float32 result
    assert reduced.dtype == torch.float32 and not torch.equal(reduced, exact)
    torch.testing.assert_close(reduced, exact, rtol=0, atol=0.02)


# ----------------------------------------------------------------------------- command line


def _run(argv: list[str]) -> int:
    args = cli.build_parser().parse_args(argv)
    return args.run(args)


def test_cli_train_fast_then_stylize_fast(tmp_path, capsys):
    photos = tmp_path / "photos"
    for name in ("coffee", "rocket"):
        save_image(sample_image(name, 48), photos / f"{name}.png")
    model = tmp_path / "model.pth"
    common = ["--size", "32", "--batch-size", "1", "--channels", "4", "--checkpoint-every", "2", "--weights", "random",
              "--device", "cpu", "--no-progress"]
    argv = ["train-fast", "--style", STYLE, "--content-dir", str(photos), "-o", str(model)]
    assert _run(argv + ["--steps", "3"] + common) == 0
    assert fast.read_checkpoint(model)["step"] == 3
    assert "3 steps" in capsys.readouterr().out
    assert _run(argv + ["--steps", "4"] + common) == 0  # the same command, longer: resumes
    assert "4 steps (resumed from 3)" in capsys.readouterr().out
    assert _run(argv + ["--steps", "4"] + common) == 0
    assert "already has 4 steps; nothing to do" in capsys.readouterr().out
    out = tmp_path / "out.png"
    assert _run(["stylize-fast", str(model), "chelsea_cat", "-o", str(out), "--size", "64", "--device", "cpu"]) == 0
    assert load_image(out).shape == (1, 3, 43, 64)
    assert f"wrote {out}" in capsys.readouterr().out
    with pytest.raises(ImageError, match="unknown image suffix"):
        _run(["stylize-fast", str(model), "chelsea_cat", "-o", str(tmp_path / "out.txt")])


def test_cli_train_fast_interrupted_exits_130(tmp_path, monkeypatch, capsys):
    model = tmp_path / "model.pth"
    real = fast.train_fast

    def interrupted(*args, **kwargs):
        return real(*args, **kwargs, callback=_stop_after(1, "raise"))

    monkeypatch.setattr(fast, "train_fast", interrupted)
    argv = ["train-fast", "--style", STYLE, "-o", str(model), "--steps", "3", "--size", "32", "--batch-size", "1",
            "--channels", "4", "--weights", "random", "--device", "cpu", "--no-progress"]
    assert _run(argv) == 130
    assert "run the same command to resume" in capsys.readouterr().out
    assert fast.read_checkpoint(model)["step"] == 1
