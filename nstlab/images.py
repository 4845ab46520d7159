"""Loading, saving and resizing images, and the registry of bundled sample images — textbook layer.

Every image in nstlab is a float32 tensor of shape (N, 3, H, W) with values in [0, 1], RGB.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

PathOrFile = Union[str, os.PathLike, BinaryIO, bytes]

MIN_SIDE = 32
"""The smallest side accepted: VGG19 halves the image five times."""

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
KINDS = ("content", "style")


class ImageError(ValueError):
    """An image could not be used; the message names the file and the problem."""


def _source_name(source: PathOrFile) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, bytes):
        return "<bytes>"
    return getattr(source, "name", "<file object>")


def describe(image: object) -> str | None:
    """How a run's record names an input image: ``"tensor(1, 3, H, W)"``, the path or name, or None."""
    if image is None:
        return None
    if isinstance(image, torch.Tensor):
        return f"tensor{tuple(image.shape)}"
    return str(image) if isinstance(image, (str, os.PathLike)) else type(image).__name__


def _open(source: PathOrFile) -> Image.Image:
    """Open and fully decode an image, turning every PIL/OS failure into an ImageError."""
    name = _source_name(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a directory, not an image file")
    elif isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        img = Image.open(source)
        img.load()  # decode now, so a truncated file fails here and not later
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (PIL cannot identify its format)") from None
    except Image.DecompressionBombError as err:  # a huge upload, not a crash in a widget callback
        raise ImageError(f"{name}: too large ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name}: corrupt or truncated image ({err})") from None
    return img


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> (H, W, 3) float32 array in [0, 1]."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit / 32-bit greyscale: scale by the type's range, not by 255.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if img.mode == "F":
            top = max(1.0, float(arr.max()))
        arr = np.clip(arr / top, 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2).astype(np.float32)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white, as a viewer shows it, instead of dropping alpha to black.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    img = img.convert("RGB")  # greyscale, palette, CMYK, YCbCr, ...
    return np.asarray(img, dtype=np.float32) / 255.0


def load_image(path_or_file: PathOrFile, max_size: int | None = None) -> torch.Tensor:
    """Load an image file as an RGB tensor.

    Inputs:
    - path_or_file: a path, an open binary file, or the file's bytes.
    - max_size: if given, the long side is shrunk to at most this many pixels (aspect kept).
    Returns: float32 tensor (1, 3, H, W) in [0, 1]. EXIF orientation is applied.
    Raises ImageError for a missing, non-image, corrupt or too small (< 32 px) file.
    """
    name = _source_name(path_or_file)
    img = _open(path_or_file)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not make a good picture unreadable
        pass
    w, h = img.size
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{name}: image is {w}x{h} px; each side must be at least {MIN_SIDE} px")
    tensor = torch.from_numpy(_to_rgb_array(img)).permute(2, 0, 1).unsqueeze(0).contiguous()
    if max_size is not None and max(h, w) > max_size:
        tensor = resize(tensor, max_size)
    return tensor


def _check_image_shape(tensor: torch.Tensor, what: str) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.dim() not in (3, 4):
        shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"{what}: expected an image tensor (3, H, W) or (N, 3, H, W), got {shape}")
    if tensor.shape[-3] not in (1, 3):
        raise ValueError(f"{what}: expected 1 or 3 channels, got shape {tuple(tensor.shape)}")


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """The first image of a (N, 3, H, W) or (3, H, W) tensor in [0, 1] as a PIL RGB image."""
    _check_image_shape(tensor, "to_pil")
    img = tensor.detach()[0] if tensor.dim() == 4 else tensor.detach()
    img = img.float().clamp(0, 1).expand(3, -1, -1)
    arr = (img.permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


def save_image(tensor: torch.Tensor, path: str | os.PathLike) -> Path:
    """Save the first image of a tensor in [0, 1]; the format follows the file suffix. Returns the path."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: unknown image suffix {path.suffix!r}; use one of {sorted(IMAGE_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(tensor).save(path)
    return path


def target_size(height: int, width: int, size: int | tuple[int, int]) -> tuple[int, int]:
    """(H, W) after resizing so the long side is ``size`` (aspect kept), or ``size`` itself if a pair."""
    if isinstance(size, tuple):
        return int(size[0]), int(size[1])
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(tensor: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize (N, C, H, W) images: ``size`` is the long side (aspect kept) or an explicit (H, W).

    Uses antialiased bilinear interpolation, so shrinking does not alias.
    """
    _check_image_shape(tensor, "resize")
    h, w = target_size(tensor.shape[-2], tensor.shape[-1], size)
    if (h, w) == tuple(tensor.shape[-2:]):
        return tensor
    batch = tensor if tensor.dim() == 4 else tensor.unsqueeze(0)
    out = F.interpolate(batch, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    out = out.clamp(0, 1)
    return out if tensor.dim() == 4 else out[0]


def dither(image: torch.Tensor, seed: int, grey_levels: float = 1.0) -> torch.Tensor:
    """The image plus seeded uniform noise of ``grey_levels`` 8-bit grey levels peak to peak (default: ±1/2 grey
    level), clamped to [0, 1]: a start that differs from ``image`` by less than its 8-bit rounding. Runs from such
    starts show how far rounding alone moves a result, the yardstick for computations that round differently.

    Inputs: image: (N, C, H, W) or (C, H, W) in [0, 1]; seed: seeds the noise (drawn on the CPU, so the same on
    every device). Returns: a tensor of the image's shape, dtype and device.
    """
    noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(seed)) - 0.5
    return (image + (noise * grey_levels / 255).to(image.device, image.dtype)).clamp(0, 1)


# --- the bundled sample images ----------------------------------------------------------------


def images_dir() -> Path:
    """The folder of bundled sample images: ``NSTLAB_IMAGES`` if set, else the copy an installed package
    carries (``nstlab/sample_images``), else the checkout's ``images/`` (an editable install, a clone)."""
    env = os.environ.get("NSTLAB_IMAGES")
    package = Path(__file__).resolve().parent
    candidates = [Path(env)] if env else [package / "sample_images", package.parent / "images"]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise ImageError(
        f"{candidates[-1]}: sample image folder not found; reinstall nstlab (pip install .) or set "
        "NSTLAB_IMAGES to a folder with content/ and style/"
    )


def _registry(kind: str) -> dict[str, Path]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    folder = images_dir() / kind
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }


