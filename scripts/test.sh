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
# (skipped quickly when its inputs are unchanged). --rootfs adds the Debian
# root disk with git that the git-clone workflow tests use (minutes on the
# first build, cached afterwards).
./scripts/build-image.sh --rootfs --agent "$builddir/agent/aeth-agent"
# Private PostgreSQL and Redis for the integration tests. They
# live in the build dir unless AETH_SERVICES_DIR says otherwise, so that two
# builds tested at once neither share nor stop each other's servers. If they
# already run there, they are used and left running; else they are started
# here and stopped on exit, also when a test fails or on Ctrl-C.
case $builddir in /*) default_services=$builddir/services ;;
*) default_services=$PWD/$builddir/services ;; esac
export AETH_SERVICES_DIR=${AETH_SERVICES_DIR:-$default_services}
if ./scripts/services.sh status >/dev/null 2>&1; then
	echo "test.sh: using the services running in $AETH_SERVICES_DIR (left running)"
else
	trap './scripts/services.sh stop' EXIT
	trap 'exit 130' INT TERM
	./scripts/services.sh start
fi
eval "$(./scripts/services.sh env)"
meson test -C "$builddir" --print-errorlogs "$@"
