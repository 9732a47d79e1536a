#!/usr/bin/env bash
# tools/gpu_check.sh: prove minires on a GPU machine in one command, in under 10 minutes.
#
#   tools/gpu_check.sh                      # install CuPy, run the tests on it, benchmark, write a report
#   tools/gpu_check.sh --dry-run            # print the steps (and the CuPy wheel it would pick), run nothing
#   tools/gpu_check.sh --cuda-version 12.4  # skip nvidia-smi: the driver's CUDA version given by hand
#   tools/gpu_check.sh --out DIR --full     # the whole test suite, not only the GPU tests
#   PYTHON=/path/to/venv/bin/python TORCH_PYTHON=/path/to/torch/bin/python tools/gpu_check.sh
#
# Steps, each under `timeout`, all of them within BUDGET seconds (default 570):
#   1. the driver's CUDA version (nvidia-smi) -> the CuPy wheel: cupy-cuda12x for CUDA 12,
#      cupy-cuda13x for CUDA 13 and later; `pip install` it unless CuPy already sees a GPU;
#   2. the tests on CuPy: every [cupy] test (the [numpy] and [strict] columns ran on the CPU
#      in CI already) and the GPU benchmark smoke test; --full: the whole suite;
#   3. benchmarks/run.py --device cuda: minires on CuPy against PyTorch on CUDA/cuDNN (when
#      the Python in TORCH_PYTHON or PYTHON has a CUDA torch), 'resnet50 train b64' among the cases;
#   4. OUT/report.md: the GPU, the wheel, the test summary, the benchmark table and the
#      ResNet-50 training step against the target (at least 0.5x PyTorch's speed).
# Exit status: 0 when the tests pass (the benchmark's figures are reported, not judged), 1 otherwise.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
BUDGET="${BUDGET:-570}"
OUT=""
DRY=0
FULL=0
CUDA_VERSION=""

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --full) FULL=1 ;;
        --out) OUT="$2"; shift ;;
        --cuda-version) CUDA_VERSION="$2"; shift ;;
        --budget) BUDGET="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
OUT="${OUT:-$ROOT/gpu-check-$(date +%Y%m%d-%H%M%S)}"
START=$(date +%s)

# The CuPy wheel for a driver's CUDA version ("12.4" -> cupy-cuda12x); an error for CUDA < 12.
wheel_for() {
    local major="${1%%.*}"
    case "$major" in
        ''|*[!0-9]*) echo "gpu_check.sh: cannot read a CUDA version from '$1'" >&2; return 1 ;;
    esac
    if [ "$major" -ge 13 ]; then echo cupy-cuda13x
    elif [ "$major" -eq 12 ]; then echo cupy-cuda12x
    else echo "gpu_check.sh: the driver supports CUDA $1; minires's CuPy wheels need CUDA 12 or later" \
              "(cupy-cuda12x, cupy-cuda13x): update the NVIDIA driver" >&2; return 1
    fi
}

# Seconds left for a step: its own limit, or what remains of the budget if that is less.
left() {
    local rest=$(( START + BUDGET - $(date +%s) ))
    [ "$rest" -lt "$1" ] && echo "$rest" || echo "$1"
}

# Run (or, with --dry-run, print) one step under `timeout`: step LIMIT LOGFILE COMMAND...
step() {
    local limit log
    limit=$(left "$1"); log="$2"; shift 2
    if [ "$DRY" = 1 ]; then
        echo "  timeout ${limit}s $(printf '%q ' "$@")> ${log#"$OUT"/}"
        return 0
    fi
    if [ "$limit" -le 0 ]; then
        echo "out of time (budget ${BUDGET}s): skipped $*" | tee "$log"
        return 124
    fi
    echo "[$(( $(date +%s) - START ))s] $* (at most ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
}

