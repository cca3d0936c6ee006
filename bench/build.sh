#!/usr/bin/env bash
# Builds the same Dockerfiles with rbuild, buildah (`bud --isolation chroot --layers`) and
# Docker BuildKit (a private dockerd started here), all FROM the same locally made busybox
# base (no network pulls), and prints medians of ROUNDS runs and the ratios rbuild/other.
#
#   bench/build.sh      (ROUNDS=3, BENCH_DIR=/var/tmp; ONLY="a b c d e" to pick cases,
#                        TOOLS="rbuild buildah buildkit" to pick tools (ratios need all
#                        three); RBUILD=path/to/rbuild to skip the release build)
#
# Cases: (a) cold 10-step build with 5 small RUNs; (b) the same, fully cached; (c) cold
# build COPYing 20,000 small files + 4 x 100 MB; (d) (c) again after one small file
# changed; (e) one RUN touching one file on a 2 MB base and on a 200 MB base.
# "Cold" = --no-cache for every tool (the base image stays). Needs root, Debian's buildah,
# docker.io (dockerd 20.10 + its CLI at /usr/bin/docker, which has BuildKit built in) and
# busybox-static. Generated inputs live under BENCH_DIR and are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

rounds=${ROUNDS:-3}
only=${ONLY:-a b c d e}
tools=${TOOLS:-rbuild buildah buildkit}
use() { [[ " $tools " == *" $1 "* ]]; }
if use buildah; then command -v buildah >/dev/null || apt-get install -y -q buildah >/dev/null; fi
docker=/usr/bin/docker # Debian's CLI: BuildKit built in (a newer CLI needs buildx)
if use buildkit && [ ! -x "$docker" ]; then docker=$(command -v docker); fi
if [ -n "${RBUILD:-}" ]; then
  rbuild=$(realpath "$RBUILD") # a given binary (e.g. while cargo holds the target dir)
else
  cargo build --release -q
  rbuild=$repo/target/release/rbuild
fi

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rbuild-bb.XXXXXX")
dsock=/tmp/bench-d.sock
dpid=
cleanup() {
  if [ -n "$dpid" ]; then
    kill "$dpid" 2>/dev/null || true
    wait "$dpid" 2>/dev/null || true
  fi
  # buildah's overlay mounts (if any) must go before the tree can be removed.
  buildah --root "$work/buildah" --runroot "$work/buildah-run" rm -a >/dev/null 2>&1 || true
  buildah --root "$work/buildah" --runroot "$work/buildah-run" unshare true >/dev/null 2>&1 || true
  grep -o " $work[^ ]*\| /tmp/bench-d[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work" /tmp/bench-d /tmp/bench-d-exec "$dsock"
}
trap cleanup EXIT
cd "$work"
log=$work/log
mkdir -p "$log"

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# --- machine --------------------------------------------------------------------------
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r)," \
  "$(findmnt -no FSTYPE -T "$work") on ${BENCH_DIR:-/var/tmp}"
versions="$("$rbuild" --version 2>/dev/null || echo rbuild) (release)"
if use buildah; then versions+=" | $(buildah --version)"; fi
if use buildkit; then
  versions+=" | dockerd $(dockerd --version | sed 's/Docker version //')"
  versions+=" + CLI $("$docker" --version | sed 's/Docker version //')"
fi
echo "tools: $versions"

# --- bases: busybox (~2 MB) and busybox + 200 MB --------------------------------------
"$repo/fixtures/busybox-rootfs.sh" busybox.tar
mkdir big-root
tar -C big-root -xf busybox.tar
python3 - big-root/opt/big <<'PY'
import os, sys
d = sys.argv[1]
os.makedirs(d)
for i in range(1000):  # 1000 x 200 KB = 200 MB
    with open(f"{d}/f{i:04}.bin", "wb") as f:
        f.write(os.urandom(200_000))
PY
tar --sort=name --numeric-owner -C big-root -cf big.tar .
rm -rf big-root
export RB_STORE=$work/rbuild-store
rb() { "$rbuild" --root "$RB_STORE" "$@"; }
rb import busybox.tar bench-base:2mb >/dev/null
rb import big.tar bench-base:200mb >/dev/null
rb save -o base2.tar bench-base:2mb
rb save -o base200.tar bench-base:200mb
rm -f busybox.tar big.tar

ba() { buildah --root "$work/buildah" --runroot "$work/buildah-run" --storage-driver overlay "$@"; }
if use buildah; then
  ba pull -q docker-archive:base2.tar >/dev/null
  ba pull -q docker-archive:base200.tar >/dev/null
