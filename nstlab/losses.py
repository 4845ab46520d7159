"""Losses of neural style transfer.

Content (Gatys et al.), Gram matrices with the activation shift and the chained inter-layer Gram of
Novak & Nikulin, the style loss with plain or geometric layer weights, total variation (anisotropic
L1 of the course notes; squared / beta form of Mahendran & Vedaldi and Johnson et al.), the
SSIM-weighted style term of Prabhu & McAteer, and the LPIPS-form perceptual distance.

Conventions: features are (N, C, H, W); Grams are (N, Ca, Cb). A target (content features or
target Gram) may have batch 1 and is then broadcast against a batch of N. Every scalar loss is the
total over the batch, i.e. the sum of the per-image losses.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Iterable, Iterator, Mapping

import torch
import torch.nn.functional as F

from nstlab.ssim import ssim

StyleKey = str | tuple[str, str]
"""A layer name (plain Gram) or a pair of adjacent layer names (chained Gram)."""

CONTENT_REDUCTIONS = ("sum_half", "mean")
GRAM_NORMALIZATIONS = ("none", "hw", "chw")
WEIGHT_SCHEMES = ("uniform", "geometric")
TV_KINDS = ("l1", "l2")
TV_REDUCTIONS = ("sum", "mean")
LPIPS_LAYERS = ["relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"]
"""VGG19 layers for :func:`perceptual_distance`: the last ReLU of each block, as LPIPS-VGG."""

LPIPS_EPS = 1e-10


# ----------------------------------------------------------------------------- input checks


def _check_option(fn: str, name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{fn}: {name} must be one of {allowed}, got {value!r}")


def _check_tensor(fn: str, name: str, t: object, ndim: int, layout: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D {layout}, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"{fn}: {name} must be a floating-point tensor, got dtype {t.dtype}")


def _check_pair(fn: str, a_name: str, a: torch.Tensor, b_name: str, b: torch.Tensor) -> None:
    """Same dtype and shape, except that ``b`` may have batch 1 against ``a``'s batch N."""
    if a.shape[1:] != b.shape[1:] or b.shape[0] not in (1, a.shape[0]):
        raise ValueError(
            f"{fn}: {a_name} has shape {tuple(a.shape)} but {b_name} has shape {tuple(b.shape)}"
        )
    if a.dtype != b.dtype:
        raise ValueError(
            f"{fn}: {a_name} (shape {tuple(a.shape)}) has dtype {a.dtype} but {b_name} "
            f"(shape {tuple(b.shape)}) has dtype {b.dtype}"
        )


def _check_feats(fn: str, name: str, t: object) -> None:
    _check_tensor(fn, name, t, 4, "(N, C, H, W)")


# ----------------------------------------------------------------------------- content


def content_loss(
    x_feat: torch.Tensor, target_feat: torch.Tensor, reduction: str = "sum_half"
) -> torch.Tensor:
    """Content loss between the features of the image and of the content target.

    Inputs:
    - x_feat: (N, C, H, W) features F of the image being optimised.
    - target_feat: (N or 1, C, H, W) content features P.
    - reduction: "sum_half" for Gatys' 1/2 sum (F - P)^2, or "mean" for the per-image mean of
      (F - P)^2 (as in the TF course notes).
    Returns:
    - scalar: the sum over the batch of the per-image losses.
    """
    fn = "content_loss"
    _check_option(fn, "reduction", reduction, CONTENT_REDUCTIONS)
    _check_feats(fn, "x_feat", x_feat)
    _check_feats(fn, "target_feat", target_feat)
    _check_pair(fn, "x_feat", x_feat, "target_feat", target_feat)
    total = (x_feat - target_feat).pow(2).sum()
    if reduction == "sum_half":
        return 0.5 * total
    # The sum over the batch of per-image means, as one sum: a mean over dims would hand the
    # backward pass a contiguous gradient, which costs a channels_last network a layout change.
    return total / x_feat[0].numel()


# ----------------------------------------------------------------------------- Gram matrices


def _gram_divisor(normalize: str, ca: int, cb: int, m: int) -> float:
    if normalize == "hw":
        return float(m)
    if normalize == "chw":
        return math.sqrt(ca * cb) * m
    return 1.0


