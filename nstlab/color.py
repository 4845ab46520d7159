"""Colour tools for "Preserving Color in Neural Artistic Style Transfer" (Gatys et al., 2016) — textbook layer.

Two methods: style transfer on the luminance only (YIQ space; the content's I and Q are put back
afterwards), and linear colour transfer x' = A (x - mu_s) + mu_t that gives one image the mean and
colour covariance of another (usually the style image recoloured to the content's colours, before
style transfer). Images are (N, 3, H, W) RGB floats in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch

YIQ_FROM_RGB = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.59590059, -0.27455667, -0.32134392],
        [0.21153661, -0.52273617, 0.31119955],
    ],
    dtype=torch.float64,
)
"""RGB -> YIQ matrix, the same as ``skimage.color.colorconv.yiq_from_rgb``."""
RGB_FROM_YIQ = torch.linalg.inv(YIQ_FROM_RGB)
"""Its inverse (as skimage's ``rgb_from_yiq``)."""

COLOR_MODES = ("cholesky", "image_analogies", "sym")
COLOR_MODE_ALIASES = {"pca": "image_analogies"}
"""Older names of the modes, still accepted: "pca" was the Image Analogies map's name before it was named for what it
computes (symmetric square roots, no principal axes)."""


def _check_batch(fn: str, name: str, img: object, channels: tuple[int, ...] = (3,)) -> None:
    if not isinstance(img, torch.Tensor):
        raise ValueError(f"{fn}: {name} must be a torch.Tensor, got {type(img).__name__}")
    if img.dim() != 4 or img.shape[1] not in channels:
        want = " or ".join(str(c) for c in channels)
        raise ValueError(f"{fn}: {name} must be (N, {want}, H, W), got shape {tuple(img.shape)}")
    if not img.is_floating_point():
        raise ValueError(f"{fn}: {name} must be a floating-point tensor, got dtype {img.dtype}")


def _check_batch_pair(fn: str, a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    """``b`` must have ``a``'s batch size or batch 1, and ``a``'s dtype."""
    if b.shape[0] not in (1, a.shape[0]) or a.dtype != b.dtype:
        raise ValueError(
            f"{fn}: {a_name} has shape {tuple(a.shape)} ({a.dtype}) but {b_name} has shape "
            f"{tuple(b.shape)} ({b.dtype}); {b_name} needs batch 1 or {a.shape[0]} "
            "and the same dtype"
        )


def _apply_matrix(m: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(dtype=img.dtype, device=img.device), img)


def rgb_to_yiq(img: torch.Tensor) -> torch.Tensor:
    """RGB -> YIQ (as ``skimage.color.rgb2yiq``).

    Inputs:
    - img: (N, 3, H, W) RGB.
    Returns:
    - (N, 3, H, W) YIQ: Y the luminance, I and Q the chrominance.
    """
    _check_batch("rgb_to_yiq", "img", img)
    return _apply_matrix(YIQ_FROM_RGB, img)


def yiq_to_rgb(img: torch.Tensor) -> torch.Tensor:
    """YIQ -> RGB (as ``skimage.color.yiq2rgb``), not clamped.

    Inputs:
    - img: (N, 3, H, W) YIQ.
    Returns:
    - (N, 3, H, W) RGB.
    """
    _check_batch("yiq_to_rgb", "img", img)
    return _apply_matrix(RGB_FROM_YIQ, img)


def luminance(img: torch.Tensor) -> torch.Tensor:
    """Luminance Y = 0.299 R + 0.587 G + 0.114 B (the Y of YIQ).

    Inputs:
    - img: (N, 3, H, W) RGB.
    Returns:
    - (N, 1, H, W).
    """
    _check_batch("luminance", "img", img)
    w = YIQ_FROM_RGB[0].to(dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
    return (img * w).sum(dim=1, keepdim=True)


def luminance_only_inputs(
    content: torch.Tensor, style: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two grey inputs of luminance-only style transfer.

    The style luminance is matched to the content's: L_s' = sd_c / sd_s (L_s - mu_s) + mu_c, with
    per-image means and population standard deviations. It is not clamped (so the statistics
    match exactly) and may leave [0, 1] slightly.

    Inputs:
    - content: (N, 3, H, W) RGB; style: (N or 1, 3, Hs, Ws) RGB, same dtype.
    Returns:
    - (content_lum_rgb (N, 3, H, W), style_lum_rgb (N, 3, Hs, Ws)): luminances repeated to 3
      identical channels, ready for VGG.
    """
    fn = "luminance_only_inputs"
    _check_batch(fn, "content", content)
    _check_batch(fn, "style", style)
    _check_batch_pair(fn, "content", content, "style", style)
    yc, ys = luminance(content), luminance(style)
    mu_c = yc.mean(dim=(1, 2, 3), keepdim=True)
    sd_c = yc.std(dim=(1, 2, 3), keepdim=True, correction=0)
    mu_s = ys.mean(dim=(1, 2, 3), keepdim=True)
    sd_s = ys.std(dim=(1, 2, 3), keepdim=True, correction=0)
    ys_matched = (ys - mu_s) / sd_s.clamp_min(1e-12) * sd_c + mu_c
    return yc.repeat(1, 3, 1, 1), ys_matched.repeat(1, 3, 1, 1)


def recombine_luminance(
    stylized: torch.Tensor, content: torch.Tensor, clamp: bool = True
) -> torch.Tensor:
    """Luminance of the stylised image + I, Q of the content, back to RGB.

    Inputs:
    - stylized: (N, 3, H, W) RGB (its Y is used) or (N, 1, H, W) luminance.
    - content: (N or 1, 3, H, W) RGB, same H, W and dtype.
    - clamp: clamp the result to [0, 1].
    Returns:
    - (N, 3, H, W) RGB.
    """
    fn = "recombine_luminance"
    _check_batch(fn, "stylized", stylized, channels=(1, 3))
    _check_batch(fn, "content", content)
    _check_batch_pair(fn, "stylized", stylized, "content", content)
    if stylized.shape[-2:] != content.shape[-2:]:
        raise ValueError(
            f"{fn}: stylized has shape {tuple(stylized.shape)} but content has shape "
            f"{tuple(content.shape)}; H and W must match"
        )
    y = stylized if stylized.shape[1] == 1 else luminance(stylized)
    iq = rgb_to_yiq(content)[:, 1:].expand(y.shape[0], -1, -1, -1)
    rgb = yiq_to_rgb(torch.cat([y, iq], dim=1))
    return rgb.clamp(0.0, 1.0) if clamp else rgb


def transfer_luminance_only(
    stylize_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    content: torch.Tensor,
    style: torch.Tensor,
    clamp: bool = True,
) -> torch.Tensor:
    """Luminance-only style transfer: stylise the luminances, then restore the content's colours.

    = recombine_luminance(stylize_fn(*luminance_only_inputs(content, style)), content).

    Inputs:
    - stylize_fn: (content (N, 3, H, W), style (N, 3, Hs, Ws)) -> stylised (N, 3, H, W) tensor.
    - content: (N, 3, H, W) RGB; style: (N or 1, 3, Hs, Ws) RGB; clamp: clamp to [0, 1].
    Returns:
    - (N, 3, H, W) RGB with the stylised luminance and the content's I, Q.
    """
    if not callable(stylize_fn):
        raise ValueError(
            "transfer_luminance_only: stylize_fn must be callable, "
            f"got {type(stylize_fn).__name__}"
        )
    content_lum, style_lum = luminance_only_inputs(content, style)
    out = stylize_fn(content_lum, style_lum)
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            "transfer_luminance_only: stylize_fn must return a torch.Tensor, "
            f"got {type(out).__name__}"
        )
    return recombine_luminance(out, content, clamp=clamp)


# ----------------------------------------------------------------------------- colour transfer


def color_statistics(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean colour and the 3x3 colour covariance of each image, over its M = H*W pixels x_k:

    mu = 1/M sum_k x_k,   Sigma = 1/M sum_k (x_k - mu)(x_k - mu)^T.

    Inputs:
    - img: (N, 3, H, W) RGB.
    Returns:
    - mu (N, 3, 1), Sigma (N, 3, 3).
    """
    _check_batch("color_statistics", "img", img)
    x = img.flatten(2)  # (N, 3, M)
    mu = x.mean(dim=2, keepdim=True)
    return mu, (x - mu) @ (x - mu).mT / x.shape[2]


def symmetric_power(m: torch.Tensor, p: float) -> torch.Tensor:
    """m^p = Q diag(lambda^p) Q^T for symmetric positive (semi-)definite matrices m = Q diag(lambda) Q^T.

    m is symmetrised first ((m + m^T) / 2) and negative round-off eigenvalues are set to 0, so
    p = 0.5 gives the symmetric square root of a covariance matrix.

    Inputs:
    - m: (..., K, K) symmetric; p: the power (negative powers need m positive definite).
    Returns:
    - (..., K, K).
    """
    vals, vecs = torch.linalg.eigh(0.5 * (m + m.mT))
    return (vecs * vals.clamp_min(0.0).pow(p).unsqueeze(-2)) @ vecs.mT


def _transfer_matrix(cov_s: torch.Tensor, cov_t: torch.Tensor, mode: str) -> torch.Tensor:
    """A with A cov_s A^T = cov_t."""
    if mode == "cholesky":
        return torch.linalg.cholesky(cov_t) @ torch.linalg.inv(torch.linalg.cholesky(cov_s))
    if mode == "image_analogies":  # Hertzmann et al. (2001), Gatys et al.'s A_IA
        return symmetric_power(cov_t, 0.5) @ symmetric_power(cov_s, -0.5)
    half_s, inv_half_s = symmetric_power(cov_s, 0.5), symmetric_power(cov_s, -0.5)
    return inv_half_s @ symmetric_power(half_s @ cov_t @ half_s, 0.5) @ inv_half_s


def match_color_histogram(
    source: torch.Tensor,
    target: torch.Tensor,
    mode: str = "cholesky",
    clamp: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Recolour ``source`` so its RGB mean and 3x3 covariance equal ``target``'s (per image).

    x' = A (x - mu_s) + mu_t with A S_s A^T = S_t (S = colour covariance + eps I):
    - "cholesky": A = L_t L_s^-1 (L the Cholesky factors);
    - "image_analogies" (also "pca", its former name): A = S_t^1/2 S_s^-1/2 with symmetric square roots
      S^1/2 = Q L^1/2 Q^T (eigendecomposition): the Image Analogies form that Gatys et al. (2016, "Preserving
      Color") use besides Cholesky;
    - "sym": the symmetric solution A = S_s^-1/2 (S_s^1/2 S_t S_s^1/2)^1/2 S_s^-1/2.
    For colour-preserving style transfer recolour the style image: match_color_histogram(style,
    content). Computed in float64; returned in the source dtype.

    Inputs:
    - source: (N, 3, H, W) RGB; target: (N or 1, 3, Ht, Wt) RGB, same dtype.
    - clamp: clamp the result to [0, 1] (the statistics then match only approximately).
    Returns:
    - (N, 3, H, W) recoloured source.
    """
    fn = "match_color_histogram"
    mode = COLOR_MODE_ALIASES.get(mode, mode)
    if mode not in COLOR_MODES:
        raise ValueError(f"{fn}: mode must be one of {COLOR_MODES}, got {mode!r}")
    _check_batch(fn, "source", source)
    _check_batch(fn, "target", target)
    _check_batch_pair(fn, "source", source, "target", target)
    if not eps >= 0:
        raise ValueError(f"{fn}: eps must be >= 0, got {eps!r}")
    (mu_s, cov_s), (mu_t, cov_t) = color_statistics(source.double()), color_statistics(target.double())
    eye = eps * torch.eye(3, dtype=torch.float64, device=source.device)
    out = _transfer_matrix(cov_s + eye, cov_t + eye, mode) @ (source.double().flatten(2) - mu_s) + mu_t
    out = out.reshape(source.shape).to(source.dtype)
    return out.clamp(0.0, 1.0) if clamp else out
