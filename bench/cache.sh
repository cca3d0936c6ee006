#!/usr/bin/env bash
# A build cache shared through a registry (issue 6): how long an empty store ("store B",
# a fresh CI runner) takes to build with the cache another store exported to a local
# registry, against a cold build, with rbuild and with Docker BuildKit on the same
# Dockerfile, in one run. Prints medians of ROUNDS runs and the ratios.
#
#   bench/cache.sh      (ROUNDS=3, BENCH_DIR=/var/tmp; RBUILD=path/to/rbuild to skip the
#                        release build)
#
# The Dockerfile: FROM a locally made busybox base; ENV, WORKDIR; COPY of a 20 MB context
# file; a RUN that writes 40 x 1 MB files and sleeps 1.5 s (standing for a compilation);
# a second RUN (checksums, a user, 1 s sleep); CMD.
#
# rbuild: store A builds with `--cache-to type=registry,ref=$reg/cache:1,mode=max` (timed
# apart: "A cold + export"); each round, a new empty store B (the base loaded, nothing
# else) builds with `--cache-from type=registry,ref=$reg/cache:1` ("warm"), and a new
# empty store C (the base loaded) builds without it ("cold"). Checked: B's image ID is A's
# and every step of B's log is CACHED (as many as C's steps), and B holds the image's
# layers (>= 60 MB of blobs), else the script fails.
#
# Docker: dockerd 20.10 (Debian's docker.io, a private daemon started here) with its
# built-in BuildKit (DOCKER_BUILDKIT=1, Debian's /usr/bin/docker 20.10 CLI). Without the
# buildx plugin (not packaged in Debian 12) BuildKit 20.10 has no `type=registry` cache
# exporter; what it has is the INLINE cache: `docker build --build-arg
# BUILDKIT_INLINE_CACHE=1 -t $reg/img:1` + `docker push` exports the cache metadata in
# the image's config, and `docker build --cache-from $reg/img:1` imports it from the
# registry image. So Docker's side is "inline cache via the registry image" (which holds
# min-mode cache: the final image's steps, all of them here). Each round, "warm" runs
# after `docker builder prune -af` and `docker rmi` of the built images (an empty cache
# with the base image kept: store B's equivalent) with `--cache-from $reg/img:1`; "cold"
# runs after the same pruning without it. Checked: the warm log shows the COPY and both
# RUNs CACHED.
#
# Needs root, docker.io, docker-registry, busybox-static, python3, curl, bc. Everything
# (registry, dockerd, stores) lives under BENCH_DIR and /tmp/bench-c* and is removed at
# the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

rounds=${ROUNDS:-3}
for t in dockerd docker-registry python3 curl bc; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install docker.io docker-registry python3 curl bc" >&2; exit 1; }
done
docker=/usr/bin/docker # Debian's CLI: BuildKit built in (a newer CLI needs buildx)
[ -x "$docker" ] || { echo "missing $docker: apt-get install docker.io" >&2; exit 1; }
if [ -n "${RBUILD:-}" ]; then
  rbuild=$(realpath "$RBUILD") # a given binary (e.g. while cargo holds the target dir)
else
  cargo build --release -q
  rbuild=$repo/target/release/rbuild
fi
"$rbuild" build --help | grep -q -- --cache-from ||
  { echo "$rbuild has no build --cache-from" >&2; exit 1; }

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rbuild-bcache.XXXXXX")
dsock=/tmp/bench-c-d.sock
droot=/tmp/bench-c-d
dexec=/tmp/bench-c-d-exec
dpid=
regpid=
cleanup() {
  if [ -n "$dpid" ]; then
    kill "$dpid" 2>/dev/null || true
    wait "$dpid" 2>/dev/null || true
  fi
  if [ -n "$regpid" ]; then
    kill "$regpid" 2>/dev/null || true
    wait "$regpid" 2>/dev/null || true
  fi
  grep -o " $work[^ ]*\| $droot[^ ]*\| $dexec[^ ]*" /proc/mounts | sort -r |
    xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work" "$droot" "$dexec" "$dsock"
}
trap cleanup EXIT
cd "$work"
log=$work/log
mkdir -p "$log"

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "FAILED: $1" >&2; [ -z "${2:-}" ] || tail -40 "$2" >&2; exit 1; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r)," \
  "$(findmnt -no FSTYPE -T "$work") on ${BENCH_DIR:-/var/tmp}"
echo "tools: $("$rbuild" --version 2>/dev/null || echo rbuild) (release)" \
  "| dockerd $(dockerd --version | sed 's/Docker version //') + CLI $("$docker" --version | sed 's/Docker version //')" \
  "| docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?')"

