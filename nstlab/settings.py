"""Process-wide switches (layer 0, below the textbook): the course's mode, the compute device and the CPU
memory allocator.

The mode sets how big and how long every run of the course is, in one place:

- ``"real"`` (the default): the real sizes and steps (256 px, hundreds of steps);
- ``"quick"``: for live teaching, about 128 px and a fraction of the steps, so that "Run All" of a notebook
  takes well under a minute on a laptop CPU and its pictures still show what the notebook teaches;
- ``"smoke"``: for the tests, 64 px and a handful of steps; the pictures are thumbnails and mean nothing.

``NSTLAB_MODE=quick`` chooses it for every notebook, ``nstlab.set_mode("quick")`` for one process (a
notebook's first cell), and ``NSTLAB_SMOKE=1``, the test command's switch, means smoke whatever else says
(:func:`mode_and_source` has the order). Code asks for a mode-dependent value through
:func:`course_value` (``size = course_value(real=256, quick=128, smoke=64)``), or :func:`smoke_or` for one
that quick mode leaves at its real value, so the switch lives in exactly one place.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import threading
import warnings
from collections.abc import Iterator
from typing import TypeVar

import torch

T = TypeVar("T")

MODES = ("real", "quick", "smoke")
"""The course's modes, from the real settings to the tests' thumbnails."""

MODE_NOTES = {
    "real": "the real sizes and steps (256 px, hundreds of steps)",
    "quick": "for live teaching: about 128 px and a fraction of the steps",
    "smoke": "for the tests: 64 px and a few steps; the pictures mean nothing",
}
"""What each mode means, in a few words (the environment table of notebook 00 shows it)."""

_chosen: dict[str, str | None] = {"mode": None}
"""The mode chosen by :func:`set_mode` in this process (None: the environment's)."""


def _smoke_env() -> bool:
    """True when ``NSTLAB_SMOKE`` is set to a true value (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get("NSTLAB_SMOKE", "").strip().lower() in {"1", "true", "yes", "on"}


def _checked_mode(value: str, where: str) -> str:
    mode_ = value.strip().lower()
    if mode_ not in MODES:
        raise ValueError(f"{where}: the mode must be one of {', '.join(MODES)}, got {value!r}")
    return mode_


def mode_and_source() -> tuple[str, str]:
    """The course's mode and what set it, the first of:

    1. ``NSTLAB_SMOKE=1``, the test command's switch: smoke, whatever else says (the tests run every
       notebook as committed, a ``set_mode`` call in it included, and must stay small);
    2. :func:`set_mode` in this process;
    3. ``NSTLAB_MODE`` (``real``, ``quick`` or ``smoke``);
    4. ``"real"``.

    Returns: (mode, source), e.g. ("quick", "NSTLAB_MODE=quick"). A bad ``NSTLAB_MODE`` is a ValueError.
    """
    if _smoke_env():
        return "smoke", "NSTLAB_SMOKE=1"
    if _chosen["mode"] is not None:
        return _chosen["mode"], f'nstlab.set_mode("{_chosen["mode"]}")'
    env = os.environ.get("NSTLAB_MODE", "").strip()
    if env:
        chosen = _checked_mode(env, "NSTLAB_MODE")
        return chosen, f"NSTLAB_MODE={chosen}"
    return "real", "the default"


def mode() -> str:
    """The course's mode now: ``"real"``, ``"quick"`` or ``"smoke"`` (see :func:`mode_and_source`)."""
    return mode_and_source()[0]


def set_mode(new_mode: str | None) -> str:
    """Choose the mode for this process, over ``NSTLAB_MODE``; None goes back to the environment's.

    Call it before the values that depend on it are computed: in a notebook, at the top of the first cell
    (``nstlab.set_mode("quick")``), or re-run the cells after it. Under ``NSTLAB_SMOKE=1`` the mode stays
    smoke (with a warning that says so).
    Returns: the mode now in force.
    """
    _chosen["mode"] = None if new_mode is None else _checked_mode(new_mode, "set_mode")
    now = mode()
    if new_mode is not None and now != _chosen["mode"]:
        warnings.warn(f"NSTLAB_SMOKE=1 is set, so the course stays in smoke mode, not {_chosen['mode']}: unset "
                      "NSTLAB_SMOKE for the quick or real settings", stacklevel=2)
    return now


