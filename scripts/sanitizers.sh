#!/usr/bin/env bash
# The sanitizer jobs of CI (issue 14, "Keep it that way"); scripts/test.sh runs this after
# the main suites (ZS_SANITIZERS=0 leaves them out). Each build has its own tree, ZS_CUDA=OFF,
# no benchmarks, and is a unity build (docs/ci.md: a third less compile time):
#  - build-asan: ASan + UBSan (halt on the first report) + LSan; the unit suites and every
#    multi-rank suite at world size 3 (3 divides no size: the padding paths; world size 1 runs
#    every stage as stage 0, which the unit suites and the np 3 runs' own stage 0 cover); the
#    script tests that need the examples and the tool (checkpoint_*, example_*) run in build/;
#    then the installed-package consumer built with the same flags;
#  - build-tsan: TSan over the tests that run threads: the async checkpoint writer
#    (checkpoint) and the progress engine (collectives), at world size 2.
# Suppressions for Open MPI's and HDF5's own reports live in tests/sanitizers/*.supp, each
# explained there; nothing of ZeroShard's is suppressed.
#
# CI's budget: the jobs take about 9 minutes after the main suites' 13 on the idle 2-core CI
# machine (docs/ci.md), but the same build has been measured at twice its usual time there. A
# job that would not end within ZS_CI_BUDGET_S seconds (default 1800) of ZS_TEST_STARTED (the
# epoch second scripts/test.sh started; default: now) is not started, and a build that runs
# past that point is stopped; either prints "sanitizers: SKIPPED ..." with the command that
# runs it alone. Every test a job does start runs to its end: its failures fail the run.
# Usage: bash scripts/sanitizers.sh [asan|tsan]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${ZS_SANITIZER_JOBS:-$(nproc)}
which=${1:-all}
case "$which" in
  all | asan | tsan) ;;
  *) echo "sanitizers: unknown job '$which' (usage: bash scripts/sanitizers.sh [asan|tsan])" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "sanitizers: one job at most (usage: bash scripts/sanitizers.sh [asan|tsan])" >&2; exit 2; }
supp="$PWD/tests/sanitizers"
started=${ZS_TEST_STARTED:-$(date +%s)}
budget=${ZS_CI_BUDGET_S:-1800}
for setting in "ZS_TEST_STARTED=$started" "ZS_CI_BUDGET_S=$budget"; do
  # No leading zeros: bash arithmetic would read them as octal.
  [[ "${setting#*=}" =~ ^(0|[1-9][0-9]*)$ ]] || { echo "sanitizers: $setting is not a whole number of seconds" >&2; exit 2; }
done
# What a job's tests take after its build, and a margin for what follows (seconds, measured
# upper ends on the CI machine: docs/ci.md).
declare -A test_seconds=([asan]=330 [tsan]=120)
declare -A build_seconds=([asan]=330 [tsan]=150)
margin=90

seconds_left() { echo $((started + budget - margin - $(date +%s))); }

skip() {  # skip JOB REASON
  echo "sanitizers: SKIPPED the $1 job: $2. It runs alone with: bash scripts/sanitizers.sh $1"
}

# configure_and_build JOB DIR FLAGS TARGET...: returns 1 (after skip) if the build would
# leave the job's tests no time within the budget.
configure_and_build() {
  local job=$1 dir=$2 flags=$3
  shift 3
  mkdir -p "$dir"
  # -O1, asserts on: what the sanitizers' own docs recommend, and quicker to compile than the
  # -O3 of Release (docs/ci.md has the jobs' measured times).
  if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="${ZS_SANITIZER_OPT:--O1}" \
       -DZS_CUDA=OFF -DZS_BUILD_BENCH=OFF -DCMAKE_UNITY_BUILD=ON -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer -g1" \
       -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"
    exit 1
  fi
  local build_deadline=$(($(seconds_left) - ${test_seconds[$job]}))
  if [ "$build_deadline" -lt "${build_seconds[$job]}" ]; then
    skip "$job" "$(($(date +%s) - started)) s of the ${budget} s budget are spent; its build and tests take about $((build_seconds[$job] + test_seconds[$job])) s"
    return 1
  fi
  # timeout stops make and its compilers (its own process group); status 124 = the deadline.
  # That group does not get the terminal's Ctrl-C, so it is passed on as SIGTERM (a background
  # job ignores SIGINT, and so would make and the compilers). A build that
  # fails ends the script (the caller's `if` would otherwise take it for a skip).
  local status=0 build_pid
  timeout "$build_deadline" cmake --build "$dir" -j "$jobs" --target "$@" &
  build_pid=$!
  trap 'kill -TERM -- "-$build_pid" 2>/dev/null; wait "$build_pid"; exit 130' INT TERM
  wait "$build_pid" || status=$?
  trap - INT TERM
  if [ "$status" = 124 ]; then
    skip "$job" "its build was stopped after ${build_deadline} s, to leave its tests time within the ${budget} s budget"
    return 1
  fi
  [ "$status" = 0 ] || exit "$status"
}

ran=()
if [ "$which" = all ] || [ "$which" = asan ]; then
  echo "== ASan + UBSan: unit and multi-rank suites (build-asan) =="
  # Every target (no benchmarks): a hand-kept list of test binaries went stale as suites were
  # added, and their tests then failed as "not found".
  asan_flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
  if configure_and_build asan build-asan "$asan_flags" all; then
    # detect_leaks: LSan at exit; Open MPI's and HDF5's own allocations suppressed (lsan.supp).
    # Suppressions match library names, so stacks must reach them: Open MPI keeps its MCA
    # components loaded to exit (a dlclose()d component is "<unknown module>"), and the slow
    # unwinder walks through libraries built without frame pointers.
    export OMPI_MCA_mca_base_component_disable_dlclose=1
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:fast_unwind_on_malloc=0
    export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
    ctest --test-dir build-asan -j "$jobs" --output-on-failure --no-tests=error --timeout 600 -L "unit|mpi" \
      -E "\.np[124]$|^example|install|^checkpoint_|^cluster_"
    # The installed package in a user project built with the same flags (CMake takes CXXFLAGS
    # and LDFLAGS from the environment when it configures the consumer).
    CXXFLAGS="$asan_flags -fno-omit-frame-pointer" LDFLAGS="$asan_flags" \
      ctest --test-dir build-asan --output-on-failure --no-tests=error --timeout 600 -R "^install_consumer$"
    unset OMPI_MCA_mca_base_component_disable_dlclose ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
    ran+=(asan)
  fi
fi

if [ "$which" = all ] || [ "$which" = tsan ]; then
  echo "== TSan: async checkpoint writer and progress engine (build-tsan) =="
  if configure_and_build tsan build-tsan "-fsanitize=thread" zs_checkpoint_tests zs_collective_tests; then
    OMPI_MCA_mca_base_component_disable_dlclose=1 \
    TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp" \
      ctest --test-dir build-tsan --output-on-failure --no-tests=error --timeout 600 -R "^(checkpoint|collectives)\.np2$"
    ran+=(tsan)
  fi
fi
if [ ${#ran[@]} = 0 ]; then
  echo "sanitizers: NO JOB RAN (all skipped for time, above); $(($(date +%s) - started)) s since the tests started"
else
  echo "sanitizers: ok (jobs run: ${ran[*]}; $(($(date +%s) - started)) s since the tests started)"
fi