# --- registry: Debian's docker-registry on a free loopback port --------------------------
mkdir -p registry/storage
reg=127.0.0.1:$(free_port)
cat >registry/config.yml <<EOC
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/storage
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $reg
EOC
env -i PATH=/usr/bin:/bin docker-registry serve registry/config.yml >"$log/registry.log" 2>&1 &
regpid=$!
for _ in $(seq 100); do curl -fs "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.05; done
curl -fs "http://$reg/v2/" >/dev/null || fail "the registry did not start" "$log/registry.log"

# --- the base (busybox, made locally) and the inputs ----------------------------------
"$repo/fixtures/busybox-rootfs.sh" busybox.tar
"$rbuild" --root "$work/base-store" import busybox.tar bench-base:1 >/dev/null
"$rbuild" --root "$work/base-store" save -o base.tar bench-base:1
rm -rf busybox.tar "$work/base-store"

mkdir ctx
head -c 20000000 /dev/urandom >ctx/app.bin
cat >ctx/Dockerfile <<'EOF'
FROM bench-base:1
ENV APP=/opt/app LANG=C.UTF-8
WORKDIR /opt/app
COPY app.bin /opt/app/src/app.bin
RUN mkdir -p /opt/app/out && i=0 && while [ $i -lt 40 ]; do dd if=/dev/urandom of=/opt/app/out/obj$i.o bs=1M count=1 2>/dev/null; i=$((i+1)); done && sleep 1.5
RUN md5sum /opt/app/out/*.o >/opt/app/SUMS && echo "app:x:1000:1000::/opt/app:/bin/sh" >>/etc/passwd && sleep 1
CMD ["/bin/sh"]
EOF
sync

# --- rbuild -----------------------------------------------------------------------------
new_store() { # dir: an empty store with only the base loaded
  rm -rf "$1"
  "$rbuild" --root "$1" load -i base.tar >/dev/null
}
took=
rb_build() { # store log [opts...]: sets $took to the wall time
  local store=$1 l=$2; shift 2
  sync
  local t0; t0=$(now)
  "$rbuild" --root "$store" build --progress plain -t bench/app:1 "$@" ctx >"$l" 2>&1 ||
    fail "rbuild build failed ($l)" "$l"
  took=$(echo "$(now) - $t0" | bc)
}
rb_id() { "$rbuild" --root "$1" inspect -f '{{.Id}}' bench/app:1; }
# `#N CACHED` and `#N cache miss: …` are a step's outcome in rbuild's plain progress.
cached() { grep -cE '^#[0-9]+ CACHED$' "$1" || true; }
steps() { grep -cE '^#[0-9]+ (CACHED$|cache miss: )' "$1" || true; }

echo "rbuild: store A builds with --cache-to type=registry,ref=$reg/cache:1,mode=max ..."
new_store "$work/store-a"
rb_build "$work/store-a" "$log/rbuild-a.log" --cache-to "type=registry,ref=$reg/cache:1,mode=max"
t_export=$took
id_a=$(rb_id "$work/store-a")
rm -rf "$work/store-a"
printf '  A cold + export: %.2fs (image %s)\n' "$t_export" "$id_a"

rb_warm=() rb_cold=() dk_warm=() dk_cold=()
n_steps=
for r in $(seq "$rounds"); do
  new_store "$work/store-b"
  rb_build "$work/store-b" "$log/rbuild-b$r.log" --cache-from "type=registry,ref=$reg/cache:1"
  rb_warm+=("$took")
  id_b=$(rb_id "$work/store-b")
  # The final image's layers must be in store B (fetched, not only the step configs):
  # 20 MB COPY + 40 MB RUN of random bytes, which gzip cannot shrink.
  b_mb=$(du -sm "$work/store-b/blobs" | cut -f1)
  rm -rf "$work/store-b"
  [ "$b_mb" -ge 60 ] || fail "round $r: store B holds only $b_mb MB of blobs; the image's layers were not fetched" "$log/rbuild-b$r.log"
  [ "$id_b" = "$id_a" ] || fail "round $r: store B's image $id_b is not store A's $id_a" "$log/rbuild-b$r.log"
  new_store "$work/store-c"
  rb_build "$work/store-c" "$log/rbuild-c$r.log"
  rb_cold+=("$took")
  rm -rf "$work/store-c"
  n_steps=$(steps "$log/rbuild-c$r.log")
  n_cached=$(cached "$log/rbuild-b$r.log")
  [ "$n_steps" -gt 0 ] || fail "no step outcomes in the cold build's log" "$log/rbuild-c$r.log"
  [ "$n_cached" = "$n_steps" ] && [ "$(steps "$log/rbuild-b$r.log")" = "$n_steps" ] ||
    fail "round $r: store B has $n_cached CACHED steps of $n_steps" "$log/rbuild-b$r.log"
  printf '  round %s: rbuild warm %.2fs (%s/%s steps CACHED, image = A'"'"'s, %s MB of blobs fetched), cold %.2fs\n' \
    "$r" "${rb_warm[-1]}" "$n_cached" "$n_steps" "$b_mb" "${rb_cold[-1]}"
done

# --- Docker BuildKit (private dockerd) ----------------------------------------------------
dockerd --iptables=false --bridge=none -H "unix://$dsock" --data-root "$droot" \
  --exec-root "$dexec" --pidfile "$dexec.pid" >"$log/dockerd.log" 2>&1 &
dpid=$!
export DOCKER_HOST=unix://$dsock DOCKER_BUILDKIT=1
for _ in $(seq 1 100); do "$docker" version >/dev/null 2>&1 && break; sleep 0.2; done
"$docker" version >/dev/null 2>&1 || fail "dockerd did not start" "$log/dockerd.log"
"$docker" load -q -i base.tar >/dev/null
dk_build() { # log [opts...]: sets $took to the wall time
  local l=$1; shift
  sync
  local t0; t0=$(now)
  "$docker" build --network host --progress plain "$@" ctx >"$l" 2>&1 ||
    fail "docker build failed ($l)" "$l"
  took=$(echo "$(now) - $t0" | bc)
}
dk_step_cached() { # log text: the step whose name has the text is CACHED
  local v
  for v in $(grep -F "$2" "$1" | grep -oE '^#[0-9]+' | sort -u); do
    grep -qE "^$v CACHED$" "$1" && return 0
  done
  return 1
}
dk_empty() { # no build cache and no built image; the base stays
  "$docker" builder prune -af >/dev/null
  "$docker" rmi -f "$reg/img:1" bench/app:1 >/dev/null 2>&1 || true
  "$docker" image prune -f >/dev/null
}
echo "docker: builds with BUILDKIT_INLINE_CACHE=1 and pushes $reg/img:1 ..."
dk_build "$log/docker-a.log" --build-arg BUILDKIT_INLINE_CACHE=1 -t "$reg/img:1"
t_dk_export=$took
s=$(now)
"$docker" push -q "$reg/img:1" >"$log/docker-push.log" 2>&1 || fail "docker push failed" "$log/docker-push.log"
t_dk_push=$(echo "$(now) - $s" | bc)
printf '  cold + inline cache: %.2fs, push %.2fs\n' "$t_dk_export" "$t_dk_push"
for r in $(seq "$rounds"); do
  dk_empty
  dk_build "$log/docker-b$r.log" --cache-from "$reg/img:1" -t bench/app:1
  dk_warm+=("$took")
  # The COPY and both RUNs must come from the cache, as in rbuild's store B.
  for step in 'COPY app.bin' 'RUN mkdir' 'RUN md5sum'; do
    dk_step_cached "$log/docker-b$r.log" "$step" ||
      fail "round $r: docker's warm build did not take '$step' from the cache" "$log/docker-b$r.log"
  done
  dk_n_cached=$(cached "$log/docker-b$r.log")
  dk_empty
  dk_build "$log/docker-c$r.log" -t bench/app:1
  dk_cold+=("$took")
  printf '  round %s: docker warm %.2fs (%s CACHED), cold %.2fs\n' \
    "$r" "${dk_warm[-1]}" "$dk_n_cached" "${dk_cold[-1]}"
done

# --- table ----------------------------------------------------------------------------
ratio() { echo "scale=3; $1 / $2" | bc -l | sed 's/^\./0./'; }
rw=$(median "${rb_warm[@]}") rc=$(median "${rb_cold[@]}")
dw=$(median "${dk_warm[@]}") dc=$(median "${dk_cold[@]}")
echo
echo "medians of $rounds: rbuild warm $(printf %.2f "$rw") s, cold $(printf %.2f "$rc") s;" \
  "docker warm $(printf %.2f "$dw") s, cold $(printf %.2f "$dc") s"
echo
echo "| ratio | value |"
echo "| --- | --- |"
echo "| rbuild warm (registry cache) / rbuild cold | $(ratio "$rw" "$rc") |"
echo "| docker warm (inline cache, --cache-from registry image) / docker cold | $(ratio "$dw" "$dc") |"
echo "| rbuild warm / docker warm | $(ratio "$rw" "$dw") |"
echo "| rbuild cold / docker cold | $(ratio "$rc" "$dc") |"
echo
echo "docker's side: BuildKit in dockerd 20.10 without buildx has no type=registry cache;" \
  "it is the inline cache (BUILDKIT_INLINE_CACHE=1) of the image pushed to the registry," \
  "imported with --cache-from $reg/img:1"
if [ -n "${KEEP_LOGS:-}" ]; then
  rm -rf "$KEEP_LOGS"; cp -r "$log" "$KEEP_LOGS"
fi
