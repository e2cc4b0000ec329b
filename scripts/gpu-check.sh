#!/usr/bin/env bash
# GPU check: build common/ + kernels/ with CUDA, run the CPU<->GPU parity tests (ctest label `gpu`)
# and the kernels unit tests, then time the GPU backend, and print one summary table.
#
# Meant for a GPU machine that has only the CUDA toolkit, cmake, a C++ compiler and python (none
# of our Debian libraries: no GTest, BLAS/LAPACK, FAISS or Boost). GoogleTest is taken from an
# installed copy if there is one, else built from <repo>/.gtest-src, which you make on a
# Debian machine with libgtest-dev before sending the tree:
#     cp -r /usr/src/googletest .gtest-src          (.gtest-src is git-ignored)
# and carry along (device tool: carry [".gtest-src"]). See docs/gpu-runs.md.
#
# Usage: scripts/gpu-check.sh            (from anywhere; builds in <repo>/build-gpu)
# Environment (all optional):
#   BUILD_DIR=dir               build directory (default <repo>/build-gpu)
#   VECSTASH_CUDA_ARCHS="90"    CUDA architectures (default: the GPU's own, else "80;90")
#   VECSTASH_GTEST_SOURCE_DIR   GoogleTest source tree (default <repo>/.gtest-src, a copy of
#                               Debian's /usr/src/googletest; its googletest/ subfolder works too)
#   GPU_CHECK_FORCE_GTEST_SOURCE=1   ignore an installed GTest (to test the source-tree path)
#   TIMING_ARGS="--rows 200000"      arguments for vecstash_gpu_timing
#   GPU_CHECK_SANITIZE=0        skip the compute-sanitizer pass (memcheck, racecheck, synccheck on
#                               the small GpuSmoke test; it runs when time is left and the tool exists)
#   GPU_CHECK_BUDGET_S=540      the optional steps are skipped once this much time has passed
#   OUT=dir                     also copy the logs there (the device tool returns $OUT)
# Exit status: 0 when everything passed, 1 when a step failed (parity included), 2 on setup errors.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/build-gpu}"
JOBS="$(nproc 2>/dev/null || echo 4)"
LOG_DIR="$BUILD/gpu-check-logs"
GTEST_SRC="${VECSTASH_GTEST_SOURCE_DIR:-$ROOT/.gtest-src}"
T_START=$(date +%s)

mkdir -p "$LOG_DIR"
declare -a SUMMARY=()
FAILED=0

