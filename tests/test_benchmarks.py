"""benchmarks/: the suite runs end to end on tiny shapes, and its report reads right.

Functional only: no timing is asserted anywhere (the numbers live in the suite's output).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import cases  # noqa: E402
import run  # noqa: E402
import scaling  # noqa: E402
from backends import CUPY_ONLY, DEVICE_BACKENDS  # noqa: E402
from minires import gpu_available  # noqa: E402


def _run_suite(tmp_path, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), *args],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)


def test_smoke_run_of_every_case_writes_a_report(tmp_path):
    report = tmp_path / "results.md"
    proc = _run_suite(tmp_path, "--smoke", "--no-torch", "--markdown", str(report), "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    text = report.read_text()
    for case in cases.CASES:
        assert f"| {case} |" in text
    assert "failed" not in text
    assert "skipped (--no-torch)" in text
    assert "matmul ceiling" in text and "Load average" in text


def _result(median, others=0.0):
    step = dict(median=median, min=median, max=median, others_cpu=others)
    return dict(images=16, flops={"forward": 2e9}, peak_rss_mb=1024, steps={"forward": step})


def test_table_ratio_busy_mark_and_missing_torch():
    rows = [("c", "forward", _result(0.5), _result(0.25, others=0.5)),
            ("d", "forward", _result(1.0), None)]
    lines = run.table(rows, ceiling=100.0).splitlines()
    cells = [c.strip() for c in lines[2].split("|")[1:-1]]
    assert cells[3] == "32.0"                    # images/s: 16 / 0.5
    assert cells[4] == "4%"                      # 2 GFLOP in 0.5 s = 4 GFLOP/s, of 100
    assert cells[5] == "1.00 GB"
    assert "(busy)" in cells[6] and cells[10] == "0.50"   # PyTorch twice as fast: minires / PyTorch = 0.5
    assert "not installed" in lines[3]


def test_rounds_are_pooled_and_an_error_wins():
    def result(times, rss, others):
        step = dict(median=sorted(times)[len(times) // 2], min=min(times), max=max(times), times=times,
                    others_cpu=others)
        return dict(images=16, flops={"forward": 2e9}, peak_rss_mb=rss, steps={"forward": step})
    pooled = run.pool_rounds([result([1.0, 5.0, 6.0], 100, 0.0), result([2.0, 3.0, 4.0], 300, 0.2)])
    s = pooled["steps"]["forward"]
    assert (s["median"], s["min"], s["max"]) == (3.5, 1.0, 6.0)    # over all six timings
    assert s["others_cpu"] == 0.2 and pooled["peak_rss_mb"] == 300 and pooled["images"] == 16
    assert run.pool_rounds([result([1.0], 1, 0), {"error": "boom"}]) == {"error": "boom"}


@pytest.mark.skipif(gpu_available(), reason="a GPU is here: the no-GPU message cannot be seen")
def test_device_cuda_without_a_gpu_says_so(tmp_path):
    proc = _run_suite(tmp_path, "--smoke", "--no-torch", "--device", "cuda")
    assert proc.returncode != 0
    assert "no GPU here" in proc.stderr and "CuPy" in proc.stderr


@pytest.mark.parametrize("backend_name", CUPY_ONLY, indirect=True)   # a subprocess: real CuPy only
def test_smoke_run_on_the_gpu(tmp_path, backend_name):
    report = tmp_path / "results.md"
    proc = _run_suite(tmp_path, "--smoke", "--no-torch", "--device", "cuda", "--markdown", str(report))
    assert proc.returncode == 0, proc.stderr
    text = report.read_text()
    for case in cases.CASES:
        assert f"| {case} |" in text
    assert "failed" not in text and "peak GPU memory" in text and "GPU:" in text


@pytest.mark.parametrize("backend_name", DEVICE_BACKENDS, indirect=True)
def test_every_minires_case_steps_on_the_device(backend_name, xp, monkeypatch):
    """The minires side of `run.py --device cuda`, in-process on the smoke shapes: on [strict]
    the CuPy stand-in is the device module (and `import cupy` in cases.py finds it). The two
    ResNet-50 cases that share the train step with 'resnet50 train b64' are left out: building a
    ResNet-50 costs seconds on the CPU and proves nothing more."""
    monkeypatch.setitem(sys.modules, "cupy", xp)
    for case in [c for c in cases.CASES if c not in ("resnet50 eval", "resnet50 train")]:
        steps, images, flops = cases.build(case, "minires", smoke=True, device="cuda")
        assert images > 0 and set(flops) == set(steps), case
        for fn in steps.values():
            fn()


def test_unknown_case_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown case"):
        cases.build("resnet9000", "minires")


def test_scaling_smoke_on_one_process_and_the_volume_table(tmp_path):
    report = tmp_path / "scaling.md"
    proc = _run_suite(tmp_path, "--scaling", "--smoke", "--markdown", str(report))
    assert proc.returncode == 0, proc.stderr
    text = report.read_text()
    assert "| 1 x 2 | 8 |" in text and "| ResNet-50 | 25,557,032 | 102.23 MB | 64 |" in text
    assert "| 2 x 1 |" in text   # measured, or "failed: no mpiexec here" where MPI is not installed


def test_ring_allreduce_sends_nearly_twice_the_gradient():
    assert scaling.ring_allreduce_bytes(1000, 2) == 4000          # 2 processes: each sends half, twice
    assert scaling.ring_allreduce_bytes(1000, 64) == 2 * 63 / 64 * 4000
    assert abs(scaling.allreduce_seconds(25_000_000, 8, 10, latency_s=0) - 2 * 7 / 8 * 1e8 * 8 / 1e10) < 1e-12


def test_growth_smoke_writes_the_growth_table(tmp_path):
    report = tmp_path / "growth.md"
    proc = _run_suite(tmp_path, "--growth", "--smoke", "--no-torch", "--markdown", str(report))
    assert proc.returncode == 0, proc.stderr
    growth = report.read_text().split("## Growth")[1]
    rows = [line for line in growth.splitlines() if line.startswith("| resnet")]
    assert [r.split("|")[1:3] for r in rows] == [[f" {cases.SMOKE_NETS[c][0]} ", f" {cases.SMOKE_NETS[c][1]} "]
                                                 for c in cases.GROWTH]


def test_growth_table_cells():
    mr, pt = _result(0.5), _result(0.25)
    lines = run.growth_table([("resnet20 train", "forward", mr, pt), ("resnet56 train", "forward", mr, None)],
                             cases.NETS).splitlines()
    cells = [c.strip() for c in lines[2].split("|")[1:-1]]
    assert cells == ["resnet20", "128", "32.0", "31.25", "1.00 GB", "64.0", "1.00 GB", "0.50"]
    assert [c.strip() for c in lines[3].split("|")[1:-1]][-3:] == ["-", "-", "-"]


@pytest.mark.parametrize("alone", [True, False], ids=["alone", "threads"])
def test_profile_step_accounts_for_the_whole_step(tmp_path, alone):
    """benchmarks/profile_step.py on a tiny step: every row is there, and the rows add up to
    the step's time (the last row is the remainder, so it must not go far below zero)."""
    out = tmp_path / "profile.md"
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "profile_step.py"), "--batch", "4", "--size", "8",
           "--steps", "1", "--markdown", str(out)] + (["--alone"] if alone else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in out.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| work")}
    import profile_step
    assert list(rows) == profile_step.ROWS + ["Python and the rest"]
    assert rows["matmul"] > 0 and rows["im2col"] > 0 and rows["batch norm"] > 0
    assert rows["Python and the rest"] > -0.05 * sum(rows.values())


def test_alone_smoke_writes_the_before_and_after_table(tmp_path):
    report = tmp_path / "alone.md"
    proc = _run_suite(tmp_path, "--smoke", "--no-torch", "--alone", "--cases", "resnet20 train", "resnet20 eval",
                      "--markdown", str(report))
    assert proc.returncode == 0, proc.stderr
    table = report.read_text().split("## ThreadParallel: before and after")[1]
    rows = [line for line in table.splitlines() if line.startswith("| resnet20")]
    assert [r.split("|")[1:3] for r in rows] == [[" resnet20 train ", " train step "], [" resnet20 eval ", " forward "]]
    assert all(r.rstrip(" |").endswith("x") for r in rows)      # the speed-up column, PyTorch skipped


def test_alone_table_ratios():
    a, t, p = _result(0.6), _result(0.4), _result(0.3)
    line = run.alone_table([("c", "forward", a, t, p)]).splitlines()[2]
    assert [c.strip() for c in line.split("|")[1:-1]][2:] == ["600 ms", "400 ms", "300 ms", "0.50", "0.75", "1.50x"]


def test_winograd_probe_computes_the_convolution():
    """The probe's Winograd forward is a correct convolution (so its timing compares like with like)."""
    import winograd_probe
    from minires import nn, no_grad
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 6, 8))
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=False).to(dtype=np.float64)
    with no_grad():
        ref = conv(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(winograd_probe.winograd_forward(x, conv.weight.data), ref, rtol=1e-12, atol=1e-12)
    lines = winograd_probe.main(shapes=((2, 4, 2),), reps=1)
    assert lines[2].startswith("| 2 | 4x4 | 2 |")


def test_matmul_shapes_lists_every_product_of_the_step():
    import matmul_shapes
    rows = matmul_shapes.products(4)
    assert [(s, what) for s, what, *_ in rows][:3] == [(1, "forward"), (1, "input grad"), (1, "weight grad")]
    assert sum(row[5] for row in rows if row[1] == "forward") == 16   # 6 + 5 + 5 convolutions, one chunk each
    lines = matmul_shapes.main(["--batch", "2", "--reps", "1"])
    assert len([line for line in lines if line.startswith("| 1 |")]) == 3 and "ms as minires runs them" in lines[-1]
