#!/usr/bin/env bash
# Side-by-side: `rbuild save -o` + `rbuild load -i` (into a fresh store) against
# `skopeo copy docker-archive:… oci:…` + `skopeo copy oci:… docker-archive:…` of the
# same ~300 MB, 6-layer image. Prints each round and the ratio of the medians
# (rbuild / skopeo; below 1.0 means rbuild is faster).
#
#   bench/save-load.sh            (ROUNDS=3, LAYER_MB=50, BENCH_DIR=/var/tmp by default)
#
# Needs Debian's skopeo. Uses the release build (built here if needed).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
layer_mb=${LAYER_MB:-50}
command -v skopeo >/dev/null || { echo "skopeo not found: apt-get install skopeo" >&2; exit 1; }
cargo build --release -q
rbuild=$PWD/target/release/rbuild

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rbuild-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# The image: 6 layers, each ~LAYER_MB of files: a few big incompressible ones and many
# small text-ish ones, as a real layer has.
diff_ids=()
layers=()
for i in 1 2 3 4 5 6; do
  d=l$i
  mkdir -p "$d/big" "$d/small"
  for j in 1 2 3 4; do
    head -c $((layer_mb * 1000000 / 5)) /dev/urandom >"$d/big/blob$j.bin"
  done
  for j in $(seq 1 400); do
    # ~25 KB of base64: compressible, like source and config files.
    head -c $((layer_mb * 1000000 / 5 / 400 * 3 / 4)) /dev/urandom | base64 >"$d/small/f$j.txt"
  done
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@1700000000 \
    -C "$d" -cf "layer$i.tar" .
  rm -rf "$d"
  diff_ids+=("\"sha256:$(sha256sum "layer$i.tar" | cut -c1-64)\"")
  layers+=("\"layer$i.tar\"")
done
join() { local IFS=,; echo "$*"; }
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "$(join "${diff_ids[@]}")" >config.json
printf '[{"Config":"config.json","RepoTags":["bench:1"],"Layers":[%s]}]' \
  "$(join "${layers[@]}")" >manifest.json
tar -cf input.tar manifest.json config.json layer*.tar
rm -f layer*.tar
size_mb=$(($(stat -c %s input.tar) / 1000000))
"$rbuild" --root "$work/store" load -i input.tar >/dev/null
sync

now() { date +%s.%N; }
rb=()
sk=()
for r in $(seq 1 "$rounds"); do
  rm -rf store2 out.tar oci sk.tar
  sync
  t0=$(now)
  "$rbuild" --root "$work/store" save -o out.tar bench:1
  "$rbuild" --root "$work/store2" load -i out.tar >/dev/null
  t1=$(now)
  sync
  t2=$(now)
  skopeo copy -q docker-archive:input.tar oci:oci:bench
  skopeo copy -q oci:oci:bench docker-archive:sk.tar:bench:1
  t3=$(now)
  rb+=("$(echo "$t1 - $t0" | bc)")
  sk+=("$(echo "$t3 - $t2" | bc)")
  printf 'round %d: rbuild save+load %.2fs   skopeo copy+copy %.2fs\n' "$r" "${rb[-1]}" "${sk[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mrb=$(median "${rb[@]}")
msk=$(median "${sk[@]}")
printf 'image: %d MB, 6 layers; median of %d rounds\n' "$size_mb" "$rounds"
printf 'rbuild save -o + load -i : %.2fs\n' "$mrb"
printf 'skopeo copy x2           : %.2fs\n' "$msk"
printf 'ratio rbuild/skopeo      : %.2f\n' "$(echo "$mrb / $msk" | bc -l)"
