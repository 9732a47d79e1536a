"""Load every file of a hostile corpus in a separate process and measure what each one costs.

A file that crashes the interpreter (SIGSEGV) or hangs in C code cannot be caught in the
process that loads it, so the loading happens in a worker process (``python
corpus_check.py --worker DIR``) that reports one JSON line per file; the parent restarts
it after a crash and kills it after ``HANG_SECONDS`` without a word. For each file:

* ``error``: the exception's type name, or None if it loaded;
* ``seconds``: wall time of the load (without tracemalloc, which slows Python down);
* ``traced``: peak bytes allocated during a second load, under tracemalloc (NumPy reports
  its array buffers to tracemalloc, the C unpickler's memo is PyMem, so both count);
* ``rss``: growth of the process's peak resident memory during the load (Linux: the peak is
  reset through /proc/self/clear_refs before each file; None where that is not possible).

``ok`` says the file did what its manifest entry expects, in time and memory: "error"
means a WeightsError (or the checkpoint's own error type, a subclass of ValueError), or for
the data-set loaders (``DATA_LOADERS``) a DataError (or its ChecksumError);
"load" means no error at all; "any" (a fuzzed file) either of those. A listed folder counts
the sizes of the files in it (a data-set folder's batches).
"""
import json
import os
import selectors
import stat
import subprocess
import sys
import time

TIME_LIMIT = 2.0                   # seconds per file
MEMORY_SLACK = 48 << 20            # peak memory growth allowed per file: 48 MiB ...
MEMORY_PER_FILE_BYTE = 8           # ... + 8 x the file's size
HANG_SECONDS = 30                  # the worker is killed after this long without a result
DATA_LOADERS = ("cifar-batch", "cifar-folder", "idx-images", "mnist-folder")


def memory_bound(file_size):
    return MEMORY_SLACK + MEMORY_PER_FILE_BYTE * file_size


def _data_loader(name):
    from minires.data import load_mnist, read_batch, read_cifar10_folder, read_idx
    return {"cifar-batch": read_batch,
            "cifar-folder": read_cifar10_folder,
            "idx-images": lambda path: read_idx(path, 2051),
            # a folder of one's own MNIST files: root/mnist/*.gz, no checksums
            "mnist-folder": lambda path: load_mnist(path, download=False, md5={}, progress=False)}[name]


def _loader(name):
    if name in DATA_LOADERS:
        return _data_loader(name)
    from minires.weights import load_checkpoint, load_torch, load_weights
    if name == "keras":
        from hostile_hdf5 import load_into_tiny
        return load_into_tiny
    if name == "tf-checkpoint":
        from minires.weights.tf_checkpoint import read_tf_checkpoint
        return read_tf_checkpoint
    return {"weights": load_weights, "checkpoint": load_checkpoint, "torch": load_torch}[name]


def _rss_peak_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def _load_once(fn, path):
    try:
        fn(path)
    except Exception as e:         # noqa: BLE001 -- the type is the result
        return type(e).__name__, isinstance(e, ValueError), str(e)[:300]
    return None, False, ""


def worker(folder, names):
    import tracemalloc
    import warnings
    import minires.data  # noqa: F401 -- imported before measuring
    import minires.weights  # noqa: F401
    warnings.simplefilter("ignore")           # a data-set folder of one's own is read after a DataNotice
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(folder, "manifest.json")) as f:
        if any(e["loader"] == "keras" for e in json.load(f)):
            import h5py  # noqa: F401
            import hostile_hdf5
            hostile_hdf5.tiny_model()           # the model's imports and first allocations, before measuring
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = {e["file"]: e for e in json.load(f)}
    for name in names:
        entry = manifest[name]
        path = os.path.join(folder, name)
        fn = _loader(entry["loader"])
        print(json.dumps({"start": name}), flush=True)
        can_reset = _rss_peak_reset()
        rss_before = _status("VmRSS") if can_reset else None
        t0 = time.perf_counter()
        error, is_value_error, message = _load_once(fn, path)
        seconds = time.perf_counter() - t0
        rss = _status("VmHWM") - rss_before if can_reset else None
        tracemalloc.start()
        _load_once(fn, path)
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(json.dumps(dict(file=name, error=error, value_error=is_value_error, message=message,
                              seconds=seconds, traced=traced, rss=rss)), flush=True)


def _judge(entry, result, file_size):
    if result.get("crash") or result.get("hang"):
        return False
    errors = ("DataError", "ChecksumError") if entry["loader"] in DATA_LOADERS else ("WeightsError", "CheckpointError")
    refused = result["error"] in errors
    expected = {"error": refused, "load": result["error"] is None,
                "any": refused or result["error"] is None}[entry["expect"]]
    memory = max(result["traced"], result["rss"] or 0)
    return bool(expected and result["seconds"] < TIME_LIMIT and memory < memory_bound(file_size))


def check_corpus(folder, python=sys.executable):
    """Load every file listed in ``folder/manifest.json`` -> a list of result dicts (see module doc)."""
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    entries = {e["file"]: e for e in manifest}
    todo = [e["file"] for e in manifest]
    results = {}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    while todo:
        proc = subprocess.Popen([python, os.path.abspath(__file__), "--worker", folder, *todo],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        started = None
        while True:
            if not sel.select(timeout=HANG_SECONDS):
                proc.kill()
                results[started or todo[0]] = dict(file=started or todo[0], hang=True)
                break
            line = proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if "start" in msg:
                started = msg["start"]
            else:
                results[msg["file"]] = msg
                started = None
        proc.wait()
        if started is not None and started not in results:       # died while loading this file
            results[started] = dict(file=started, crash=True, returncode=proc.returncode)
        todo = [n for n in todo if n not in results]
        sel.close()
        proc.stdout.close()
    out = []
    for name in entries:
        r = dict(results[name], what=entries[name]["what"], expect=entries[name]["expect"],
                 size=_size(os.path.join(folder, name)))
        r["ok"] = _judge(entries[name], r, r["size"])
        out.append(r)
    return out


def _size(path):
    """A file's size; for a folder, the sizes of the regular files in it (links not followed)."""
    if not os.path.isdir(path) or os.path.islink(path):
        return os.path.getsize(path)
    total = 0
    for folder, _, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(folder, f))
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def summarise(results):
    """The figures issue 13 asks for, as text: files tried, crashes, hangs, worst time, worst memory."""
    done = [r for r in results if not (r.get("crash") or r.get("hang"))]
    worst_t = max(done, key=lambda r: r["seconds"], default=None)
    worst_m = max(done, key=lambda r: max(r["traced"], r["rss"] or 0), default=None)
    lines = [f"files tried: {len(results)}",
             f"crashes: {sum(1 for r in results if r.get('crash'))}",
             f"hangs: {sum(1 for r in results if r.get('hang'))}",
             f"not as expected: {sum(1 for r in results if not r['ok'])}"]
    if worst_t:
        lines.append(f"worst time: {worst_t['seconds']:.3f} s ({worst_t['file']})")
    if worst_m:
        m = max(worst_m["traced"], worst_m["rss"] or 0)
        lines.append(f"worst memory growth: {m / 2 ** 20:.1f} MiB ({worst_m['file']}, {worst_m['size']} bytes; "
                     f"bound {memory_bound(worst_m['size']) / 2 ** 20:.1f} MiB)")
    for r in results:
        if not r["ok"]:
            lines.append(f"  NOT OK {r['file']}: {r}")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], sys.argv[3:])
    else:
        sys.exit("usage: python tools/make_hostile_corpus.py OUT_DIR --check")
