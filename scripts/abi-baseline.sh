#!/usr/bin/env bash
# Write lib/abi/libaetherium.abi, the ABI of a release, which the unit test
# 'symbols' compares every build with (abidiff). Run it when a release is
# made (after its version is set in meson.build), never to make a failing
# check pass: an incompatible change to a released ABI needs a new soname
# (docs/api.md, "Symbols").
# Usage: scripts/abi-baseline.sh [BUILD_DIR]   (default build; needs -g)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
lib=$build/lib/libaetherium.so.0
[ -f "$lib" ] || { echo "abi-baseline: no $lib: build first (meson compile -C $build)" >&2; exit 1; }
command -v abidw >/dev/null || { echo "abi-baseline: abidw missing: apt-get install abigail-tools" >&2; exit 1; }
mkdir -p lib/abi
abidw --headers-dir include/aetherium --drop-private-types --no-corpus-path \
	--no-show-locs --out-file lib/abi/libaetherium.abi "$lib"
echo "abi-baseline: wrote lib/abi/libaetherium.abi from $lib"
