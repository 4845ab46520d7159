"""nstlab.weights: downloading the ImageNet VGG19 file from a local server and checking it; nothing partial or
wrong is ever left where the course would load it. Loopback only: every server is started by the test."""

from __future__ import annotations

import os
import stat
import warnings

import pytest
import torch

from nstlab import vgg, weights
from nstlab.vgg import RandomWeightsWarning, VGGFeatures, WeightsUnavailableError, check_weights
from weights_server import hashed_name, leftovers, serving, vgg19_state_bytes

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def state_bytes() -> bytes:
    return vgg19_state_bytes()


@pytest.fixture()
def server():
    with serving() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, tmp_path):
    """Each test has its own torch hub dir and nstlab cache, no NSTLAB_WEIGHTS, and empty caches."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("NSTLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NSTLAB_WEIGHTS", raising=False)
    monkeypatch.delenv(weights.URL_VARIABLE, raising=False)
    vgg.clear_cache()
    yield
    vgg.clear_cache()


def _serve(monkeypatch, server, data: bytes, name: str | None = None, mode: str = "ok") -> str:
    """Serve ``data`` and make it the course's download address; returns the URL."""
    url = server.add(data, name, mode)
    monkeypatch.setenv(weights.URL_VARIABLE, url)
    return url


def _corrupted(data: bytes) -> bytes:
    """``data`` with one byte in the middle flipped: same length, another SHA-256."""
    broken = bytearray(data)
    broken[len(broken) // 2] ^= 0xFF
    return bytes(broken)


def test_the_real_address_and_cache_path():
    assert weights.imagenet_url() == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert weights.imagenet_checkpoint_path() == weights.download_target()
    assert weights.imagenet_checkpoint_path().name == "vgg19-dcbb9e9d.pth"
    assert weights.hash_prefix("vgg19-dcbb9e9d.pth") == "dcbb9e9d"
    assert weights.hash_prefix("vgg19-features.pth") is None and weights.hash_prefix("vgg19.pth") is None


def test_a_good_download_lands_verified_and_loads_as_imagenet(monkeypatch, server, state_bytes):
    _serve(monkeypatch, server, state_bytes)
    target = vgg.imagenet_checkpoint_path()
    assert target.name == hashed_name(state_bytes)
    path = weights.download(progress=False, timeout=TIMEOUT)
    assert path == target and path.read_bytes() == state_bytes
    assert leftovers(path.parent) == [path.name]  # no temporary file left
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        model = VGGFeatures(["conv1_1"], weights="auto")
    assert model.weights_name == "imagenet"
    assert torch.equal(model.body[0].weight, torch.load(path, weights_only=True)["features.0.weight"])


def test_a_verified_file_is_kept_without_asking_the_server(monkeypatch, server, state_bytes):
    _serve(monkeypatch, server, state_bytes)
    weights.download(progress=False, timeout=TIMEOUT)
    mtime = vgg.imagenet_checkpoint_path().stat().st_mtime_ns
    assert weights.download(progress=False, timeout=TIMEOUT) == vgg.imagenet_checkpoint_path()
    assert len(server.requests) == 1 and vgg.imagenet_checkpoint_path().stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    "case, match",
    [
        ("corrupt", "SHA-256 starts"),  # wrong bytes under the right name
        ("wrong hash", "its name says 00000000"),  # the right bytes under a name with another hash
        ("truncated", r"stopped after \d+ of \d+ bytes"),  # the server closes half-way
        ("reset", "ConnectionResetError"),  # the connection breaks half-way (a TCP reset)
        ("missing", "HTTP Error 404"),
    ],
)
def test_a_failed_download_leaves_nothing_behind(monkeypatch, server, state_bytes, case, match):
    good = hashed_name(state_bytes)
    if case == "corrupt":
        _serve(monkeypatch, server, _corrupted(state_bytes), name=good)
    elif case == "wrong hash":
        _serve(monkeypatch, server, state_bytes, name="vgg19-00000000.pth")
    elif case in ("truncated", "reset"):
        _serve(monkeypatch, server, state_bytes, mode={"truncated": "truncate", "reset": "reset"}[case])
    else:
        monkeypatch.setenv(weights.URL_VARIABLE, server.url(good))
    with pytest.raises(WeightsUnavailableError, match=match) as err:
        weights.download(progress=False, timeout=TIMEOUT)
    assert str(err.value).startswith(f"downloading {weights.imagenet_url()} failed: ")
    target = vgg.imagenet_checkpoint_path()
    assert not target.exists() and leftovers(target.parent) == []
    with pytest.warns(RandomWeightsWarning):  # and the course does not take anything for ImageNet
        assert VGGFeatures(["conv1_1"], weights="auto").weights_name == "random"


def test_ctrl_c_mid_download_removes_the_partial_file(monkeypatch, server, state_bytes):
    _serve(monkeypatch, server, state_bytes)
    folder = vgg.imagenet_checkpoint_path().parent
    seen = []

    class InterruptedBar:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

        def update(self, n: int) -> None:
            seen.append(leftovers(folder))  # bytes are being written to the hidden temporary file
            raise KeyboardInterrupt

    monkeypatch.setattr(weights, "_progress_bar", InterruptedBar)
    with pytest.raises(KeyboardInterrupt):
        weights.download(timeout=TIMEOUT)
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].startswith(".vgg19-") and seen[0][0].endswith(".part")
    assert leftovers(folder) == []