def course_value(real: T, quick: T, smoke: T) -> T:
    """The value for the course's mode, e.g. ``SIZE = course_value(real=256, quick=128, smoke=64)``."""
    return {"real": real, "quick": quick, "smoke": smoke}[mode()]


def is_smoke() -> bool:
    """True in smoke mode (``NSTLAB_SMOKE=1``, ``NSTLAB_MODE=smoke`` or ``set_mode("smoke")``)."""
    return mode() == "smoke"


def smoke_or(real: T, smoke: T) -> T:
    """``course_value(real, quick=real, smoke=smoke)``: a value that only the tests shrink, that quick mode
    leaves at its real value (e.g. the number of settings a sweep tries). Example: ``smoke_or(384, 64)``."""
    return course_value(real, real, smoke)


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device`` if given, else CUDA, then Apple MPS, then CPU.

    ``NSTLAB_DEVICE`` (e.g. ``cpu``) overrides the automatic choice. A device that this machine does
    not have is a ValueError that says so (torch would fail later, deep inside the first operation).
    """
    if device is None:
        device = os.environ.get("NSTLAB_DEVICE") or None
    if device is not None:
        return _available(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)  # Apple's GPU backend; absent from some torch builds
    return mps is not None and mps.is_available()


def _available(device: str | torch.device) -> torch.device:
    try:
        chosen = torch.device(device)
    except RuntimeError as err:  # e.g. torch.device("gpu")
        raise ValueError(f"device {str(device)!r} is not a torch device: {err}") from err
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"device {str(device)!r}: CUDA is not available here (no NVIDIA GPU or driver, or a CPU-only "
                "torch build); use device 'cpu'"
            )
        if chosen.index is not None and chosen.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA device(s), numbered from 0")
    if chosen.type == "mps" and not _mps_available():
        raise ValueError(f"device {str(device)!r}: Apple's MPS is not available here; use device 'cpu'")
    return chosen


# glibc's mallopt parameters (malloc.h, mallopt(3)). Setting any of them ends glibc's own adjustment of
# the thresholds, so on leaving they are set to where that adjustment goes for a program that frees big
# blocks (mmap threshold at its 32 MiB maximum, trim threshold twice that), not to the start values.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_AFTER = ((_M_MMAP_MAX, 65536), (_M_MMAP_THRESHOLD, 32 * 2**20), (_M_TRIM_THRESHOLD, 64 * 2**20))
_KEEP_ALL = 2**31 - 1  # the largest int mallopt takes: never give the heap's top back
_keeping = {"depth": 0}
_keeping_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (it has mallopt and malloc_trim), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@contextlib.contextmanager
def keep_freed_memory() -> Iterator[None]:
    """Within this block, glibc's malloc keeps the memory that torch frees and hands it out again.

    By default glibc serves a large block (over a threshold that rises to at most 32 MiB) with a
    fresh mmap and unmaps it when freed, so each forward/backward pass of a big image faults its
    activations in as new zeroed pages: about 1.7 GB per pass at 1024 px, where a step ran about
    1.6x slower for it (benchmarks/README.md).
    Inside, large blocks come from the heap and the heap is never trimmed; on leaving the outermost
    block, glibc's thresholds are set as its own adjustment would leave them and the freed memory
    is returned to the system (malloc_trim).
    The process's peak memory grew by 1 % (512 px) to 10 % (1024 px) for it. Nothing happens where
    the C library is not glibc (macOS, Windows, musl).
    """
    libc = _glibc()
    if libc is None:
        yield
        return
    with _keeping_lock:
        _keeping["depth"] += 1
        if _keeping["depth"] == 1:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_ALL)
    try:
        yield
    finally:
        with _keeping_lock:
            _keeping["depth"] -= 1
            if _keeping["depth"] == 0:
                for param, value in _AFTER:
                    libc.mallopt(param, value)
                libc.malloc_trim(0)
