"""nstlab.experiments.nb11_fast_style_transfer (notebook 11): a trained network on held-out photos with its
training curves, and its speed against an optimisation."""

from __future__ import annotations

import pytest
import torch

from nstlab import experiments, fast
from tiny_fast import STYLE, TINY

pytestmark = pytest.mark.usefixtures("one_thread")


def test_visualize_training_draws_the_held_out_photos_the_style_and_the_losses():
    fig = experiments.visualize_training(STYLE, steps=2, test_images=("chelsea_cat",), test_size=40, **TINY)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["chelsea_cat (held out)", f"style: {STYLE}", "training (2 steps)"]
    assert fig.axes[0].get_images()[0].get_array().shape == (27, 40, 3)
    assert "RANDOM" in fig.get_supxlabel()


def test_compare_speed_times_both_on_the_same_image():
    net = fast.TransformerNet(channels=4, n_residual=1)
    comparison = experiments.compare_speed(
        net, "coffee", STYLE, size=32, steps=2, device="cpu", weights="random", repeats=2
    )
    assert comparison.steps == 2 and comparison.size_hw == (21, 32)
    assert comparison.optimized_image.shape == comparison.fast_image.shape == (1, 3, 21, 32)
    assert comparison.optimization_seconds > 0 and comparison.forward_seconds > 0
    assert comparison.speedup == pytest.approx(comparison.optimization_seconds / comparison.forward_seconds)
    assert comparison.weights_name == "random"
    table = comparison.table()
    assert "optimisation (2 steps)" in table and "21x32 px on cpu" in table


def test_plot_training_draws_the_outputs_it_is_given_and_the_style_at_their_size():
    result = fast.train_fast(STYLE, steps=1, **TINY)
    outputs = experiments.stylize_test_images(result.model, ("coffee", "chelsea_cat"), size=36)
    assert list(outputs) == ["coffee", "chelsea_cat (held out)"]
    assert torch.equal(outputs["coffee"], fast.stylize_fast(result.model, "coffee", 36))
    fig = experiments.plot_training(result, {"any title": outputs["coffee"]})
    assert [ax.get_title() for ax in fig.axes] == ["any title", f"style: {STYLE}", "training (1 steps)"]
    assert max(fig.axes[1].get_images()[0].get_array().shape[:2]) == 36  # the style as large as the outputs


def test_one_training_step_written_out_follows_train_fast():
    """Notebook 11's own step (the reference solution) reproduces train_fast's steps: the same network, batches,
    optimiser and loss in float32 give the same losses: the same operations in the same order, so bit for bit on a
    CPU (measured 0 on a Xeon with AMX, with oneDNN capped to AVX512_CORE_BF16 and to AVX2); the test allows 1e-6."""
    layers = {k: TINY[k] for k in ("content_layers", "style_layers")}
    network = {k: TINY[k] for k in ("channels", "n_residual")}
    mine = experiments.own_training_run(experiments.training_step, STYLE, steps=3, size=TINY["size"],
                                        batch_size=TINY["batch_size"], weights="random", **network, **layers)
    reference = fast.train_fast(STYLE, steps=3, precision="fp32", **TINY)
    assert mine == pytest.approx(reference.history["total"], rel=1e-6)
    assert mine[-1] < mine[0]


def test_survey_methods_put_every_method_side_by_side():
    net = fast.TransformerNet(channels=4, n_residual=1)
    methods = experiments.survey_methods(net, "coffee", STYLE, size=32, steps=1, weights="random")
    assert list(methods) == [*experiments.SURVEY_FIG10_VARIANTS, "feed-forward network"]
    assert methods["colour preserved (luminance)"].settings["preserve_color"] == "luminance"
    assert methods["feed-forward network"].shape == methods["Gatys et al."].image.shape
    fig = experiments.plot_survey_methods("coffee", STYLE, methods)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["content", "style", *methods]
    assert "RANDOM" in fig.texts[-1].get_text() or "RANDOM" in fig.get_supxlabel()
