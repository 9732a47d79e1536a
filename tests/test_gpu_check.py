"""tools/gpu_check.sh, the one command for a GPU machine, checked without a GPU: its syntax, and
its --dry-run (the CuPy wheel it picks for a driver's CUDA version, the steps, their time limits)."""
import os
import shutil
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "gpu_check.sh")
pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="the GPU check is a bash script that needs bash and coreutils' timeout")


def run(*args):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=60)


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", SCRIPT], capture_output=True).returncode == 0


@pytest.mark.parametrize("cuda, wheel", [("12.4", "cupy-cuda12x"), ("12", "cupy-cuda12x"),
                                         ("13.0", "cupy-cuda13x"), ("13.2", "cupy-cuda13x")])
def test_dry_run_picks_the_wheel_and_lists_every_step(cuda, wheel, tmp_path):
    proc = run("--dry-run", "--cuda-version", cuda, "--out", str(tmp_path / "gc"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"CUDA {cuda} -> {wheel}" in out and f"pip install --quiet {wheel}" in out
    assert "-m pytest tests" in out and "cupy\\ or\\ gpu" in out                  # the [cupy] column
    assert "benchmarks/run.py --device cuda" in out and "report.md" in out
    limits = [int(line.split()[1].rstrip("s")) for line in out.splitlines() if line.strip().startswith("timeout ")]
    assert len(limits) == 4 and all(0 < t <= 300 for t in limits)
    assert not (tmp_path / "gc").exists()                                        # a dry run writes nothing


def test_the_budget_caps_every_step(tmp_path):
    out = run("--dry-run", "--cuda-version", "12.4", "--budget", "100", "--full", "--out", str(tmp_path)).stdout
    assert "timeout 100s" in out and "timeout 240s" not in out and "cupy\\ or\\ gpu" not in out   # --full: every test


@pytest.mark.parametrize("cuda, message", [("11.8", "need CUDA 12 or later"), ("abc", "cannot read a CUDA version")])
def test_an_old_or_unreadable_cuda_version_is_a_clear_error(cuda, message):
    proc = run("--dry-run", "--cuda-version", cuda)
    assert proc.returncode == 1 and message in proc.stderr


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a driver is here: the no-driver message cannot be seen")
def test_without_a_driver_it_says_so():
    proc = run()
    assert proc.returncode == 1 and "no nvidia-smi" in proc.stderr
