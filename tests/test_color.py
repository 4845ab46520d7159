"""Tests for nstlab.color: YIQ against scikit-image, luminance-only transfer, colour matching."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from skimage import data, transform
from skimage.color import rgb2yiq, yiq2rgb

from nstlab.color import (
    color_statistics,
    luminance,
    luminance_only_inputs,
    match_color_histogram,
    recombine_luminance,
    rgb_to_yiq,
    transfer_luminance_only,
    yiq_to_rgb,
)

D = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _nchw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).double().numpy()


@functools.lru_cache(maxsize=None)
def _resized(name: str, size: tuple[int, int]) -> np.ndarray:
    return transform.resize(getattr(data, name)() / 255.0, size, anti_aliasing=True)


def _picture(name: str, size: tuple[int, int]) -> torch.Tensor:
    """A bundled scikit-image picture resized to (H, W), as (1, 3, H, W) float64 in [0, 1]."""
    return _nchw(_resized(name, size).copy())


def _astronaut(size: tuple[int, int] = (64, 64)) -> torch.Tensor:
    return _picture("astronaut", size)


def _coffee(size: tuple[int, int] = (64, 64)) -> torch.Tensor:
    return _picture("coffee", size)


def _stats(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image RGB mean (N, 3) and population covariance (N, 3, 3), in float64."""
    x = img.double().flatten(2)
    mu = x.mean(dim=2)
    c = x - mu[..., None]
    return mu, c @ c.mT / x.shape[2]


# ----------------------------------------------------------------------------- YIQ


@pytest.mark.parametrize("dtype", [torch.float32, D])
def test_yiq_matches_skimage(dtype):
    rand = torch.rand(1, 3, 9, 7, generator=_gen(1), dtype=D)
    for img in (rand, _astronaut()):
        ours = rgb_to_yiq(img.to(dtype))
        assert ours.dtype == dtype and ours.shape == img.shape
        np.testing.assert_allclose(_hwc(ours), rgb2yiq(_hwc(img)), atol=1e-5, rtol=0)
        yiq = rgb2yiq(_hwc(img))
        back = yiq_to_rgb(_nchw(yiq).to(dtype))
        np.testing.assert_allclose(_hwc(back), yiq2rgb(yiq), atol=1e-5, rtol=0)


def test_yiq_round_trip_and_batch():
    img = torch.rand(3, 3, 5, 4, generator=_gen(2), dtype=D)
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(img)), img)
    torch.testing.assert_close(rgb_to_yiq(img)[1:2], rgb_to_yiq(img[1:2]))


def test_luminance():
    img = torch.rand(2, 3, 4, 5, generator=_gen(3), dtype=D)
    y = luminance(img)
    assert y.shape == (2, 1, 4, 5)
    torch.testing.assert_close(y, rgb_to_yiq(img)[:, :1])
    colours = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0]], dtype=D)
    pixels = colours.T.reshape(1, 3, 1, 4)  # red, green, blue, white side by side
    expected = torch.tensor([0.299, 0.587, 0.114, 1.0], dtype=D)
    torch.testing.assert_close(luminance(pixels).flatten(), expected)


