"""A measured dead end, kept so that the measurement can be repeated: Winograd F(2x2, 3x3) in NumPy.

    python benchmarks/winograd_probe.py            # ResNet-20's three stages, half a batch of 128 each

Winograd's minimal filtering computes a 2x2 block of a 3x3 convolution's output from a 4x4
block of its input with 16 multiplies instead of 36: per 4x4 input tile d and filter g,

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, 4x4)

with small constant matrices B (4x4), G (4x3), A (4x2). Over channels the elementwise
products become 16 matrix multiplies of (O x C) by (C x tiles): 2.25x fewer multiplies than
im2col's single (O x 9C) by (9C x pixels) product. This probe computes the forward of a
stride-1, padding-1 3x3 convolution that way, checks it against Conv2d, and times both on
one thread (OpenBLAS's threads are set by OPENBLAS_NUM_THREADS before NumPy loads).

What it showed (the table in benchmarks/README.md, "What holds the CIFAR nets back"): several
times slower than Conv2d's forward on ResNet-20's shapes. The transforms B^T d B and A^T M A are 16 + 24 whole-array NumPy
passes over strided views, each a trip through memory, where im2col is one strided copy;
and with 16-64 channels the 16 small matrix multiplies run far below OpenBLAS's speed. A
compiled kernel fuses the transforms into the tiles, in cache; NumPy cannot.
"""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def winograd_forward(x, w):
    """x (C, N, H, W) channel-major, H and W even; w (O, C, 3, 3) -> y (O, N, H, W), stride 1, padding 1."""
    C, N, H, W = x.shape
    O = w.shape[0]
    U = np.einsum("ai,ocij,bj->aboc", G.astype(x.dtype), w, G.astype(x.dtype)).reshape(16, O, C)
    padded = np.zeros((C, N, H + 2, W + 2), x.dtype)
    padded[:, :, 1:-1, 1:-1] = x
    TH, TW = H // 2, W // 2
    rows = [padded[:, :, k:k + 2 * TH:2] for k in range(4)]       # tile row k of every tile
    T = [rows[0] - rows[2], rows[1] + rows[2], rows[2] - rows[1], rows[1] - rows[3]]   # B^T d
    V = np.empty((4, 4, C, N, TH, TW), x.dtype)
    for i, t in enumerate(T):                                      # (B^T d) B, column by column
        even, odd = t[..., 0::2], t[..., 1::2]
        np.subtract(even[..., :TW], even[..., 1:], out=V[i, 0])
        np.add(odd[..., :TW], even[..., 1:], out=V[i, 1])
        np.subtract(even[..., 1:], odd[..., :TW], out=V[i, 2])
        np.subtract(odd[..., :TW], odd[..., 1:], out=V[i, 3])
    M = np.matmul(U, V.reshape(16, C, -1)).reshape(4, 4, O, N, TH, TW)   # 16 products
    r = (M[0] + M[1] + M[2], M[1] - M[2] - M[3])                   # A^T M
    y = np.empty((O, N, H, W), x.dtype)
    for a in range(2):                                             # (A^T M) A, into the 2x2 blocks
        y[:, :, a::2, 0::2] = r[a][0] + r[a][1] + r[a][2]
        y[:, :, a::2, 1::2] = r[a][1] - r[a][2] - r[a][3]
    return y


def median_ms(fn, reps=9):
    from worker import time_step
    return 1e3 * time_step(fn, reps, warmup=1)["median"]


def main(shapes=((16, 32, 64), (32, 16, 64), (64, 8, 64)), reps=9):
    sys.path.insert(0, ROOT)
    from minires import nn, no_grad
    rng = np.random.default_rng(0)
    lines = ["| channels | size | batch | Conv2d forward | Winograd forward | Winograd / Conv2d | max difference |",
             "|---|---|---|---|---|---|---|"]
    for C, S, N in shapes:
        x = rng.standard_normal((C, N, S, S), dtype=np.float32)
        conv = nn.Conv2d(C, C, 3, padding=1, bias=False)
        x_nchw = x.transpose(1, 0, 2, 3)

        def im2col_conv():
            with no_grad():
                return conv(x_nchw)
        diff = np.abs(winograd_forward(x, conv.weight.data) - im2col_conv().transpose(1, 0, 2, 3)).max()
        t_conv = median_ms(im2col_conv, reps)
        t_wino = median_ms(lambda: winograd_forward(x, conv.weight.data), reps)
        lines.append(f"| {C} | {S}x{S} | {N} | {t_conv:.2f} ms | {t_wino:.2f} ms | {t_wino / t_conv:.1f} | {diff:.1e} |")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
