#!/usr/bin/env bash
# Pushes a ~300 MB, 5-layer image to a local registry and pulls it into an empty store,
# with rbuild and with skopeo, on the same inputs in one run, and prints medians of ROUNDS
# runs and the ratios rbuild/skopeo (issue 5's target: <= 0.8 each way).
#
#   bench/registry.sh   (ROUNDS=3, BENCH_DIR=/var/tmp, MB=300;
#                        RBUILD=path/to/rbuild to skip the release build)
#
# The image: 5 gzip layers, each one 40 MB file of base64 text (compresses ~25%, like
# binaries) and 400 small files, made once as an OCI layout. Both tools start from the
# same compressed blobs: skopeo copies the layout (`oci:`), rbuild pushes the image it
# loaded from that layout. Every round starts a fresh registry (Debian's docker-registry
# on 127.0.0.1, its own storage), so nothing is "already there". Pull: rbuild into an
# empty store downloads and verifies each blob and keeps it packed (layers are extracted
# on first use), the same job as skopeo into `oci:DIR`. Pull and first use: the pull,
# then a build `FROM` the image (one COPY), which extracts and checks every layer,
# against skopeo into an empty `containers-storage:` (overlay, extracted as podman and
# buildah keep images).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

rounds=${ROUNDS:-3}
mb=${MB:-300}
for t in skopeo docker-registry python3; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install skopeo docker-registry" >&2; exit 1; }
done
if [ -n "${RBUILD:-}" ]; then
  rbuild=$(realpath "$RBUILD")
else
  cargo build --release -q
  rbuild=$repo/target/release/rbuild
fi

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rbuild-breg.XXXXXX")
regpid=
stop_registry() {
  if [ -n "$regpid" ]; then
    kill "$regpid" 2>/dev/null || true
    wait "$regpid" 2>/dev/null || true
    regpid=
  fi
  rm -rf "$work/registry"
}
cleanup() {
  stop_registry
  # containers-storage bind-mounts its overlay directory.
  grep -o " $work[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A fresh registry on a free loopback port; sets $reg.
start_registry() {
  stop_registry
  mkdir -p "$work/registry/storage"
  local port
  port=$(free_port)
  reg=127.0.0.1:$port
  cat >"$work/registry/config.yml" <<EOC
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
  env -i PATH=/usr/bin:/bin docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
  regpid=$!
  for _ in $(seq 100); do
    curl -fs "http://$reg/v2/" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "registry did not start:" >&2
  cat "$work/registry/log" >&2
  exit 1
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -r)," \
  "$(findmnt -no FSTYPE -T "$work") on ${BENCH_DIR:-/var/tmp}"
echo "tools: $("$rbuild" --version 2>/dev/null || echo rbuild) (release) | $(skopeo --version) | docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?')"

# --- the image, once ------------------------------------------------------------------
python3 - "$work/layout" "$mb" <<'PY'
import base64, gzip, hashlib, io, json, os, random, sys, tarfile
out, mb = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{out}/blobs/sha256")
rng = random.Random(5)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
layers, diff_ids = [], []
per_layer = mb * 1024 * 1024 // 5
for i in range(5):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(name, data):
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 1700000000; ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
        big = per_layer - 400 * 2048
        add(f"layer{i}/big.bin", base64.b64encode(rng.randbytes(big * 3 // 4))[:big])
        for j in range(400):
            add(f"layer{i}/small/{j:03}.txt", rng.randbytes(1024).hex().encode())
    plain = raw.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(plain).hexdigest())
    d, n = blob(gzip.compress(plain, compresslevel=6, mtime=0))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
    "history": [{"created_by": f"layer {i}"} for i in range(5)]}).encode()
cd, cn = blob(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
    "layers": layers}).encode()