def test_yiq_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*\(1, 4, 5, 5\)"):
        rgb_to_yiq(torch.rand(1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"\(3, 5, 5\)"):
        luminance(torch.rand(3, 5, 5))
    with pytest.raises(ValueError, match="floating"):
        yiq_to_rgb(torch.ones(1, 3, 2, 2, dtype=torch.uint8))


# ----------------------------------------------------------------------------- luminance only


def test_luminance_only_inputs_match_statistics():
    content = torch.cat([_astronaut(), 0.5 * _coffee()])  # (2, 3, 64, 64), different statistics
    style = _coffee((40, 60))  # another size, batch 1
    c_lum, s_lum = luminance_only_inputs(content, style)
    assert c_lum.shape == (2, 3, 64, 64) and s_lum.shape == (2, 3, 40, 60)
    for t in (c_lum, s_lum):  # grey RGB: three equal channels
        torch.testing.assert_close(t[:, 0], t[:, 1])
        torch.testing.assert_close(t[:, 0], t[:, 2])
    torch.testing.assert_close(c_lum[:, :1], luminance(content))
    yc, ys = c_lum[:, 0], s_lum[:, 0]
    torch.testing.assert_close(ys.mean(dim=(1, 2)), yc.mean(dim=(1, 2)))
    torch.testing.assert_close(ys.std(dim=(1, 2), correction=0), yc.std(dim=(1, 2), correction=0))
    # Matching is affine and increasing: the style's luminance pattern is kept.
    y_style = luminance(style)[0, 0]
    corr = torch.corrcoef(torch.stack([ys[1].flatten(), y_style.flatten()]))[0, 1]
    assert corr.item() == pytest.approx(1.0, abs=1e-12)


def test_transfer_with_identity_stylizer_returns_the_content():
    content = _astronaut()
    style = _coffee()
    calls = []

    def identity(c, s):
        calls.append((c, s))
        return c

    out = transfer_luminance_only(identity, content, style)
    torch.testing.assert_close(out, content)
    (c_arg, s_arg), = calls
    torch.testing.assert_close(c_arg, luminance(content).repeat(1, 3, 1, 1))
    assert s_arg.shape == style.shape


@pytest.mark.parametrize("one_channel", [False, True])
def test_transfer_keeps_content_chrominance_and_stylised_luminance(one_channel):
    content = _astronaut()
    style = _coffee()

    def darken(c, s):  # a stand-in "stylisation" that changes the luminance
        y = 0.6 * c + 0.2 * s.mean()
        return y[:, :1] if one_channel else y

    out = transfer_luminance_only(darken, content, style, clamp=False)
    c_lum, s_lum = luminance_only_inputs(content, style)
    yiq_out, yiq_content = rgb_to_yiq(out), rgb_to_yiq(content)
    torch.testing.assert_close(yiq_out[:, 1:], yiq_content[:, 1:])
    torch.testing.assert_close(yiq_out[:, :1], darken(c_lum, s_lum)[:, :1])
    # Clamped (the default) stays in [0, 1] and equals the unclamped result where that is in gamut.
    clamped = transfer_luminance_only(darken, content, style)
    assert clamped.min() >= 0 and clamped.max() <= 1
    torch.testing.assert_close(clamped, out.clamp(0, 1))


def test_recombine_luminance_broadcasts_content():
    content = _astronaut()
    stylized = torch.rand(2, 3, 64, 64, generator=_gen(4), dtype=D)
    out = recombine_luminance(stylized, content, clamp=False)
    assert out.shape == (2, 3, 64, 64)
    content_iq = rgb_to_yiq(content)[:, 1:].expand(2, -1, -1, -1)
    torch.testing.assert_close(rgb_to_yiq(out)[:, 1:], content_iq)
    torch.testing.assert_close(luminance(out), luminance(stylized))


def test_luminance_transfer_bad_input():
    content = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"\(1, 3, 4, 4\).*\(1, 3, 8, 8\)"):
        recombine_luminance(torch.rand(1, 3, 4, 4), content)
    with pytest.raises(ValueError, match=r"\(2, 3, 8, 8\).*\(3, 3, 8, 8\)"):
        luminance_only_inputs(torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8))
    with pytest.raises(ValueError, match="float64"):
        luminance_only_inputs(content, content.double())
    with pytest.raises(ValueError, match="callable"):
        transfer_luminance_only(None, content, content)
    with pytest.raises(ValueError, match="must return a torch.Tensor"):
        transfer_luminance_only(lambda c, s: c.numpy(), content, content)


# ----------------------------------------------------------------------------- colour matching


@pytest.mark.parametrize("mode", ["cholesky", "image_analogies", "sym"])
@pytest.mark.parametrize("dtype", [torch.float32, D])
def test_match_color_histogram_matches_mean_and_covariance(mode, dtype):
    source = torch.cat([_astronaut(), torch.rand(1, 3, 64, 64, generator=_gen(5), dtype=D) ** 2])
    target = torch.cat([_coffee((40, 60)), _astronaut((40, 60))])  # another size, per-image targets
    for tgt in (target, target[:1]):
        out = match_color_histogram(source.to(dtype), tgt.to(dtype), mode, clamp=False)
        assert out.shape == source.shape and out.dtype == dtype
        mu_o, cov_o = _stats(out)
        mu_t, cov_t = _stats(tgt.to(dtype).expand(2, -1, -1, -1))
        torch.testing.assert_close(mu_o, mu_t, atol=1e-4, rtol=0)
        torch.testing.assert_close(cov_o, cov_t, atol=1e-4, rtol=0)
    # Clamped output is a valid image.
    clamped = match_color_histogram(source.to(dtype), target.to(dtype), mode)
    assert clamped.min() >= 0 and clamped.max() <= 1


