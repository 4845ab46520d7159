"""The weights banner at the top of every notebook (nstlab.experiments.weights_banner): one quiet line for the
ImageNet network; otherwise a warning with the findings and fix of ``nstlab weights check`` and what holds once
the fix is done, which these tests check too: a placed file is used by the next network, no restart needed."""

from __future__ import annotations

import pytest
import torch

from nstlab import experiments as ex
from nstlab import vgg, weights
from nstlab.experiments import Banner, weights_banner
from weights_server import hashed_name, vgg19_state_bytes

DEAD_ADDRESS = "http://127.0.0.1:9"
"""Nothing listens on the discard port: a download from there fails at once, as offline."""


@pytest.fixture(autouse=True)
def _own_hub(private_torch_hub):
    """No ImageNet file, no NSTLAB_WEIGHTS (conftest.private_torch_hub), and no remembered runs."""
    ex.clear_run_cache()
    yield
    ex.clear_run_cache()


@pytest.fixture(scope="module")
def state_bytes() -> bytes:
    return vgg19_state_bytes()


def _address_for(monkeypatch, data: bytes) -> None:
    """Make ``data`` the course's ImageNet file (its name carries its SHA-256), downloadable from nowhere."""
    monkeypatch.setenv(weights.URL_VARIABLE, f"{DEAD_ADDRESS}/{hashed_name(data)}")


def test_banner_lines_and_quiet_form():
    banner = Banner("title", "first line\nsecond line", warning=True)
    text = str(banner).splitlines()
    assert text[1:4] == ["  TITLE", "  first line", "  second line"]
    assert "<div>first line</div><div>second line</div>" in banner._repr_html_()
    quiet = Banner("VGG19: ImageNet weights", "as in the papers\nnot shown", quiet=True)
    assert str(quiet) == "VGG19: ImageNet weights — as in the papers"
    assert "border" not in quiet._repr_html_() and "as in the papers" in quiet._repr_html_()


def test_the_random_weights_banner_as_ci_sees_it(monkeypatch):
    # the text the notebooks' checked banner cells store (nbval, NSTLAB_WEIGHTS=random): no machine's paths
    monkeypatch.setenv("NSTLAB_WEIGHTS", "random")
    banner = weights_banner("auto")
    assert banner.warning and not banner.quiet and banner.text == "VGG19: RANDOM (untrained) weights"
    lines = banner.detail.splitlines()
    assert lines[0].startswith("An untrained, seeded VGG19 is in use: the pictures show colour and texture")
    assert lines[1:4] == [
        "nstlab weights check: the course will use RANDOM (untrained) VGG19 weights",
        "  NSTLAB_WEIGHTS=random asks for the untrained network",
        "fix: unset NSTLAB_WEIGHTS",
    ]
    assert lines[4].startswith("then: a kernel has the environment of the JupyterLab that started it, even after")
    assert lines[1:4] == ["nstlab weights check: " + vgg.check_weights().lines()[0], *vgg.check_weights().lines()[1:]]


def test_a_notebook_that_asks_for_random_weights_is_told_where(monkeypatch):
    banner = weights_banner("random")
    assert banner.warning
    assert banner.detail.splitlines()[2:] == [
        "  the notebook asks for weights='random'",
        'fix: WEIGHTS = "auto" in its first cell',
        "then: run the notebook again from the top",
    ]


def test_imagenet_weights_are_one_quiet_line(monkeypatch, state_bytes):
    _address_for(monkeypatch, state_bytes)
    path = weights.imagenet_checkpoint_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(state_bytes)
    banner = weights_banner("auto")
    assert banner.quiet and not banner.warning
    assert str(banner) == "VGG19: ImageNet weights — trained on ImageNet (torchvision IMAGENET1K_V1), as in the papers"
    monkeypatch.setenv("NSTLAB_WEIGHTS", str(path))  # the shared file of a classroom is ImageNet's too
    assert weights_banner("auto").quiet


def test_an_unusable_nstlab_weights_file_is_a_banner_not_a_traceback(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere.pth"
    monkeypatch.setenv("NSTLAB_WEIGHTS", str(missing))
    banner = weights_banner("auto")
    assert banner.warning and banner.text == "VGG19: no weights"
    lines = banner.detail.splitlines()
    assert lines[0].startswith("No VGG19 weights could be loaded")
    assert f"  {missing}: no such file" in lines and lines[-1].startswith("then: a kernel has the environment")


def test_placing_the_file_needs_no_restart(monkeypatch, state_bytes):
    """What the banner promises: offline the notebook runs with random weights and says why; once the file is in
    place, the next network, the next banner and the next run use it, in the same process (kernel)."""
    _address_for(monkeypatch, state_bytes)
    with pytest.warns(vgg.RandomWeightsWarning):
        before = weights_banner("auto")
    lines = before.detail.splitlines()
    assert before.warning and before.text == "VGG19: RANDOM (untrained) weights"
    assert lines[1] == "nstlab weights check: the course will use RANDOM (untrained) VGG19 weights"
    assert any(line.endswith(": missing") for line in lines)
    assert any("cannot be downloaded from here" in line for line in lines)
    assert lines[-2].startswith("fix: nstlab weights download")
    assert lines[-1].startswith("then: no restart needed, the next cell that builds a network loads the file")
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    options = dict(size=32, steps=1, weights="auto", progress=False, content_layers=["relu1_1"],
                   style_layers=["relu1_1"])
    held = vgg.VGGFeatures(["relu1_1"], weights="auto")
    assert ex.stylize_variant(content, style, **options).weights_name == "random"

    path = weights.imagenet_checkpoint_path()  # a teacher runs 'nstlab weights download' or copies the file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(state_bytes)

    after = weights_banner("auto")
    assert after.quiet and str(after).startswith("VGG19: ImageNet weights")
    assert vgg.VGGFeatures(["relu1_1"], weights="auto").weights_name == "imagenet"
    assert ex.stylize_variant(content, style, **options).weights_name == "imagenet"  # not the remembered run
    assert held.weights_name == "random"  # a network built before keeps its weights: re-run the cells after
