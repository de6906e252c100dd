#!/usr/bin/env bash
# tests/run.sh: the whole test suite, from any directory, on a fresh Debian 12 as root.
#   1. installs the build and test dependencies (tests/support/install_deps.sh build test)
#   2. checks the formatting of every C++ file (clang-format --dry-run --Werror) and lints the
#      shell scripts (shellcheck)
#   3. configures and builds in build/ (CMake, Ninja, Release: GCC 12's -O3 warnings are errors too)
#   4. runs ctest: unit tests, then the integration tests (real Postfix, Exim, Prometheus)
#   5. builds again with AddressSanitizer and UBSan in build-asan/ (Debug) and runs ctest there too
#   6. builds the fuzz targets with clang in build-fuzz/ and runs their smoke: each target over
#      its seed corpus for a fixed number of inputs with a fixed seed (tests/fuzz/README.md)
# Exits non-zero if any step fails; a formatting or lint failure does not stop the build and tests, so
# one run shows everything that is wrong.
# Environment: SKIP_DEPS=1 skips step 1; SKIP_FUZZ=1 skips step 6; JOBS (default: cores) for ninja and ctest;
# CTEST_ARGS (e.g. "-L unit" or "-R mta") is passed on to ctest.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc)}
build_dir=$root/build
asan_dir=$root/build-asan
failed=()

started=$SECONDS
# Each step's heading says when it began, so a slow run shows where its time went.
elapsed() { printf '%dm%02ds' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }
step() { printf '\n==== %s (at %s)\n' "$*" "$(elapsed)"; }

if [[ -z ${SKIP_DEPS:-} ]]; then
  step "dependencies"
  tests/support/install_deps.sh build test
fi

step "clang-format"
mapfile -t sources < <(find probes exporter tests -type f \( -name '*.cpp' -o -name '*.h' \) | sort)
unformatted=()
for f in "${sources[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if ((${#unformatted[@]} == 0)); then
  echo "${#sources[@]} files formatted as .clang-format says"
else
  echo "not formatted as .clang-format says (fix with: clang-format -i FILE...):"
  printf '  %s\n' "${unformatted[@]}"
  failed+=(clang-format)
fi

step "shellcheck"
mapfile -t scripts < <(find tests deploy -type f -name '*.sh' | sort)
scripts+=(.ci/run)
if shellcheck -x -P tests/integration "${scripts[@]}"; then
  echo "${#scripts[@]} shell scripts pass shellcheck"
else
  failed+=(shellcheck)
fi

step "configure and build ($build_dir)"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release
if ! ninja -C "$build_dir" -j "$jobs"; then
  echo "build failed"
  exit 1
fi

step "ctest"
# shellcheck disable=SC2086 # CTEST_ARGS is a list of words
if ! ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" ${CTEST_ARGS:-}; then
  failed+=(ctest)
fi

step "the same tests with AddressSanitizer and UBSan ($asan_dir)"
# Lifetime bugs in coroutines hide in optimised builds; this build and run found a
# use-after-free on every scrape that the plain run above did not see.
cmake -S . -B "$asan_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" >/dev/null
if ! ninja -C "$asan_dir" -j "$jobs"; then
  echo "sanitizer build failed"
  failed+=(asan-build)
else
  # Not here: the tests whose subject is a file beside the binary (dashboards, rules, manifests,
  # the Dockerfile, whose test reads the binary's libraries: in this build, the sanitizers'); what
  # of the binary they run, the other tests run too.
  not_the_binary='integration\.(dashboards|alert_rules|kubernetes|systemd|dockerfile)_test'
  # shellcheck disable=SC2086 # CTEST_ARGS is a list of words
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$asan_dir" --output-on-failure -j "$jobs" -E "$not_the_binary" \
    ${CTEST_ARGS:-}; then
    failed+=(ctest-asan)
  fi
fi

if [[ -z ${SKIP_FUZZ:-} ]]; then
  step "fuzz smoke ($root/build-fuzz)"
  if cmake -S tests/fuzz -B "$root/build-fuzz" -G Ninja -DCMAKE_CXX_COMPILER=clang++ &&
    ninja -C "$root/build-fuzz" -j "$jobs"; then
    if ! ctest --test-dir "$root/build-fuzz" --output-on-failure -j "$jobs"; then
      failed+=(fuzz)
    fi
  else
    echo "fuzz targets failed to build"
    failed+=(fuzz-build)
  fi
fi

if ((${#failed[@]})); then
  printf '\nFAILED after %s: %s\n' "$(elapsed)" "${failed[*]}"
  exit 1
fi
printf '\nAll checks passed in %s.\n' "$(elapsed)"