if [ -z "$CUDA_VERSION" ]; then
    if command -v nvidia-smi > /dev/null 2>&1; then
        CUDA_VERSION="$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9][0-9.]*\).*/\1/p' | head -n 1)"
        GPU_NAME="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n 1)"
    elif [ "$DRY" = 1 ]; then
        CUDA_VERSION="12"
        echo "(dry run: no nvidia-smi here; assuming CUDA 12 to show the steps)"
    else
        echo "gpu_check.sh: no nvidia-smi: this machine has no NVIDIA driver (no GPU to check)" >&2
        exit 1
    fi
fi
WHEEL="$(wheel_for "$CUDA_VERSION")" || exit 1
GPU_NAME="${GPU_NAME:-unknown (nvidia-smi not run)}"

TEST_ARGS=(-m pytest tests -q -p no:cacheprovider -rfEs)
[ "$FULL" = 1 ] || TEST_ARGS+=(-k "cupy or gpu")
BENCH_ARGS=(benchmarks/run.py --device cuda --reps 5 --warmup 2 --markdown "$OUT/benchmarks.md" --json "$OUT/benchmarks.json")
if [ -n "${TORCH_PYTHON:-}" ]; then BENCH_ARGS+=(--torch-python "$TORCH_PYTHON"); fi

echo "minires GPU check: CUDA $CUDA_VERSION -> $WHEEL; Python $PY; report in $OUT/report.md; budget ${BUDGET}s"
[ "$DRY" = 1 ] && echo "steps:"
[ "$DRY" = 1 ] || mkdir -p "$OUT"
cd "$ROOT" || exit 1

# 1. CuPy (and minires's test dependencies, if this Python lacks them)
if [ "$DRY" = 1 ] || ! "$PY" -c "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0" > /dev/null 2>&1; then
    step 240 "$OUT/install.log" "$PY" -m pip install --quiet "$WHEEL" || { echo "installing $WHEEL failed: see $OUT/install.log" >&2; exit 1; }
fi
if [ "$DRY" = 1 ] || ! "$PY" -c "import minires, pytest, sklearn" > /dev/null 2>&1; then
    step 120 "$OUT/install-test.log" "$PY" -m pip install --quiet -e ".[test]" || { echo "installing minires[test] failed: see $OUT/install-test.log" >&2; exit 1; }
fi

# 2. the tests on CuPy
step 300 "$OUT/tests.log" "$PY" "${TEST_ARGS[@]}"
TESTS_RC=$?

# 3. the benchmarks, minires on CuPy against PyTorch on CUDA
step 240 "$OUT/benchmarks.log" "$PY" "${BENCH_ARGS[@]}"
BENCH_RC=$?

if [ "$DRY" = 1 ]; then
    echo "  write $OUT/report.md"
    exit 0
fi

# 4. the report
{
    echo "# minires GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- GPU: $GPU_NAME; driver's CUDA $CUDA_VERSION; wheel $WHEEL"
    echo "- CuPy: $("$PY" -c 'import cupy; print(cupy.__version__)' 2>/dev/null || echo 'not importable')"
    echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown); took $(( $(date +%s) - START )) s"
    echo
    echo "## Tests ($([ "$FULL" = 1 ] && echo 'the whole suite' || echo 'the [cupy] column and the GPU smoke test'))"
    echo
    echo '```'
    tail -n 25 "$OUT/tests.log"
    echo '```'
    echo
    echo "## Benchmarks (benchmarks/run.py --device cuda; exit status $BENCH_RC)"
    echo
    if [ -s "$OUT/benchmarks.md" ]; then
        cat "$OUT/benchmarks.md"
        echo
        echo "Target: the 'resnet50 train b64' step at least 0.5x PyTorch's (cuDNN) speed:"
        echo
        grep -F "| resnet50 train b64 |" "$OUT/benchmarks.md" || echo "(no 'resnet50 train b64' row)"
    else
        echo '```'
        tail -n 25 "$OUT/benchmarks.log"
        echo '```'
    fi
} > "$OUT/report.md"
echo "report: $OUT/report.md (tests: exit status $TESTS_RC; benchmarks: $BENCH_RC)"
[ "$TESTS_RC" = 0 ]
