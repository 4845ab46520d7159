"""Process-wide switches (layer 0, below the textbook): the smoke-test flag, the compute device and the CPU
memory allocator.

``NSTLAB_SMOKE=1`` (set by the test command) shrinks image sizes and step counts so the
whole course runs in minutes; without it every default is the real one. Code asks for a
size or a step count through :func:`smoke_or`, so the switch lives in exactly one place.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import threading
from collections.abc import Iterator
from typing import TypeVar

import torch

T = TypeVar("T")


def is_smoke() -> bool:
    """True when ``NSTLAB_SMOKE`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("NSTLAB_SMOKE", "").strip().lower() in {"1", "true", "yes", "on"}


def smoke_or(real: T, smoke: T) -> T:
    """Return ``smoke`` under ``NSTLAB_SMOKE=1`` and ``real`` otherwise.

    Example: ``size = smoke_or(384, 64)``.
    """
    return smoke if is_smoke() else real


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
