"""Conv2d and im2col: naive-loop references, float64 gradient checks across configurations, bad input."""
import types

import numpy as np
import pytest

from backends import DEVICE_BACKENDS
from helpers import on
from minires import nn
from minires.backend import DeviceError, to_numpy
from minires.teach.gradcheck import check_module
from minires.engine.im2col import col2im_add, im2col_into, window_slices
from minires.nn.im2col import col2im, im2col


def naive_conv(x, w, b, stride, padding, groups):
    """Seven nested loops, straight from the definition of (cross-)correlation."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    (SH, SW), (PH, PW) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    y = np.zeros((N, O, OH, OW))
    Og = O // groups
    for n in range(N):
        for o in range(O):
            g = o // Og
            for oh in range(OH):
                for ow in range(OW):
                    s = 0.0 if b is None else b[o]
                    for c in range(Cg):
                        for i in range(KH):
                            for j in range(KW):
                                s += w[o, c, i, j] * xp[n, g * Cg + c, oh * SH + i, ow * SW + j]
                    y[n, o, oh, ow] = s
    return y


@pytest.mark.parametrize("k,s,p,g,bias,hw", [
    (3, 1, 1, 1, True, (5, 6)), (3, 2, 1, 2, False, (7, 5)), (1, 1, 0, 1, True, (4, 4)),
    (1, 2, 0, 4, False, (5, 7)), (7, 2, 3, 1, True, (9, 8)), ((3, 1), (2, 1), (1, 0), 2, True, (6, 5)),
])
def test_conv_forward_matches_naive_loops(k, s, p, g, bias, hw, rng, device):
    conv = nn.Conv2d(4, 8, k, stride=s, padding=p, groups=g, bias=bias).to(device, np.float64)
    x = rng.standard_normal((2, 4) + hw)
    y = to_numpy(conv(on(device, x)))
    ref = naive_conv(x, to_numpy(conv.weight.data), None if conv.bias is None else to_numpy(conv.bias.data),
                     conv.stride, conv.padding, g)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("p", [0, 1, 3])
@pytest.mark.parametrize("g", [1, 2, 4])
def test_conv_gradcheck(k, s, p, g, rng, device, path):
    H, W = (k + 2, k + 3)  # non-square, and big enough for every kernel
    conv = nn.Conv2d(4, 8, k, stride=s, padding=p, groups=g).to(device)
    x = on(device, rng.standard_normal((2, 4, H, W)))
    result = check_module(conv, x, seed=k * 100 + s * 10 + p, max_entries=60)
    assert result.ok, str(result)
    assert result.max_error < 1e-6


@pytest.mark.parametrize("batch", [1, 5])
def test_conv_gradcheck_batch_sizes(batch, rng, device, path):
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1).to(device)
    result = check_module(conv, on(device, rng.standard_normal((batch, 3, 6, 5))), max_entries=80)
    assert result.ok, str(result)


def test_im2col_matches_definition_and_col2im_is_its_adjoint(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    KH, KW, SH, SW, PH, PW = 3, 2, 2, 1, 1, 1
    col = im2col(x, KH, KW, SH, SW, PH, PW)
    A, _, _, B, OH, OW = col.shape
    padded = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    for a in range(A):
        for b in range(B):
            for i in range(KH):
                for j in range(KW):
                    np.testing.assert_array_equal(col[a, i, j, b], padded[a, b, i:i + SH * OH:SH, j:j + SW * OW:SW])
    # adjoint: <im2col(x), c> == <x, col2im(c)> for every x and c; this is why col2im must ADD
    c = rng.standard_normal(col.shape)
    lhs = np.sum(col * c)
    rhs = np.sum(x * col2im(c, 7, 6, SH, SW, PH, PW))
    assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))


def test_conv_float32_stays_float32(rng):
    conv = nn.Conv2d(3, 4, 3, padding=1)
    y = conv(rng.standard_normal((2, 3, 5, 5)).astype(np.float32))
    assert y.dtype == np.float32 and conv.weight.data.dtype == np.float32
    dx = conv.backward(np.ones_like(y))
    assert dx.dtype == np.float32 and conv.weight.grad.dtype == np.float32


def test_conv_backward_adds_into_grad(rng):
    conv = nn.Conv2d(2, 3, 3).to(dtype=np.float64)
    x = rng.standard_normal((1, 2, 4, 4))
    g = rng.standard_normal((1, 3, 2, 2))
    conv(x)
    conv.backward(g)
    once = conv.weight.grad.copy()
    conv(x)
    conv.backward(g)
    np.testing.assert_allclose(conv.weight.grad, 2 * once)


def test_conv_bad_input_errors():
    conv = nn.Conv2d(3, 8, 3)
    x = np.zeros((1, 3, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"Conv2d.*rank 4.*got shape \(3, 8, 8\)"):
        conv(x[0])
    with pytest.raises(ValueError, match="expected 3 channels.*got 4"):
        conv(np.zeros((1, 4, 8, 8), np.float32))
    with pytest.raises(TypeError, match="floating-point.*int64"):
        conv(np.zeros((1, 3, 8, 8), np.int64))
    with pytest.raises(TypeError, match="float64 but the parameters are float32"):
        conv(np.zeros((1, 3, 8, 8), np.float64))
    with pytest.raises(ValueError, match="too small"):
        conv(np.zeros((1, 3, 2, 8), np.float32))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 8, 3, groups=2)
    with pytest.raises(RuntimeError, match="backward called without a forward"):
        nn.Conv2d(3, 8, 3).backward(np.zeros((1, 8, 6, 6), np.float32))


@pytest.mark.parametrize("backend_name", DEVICE_BACKENDS, indirect=True)
def test_conv_device_mixing_is_a_clear_error(backend_name):
    conv = nn.Conv2d(3, 8, 3).to("cuda")
    with pytest.raises(DeviceError, match="input is on 'cpu' but the parameters are on 'cuda'"):
        conv(np.zeros((1, 3, 8, 8), np.float32))


def test_device_mixing_message_without_gpu(monkeypatch):
    """The device check itself, exercised without a GPU by pretending the input lives on 'cuda'."""
    from minires.nn import module as module_mod
    conv = nn.Conv2d(3, 8, 3)
    x = np.zeros((1, 3, 8, 8), np.float32)
    real_xp, real_device = module_mod.xp_of, module_mod.device_of
    fake_cupy = types.SimpleNamespace(ndarray=np.ndarray)          # an array module that is not NumPy
    monkeypatch.setattr(module_mod, "xp_of", lambda a: fake_cupy if a is x else real_xp(a))
    monkeypatch.setattr(module_mod, "device_of", lambda a: "cuda" if a is x else real_device(a))
    with pytest.raises(DeviceError, match="input is on 'cuda' but the parameters are on 'cpu'.*model.to\\('cuda'\\)"):
        conv(x)


@pytest.mark.parametrize("KH,KW,SH,SW,PH,PW,hw", [
    (3, 3, 1, 1, 1, 1, (5, 6)), (3, 2, 2, 1, 1, 1, (7, 6)), (7, 7, 2, 2, 3, 3, (9, 8)),
    (1, 1, 2, 2, 0, 0, (5, 5)), (3, 3, 1, 3, 0, 2, (4, 6)), (2, 3, 3, 2, 2, 0, (6, 7)),
    # stride 1 along the width: rows-only padding, wrapped entries zeroed (_windows_rows_padded)
    (5, 5, 1, 1, 2, 2, (6, 5)), (3, 3, 2, 1, 1, 1, (7, 7)), (3, 3, 1, 1, 0, 0, (5, 6)),
    (1, 5, 1, 1, 0, 4, (3, 3)), (7, 7, 1, 1, 3, 3, (2, 2)), (3, 1, 1, 1, 2, 0, (4, 1)),
])
def test_fast_im2col_and_col2im_match_the_reference(KH, KW, SH, SW, PH, PW, hw, rng):
    """im2col_into / col2im_add (Conv2d's fast path) against im2col / col2im, on strided input."""
    x = rng.standard_normal((5, 3) + hw)[1:4]                   # a slice: a view with an offset
    expected = im2col(x, KH, KW, SH, SW, PH, PW)
    col = np.full(expected.shape, np.nan)
    np.testing.assert_array_equal(im2col_into(x, col, KH, KW, SH, SW, PH, PW), expected)
    x[...] = 0                                                  # reuse the padded workspace: border still 0
    np.testing.assert_array_equal(im2col_into(x, col, KH, KW, SH, SW, PH, PW), 0)
    c = rng.standard_normal(expected.shape)
    img = np.zeros(x.shape)
    np.testing.assert_allclose(col2im_add(c, img, SH, SW, PH, PW), col2im(c, hw[0], hw[1], SH, SW, PH, PW),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,s,p,size,n_out", [(0, 1, 1, 5, 5), (2, 1, 1, 5, 5), (0, 2, 3, 9, 5), (6, 2, 3, 9, 5),
                                              (1, 3, 0, 4, 2), (0, 1, 3, 2, 4)])
def test_window_slices_pick_exactly_the_real_pixels(k, s, p, size, n_out):
    inputs, outputs = window_slices(k, s, p, size, n_out)
    expected = [(o, k + s * o - p) for o in range(n_out) if 0 <= k + s * o - p < size]
    assert list(zip(range(n_out)[outputs], range(size)[inputs])) == expected


def test_batch_chunks_cover_the_batch_with_a_byte_budget_and_a_column_minimum(monkeypatch):
    from minires.engine import conv as conv_module
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", 100)
    monkeypatch.setattr(conv_module, "CHUNK_COLUMNS", 8)
    assert conv_module.batch_chunks(10, per_image=30, pixels=4) == [(0, 3), (3, 6), (6, 9), (9, 10)]  # 100 B
    assert conv_module.batch_chunks(10, per_image=30, pixels=1) == [(0, 8), (8, 10)]   # >= 8 columns
    assert conv_module.batch_chunks(3, per_image=1000, pixels=100) == [(0, 1), (1, 2), (2, 3)]   # >= 1 image