def gram_matrix(feat: torch.Tensor, normalize: str = "none", shift: float = 0.0) -> torch.Tensor:
    """Gram matrix G_ij = sum_k F_ik F_jk over the H*W positions k.

    Normalisations found in the sources:
    - "none": the plain sum (Gatys et al.; their 1/(4 N_l^2 M_l^2) is applied in
      :func:`style_layer_loss`, N_l = C channels, M_l = H*W positions).
    - "hw": divided by H*W, the mean over positions (second moment of the features).
    - "chw": divided by C*H*W (the TF course notes). With it, Gatys' E_l = 1/4 sum (G - A)^2.

    Inputs:
    - feat: (N, C, H, W) features.
    - shift: activation shift s of Novak & Nikulin; F + s is used (they take s = 1).
    Returns:
    - (N, C, C) Gram matrices.
    """
    fn = "gram_matrix"
    _check_option(fn, "normalize", normalize, GRAM_NORMALIZATIONS)
    _check_feats(fn, "feat", feat)
    n, c, h, w = feat.shape
    gram = _GramProduct.apply(feat, None, float(shift))
    return gram if normalize == "none" else gram / _gram_divisor(normalize, c, c, h * w)


# How the products over positions are computed (the maths is just sum_k A_ik B_jk); see
# benchmarks/README.md for the measurements behind it.


def _stored_channels_last(feat: torch.Tensor) -> bool:
    """True if (N, C, H, W) features are stored channels_last, as the engine's VGG19 makes them on CPU."""
    return feat.is_contiguous(memory_format=torch.channels_last) and not feat.is_contiguous()


