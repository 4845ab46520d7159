"""Structural similarity (SSIM) of Wang et al. (2004), differentiable, for (N, C, H, W) batches.

Layer 1 (textbook): the Gaussian window is a depthwise convolution. The engine's faster separable
filter (``nstlab._kernels``) is held equal to it by tests/test_kernels.py.

Gaussian-weighted local statistics (window 11, sigma 1.5) and population covariances, as in the
paper. The window is applied as a 'valid' convolution (no padding), so the SSIM map is smaller than
the image by ``window_size - 1``; its mean equals
``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1.0)``, which crops the same border before averaging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_REDUCTIONS = ("mean", "none")


def gaussian_window(
    window_size: int = 11,
    sigma: float = 1.5,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The 1-D Gaussian window exp(-t^2 / (2 sigma^2)), t = -r..r, normalised to sum 1.

    Inputs:
    - window_size: odd number of taps, 2r + 1.
    - sigma: standard deviation in pixels (> 0).
    Returns:
    - (window_size,) tensor of dtype ``dtype``.
    """
    if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1:
        raise ValueError(
            f"gaussian_window: window_size must be a positive int, got {window_size!r}"
        )
    if window_size % 2 != 1:
        raise ValueError(f"gaussian_window: window_size must be odd, got {window_size}")
    if not sigma > 0:
        raise ValueError(f"gaussian_window: sigma must be > 0, got {sigma!r}")
    r = window_size // 2
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    w = torch.exp(-(t**2) / (2.0 * float(sigma) ** 2))
    return (w / w.sum()).to(dtype=dtype, device=device)


def _check_images(x: torch.Tensor, y: torch.Tensor, window_size: int) -> None:
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"ssim: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"ssim: {name} must be 4-D (N, C, H, W), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"ssim: {name} must be a floating-point tensor, got dtype {t.dtype}")
    if x.shape != y.shape:
        raise ValueError(f"ssim: x has shape {tuple(x.shape)} but y has shape {tuple(y.shape)}")
    if x.dtype != y.dtype:
        raise ValueError(f"ssim: x has dtype {x.dtype} but y has dtype {y.dtype}")
    h, w = x.shape[-2:]
    if h < window_size or w < window_size:
        raise ValueError(
            f"ssim: images of shape {tuple(x.shape)} are smaller than the "
            f"{window_size}x{window_size} window; H and W must be >= window_size"
        )


def gaussian_filter(maps: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Correlate every map with the 2-D Gaussian window w w^T, 'valid' (no padding): a depthwise convolution.

    Inputs:
    - maps: (N, C, H, W); window: (k,) 1-D taps (:func:`gaussian_window`), k <= H, W.
    Returns:
    - (N, C, H - k + 1, W - k + 1).
    """
    c, k = maps.shape[1], window.numel()
    kernel = torch.outer(window, window).to(maps)  # (k, k), sums to 1
    return F.conv2d(maps, kernel.expand(c, 1, k, k), groups=c)  # each channel filtered on its own


def local_statistics(
    x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian-weighted local means, variances and covariance of two batches, per channel.

    mu = w * x, sigma^2 = w * x^2 - mu^2, sigma_xy = w * (x y) - mu_x mu_y (population statistics),
    with w the 2-D Gaussian window applied as a 'valid' convolution.

    Inputs:
    - x, y: (N, C, H, W) float tensors of the same shape and dtype, H, W >= window_size.
    - window_size: odd number of Gaussian taps; sigma: its standard deviation.
    Returns:
    - (mu_x, mu_y, var_x, var_y, cov_xy), each (N, C, H - window_size + 1, W - window_size + 1).
    """
    window = gaussian_window(window_size, sigma, dtype=torch.float64)
    _check_images(x, y, window_size)
    mu_x, mu_y = gaussian_filter(x, window), gaussian_filter(y, window)
    var_x = gaussian_filter(x * x, window) - mu_x * mu_x
    var_y = gaussian_filter(y * y, window) - mu_y * mu_y
    cov_xy = gaussian_filter(x * y, window) - mu_x * mu_y
    return mu_x, mu_y, var_x, var_y, cov_xy


def ssim_map(
    mu_x: torch.Tensor,
    mu_y: torch.Tensor,
    var_x: torch.Tensor,
    var_y: torch.Tensor,
    cov_xy: torch.Tensor,
    c1: float,
    c2: float,
) -> torch.Tensor:
    """SSIM at every position from the local statistics (:func:`local_statistics`); all maps of one shape."""
    num = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return num / den


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """SSIM between two batches, per channel, with a Gaussian window.

    SSIM = (2 mu_x mu_y + c1)(2 s_xy + c2) / ((mu_x^2 + mu_y^2 + c1)(s_x^2 + s_y^2 + c2)),
    c1 = (k1 L)^2, c2 = (k2 L)^2, L = data_range. Computed in the input dtype; differentiable.

    Inputs:
    - x, y: (N, C, H, W) float tensors of the same shape and dtype, H, W >= window_size.
    - window_size: odd number of Gaussian taps; sigma: its standard deviation.
    - reduction: "mean" or "none".
    Returns:
    - "mean": (N,) SSIM averaged over channels and the valid map (skimage's ``mssim``).
    - "none": the SSIM map, (N, C, H - window_size + 1, W - window_size + 1).
    """
    if reduction not in SSIM_REDUCTIONS:
        raise ValueError(f"ssim: reduction must be one of {SSIM_REDUCTIONS}, got {reduction!r}")
    if not data_range > 0:
        raise ValueError(f"ssim: data_range must be > 0, got {data_range!r}")
    if k1 < 0 or k2 < 0:
        raise ValueError(f"ssim: k1 and k2 must be >= 0, got k1={k1!r}, k2={k2!r}")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    index = ssim_map(*local_statistics(x, y, window_size, sigma), c1, c2)
    return index if reduction == "none" else index.mean(dim=(1, 2, 3))