fi

# dockerd on a private socket and data root.
dk() { "$docker" "$@"; }
buildkit="not measured"
if use buildkit; then
  dockerd --iptables=false --bridge=none -H "unix://$dsock" --data-root /tmp/bench-d \
    --exec-root /tmp/bench-d-exec --pidfile /tmp/bench-d-exec.pid >"$log/dockerd.log" 2>&1 &
  dpid=$!
  export DOCKER_HOST=unix://$dsock DOCKER_BUILDKIT=1
  for _ in $(seq 1 100); do "$docker" version >/dev/null 2>&1 && break; sleep 0.2; done
  dk load -q -i base2.tar >/dev/null
  dk load -q -i base200.tar >/dev/null
  if dk build --help 2>&1 | grep -q -- '--progress'; then
    buildkit="BuildKit (dockerd $(dk version -f '{{.Server.Version}}'))"
  else
    buildkit="LEGACY builder: this docker has no BuildKit"
  fi
fi
echo "docker builder: $buildkit"

# --- inputs ---------------------------------------------------------------------------
mkdir -p ctx-a
cat >ctx-a/Dockerfile <<'EOF'
FROM bench-base:2mb
ENV APP=/app LANG=C.UTF-8
WORKDIR /app
COPY app.sh /app/
RUN echo one >/app/one && chmod +x /app/app.sh
RUN echo "app:x:1000:1000::/app:/bin/sh" >>/etc/passwd
RUN mkdir -p /var/lib/app && echo two >/var/lib/app/two
RUN sh /app/app.sh >/app/out.txt
RUN ls -la /app >/app/listing
LABEL org.example.bench=a
CMD ["/app/app.sh"]
EOF
printf '#!/bin/sh\necho hello from app\n' >ctx-a/app.sh

mkdir -p ctx-c
python3 - ctx-c <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    os.makedirs(f"{root}/files/d{d:03}")
    for f in range(200):  # 20,000 files of ~600 bytes
        with open(f"{root}/files/d{d:03}/f{f:03}.txt", "w") as fh:
            fh.write((f"{d} {f} " * 100)[:600])
os.makedirs(f"{root}/big")
for i in range(4):
    with open(f"{root}/big/b{i}.bin", "wb") as fh:
        for _ in range(100):
            fh.write(os.urandom(1_000_000))
PY
cat >ctx-c/Dockerfile <<'EOF'
FROM bench-base:2mb
COPY big/ /data/big/
COPY files/ /data/files/
EOF

for b in 2mb 200mb; do
  mkdir -p "ctx-e$b"
  printf 'FROM bench-base:%s\nRUN echo touched >/etc/touched\n' "$b" >"ctx-e$b/Dockerfile"
done
sync

# --- runners: each prints its wall time; logs kept for DONE times ------------------------
run_rb() { # tag ctx [opts...]
  local tag=$1 ctx=$2; shift 2
  local t0; t0=$(now)
  rb build --progress plain -t "$tag" "$@" "$ctx" >>"$log/rbuild-$tag.log" 2>&1 ||
    { echo "rbuild build failed:" >&2; tail -25 "$log/rbuild-$tag.log" >&2; exit 1; }
  echo "$(now) - $t0" | bc
}
run_ba() {
  local tag=$1 ctx=$2; shift 2
  local t0; t0=$(now)
  ba bud --isolation chroot --layers --pull=never -q -t "$tag" "$@" "$ctx" >>"$log/buildah-$tag.log" 2>&1 ||
    { echo "buildah build failed:" >&2; tail -25 "$log/buildah-$tag.log" >&2; exit 1; }
  echo "$(now) - $t0" | bc
}
run_dk() {
  local tag=$1 ctx=$2; shift 2
  local t0; t0=$(now)
  dk build --network host --progress plain -t "$tag" "$@" "$ctx" >>"$log/docker-$tag.log" 2>&1 ||
    { echo "docker build failed:" >&2; tail -25 "$log/docker-$tag.log" >&2; exit 1; }
  echo "$(now) - $t0" | bc
}

