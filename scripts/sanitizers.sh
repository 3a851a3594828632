#!/usr/bin/env bash
# The sanitizer jobs of CI (issue 14, "Keep it that way"); scripts/test.sh runs this after
# the main suite when ZS_SANITIZERS=1 (off by default: docs/ci.md). Each build has its own tree, ZS_CUDA=OFF and no
# benchmarks:
#  - build-asan: ASan + UBSan (halt on the first report) + LSan; the unit suites and every
#    multi-rank suite at world sizes 1 and 3 (3 divides no size: the padding paths); the
#    script tests that need the examples and the tool (checkpoint_*, example_*) run in build/;
#  - build-tsan: TSan over the tests that run threads: the async checkpoint writer
#    (checkpoint) and the progress engine (collectives), at world size 2.
# Suppressions for Open MPI's and HDF5's own reports live in tests/sanitizers/*.supp, each
# explained there; nothing of ZeroShard's is suppressed.
# Usage: bash scripts/sanitizers.sh [asan|tsan]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${ZS_SANITIZER_JOBS:-$(nproc)}
which=${1:-all}
supp="$PWD/tests/sanitizers"

configure_and_build() {  # configure_and_build DIR FLAGS TARGET...
  local dir=$1 flags=$2
  shift 2
  mkdir -p "$dir"
  # -O1, asserts on: what the sanitizers' own docs recommend, and quicker to compile than the
  # -O3 of Release (docs/ci.md has the jobs' measured times).
  if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="${ZS_SANITIZER_OPT:--O1}" \
       -DZS_CUDA=OFF -DZS_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer -g1" \
       -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"
    exit 1
  fi
  cmake --build "$dir" -j "$jobs" --target "$@"
}

if [ "$which" = all ] || [ "$which" = asan ]; then
  echo "== ASan + UBSan: unit and multi-rank suites (build-asan) =="
  # Every target (no benchmarks): a hand-kept list of test binaries went stale as suites were
  # added, and their tests then failed as "not found".
  asan_flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
  configure_and_build build-asan "$asan_flags" all
  # detect_leaks: LSan at exit; Open MPI's and HDF5's own allocations suppressed (lsan.supp).
  # Suppressions match library names, so stacks must reach them: Open MPI keeps its MCA
  # components loaded to exit (a dlclose()d component is "<unknown module>"), and the slow
  # unwinder walks through libraries built without frame pointers.
  export OMPI_MCA_mca_base_component_disable_dlclose=1
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:fast_unwind_on_malloc=0
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
  ctest --test-dir build-asan -j "$jobs" --output-on-failure --timeout 600 -L "unit|mpi" -E "\.np[24]$|^example|install|^checkpoint_|^cluster_"
  # The installed package in a user project built with the same flags (CMake takes CXXFLAGS
  # and LDFLAGS from the environment when it configures the consumer).
  CXXFLAGS="$asan_flags -fno-omit-frame-pointer" LDFLAGS="$asan_flags" \
    ctest --test-dir build-asan --output-on-failure --timeout 600 -R "^install_consumer$"
  unset OMPI_MCA_mca_base_component_disable_dlclose ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
fi

if [ "$which" = all ] || [ "$which" = tsan ]; then
  echo "== TSan: async checkpoint writer and progress engine (build-tsan) =="
  configure_and_build build-tsan "-fsanitize=thread" zs_checkpoint_tests zs_collective_tests
  OMPI_MCA_mca_base_component_disable_dlclose=1 \
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp" \
    ctest --test-dir build-tsan --output-on-failure --timeout 600 -R "^(checkpoint|collectives)\.np2$"
fi
echo "sanitizers: ok"
