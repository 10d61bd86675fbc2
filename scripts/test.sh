#!/usr/bin/env bash
# The README's test command: install missing packages, build, start private
# services, run every test with `meson test`, stop what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
builddir=${AETH_BUILD_DIR:-build}
werror=false
[ "${AETH_WERROR:-0}" = 1 ] && werror=true
if [ ! -f "$builddir/build.ninja" ]; then
	meson setup "$builddir" -Dwerror=$werror
else
	meson configure "$builddir" -Dwerror=$werror
fi
meson compile -C "$builddir"
# The vm tests boot real guests: build the image from the agent just built
# (skipped quickly when its inputs are unchanged). vm/H5
./scripts/build-image.sh --agent "$builddir/agent/aeth-agent"
meson test -C "$builddir" --print-errorlogs "$@"
