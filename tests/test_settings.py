"""Process-wide switches: the course's mode (real, quick, smoke), the device and the CPU allocator setting."""

from __future__ import annotations

import contextlib
import resource

import pytest
import torch

import nstlab
from nstlab import fast, optimize, settings


def test_smoke_or_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSTLAB_SMOKE", "1")
    assert settings.smoke_or(256, 64) == 64
    monkeypatch.setenv("NSTLAB_SMOKE", "0")
    assert settings.smoke_or(256, 64) == 256
    monkeypatch.setenv("NSTLAB_MODE", "quick")
    assert settings.smoke_or(256, 64) == 256  # a value quick mode leaves at its real value


def test_the_mode_comes_from_nstlab_mode_and_defaults_to_real(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NSTLAB_SMOKE", raising=False)
    assert settings.mode_and_source() == ("real", "the default")
    for value, expected in (("quick", "quick"), (" Quick ", "quick"), ("smoke", "smoke"), ("real", "real")):
        monkeypatch.setenv("NSTLAB_MODE", value)
        assert settings.mode_and_source() == (expected, f"NSTLAB_MODE={expected}")
        assert settings.is_smoke() == (expected == "smoke")
    monkeypatch.setenv("NSTLAB_MODE", "fast")
    with pytest.raises(ValueError, match="NSTLAB_MODE: the mode must be one of real, quick, smoke, got 'fast'"):
        settings.mode()
    monkeypatch.delenv("NSTLAB_MODE")


def test_set_mode_overrides_nstlab_mode_until_it_is_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NSTLAB_SMOKE", raising=False)
    monkeypatch.setenv("NSTLAB_MODE", "real")
    assert settings.set_mode("quick") == "quick" == nstlab.mode()
    assert settings.mode_and_source() == ("quick", 'nstlab.set_mode("quick")')
    assert settings.set_mode(None) == "real"  # back to the environment's
    with pytest.raises(ValueError, match="set_mode: the mode must be one of"):
        settings.set_mode("slow")
    assert settings.mode() == "real"


def test_nstlab_smoke_wins_over_every_other_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    # the test command runs every notebook as committed: a set_mode call in one must not make it slow
    monkeypatch.setenv("NSTLAB_SMOKE", "1")
    monkeypatch.setenv("NSTLAB_MODE", "real")
    assert settings.mode_and_source() == ("smoke", "NSTLAB_SMOKE=1")
    with pytest.warns(UserWarning, match="NSTLAB_SMOKE=1 is set, so the course stays in smoke mode, not quick"):
        assert settings.set_mode("quick") == "smoke"
    monkeypatch.setenv("NSTLAB_SMOKE", "0")  # NSTLAB_SMOKE=0 is no choice: the others decide
    assert settings.mode() == "quick"


@pytest.mark.parametrize("chosen", settings.MODES)
def test_course_value_picks_the_modes_value(monkeypatch: pytest.MonkeyPatch, chosen: str) -> None:
    monkeypatch.delenv("NSTLAB_SMOKE", raising=False)
    settings.set_mode(chosen)
    assert nstlab.course_value(real=256, quick=128, smoke=64) == {"real": 256, "quick": 128, "smoke": 64}[chosen]
    assert chosen in settings.MODE_NOTES


@pytest.mark.parametrize("chosen", settings.MODES)
def test_the_engines_defaults_follow_the_mode(monkeypatch: pytest.MonkeyPatch, chosen: str) -> None:
    monkeypatch.delenv("NSTLAB_SMOKE", raising=False)
    monkeypatch.setenv("NSTLAB_MODE", chosen)
    opts = optimize.resolve_options()
    assert (opts["size"], opts["steps"]) == {"real": (256, [300]), "quick": (128, [60]), "smoke": (64, [10])}[chosen]
    assert optimize.resolve_options("ssim")["steps"] == {"real": [1000], "quick": [200], "smoke": [10]}[chosen]
    assert optimize.resolve_options(size=96, steps=7)["size"] == 96  # a value given always wins
    assert fast.train_defaults() == fast.TRAIN_DEFAULTS[chosen]


def _faults_of_a_pass(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Minor page faults of one forward + backward pass (its activations are over 32 MiB each)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    net(x).sum().backward()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(settings._glibc() is None, reason="the C library is not glibc")
def test_default_device_names_a_device_this_machine_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.default_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="'gpu' is not a torch device"):
        settings.default_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available here"):
        settings.default_device("cuda")
    monkeypatch.setenv("NSTLAB_DEVICE", "cuda:0")  # the environment's choice is checked too
    with pytest.raises(ValueError, match="'cuda:0': CUDA is not available"):
        settings.default_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert settings.default_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="has 1 CUDA device"):
        settings.default_device("cuda:1")


def test_keep_freed_memory_reuses_the_activations_until_the_block_ends() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 1))
    x = torch.rand(1, 16, 768, 768, requires_grad=True)  # 36 MiB per activation
    with settings.keep_freed_memory():
        with settings.keep_freed_memory():  # nested: the outer block keeps the setting
            _faults_of_a_pass(net, x)
        kept = [_faults_of_a_pass(net, x) for _ in range(4)]
    fresh = [_faults_of_a_pass(net, x) for _ in range(2)]  # blocks over 32 MiB: a new mmap each again
    # At least one fault per 2 MiB even with transparent huge pages; once the heap has settled
    # (a pass or two), about none.
    assert min(fresh) >= 4 * 36 * 2**20 // (2 * 2**20)
    assert min(kept) < min(fresh) / 4, (kept, fresh)


class _RecordingLibc:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_keep_freed_memory_sets_glibc_once_and_leaves_its_adjusted_thresholds(monkeypatch) -> None:
    libc = _RecordingLibc()
    monkeypatch.setattr(settings, "_glibc", lambda: libc)
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's malloc.h
    with settings.keep_freed_memory():
        with settings.keep_freed_memory():
            pass
        assert libc.calls == [("mallopt", M_MMAP_MAX, 0), ("mallopt", M_TRIM_THRESHOLD, 2**31 - 1)]
    # Not glibc's start values (a fixed 128 KiB trim threshold made a later naive run fault 3x
    # more pages): where its own adjustment ends for big blocks, 32 MiB and twice that.
    assert libc.calls[2:] == [("mallopt", M_MMAP_MAX, 65536), ("mallopt", M_MMAP_THRESHOLD, 32 * 2**20),
                              ("mallopt", M_TRIM_THRESHOLD, 64 * 2**20), ("malloc_trim", 0)]
    with pytest.raises(KeyError):  # an error inside still restores
        with settings.keep_freed_memory():
            raise KeyError("x")
    assert libc.calls[-1] == ("malloc_trim", 0) and len(libc.calls) == 12


@pytest.mark.parametrize("module", ["optimize", "fast"])
def test_stylize_and_train_fast_keep_freed_memory_while_they_run(module, monkeypatch) -> None:
    entered = []

    @contextlib.contextmanager
    def recording():
        entered.append(True)
        yield

    monkeypatch.setattr({"optimize": optimize, "fast": fast}[module], "keep_freed_memory", recording)
    if module == "optimize":
        optimize.stylize("tower_bridge", "van_gogh_harvest", size=32, steps=1, weights="random", device="cpu",
                         progress=False)
    else:
        fast.train_fast("van_gogh_harvest", steps=1, size=32, batch_size=1, channels=8, n_residual=1,
                        style_layers=["relu1_1"], content_layers=["relu1_1"], weights="random", device="cpu",
                        checkpoint=None, progress=False)
    assert entered == [True]
