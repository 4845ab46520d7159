"""The ImageNet VGG19 file: where it lives, whether it is intact, and fetching it — textbook layer.

torchvision names its files after their contents: ``vgg19-dcbb9e9d.pth`` is a file whose SHA-256
starts with ``dcbb9e9d``. A file whose name carries such a prefix is used only if its bytes match
it (:func:`hash_problem`). :func:`download` never leaves a partial or wrong file where nstlab would
load it: it writes a hidden temporary file in the target folder, checks it, then renames it.

``NSTLAB_WEIGHTS_URL`` replaces torchvision's address; it is meant for tests (a local server), not
for users.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import torch
from torchvision.models import VGG19_Weights

if TYPE_CHECKING:
    from tqdm import tqdm

IMAGENET_URL = VGG19_Weights.IMAGENET1K_V1.url
"""torchvision's ImageNet VGG19, 548 MB."""
URL_VARIABLE = "NSTLAB_WEIGHTS_URL"
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
"""The SHA-256 prefix in a file name such as ``vgg19-dcbb9e9d.pth``."""
CHUNK = 1 << 20
_digests: dict[tuple[str, int, int], str] = {}
"""SHA-256 per (resolved path, size, mtime in ns): a 548 MB file is hashed once per process."""


class WeightsUnavailableError(RuntimeError):
    """The requested VGG19 weights could not be loaded or fetched; the message says how to fix it."""


def imagenet_url() -> str:
    """Where the ImageNet VGG19 file is downloaded from: ``NSTLAB_WEIGHTS_URL`` (tests) or torchvision's."""
    return os.environ.get(URL_VARIABLE, "").strip() or IMAGENET_URL


def file_name(url: str) -> str:
    """The file name at the end of a URL, e.g. ``vgg19-dcbb9e9d.pth``."""
    return url.rsplit("/", 1)[-1]


def imagenet_checkpoint_path() -> Path:
    """Where torch hub keeps (or will keep) the ImageNet VGG19 file, and where the course looks for it."""
    return download_target()


def hash_prefix(name: str) -> str | None:
    """The SHA-256 prefix a file name carries (``"dcbb9e9d"`` for ``vgg19-dcbb9e9d.pth``), or None."""
    found = HASH_IN_NAME.search(name)
    return found.group(1) if found else None


def sha256(path: str | os.PathLike) -> str:
    """The file's SHA-256 in hex; computed once per file per process (keyed by path, size and mtime)."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        _digests[key] = digest.hexdigest()
    return _digests[key]


def _remember(path: Path, digest: str) -> None:
    """Record the digest of a file just written, so that loading it does not hash it again."""
    stat = path.stat()
    _digests[(str(path.resolve()), stat.st_size, stat.st_mtime_ns)] = digest


def hash_problem(path: str | os.PathLike) -> str | None:
    """None if the file's SHA-256 starts with the prefix in its name (or the name has none), else why not."""
    expected = hash_prefix(Path(path).name)
    if expected is None:
        return None
    digest = sha256(path)
    if digest.startswith(expected):
        return None
    return f"its SHA-256 starts {digest[:len(expected)]}, its name says {expected}: the file is corrupt or incomplete"


def is_verified(path: Path) -> bool:
    """True if ``path`` is a file whose SHA-256 matches the prefix in its name."""
    return path.is_file() and hash_problem(path) is None


def download_target(to: str | os.PathLike | None = None, url: str | None = None) -> Path:
    """Where :func:`download` puts the file: the torch hub cache, or the folder ``to``."""
    folder = Path(to) if to is not None else Path(torch.hub.get_dir()) / "checkpoints"
    return folder / file_name(url or imagenet_url())


def probe(url: str | None = None, timeout: float = 10.0) -> str | None:
    """None if ``url`` (default :func:`imagenet_url`) answers a HEAD request, else the error as one line."""
    request = urllib.request.Request(url or imagenet_url(), method="HEAD", headers={"User-Agent": "nstlab"})
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except (OSError, HTTPException) as err:  # URLError, HTTPError and timeouts are OSErrors
        return _one_line(err)


def _progress_bar(total: int | None, name: str, enabled: bool) -> tqdm:
    """A tqdm byte counter (a widget in Jupyter)."""
    from tqdm.auto import tqdm as auto_tqdm

    return auto_tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled)


def _fetch(url: str, out: BinaryIO, progress: bool, timeout: float) -> str:
    """Stream ``url`` into ``out``; returns the SHA-256 of what arrived. Raises on a short or failed read."""
    request = urllib.request.Request(url, headers={"User-Agent": "nstlab"})
    digest, received = hashlib.sha256(), 0
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with _progress_bar(total, file_name(url), progress) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise WeightsUnavailableError(f"the download stopped after {received} of {total} bytes")
    return digest.hexdigest()


def download(
    to: str | os.PathLike | None = None, url: str | None = None, progress: bool = True, timeout: float = 30.0
) -> Path:
    """Fetch the ImageNet VGG19 file into the torch hub cache, or into the folder ``to``; returns its path.

    A file already there whose hash matches its name is kept. The download goes to a hidden
    temporary file in the same folder, is checked against the SHA-256 prefix of its name, and only
    then renamed into place; on any failure (or Ctrl-C) the temporary file is removed and nothing
    else changes. Raises WeightsUnavailableError saying what went wrong.
    """
    url = url or imagenet_url()
    name = file_name(url)
    expected = hash_prefix(name)
    if expected is None:
        raise WeightsUnavailableError(f"{url}: the file name carries no SHA-256 prefix to check the download against")
    target = download_target(to, url)
    if is_verified(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _fetch(url, out, progress, timeout)
        if not digest.startswith(expected):
            raise WeightsUnavailableError(f"its SHA-256 starts {digest[:len(expected)]}, its name says {expected}")
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a shared copy must be readable by all
        os.replace(temporary, target)
    except BaseException as err:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(err, (OSError, HTTPException, WeightsUnavailableError)):
            raise WeightsUnavailableError(f"downloading {url} failed: {_one_line(err)}") from None
        raise
    _remember(target, digest)
    return target


def _one_line(err: BaseException) -> str:
    """``"URLError: <urlopen error ...>"`` (our own errors without their class name)."""
    text = " ".join(str(err).split())
    return text if isinstance(err, WeightsUnavailableError) else f"{type(err).__name__}: {text}"
