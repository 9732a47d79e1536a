"""minires against PyTorch CPU on the same machine, in one run: speed, fraction of the matmul
ceiling, and peak memory. See benchmarks/README.md for what is measured and the results.

    python benchmarks/run.py                                   # everything, 2 threads
    python benchmarks/run.py --torch-python /path/to/venv/bin/python   # PyTorch from another venv
    python benchmarks/run.py --cases conv3x3 "resnet20 train" --reps 7 --markdown results.md
    python benchmarks/run.py --rounds 3                        # a shared machine: pool 3 rounds
    python benchmarks/run.py --device cuda                     # CuPy against PyTorch on a GPU
    python benchmarks/run.py --scaling                         # data parallelism: 1x2 vs 2x1 (scaling.py)

Every (framework, case) runs in a fresh Python process, so its peak RSS is its own. Each
process sets the thread count (OMP/OPENBLAS/MKL_NUM_THREADS, and torch.set_num_threads),
warms up, then times ``--reps`` calls: the table shows the median, min and max. While it
times, it also reads how much CPU *other* processes used (/proc/stat): above 10% of the
machine, the row is marked busy, and its numbers are not to be trusted.

``--rounds R`` runs each case R times, minires and PyTorch alternating, and pools the
timings: on a shared machine whose speed drifts for minutes at a time, a slow spell then
falls on both frameworks instead of deciding the ratio.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Set in some environments for old OpenBLAS builds; they slow a current NumPy (README: "BLAS").
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
BUSY = 0.10  # other processes' share of the machine above which a measurement is marked busy


def worker_env(threads, keep_openblas_env):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    # ThreadParallel's threads (minires/parallel/threads.py): --threads, unless set here already
    # (MINIRES_NUM_THREADS=1 python benchmarks/run.py ... measures every model alone)
    env.setdefault("MINIRES_NUM_THREADS", str(threads))
    if not keep_openblas_env:
        for var in OPENBLAS_OVERRIDES:
            env.pop(var, None)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_worker(python, args, env, timeout=1800):
    """Run ``worker.py`` in a fresh process; its last stdout line is a JSON record."""
    cmd = [python, os.path.join(HERE, "worker.py")] + args
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def torch_python(requested):
    """The interpreter that has torch: ``requested``, else this one if it imports torch, else None."""
    candidates = [requested] if requested else [sys.executable]
    for python in candidates:
        probe = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                               capture_output=True, text=True)
        if probe.returncode == 0:
            return python
    return None


def fmt_time(seconds):
    if seconds < 0.1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e3:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def describe_machine(env_info, torch_info, threads, removed):
    cpu = env_info.get("cpu", platform.processor() or "unknown CPU")
    lines = [f"- CPU: {cpu}, {os.cpu_count()} logical cores, {env_info.get('memory_gb', '?')} GB RAM; "
             f"Python {platform.python_version()}, {platform.system()} {platform.release()}",
             f"- NumPy {env_info['numpy']} with {env_info['blas']}; {threads} threads everywhere",
             "- PyTorch: " + (f"{torch_info['torch']} ({torch_info['blas']})" if torch_info else "not installed")]
    if "gpu" in env_info:
        lines.append(f"- GPU: {env_info['gpu']}; minires on {env_info['gpu_stack']}" +
                     (f"; PyTorch on {torch_info['gpu_stack']}" if torch_info else ""))
    lines.append(f"- matmul ceiling ({env_info['ceiling_what']}): {env_info['matmul_gflops']:.0f} GFLOP/s")
    if removed:
        lines.append(f"- removed from the workers' environment: {', '.join(removed)} (see README, BLAS)")
    return "\n".join(lines)


def table(rows, ceiling, torch_missing="not installed", memory="peak RSS"):
    """The results as a markdown table; ``rows``: (case, step, minires result, PyTorch result or None).
    ``memory``: the memory columns' heading ("peak GPU memory" on a GPU)."""
    head = ["case", "step", "minires (median [min-max])", "images/s", "% of matmul ceiling", memory,
            "PyTorch (median [min-max])", "images/s", "% of ceiling", memory, "minires / PyTorch"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case, step, mr, pt in rows:
        cells = [case, step] + _cells(mr, step, ceiling, torch_missing) + _cells(pt, step, ceiling, torch_missing)
        if pt is None or "error" in mr or "error" in pt:
            cells.append("-")
        else:
            cells.append(f"{pt['steps'][step]['median'] / mr['steps'][step]['median']:.2f}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _cells(result, step, ceiling, missing):
    if result is None:
        return [missing, "-", "-", "-"]
    if "error" in result:
        return ["failed: " + result["error"][:80], "-", "-", "-"]
    s = result["steps"][step]
    busy = " (busy)" if s["others_cpu"] > BUSY else ""
    speed = f"{fmt_time(s['median'])} [{fmt_time(s['min'])}-{fmt_time(s['max'])}]{busy}"
    ips = f"{result['images'] / s['median']:.1f}"
    flops = result.get("flops", {}).get(step)
    frac = f"{100 * flops / s['median'] / 1e9 / ceiling:.0f}%" if flops else "-"
    return [speed, ips, frac, f"{result.get('peak_gpu_mb', result['peak_rss_mb']) / 1024:.2f} GB"]


def growth_table(rows, nets):
    """How the cost grows: one line per case (net, batch), images/s and peak memory of both
    frameworks, and their ratio. ``nets``: cases.NETS (model and batch of each case)."""
    out = ["| net | batch | minires images/s | minires ms per image | minires peak RSS | PyTorch images/s | "
           "PyTorch peak RSS | minires / PyTorch |", "|---|---|---|---|---|---|---|---|"]
    for case, step, mr, pt in rows:
        arch, batch = nets[case][:2]
        cells = [arch, str(batch)]
        for r in (mr, pt):
            if r is None or "error" in r:
                cells += ["-", "-", "-"] if r is mr else ["-", "-"]
                continue
            t = r["steps"][step]["median"]
            cells += [f"{r['images'] / t:.1f}"] + ([f"{1e3 * t / r['images']:.2f}"] if r is mr else [])
            cells.append(f"{r['peak_rss_mb'] / 1024:.2f} GB")
        ok = pt is not None and "error" not in pt and "error" not in mr
        cells.append(f"{pt['steps'][step]['median'] / mr['steps'][step]['median']:.2f}" if ok else "-")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def alone_table(rows):
    """--alone: each case's model alone (ThreadParallel off) and under ThreadParallel, both
    against PyTorch; rows: (case, step, alone, ThreadParallel, PyTorch or None)."""
    out = ["| case | step | minires, model alone | minires, ThreadParallel | PyTorch | alone / PyTorch | "
           "ThreadParallel / PyTorch | speed-up |", "|---|---|---|---|---|---|---|---|"]

    def median(r, step):
        return None if r is None or "error" in r else r["steps"][step]["median"]

    for case, step, alone, tp, pt in rows:
        a, t, p = median(alone, step), median(tp, step), median(pt, step)
        cells = [case, step] + [fmt_time(v) if v else "-" for v in (a, t, p)]
        cells += [f"{p / a:.2f}" if p and a else "-", f"{p / t:.2f}" if p and t else "-",
                  f"{a / t:.2f}x" if a and t else "-"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def pool_rounds(results):
    """One worker result per round -> one result: every round's timings pooled (median, min, max
    over all of them), the highest peak RSS and the busiest reading. The first error wins."""
    for r in results:
        if "error" in r:
            return r
    merged = dict(results[0], steps={}, peak_rss_mb=max(r["peak_rss_mb"] for r in results))
    for step in results[0]["steps"]:
        times = [t for r in results for t in r["steps"][step]["times"]]
        merged["steps"][step] = dict(median=statistics.median(times), min=min(times), max=max(times), times=times,
                                     others_cpu=max(r["steps"][step]["others_cpu"] for r in results))
    return merged


def main(argv=None):
    sys.path.insert(0, HERE)
    from cases import CASES, DEFAULT_CASES, GROWTH, NETS, SMOKE_NETS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", choices=CASES, metavar="CASE",
                   help="which cases (default: all but 'resnet50 train b64' on the CPU and the --growth "
                        "batches): " + ", ".join(CASES))
    p.add_argument("--alone", action="store_true",
                   help="also run minires with MINIRES_NUM_THREADS=1 (every model alone, ThreadParallel off), "
                        "alternating with the others, and print a before/after table")
    p.add_argument("--growth", action="store_true",
                   help="how the cost grows: ResNet-20 at batch 32/64/128/256 and ResNet-20/56/110 at 128, "
                        "with a table of images/s and peak memory per row")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="cpu (default), or cuda: minires on CuPy against PyTorch on CUDA/cuDNN")
    p.add_argument("--reps", type=int, default=5, help="timed calls per step, after the warm-up (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--rounds", type=int, default=1,
                   help="fresh processes per case and framework, the frameworks alternating; timings pooled "
                        "(default 1)")
    p.add_argument("--threads", type=int, default=2, help="threads for NumPy's BLAS and PyTorch (default 2)")
    p.add_argument("--torch-python", help="interpreter with torch installed (default: this one, if it has torch)")
    p.add_argument("--no-torch", action="store_true", help="measure minires only")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help=f"keep {' and '.join(OPENBLAS_OVERRIDES)} if set (default: unset them for the workers)")
    p.add_argument("--markdown", help="also write the report to this file")
    p.add_argument("--json", help="also write every measurement to this file")
    p.add_argument("--smoke", action="store_true", help="tiny shapes, 1 rep: checks that everything runs")
    p.add_argument("--scaling", action="store_true",
                   help="only the data-parallel scaling case: ResNet-20 at global batch 128 on 1 process x 2 "
                        "threads and 2 processes x 1 thread (benchmarks/scaling.py; needs mpiexec)")
    args = p.parse_args(argv)
    if args.scaling:
        import scaling
        return scaling.main(["--reps", str(args.reps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
                            + (["--smoke"] if args.smoke else []) + (["--markdown", args.markdown] if args.markdown else []))
    if args.growth:
        args.cases = args.cases or GROWTH
    args.cases = args.cases or (CASES if args.smoke else DEFAULT_CASES[args.device])   # smoke: every case
    if args.smoke:
        args.reps, args.warmup = 1, 0
    env = worker_env(args.threads, args.keep_openblas_env)
    removed = [v for v in OPENBLAS_OVERRIDES if v in os.environ and not args.keep_openblas_env]
    tpy = None if args.no_torch else torch_python(args.torch_python)
    common = ["--reps", str(args.reps), "--warmup", str(args.warmup), "--threads", str(args.threads),
              "--device", args.device]
    if args.smoke:
        common.append("--smoke")

    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores", flush=True)
    env_info = run_worker(sys.executable, ["--info", "--device", args.device], env)
    torch_info = run_worker(tpy, ["--info", "--framework", "torch", "--device", args.device], env) if tpy else None
    if "error" in env_info:
        sys.exit(f"could not start a worker: {env_info['error']}")
    if torch_info and "error" in torch_info:
        print(f"PyTorch left out: {torch_info['error']}", flush=True)
        tpy = torch_info = None
    ceiling = env_info["matmul_gflops"]
    rows, records = [], []
    frameworks = [(fw, python) for fw, python in (("minires", sys.executable), ("torch", tpy)) if python]
    if args.alone:      # the same minires, each model alone: ThreadParallel off (before / after)
        frameworks.insert(0, ("alone", sys.executable))
    alone_rows = []
    for case in args.cases:
        rounds = {"minires": [], "torch": [], "alone": []}
        for rnd in range(1, args.rounds + 1):
            for fw, python in frameworks:
                print(f"  {case:16s} {fw:8s} round {rnd}/{args.rounds} ...", end=" ", flush=True)
                worker = ["--case", case, "--framework", "minires" if fw == "alone" else fw] + common
                r = run_worker(python, worker, dict(env, MINIRES_NUM_THREADS="1") if fw == "alone" else env)
                print(r.get("error") or ", ".join(f"{k} {fmt_time(v['median'])}" for k, v in r["steps"].items()),
                      flush=True)
                rounds[fw].append(r)
                records.append(dict(case=case, framework=fw, round=rnd, **r))
        results = {fw: pool_rounds(rs) if rs else None for fw, rs in rounds.items()}
        if results["torch"] and "error" not in results["torch"] and "error" not in results["minires"]:
            results["torch"]["flops"] = results["minires"]["flops"]   # identical work
        steps = results["minires"].get("steps", {"-": None})
        rows += [(case, step, results["minires"], results["torch"]) for step in steps]
        if args.alone:
            alone_rows += [(case, step, pool_rounds(rounds["alone"]), results["minires"], results["torch"])
                           for step in steps]
    load_after = os.getloadavg()[0]
    busy = any(r.get("steps") and any(s["others_cpu"] > BUSY for s in r["steps"].values()) for r in records)
    report = "\n".join([
        "## Machine", describe_machine(env_info, torch_info, args.threads, removed), "",
        "## Results", table(rows, ceiling, "skipped (--no-torch)" if args.no_torch else "not installed",
                            "peak GPU memory" if args.device == "cuda" else "peak RSS"), "",
        *(["## Growth", growth_table([r for r in rows if r[0] in GROWTH], SMOKE_NETS if args.smoke else NETS), ""] if args.growth else []),
        *(["## ThreadParallel: before and after", alone_table(alone_rows), ""] if args.alone else []),
        (f"Median of {args.reps} after {args.warmup} warm-up calls" if args.rounds == 1 else
         f"Median of {args.rounds} rounds x {args.reps} timed calls (each round a fresh process after "
         f"{args.warmup} warm-up calls, minires and PyTorch alternating)") +
        "; [min-max]. images/s from the median. "
        "% of matmul ceiling: the case's FLOPs (multiply-add = 2, counted from the shapes; a training step "
        "= 3x forward) per second, over the matmul ceiling above. " + (
            "Peak GPU memory: what CuPy's memory pool / PyTorch's caching allocator held at the end "
            "(their peak). " if args.device == "cuda" else
            "Peak RSS: the whole process, imports included (NumPy alone: {:.2f} GB; torch: {}). ".format(
                env_info["rss_after_import_mb"] / 1024,
                f"{torch_info['rss_after_import_mb'] / 1024:.2f} GB" if torch_info else "-")) +
        "minires / PyTorch: the throughput ratio, "
        "PyTorch's median time over minires's (1.00: as fast; above 1: minires faster).",
        f"Load average: {os.getloadavg()[1]:.2f} (5 min) at the end, {load_after:.2f} (1 min). " + (
            "**Other processes used more than 10% of the CPU during some rows (marked busy).**" if busy
            else "No other process used more than 10% of the CPU while timing."),
    ])
    print("\n" + report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(machine=env_info, torch=torch_info, results=records), f, indent=1)


if __name__ == "__main__":
    main()
