#!/usr/bin/env bash
# deploy/docker/test_image.sh: builds the container image (deploy/docker/Dockerfile) with podman
# and checks it the way Kubernetes runs it. As root, on Debian 12, from any directory:
#   1. a Debian 12 base image: made with mmdebstrap from the machine's apt mirror and imported
#      as localhost/smtp_exporter-base:bookworm (once; the tar is kept in $SMTP_TEST_CACHE), or
#      SMTP_IMAGE_BASE=IMAGE to use another (docker.io/library/debian:bookworm-slim where
#      pulls work)
#   2. podman build (a Release build of the exporter inside; minutes on 2 cores, seconds when
#      only unrelated files changed), tagged localhost/smtp_exporter:VERSION
#   3. checks the image: OCI labels, numeric non-root USER, EXPOSE 19225, exec-form ENTRYPOINT
#   4. runs it as Kubernetes would (--read-only, --cap-drop=ALL, no-new-privileges) on the
#      host's network against a real Postfix on 127.0.0.1: /metrics answers and the probe
#      succeeds; the process is the exporter itself, not root, with no capabilities, on a
#      read-only root; SIGTERM stops it with status 0
#   5. runs the default command (no arguments) in a network namespace of its own: the
#      shipped config loads and /-/ready answers on port 19225
# Prints the image size, the build time and the exporter's memory. Needs podman, runc,
# mmdebstrap (tests/support/install_deps.sh container); exits 77 without them.
# Environment: SMTP_IMAGE_BASE (above), KEEP_WORKDIR=1 (lib.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/tests/integration/lib.sh"

for tool in podman runc mmdebstrap nsenter; do
  if ! command -v "$tool" >/dev/null; then
    echo "test_image: $tool is missing: skipped (run: $root/tests/support/install_deps.sh container)" >&2
    exit 77
  fi
done
test_init container 3000

version=$(sed -n 's/^project(smtp_exporter VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
source_url=$(git -C "$root" config --get remote.origin.url 2>/dev/null || echo unknown)
image=localhost/smtp_exporter:$version
podman=(podman --runtime runc)
# runc here needs explicit limits (the default crun runtime does not start at all).
run_opts=(--ulimit nofile=1024:1024 --ulimit nproc=1000:1000)

# --- 1. the base image
base=${SMTP_IMAGE_BASE:-localhost/smtp_exporter-base:bookworm}
if ! podman image exists "$base"; then
  [[ -z ${SMTP_IMAGE_BASE:-} ]] || fail "base image $base does not exist (podman pull it first)"
  tar=$SMTP_TEST_CACHE/container/bookworm-slim.tar
  if [[ ! -s $tar ]]; then
    mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null ||
      true)
    [[ -n $mirror ]] || mirror=$(awk '/^deb / { print $2; exit }' /etc/apt/sources.list)
    mkdir -p "${tar%/*}"
    log "making a Debian 12 base image with mmdebstrap from $mirror (about 2 minutes)"
    # What debian:bookworm-slim leaves out: documentation, manual pages, translations.
    mmdebstrap --variant=minbase --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' bookworm "$tar.tmp" "$mirror" \
      >"$WORKDIR/mmdebstrap.log" 2>&1 || fail "mmdebstrap failed: $(tail -n 5 "$WORKDIR/mmdebstrap.log")"
    mv "$tar.tmp" "$tar"
  fi
  podman import "$tar" "$base" >/dev/null
fi
log "base image: $base"

# --- 2. the build
log "podman build $image (log: $WORKDIR/build.log)"
build_start=$(now_us)
podman build --isolation chroot -f "$root/deploy/docker/Dockerfile" -t "$image" \
  --build-arg DEBIAN_IMAGE="$base" --build-arg VERSION="$version" \
  --build-arg REVISION="$revision" --build-arg SOURCE="$source_url" "$root" \
  >"$WORKDIR/build.log" 2>&1 || fail "podman build failed: $(tail -n 30 "$WORKDIR/build.log")"
build_s=$((($(now_us) - build_start) / 1000000))
log "built $image in ${build_s}s"

# --- 3. the image's metadata
inspect() { podman image inspect --format "$1" "$image"; }
label() { inspect "{{ index .Config.Labels \"org.opencontainers.image.$1\" }}"; }
assert_eq "$version" "$(label version)" "label org.opencontainers.image.version"
assert_eq "$revision" "$(label revision)" "label org.opencontainers.image.revision"
assert_eq "$source_url" "$(label source)" "label org.opencontainers.image.source"
user=$(inspect '{{ .Config.User }}')
[[ $user =~ ^[1-9][0-9]*(:[0-9]+)?$ ]] || fail "USER '$user' is not a numeric non-root user"
log "ok: USER $user"
assert_contains "$(inspect '{{ .Config.ExposedPorts }}')" "19225/tcp" "EXPOSE"
assert_eq "[/usr/local/bin/smtp_exporter]" "$(inspect '{{ .Config.Entrypoint }}')" \
  "ENTRYPOINT (exec form: no shell)"
size=$(inspect '{{ .Size }}')
base_size=$(podman image inspect --format '{{ .Size }}' "$base")

