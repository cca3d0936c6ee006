#!/usr/bin/env bash
# Container start-to-exit latency (issue 7): `rbuild run --rm IMAGE true` against
# `docker run --rm --network host IMAGE true`, the same busybox image in both, on this
# machine. Prints both medians and the ratio (target: rbuild <= 0.5x docker).
#
#   bench/run.sh      (RUNS=30 WARMUP=3, BENCH_DIR=/var/tmp; RBUILD=path/to/rbuild to
#                      skip the release build)
#
# Docker: Debian's dockerd (docker.io), a private daemon started here with
# `--iptables=false --bridge=none` on its own socket and data root; the image is loaded
# into it with `rbuild save | docker load`, so both run the very same layers. `--network
# host` because the daemon has no bridge (and rbuild shares the host's network too).
#
# Timing: hyperfine (Debian `hyperfine`) with `-N` (no shell in between) when it is
# installed, else a loop of RUNS runs each, timed with `date +%s%N`. Both are checked
# first: the command must succeed, and neither may leave a container behind.
#
# Needs root, docker.io, busybox-static, python3. Everything (dockerd, its data root,
# the store) lives under BENCH_DIR and /tmp/bench-r* and is removed at the end, on
# error too.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

runs=${RUNS:-30}
warmup=${WARMUP:-3}
for t in dockerd python3; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install docker.io python3" >&2; exit 1; }
done
docker=/usr/bin/docker # Debian's CLI, the daemon's version
[ -x "$docker" ] || { echo "missing $docker: apt-get install docker.io" >&2; exit 1; }
if [ -n "${RBUILD:-}" ]; then
  rbuild=$(realpath "$RBUILD")
else
  cargo build --release -q
  rbuild=$repo/target/release/rbuild
fi

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rbuild-brun.XXXXXX")
dsock=/tmp/bench-r-d.sock
droot=/tmp/bench-r-d
dexec=/tmp/bench-r-d-exec
dpid=
cleanup() {
  if [ -n "$dpid" ]; then
    # Containers first, so that their mounts and processes go with the daemon's help.
    ids=$("$docker" -H "unix://$dsock" ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || "$docker" -H "unix://$dsock" rm -f $ids >/dev/null 2>&1 || true
    kill "$dpid" 2>/dev/null || true
    wait "$dpid" 2>/dev/null || true
  fi
  grep -o " $work[^ ]*\| $droot[^ ]*\| $dexec[^ ]*" /proc/mounts | sort -r |
    xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work" "$droot" "$dexec" "$dsock" "$dexec.pid"
}
trap cleanup EXIT
cd "$work"
log=$work/log
mkdir -p "$log"
fail() { echo "FAILED: $1" >&2; [ -z "${2:-}" ] || tail -40 "$2" >&2; exit 1; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r)," \
  "$(findmnt -no FSTYPE -T "$work") on ${BENCH_DIR:-/var/tmp}"
echo "tools: $("$rbuild" --version) (release) | dockerd $(dockerd --version | sed 's/Docker version //')" \
  "| $(command -v hyperfine >/dev/null && hyperfine --version || echo 'no hyperfine: a timed loop')"

# --- the image: busybox made locally, the same layers in both ---------------------------
store=$work/store
image=bench/busybox:1
"$repo/fixtures/busybox-rootfs.sh" busybox.tar
"$rbuild" --root "$store" import -c 'CMD ["/bin/sh"]' busybox.tar "$image" >/dev/null

dockerd --iptables=false --bridge=none -H "unix://$dsock" --data-root "$droot" \
  --exec-root "$dexec" --pidfile "$dexec.pid" >"$log/dockerd.log" 2>&1 &
dpid=$!
export DOCKER_HOST=unix://$dsock
for _ in $(seq 1 100); do "$docker" version >/dev/null 2>&1 && break; sleep 0.2; done
"$docker" version >/dev/null 2>&1 || fail "dockerd did not start" "$log/dockerd.log"
"$rbuild" --root "$store" save "$image" | "$docker" load -q >/dev/null
[ "$("$docker" inspect -f '{{.Id}}' "$image")" = "$("$rbuild" --root "$store" inspect -f '{{.Id}}' "$image")" ] ||
  fail "docker loaded another image ID than rbuild's"

rb=("$rbuild" --root "$store" run --rm "$image" true)
dk=("$docker" run --rm --network host "$image" true)

# --- both work, and leave nothing -----------------------------------------------------
"${rb[@]}" || fail "rbuild run failed"
"${dk[@]}" || fail "docker run failed"
[ -z "$("$rbuild" --root "$store" ps -aq)" ] || fail "rbuild run --rm left a container"
[ -z "$("$docker" ps -aq)" ] || fail "docker run --rm left a container"

# --- timing -------------------------------------------------------------------------------
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup "$warmup" --runs "$runs" --export-json "$log/hyperfine.json" \
    -n rbuild "${rb[*]}" -n docker "${dk[*]}" >"$log/hyperfine.txt" 2>&1 ||
    fail "hyperfine failed" "$log/hyperfine.txt"
  read -r rb_med dk_med rb_min dk_min < <(python3 - "$log/hyperfine.json" <<'EOF'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
print(r["rbuild"]["median"], r["docker"]["median"], r["rbuild"]["min"], r["docker"]["min"])
EOF
)
  sed -n '/Benchmark 1/,$p' "$log/hyperfine.txt"
else
  timed() { # command...: prints seconds
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null || fail "$* failed"
    t1=$(date +%s%N)
    python3 -c "print(($t1 - $t0) / 1e9)"
  }
  for _ in $(seq "$warmup"); do "${rb[@]}"; "${dk[@]}"; done
  rb_t=() dk_t=()
  # Interleaved, so that a slow moment of the machine hits both.
  for _ in $(seq "$runs"); do
    rb_t+=("$(timed "${rb[@]}")")
    dk_t+=("$(timed "${dk[@]}")")
  done
  rb_med=$(median "${rb_t[@]}") dk_med=$(median "${dk_t[@]}")
  rb_min=$(printf '%s\n' "${rb_t[@]}" | sort -n | head -1)
  dk_min=$(printf '%s\n' "${dk_t[@]}" | sort -n | head -1)
fi
[ -z "$("$rbuild" --root "$store" ps -aq)" ] || fail "rbuild run --rm left a container"

ratio=$(python3 -c "print(f'{$rb_med / $dk_med:.3f}')")
verdict=$(python3 -c "print('met' if $rb_med <= 0.5 * $dk_med else 'NOT met')")
echo
printf 'run --rm %s true, %s runs each (medians; fastest in brackets)\n' "$image" "$runs"
printf '  rbuild  %6.1f ms  (%.1f ms)\n' "$(python3 -c "print($rb_med * 1000)")" "$(python3 -c "print($rb_min * 1000)")"
printf '  docker  %6.1f ms  (%.1f ms)\n' "$(python3 -c "print($dk_med * 1000)")" "$(python3 -c "print($dk_min * 1000)")"
printf '  rbuild/docker = %s (target <= 0.5: %s)\n' "$ratio" "$verdict"
