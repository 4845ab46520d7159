"""Structural similarity (SSIM) of Wang et al. (2004), differentiable, for (N, C, H, W) batches.

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


def local_statistics(
    x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian-weighted local means, variances and covariance of two batches, per channel.

    mu = w * x, sigma^2 = w * x^2 - mu^2, sigma_xy = w * (x y) - mu_x mu_y (population statistics),
    with w the 2-D Gaussian window applied as a 'valid' convolution, in one separable pass.

    Inputs:
    - x, y: (N, C, H, W) float tensors of the same shape and dtype, H, W >= window_size.
    - window_size: odd number of Gaussian taps; sigma: its standard deviation.
    Returns:
    - (mu_x, mu_y, var_x, var_y, cov_xy), each (N, C, H - window_size + 1, W - window_size + 1).
    """
    window = gaussian_window(window_size, sigma, dtype=torch.float64)
    _check_images(x, y, window_size)
    window = window.to(dtype=x.dtype, device=x.device)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # the five maps, filtered together
    mu_x, mu_y, e_xx, e_yy, e_xy = separable_filter(stack, window).split(x.shape[1], dim=1)
    return mu_x, mu_y, e_xx - mu_x * mu_x, e_yy - mu_y * mu_y, e_xy - mu_x * mu_y


def separable_filter(maps: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Correlate every map with the 2-D window ``outer(window, window)``, 'valid' (no padding).

    Done as two 1-D passes, along W then along H, each a depthwise convolution whose "channels" are
    all the rows (then all the columns) of all the maps, stored channels-last. This computes the same
    numbers as a depthwise 2-D convolution per map, but oneDNN's depthwise kernels want many
    channels: on the 2-core CPU it ran 2-3x faster, forward and backward, for 128-512 px maps
    (benchmarks/README.md).

    Inputs:
    - maps: (N, C, H, W); window: (k,) taps, k <= H, W.
    Returns:
    - (N, C, H - k + 1, W - k + 1), a strided view (no final copy).
    """
    n, c, h, w = maps.shape
    k = window.numel()
    ho, wo = h - k + 1, w - k + 1
    taps = window.view(1, 1, 1, k)
    # Along W: the N*C*H rows are the channels of a 1 x W image (memory: W x NCH).
    rows = maps.reshape(1, n * c * h, 1, w).contiguous(memory_format=torch.channels_last)
    along_w = F.conv2d(rows, taps.expand(n * c * h, 1, 1, k), groups=n * c * h)  # memory: W' x NCH
    # Along H: the N*C*W' columns are the channels of a 1 x H image (memory: H x NCW').
    by_column = along_w.permute(0, 2, 3, 1).reshape(wo, n, c, h).permute(3, 1, 2, 0).contiguous()
    columns = by_column.view(1, 1, h, n * c * wo).permute(0, 3, 1, 2)
    along_h = F.conv2d(columns, taps.expand(n * c * wo, 1, 1, k), groups=n * c * wo)  # memory: H' x NCW'
    return along_h.permute(0, 2, 3, 1).reshape(ho, n, c, wo).permute(1, 2, 0, 3)


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
    mu_x, mu_y, var_x, var_y, cov_xy = local_statistics(x, y, window_size, sigma)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    ssim_map = num / den
    if reduction == "none":
        return ssim_map
    return ssim_map.mean(dim=(1, 2, 3))