def _recovered_matrix(source: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The A of out = A (source - mu_s) + b, by least squares."""
    s = source.flatten(2)[0]
    o = out.flatten(2)[0]
    cs = s - s.mean(dim=1, keepdim=True)
    co = o - o.mean(dim=1, keepdim=True)
    return torch.linalg.lstsq(cs.T, co.T).solution.T


def test_match_color_histogram_mode_structure():
    source, target = _astronaut(), _coffee()
    a_chol, a_ia, a_sym = (
        _recovered_matrix(source, match_color_histogram(source, target, mode, clamp=False))
        for mode in ("cholesky", "image_analogies", "sym")
    )
    # Cholesky: L_t L_s^-1 is lower triangular. Sym: A = A^T (and positive definite).
    torch.testing.assert_close(a_chol, a_chol.tril(), atol=1e-9, rtol=0)
    torch.testing.assert_close(a_sym, a_sym.T, atol=1e-9, rtol=0)
    assert (torch.linalg.eigvalsh(a_sym) > 0).all()
    # Image Analogies: A = S_t^1/2 S_s^-1/2, so A S_s^1/2 is the symmetric S_t^1/2.
    def sqrt_cov(img):
        x = img.flatten(2)[0]
        x = x - x.mean(dim=1, keepdim=True)
        val, vec = torch.linalg.eigh(x @ x.T / x.shape[1])
        return vec @ torch.diag(val.sqrt()) @ vec.T

    torch.testing.assert_close(a_ia @ sqrt_cov(source), sqrt_cov(target), atol=1e-6, rtol=0)
    # Three different solutions of the same equation A S_s A^T = S_t.
    assert (a_chol - a_sym).abs().max() > 1e-2 and (a_ia - a_sym).abs().max() > 1e-2


@pytest.mark.parametrize("mode", ["cholesky", "image_analogies", "sym"])
def test_match_color_histogram_to_itself_is_identity(mode):
    img = _astronaut()
    out = match_color_histogram(img, img, mode, clamp=False)
    torch.testing.assert_close(out, img, atol=1e-6, rtol=0)


def test_pca_is_the_former_name_of_image_analogies():
    source, target = _astronaut(), _coffee()
    torch.testing.assert_close(match_color_histogram(source, target, "pca"),
                               match_color_histogram(source, target, "image_analogies"), rtol=0, atol=0)


def test_match_color_histogram_bad_input():
    img = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"'cholesky', 'image_analogies', 'sym'.*'lab'"):
        match_color_histogram(img, img, mode="lab")
    with pytest.raises(ValueError, match=r"\(2, 3, 8, 8\).*\(3, 3, 8, 8\)"):
        match_color_histogram(img, torch.rand(3, 3, 8, 8))
    with pytest.raises(ValueError, match="float64"):
        match_color_histogram(img, img.double())
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 8\)"):
        match_color_histogram(img[:, :1], img)


def test_color_statistics_by_hand_and_against_numpy():
    img = torch.tensor([[[[0.0, 1.0]], [[0.0, 1.0]], [[1.0, 1.0]]]])  # two pixels: (0, 0, 1) and (1, 1, 1)
    mu, cov = color_statistics(img)
    assert torch.equal(mu, torch.tensor([[[0.5], [0.5], [1.0]]]))
    assert torch.equal(cov, torch.tensor([[[0.25, 0.25, 0.0], [0.25, 0.25, 0.0], [0.0, 0.0, 0.0]]]))
    batch = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mu, cov = color_statistics(batch)
    for n in range(2):
        pixels = batch[n].reshape(3, -1).numpy()
        assert np.allclose(mu[n, :, 0].numpy(), pixels.mean(axis=1))
        assert np.allclose(cov[n].numpy(), np.cov(pixels, bias=True))
    with pytest.raises(ValueError, match="color_statistics"):
        color_statistics(torch.rand(1, 4, 2, 2))