def test_a_corrupt_file_in_the_cache_is_replaced_atomically(monkeypatch, server, state_bytes):
    _serve(monkeypatch, server, state_bytes)
    target = vgg.imagenet_checkpoint_path()
    target.parent.mkdir(parents=True)
    target.write_bytes(state_bytes[:1000])  # an earlier download, cut short
    assert "corrupt" in weights.hash_problem(target)
    weights.download(progress=False, timeout=TIMEOUT)
    assert target.read_bytes() == state_bytes and leftovers(target.parent) == [target.name]


def test_download_to_a_folder(monkeypatch, server, state_bytes, tmp_path):
    _serve(monkeypatch, server, state_bytes)
    path = weights.download(tmp_path / "usb", progress=False, timeout=TIMEOUT)
    assert path == tmp_path / "usb" / hashed_name(state_bytes) and path.read_bytes() == state_bytes
    assert not vgg.imagenet_checkpoint_path().exists()


def test_a_name_without_a_hash_is_not_downloaded(monkeypatch, server, state_bytes):
    _serve(monkeypatch, server, state_bytes, name="vgg19.pth")
    with pytest.raises(WeightsUnavailableError, match="no SHA-256 prefix"):
        weights.download(progress=False, timeout=TIMEOUT)
    assert server.requests == []


def test_a_file_is_hashed_once_per_process_until_it_changes(monkeypatch, tmp_path):
    path = tmp_path / "vgg19-00000000.pth"
    path.write_bytes(b"first")
    first = weights.sha256(path)

    def no_reading(*args, **kwargs):
        raise AssertionError("hashed again")

    monkeypatch.setattr(weights, "open", no_reading, raising=False)
    assert weights.sha256(path) == first
    monkeypatch.undo()
    path.write_bytes(b"second, longer")
    assert weights.sha256(path) != first


# --- check_weights: which weights the notebooks get, and why ----------------------------------------


def test_check_a_missing_file_and_no_network(monkeypatch, server):
    monkeypatch.setenv(weights.URL_VARIABLE, server.url("vgg19-dcbb9e9d.pth"))  # answers 404
    report = check_weights(timeout=TIMEOUT)
    assert report.uses == "random" and not report.ok
    text = "\n".join(report.lines())
    assert "RANDOM (untrained)" in text and f"{vgg.imagenet_checkpoint_path()}: missing" in text
    assert "HTTP Error 404" in text and report.fix.startswith("nstlab weights download")


def test_check_a_missing_file_that_the_first_use_downloads(monkeypatch, server, state_bytes):
    _serve(monkeypatch, server, state_bytes)
    report = check_weights(timeout=TIMEOUT)
    assert report.uses == "imagenet" and report.ok and "answers" in report.lines()[-2]
    assert not vgg.imagenet_checkpoint_path().exists()  # the check itself downloads nothing


def test_check_a_good_and_a_corrupt_file(monkeypatch, server, state_bytes):
    _serve(monkeypatch, server, state_bytes)
    path = weights.download(progress=False, timeout=TIMEOUT)
    report = check_weights(timeout=TIMEOUT)
    assert report.ok and report.uses == "imagenet" and report.fix is None
    assert f"{path}: found, its SHA-256 matches its name" in report.reasons

    path.write_bytes(_corrupted(state_bytes))
    report = check_weights(timeout=TIMEOUT)
    assert report.uses == "random" and not report.ok
    assert any("corrupt" in reason for reason in report.reasons) and "replaces" in report.fix
    monkeypatch.setenv("NSTLAB_WEIGHTS", "imagenet")
    assert check_weights(timeout=TIMEOUT).uses == "error"


def test_check_follows_nstlab_weights(monkeypatch, tmp_path, state_bytes):
    monkeypatch.setenv("NSTLAB_WEIGHTS", "random")
    assert check_weights().uses == "random" and check_weights().fix == "unset NSTLAB_WEIGHTS"
    monkeypatch.setenv("NSTLAB_WEIGHTS", str(tmp_path / "nothing.pth"))
    report = check_weights()
    assert report.uses == "error" and "no such file" in report.reasons[-1]
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")
    monkeypatch.setenv("NSTLAB_WEIGHTS", str(junk))
    assert check_weights().uses == "error" and "cannot be read" in check_weights().reasons[-1]
    shared = tmp_path / hashed_name(state_bytes)
    shared.write_bytes(state_bytes)
    monkeypatch.setenv("NSTLAB_WEIGHTS", str(shared))
    report = check_weights()
    assert report.ok and report.uses == str(shared) and "matches its name" in report.reasons[-1]


def test_a_read_only_shared_file_loads_and_nothing_is_written_next_to_it(monkeypatch, tmp_path, state_bytes):
    shared = tmp_path / "shared"
    shared.mkdir()
    path = shared / hashed_name(state_bytes)
    path.write_bytes(state_bytes)
    path.chmod(0o444)
    shared.chmod(0o555)
    try:
        monkeypatch.setenv("NSTLAB_WEIGHTS", str(path))
        model = VGGFeatures(["conv1_1"], weights="auto")
        assert check_weights().ok
        assert os.listdir(shared) == [path.name] and path.read_bytes() == state_bytes
    finally:
        shared.chmod(0o755)
        path.chmod(0o644)
    assert model.weights_name == str(path)
