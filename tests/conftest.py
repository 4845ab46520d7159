"""Fixtures that several test modules ask for by name (``pytestmark = pytest.mark.usefixtures(...)`` or an argument)."""

from __future__ import annotations

import pytest
import torch

import nstlab
from nstlab import settings, vgg
from nstlab.experiments import SWEEP_CONTENT, SWEEP_STYLE


@pytest.fixture(autouse=True)
def _mode_of_the_test_command(monkeypatch):
    """No test inherits NSTLAB_MODE from the shell or a ``set_mode`` from an earlier test. The test command sets
    NSTLAB_SMOKE=1 for speed; a test whose assertions depend on the mode sets it itself, so that ``pytest tests``
    passes without the test command too."""
    monkeypatch.delenv("NSTLAB_MODE", raising=False)
    settings.set_mode(None)
    yield
    settings.set_mode(None)


@pytest.fixture
def random_weights_and_private_cache(monkeypatch, tmp_path_factory):
    """The seeded random VGG19, and a cache of the normalised VGG19's scales private to this test session."""
    monkeypatch.setenv("NSTLAB_WEIGHTS", "random")
    monkeypatch.setenv("NSTLAB_CACHE", str(tmp_path_factory.getbasetemp() / "nstlab-cache"))


@pytest.fixture(scope="session")
def sweep_images():
    """The content and style images of notebooks 04-06 at 64 px, the smallest size that reaches relu5_x."""
    return nstlab.sample_image(SWEEP_CONTENT, 64), nstlab.sample_image(SWEEP_STYLE, 64)


@pytest.fixture
def one_thread():
    """For tiny tensors: with one thread a step is several times faster than with OpenMP's two (whose
    threads wait for each other, badly so on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def private_torch_hub(monkeypatch, tmp_path):
    """A torch hub dir without the ImageNet file and an nstlab cache of this test's own, no NSTLAB_WEIGHTS, and
    the network caches empty before and after."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NSTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NSTLAB_WEIGHTS", raising=False)
    vgg.clear_cache()
    yield
    vgg.clear_cache()