def _as_matrix(feat: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """(N, C, H, W) as a matrix view without a copy: (N, C, HW), or (N, HW, C) (second value
    True) when the features are stored channels_last."""
    n, c, h, w = feat.shape
    if _stored_channels_last(feat):
        return feat.permute(0, 2, 3, 1).reshape(n, h * w, c), True
    return feat.reshape(n, c, h * w), False


_X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def _by_convolution(*tensors: torch.Tensor) -> bool:
    """On an x86-64 CPU in float32, compute a product over positions as a 1x1 convolution: oneDNN's
    convolution kernels ran it about 2x faster than torch.matmul's BLAS (benchmarks/README.md).
    Elsewhere (GPU, ARM: not measured) torch.matmul is used."""
    return (
        _X86_64
        and torch.backends.mkldnn.is_available()
        and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
    )


# dilation=2 changes nothing for a 1x1 kernel, but makes PyTorch use oneDNN even single-threaded.
_ONEDNN_DILATION = 2


def _positions_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum_k A_ik B_jk over the positions k: (N, Ca, H, W), (N, Cb, H, W) -> (N, Ca, Cb)."""
    n, ca, cb = a.shape[0], a.shape[1], b.shape[1]
    if _by_convolution(a, b):  # the weight gradient of a 1x1 convolution of B with output gradient A
        grams = [
            torch.nn.grad.conv2d_weight(b[i : i + 1], (ca, cb, 1, 1), a[i : i + 1], dilation=_ONEDNN_DILATION)
            for i in range(n)
        ]
        return grams[0].view(1, ca, cb) if n == 1 else torch.stack(grams).view(n, ca, cb)
    (ma, a_first), (mb, b_first) = _as_matrix(a), _as_matrix(b)
    return (ma.transpose(1, 2) if a_first else ma) @ (mb if b_first else mb.transpose(1, 2))


def _mix_channels(weight: torch.Tensor, x: torch.Tensor, shift: float) -> torch.Tensor:
    """weight @ (x + shift) at every position (a 1x1 convolution; the shift becomes its bias):
    (N, Ca, Cb), (N, Cb, H, W) -> (N, Ca, H, W)."""
    n, ca, cb = weight.shape
    h, w = x.shape[-2:]
    bias = shift * weight.sum(dim=2) if shift != 0 else None  # (N, Ca)
    if _by_convolution(weight, x):
        mixed = [
            F.conv2d(x[i : i + 1], weight[i].reshape(ca, cb, 1, 1), None if bias is None else bias[i],
                     dilation=_ONEDNN_DILATION)
            for i in range(n)
        ]
        return mixed[0] if n == 1 else torch.cat(mixed)
    m, positions_first = _as_matrix(x)
    if positions_first:
        out = m @ weight.transpose(1, 2)
        out = out if bias is None else out + bias[:, None, :]
        return out.view(n, h, w, ca).permute(0, 3, 1, 2)
    out = weight @ m
    return (out if bias is None else out + bias[:, :, None]).view(n, ca, h, w)


class _GramProduct(torch.autograd.Function):
    """G = sum over positions of (A + s)(B + s)^T, (N, Ca, Cb), for maps of the same H, W; B = None
    for the Gram of A alone. The shifted maps are never stored: (A + s)(B + s)^T = A B^T
    + s (row sums of A + row sums of B) + s^2 M, and in the backward pass the shift becomes a bias.
    The Gram's backward dA = (dG + dG^T)(A + s) takes one product instead of autograd's two."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor | None, shift: float) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        ctx.shift = shift
        gram = _positions_product(a, a if b is None else b)
        if shift == 0:
            return gram
        row_a = a.sum(dim=(2, 3))
        row_b = row_a if b is None else b.sum(dim=(2, 3))
        m = a.shape[-2] * a.shape[-1]
        return gram + shift * (row_a[:, :, None] + row_b[:, None, :]) + shift * shift * m

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        a, b = ctx.saved_tensors
        s = ctx.shift
        if b is None:
            return _mix_channels(grad + grad.transpose(1, 2), a, s), None, None
        grad_a = _mix_channels(grad, b, s) if ctx.needs_input_grad[0] else None
        grad_b = _mix_channels(grad.transpose(1, 2), a, s) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


class _UpsampleAdjoint(torch.autograd.Function):
    """U^T for the bilinear upsampling U (align_corners=False) of a ``small_hw`` map to x's H, W: it takes a
    large map to the small grid so that <U y, x> = <y, U^T x>. Its backward pass is U itself."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, small_hw: tuple[int, int]) -> torch.Tensor:
        ctx.large_hw = tuple(x.shape[-2:])
        # Keep the gradient in x's layout: a channels_last network fed a contiguous gradient slows down.
        ctx.layout = torch.channels_last if _stored_channels_last(x) else torch.contiguous_format
        n, c = x.shape[:2]
        return torch.ops.aten.upsample_bilinear2d_backward(x, list(ctx.large_hw), [n, c, *small_hw], False)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous(memory_format=ctx.layout)
        return F.interpolate(grad, size=ctx.large_hw, mode="bilinear", align_corners=False), None


def _larger_first(fn: str, a: torch.Tensor, b: torch.Tensor) -> bool:
    """True if map a is at least as large as b in H and W, False if b is larger; an error otherwise."""
    (ha, wa), (hb, wb) = a.shape[-2:], b.shape[-2:]
    if ha >= hb and wa >= wb:
        return True
    if hb >= ha and wb >= wa:
        return False
    raise ValueError(
        f"{fn}: feat_a has shape {tuple(a.shape)} and feat_b has shape {tuple(b.shape)}; "
        "neither map is at least as large as the other in both H and W"
    )


def _upsampled_product(large: torch.Tensor, small: torch.Tensor, shift: float) -> torch.Tensor:
    """sum_k (L + s)_ik (Up(S) + s)_jk over the large map's positions, (N, Cl, Cs), computed on the small grid:
    Up(S) + s = Up(S + s) (bilinear weights sum to 1), so the sum is (U^T (L + s)) (S + s)^T, with a product
    over the small map's positions (4x fewer across a pooling layer) and no upsampled copy of S."""
    folded = _UpsampleAdjoint.apply(large + shift if shift != 0 else large, tuple(small.shape[-2:]))
    product = _GramProduct.apply(folded, small, 0.0)
    return product if shift == 0 else product + shift * folded.sum(dim=(2, 3))[:, :, None]


def chained_gram(
    feat_a: torch.Tensor, feat_b: torch.Tensor, normalize: str = "none", shift: float = 0.0
) -> torch.Tensor:
    """Inter-layer ("chained") Gram of Novak & Nikulin: G_ij = sum_k Fa_ik Up(Fb)_jk.

    The smaller map is upsampled (bilinear) to the larger one's H x W first, so M = H*W of the
    larger map. "hw" divides by M, "chw" by sqrt(Ca*Cb)*M; chained_gram(f, f) == gram_matrix(f).
    (The same sum is computed on the smaller grid, without the upsampled map: see _upsampled_product.)

    Inputs:
    - feat_a: (N, Ca, Ha, Wa), feat_b: (N, Cb, Hb, Wb) features of two layers (same N, dtype).
    - normalize: "none" | "hw" | "chw"; shift: activation shift added to both maps.
    Returns:
    - (N, Ca, Cb) Gram matrices.
    """
    fn = "chained_gram"
    _check_option(fn, "normalize", normalize, GRAM_NORMALIZATIONS)
    _check_feats(fn, "feat_a", feat_a)
    _check_feats(fn, "feat_b", feat_b)
    if feat_a.shape[0] != feat_b.shape[0] or feat_a.dtype != feat_b.dtype:
        raise ValueError(
            f"{fn}: feat_a has shape {tuple(feat_a.shape)} ({feat_a.dtype}) but feat_b has shape "
            f"{tuple(feat_b.shape)} ({feat_b.dtype}); batch size and dtype must match"
        )
    shift = float(shift)
    ca, cb = feat_a.shape[1], feat_b.shape[1]
    m = max(feat_a.shape[-2] * feat_a.shape[-1], feat_b.shape[-2] * feat_b.shape[-1])
    if feat_a.shape[-2:] == feat_b.shape[-2:]:
        gram = _GramProduct.apply(feat_a, feat_b, shift)
    elif _larger_first(fn, feat_a, feat_b):
        gram = _upsampled_product(feat_a, feat_b, shift)
    else:
        gram = _upsampled_product(feat_b, feat_a, shift).transpose(1, 2)
    return gram if normalize == "none" else gram / _gram_divisor(normalize, ca, cb, m)


# ----------------------------------------------------------------------------- style


def style_keys(style_layers: list[str], chained: bool) -> list[StyleKey]:
    """The style terms: the layers themselves, or adjacent pairs (l_i, l_{i+1}) when chained.

    Inputs:
    - style_layers: layer names in network order, e.g. ["conv1_1", "conv2_1"].
    - chained: True for Novak & Nikulin's chain of inter-layer Grams (needs >= 2 layers).
    Returns:
    - list of keys: names, or (name, next name) tuples.
    """
    fn = "style_keys"
    if isinstance(style_layers, str):
        raise ValueError(
            f"{fn}: style_layers must be a list of names, got the string {style_layers!r}"
        )
    layers = list(style_layers)
    if not layers:
        raise ValueError(f"{fn}: style_layers is empty")
    if not all(isinstance(name, str) for name in layers):
        raise ValueError(f"{fn}: style_layers must contain layer names (str), got {layers!r}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"{fn}: style_layers has duplicates: {layers!r}")
    if not chained:
        return list(layers)
    if len(layers) < 2:
        raise ValueError(f"{fn}: a chained Gram needs at least 2 style layers, got {layers!r}")
    return [(a, b) for a, b in zip(layers[:-1], layers[1:])]


def _feature(fn: str, feats: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    if name not in feats:
        raise ValueError(f"{fn}: no features for layer {name!r}; got layers {list(feats)}")
    return feats[name]


def _key_gram(
    fn: str, feats: Mapping[str, torch.Tensor], key: StyleKey, shift: float
) -> tuple[torch.Tensor, int]:
    """The unnormalised Gram for one style key and its number of positions M."""
    if isinstance(key, str):
        f = _feature(fn, feats, key)
        _check_feats(fn, f"feats[{key!r}]", f)
        return gram_matrix(f, "none", shift), f.shape[-2] * f.shape[-1]
    if isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key):
        fa, fb = _feature(fn, feats, key[0]), _feature(fn, feats, key[1])
        _check_feats(fn, f"feats[{key[0]!r}]", fa)
        _check_feats(fn, f"feats[{key[1]!r}]", fb)
        m = max(fa.shape[-2] * fa.shape[-1], fb.shape[-2] * fb.shape[-1])
        return chained_gram(fa, fb, "none", shift), m
    raise ValueError(f"{fn}: a style key is a layer name or a pair of names, got {key!r}")


def style_grams(
    feats: Mapping[str, torch.Tensor], keys: Iterable[StyleKey], shift: float = 0.0
) -> dict[StyleKey, torch.Tensor]:
    """Unnormalised Grams ("none") for each style key (chained Gram for tuple keys).

    Inputs:
    - feats: layer name -> (N, C, H, W) features.
    - keys: from :func:`style_keys`; shift: activation shift.
    Returns:
    - dict key -> (N, Ca, Cb) Gram.
    """
    return {key: _key_gram("style_grams", feats, key, shift)[0] for key in keys}


def layer_weights(keys: Iterable[StyleKey], scheme: str = "uniform") -> dict[StyleKey, float]:
    """Per-term style weights, summing to 1.

    "uniform": 1/N each. "geometric" (Novak & Nikulin): w_i = 2^(N-i), i = 1..N, so each term
    weighs twice the next (earlier layers heavier), then divided by their sum 2^N - 1.

    Inputs:
    - keys: style keys in network order; scheme: "uniform" | "geometric".
    Returns:
    - dict key -> weight.
    """
    fn = "layer_weights"
    _check_option(fn, "scheme", scheme, WEIGHT_SCHEMES)
    keys = list(keys)
    if not keys:
        raise ValueError(f"{fn}: keys is empty")
    if len(set(keys)) != len(keys):
        raise ValueError(f"{fn}: keys has duplicates: {keys!r}")
    n = len(keys)
    if scheme == "uniform":
        return {key: 1.0 / n for key in keys}
    total = 2.0**n - 1.0
    return {key: 2.0 ** (n - i) / total for i, key in enumerate(keys, start=1)}


def _style_layer_terms(
    fn: str,
    gram: torch.Tensor,
    target_gram: torch.Tensor,
    n_positions: int,
    names: tuple[str, str] = ("gram", "target_gram"),
) -> torch.Tensor:
    """Per-image E_l, shape (N,)."""
    _check_tensor(fn, names[0], gram, 3, "(N, Ca, Cb)")
    _check_tensor(fn, names[1], target_gram, 3, "(N, Ca, Cb)")
    _check_pair(fn, names[0], gram, names[1], target_gram)
    if isinstance(n_positions, bool) or not isinstance(n_positions, int) or n_positions < 1:
        raise ValueError(f"{fn}: n_positions must be a positive int, got {n_positions!r}")
    ca, cb = gram.shape[1:]
    # 1/(4 Ca Cb M^2) sum (G - A)^2 = 1/4 sum ((G - A) / (sqrt(Ca Cb) M))^2: scale before squaring.
    d = (gram - target_gram) / (math.sqrt(ca * cb) * n_positions)
    return 0.25 * d.pow(2).sum(dim=(1, 2))


def style_layer_loss(
    gram: torch.Tensor, target_gram: torch.Tensor, n_positions: int
) -> torch.Tensor:
    """Gatys' per-layer style loss E_l = 1/(4 Ca Cb M^2) sum (G - A)^2.

    For a single layer Ca = Cb = N_l (channels) and M = H*W; for a chained pair M is the larger
    map's H*W. Computed on the scaled difference, so 512-px Grams do not overflow.

    Inputs:
    - gram: (N, Ca, Cb) unnormalised Gram G of the image; target_gram: (N or 1, Ca, Cb) target A.
    - n_positions: M.
    Returns:
    - scalar: sum over the batch.
    """
    return _style_layer_terms("style_layer_loss", gram, target_gram, n_positions).sum()


def _style_terms(
    fn: str,
    x_feats: Mapping[str, torch.Tensor],
    target_grams: Mapping[StyleKey, torch.Tensor],
    weights: Mapping[StyleKey, float],
    shift: float,
) -> Iterator[tuple[StyleKey, float, torch.Tensor, torch.Tensor, int]]:
    """(key, weight, Gram of x, target Gram, M) for every key of target_grams."""
    if not target_grams:
        raise ValueError(f"{fn}: target_grams is empty")
    for key, target in target_grams.items():
        if key not in weights:
            raise ValueError(
                f"{fn}: no layer weight for style key {key!r}; weights has {list(weights)}"
            )
        gram, m = _key_gram(fn, x_feats, key, shift)
        yield key, float(weights[key]), gram, target, m


def style_loss(
    x_feats: Mapping[str, torch.Tensor],
    target_grams: Mapping[StyleKey, torch.Tensor],
    layer_weights: Mapping[StyleKey, float],
    shift: float = 0.0,
) -> torch.Tensor:
    """Style loss sum_l w_l E_l over the keys of ``target_grams``.

    The Gram of x for each key is computed from ``x_feats`` with the same ``shift`` that made the
    targets (see :func:`style_grams`).

    Inputs:
    - x_feats: layer name -> (N, C, H, W) features of the image.
    - target_grams: style key -> (N or 1, Ca, Cb) unnormalised target Grams.
    - layer_weights: style key -> w_l (e.g. from :func:`layer_weights`).
    Returns:
    - scalar: sum over the batch.
    """
    fn = "style_loss"
    total = None
    for key, w, gram, target, m in _style_terms(fn, x_feats, target_grams, layer_weights, shift):
        names = (f"gram[{key!r}]", f"target_grams[{key!r}]")
        term = w * _style_layer_terms(fn, gram, target, m, names).sum()
        total = term if total is None else total + term
    return total


def gram_to_unit_range(
    gram: torch.Tensor, target_gram: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale Grams to [0, 1] for SSIM with the target's range: X~ = (X - min A) / (max A - min A).

    min/max are taken per image over the (detached) target Gram A, so the map is a fixed affine
    one: A~ spans exactly [0, 1] and G~ is on the same scale (it may leave [0, 1] where G exceeds
    A's range). A constant target (max A = min A) is only shifted.

    Inputs:
    - gram: (N, Ca, Cb); target_gram: (N or 1, Ca, Cb).
    Returns:
    - (G~ (N, Ca, Cb), A~ (N or 1, Ca, Cb)); A~ carries no gradient.
    """
    fn = "gram_to_unit_range"
    _check_tensor(fn, "gram", gram, 3, "(N, Ca, Cb)")
    _check_tensor(fn, "target_gram", target_gram, 3, "(N, Ca, Cb)")
    _check_pair(fn, "gram", gram, "target_gram", target_gram)
    a = target_gram.detach()
    lo = a.amin(dim=(1, 2), keepdim=True)
    span = a.amax(dim=(1, 2), keepdim=True) - lo
    span = torch.where(span > 0, span, torch.ones_like(span))
    return (gram - lo) / span, (a - lo) / span


def ssim_gram_factor(
    gram: torch.Tensor,
    target_gram: torch.Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """The SSIM weight (1 - SSIM(G~, A~)) / 2 of one style term, in [0, 1].

    G~, A~ from :func:`gram_to_unit_range`, compared as one-channel images with data_range 1.

    Inputs:
    - gram: (N, Ca, Cb); target_gram: (N or 1, Ca, Cb); Ca, Cb >= window_size.
    Returns:
    - (N,) factor per image (0 when G == A).
    """
    fn = "ssim_gram_factor"
    g, a = gram_to_unit_range(gram, target_gram)
    if min(g.shape[1:]) < window_size:
        raise ValueError(
            f"{fn}: Gram of shape {tuple(gram.shape)} is smaller than the SSIM window "
            f"({window_size}); use layers with >= {window_size} channels or a smaller window_size"
        )
    s = ssim(
        g.unsqueeze(1),
        a.expand_as(g).unsqueeze(1),
        window_size=window_size,
        sigma=sigma,
        k1=k1,
        k2=k2,
        data_range=1.0,
    )
    return (1.0 - s) / 2.0


def ssim_weighted_style_loss(
    x_feats: Mapping[str, torch.Tensor],
    target_grams: Mapping[StyleKey, torch.Tensor],
    layer_weights: Mapping[StyleKey, float],
    shift: float = 0.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """SSIM-weighted style loss (Prabhu & McAteer): sum_l w_l E_l (1 - SSIM(G~_l, A~_l)) / 2.

    E_l is the same as in :func:`style_loss` (the blog's sum (G - A)^2 with Gatys' constant
    1/(4 Ca Cb M^2) folded in), so the weights are comparable with :func:`style_loss`. The SSIM
    factor is :func:`ssim_gram_factor` (Grams scaled by the target's range, Gaussian window 11,
    sigma 1.5, k1 0.01, k2 0.03, L = 1); it is applied per image.

    Inputs: as :func:`style_loss`; every Gram needs Ca, Cb >= window_size.
    Returns:
    - scalar: sum over the batch.
    """
    fn = "ssim_weighted_style_loss"
    total = None
    for key, w, gram, target, m in _style_terms(fn, x_feats, target_grams, layer_weights, shift):
        names = (f"gram[{key!r}]", f"target_grams[{key!r}]")
        e = _style_layer_terms(fn, gram, target, m, names)
        factor = ssim_gram_factor(gram, target, window_size, sigma, k1, k2)
        term = w * (e * factor).sum()
        total = term if total is None else total + term
    return total


# ----------------------------------------------------------------------------- total variation


def tv_loss(
    img: torch.Tensor, kind: str = "l1", beta: float = 2.0, reduction: str = "sum"
) -> torch.Tensor:
    """Total variation of an image batch.

    - "l1" (course notes): sum |x[i, j+1] - x[i, j]| + sum |x[i+1, j] - x[i, j]|, each difference
      over its full valid range; ``beta`` is ignored.
    - "l2" (Mahendran & Vedaldi): sum_{i<H-1, j<W-1} ((x[i, j+1] - x[i, j])^2
      + (x[i+1, j] - x[i, j])^2)^(beta/2); beta = 2 is the squared form of Johnson et al.

    Inputs:
    - img: (N, C, H, W), H, W >= 2.
    - reduction: "sum", or "mean" (each image's sum divided by its number of terms).
    Returns:
    - scalar: sum over the batch.
    """
    fn = "tv_loss"
    _check_option(fn, "kind", kind, TV_KINDS)
    _check_option(fn, "reduction", reduction, TV_REDUCTIONS)
    _check_tensor(fn, "img", img, 4, "(N, C, H, W)")
    _, c, h, w = img.shape
    if h < 2 or w < 2:
        raise ValueError(f"{fn}: img must be at least 2x2, got shape {tuple(img.shape)}")
    dx = img[..., :, 1:] - img[..., :, :-1]  # (N, C, H, W-1)
    dy = img[..., 1:, :] - img[..., :-1, :]  # (N, C, H-1, W)
    if kind == "l1":
        per_image = dx.abs().sum(dim=(1, 2, 3)) + dy.abs().sum(dim=(1, 2, 3))
        n_terms = c * (h * (w - 1) + (h - 1) * w)
    else:
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise ValueError(f"{fn}: beta must be a number > 0, got {beta!r}")
        sq = dx[..., :-1, :].pow(2) + dy[..., :, :-1].pow(2)  # (N, C, H-1, W-1)
        if beta == 2:
            terms = sq
        else:  # 0^(beta/2) = 0 with a zero (not NaN) gradient there
            pos = sq > 0
            safe = torch.where(pos, sq, torch.ones_like(sq))
            terms = torch.where(pos, safe.pow(beta / 2), torch.zeros_like(sq))
        per_image = terms.sum(dim=(1, 2, 3))
        n_terms = c * (h - 1) * (w - 1)
    if reduction == "mean":
        per_image = per_image / n_terms
    return per_image.sum()


# ----------------------------------------------------------------------------- perceptual


def perceptual_distance(
    x_feats: Mapping[str, torch.Tensor], y_feats: Mapping[str, torch.Tensor]
) -> torch.Tensor:
    """LPIPS-form distance with unit weights: sum_l mean_hw || y^_l(x) - y^_l(y) ||_2^2.

    y^ is the feature vector at each position divided by its channel L2 norm (+ 1e-10, as LPIPS);
    with unit weights this is a cosine distance per position. Use it as an evaluation metric, or
    ``perceptual_distance(x_feats, content_feats).sum()`` as a content loss.

    Inputs:
    - x_feats, y_feats: layer name -> (N, C, H, W) features, same layers (e.g. LPIPS_LAYERS);
      y may have batch 1.
    Returns:
    - (N,) distance per image.
    """
    fn = "perceptual_distance"
    if not x_feats:
        raise ValueError(f"{fn}: x_feats is empty")
    if set(x_feats) != set(y_feats):
        raise ValueError(
            f"{fn}: x_feats has layers {list(x_feats)} but y_feats has layers {list(y_feats)}"
        )
    total = None
    for name, x in x_feats.items():
        y = y_feats[name]
        _check_feats(fn, f"x_feats[{name!r}]", x)
        _check_feats(fn, f"y_feats[{name!r}]", y)
        _check_pair(fn, f"x_feats[{name!r}]", x, f"y_feats[{name!r}]", y)
        xn = x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + LPIPS_EPS)
        yn = y / (torch.linalg.vector_norm(y, dim=1, keepdim=True) + LPIPS_EPS)
        d = (xn - yn).pow(2).sum(dim=1).mean(dim=(1, 2))
        total = d if total is None else total + d
    return total
