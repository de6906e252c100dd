#!/usr/bin/env bash
# dockerfile_test.sh BINARY: what can go stale in deploy/docker/Dockerfile without building the
# image (deploy/docker/test_image.sh builds and runs it, in minutes; this takes a second):
#   - every file or directory it COPYs from the build context exists, and .dockerignore keeps
#     .git and the build trees out of the context
#   - its runtime stage installs the Debian package of every shared library BINARY links (a new
#     library dependency must be added there too)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

binary=${1:?usage: dockerfile_test.sh BINARY}
test_init dockerfile 60
require_binary "$binary"
dockerfile=$REPO_ROOT/deploy/docker/Dockerfile

# The Dockerfile with continuation lines joined.
joined=$(sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' "$dockerfile")

copies=0
while read -r -a words; do
  [[ ${words[0]:-} == COPY ]] || continue
  [[ ${words[1]} == --from=* ]] && continue
  for src in "${words[@]:1:${#words[@]}-2}"; do
    [[ -e $REPO_ROOT/$src ]] || fail "the Dockerfile copies $src, which is not in the repository"
    copies=$((copies + 1))
  done
done <<<"$joined"
((copies >= 3)) || fail "found only $copies COPY sources in the Dockerfile: is the parsing broken?"
log "ok: the $copies paths the Dockerfile copies from the context exist"
for pattern in .git 'build*'; do
  grep -qxF "$pattern" "$REPO_ROOT/.dockerignore" || fail ".dockerignore lacks $pattern"
done
log "ok: .dockerignore keeps .git and build trees out"

# The runtime stage (after the last FROM): the packages of its apt-get install.
runtime=$(awk '/^FROM / { stage = "" } { stage = stage $0 "\n" } END { printf "%s", stage }' <<<"$joined")
read -r -a packages <<<"$(sed -n 's/.*apt-get install -y --no-install-recommends \([^&]*\)&&.*/\1/p' <<<"$runtime")"
((${#packages[@]} > 0)) || fail "no apt-get install in the Dockerfile's runtime stage"
log "runtime packages: ${packages[*]}"

# Each library's package, by one dpkg query (it is slow); dpkg knows a library by the path its
# package ships, /lib or /usr/lib (merged /usr), so both are asked.
mapfile -t linked < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
((${#linked[@]} >= 5)) || fail "ldd listed only ${#linked[@]} libraries of $binary: is the parsing broken?"
queries=()
for lib in "${linked[@]}"; do
  real=$(readlink -f "$lib")
  queries+=("$real" "${real#/usr}")
done
declare -A owner_of=()
while IFS= read -r line; do
  owner_of[${line#*: }]=${line%%:*}
done < <(dpkg -S "${queries[@]}" 2>/dev/null || true)

libs=0
for lib in "${linked[@]}"; do
  real=$(readlink -f "$lib")
  owner=${owner_of[$real]:-${owner_of[${real#/usr}]:-}}
  case $owner in
    libasan* | libubsan* | libtsan* | liblsan*)
      log "skipping $lib: the sanitizer runtime of this build, not part of the image's"
      continue
      ;;
    "") fail "no Debian package owns $lib ($real), which $binary links" ;;
  esac
  [[ " ${packages[*]} " == *" $owner "* ]] ||
    fail "$binary links $lib from package $owner, which the Dockerfile's runtime stage does not install"
  libs=$((libs + 1))
done
log "ok: the runtime stage installs the package of each of the $libs libraries $binary links"