# --- 4. run it hardened against a real Postfix on the host
smtp_port=$(pick_port)
start_postfix "$WORKDIR" "$smtp_port"
cat >"$WORKDIR/smtp_exporter.yml" <<EOF
defaults:
  interval: 2s
  timeout: 1s
  helo_name: monitor.test.local
targets:
  - name: postfix
    address: 127.0.0.1:$smtp_port
EOF
chmod 644 "$WORKDIR/smtp_exporter.yml"
port=$(pick_port)
name=smtp_exporter-test-$$
_CLEANUP+=("podman rm -f -t 2 $name >/dev/null 2>&1")
"${podman[@]}" run -d --name "$name" --network=host --read-only --cap-drop=ALL \
  --security-opt=no-new-privileges "${run_opts[@]}" \
  -v "$WORKDIR/smtp_exporter.yml:/etc/smtp_exporter/smtp_exporter.yml:ro" "$image" \
  --config.file=/etc/smtp_exporter/smtp_exporter.yml --web.listen-address="127.0.0.1:$port" \
  >/dev/null || fail "podman run failed"
_container_log() { podman logs "$name" >"$WORKDIR/container.log" 2>&1 || true; }
_CLEANUP+=(_container_log)
_LOGS+=("$WORKDIR/container.log")
_running() { [[ $(podman inspect --format '{{ .State.Running }}' "$1" 2>/dev/null) == true ]]; }
_ready() {
  _running "$name" || fail "the container exited during start-up: $(podman logs "$name" 2>&1 | tail -n 5)"
  [[ $(http_status "http://127.0.0.1:$port/-/ready") == 200 ]]
}
wait_until 30 "the exporter in the container to answer /-/ready on 127.0.0.1:$port" _ready
_probed() {
  scrape "$port" >"$WORKDIR/scrape.txt" && has_series "$WORKDIR/scrape.txt" 'smtp_probe_success{target="postfix"}'
}
wait_until 20 "a probe of Postfix in /metrics" _probed
assert_metric "$WORKDIR/scrape.txt" 'smtp_probe_success{target="postfix"}' 1
assert_metric "$WORKDIR/scrape.txt" 'smtp_banner_info{target="postfix",software="postfix",hostname="mx.test.local"}' 1
assert_metric "$WORKDIR/scrape.txt" "smtp_exporter_build_info{version=\"$version\",revision=\"$revision\"}" 1

pid=$(podman inspect --format '{{ .State.Pid }}' "$name")
[[ $pid =~ ^[0-9]+$ && $pid -gt 0 ]] || fail "no process id for the container: '$pid'"
assert_eq /usr/local/bin/smtp_exporter "$(readlink "/proc/$pid/exe")" \
  "the container's process (its PID 1) is the exporter itself"
status_field() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$pid/status"; }
uid=${user%%:*}
assert_eq "$uid $uid $uid $uid" "$(status_field Uid)" "the process's real, effective, saved and fs uid"
for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
  assert_eq 0000000000000000 "$(status_field "$cap")" "$cap of the process"
done
assert_eq 1 "$(status_field NoNewPrivs)" "NoNewPrivs of the process"
root_options=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo")
[[ $root_options == ro,* || $root_options == ro ]] ||
  fail "the container's root is not mounted read-only: '$root_options'"
log "ok: the root file system is mounted $root_options"
rss_kib=$(status_field VmRSS)
rss_kib=${rss_kib% kB}

podman stop -t 10 "$name" >/dev/null
assert_eq 0 "$(podman inspect --format '{{ .State.ExitCode }}' "$name")" \
  "exit status after SIGTERM (as PID 1, it handles the signal itself)"

# --- 5. the default command, in a network namespace of its own (nothing reaches out of it)
out=$("${podman[@]}" run --rm --network=none "${run_opts[@]}" "$image" --config.check \
  --config.file=/etc/smtp_exporter/smtp_exporter.yml 2>&1) || fail "--config.check of the shipped config: $out"
assert_contains "$out" "OK, 2 target(s)" "the image's /etc/smtp_exporter/smtp_exporter.yml"
name2=$name-default
_CLEANUP+=("podman rm -f -t 2 $name2 >/dev/null 2>&1")
"${podman[@]}" run -d --name "$name2" --network=none --read-only --cap-drop=ALL \
  "${run_opts[@]}" "$image" >/dev/null || fail "podman run with the default command failed"
pid2=$(podman inspect --format '{{ .State.Pid }}' "$name2")
_default_ready() {
  _running "$name2" || fail "the default command exited: $(podman logs "$name2" 2>&1 | tail -n 5)"
  [[ $(nsenter -t "$pid2" -n curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    http://127.0.0.1:19225/-/ready) == 200 ]]
}
wait_until 30 "the default command to answer /-/ready on port 19225 in its namespace" _default_ready
log "ok: the default command serves on :19225"
podman rm -f -t 2 "$name2" >/dev/null

printf '\nimage %s: %s MB (base %s: %s MB, so the exporter adds %s MB); built in %s s;\n' \
  "$image" "$((size / 1000000))" "$base" "$((base_size / 1000000))" \
  "$(((size - base_size) / 1000000))" "$build_s"
printf 'the exporter in it, probing one target: %s KiB resident\n\n' "$rss_kib"
