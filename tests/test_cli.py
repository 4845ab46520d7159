"""The nstlab command line: files written, one-line errors, exit codes, ``python -m nstlab``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from nstlab import vgg, weights
from nstlab.cli import main
from nstlab.images import list_images
from weights_server import hashed_name, leftovers, serving, vgg19_state_bytes

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


# --- nstlab weights: download and check, against a local server ------------------------------------


@pytest.fixture(scope="module")
def state_bytes() -> bytes:
    return vgg19_state_bytes()


@pytest.fixture()
def hub(monkeypatch, tmp_path) -> Path:
    """A fresh torch hub cache, NSTLAB_WEIGHTS unset (the notebooks' situation); returns the checkpoint folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("NSTLAB_WEIGHTS")
    vgg.clear_cache()
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_weights_download_then_check(monkeypatch, hub, capsys, state_bytes) -> None:
    with serving() as server:
        monkeypatch.setenv(weights.URL_VARIABLE, server.add(state_bytes))
        assert main(["weights", "download", "--no-progress"]) == 0
        out = capsys.readouterr().out
        path = hub / hashed_name(state_bytes)
        assert f"nstlab: wrote {path} (" in out and "matches its name" in out and leftovers(hub) == [path.name]
        assert main(["weights", "download"]) == 0 and "already there" in capsys.readouterr().out
        assert main(["weights", "check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nstlab: the course will use ImageNet VGG19 weights\n")
    assert f"  {path}: found, its SHA-256 matches its name\n" in out and "fix:" not in out


def test_weights_check_without_the_file_or_a_network(monkeypatch, hub, capsys) -> None:
    with serving() as server:
        monkeypatch.setenv(weights.URL_VARIABLE, server.url("vgg19-dcbb9e9d.pth"))  # 404: nothing to get
        assert main(["weights", "check"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("nstlab: the course will use RANDOM (untrained) VGG19 weights\n")
    assert f"{hub / 'vgg19-dcbb9e9d.pth'}: missing" in out and "HTTP Error 404" in out
    assert out.splitlines()[-1].startswith("fix: nstlab weights download")


def test_weights_check_a_corrupt_file(monkeypatch, hub, capsys) -> None:
    hub.mkdir(parents=True)
    (hub / "vgg19-dcbb9e9d.pth").write_bytes(b"half a download")
    assert main(["weights", "check"]) == 1
    out = capsys.readouterr().out
    assert "RANDOM (untrained)" in out and "its name says dcbb9e9d: the file is corrupt or incomplete" in out
    assert out.splitlines()[-1] == "fix: nstlab weights download (it replaces the file)"


def test_weights_download_failures_are_one_line(monkeypatch, hub, capsys, tmp_path) -> None:
    data = b"\x01" * 100_000
    with serving() as server:
        monkeypatch.setenv(weights.URL_VARIABLE, server.add(data, mode="truncate"))
        assert main(["weights", "download", "--no-progress"]) == 1
        line = one_error_line(capsys.readouterr().err)
        assert line.startswith("nstlab: error: downloading http://127.0.0.1:") and "stopped after 50000 of" in line
        assert leftovers(hub) == []
        monkeypatch.setenv(weights.URL_VARIABLE, server.add(data))
        assert main(["weights", "download", "--to", str(tmp_path / "usb"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"export NSTLAB_WEIGHTS={tmp_path / 'usb' / hashed_name(data)}" in out and leftovers(hub) == []


def test_weights_download_ctrl_c_exits_130_and_leaves_nothing(monkeypatch, hub, capsys) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with serving() as server:
        monkeypatch.setenv(weights.URL_VARIABLE, server.add(b"\x02" * 100_000))
        monkeypatch.setattr(weights, "_progress_bar", interrupted)
        assert main(["weights", "download"]) == 130
    assert "nstlab: interrupted" in capsys.readouterr().err and leftovers(hub) == []
