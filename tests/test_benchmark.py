"""The benchmark's code paths at a tiny size (seconds), and the engine's network and loss layouts it measures.

benchmarks/bench.py itself is run by hand (benchmarks/README.md); this keeps it from rotting. The kernels'
equality with the textbook formulas is in tests/test_kernels.py.
"""

from __future__ import annotations

import importlib.util
import json
import math
import platform
import statistics
import sys
from pathlib import Path

import pytest
import torch

from nstlab import optimize
from nstlab.vgg import VGGFeatures

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("nstlab_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["nstlab_bench"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _random_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSTLAB_WEIGHTS", "random")
    monkeypatch.setenv("NSTLAB_DEVICE", "cpu")


# ----------------------------------------------------------------------------- the benchmark


@pytest.mark.slow
def test_tiny_benchmark_run_measures_every_row(bench, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "peer_version", lambda: None)  # neural-style-pt: its own test below
    config = bench.parse_args([
        "--size", "64", "--repeats", "1", "--steps", "4", "--preset-steps", "2", "--ttq-scales", "0.5", "1",
        "--ttq-coarse-steps", "2", "--ttq-max-steps", "6", "--big-size", "96", "--big-steps", "2",
        "--precisions", "fp32", "bf16", "--peer-steps", "3", "--quality-steps", "2", "--presets", "gatys", "ssim",
        "--out", str(tmp_path / "r.json"),
    ])
    results = bench.run(config, log=lambda _: None)
    kinds = [(r["preset"], r["kind"], r["size"], r["precision"]) for r in results["rows"]]
    for preset in ("gatys", "ssim"):
        for kind in ("floor", "evaluation", "step"):
            assert (preset, kind, 64, "fp32") in kinds and (preset, kind, 64, "bf16") in kinds
    assert ("gatys", "baseline", 64, "fp32") in kinds and ("gatys", "step", 96, "bf16") in kinds
    assert ("gatys", "lbfgs_update", 64, "fp32") in kinds and ("gatys", "lbfgs_update", 96, "fp32") in kinds
    assert ("gatys", "gram_products", 64, "fp32") in kinds and ("gatys", "gram_products", 96, "fp32") in kinds
    for r in results["rows"]:
        # Every row is divided by the fp32 floor passes paired with it, or by its preset's fp32 floor row.
        floor = statistics.median(r["floor_times"]) if "floor_times" in r else _floor(results, r)
        assert r["seconds"] > 0 and r["vs_floor"] == pytest.approx(r["seconds"] / floor)
        if r["kind"] in ("gram_products", "floor") and r["precision"] == "bf16":  # --repeats 1: pass, floor pass
            assert len(r["times"]) == len(r["floor_times"]) == 1
        if r["kind"] == "floor" and r["precision"] == "fp32":  # after each timed step; and passes in a row
            step = next(s for s in results["rows"] if s["kind"] == "step" and (s["preset"], s["size"]) == (
                r["preset"], r["size"]) and s["precision"] == "fp32")
            assert len(r["times"]) == len(step["times"]) and len(r["alone"]) == 1
    steps = [r for r in results["rows"] if r["kind"] == "step" and r["size"] == 64 and r["preset"] == "gatys"]
    baseline = next(r for r in results["rows"] if r["kind"] == "baseline")
    assert [r["precision"] for r in steps] == ["fp32", "bf16"]
    for step in steps:
        assert step["baseline_vs_nstlab"] == pytest.approx(baseline["seconds"] / step["seconds"])
    assert len(baseline["times"]) == 3  # 4 steps, the first left out
    q = results["quality"]
    # The yardstick (the baseline's loss) and nstlab's gatys objective in fp32 are the same function.
    assert q["baseline_loss_at_content"] == pytest.approx(q["nstlab_loss_at_content"], rel=1e-5)
    assert q["baseline_loss"] < q["baseline_loss_at_content"]
    assert list(q["nstlab"]) == ["fp32", "bf16"]
    for n in q["nstlab"].values():
        assert n["steps"][0] == 2 and 1 <= n["steps"][1] <= 6
        assert n["reached"] == (n["yardstick"] <= q["baseline_loss"])
        assert n["ratio"] == (n["seconds"] / q["baseline_seconds"] if n["reached"] else math.inf)
        assert 0 < n["median_seconds"] <= n["seconds"] * 1.5
    assert q["baseline_median_seconds"] == pytest.approx(4 * baseline["seconds"])
    peers = results["peers"]
    assert set(peers) == {"iterations", "nstlab", "naive baseline"} and set(peers["nstlab"]) == {"fp32", "bf16"}
    naive = peers["naive baseline"]
    assert naive["peer_vs_nstlab"]["bf16"] == pytest.approx(naive["seconds"] / peers["nstlab"]["bf16"])
    quality = results["precision_quality"]
    assert [(r["preset"], r["run"]) for r in quality] == [
        (p, run) for p in ("gatys", "ssim") for run in ("fp32", "bf16", "fp32 dithered")]
    for r in quality:
        if r["run"] == "fp32":
            assert r["vs_fp32"] == 0 and r["pixel_difference"] == 0 and r["ssim"] == pytest.approx(1.0)
        else:
            assert r["pixel_difference"] > 0 and r["ssim"] < 1
    text = bench.table(results)
    assert "| configuration | size | s / step | / floor |" in text and "Time to quality" in text
    assert "| nstlab, bf16 |" in text and "Quality in reduced precision" in text
    json.loads(json.dumps(results))


