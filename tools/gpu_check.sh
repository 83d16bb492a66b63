#!/usr/bin/env bash
# The prepared GPU check: on a bare machine with a CUDA device, build gradkern in place with the CUDA
# kernels for sm_90 on all cores, run every CUDA test, then bench/accuracy.py and bench/speed.py on the
# device, and write logs and JSON under OUT_DIR. See docs/gpu.md.
#
#   bash tools/gpu_check.sh [OUT_DIR]        # default OUT_DIR: $OUT if set, else /tmp/gradkern_gpu_check
#
# Writes (8 files at most, flat): summary.txt (environment, each step, the summary line), build.log,
# tests.log, cuda_ulps.jsonl (CPU/CUDA distance of every op, one JSON line per output), accuracy.log,
# accuracy.json, speed.log, speed.json. The last line printed is the one-line summary.
#
# Exit status: 0 every step passed; 1 a step failed or ran out of time; 2 the machine has a CUDA device
# but cannot build or test (no nvcc, torch not a CUDA build, a required Python package missing);
# 3 no CUDA device: everything that needs none was checked and reported, nothing was built or run.
#
# Time: it finishes within 8 minutes. Each step has a time limit (seconds; override with the
# variables): GK_BUILD_TIMEOUT=270, GK_TEST_TIMEOUT=110, GK_ACCURACY_TIMEOUT=40, GK_SPEED_TIMEOUT=45,
# and no step runs past GK_DEADLINE=470 s from the start (a step is cut to what is left, or skipped).
# GK_TEST_SELECT (default "cuda") is the pytest -m expression; GK_TEST_WORKERS the pytest-xdist workers
# (default 12, fewer on a smaller machine; none without pytest-xdist). A missing Python package can
# travel with the working tree as wheels in .whl/ (installed with --no-index into a private folder).
set -u
set -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${1:-${OUT:-/tmp/gradkern_gpu_check}}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
SUMMARY="$OUT_DIR/summary.txt"
: > "$SUMMARY"
PY=${PYTHON:-python3}
command -v "$PY" > /dev/null 2>&1 || PY=python
BUILD_TIMEOUT=${GK_BUILD_TIMEOUT:-270}
TEST_TIMEOUT=${GK_TEST_TIMEOUT:-110}
ACCURACY_TIMEOUT=${GK_ACCURACY_TIMEOUT:-40}
SPEED_TIMEOUT=${GK_SPEED_TIMEOUT:-45}
DEADLINE=${GK_DEADLINE:-470}
TEST_SELECT=${GK_TEST_SELECT:-cuda}
T_START=$(date +%s)
STEPS=()          # one "name: result" entry per step, for the summary line
FAILED=0

say() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - $1 )); }

finish() {  # finish EXIT_CODE VERDICT
  local line
  line="gpu_check: $2 ($(elapsed "$T_START") s):"
  local s
  for s in "${STEPS[@]}"; do line="$line $s;"; done
  line="${line%;} | out: $OUT_DIR"
  say ""
  say "$line"
  exit "$1"
}

# --- 1. environment (never fatal by itself) -------------------------------------------------------
say "gradkern GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), repo $REPO, output $OUT_DIR"
say "machine: $(uname -m), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo 2> /dev/null) memory"
say "git: $(git -C "$REPO" log -1 --format='%h %s' 2> /dev/null | cut -c1-100 || echo 'not a git checkout')"
if command -v nvidia-smi > /dev/null 2>&1; then
  say "nvidia-smi: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -4 | tr '\n' ' ')"
else
  say "nvidia-smi: not found"
fi
NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -n "$NVCC" ]; then
  say "nvcc: $NVCC, $("$NVCC" --version 2>&1 | grep -o 'release [0-9.]*' | head -1)"
else
  say "nvcc: not found"
fi