note() { printf '\n==== %s ====\n' "$*"; }
# step NAME TIMEOUT_S LOGFILE CMD...: run with a time limit, tee the log, record the outcome.
# With OPTIONAL_STEP=1 a timeout is reported but does not fail the check.
OPTIONAL_STEP=0
step() {
  local name="$1" limit="$2" log="$3"
  shift 3
  note "$name"
  local t0 rc
  t0=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$limit" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local dt=$(($(date +%s) - t0))
  local result="ok"
  if [ "$rc" -eq 124 ] && [ "$OPTIONAL_STEP" -eq 1 ]; then
    result="timeout ${limit}s (ignored)"
    rc=0
  elif [ "$rc" -eq 124 ]; then
    result="TIMEOUT after ${limit}s"
  elif [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc)"
  fi
  [ "$rc" -ne 0 ] && FAILED=1
  SUMMARY+=("$(printf '%-28s %-22s %5ss   %s' "$name" "$result" "$dt" "${log#"$BUILD"/}")")
  return "$rc"
}

print_summary() {
  note "summary"
  printf '%-28s %-22s %6s   %s\n' "step" "result" "time" "log (under $BUILD)"
  local line
  for line in "${SUMMARY[@]}"; do printf '%s\n' "$line"; done
  printf 'total %ss; ' "$(($(date +%s) - T_START))"
  if [ "$FAILED" -eq 0 ]; then echo "GPU CHECK PASSED"; else echo "GPU CHECK FAILED"; fi
  # At most 7 files: the device tool returns no more than 8 from $OUT.
  if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
    local f
    for f in build parity unit unit-avx512 timing; do
      [ -f "$LOG_DIR/$f.log" ] && cp "$LOG_DIR/$f.log" "$OUT/"
    done
    cat "$LOG_DIR"/sanitizer-*.log >"$OUT/sanitizers.log" 2>/dev/null || rm -f "$OUT/sanitizers.log"
    printf '%s\n' "${SUMMARY[@]}" >"$OUT/summary.txt"
  fi
}

# ---- environment --------------------------------------------------------------------------------
note "environment"
echo "repo:  $ROOT ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
echo "build: $BUILD, $JOBS jobs"
HAVE_GPU=0
if command -v nvidia-smi >/dev/null 2>&1; then
  if nvidia-smi -L; then
    nvidia-smi -L | grep -q '^GPU ' && HAVE_GPU=1
  else
    echo "nvidia-smi -L failed"
  fi
else
  echo "nvidia-smi not found: the parity tests will skip (no device)"
fi
NVCC="${CUDACXX:-}"
[ -z "$NVCC" ] && NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -z "$NVCC" ]; then
  echo "error: nvcc not found (install the CUDA toolkit or set CUDACXX)" >&2
  exit 2
fi
"$NVCC" --version | tail -n 2
cmake --version | head -n 1

ARCHS="${VECSTASH_CUDA_ARCHS:-}"
if [ -z "$ARCHS" ]; then
  # compute_cap is "9.0" on an H100; build only for the GPU at hand (halves the nvcc time).
  GPU_CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')"
  if [[ "$GPU_CAP" =~ ^[0-9]+$ ]]; then ARCHS="$GPU_CAP"; else ARCHS="80;90"; fi
fi
echo "CUDA architectures: $ARCHS"

GENERATOR=()
command -v ninja >/dev/null 2>&1 && GENERATOR=(-G Ninja)

# GoogleTest: an installed copy, else build and install the carried source tree into the build
# directory and point find_package(GTest) at it. (Building it as a subproject through
# VECSTASH_GTEST_SOURCE_DIR trips over the GTest::gtest aliases that googletest >= 1.11 defines.)
GTEST_ARGS=()
have_installed_gtest() {
  [ -f /usr/include/gtest/gtest.h ] || [ -f /usr/local/include/gtest/gtest.h ]
}
if [ "${GPU_CHECK_FORCE_GTEST_SOURCE:-0}" = "1" ] || ! have_installed_gtest; then
  # Accept the distribution root (what `cp -r /usr/src/googletest .gtest-src` makes) or its googletest/.
  GTEST_ROOT_SRC=""
  if [ -f "$GTEST_SRC/googletest/CMakeLists.txt" ]; then
    GTEST_ROOT_SRC="$GTEST_SRC"
  elif [ -f "$GTEST_SRC/CMakeLists.txt" ] && [ -f "$GTEST_SRC/../googletest/CMakeLists.txt" ]; then
    GTEST_ROOT_SRC="$(cd "$GTEST_SRC/.." && pwd)"
  fi
  if [ -z "$GTEST_ROOT_SRC" ]; then
    cat >&2 <<EOF
error: GoogleTest not found. No installed GTest and no source tree at
    $GTEST_SRC
Make one on a Debian machine with libgtest-dev (scripts/setup.sh installs it), in the repo root:
    cp -r /usr/src/googletest .gtest-src
and send it along (device tool: carry [".gtest-src"]), or set VECSTASH_GTEST_SOURCE_DIR.
EOF
    exit 2
  fi
  GTEST_PREFIX="$BUILD/_gtest"
  if [ ! -f "$GTEST_PREFIX/lib/cmake/GTest/GTestConfig.cmake" ]; then
    note "GoogleTest from $GTEST_ROOT_SRC"
    if ! { cmake -S "$GTEST_ROOT_SRC" -B "$BUILD/_gtest-build" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
             -DBUILD_GMOCK=OFF -DINSTALL_GTEST=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
             -DCMAKE_INSTALL_PREFIX="$GTEST_PREFIX" -DCMAKE_INSTALL_LIBDIR=lib &&
           cmake --build "$BUILD/_gtest-build" -j "$JOBS" &&
           cmake --install "$BUILD/_gtest-build"; } >"$LOG_DIR/gtest.log" 2>&1; then
      tail -n 30 "$LOG_DIR/gtest.log" >&2
      echo "error: building GoogleTest failed (log: $LOG_DIR/gtest.log)" >&2
      exit 2
    fi
  fi
  echo "GoogleTest: built from $GTEST_ROOT_SRC into $GTEST_PREFIX"
  GTEST_ARGS+=("-DGTest_DIR=$GTEST_PREFIX/lib/cmake/GTest" "-DGTEST_ROOT=$GTEST_PREFIX" "-DCMAKE_PREFIX_PATH=$GTEST_PREFIX")
else
  echo "GoogleTest: installed copy"
fi

# A cache from another generator cannot be reused.
if [ -f "$BUILD/CMakeCache.txt" ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${GENERATOR[1]:-Unix Makefiles}" "$BUILD/CMakeCache.txt"; then
  rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"
fi

# ---- configure and build ------------------------------------------------------------------------
if ! step "configure" 300 "$LOG_DIR/configure.log" \
    cmake -S "$ROOT" -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DVECSTASH_KERNELS_ONLY=ON -DVECSTASH_CUDA=ON -DVECSTASH_BENCH=OFF -DVECSTASH_TESTS=ON \
    -DCMAKE_CUDA_COMPILER="$NVCC" "-DCMAKE_CUDA_ARCHITECTURES=$ARCHS" "${GTEST_ARGS[@]}"; then
  print_summary
  exit 1
fi
if ! step "build" 420 "$LOG_DIR/build.log" \
    cmake --build "$BUILD" -j "$JOBS" --target gpu_parity_test kernels_test common_test vecstash_gpu_timing; then
  print_summary
  exit 1
fi

# ---- tests ------------------------------------------------------------------------------------
# Parity: one process per test (ctest); a few at a time share the GPU.
# Select by label; zero selected tests is an error, never a pass. (If the label is missing, as when
# gtest_discover_tests splits a LABELS list into separate properties, fall back to the test names:
# every parity suite is named Gpu*.)
SELECT="-L gpu"
if (cd "$BUILD" && ctest -N -L gpu | grep -q "Total Tests: 0"); then
  echo "warning: no test carries the ctest label 'gpu' (check LABELS in tests/CMakeLists.txt); selecting -R Gpu" >&2
  SELECT="-R Gpu"
fi
step "ctest $SELECT (parity)" 240 "$LOG_DIR/parity.log" \
  bash -c "cd '$BUILD' && ctest $SELECT --no-tests=error --output-on-failure -j 4 --timeout 180"
PARITY_RC=$?
# A GPU that nvidia-smi lists but the tests cannot use (driver/runtime mismatch, say) makes every
# parity test skip: that is a failed check, not a pass.
if [ "$PARITY_RC" -eq 0 ] && [ "$HAVE_GPU" -eq 1 ] && grep -q "GpuSearchParity.*Skipped" "$LOG_DIR/parity.log"; then
  echo "error: a GPU is listed but the parity tests skipped (see the skip reason above)" >&2
  SUMMARY+=("$(printf '%-28s %-22s' "parity ran on the GPU" "FAILED (tests skipped)")")
  FAILED=1
  PARITY_RC=1
fi
step "kernels unit tests" 180 "$LOG_DIR/unit.log" \
  bash -c "'$BUILD/tests/kernels_test' --gtest_brief=1 && '$BUILD/tests/common_test' --gtest_brief=1"
# The GPU machines' host processors usually have AVX-512, which development machines lack: run the
# CPU kernels once more with the opt-in AVX-512 table (the CpuIsa tests above compare it directly).
if grep -q avx512vpopcntdq /proc/cpuinfo 2>/dev/null; then
  step "kernels tests, AVX-512" 180 "$LOG_DIR/unit-avx512.log" \
    env VECSTASH_ISA=avx512 "$BUILD/tests/kernels_test" --gtest_brief=1
else
  SUMMARY+=("$(printf '%-28s %-22s' "kernels tests, AVX-512" "skipped (no AVX-512 VPOPCNTDQ)")")
fi

# ---- timing -----------------------------------------------------------------------------------
# shellcheck disable=SC2086
step "timing" 240 "$LOG_DIR/timing.log" "$BUILD/kernels/vecstash_gpu_timing" ${TIMING_ARGS:-}

# ---- compute-sanitizer (optional) ----------------------------------------------------------------
SANITIZER="$(command -v compute-sanitizer || true)"
[ -z "$SANITIZER" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && SANITIZER=/usr/local/cuda/bin/compute-sanitizer
BUDGET="${GPU_CHECK_BUDGET_S:-540}"
if [ "${GPU_CHECK_SANITIZE:-1}" != "0" ] && [ -n "$SANITIZER" ] && [ "$HAVE_GPU" -eq 1 ]; then
  OPTIONAL_STEP=1
  for tool in memcheck racecheck synccheck; do
    if [ $(($(date +%s) - T_START)) -gt "$BUDGET" ]; then
      SUMMARY+=("$(printf '%-28s %-22s' "sanitizer $tool" "skipped (time budget)")")
      continue
    fi
    step "sanitizer $tool" 120 "$LOG_DIR/sanitizer-$tool.log" \
      "$SANITIZER" --tool "$tool" --error-exitcode 99 --print-limit 20 \
      "$BUILD/tests/gpu_parity_test" --gtest_filter='GpuSmoke.*' --gtest_brief=1
  done
  OPTIONAL_STEP=0
else
  SUMMARY+=("$(printf '%-28s %-22s' "compute-sanitizer" "skipped")")
fi

print_summary
if [ "$PARITY_RC" -ne 0 ]; then
  echo "parity FAILED: see $LOG_DIR/parity.log" >&2
fi
exit "$FAILED"