def test_quality_only_runs_just_the_quality_rows(bench, tmp_path) -> None:
    config = bench.parse_args(["--size", "48", "--quality-only", "--quality-steps", "2", "--presets", "gatys",
                               "--precisions", "fp32", "bf16"])
    results = bench.run(config, log=lambda _: None)
    assert results["rows"] == [] and [r["run"] for r in results["precision_quality"]] == [
        "fp32", "bf16", "fp32 dithered"]
    text = bench.table(results)
    assert "Quality in reduced precision" in text and "Time to quality" not in text
    with pytest.raises(SystemExit):
        bench.parse_args(["--quality-only"])


def _floor(results: dict, row: dict) -> float:
    return next(r["seconds"] for r in results["rows"] if r["kind"] == "floor" and r["precision"] == "fp32"
                and (r["preset"], r["size"]) == (row["preset"], row["size"]))


def test_neural_style_pt_runs_on_the_same_network_through_its_command_line(bench) -> None:
    pytest.importorskip("neural_style", reason="neural-style-pt is the optional 'bench' extra")
    content, style = bench.load_pair("tower_bridge", "van_gogh_cafe_terrace_at_night", 64)
    times = bench.run_peer(content, style, 4, torch.device("cpu"))
    assert len(times) == 3 and all(t > 0 for t in times)  # 4 evaluations: 3 intervals


def test_naive_baseline_stops_after_exactly_the_requested_evaluations(bench) -> None:
    content, style = bench.load_pair("tower_bridge", "van_gogh_cafe_terrace_at_night", 64)  # pool5: 1x2
    run = bench.run_naive(content, style, 23, torch.device("cpu"))  # 20 + 3: two LBFGS.step calls
    assert len(run["step_times"]) == 23
    assert run["model"].yardstick(run["image"]) < run["model"].yardstick(content)
    assert len(run["model"].style_losses) == 5 and len(run["model"].content_losses) == 1
    assert len(run["model"].model) == 1 + 37 + 6  # Normalization, the whole features stack, the losses


def test_lbfgs_update_is_timed_with_a_full_history(bench, monkeypatch) -> None:
    monkeypatch.setattr(optimize, "LBFGS_HISTORY", 7)
    times = bench.lbfgs_update_times((1, 3, 16, 16), torch.device("cpu"), repeats=3)  # raises unless 7 pairs
    assert len(times) == 3 and all(t > 0 for t in times)


def test_closure_timer_times_each_closure_and_restores_the_engine(bench) -> None:
    original = optimize._make_optimizer
    result, evals, wall = bench.nstlab_run(*bench.load_pair("tower_bridge", "van_gogh_harvest", 48), "gatys",
                                           torch.device("cpu"), 3, "fp32")
    assert optimize._make_optimizer is original
    assert len(evals) == 3 and all(0 < e <= s for e, s in zip(evals, result.step_times))
    assert wall >= sum(result.step_times)


def test_parse_args_rejects_mismatched_scales(bench) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--ttq-scales", "0.25", "0.5", "1", "--ttq-coarse-steps", "10"])


def test_parse_args_rejects_a_device_this_machine_lacks(bench, monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        bench.parse_args(["--device", "cuda"])
    assert "CUDA is not available here" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the engine's network


def test_channels_last_vgg_gives_the_same_features() -> None:
    layers = ["relu1_1", "relu3_1", "relu5_1"]
    x = torch.rand(1, 3, 64, 48, generator=torch.Generator().manual_seed(2))
    plain = VGGFeatures(layers, weights="random")
    fast = VGGFeatures(layers, weights="random", memory_format=torch.channels_last)
    with torch.no_grad():
        a, b = plain(x), fast(x)
    for layer in layers:
        assert b[layer].is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(b[layer], a[layer], rtol=1e-4, atol=1e-4)
    # The shared cached network is left in the default layout.
    assert next(VGGFeatures(["relu1_1"], weights="random").parameters()).is_contiguous()
    with pytest.raises(ValueError, match="memory_format"):
        VGGFeatures(layers, weights="random", memory_format=torch.preserve_format)


def test_engine_network_stops_at_the_deepest_layer_channels_last_on_x86_cpu() -> None:
    vgg = optimize.feature_extractor(["relu1_1", "relu2_1"], "random", "max", "cpu")
    x86_64 = platform.machine().lower() in ("x86_64", "amd64")
    assert vgg.memory_format == (torch.channels_last if x86_64 else torch.contiguous_format)
    assert len(vgg.body) == 7


@pytest.mark.parametrize("preset", list(optimize.PRESETS))
def test_every_loss_hands_the_network_gradients_in_its_own_layout(preset) -> None:
    # A feature gradient in another layout than the network's makes the backward pass convert it
    # (e.g. a mean over dims gives a contiguous gradient to a channels_last network).
    opts = optimize.resolve_options(preset=preset, weights="random", size=64)
    layers = list(dict.fromkeys(opts["content_layers"] + opts["style_layers"]))
    vgg = VGGFeatures(layers, weights="random", memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(3)
    content, style = torch.rand(1, 3, 48, 64, generator=g), torch.rand(1, 3, 48, 64, generator=g)
    targets = optimize._targets(vgg, content, [style], [1.0], opts)
    layouts: dict[str, bool] = {}

    def watch(module, inputs, feats) -> None:
        for name, feat in feats.items():
            feat.register_hook(lambda grad, name=name: layouts.update(
                {name: grad.is_contiguous(memory_format=torch.channels_last)}))

    vgg.register_forward_hook(watch)
    x = content.clone().requires_grad_(True)
    optimize._loss_terms(x, vgg, targets, opts)["total"].backward()
    assert set(layouts) == set(layers) and all(layouts.values()), layouts
