#!/usr/bin/env bash
# The ctest fuzz smoke: runs one fuzz target over its seed corpus for a fixed number of inputs
# with a fixed seed, so every run tries the same inputs. Fails on a crash, an invariant violated,
# a leak, a timeout (an input over 10 s) or an input that takes more than 2 GB.
#   smoke.sh FUZZER CORPUS_DIR RUNS [libFuzzer flags...]
# New inputs go to a scratch corpus next to the binary, never into the seed corpus; a failing
# input is saved as <fuzzer>-crash-<sha1> (or -timeout-, -oom-, -leak-) beside it.
set -euo pipefail
fuzzer=$1 corpus=$2 runs=$3
shift 3
name=$(basename "$fuzzer")
dir=$(dirname "$fuzzer")
scratch=$dir/$name.smoke-corpus
rm -rf "$scratch"
mkdir -p "$scratch"
dict=$(dirname "$corpus")/../$(basename "$corpus").dict
dict_flag=()
[[ -f $dict ]] && dict_flag=("-dict=$dict")
exec "$fuzzer" -seed=1 -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$dir/$name-" "${dict_flag[@]}" "$@" "$scratch" "$corpus"