md, mn = blob(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": md, "size": mn, "annotations": {"org.opencontainers.image.ref.name": "1"}}]},
    open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
PY
size=$(du -sm "$work/layout/blobs" | cut -f1)
echo "image: 5 gzip layers, ${size} MB compressed ($mb MB uncompressed)"
(cd "$work/layout" && tar -cf "$work/layout.tar" .)
mkdir "$work/ctx" && echo used >"$work/ctx/f"
src_store=$work/src-store
"$rbuild" --root "$src_store" load -i "$work/layout.tar" >/dev/null
"$rbuild" --root "$src_store" tag "$("$rbuild" --root "$src_store" images -q | head -1)" bench/img:1

declare -A t
for r in $(seq "$rounds"); do
  # push: skopeo
  start_registry
  s=$(now)
  skopeo copy -q --dest-tls-verify=false "oci:$work/layout:1" "docker://$reg/bench/img:1" >/dev/null
  t[skopeo_push]+="$(echo "$(now) - $s" | bc) "
  # pull: skopeo, from what it pushed
  rm -rf "$work/pulled"
  s=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$reg/bench/img:1" "oci:$work/pulled:1" >/dev/null
  t[skopeo_pull]+="$(echo "$(now) - $s" | bc) "
  # pull: skopeo into an empty containers-storage (overlay), as podman pull does
  cs=$work/cs-$r
  s=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$reg/bench/img:1" \
    "containers-storage:[overlay@$cs/root+$cs/run]bench/img:1" >/dev/null
  t[skopeo_pull_cs]+="$(echo "$(now) - $s" | bc) "
  grep -o " $cs[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$cs"
  # push: rbuild, to a fresh registry
  start_registry
  "$rbuild" --root "$src_store" tag bench/img:1 "$reg/bench/img:1"
  s=$(now)
  "$rbuild" --root "$src_store" push -q "$reg/bench/img:1" >/dev/null
  t[rbuild_push]+="$(echo "$(now) - $s" | bc) "
  "$rbuild" --root "$src_store" rmi "$reg/bench/img:1" >/dev/null
  # pull: rbuild into an empty store
  rm -rf "$work/dst-store"
  s=$(now)
  "$rbuild" --root "$work/dst-store" pull -q "$reg/bench/img:1" >/dev/null
  t[rbuild_pull]+="$(echo "$(now) - $s" | bc) "
  # first use: a build on the pulled image extracts its layers
  printf 'FROM %s\nCOPY f /f\n' "$reg/bench/img:1" >"$work/ctx/Dockerfile"
  "$rbuild" --root "$work/dst-store" build -q -t bench/used:1 "$work/ctx" >/dev/null
  t[rbuild_pull_use]+="$(echo "$(now) - $s" | bc) "
  [ "$(find "$work/dst-store/layers" -mindepth 1 -maxdepth 1 | wc -l)" -ge 5 ] ||
    { echo "the build did not extract the pulled layers" >&2; exit 1; }
  echo "round $r: push rbuild $(echo ${t[rbuild_push]} | awk '{print $NF}') s, skopeo $(echo ${t[skopeo_push]} | awk '{print $NF}') s;" \
    "pull rbuild $(echo ${t[rbuild_pull]} | awk '{print $NF}') s, skopeo oci: $(echo ${t[skopeo_pull]} | awk '{print $NF}') s;" \
    "pull+use rbuild $(echo ${t[rbuild_pull_use]} | awk '{print $NF}') s, skopeo containers-storage: $(echo ${t[skopeo_pull_cs]} | awk '{print $NF}') s"
done
stop_registry

printf '\n| way | rbuild | skopeo | rbuild/skopeo | target | result |\n| --- | --- | --- | --- | --- | --- |\n'
row() { # way label rbuild-key skopeo-key
  # shellcheck disable=SC2086
  a=$(median ${t[$3]})
  # shellcheck disable=SC2086
  b=$(median ${t[$4]})
  ratio=$(echo "scale=3; $a / $b" | bc)
  met=$(echo "$ratio <= 0.8" | bc)
  printf '| %s | %.2f s | %.2f s | %s | <= 0.8 | %s |\n' "$2" "$a" "$b" "$ratio" "$([ "$met" = 1 ] && echo met || echo missed)"
}
row push "push (skopeo from oci:)" rbuild_push skopeo_push
row pull "pull (skopeo to oci:; neither extracts)" rbuild_pull skopeo_pull
row pull "pull + first use (skopeo to containers-storage:; both extract)" rbuild_pull_use skopeo_pull_cs
