"""Data-parallel scaling: the same global batch on 1 process x T threads and on P processes x T/P threads.

    python benchmarks/scaling.py                       # ResNet-20, global batch 128: 1x2 vs 2x1
    python benchmarks/scaling.py --processes 1 2 4 --threads 4 --batch 256
    python benchmarks/scaling.py --volume              # only the communication table (no timing)
    python benchmarks/run.py --scaling                 # the same, from the suite's entry point

Each configuration runs in fresh processes (``mpiexec -n P`` for P > 1, with the BLAS thread
variables set to T/P), builds ResNet-20 for 32x32 images with identical seeded weights, takes
its share (global batch / P) of identical random images, and times training steps split in
three: compute (zero_grad, forward, loss, backward), all-reduce (``average_gradients``), and
the SGD update. A step lasts as long as its slowest rank: the worker reports, per step, the
largest time over the ranks. See benchmarks/README.md, "Data parallelism".
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def ring_allreduce_bytes(parameters, processes, bytes_per_value=4):
    """Bytes each process sends (and receives) in one ring all-reduce of ``parameters`` values.

    A ring all-reduce is a reduce-scatter then an all-gather: each passes P - 1 chunks of
    1/P of the buffer to the next process, so each sends 2 (P - 1) / P of the buffer -- nearly
    twice the gradient, whatever the number of processes.
    """
    return 2 * (processes - 1) / processes * parameters * bytes_per_value


def allreduce_seconds(parameters, processes, gbit_per_s, latency_s=5e-6, bytes_per_value=4):
    """Time of one ring all-reduce on links of ``gbit_per_s``: 2 (P - 1) messages, each a latency,
    plus the bytes at the link's speed (the alpha-beta model; no overlap with computation)."""
    volume = ring_allreduce_bytes(parameters, processes, bytes_per_value)
    return 2 * (processes - 1) * latency_s + volume * 8 / (gbit_per_s * 1e9)


def volume_table():
    """The communication per training step for ResNet-20 and ResNet-50 (float32 gradients)."""
    from minires.models import resnet20, resnet50
    rows = ["| model | parameters | gradient (float32) | processes | sent per process per step | "
            "all-reduce at 10 Gbit/s | at 100 Gbit/s |", "|---|---|---|---|---|---|---|"]
    for name, model in (("ResNet-20", resnet20(num_classes=10)), ("ResNet-50", resnet50())):
        n = model.num_parameters()
        for p in (8, 64):
            rows.append(f"| {name} | {n:,} | {4 * n / 1e6:.2f} MB | {p} | {ring_allreduce_bytes(n, p) / 1e6:.2f} MB | "
                        f"{1e3 * allreduce_seconds(n, p, 10):.2f} ms | {1e3 * allreduce_seconds(n, p, 100):.2f} ms |")
    return "\n".join(rows)


# ----- the worker: one configuration, under mpiexec or alone -----

def worker(args):
    import numpy as np
    from minires import nn
    from minires.parallel import mpi as D
    from minires.models import resnet20
    from minires.train.optim import SGD
    world = D.get_world()
    B = args.batch // world.size
    nn.manual_seed(0)
    model = resnet20(num_classes=10)
    D.broadcast_state(model, world)
    rng = np.random.default_rng([0, world.rank])
    x = rng.standard_normal((B, 3, args.size, args.size), dtype=np.float32)
    y = rng.integers(0, 10, B)
    criterion, opt = nn.CrossEntropyLoss(), SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    parts = []
    for i in range(args.warmup + args.reps):
        world.barrier()
        t0 = time.perf_counter()
        opt.zero_grad()
        criterion(model(x), y)
        model.backward(criterion.backward())
        t1 = time.perf_counter()
        D.average_gradients(model, world)
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        times = np.array([t1 - t0, t2 - t1, t3 - t2, t3 - t0])
        world.allreduce(times, op="max")                    # the slowest rank sets the pace
        if i >= args.warmup:
            parts.append(times.tolist())
    if world.rank == 0:
        names = ("compute", "allreduce", "update", "step")
        med = {k: statistics.median(p[j] for p in parts) for j, k in enumerate(names)}
        print(json.dumps(dict(processes=world.size, per_process_batch=B, threads=os.environ.get("OMP_NUM_THREADS"),
                              parameters=model.num_parameters(), steps=[p[3] for p in parts], **med)))


def launch(processes, threads, args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--batch", str(args.batch), "--size", str(args.size),
           "--reps", str(args.reps), "--warmup", str(args.warmup)]
    if processes > 1:
        mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        mpiexec = mpiexec if os.path.exists(mpiexec) else shutil.which("mpiexec")
        if mpiexec is None:
            return {"error": "no mpiexec here (pip install 'minires[mpi]')"}
        cmd = [mpiexec, "-n", str(processes)] + cmd
    else:
        env = {k: v for k, v in env.items() if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"error": " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(results, args):
    rows = ["| processes x threads | batch per process | step (median [min-max]) | images/s | compute | "
            "all-reduce | SGD update | all-reduce share |", "|---|---|---|---|---|---|---|---|"]
    for (p, t), r in results:
        if "error" in r:
            rows.append(f"| {p} x {t} | - | failed: {r['error'][:80]} | - | - | - | - | - |")
            continue
        rows.append(f"| {p} x {t} | {r['per_process_batch']} | {1e3 * r['step']:.0f} ms [{1e3 * min(r['steps']):.0f}-"
                    f"{1e3 * max(r['steps']):.0f}] | {args.batch / r['step']:.0f} | {1e3 * r['compute']:.0f} ms | "
                    f"{1e3 * r['allreduce']:.1f} ms | {1e3 * r['update']:.1f} ms | {r['allreduce'] / r['step']:.1%} |")
    return "\n".join(rows) + (f"\n\nResNet-20, {args.size}x{args.size} images, global batch {args.batch}, float32; "
                              f"median of {args.reps} steps after {args.warmup} warm-up steps; each part the slowest "
                              f"rank's. Load average at the end: {os.getloadavg()[0]:.2f} (1 min) on "
                              f"{os.cpu_count()} cores.")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=2, help="threads in all: each of P processes gets threads / P")
    p.add_argument("--batch", type=int, default=128, help="global batch (default 128)")
    p.add_argument("--size", type=int, default=32, help="image size (default 32, CIFAR)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="8x8 images, batch 8, 1 step: checks that it runs")
    p.add_argument("--volume", action="store_true", help="print the communication table only")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--markdown", help="also write the report to this file")
    args = p.parse_args(argv)
    if args.smoke:
        args.size, args.batch, args.reps, args.warmup = 8, 8, 1, 0
    if args.worker:
        return worker(args)
    if args.volume:
        print(volume_table())
        return
    results = []
    for procs in args.processes:
        threads = max(1, args.threads // procs)
        print(f"  {procs} process(es) x {threads} thread(s) ...", end=" ", flush=True)
        r = launch(procs, threads, args)
        print(r.get("error") or f"step {1e3 * r['step']:.0f} ms, all-reduce {1e3 * r['allreduce']:.1f} ms", flush=True)
        results.append(((procs, threads), r))
    text = report(results, args) + "\n\n" + volume_table()
    print("\n" + text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
