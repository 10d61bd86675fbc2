#!/usr/bin/env bash
# Install the build into a scratch DESTDIR and check what a user gets:
# headers, the shared library, aetherium.pc, and a small C program built
# with `pkg-config --cflags --libs aetherium` that links and runs.
# Usage: install_check.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
dest=$(mktemp -d /tmp/aeth-install-check.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() { echo "install_check: FAIL: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null ||
	fail "meson install --destdir failed"
read -r prefix libdir < <(meson introspect "$build" --buildoptions |
	/usr/bin/python3 -c 'import json,sys
o={x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["libdir"])')
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
root=$dest$prefix
for h in aetherium.h common.h error.h config.h store.h; do
	[ -f "$root/include/aetherium/$h" ] || fail "header aetherium/$h not installed"
done
ls "$dest$libdir"/libaetherium.so.* >/dev/null 2>&1 || fail "libaetherium.so.* not installed in $libdir"
[ -L "$dest$libdir/libaetherium.so" ] || fail "libaetherium.so (dev symlink) not installed"
pc=$dest$libdir/pkgconfig/aetherium.pc
[ -f "$pc" ] || fail "aetherium.pc not installed"

cat >"$dest/prog.c" <<'C'
#include <stdio.h>
#include <aetherium/aetherium.h>
int main(void)
{
	aeth_config *cfg;
	if (aeth_config_load(&cfg, NULL) != 0)
		return 1;
	printf("aetherium %s, %zu queues\n", aeth_version(), aeth_config_queue_count(cfg));
	aeth_config_free(cfg);
	return 0;
}
C
# Point the installed .pc at the DESTDIR copy (only its own prefix: the
# .pc files of its dependencies stay as they are).
mkdir -p "$dest/pc"
sed "s|^prefix=.*|prefix=$root|" "$pc" >"$dest/pc/aetherium.pc"
flags=$(PKG_CONFIG_PATH=$dest/pc pkg-config --cflags --libs aetherium) ||
	fail "pkg-config --cflags --libs aetherium failed"
echo "pkg-config: $flags"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -o "$dest/prog" "$dest/prog.c" $flags ||
	fail "cannot build a program against the installed library"
out=$(env -u AETH_QUEUE_WEIGHTS LD_LIBRARY_PATH="$dest$libdir" "$dest/prog") ||
	fail "the program did not run"
echo "$out"
case $out in "aetherium "*", 4 queues") ;; *) fail "unexpected output: $out" ;; esac
# The program must have used the installed copy, not one from the build.
resolved=$(LD_LIBRARY_PATH="$dest$libdir" ldd "$dest/prog")
case $resolved in *"$dest$libdir/libaetherium.so"*) ;; *) false ;; esac ||
	fail "program did not resolve libaetherium.so from the install dir"
echo "install_check: ok"
