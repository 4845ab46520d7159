"""Process-wide switches: the smoke-test flag and the compute device.

``NSTLAB_SMOKE=1`` (set by the test command) shrinks image sizes and step counts so the
whole course runs in minutes; without it every default is the real one. Code asks for a
size or a step count through :func:`smoke_or`, so the switch lives in exactly one place.
"""

from __future__ import annotations

import os
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

    ``NSTLAB_DEVICE`` (e.g. ``cpu``) overrides the automatic choice.
    """
    if device is None:
        device = os.environ.get("NSTLAB_DEVICE") or None
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
