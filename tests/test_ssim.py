"""Tests for nstlab.ssim: agreement with scikit-image, hand values, gradients, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data, transform
from skimage.metrics import structural_similarity

from nstlab.ssim import gaussian_window, local_statistics, ssim

D = torch.float64
SK_ARGS = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _sk_batch(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """skimage's mean SSIM per image of two (N, C, H, W) batches."""
    return np.array(
        [
            structural_similarity(a.numpy(), b.numpy(), channel_axis=0, **SK_ARGS)
            for a, b in zip(x.double(), y.double())
        ]
    )


def _natural(name: str, scale: float) -> torch.Tensor:
    """A bundled scikit-image picture, downsized, as (1, C, H, W) float64 in [0, 1]."""
    img = getattr(data, name)().astype(np.float64) / 255.0
    channel_axis = -1 if img.ndim == 3 else None
    img = transform.rescale(img, scale, channel_axis=channel_axis, anti_aliasing=True)
    t = torch.from_numpy(np.ascontiguousarray(img))
    return (t.permute(2, 0, 1) if t.dim() == 3 else t[None])[None]


@pytest.mark.parametrize("dtype, tol", [(D, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize("shape", [(2, 3, 32, 40), (1, 1, 11, 11), (3, 2, 17, 12)])
def test_matches_skimage_on_random_images(shape, dtype, tol):
    g = _gen(1)
    x = torch.rand(shape, generator=g, dtype=D)
    y = (0.6 * x + 0.4 * torch.rand(shape, generator=g, dtype=D)).to(dtype)
    x = x.to(dtype)
    ours = ssim(x, y)
    assert ours.shape == (shape[0],) and ours.dtype == dtype
    np.testing.assert_allclose(ours.double().numpy(), _sk_batch(x, y), atol=tol, rtol=0)


def test_matches_skimage_on_natural_images():
    g = _gen(2)
    astro = _natural("astronaut", 0.25)  # (1, 3, 128, 128)
    noisy = (astro + 0.08 * torch.randn(astro.shape, generator=g, dtype=D)).clamp(0, 1)
    darker = 0.7 * astro + 0.05
    camera = _natural("camera", 0.25)  # (1, 1, 128, 128)
    blurred = torch.from_numpy(
        transform.rescale(transform.rescale(camera[0, 0].numpy(), 0.5), 2.0)
    )[None, None]
    for x, y in [(astro, noisy), (astro, darker), (camera, blurred)]:
        for dtype in (D, torch.float32):
            ours = ssim(x.to(dtype), y.to(dtype))
            np.testing.assert_allclose(ours.double().numpy(), _sk_batch(x, y), atol=1e-4, rtol=0)
    # The pairs are genuinely different, not trivially similar.
    assert ssim(astro, noisy).item() < 0.9


def test_map_equals_skimage_full_map_without_its_border():
    g = _gen(3)
    x = torch.rand(1, 1, 20, 24, generator=g, dtype=D)
    y = torch.rand(1, 1, 20, 24, generator=g, dtype=D)
    _, full = structural_similarity(x[0, 0].numpy(), y[0, 0].numpy(), full=True, **SK_ARGS)
    ours = ssim(x, y, reduction="none")
    assert ours.shape == (1, 1, 10, 14)
    np.testing.assert_allclose(ours[0, 0].numpy(), full[5:-5, 5:-5], atol=1e-12)
    torch.testing.assert_close(ours.mean(dim=(1, 2, 3)), ssim(x, y))


def test_constant_images_hand_value():
    # Constant images: zero variances, so SSIM = (2ab + c1) / (a^2 + b^2 + c1).
    x = torch.full((1, 1, 12, 12), 0.2, dtype=D)
    y = torch.full((1, 1, 12, 12), 0.6, dtype=D)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    torch.testing.assert_close(ssim(x, y), torch.tensor([expected], dtype=D))
    # data_range enters through c1 = (k1 L)^2.
    c1 = (0.01 * 2.0) ** 2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    torch.testing.assert_close(ssim(x, y, data_range=2.0), torch.tensor([expected], dtype=D))


def test_identity_and_symmetry():
    g = _gen(4)
    x = torch.rand(2, 3, 16, 16, generator=g, dtype=D)
    y = torch.rand(2, 3, 16, 16, generator=g, dtype=D)
    torch.testing.assert_close(ssim(x, x), torch.ones(2, dtype=D))
    torch.testing.assert_close(ssim(x, x, reduction="none"), torch.ones(2, 3, 6, 6, dtype=D))
    torch.testing.assert_close(ssim(x, y), ssim(y, x))
    assert (ssim(x, y) < 0.5).all()


def test_batch_entries_are_independent():
    g = _gen(5)
    x = torch.rand(3, 2, 14, 14, generator=g)
    y = torch.rand(3, 2, 14, 14, generator=g)
    batched = ssim(x, y)
    singles = torch.cat([ssim(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, singles)


def test_gaussian_window():
    w = gaussian_window(11, 1.5, dtype=D)
    assert w.shape == (11,)
    torch.testing.assert_close(w.sum(), torch.tensor(1.0, dtype=D))
    torch.testing.assert_close(w, w.flip(0))
    # Neighbouring taps of exp(-t^2 / (2 sigma^2)): w(0) / w(1) = exp(1 / (2 sigma^2)).
    assert math.isclose((w[5] / w[6]).item(), math.exp(1 / (2 * 1.5**2)), rel_tol=1e-12)


@pytest.mark.parametrize("window_size, shape", [(11, (1, 1, 12, 13)), (5, (2, 2, 7, 8))])
def test_gradcheck(window_size, shape):
    g = _gen(6)
    x = torch.rand(shape, generator=g, dtype=D, requires_grad=True)
    y = torch.rand(shape, generator=g, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ssim(a, b, window_size=window_size), (x, y))


def test_bad_input():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"\(1, 3, 16, 16\).*\(1, 3, 16, 15\)"):
        ssim(x, torch.rand(1, 3, 16, 15))
    with pytest.raises(ValueError, match="dtype"):
        ssim(x, x.double())
    with pytest.raises(ValueError, match=r"4-D.*\(3, 16, 16\)"):
        ssim(x[0], x[0])
    with pytest.raises(ValueError, match=r"smaller than the 11x11 window"):
        ssim(torch.rand(1, 1, 10, 30), torch.rand(1, 1, 10, 30))
    with pytest.raises(ValueError, match="odd"):
        ssim(x, x, window_size=4)
    with pytest.raises(ValueError, match=r"'mean', 'none'.*'sum'"):
        ssim(x, x, reduction="sum")
    with pytest.raises(ValueError, match="floating"):
        ints = torch.ones(1, 1, 12, 12, dtype=torch.int64)
        ssim(ints, ints)


def test_local_statistics_at_one_position_by_hand():
    g = _gen(3)
    x, y = torch.rand(1, 2, 13, 14, generator=g, dtype=D), torch.rand(1, 2, 13, 14, generator=g, dtype=D)
    mu_x, mu_y, var_x, var_y, cov_xy = local_statistics(x, y, window_size=5, sigma=1.0)
    assert mu_x.shape == (1, 2, 9, 10)
    w = gaussian_window(5, 1.0, dtype=D)
    w2 = torch.outer(w, w)
    i, j, c = 4, 7, 1  # the window of output (i, j) covers rows i..i+4, columns j..j+4
    px, py = x[0, c, i : i + 5, j : j + 5], y[0, c, i : i + 5, j : j + 5]
    m_x, m_y = float((w2 * px).sum()), float((w2 * py).sum())
    assert float(mu_x[0, c, i, j]) == pytest.approx(m_x, rel=1e-12)
    assert float(mu_y[0, c, i, j]) == pytest.approx(m_y, rel=1e-12)
    assert float(var_x[0, c, i, j]) == pytest.approx(float((w2 * (px - m_x) ** 2).sum()), rel=1e-10)
    assert float(var_y[0, c, i, j]) == pytest.approx(float((w2 * (py - m_y) ** 2).sum()), rel=1e-10)
    assert float(cov_xy[0, c, i, j]) == pytest.approx(float((w2 * (px - m_x) * (py - m_y)).sum()), rel=1e-10)
