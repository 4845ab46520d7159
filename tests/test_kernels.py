"""The engine's kernels (nstlab._kernels) against their textbook twins (nstlab.losses, nstlab.ssim).

Every fast path must compute the numbers the formula says: values and gradients, float64 and
float32, odd sizes, batches above 1, shift 0 and 1, both layouts and both orders of a chained pair.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nstlab import _kernels, losses
from nstlab.ssim import gaussian_filter, gaussian_window, local_statistics

LAYOUTS = [torch.contiguous_format, torch.channels_last]
# float32 takes the oneDNN 1x1-convolution path on an x86-64 CPU; float64 the matmul one. Measured (2026-12-07) on a
# Xeon with AMX and with oneDNN and ATen capped to AVX2 (README: Tests): the float32 differences, scaled as below, use
# at most 3.5 % of the float32 tolerance (style_grams; the Grams 1.7 %, the chained Grams 0.8 %).
TOLERANCES = {torch.float64: {"rtol": 1e-10, "atol": 1e-10}, torch.float32: {"rtol": 2e-5, "atol": 2e-5}}


def _maps(shape: tuple[int, ...], dtype: torch.dtype, layout: torch.memory_format, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype).contiguous(memory_format=layout).requires_grad_(True)


def _values_and_gradients(fn, inputs: list[torch.Tensor], seed: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """fn(*inputs) and the gradients of <fn(*inputs), R> for a fixed random R."""
    out = fn(*inputs)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    grads = torch.autograd.grad((out * weights).sum(), inputs)
    return out.detach(), list(grads)


def _assert_twins(kernel, textbook, inputs: list[torch.Tensor], dtype: torch.dtype) -> None:
    fast, fast_grads = _values_and_gradients(kernel, inputs, seed=7)
    plain, plain_grads = _values_and_gradients(textbook, [x.detach().clone().requires_grad_(True) for x in inputs], 7)
    scale = max(float(plain.abs().max()), 1.0)
    torch.testing.assert_close(fast / scale, plain / scale, **TOLERANCES[dtype])
    for x, fast_grad, plain_grad in zip(inputs, fast_grads, plain_grads):
        g_scale = max(float(plain_grad.abs().max()), 1.0)
        torch.testing.assert_close(fast_grad / g_scale, plain_grad / g_scale, **TOLERANCES[dtype])
        assert fast_grad.shape == x.shape


# ----------------------------------------------------------------------------- Gram matrices


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shift", [0.0, 1.0])
@pytest.mark.parametrize("shape", [(1, 64, 12, 10), (3, 5, 7, 9), (2, 3, 1, 1), (1, 1, 5, 3)])
def test_gram_equals_the_textbook_gram(dtype, layout, shift, shape) -> None:
    feat = _maps(shape, dtype, layout, seed=sum(shape))
    _assert_twins(
        lambda f: _kernels.gram(f, shift), lambda f: losses.gram_matrix(f, "none", shift), [feat], dtype
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shift", [0.0, 1.0])
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((2, 8, 8, 6), (2, 4, 4, 3)),  # the larger map first
        ((2, 4, 4, 3), (2, 8, 8, 6)),  # the smaller map first
        ((1, 6, 9, 7), (1, 5, 4, 3)),  # odd sizes: a pooling layer's floor
        ((3, 5, 5, 5), (3, 7, 5, 5)),  # the same grid
    ],
)
def test_chained_gram_equals_the_textbook_chained_gram(dtype, layout, shift, shape_a, shape_b) -> None:
    a = _maps(shape_a, dtype, layout, seed=1)
    b = _maps(shape_b, dtype, layout, seed=2)
    _assert_twins(
        lambda x, y: _kernels.chained_gram(x, y, shift),
        lambda x, y: losses.chained_gram(x, y, "none", shift),
        [a, b],
        dtype,
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_kernel_gradients_keep_the_features_layout(layout) -> None:
    # A gradient in another layout than the network's makes a channels_last backward pass convert it.
    a, b = _maps((2, 8, 8, 6), torch.float32, layout, 3), _maps((2, 4, 4, 3), torch.float32, layout, 4)
    (_kernels.chained_gram(a, b, 1.0).sum() + _kernels.gram(a, 1.0).sum()).backward()
    assert a.grad.is_contiguous(memory_format=layout) and b.grad.is_contiguous(memory_format=layout)


def test_style_grams_equal_the_textbook_style_grams() -> None:
    g = torch.Generator().manual_seed(5)
    feats = {"a": torch.rand(2, 4, 8, 6, generator=g), "b": torch.rand(2, 6, 4, 3, generator=g)}
    for keys, shift in [(["a", "b"], 0.0), ([("a", "b")], 1.0), ([("b", "a")], 0.0)]:
        fast, plain = _kernels.style_grams(feats, keys, shift), losses.style_grams(feats, keys, shift)
        assert list(fast) == list(plain) == keys
        for key in keys:
            torch.testing.assert_close(fast[key], plain[key], rtol=1e-5, atol=1e-5)


def test_gram_second_derivative() -> None:
    f = torch.rand(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: _kernels.gram(x, shift=1.0), (f,))


def test_chained_gram_gradcheck_both_orders() -> None:
    a = torch.rand(1, 2, 4, 6, dtype=torch.float64, requires_grad=True)
    b = torch.rand(1, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: _kernels.chained_gram(x, y, 1.0), (a, b))
    assert torch.autograd.gradcheck(lambda x, y: _kernels.chained_gram(y, x, 0.0), (a, b))


def test_kernel_chained_gram_rejects_crossed_shapes() -> None:
    with pytest.raises(ValueError, match="neither map is at least as large"):
        _kernels.chained_gram(torch.rand(1, 2, 8, 4), torch.rand(1, 2, 4, 8))


# ----------------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_separable_filter_equals_the_textbook_gaussian_filter(dtype) -> None:
    maps = _maps((2, 3, 19, 23), dtype, torch.contiguous_format, seed=4)
    window = gaussian_window(7, 1.2, dtype=dtype)
    _assert_twins(lambda m: _kernels.separable_filter(m, window), lambda m: gaussian_filter(m, window), [maps], dtype)
    assert _kernels.separable_filter(maps, window).shape == (2, 3, 13, 17)


def test_separable_filter_gradcheck() -> None:
    maps = torch.rand(1, 2, 9, 8, dtype=torch.float64, requires_grad=True)
    window = gaussian_window(5, 1.0, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda m: _kernels.separable_filter(m, window), (maps,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_local_statistics_equal_the_textbook_ones(dtype) -> None:
    x = _maps((2, 2, 15, 13), dtype, torch.contiguous_format, 8)
    y = _maps((2, 2, 15, 13), dtype, torch.contiguous_format, 9)
    fast, plain = _kernels.local_statistics(x, y, 11, 1.5), local_statistics(x, y, 11, 1.5)
    for f, p in zip(fast, plain):
        torch.testing.assert_close(f, p, **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [1, 3])
def test_ssim_gram_factor_equals_the_textbook_factor(dtype, batch) -> None:
    gram = _maps((batch, 16, 13), dtype, torch.contiguous_format, seed=10)
    target = _maps((1, 16, 13), dtype, torch.contiguous_format, seed=11).detach()
    _assert_twins(
        lambda g: _kernels.ssim_gram_factor(g, target), lambda g: losses.ssim_gram_factor(g, target), [gram], dtype
    )


# ----------------------------------------------------------------------------- the engine's layout


def test_engine_memory_format_is_channels_last_only_on_an_x86_cpu(monkeypatch) -> None:
    monkeypatch.setattr(_kernels, "X86_64", True)
    assert _kernels.engine_memory_format(torch.device("cpu")) == torch.channels_last
    assert _kernels.engine_memory_format(torch.device("cuda")) == torch.contiguous_format
    monkeypatch.setattr(_kernels, "X86_64", False)
    assert _kernels.engine_memory_format(torch.device("cpu")) == torch.contiguous_format


def test_upsample_adjoint_is_the_transpose_of_bilinear_upsampling() -> None:
    g = torch.Generator().manual_seed(12)
    small = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64)
    large = torch.rand(2, 3, 9, 11, generator=g, dtype=torch.float64)
    up = F.interpolate(small, size=(9, 11), mode="bilinear", align_corners=False)
    down = _kernels._UpsampleAdjoint.apply(large, (4, 5))
    assert float((up * large).sum()) == pytest.approx(float((small * down).sum()), rel=1e-12)
