"""Engine kernels — layer 2, private: the fast paths behind ``nstlab.optimize`` and ``nstlab.fast``.

The textbook functions of ``nstlab.losses`` and ``nstlab.ssim`` say what is computed; this module
computes the same numbers faster, and tests/test_kernels.py holds every function here equal to its
textbook twin (values and gradients, float64 and float32, odd sizes, batches, shifts):

- :func:`gram`, :func:`chained_gram`, :func:`style_grams`: Gram matrices as oneDNN 1x1 convolutions on an
  x86-64 CPU, with a custom backward pass, without copying channels_last features, and (chained) on the
  smaller map's grid through the adjoint of the upsampling;
- :func:`ssim_gram_factor`: the SSIM weight of a style term with a separable Gaussian filter;
- :func:`engine_memory_format`: the layout the engine runs VGG19 in;
- :func:`resolve_precision` and :class:`LossScaler`: the precision the network runs in (bf16 or fp16
  where the hardware has it) and the fp16 loss scaling. Gram products of reduced-precision features
  accumulate and are returned in float32; the pixels, the optimiser and the loss stay float32.

benchmarks/README.md gives the measurements behind each choice. Imports only the textbook layer.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F

from nstlab import losses
from nstlab.ssim import gaussian_window, ssim_map

X86_64 = platform.machine().lower() in ("x86_64", "amd64")


def engine_memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on an x86-64 CPU, where it made a step faster (benchmarks/README.md); the default
    layout elsewhere (not measured)."""
    return torch.channels_last if device.type == "cpu" and X86_64 else torch.contiguous_format


# ----------------------------------------------------------------------------- precision

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# The values of oneDNN's cap on its instruction set (ONEDNN_MAX_CPU_ISA, formerly DNNL_MAX_CPU_ISA) that leave it
# bf16 dot products. Below them bf16 is not native: capped to AVX512_CORE oneDNN emulates it, capped to AVX2 or
# lower torch does not hand bf16 convolutions to oneDNN at all and falls back to its own loops. Measured on an
# Intel Xeon with AMX (2026-12-07, gatys, 64 px, 20 steps): fp32 0.9 s, bf16 under ONEDNN_MAX_CPU_ISA=AVX2 15 s.
ONEDNN_NATIVE_BF16_ISAS = frozenset({
    "", "ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX", "AVX10_1_512_AMX",
    "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2",
})


def onednn_isa_cap() -> str:
    """oneDNN's cap on its instruction set, as the environment sets it (upper case; "" when not capped)."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    return value.strip().upper()


def native_bf16_cpu() -> bool:
    """True if this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles, as torch reports it) and oneDNN may
    use those instructions: ``ONEDNN_MAX_CPU_ISA`` does not cap it below AVX512_CORE_BF16, and torch hands it bf16
    convolutions (``torch.ops.mkldnn._is_mkldnn_bf16_supported``)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    hardware = X86_64 and any(check is not None and check() for check in checks)
    if not hardware or onednn_isa_cap() not in ONEDNN_NATIVE_BF16_ISAS:
        return False
    onednn_bf16 = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return onednn_bf16 is None or bool(onednn_bf16())


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision the network runs in: ``precision`` itself, or for "auto" the reduced precision the
    hardware runs natively and that was measured to pay (benchmarks/README.md): bf16 on a CPU with native
    bf16, bf16 on a CUDA GPU that supports it, else fp16 there; fp32 elsewhere (a CPU without native bf16,
    where bf16 is emulated and slower; Apple's MPS, not measured)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and native_bf16_cpu():
        return "bf16"
    return "fp32"


def network_autocast(device: torch.device, precision: str) -> torch.autocast:
    """Run a trainable network's layers in ``precision`` (its weights and optimiser stay float32): torch's
    autocast for "bf16" and "fp16", a no-op for "fp32"."""
    dtype = DTYPES[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


class LossScaler:
    """Dynamic loss scaling for fp16 backward passes, so that small gradients do not underflow fp16.

    The loss is multiplied by a scale S before the backward pass and the gradients are divided by S after
    it. A non-finite gradient means S was too large: S is halved and the caller evaluates again (at most
    ``MAX_RETRIES`` times); after ``growth_interval`` good backward passes S doubles. Disabled (S = 1, no
    checks) for fp32 and bf16, whose exponent range is float32's.
    """

    MAX_RETRIES = 8

    def __init__(self, enabled: bool, scale: float = 2.0**16, growth_interval: int = 200) -> None:
        self.enabled = enabled
        self.scale = scale if enabled else 1.0
        self.growth_interval = growth_interval
        self._good = 0

    def backward(self, loss: torch.Tensor, params: list[torch.Tensor]) -> bool:
        """loss.backward() with the scale; False if the gradients overflowed (the scale is then halved)."""
        if not self.enabled:
            loss.backward()
            return True
        (loss * self.scale).backward()
        grads = [p.grad for p in params if p.grad is not None]
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            self.scale, self._good = self.scale / 2.0, 0
            return False
        for g in grads:
            g.div_(self.scale)
        self._good += 1
        if self._good % self.growth_interval == 0:
            self.scale *= 2.0
        return True


# ----------------------------------------------------------------------------- products over positions


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


def _by_convolution(*tensors: torch.Tensor) -> bool:
    """On an x86-64 CPU in float32 or bfloat16, compute a product over positions as a 1x1 convolution:
    oneDNN's convolution kernels ran it about 2x faster than torch.matmul's BLAS (benchmarks/README.md).
    Elsewhere (GPU, ARM: not measured) torch.matmul is used."""
    return (
        X86_64
        and torch.backends.mkldnn.is_available()
        and all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.bfloat16) for t in tensors)
    )


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a Gram of ``dtype`` features is returned in: float32 for the reduced precisions
    (the products accumulate in float32 inside the kernels), the features' own otherwise."""
    return torch.promote_types(dtype, torch.float32)


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
    The Gram's backward dA = (dG + dG^T)(A + s) takes one product instead of autograd's two.
    Reduced-precision maps give a float32 Gram; the gradient comes back in the maps' own dtype."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor | None, shift: float) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        ctx.shift = shift
        acc = _accumulation_dtype(a.dtype)
        gram = _positions_product(a, a if b is None else b).to(acc)
        if shift == 0:
            return gram
        row_a = a.sum(dim=(2, 3), dtype=acc)
        row_b = row_a if b is None else b.sum(dim=(2, 3), dtype=acc)
        m = a.shape[-2] * a.shape[-1]
        return gram + shift * (row_a[:, :, None] + row_b[:, None, :]) + shift * shift * m

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        a, b = ctx.saved_tensors
        s = ctx.shift
        grad = grad.to(a.dtype)
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



