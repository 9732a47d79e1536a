"""One measurement in a fresh process (started by run.py); prints one JSON line at the end.

    worker.py --info [--framework torch] [--device cuda]   the machine, the BLAS, the matmul ceiling
    worker.py --case NAME --framework minires|torch --reps 5 --warmup 2 --threads 2 [--smoke] [--device cuda]

The thread variables are set by run.py before this process starts (NumPy reads them at
import); PyTorch also gets torch.set_num_threads.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def peak_rss_mb():
    """The process's peak resident memory so far (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_busy_jiffies():
    """(busy, total) CPU time of the whole machine so far, from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def others_cpu(before, after, own_seconds, wall):
    """Share of the machine (0..1) used by other processes between two /proc/stat readings."""
    if before is None or after is None or wall <= 0:
        return 0.0
    hz = os.sysconf("SC_CLK_TCK")
    busy = (after[0] - before[0]) / hz
    return max(0.0, (busy - own_seconds) / (wall * (os.cpu_count() or 1)))


def time_step(fn, reps, warmup):
    for _ in range(warmup):
        fn()
    times = []
    before, own0, wall0 = cpu_busy_jiffies(), os.times(), time.perf_counter()
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    wall, own1 = time.perf_counter() - wall0, os.times()
    own = (own1.user - own0.user) + (own1.system - own0.system)
    return dict(median=statistics.median(times), min=min(times), max=max(times), times=times,
                others_cpu=others_cpu(before, cpu_busy_jiffies(), own, wall))


def peak_gpu_mb(framework):
    """GPU memory the framework's allocator holds at its peak: CuPy's pool keeps every block it
    ever needed (so its size now is its peak); PyTorch's caching allocator reports its own."""
    if framework == "minires":
        import cupy
        return cupy.get_default_memory_pool().total_bytes() / 2**20
    import torch
    return torch.cuda.max_memory_reserved() / 2**20


def gpu_info(framework):
    """The GPU, the versions, and the float32 matmul ceiling on it (4096^3; minires's: CuPy's)."""
    if framework == "torch":
        import torch
        if not torch.cuda.is_available():
            sys.exit("PyTorch here has no CUDA device (a CPU build, or no GPU)")
        return dict(gpu=torch.cuda.get_device_name(0),
                    gpu_stack=f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    from minires.backend import why_no_gpu
    reason = why_no_gpu()
    if reason is not None:
        sys.exit(f"no GPU here: --device cuda needs CuPy and a CUDA device. {reason}")
    import cupy
    import numpy as np
    a = cupy.asarray(np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32))
    sync = cupy.cuda.get_current_stream().synchronize
    t = time_step(lambda: (a @ a, sync()), reps=5, warmup=2)
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return dict(gpu=name.decode() if isinstance(name, bytes) else name, cupy=cupy.__version__,
                gpu_stack=f"CuPy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}",
                matmul_gflops=2 * 4096 ** 3 / t["median"] / 1e9,
                ceiling_what="CuPy float32, 4096^3, median of 5")


def info(framework, device="cpu"):
    import numpy as np
    out = dict(rss_after_import_mb=peak_rss_mb(), numpy=np.__version__)
    if framework == "torch":
        import torch
        out["rss_after_import_mb"] = peak_rss_mb()
        out["torch"] = torch.__version__
        out["blas"] = f"{torch.get_num_threads()} threads, oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}"
        if device == "cuda":
            out.update(gpu_info(framework))
        return out
    try:
        from threadpoolctl import threadpool_info
        blas = [f"{d['internal_api']} {d.get('version')} ({d.get('architecture')} kernel, {d['num_threads']} threads)"
                for d in threadpool_info() if d.get("user_api") == "blas"]
        out["blas"] = ", ".join(blas) or "BLAS unknown"
    except ImportError:
        out["blas"] = "BLAS unknown (pip install threadpoolctl to name it)"
    try:
        with open("/proc/cpuinfo") as f:
            out["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        with open("/proc/meminfo") as f:
            out["memory_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    if device == "cuda":
        out.update(gpu_info(framework))       # the GPU's ceiling, not the CPU's
        return out
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    t = time_step(lambda: a @ a, reps=5, warmup=1)
    out["matmul_gflops"] = 2 * 2048 ** 3 / t["median"] / 1e9
    out["ceiling_what"] = "NumPy float32, 2048^3, median of 5"
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--info", action="store_true")
    p.add_argument("--case")
    p.add_argument("--framework", default="minires", choices=["minires", "torch"])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = p.parse_args()
    if args.framework == "torch":
        import torch
        torch.set_num_threads(args.threads)
    if args.info:
        print(json.dumps(info(args.framework, args.device)))
        return
    from cases import build
    steps, images, flops = build(args.case, args.framework, args.smoke, args.device)
    result = dict(images=images, flops=flops, steps={})
    for name, fn in steps.items():
        result["steps"][name] = time_step(fn, args.reps, args.warmup)
    result["peak_rss_mb"] = peak_rss_mb()
    if args.device == "cuda":
        result["peak_gpu_mb"] = peak_gpu_mb(args.framework)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