def list_images(kind: str) -> list[str]:
    """Names of the bundled ``"content"`` or ``"style"`` images (file names without suffix)."""
    return list(_registry(kind))


def sample_image_path(name: str) -> Path:
    """Path of a bundled image, looked up by name in content/ then style/."""
    for kind in KINDS:
        found = _registry(kind).get(name)
        if found is not None:
            return found
    known = ", ".join(list_images("content") + list_images("style"))
    raise ImageError(f"no bundled image named {name!r}; known images: {known}")


def sample_image(name: str, max_size: int | None = None) -> torch.Tensor:
    """Load a bundled sample image by name, e.g. ``sample_image("tower_bridge", 256)`` -> (1, 3, H, W)."""
    return load_image(sample_image_path(name), max_size=max_size)


def as_image(image: torch.Tensor | PathOrFile, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """A tensor, a path, or the name of a bundled image -> (1, 3, H, W) float tensor in [0, 1].

    Tensors pass through (a (3, H, W) tensor gets a batch axis, one channel becomes three);
    ``size``, if given, resizes the result (long side, or (H, W)) as :func:`resize` does.
    """
    if isinstance(image, torch.Tensor):
        _check_image_shape(image, "image")
        tensor = image if image.dim() == 4 else image.unsqueeze(0)
        tensor = tensor.float().expand(-1, 3, -1, -1) if tensor.shape[1] == 1 else tensor.float()
    elif isinstance(image, str) and not Path(image).exists() and Path(image).suffix == "":
        tensor = sample_image(image)
    else:
        tensor = load_image(image)
    if size is not None:
        tensor = resize(tensor, size)
    return tensor
