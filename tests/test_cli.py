"""The nstlab command line: files written, one-line errors, exit codes, ``python -m nstlab``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from nstlab.cli import main
from nstlab.images import list_images

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _random_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSTLAB_WEIGHTS", "random")
    monkeypatch.setenv("NSTLAB_DEVICE", "cpu")


def one_error_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_stylize_writes_the_image_and_the_json(tmp_path, capsys) -> None:
    out = tmp_path / "sub" / "out.png"
    argv = ["stylize", "tower_bridge", "van_gogh_harvest", "-o", str(out), "--size", "64", "--steps", "3"]
    assert main(argv + ["--preset", "novak", "--no-progress"]) == 0
    with Image.open(out) as img:
        assert max(img.size) == 64
    data = json.loads(out.with_suffix(".json").read_text())
    assert len(data["history"]["total"]) == 3 and len(data["step_times"]) == 3
    assert data["settings"]["preset"] == "novak" and data["settings"]["size"] == 64
    assert data["weights_name"] == "random" and data["interrupted"] is False
    assert data["settings"]["normalized_vgg"] is False
    assert str(out) in capsys.readouterr().out


def test_several_styles_with_blend_weights(tmp_path) -> None:
    out = tmp_path / "blend.png"
    argv = ["stylize", "chelsea_cat", "van_gogh_harvest", "hubble_deep_field", "-o", str(out), "--size", "64"]
    argv += ["--steps", "2", "--style-weights", "3", "1", "--preserve-color", "luminance", "--no-progress"]
    assert main(argv) == 0
    settings = json.loads(out.with_suffix(".json").read_text())["settings"]
    assert settings["style"] == ["van_gogh_harvest", "hubble_deep_field"]
    assert settings["style_weights"] == [0.75, 0.25] and settings["preserve_color"] == "luminance"


def test_content_loss_flag(tmp_path) -> None:
    out = tmp_path / "lpips.png"
    argv = ["stylize", "chelsea_cat", "van_gogh_harvest", "-o", str(out), "--size", "48", "--steps", "2"]
    assert main(argv + ["--content-loss", "lpips", "--no-progress"]) == 0
    settings = json.loads(out.with_suffix(".json").read_text())["settings"]
    assert settings["content_loss"] == "lpips" and settings["content_layers"][-1] == "relu5_4"


def test_normalized_vgg_flag(tmp_path) -> None:
    out = tmp_path / "normalized.png"
    argv = ["stylize", "chelsea_cat", "van_gogh_harvest", "-o", str(out), "--size", "48", "--steps", "2"]
    assert main(argv + ["--normalized-vgg", "--no-progress"]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["settings"]["normalized_vgg"] is True and data["weights_name"] == "random"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_precision_flag_reaches_the_json(tmp_path, precision) -> None:
    out = tmp_path / f"{precision}.png"
    argv = ["stylize", "chelsea_cat", "van_gogh_harvest", "-o", str(out), "--size", "48", "--steps", "2"]
    assert main(argv + ["--precision", precision, "--no-progress"]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["precision"] == data["settings"]["precision"] == precision


def test_missing_file_is_one_line_and_exit_1(tmp_path, capsys) -> None:
    out = tmp_path / "out.png"
    missing = tmp_path / "nope.jpg"
    code = main(["stylize", str(missing), "van_gogh_harvest", "-o", str(out), "--no-progress"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and line.startswith("nstlab: error:") and "nope.jpg" in line
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, code, needle",
    [
        (["--preset", "picasso"], 2, "invalid choice: 'picasso'"),
        (["--size", "-3"], 2, "expected a positive integer"),
        (["--weights", "/no/such/weights.pth"], 1, "weights"),
        (["--lr", "0"], 1, "lr must be > 0"),
        (["-o", "out.txt"], 1, "unknown image suffix"),
        (["--device", "gpu"], 1, "'gpu' is not a torch device"),
        (["--precision", "half"], 2, "invalid choice: 'half'"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, extra, code, needle) -> None:
    argv = ["stylize", "tower_bridge", "van_gogh_harvest", "-o", str(tmp_path / "o.png"), "--steps", "1"]
    argv += ["--size", "64", "--no-progress"] + extra
    try:
        got = main(argv)
    except SystemExit as exit_:  # argparse's own usage errors
        got = exit_.code
    line = one_error_line(capsys.readouterr().err)
    assert got == code and line.startswith("nstlab") and needle in line


def test_a_weight_that_overflows_the_loss_is_named_not_the_learning_rate(tmp_path, capsys) -> None:
    out = tmp_path / "huge.png"
    argv = ["stylize", "tower_bridge", "van_gogh_harvest", "-o", str(out), "--size", "64", "--steps", "3"]
    assert main(argv + ["--style-weight", "1e38", "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "overflowed float32: lower style_weight=1e+38" in line and "learning rate" not in line


def test_non_finite_run_keeps_the_files_and_exits_1(tmp_path, capsys) -> None:
    out = tmp_path / "nan.png"
    argv = ["stylize", "tower_bridge", "van_gogh_harvest", "-o", str(out), "--size", "64", "--steps", "5"]
    assert main(argv + ["--lr", "1e30", "--no-progress"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("nstlab: error: stopped early: non-finite")
    assert out.exists() and json.loads(out.with_suffix(".json").read_text())["stopped_reason"].startswith("non-finite")


def test_images_lists_the_bundled_names(capsys) -> None:
    assert main(["images"]) == 0
    out = capsys.readouterr().out
    for name in list_images("content") + list_images("style"):
        assert f"  {name}\n" in out
    assert out.index("content:") < out.index("style:")


def test_python_dash_m_nstlab_works() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NSTLAB_WEIGHTS": "random"}
    done = subprocess.run(
        [sys.executable, "-m", "nstlab", "images"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "tower_bridge" in done.stdout and "van_gogh_harvest" in done.stdout