if [ -d "$REPO/.whl" ] && ls "$REPO"/.whl/*.whl > /dev/null 2>&1; then
  SITE=/tmp/gradkern_gpu_check_site
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$REPO"/.whl/*.whl \
      >> "$SUMMARY" 2>&1; then
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    say "wheels: installed $(ls "$REPO"/.whl/*.whl | wc -l) from .whl/ into $SITE"
  else
    say "wheels: installing .whl/*.whl FAILED (see above)"
  fi
fi

# JAX (a bench peer) must not take 75% of the device's memory at import.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONUNBUFFERED=1

ENV_REPORT=$("$PY" - "$REPO" << 'EOF' 2>&1
import importlib, sys
print(f"python: {sys.version.split()[0]} at {sys.executable}")
try:
    import torch
    from torch.utils import cpp_extension as ce
except Exception as e:  # noqa: BLE001
    print(f"torch: NOT IMPORTABLE ({type(e).__name__}: {e})")
    print("STATUS torch=missing device=0")
    sys.exit(0)
dev = torch.cuda.is_available()
print(f"torch: {torch.__version__}, CUDA build {torch.version.cuda}, CUDA_HOME {ce.CUDA_HOME}, "
      f"ninja {'yes' if ce.is_ninja_available() else 'NO (setuptools would compile one file at a time)'}")
if dev:
    free, total = torch.cuda.mem_get_info()
    p = torch.cuda.get_device_properties(0)
    print(f"device: {torch.cuda.get_device_name(0)}, compute capability {p.major}.{p.minor}, "
          f"{p.multi_processor_count} SMs, {free / 2**30:.0f} of {total / 2**30:.0f} GiB free")
else:
    print("device: none visible to torch (torch.cuda.is_available() is False)")
missing = []
for mod, need in (("pytest", True), ("numpy", True), ("scipy", True), ("mpmath", True), ("hypothesis", True),
                  ("setuptools", True), ("xdist", False), ("pytest_timeout", False), ("jax", False),
                  ("tensorflow_probability", False), ("pyro", False)):
    try:
        m = importlib.import_module(mod)
        extra = ""
        if mod == "jax":
            try:
                extra = f", devices {[d.platform for d in m.devices()]}"
            except Exception as e:  # noqa: BLE001
                extra = f", no devices ({type(e).__name__})"
        print(f"package {mod}: {getattr(m, '__version__', 'present')}{extra}")
    except Exception as e:  # noqa: BLE001
        print(f"package {mod}: {'MISSING (required)' if need else 'absent (optional)'}")
        if need:
            missing.append(mod)
cuda_build = torch.version.cuda is not None and ce.CUDA_HOME is not None
# torch's ATen/cuda headers include cuBLAS / cuSPARSE / cuSOLVER headers for a few type names; a toolkit
# without them builds against cmake/cuda_stubs (as the CMake check does), which declares just those.
stubs = 0
if cuda_build:
    import glob, os
    try:
        dirs = ce.include_paths(device_type="cuda")
    except TypeError:
        dirs = ce.include_paths(cuda=True)
    dirs += [os.path.join(ce.CUDA_HOME, "include"), os.path.join(ce.CUDA_HOME, "targets", "x86_64-linux", "include")]
    lacking = [h for h in ("cublas_v2.h", "cusparse.h", "cusolverDn.h")
               if not any(os.path.exists(os.path.join(d, h)) for d in dirs)]
    stubs = int(bool(lacking))
    print(f"math-library headers: {'missing ' + ', '.join(lacking) + ': building with cmake/cuda_stubs' if lacking else 'found'}")
print(f"STATUS stubs={stubs} torch={torch.__version__} cuda_build={int(cuda_build)} device={int(dev)} missing={','.join(missing)}")
EOF
)
echo "$ENV_REPORT" | grep -v '^STATUS' | tee -a "$SUMMARY"
STATUS=$(echo "$ENV_REPORT" | grep '^STATUS' | tail -1)
has() { echo "$STATUS" | grep -q "$1"; }

BLOCKERS=()
has 'torch=missing' && BLOCKERS+=("torch is not importable")
has 'cuda_build=0' && BLOCKERS+=("torch is not a CUDA build or CUDA_HOME is unset")
[ -z "$NVCC" ] && BLOCKERS+=("nvcc not found")
MISSING=$(echo "$STATUS" | sed -n 's/.*missing=\([^ ]*\).*/\1/p')
[ -n "$MISSING" ] && BLOCKERS+=("Python packages missing: $MISSING (bring them as wheels in .whl/)")
STEPS+=("environment checked")

if ! has 'device=1'; then
  say ""
  say "no CUDA device: stopping before the build/tests (exit 3)."
  for b in "${BLOCKERS[@]}"; do say "  also: $b"; done
  STEPS+=("no CUDA device, stopped before the build")
  finish 3 "NOT RUN"
