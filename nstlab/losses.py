"""Losses of neural style transfer — textbook layer: each formula is one short function.

Content (Gatys et al.), Gram matrices with the activation shift and the chained inter-layer Gram of
Novak & Nikulin, the style loss with plain or geometric layer weights, total variation (anisotropic
L1 of the course notes; squared / beta form of Mahendran & Vedaldi and Johnson et al.), the
SSIM-weighted style term of Prabhu & McAteer, the LPIPS-form perceptual distance, and the
normalised losses that make the weights unitless (:func:`normalized_content_loss`,
:class:`StyleTarget`, :func:`normalized_style_loss`).

Layer 1 (textbook): imports only ``nstlab.ssim``. These are the functions the notebooks point to and
the exercises check against. The engine computes the same Grams faster in ``nstlab._kernels``;
tests/test_kernels.py holds the two equal.

Conventions: features are (N, C, H, W); Grams are (N, Ca, Cb). A target (content features or
target Gram) may have batch 1 and is then broadcast against a batch of N. Every scalar loss is the
total over the batch, i.e. the sum of the per-image losses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

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
    """What a Gram summed over m positions is divided by under each normalisation."""
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
    - shift: activation shift s of Novak & Nikulin; F + s is used. Their paper takes s = -1, and so does the
      code of Jain & Venkitachalam's survey (its text gives no sign) and the "novak" preset (notebook 06).
    Returns:
    - (N, C, C) Gram matrices.
    """
    fn = "gram_matrix"
    _check_option(fn, "normalize", normalize, GRAM_NORMALIZATIONS)
    _check_feats(fn, "feat", feat)
    n, c, h, w = feat.shape
    f = feat.reshape(n, c, h * w) + shift  # F: (N, C, M), M = H*W positions
    gram = f @ f.transpose(1, 2)  # G = F F^T
    return gram / _gram_divisor(normalize, c, c, h * w)


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


def chained_gram(
    feat_a: torch.Tensor, feat_b: torch.Tensor, normalize: str = "none", shift: float = 0.0
) -> torch.Tensor:
    """Inter-layer ("chained") Gram of Novak & Nikulin: G_ij = sum_k Fa_ik Up(Fb)_jk.

    The smaller map is upsampled (bilinear) to the larger one's H x W first, so M = H*W of the
    larger map. "hw" divides by M, "chw" by sqrt(Ca*Cb)*M; chained_gram(f, f) == gram_matrix(f).

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
    (n, ca), cb = feat_a.shape[:2], feat_b.shape[1]
    hw = feat_a.shape[-2:] if _larger_first(fn, feat_a, feat_b) else feat_b.shape[-2:]
    fa = upsample(feat_a, hw).reshape(n, ca, -1) + shift  # (N, Ca, M)
    fb = upsample(feat_b, hw).reshape(n, cb, -1) + shift  # (N, Cb, M)
    gram = fa @ fb.transpose(1, 2)
    return gram / _gram_divisor(normalize, ca, cb, hw[0] * hw[1])


def upsample(feat: torch.Tensor, hw: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bilinear upsampling (align_corners=False) of (N, C, h, w) maps to (N, C, H, W); unchanged at its own size."""
    if tuple(feat.shape[-2:]) == tuple(hw):
        return feat
    return F.interpolate(feat, size=tuple(hw), mode="bilinear", align_corners=False)


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


# ----------------------------------------------------------------------------- normalised losses
# The raw terms have no natural scale (it depends on the layer, the network and the image size), so the
# engine divides each one by a constant computed once from its own target: then every term is a relative
# squared error, 0 at the target and 1 for an all-zero feature map or Gram, and the weights are unitless.


def normalized_content_loss(x_feat: torch.Tensor, target_feat: torch.Tensor) -> torch.Tensor:
    """The content loss as a relative squared error: sum (F - P)^2 / sum P^2 of each image.

    Inputs:
    - x_feat: (N, C, H, W) features F of the images; target_feat: (N or 1, C, H, W) content features P.
    Returns:
    - scalar: the sum over the batch of the per-image values.
    """
    fn = "normalized_content_loss"
    _check_feats(fn, "x_feat", x_feat)
    _check_feats(fn, "target_feat", target_feat)
    _check_pair(fn, "x_feat", x_feat, "target_feat", target_feat)
    error = (x_feat - target_feat).pow(2).sum(dim=(1, 2, 3))
    return (error / target_feat.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-30)).sum()


def n_positions(feats: Mapping[str, torch.Tensor], key: StyleKey) -> int:
    """M of a style key: H*W of its layer, or of the larger map of a chained pair."""
    names = (key,) if isinstance(key, str) else key
    return max(_feature("n_positions", feats, name).shape[-2] * feats[name].shape[-1] for name in names)


@dataclass(frozen=True)
class StyleTarget:
    """The target of one style term, prepared once from the style image(s).

    - gram: (1, Ca, Cb) the target Gram A for the output's M positions: M times the style image's Gram
      averaged over its own positions. A style image of another size than the output thus changes which
      scale of texture is copied, not the size of the loss (this is the M_output / M_style rescale);
    - n_positions: M, the output's number of positions for this term;
    - scale: what E_l(G, A) is divided by: E_l(0, A) = sum A^2 / (4 Ca Cb M^2), the loss of an all-zero
      Gram, for the normalised loss; 1.0 for the paper's raw loss.
    """

    gram: torch.Tensor
    n_positions: int
    scale: float


def style_target(mean_gram: torch.Tensor, n_positions: int, normalize: bool = True) -> StyleTarget:
    """:class:`StyleTarget` for an output with ``n_positions`` positions.

    Inputs:
    - mean_gram: (1, Ca, Cb) the style Gram averaged over positions, ``gram_matrix(f, "hw")`` (or a
      weighted average of several style images' such Grams, to blend styles).
    - n_positions: M of the output; normalize: False keeps the raw E_l (scale 1).
    """
    gram = mean_gram * n_positions
    scale = float(style_layer_loss(torch.zeros_like(gram), gram, n_positions)) if normalize else 1.0
    return StyleTarget(gram, n_positions, max(scale, 1e-30))


def normalized_style_loss(
    grams: Mapping[StyleKey, torch.Tensor],
    targets: Mapping[StyleKey, StyleTarget],
    layer_weights: Mapping[StyleKey, float],
    ssim_factors: Mapping[StyleKey, torch.Tensor] | None = None,
) -> torch.Tensor:
    """sum_l w_l E_l(G_l, A_l) / E_l(0, A_l): each term a relative squared error of the Gram.

    Inputs:
    - grams: style key -> (N, Ca, Cb) unnormalised Gram G_l of the image (e.g. :func:`style_grams`).
    - targets: style key -> :class:`StyleTarget` (its ``scale`` is E_l(0, A_l), or 1 for raw terms).
    - layer_weights: style key -> w_l.
    - ssim_factors: style key -> (N,) factor (1 - SSIM(G~_l, A~_l)) / 2 of the SSIM-weighted loss
      (:func:`ssim_gram_factor`); None for Gatys' loss.
    Returns:
    - scalar: sum over the batch.
    """
    fn = "normalized_style_loss"
    total = None
    for key, target in targets.items():
        if key not in grams:
            raise ValueError(f"{fn}: no Gram for style key {key!r}; grams has {list(grams)}")
        e = _style_layer_terms(fn, grams[key], target.gram, target.n_positions) / target.scale
        if ssim_factors is not None:
            e = e * ssim_factors[key]
        term = layer_weights[key] * e.sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError(f"{fn}: targets is empty")
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