def _upsampled_product(large: torch.Tensor, small: torch.Tensor, shift: float) -> torch.Tensor:
    """sum_k (L + s)_ik (Up(S) + s)_jk over the large map's positions, (N, Cl, Cs), computed on the small grid:
    Up(S) + s = Up(S + s) (bilinear weights sum to 1), so the sum is (U^T (L + s)) (S + s)^T, with a product
    over the small map's positions (4x fewer across a pooling layer) and no upsampled copy of S."""
    folded = _UpsampleAdjoint.apply(large + shift if shift != 0 else large, tuple(small.shape[-2:]))
    product = _GramProduct.apply(folded, small, 0.0)
    return product if shift == 0 else product + shift * folded.sum(dim=(2, 3), dtype=product.dtype)[:, :, None]



def gram(feat: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
    """``losses.gram_matrix(feat, "none", shift)``: (N, C, H, W) -> (N, C, C)."""
    return _GramProduct.apply(feat, None, float(shift))


def chained_gram(feat_a: torch.Tensor, feat_b: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
    """``losses.chained_gram(feat_a, feat_b, "none", shift)``: (N, Ca, ., .), (N, Cb, ., .) -> (N, Ca, Cb)."""
    shift = float(shift)
    if feat_a.shape[-2:] == feat_b.shape[-2:]:
        return _GramProduct.apply(feat_a, feat_b, shift)
    if losses._larger_first("chained_gram", feat_a, feat_b):
        return _upsampled_product(feat_a, feat_b, shift)
    return _upsampled_product(feat_b, feat_a, shift).transpose(1, 2)


def style_grams(
    feats: Mapping[str, torch.Tensor], keys: Iterable[losses.StyleKey], shift: float = 0.0
) -> dict[losses.StyleKey, torch.Tensor]:
    """``losses.style_grams(feats, keys, shift)``: the unnormalised Gram of every style key."""
    return {
        key: gram(feats[key], shift) if isinstance(key, str) else chained_gram(feats[key[0]], feats[key[1]], shift)
        for key in keys
    }


# ----------------------------------------------------------------------------- SSIM


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


def local_statistics(
    x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``nstlab.ssim.local_statistics``, with the five maps filtered together by :func:`separable_filter`."""
    window = gaussian_window(window_size, sigma, dtype=x.dtype, device=x.device)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    mu_x, mu_y, e_xx, e_yy, e_xy = separable_filter(stack, window).split(x.shape[1], dim=1)
    return mu_x, mu_y, e_xx - mu_x * mu_x, e_yy - mu_y * mu_y, e_xy - mu_x * mu_y


def ssim_gram_factor(gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """``losses.ssim_gram_factor(gram, target_gram)`` with its defaults (window 11, sigma 1.5, k1 0.01,
    k2 0.03): (N, Ca, Cb), (N or 1, Ca, Cb) -> (N,)."""
    g, a = losses.gram_to_unit_range(gram, target_gram)
    stats = local_statistics(g.unsqueeze(1), a.expand_as(g).unsqueeze(1))
    return (1.0 - ssim_map(*stats, c1=0.01**2, c2=0.03**2).mean(dim=(1, 2, 3))) / 2.0
