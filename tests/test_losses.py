"""Tests for nstlab.losses: hand-computed values, gradients, batching, invariances, bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from nstlab.losses import (
    chained_gram,
    content_loss,
    gram_matrix,
    gram_to_unit_range,
    layer_weights,
    perceptual_distance,
    ssim_gram_factor,
    ssim_weighted_style_loss,
    style_grams,
    style_keys,
    style_layer_loss,
    style_loss,
    tv_loss,
)
from nstlab.ssim import ssim

D = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _t(values, dtype=D) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


# A 2-channel 2x2 map: f0 = [1, 2, 3, 4], f1 = [0, 1, 0, 1] when flattened.
FEAT = _t([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
# Its Gram by hand: <f0,f0> = 30, <f0,f1> = 2 + 4 = 6, <f1,f1> = 2.
GRAM = _t([[[30.0, 6.0], [6.0, 2.0]]])


def _feats(seed: int, n: int = 1, dtype=D, requires_grad: bool = False) -> dict[str, torch.Tensor]:
    """A small fake feature pyramid: a (n,4,8,8) -> b (n,6,4,4) -> c (n,5,4,4)."""
    g = _gen(seed)
    shapes = {"a": (n, 4, 8, 8), "b": (n, 6, 4, 4), "c": (n, 5, 4, 4)}
    return {
        k: torch.rand(s, generator=g, dtype=dtype).requires_grad_(requires_grad)
        for k, s in shapes.items()
    }


# ----------------------------------------------------------------------------- content_loss


def test_content_loss_hand_values():
    x = _t([[[[1.0, 2.0], [3.0, 4.0]]]])
    zero = torch.zeros_like(x)
    torch.testing.assert_close(content_loss(x, zero), _t(15.0))  # 1/2 (1 + 4 + 9 + 16)
    torch.testing.assert_close(content_loss(x, zero, reduction="mean"), _t(7.5))  # 30 / 4
    torch.testing.assert_close(content_loss(x, x), _t(0.0))


def test_content_loss_sums_over_batch_and_broadcasts_target():
    g = _gen(1)
    x = torch.rand(3, 4, 5, 5, generator=g, dtype=D)
    p = torch.rand(1, 4, 5, 5, generator=g, dtype=D)
    for reduction in ("sum_half", "mean"):
        total = content_loss(x, p, reduction)
        singles = sum(content_loss(x[i : i + 1], p, reduction) for i in range(3))
        torch.testing.assert_close(total, singles)
        torch.testing.assert_close(total, content_loss(x, p.expand(3, -1, -1, -1), reduction))


def test_content_loss_gradcheck():
    g = _gen(2)
    x = torch.rand(2, 3, 4, 4, generator=g, dtype=D, requires_grad=True)
    p = torch.rand(2, 3, 4, 4, generator=g, dtype=D)
    for reduction in ("sum_half", "mean"):
        assert torch.autograd.gradcheck(lambda a: content_loss(a, p, reduction), (x,))
    # d/dF 1/2 sum (F - P)^2 = F - P.
    content_loss(x, p).backward()
    torch.testing.assert_close(x.grad, (x - p).detach())


def test_content_loss_bad_input():
    x = torch.rand(1, 64, 8, 8)
    message = r"x_feat has shape \(1, 64, 8, 8\) but target_feat has shape \(1, 64, 4, 4\)"
    with pytest.raises(ValueError, match=message):
        content_loss(x, torch.rand(1, 64, 4, 4))
    with pytest.raises(ValueError, match=r"\(2, 64, 8, 8\).*\(3, 64, 8, 8\)"):
        content_loss(torch.rand(2, 64, 8, 8), torch.rand(3, 64, 8, 8))
    with pytest.raises(ValueError, match=r"float32.*float64"):
        content_loss(x, x.double())
    with pytest.raises(ValueError, match=r"'sum_half', 'mean'.*'sum'"):
        content_loss(x, x, reduction="sum")
    with pytest.raises(ValueError, match=r"4-D.*\(64, 8, 8\)"):
        content_loss(x[0], x[0])


# ----------------------------------------------------------------------------- Gram matrices


def test_gram_matrix_hand_values():
    torch.testing.assert_close(gram_matrix(FEAT), GRAM)
    torch.testing.assert_close(gram_matrix(FEAT, normalize="hw"), GRAM / 4)  # H*W = 4
    torch.testing.assert_close(gram_matrix(FEAT, normalize="chw"), GRAM / 8)  # C*H*W = 8
    # Activation shift s = 1: f0 + 1 = [2, 3, 4, 5], f1 + 1 = [1, 2, 1, 2].
    torch.testing.assert_close(gram_matrix(FEAT, shift=1.0), _t([[[54.0, 22.0], [22.0, 10.0]]]))


def test_gram_matrix_shape_symmetry_and_batch():
    g = _gen(3)
    f = torch.rand(3, 5, 4, 6, generator=g)
    gram = gram_matrix(f, shift=0.5)
    assert gram.shape == (3, 5, 5) and gram.dtype == torch.float32
    torch.testing.assert_close(gram, gram.transpose(1, 2))
    torch.testing.assert_close(gram[1:2], gram_matrix(f[1:2], shift=0.5))


def test_gram_matrix_gradcheck():
    g = _gen(4)
    f = torch.rand(2, 3, 3, 4, generator=g, dtype=D, requires_grad=True)
    for normalize in ("none", "hw", "chw"):
        assert torch.autograd.gradcheck(lambda a: gram_matrix(a, normalize, shift=1.0), (f,))


def test_gram_matrix_bad_input():
    with pytest.raises(ValueError, match=r"'none', 'hw', 'chw'.*'hwc'"):
        gram_matrix(FEAT, normalize="hwc")
    with pytest.raises(ValueError, match=r"4-D.*\(2, 2, 2\)"):
        gram_matrix(FEAT[0])


def test_chained_gram_of_a_map_with_itself_is_its_gram():
    g = _gen(5)
    f = torch.rand(2, 4, 5, 3, generator=g, dtype=D)
    for normalize in ("none", "hw", "chw"):
        for shift in (0.0, 1.0):
            torch.testing.assert_close(
                chained_gram(f, f, normalize, shift), gram_matrix(f, normalize, shift)
            )


def test_chained_gram_hand_values_upsamples_the_smaller_map():
    a = _t([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    b = _t([[[[2.0]], [[-1.0]]]])  # (1, 2, 1, 1): upsampled to constant 2x2 maps 2 and -1
    expected = _t([[[20.0, -10.0]]])  # 2 * (1 + 2 + 3 + 4), -1 * 10
    torch.testing.assert_close(chained_gram(a, b), expected)
    # The order does not matter; M is the larger map's H*W.
    torch.testing.assert_close(chained_gram(b, a), expected.transpose(1, 2))
    torch.testing.assert_close(chained_gram(a, b, normalize="hw"), expected / 4)
    torch.testing.assert_close(chained_gram(a, b, normalize="chw"), expected / (math.sqrt(2) * 4))
    # Shift s = 1: a + 1 = [2, 3, 4, 5], b + 1 = 3 and 0.
    torch.testing.assert_close(chained_gram(a, b, shift=1.0), _t([[[42.0, 0.0]]]))


@pytest.mark.parametrize("big_hw, small_hw", [((8, 6), (4, 3)), ((7, 5), (3, 2)), ((6, 6), (6, 3))])
@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_chained_gram_matches_explicit_bilinear_upsampling(big_hw, small_hw, shift):
    # chained_gram never builds the upsampled map (it works on the smaller grid): compare with doing so,
    # also for odd sizes (VGG's pooling rounds down) and an upsampling along one axis only.
    g = _gen(6)
    big = torch.rand(2, 3, *big_hw, generator=g, dtype=D, requires_grad=True)
    small = torch.rand(2, 4, *small_hw, generator=g, dtype=D, requires_grad=True)
    up = F.interpolate(small, size=big_hw, mode="bilinear", align_corners=False)
    expected = torch.einsum("nchw,ndhw->ncd", big + shift, up + shift)
    weights = torch.randn(expected.shape, generator=g, dtype=D)
    expected_grads = torch.autograd.grad((expected * weights).sum(), (big, small))
    for gram in (chained_gram(big, small, shift=shift), chained_gram(small, big, shift=shift).mT):
        torch.testing.assert_close(gram, expected)
        grads = torch.autograd.grad((gram * weights).sum(), (big, small))
        for got, want in zip(grads, expected_grads):
            torch.testing.assert_close(got, want)


def test_chained_gram_gradcheck():
    g = _gen(7)
    a = torch.rand(1, 2, 4, 4, generator=g, dtype=D, requires_grad=True)
    b = torch.rand(1, 3, 2, 2, generator=g, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: chained_gram(x, y, "chw", shift=1.0), (a, b))
    assert torch.autograd.gradgradcheck(lambda x, y: chained_gram(x, y, "chw", shift=1.0), (a, b))


def test_chained_gram_bad_input():
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\).*\(1, 3, 4, 4\)"):
        chained_gram(torch.rand(2, 3, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(1, 3, 4, 2\).*\(1, 3, 2, 4\).*neither"):
        chained_gram(torch.rand(1, 3, 4, 2), torch.rand(1, 3, 2, 4))
    with pytest.raises(ValueError, match="dtype|float64"):
        chained_gram(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4, dtype=D))


# ----------------------------------------------------------------------------- keys and weights


def test_style_keys():
    assert style_keys(["a", "b", "c"], chained=False) == ["a", "b", "c"]
    assert style_keys(["a", "b", "c"], chained=True) == [("a", "b"), ("b", "c")]
    with pytest.raises(ValueError, match="at least 2"):
        style_keys(["a"], chained=True)
    with pytest.raises(ValueError, match="empty"):
        style_keys([], chained=False)
    with pytest.raises(ValueError, match="string"):
        style_keys("conv1_1", chained=False)
    with pytest.raises(ValueError, match="duplicates"):
        style_keys(["a", "a"], chained=False)


def test_layer_weights():
    keys = ["a", "b", "c"]
    assert layer_weights(keys) == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    # w_i = 2^(N-i): 4, 2, 1, normalised by 7.
    assert layer_weights(keys, "geometric") == pytest.approx({"a": 4 / 7, "b": 2 / 7, "c": 1 / 7})
    chained = style_keys(keys, chained=True)
    w = layer_weights(chained, "geometric")
    assert list(w) == chained and w == pytest.approx({("a", "b"): 2 / 3, ("b", "c"): 1 / 3})
    for n in (1, 5, 16):
        w = layer_weights([f"l{i}" for i in range(n)], "geometric")
        assert sum(w.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"'uniform', 'geometric'.*'linear'"):
        layer_weights(keys, "linear")
    with pytest.raises(ValueError, match="empty"):
        layer_weights([])


def test_style_grams():
    feats = _feats(8)
    keys = ["a", ("a", "b"), ("b", "c")]
    grams = style_grams(feats, keys, shift=1.0)
    assert list(grams) == keys
    torch.testing.assert_close(grams["a"], gram_matrix(feats["a"], shift=1.0))
    torch.testing.assert_close(grams[("a", "b")], chained_gram(feats["a"], feats["b"], shift=1.0))
    assert grams[("b", "c")].shape == (1, 6, 5)
    with pytest.raises(ValueError, match=r"'zz'.*\['a', 'b', 'c'\]"):
        style_grams(feats, ["zz"])
    with pytest.raises(ValueError, match="style key"):
        style_grams(feats, [("a", "b", "c")])


# ----------------------------------------------------------------------------- style losses


def test_style_layer_loss_hand_values():
    zero = torch.zeros_like(GRAM)
    # 1 / (4 * 2 * 2 * 4^2) * (30^2 + 6^2 + 6^2 + 2^2) = 976 / 256.
    torch.testing.assert_close(style_layer_loss(GRAM, zero, 4), _t(976 / 256))
    torch.testing.assert_close(style_layer_loss(GRAM, GRAM, 4), _t(0.0))
    # Chained (Ca = 1, Cb = 2, M = 4): 1 / (4 * 1 * 2 * 16) * (20^2 + 10^2) = 500 / 128.
    chained = _t([[[20.0, -10.0]]])
    zero = torch.zeros_like(chained)
    torch.testing.assert_close(style_layer_loss(chained, zero, 4), _t(500 / 128))


def test_style_layer_loss_is_safe_for_huge_grams():
    g = _gen(9)
    gram = 1e20 * torch.rand(1, 8, 8, generator=g)
    target = torch.zeros_like(gram)
    assert torch.isinf((gram - target).pow(2).sum())  # the naive float32 sum overflows
    ours = style_layer_loss(gram, target, 1000)
    reference = (gram.double() ** 2).sum() / (4 * 8 * 8 * 1000**2)
    assert torch.isfinite(ours)
    assert math.isclose(ours.item(), reference.item(), rel_tol=1e-5)


def test_style_layer_loss_batch_sum_and_broadcast():
    g = _gen(10)
    gram = torch.rand(3, 4, 4, generator=g, dtype=D)
    target = torch.rand(1, 4, 4, generator=g, dtype=D)
    total = style_layer_loss(gram, target, 9)
    singles = sum(style_layer_loss(gram[i : i + 1], target, 9) for i in range(3))
    torch.testing.assert_close(total, singles)
    torch.testing.assert_close(total, style_layer_loss(gram, target.expand(3, -1, -1), 9))


def test_style_layer_loss_bad_input():
    with pytest.raises(ValueError, match=r"\(1, 4, 4\).*\(1, 3, 3\)"):
        style_layer_loss(torch.rand(1, 4, 4), torch.rand(1, 3, 3), 4)
    with pytest.raises(ValueError, match="dtype"):
        style_layer_loss(torch.rand(1, 4, 4), torch.rand(1, 4, 4, dtype=D), 4)
    with pytest.raises(ValueError, match="n_positions"):
        style_layer_loss(torch.rand(1, 4, 4), torch.rand(1, 4, 4), 0)
    with pytest.raises(ValueError, match=r"3-D.*\(1, 1, 4, 4\)"):
        style_layer_loss(torch.rand(1, 1, 4, 4), torch.rand(1, 4, 4), 4)


def test_style_loss_hand_value():
    zero = torch.zeros_like(GRAM)
    loss = style_loss({"x": FEAT}, {"x": zero}, {"x": 0.5})
    torch.testing.assert_close(loss, _t(0.5 * 976 / 256))


@pytest.mark.parametrize("chained", [False, True])
def test_style_loss_is_weighted_sum_of_layer_losses(chained):
    x_feats = _feats(11, n=2)
    targets = style_grams(_feats(12, n=1), style_keys(["a", "b", "c"], chained), shift=1.0)
    weights = layer_weights(list(targets), "geometric")
    expected = 0.0
    for key, target in targets.items():
        names = [key] if isinstance(key, str) else list(key)
        m = max(x_feats[n].shape[-2] * x_feats[n].shape[-1] for n in names)
        x_gram = style_grams(x_feats, [key], shift=1.0)[key]
        expected = expected + weights[key] * style_layer_loss(x_gram, target, m)
    torch.testing.assert_close(style_loss(x_feats, targets, weights, shift=1.0), expected)
    # Matching Grams give zero loss.
    own = style_grams(x_feats, list(targets), shift=1.0)
    torch.testing.assert_close(style_loss(x_feats, own, weights, shift=1.0), _t(0.0))


def test_style_loss_gradcheck():
    # Features cropped to (1, 3, 4, 4) to keep gradcheck cheap.
    x_feats = {k: v[:, :3, :4, :4].detach().requires_grad_() for k, v in _feats(13).items()}
    keys = ["a", ("b", "c")]
    targets = style_grams({k: v[:, :3, :4, :4] for k, v in _feats(14).items()}, keys)
    weights = layer_weights(keys, "geometric")
    names = list(x_feats)

    def fn(*tensors):
        return style_loss(dict(zip(names, tensors)), targets, weights, shift=1.0)

    assert torch.autograd.gradcheck(fn, tuple(x_feats.values()))


def test_style_loss_bad_input():
    feats = _feats(15)
    targets = style_grams(feats, ["a", "b"])
    with pytest.raises(ValueError, match=r"no layer weight.*'b'"):
        style_loss(feats, targets, {"a": 1.0})
    with pytest.raises(ValueError, match=r"no features for layer 'b'"):
        style_loss({"a": feats["a"]}, targets, {"a": 0.5, "b": 0.5})
    with pytest.raises(ValueError, match=r"\(1, 4, 4\).*\(1, 3, 3\)"):
        style_loss(feats, {"a": torch.rand(1, 3, 3, dtype=D)}, {"a": 1.0})
    with pytest.raises(ValueError, match="empty"):
        style_loss(feats, {}, {})


# ----------------------------------------------------------------------------- SSIM-weighted style


def _grams(seed: int, n: int, c: int, dtype=D) -> torch.Tensor:
    g = _gen(seed)
    f = torch.rand(n, c, 6, 6, generator=g, dtype=dtype)
    return gram_matrix(f)


def test_gram_to_unit_range():
    target = _grams(16, 2, 12) * _t([1.0, 50.0]).view(2, 1, 1)  # different ranges per image
    gram = _grams(17, 2, 12)
    g_tilde, a_tilde = gram_to_unit_range(gram, target)
    assert not a_tilde.requires_grad
    torch.testing.assert_close(a_tilde.amin(dim=(1, 2)), torch.zeros(2, dtype=D))
    torch.testing.assert_close(a_tilde.amax(dim=(1, 2)), torch.ones(2, dtype=D))
    # The same affine map is applied to G: G = A gives G~ = A~.
    torch.testing.assert_close(gram_to_unit_range(target, target)[0], a_tilde)
    lo = target.amin(dim=(1, 2), keepdim=True)
    hi = target.amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(g_tilde, (gram - lo) / (hi - lo))
    # A constant target is only shifted (no division by zero).
    const = torch.full((1, 12, 12), 3.0, dtype=D)
    g_c, a_c = gram_to_unit_range(const + 1, const)
    torch.testing.assert_close(a_c, torch.zeros_like(const))
    torch.testing.assert_close(g_c, torch.ones_like(const))


def test_ssim_gram_factor_range_and_reference():
    target = _grams(18, 2, 16)
    lo = target.amin(dim=(1, 2), keepdim=True)
    hi = target.amax(dim=(1, 2), keepdim=True)
    # Grams inside A's range.
    inside = lo + (hi - lo) * torch.rand(2, 16, 16, generator=_gen(19), dtype=D)
    factor = ssim_gram_factor(inside, target)
    assert factor.shape == (2,)
    assert ((factor > 0) & (factor <= 1)).all()
    torch.testing.assert_close(ssim_gram_factor(target, target), torch.zeros(2, dtype=D))
    # Reference: scikit-image SSIM of the scaled Grams as one-channel images.
    for i in range(2):
        a = ((target[i] - lo[i]) / (hi[i] - lo[i])).numpy()
        g = ((inside[i] - lo[i]) / (hi[i] - lo[i])).numpy()
        sk = structural_similarity(
            g, a, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
        )
        assert math.isclose(factor[i].item(), (1 - sk) / 2, abs_tol=1e-10)


def test_ssim_weighted_style_loss_value():
    x_feats = {"a": torch.rand(2, 12, 5, 5, generator=_gen(20), dtype=D)}
    x_feats["b"] = torch.rand(2, 14, 3, 3, generator=_gen(21), dtype=D)
    keys = ["a", ("a", "b")]
    style_feats = {
        k: torch.rand(1, *v.shape[1:], generator=_gen(22), dtype=D) for k, v in x_feats.items()
    }
    targets = style_grams(style_feats, keys, shift=1.0)
    weights = {"a": 0.7, ("a", "b"): 0.3}
    x_grams = style_grams(x_feats, keys, shift=1.0)
    expected = 0.0
    for key, m in (("a", 25), (("a", "b"), 25)):
        per_image = [style_layer_loss(x_grams[key][i : i + 1], targets[key], m) for i in range(2)]
        g_t, a_t = gram_to_unit_range(x_grams[key], targets[key])
        s = ssim(g_t.unsqueeze(1), a_t.expand_as(g_t).unsqueeze(1))
        weighted = sum(e * (1 - s[i]) / 2 for i, e in enumerate(per_image))
        expected = expected + weights[key] * weighted
    ours = ssim_weighted_style_loss(x_feats, targets, weights, shift=1.0)
    torch.testing.assert_close(ours, expected)
    # It weights each E_l by a factor in [0, 1], so it never exceeds the plain style loss.
    assert 0 < ours.item() <= style_loss(x_feats, targets, weights, shift=1.0).item()
    # Zero when the Grams match.
    own = style_grams(x_feats, keys, shift=1.0)
    zero = ssim_weighted_style_loss(x_feats, own, weights, shift=1.0)
    assert zero.item() == pytest.approx(0.0, abs=1e-12)


def test_ssim_weighted_style_loss_gradcheck():
    x = torch.rand(1, 12, 2, 2, generator=_gen(23), dtype=D, requires_grad=True)
    targets = {"a": gram_matrix(torch.rand(1, 12, 2, 2, generator=_gen(24), dtype=D))}
    assert torch.autograd.gradcheck(
        lambda f: ssim_weighted_style_loss({"a": f}, targets, {"a": 1.0}), (x,)
    )
    y = torch.rand(1, 4, 3, 3, generator=_gen(25), dtype=D, requires_grad=True)
    targets = {"a": gram_matrix(torch.rand(1, 4, 3, 3, generator=_gen(26), dtype=D))}
    assert torch.autograd.gradcheck(
        lambda f: ssim_weighted_style_loss({"a": f}, targets, {"a": 1.0}, window_size=3, sigma=0.8),
        (y,),
    )


def test_ssim_weighted_style_loss_bad_input():
    feats = {"a": torch.rand(1, 4, 3, 3)}
    targets = style_grams(feats, ["a"])
    with pytest.raises(ValueError, match=r"\(1, 4, 4\).*smaller than the SSIM window \(11\)"):
        ssim_weighted_style_loss(feats, targets, {"a": 1.0})
    with pytest.raises(ValueError, match=r"\(1, 4, 4\).*\(1, 5, 5\)"):
        ssim_weighted_style_loss(feats, {"a": torch.rand(1, 5, 5)}, {"a": 1.0}, window_size=3)


# ----------------------------------------------------------------------------- total variation

IMG = _t([[[[0.0, 1.0, 3.0], [2.0, 2.0, 0.0], [1.0, 4.0, 4.0]]]])
# Horizontal differences: 1, 2 / 0, -2 / 3, 0.  Vertical: 2, 1, -3 / -1, 2, 4.


def test_tv_l1_hand_values():
    torch.testing.assert_close(tv_loss(IMG), _t(21.0))  # 8 + 13
    torch.testing.assert_close(tv_loss(IMG, reduction="mean"), _t(21.0 / 12))  # 6 + 6 terms


def test_tv_l2_hand_values():
    # Over i, j < 2: (dx, dy) = (1, 2), (2, 1), (0, -1), (-2, 2) -> squared norms 5, 5, 1, 8.
    torch.testing.assert_close(tv_loss(IMG, kind="l2"), _t(19.0))
    torch.testing.assert_close(tv_loss(IMG, kind="l2", reduction="mean"), _t(19.0 / 4))
    expected = 2 * math.sqrt(5) + 1 + math.sqrt(8)
    torch.testing.assert_close(tv_loss(IMG, kind="l2", beta=1.0), _t(expected))
    torch.testing.assert_close(tv_loss(IMG, kind="l2", beta=3.0), _t(2 * 5**1.5 + 1 + 8**1.5))


def test_tv_constant_image_is_zero_with_finite_gradient():
    img = torch.full((2, 3, 5, 4), 0.3, dtype=D, requires_grad=True)
    for kind, beta in (("l1", 2.0), ("l2", 2.0), ("l2", 1.0)):
        loss = tv_loss(img, kind=kind, beta=beta)
        assert loss.item() == 0.0
        (grad,) = torch.autograd.grad(loss, img)
        assert torch.isfinite(grad).all()


def test_tv_batch_and_channels_sum():
    g = _gen(27)
    img = torch.rand(2, 3, 6, 5, generator=g, dtype=D)
    for kind in ("l1", "l2"):
        for reduction in ("sum", "mean"):
            singles = sum(tv_loss(img[i : i + 1], kind, 1.5, reduction) for i in range(2))
            torch.testing.assert_close(tv_loss(img, kind, 1.5, reduction), singles)
    # The sum over channels of single-channel losses.
    per_channel = sum(tv_loss(img[:, c : c + 1], "l1") for c in range(3))
    torch.testing.assert_close(tv_loss(img, "l1"), per_channel)


def test_tv_gradcheck():
    img = torch.rand(1, 2, 4, 5, generator=_gen(28), dtype=D, requires_grad=True)
    for kind, beta in (("l1", 2.0), ("l2", 2.0), ("l2", 1.5)):
        assert torch.autograd.gradcheck(lambda x: tv_loss(x, kind, beta), (img,))


def test_tv_bad_input():
    with pytest.raises(ValueError, match=r"'l1', 'l2'.*'l3'"):
        tv_loss(IMG, kind="l3")
    with pytest.raises(ValueError, match="beta"):
        tv_loss(IMG, kind="l2", beta=0.0)
    with pytest.raises(ValueError, match=r"'sum', 'mean'.*'max'"):
        tv_loss(IMG, reduction="max")
    with pytest.raises(ValueError, match=r"2x2.*\(1, 1, 1, 3\)"):
        tv_loss(IMG[:, :, :1])
    with pytest.raises(ValueError, match=r"4-D.*\(3, 3\)"):
        tv_loss(IMG[0, 0])


# ----------------------------------------------------------------------------- perceptual distance


def test_perceptual_distance_hand_value():
    # Positions: x = (3, 4), (1, 0) -> unit (0.6, 0.8), (1, 0);
    #            y = (0, 2), (0, 1) -> unit (0, 1), (0, 1).
    # Squared distances 0.36 + 0.04 = 0.4 and 1 + 1 = 2, spatial mean 1.2.
    x = _t([[[[3.0, 1.0]], [[4.0, 0.0]]]])
    y = _t([[[[0.0, 0.0]], [[2.0, 1.0]]]])
    torch.testing.assert_close(perceptual_distance({"l": x}, {"l": y}), _t([1.2]))
    # Summed over layers.
    torch.testing.assert_close(perceptual_distance({"l": x, "m": x}, {"l": y, "m": y}), _t([2.4]))


def test_perceptual_distance_properties():
    x = _feats(29, n=2)
    y = _feats(30, n=2)
    d = perceptual_distance(x, y)
    assert d.shape == (2,) and (d > 0).all()
    torch.testing.assert_close(perceptual_distance(x, x), torch.zeros(2, dtype=D))
    torch.testing.assert_close(perceptual_distance(y, x), d)
    assert (d <= 4 * len(x)).all()  # unit vectors are at most 2 apart
    # Invariant to a positive rescaling of each feature vector (per image and position).
    g = _gen(31)
    scaled = {
        k: v * (0.1 + 5 * torch.rand(2, 1, *v.shape[2:], generator=g, dtype=D))
        for k, v in x.items()
    }
    torch.testing.assert_close(perceptual_distance(scaled, y), d, atol=1e-8, rtol=1e-8)
    # y with batch 1 is broadcast.
    y1 = {k: v[:1] for k, v in y.items()}
    y2 = {k: v.expand(2, -1, -1, -1) for k, v in y1.items()}
    torch.testing.assert_close(perceptual_distance(x, y1), perceptual_distance(x, y2))


def test_perceptual_distance_gradients():
    x = {k: v[:, :, :3, :3].detach().requires_grad_() for k, v in _feats(32).items()}
    y = {k: v[:, :, :3, :3] for k, v in _feats(33).items()}
    names = list(x)
    assert torch.autograd.gradcheck(
        lambda *t: perceptual_distance(dict(zip(names, t)), y), tuple(x.values())
    )
    # ReLU-like features with all-zero positions keep a finite gradient (no NaN from the norm).
    f = torch.relu(torch.randn(1, 3, 4, 4, generator=_gen(34), dtype=D))
    f[:, :, 0, 0] = 0.0
    f.requires_grad_()
    y = torch.rand(1, 3, 4, 4, generator=_gen(35), dtype=D)
    perceptual_distance({"l": f}, {"l": y}).sum().backward()
    assert torch.isfinite(f.grad).all()


def test_perceptual_distance_bad_input():
    x = {"a": torch.rand(1, 3, 4, 4)}
    with pytest.raises(ValueError, match=r"\['a'\].*\['b'\]"):
        perceptual_distance(x, {"b": torch.rand(1, 3, 4, 4)})
    with pytest.raises(ValueError, match=r"\(1, 3, 4, 4\).*\(1, 3, 2, 2\)"):
        perceptual_distance(x, {"a": torch.rand(1, 3, 2, 2)})
    with pytest.raises(ValueError, match="empty"):
        perceptual_distance({}, {})
