"""The matrix multiplies of a ResNet-20 training step, one by one: GFLOP/s as minires runs them,
and in the other orientation (pixel-major columns, what a channels-last layout would give).

    python benchmarks/matmul_shapes.py                  # batch 64: one replica's part of 128
    python benchmarks/matmul_shapes.py --batch 128 --threads 2

Per 3x3 convolution of the step, three products, each on one chunk of columns as Conv2d
builds them (``batch_chunks``), K = C*3*3 rows, P output pixels per chunk:

- forward      y = w (O x K) @ col (K x P)               -- channel-major out (O x P)
- input grad   dx = w_flip (C x K') @ col_dy (K' x P)    -- the same shape family
- weight grad  dw^T = col (K x P) @ dy^T (P x O)        -- already the fast orientation

and, for the first two, the same product with the big operand pixel-major: y^T = col^T
(P x K, contiguous) @ w^T (K x O). OpenBLAS runs that orientation much faster when O is
small (16-64 channels); minires would need channels-last activations to get it, since its
channel-major im2col writes K-major columns (benchmarks/README.md, "What holds the CIFAR
nets back"). One process; OPENBLAS_NUM_THREADS is set from --threads before NumPy loads.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def gflops(fn, flops, reps):
    from worker import time_step
    return flops / time_step(fn, reps, warmup=1)["median"] / 1e9


def products(batch):
    """(stage, what, O, K, P, calls per step) of ResNet-20's stride-1 C-to-C 3x3 convolutions
    (6, 5 and 5 per stage; the stem and the two stride-2 convolutions are left out) at
    ``batch`` images of 32x32."""
    sys.path.insert(0, ROOT)
    from minires.engine.conv import batch_chunks
    rows = []
    for stage, (C, size, convs) in enumerate([(16, 32, 6), (32, 16, 5), (64, 8, 5)], start=1):
        K, pixels = 9 * C, size * size
        chunks = batch_chunks(batch, K * pixels * 4, pixels)
        P = (chunks[0][1] - chunks[0][0]) * pixels
        count = convs * len(chunks)
        rows += [(stage, "forward", C, K, P, count), (stage, "input grad", C, K, P, count),
                 (stage, "weight grad", C, K, P, count)]
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=15)
    args = p.parse_args(argv)
    if "numpy" not in sys.modules:                  # read by OpenBLAS when NumPy loads, not after
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import numpy as np
    rng = np.random.default_rng(0)
    lines = [f"ResNet-20, batch {args.batch}, {args.threads} BLAS thread(s): GFLOP/s of each product "
             f"(median of {args.reps})", "",
             "| stage | product | O x K x P | as minires runs it | pixel-major | ratio |", "|---|---|---|---|---|---|"]
    seconds = {"ours": 0.0, "theirs": 0.0}      # those convolutions' products, per step
    for stage, what, O, K, P, calls in products(args.batch):
        w = rng.standard_normal((O, K), dtype=np.float32)
        col = rng.standard_normal((K, P), dtype=np.float32)
        flops = 2 * O * K * P
        if what == "weight grad":
            dyT = rng.standard_normal((P, O), dtype=np.float32)
            ours = gflops(lambda: np.matmul(col, dyT), flops, args.reps)
            seconds["ours"] += calls * flops / ours / 1e9
            seconds["theirs"] += calls * flops / ours / 1e9
            lines.append(f"| {stage} | {what}: col @ dy^T | {K} x {P} x {O} | {ours:.0f} | - | - |")
            continue
        y, yT = np.empty((O, P), np.float32), np.empty((P, O), np.float32)
        colT, wT = np.ascontiguousarray(col.T), np.ascontiguousarray(w.T)
        ours = gflops(lambda: np.matmul(w, col, out=y), flops, args.reps)
        theirs = gflops(lambda: np.matmul(colT, wT, out=yT), flops, args.reps)
        seconds["ours"] += calls * flops / ours / 1e9
        seconds["theirs"] += calls * flops / theirs / 1e9
        lines.append(f"| {stage} | {what}: w @ col | {O} x {K} x {P} | {ours:.0f} | {theirs:.0f} | "
                     f"{theirs / ours:.2f} |")
    lines += ["", f"Those products in one step, at these rates: {1e3 * seconds['ours']:.0f} ms as minires runs "
              f"them, {1e3 * seconds['theirs']:.0f} ms with pixel-major columns."]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