fi
if [ ${#BLOCKERS[@]} -gt 0 ]; then
  say ""
  for b in "${BLOCKERS[@]}"; do say "cannot build: $b"; done
  STEPS+=("cannot build: ${BLOCKERS[0]}")
  finish 2 "NOT RUN"
fi

# run_step NAME TIMEOUT LOG COMMAND...: runs the command with a time limit (cut to what is left before
# the deadline), its output to LOG.
run_step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local t0 rc left
  t0=$(date +%s)
  left=$(( DEADLINE - $(elapsed "$T_START") ))
  say ""
  if [ "$left" -lt 10 ]; then
    STEP_SECONDS=0
    STEP_RESULT="SKIPPED (the ${DEADLINE} s deadline is reached)"
    say "[$name] $STEP_RESULT"
    return 124
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  say "[$name] $* (limit ${limit} s, log $(basename "$log"))"
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  rc=$?
  STEP_SECONDS=$(elapsed "$t0")
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    STEP_RESULT="TIMEOUT after ${STEP_SECONDS} s"
  elif [ $rc -ne 0 ]; then
    STEP_RESULT="FAILED (exit $rc, ${STEP_SECONDS} s)"
  else
    STEP_RESULT="ok (${STEP_SECONDS} s)"
  fi
  say "[$name] $STEP_RESULT"
  tail -n 5 "$log" | sed 's/^/    /' | tee -a "$SUMMARY"
  return $rc
}

cd "$REPO" || finish 2 "NOT RUN"

# --- 2. build --------------------------------------------------------------------------------------
JOBS=$(nproc)
if has 'stubs=1'; then
  export CPATH="$REPO/cmake/cuda_stubs${CPATH:+:$CPATH}"  # read by the host compiler's preprocessor
fi
if run_step build "$BUILD_TIMEOUT" "$OUT_DIR/build.log" \
    env GRADKERN_CUDA=1 MAX_JOBS="$JOBS" TORCH_CUDA_ARCH_LIST=9.0 \
    "$PY" setup.py build_ext --inplace --build-temp build/gpu_check; then
  STEPS+=("build $STEP_RESULT")
else
  STEPS+=("build $STEP_RESULT")
  finish 1 "FAIL"
fi
# One call on each device before the suite: a build without CUDA kernels, or one that cannot launch
# them (wrong architecture, driver), stops here with one clear line instead of a thousand failures.
if ! "$PY" -c "
import sys, torch, gradkern
print('gradkern from', gradkern.__file__)
if not torch._C._dispatch_has_kernel_for_dispatch_key('gradkern::gammainc', 'CUDA'):
    sys.exit('smoke: the built extension has no CUDA kernels (gradkern::gammainc has none)')
a = torch.tensor([0.5, 3.0, 150.0], dtype=torch.float64)
x = torch.tensor([0.2, 2.5, 160.0], dtype=torch.float64)
print('smoke: gammainc on CUDA', gradkern.gammainc(a.cuda(), x.cuda()).cpu().tolist(), 'on the CPU', gradkern.gammainc(a, x).tolist())
" 2>&1 | tee -a "$SUMMARY"; then
  say "smoke: one CUDA call failed (above): not running the tests"
  STEPS+=("smoke call on CUDA FAILED")
  finish 1 "FAIL"
fi
STEPS+=("smoke call ok")

# --- 3. CUDA tests ---------------------------------------------------------------------------------
PYTEST_ARGS=(-m "$TEST_SELECT" -q -rfEs -p no:cacheprovider)
if echo "$ENV_REPORT" | grep -q '^package xdist: [0-9]'; then
  WORKERS=${GK_TEST_WORKERS:-$(( JOBS > 13 ? 12 : (JOBS > 1 ? JOBS - 1 : 1) ))}
  PYTEST_ARGS+=(-n "$WORKERS")
fi
if echo "$ENV_REPORT" | grep -q '^package pytest_timeout: '; then
  echo "$ENV_REPORT" | grep -q '^package pytest_timeout: absent' || PYTEST_ARGS+=(--timeout 90)
fi
rm -f "$OUT_DIR/cuda_ulps.jsonl"
run_step tests "$TEST_TIMEOUT" "$OUT_DIR/tests.log" \
  env -C "$REPO/tests" PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" GRADKERN_CUDA_REPORT="$OUT_DIR/cuda_ulps.jsonl" \
  "$PY" -m pytest "${PYTEST_ARGS[@]}"
rc=$?
# pytest's closing line, e.g. "1480 passed, 2 failed, 40 skipped, 1496 deselected in 95.10s"
COUNTS=$(grep -E '[0-9]+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed).* in [0-9.]+s' "$OUT_DIR/tests.log" \
  | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')
STEPS+=("tests $STEP_RESULT${COUNTS:+: $COUNTS}")
[ $rc -ne 0 ] && FAILED=1

# --- 4. benches ------------------------------------------------------------------------------------
run_step accuracy "$ACCURACY_TIMEOUT" "$OUT_DIR/accuracy.log" \
  "$PY" bench/accuracy.py --device cuda --json "$OUT_DIR/accuracy.json"
rc=$?
VERDICTS=$(grep -cE '^- FAIL' "$OUT_DIR/accuracy.log" 2> /dev/null)
STEPS+=("accuracy $STEP_RESULT, $(grep -cE '^- PASS' "$OUT_DIR/accuracy.log" 2> /dev/null) targets PASS, ${VERDICTS:-0} FAIL")
[ $rc -ne 0 ] && FAILED=1

run_step speed "$SPEED_TIMEOUT" "$OUT_DIR/speed.log" \
  "$PY" bench/speed.py --device cuda --dtype float32,float64 --json "$OUT_DIR/speed.json"
rc=$?
STEPS+=("speed $STEP_RESULT")
[ $rc -ne 0 ] && FAILED=1

if [ $FAILED -ne 0 ]; then
  finish 1 "FAIL"
fi
finish 0 "PASS"