declare -A res
measure() { # case tool runner tag ctx [opts...]   (ROUNDS runs, median)
  local c=$1 tool=$2 fn=$3; shift 3
  local ts=()
  for _ in $(seq 1 "$rounds"); do
    if [ "$c" = d ]; then
      # one small file changed before each run (different content each time)
      echo "changed $RANDOM $(now)" >ctx-c/files/d050/f100.txt
    fi
    sync
    ts+=("$("$fn" "$@")")
  done
  res[$c,$tool]=$(median "${ts[@]}")
  printf '  %-4s %-8s runs: %s  median %.2fs\n' "$c" "$tool" "$(printf '%.2f ' "${ts[@]}")" "${res[$c,$tool]}"
}
each() { # case tag ctx [opts...]: each tool picked
  local c=$1; shift
  if use rbuild; then measure "$c" rbuild run_rb "$@"; fi
  if use buildah; then measure "$c" buildah run_ba "$@"; fi
  if use buildkit; then measure "$c" buildkit run_dk "$@"; fi
}
prime() { # tag ctx: one uncounted build per tool picked
  if use rbuild; then run_rb "$@" >/dev/null; fi
  if use buildah; then run_ba "$@" >/dev/null; fi
  if use buildkit; then run_dk "$@" >/dev/null; fi
}

echo "running (${rounds} rounds each)..."
tstart=$(now)
for c in $only; do
  case $c in
    a) each a bench-a ctx-a --no-cache ;;
    b) prime bench-a ctx-a
       each b bench-a ctx-a ;;
    c) each c bench-c ctx-c --no-cache ;;
    d) prime bench-c ctx-c
       each d bench-c ctx-c ;;
    e) each e2 bench-e2 ctx-e2mb --no-cache
       each e200 bench-e200 ctx-e200mb --no-cache ;;
  esac
done

# --- table ----------------------------------------------------------------------------
ratio() { echo "scale=3; $1 / $2" | bc -l | sed 's/^\./0./'; }
verdict() { [ "$(echo "$1 <= $2" | bc -l)" = 1 ] && echo "met" || echo "MISSED"; }
has() { [ -n "${res[$1,rbuild]:-}" ] && [ -n "${res[$1,buildah]:-}" ] && [ -n "${res[$1,buildkit]:-}" ]; }
if has a || has b || has c || has d || has e2; then
  echo
  echo "| case | rbuild | buildah | BuildKit | rbuild/buildah | rbuild/BuildKit | target | result |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
fi
row() { # case label target-text checks...
  local c=$1 label=$2 target=$3; shift 3
  local r=${res[$c,rbuild]} b=${res[$c,buildah]} k=${res[$c,buildkit]}
  local rb_ba rb_bk; rb_ba=$(ratio "$r" "$b"); rb_bk=$(ratio "$r" "$k")
  local out=met
  for chk in "$@"; do
    case $chk in
      ba:*) [ "$(verdict "$rb_ba" "${chk#ba:}")" = met ] || out=MISSED ;;
      bk:*) [ "$(verdict "$rb_bk" "${chk#bk:}")" = met ] || out=MISSED ;;
    esac
  done
  [ "$target" = "-" ] && out="-"
  printf '| %s | %.2f s | %.2f s | %.2f s | %s | %s | %s | %s |\n' "$label" "$r" "$b" "$k" "$rb_ba" "$rb_bk" "$target" "$out"
}
has a && row a "(a) cold, 10 steps, 5 RUN" "≤ 0.5× buildah, ≤ 1.0× BuildKit" ba:0.5 bk:1.0
has b && row b "(b) (a) fully cached" "≤ 0.5× BuildKit" bk:0.5
has c && row c "(c) cold COPY 20k files + 4×100 MB" "≤ 1.0× BuildKit" bk:1.0
has d && row d "(d) (c) after 1 small file changed" "≤ 0.5× BuildKit" bk:0.5
if has e2; then
  row e2 "(e) 1 RUN on 2 MB base" "-"
  row e200 "(e) 1 RUN on 200 MB base" "-"
  for t in rbuild buildah buildkit; do
    e=$(ratio "${res[e200,$t]}" "${res[e2,$t]}")
    if [ $t = rbuild ]; then
      printf '(e) %s 200 MB / 2 MB: %s  (target ≤ 1.2: %s)\n' $t "$e" "$(verdict "$e" 1.2)"
    else
      printf '(e) %s 200 MB / 2 MB: %s\n' $t "$e"
    fi
  done
fi
echo "docker builder: $buildkit"
printf 'total measuring time: %.0f s\n' "$(echo "$(now) - $tstart" | bc)"
if [ -n "${KEEP_LOGS:-}" ]; then
  rm -rf "$KEEP_LOGS"; cp -r "$log" "$KEEP_LOGS"
fi
