"""Training data of the feed-forward network (nstlab.fast) — engine layer: the content photos and the
random augmented crops a training batch is made of, each batch a pure function of (seed, step) so that a
resumed training sees the same batches as an uninterrupted one.

Imports the textbook layer only; :mod:`nstlab.fast` re-exports its names (``fast.CropSampler``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from nstlab.images import IMAGE_SUFFIXES, list_images, load_image, resize, sample_image_path

HELD_OUT = ("chelsea_cat", "tower_bridge")
"""Bundled content images left out of training by default, to test the network on unseen photos."""

MIN_CROP_SCALE = 0.3
"""Smallest crop of a random resized crop, as a fraction of the largest square's area."""


def content_paths(content_dir: str | os.PathLike | None = None, held_out: Sequence[str] = HELD_OUT) -> list[Path]:
    """Training images: every image file under ``content_dir`` (sorted), or, for None, the bundled
    content images except ``held_out``. Raises ValueError if there is none."""
    if content_dir is None:
        names = [n for n in list_images("content") if n not in set(held_out)]
        paths = [sample_image_path(n) for n in names]
        where = f"the bundled content images minus {list(held_out)}"
    else:
        folder = Path(content_dir)
        if not folder.is_dir():
            raise ValueError(f"content_dir {str(folder)!r} is not a folder")
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        where = f"folder {str(folder)!r} (suffixes {sorted(IMAGE_SUFFIXES)})"
    if not paths:
        raise ValueError(f"no training images in {where}")
    return paths


def _generator(seed: int, *stream: object) -> torch.Generator:
    """A CPU generator determined by (seed, *stream) only, e.g. ("crop", step)."""
    digest = hashlib.sha256(repr((seed, *stream)).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def augmented_crop(
    image: torch.Tensor, size: int, generator: torch.Generator, min_scale: float = MIN_CROP_SCALE
) -> torch.Tensor:
    """A random resized square crop with a random horizontal flip.

    The crop's area is a uniform fraction in [min_scale, 1] of the largest square that fits, at a
    uniform position; it is resized (antialiased) to size x size and flipped with probability 1/2.

    Inputs: image (1, 3, H, W) in [0, 1]; size: output side; generator: the only randomness.
    Returns: (1, 3, size, size).
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"augmented_crop: expected one image (1, 3, H, W), got {tuple(image.shape)}")
    if not 0 < min_scale <= 1:
        raise ValueError(f"augmented_crop: min_scale must be in (0, 1], got {min_scale!r}")
    h, w = image.shape[-2:]
    u = torch.rand(4, generator=generator).tolist()
    side = max(1, round(min(h, w) * math.sqrt(min_scale + (1 - min_scale) * u[0])))
    top, left = int(u[1] * (h - side + 1)), int(u[2] * (w - side + 1))
    crop = resize(image[..., top : top + side, left : left + side], (size, size))
    return crop.flip(-1) if u[3] < 0.5 else crop


class CropSampler:
    """Training batches of augmented crops, a pure function of (seed, step).

    Each epoch visits every image once in an order shuffled by (seed, epoch); the crops of step k
    come from a generator seeded by (seed, k). So a resumed training sees the same batches as an
    uninterrupted one. Images are loaded with long side <= 3 * size and kept in an LRU cache.
    """

    def __init__(self, paths: Sequence[Path], size: int, batch_size: int, seed: int = 0, cache: int = 128) -> None:
        self.paths, self.size, self.batch_size, self.seed = list(paths), size, batch_size, seed
        self._load = functools.lru_cache(maxsize=cache)(self._load_uncached)
        self._order = functools.lru_cache(maxsize=2)(self._order_uncached)

    def _load_uncached(self, index: int) -> torch.Tensor:
        return load_image(self.paths[index], max_size=3 * self.size)

    def _order_uncached(self, epoch: int) -> list[int]:
        return torch.randperm(len(self.paths), generator=_generator(self.seed, "epoch", epoch)).tolist()

    def indices(self, step: int) -> list[int]:
        """Indices into ``paths`` of the images of batch ``step``."""
        n = len(self.paths)
        positions = range(step * self.batch_size, (step + 1) * self.batch_size)
        return [self._order(p // n)[p % n] for p in positions]

    def batch(self, step: int) -> torch.Tensor:
        """Batch ``step``: (batch_size, 3, size, size) CPU tensor in [0, 1]."""
        generator = _generator(self.seed, "crop", step)
        return torch.cat([augmented_crop(self._load(i), self.size, generator) for i in self.indices(step)])
