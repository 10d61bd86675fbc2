# shellcheck shell=bash
# Sourced by scripts/build-image.sh for --rootfs. Builds OUT/rootfs.ext4:
# Debian minbase + git + ca-certificates (debootstrap into a cached tree under
# OUT/work), the agent as /usr/sbin/aeth-agent, then `mkfs.ext4 -d` (the image
# is never mounted on the host). The debootstrap tree is reused while its
# inputs are unchanged, so a new agent only costs the mkfs (seconds).
# Needs root (debootstrap chroots) and the packages debootstrap + e2fsprogs.

ROOTFS_INCLUDE=git,ca-certificates
ROOTFS_RECIPE=1

build_rootfs() {
	local tree="$WORK/rootfs-tree" stamp tree_hash t_start used size_mb img tmp
	command -v debootstrap >/dev/null ||
		die "debootstrap not found: run scripts/setup.sh (or apt-get install debootstrap)"
	command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found: apt-get install e2fsprogs"
	[ "$(id -u)" = 0 ] || die "--rootfs needs root (debootstrap chroots into the tree)"
	t_start=$(date +%s)
	# Bump ROOTFS_RECIPE when the debootstrap/cleanup steps change (not for
	# other edits of this file: a new tree costs minutes).
	tree_hash=$(printf 'suite=%s\nmirror=%s\ninclude=%s\nrecipe=%s\n' "$SUITE" "$MIRROR" \
		"$ROOTFS_INCLUDE" "$ROOTFS_RECIPE" | sha256sum | cut -d' ' -f1)
	stamp="$tree/.aeth-tree-hash"
	if [ "$FORCE" = 0 ] && [ -f "$OUT/rootfs.ext4" ] && [ "$ROOTFS_JSON" != null ] &&
		[ "$("$PY" "$TOOL" get "$MANIFEST" rootfs.tree_hash)" = "$tree_hash" ]; then
		say "rootfs.ext4 up to date (agent ${AGENT_SHA:0:12}, tree ${tree_hash:0:12})"
		return
	fi
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$tree_hash" ]; then
		say "rootfs: debootstrap tree up to date (${tree_hash:0:12})"
	else
		rm -rf "$tree" "$tree.tmp"
		mkdir -p "$DEBS/debootstrap"
		say "rootfs: debootstrap --variant=minbase --include=$ROOTFS_INCLUDE $SUITE (a few minutes)"
		debootstrap --variant=minbase --include="$ROOTFS_INCLUDE" \
			--cache-dir="$DEBS/debootstrap" "$SUITE" "$tree.tmp" "$MIRROR" \
			>"$WORK/debootstrap.log" 2>&1 ||
			die "debootstrap failed (log: $WORK/debootstrap.log; last lines: $(tail -3 "$WORK/debootstrap.log" | tr '\n' ' '))"
		# Smaller image: no apt lists/debs, docs, man pages, locales.
		rm -rf "$tree.tmp"/var/cache/apt/*.bin "$tree.tmp"/var/cache/apt/archives/*.deb \
			"$tree.tmp"/var/lib/apt/lists/* "$tree.tmp"/usr/share/doc/* \
			"$tree.tmp"/usr/share/man/* "$tree.tmp"/usr/share/info/*
		find "$tree.tmp/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' \
			-exec rm -rf {} + 2>/dev/null || true
		echo "$tree_hash" >"$tree.tmp/.aeth-tree-hash"
		mv "$tree.tmp" "$tree"
		say "rootfs: debootstrap done in $(($(date +%s) - t_start)) s"
	fi
	install -m 0755 "$AGENT" "$tree/usr/sbin/aeth-agent"
	mkdir -p "$tree/etc/aeth" "$tree/root"
	echo aetherium >"$tree/etc/hostname"
	printf '# written by aeth-agent from aeth.dns=\n' >"$tree/etc/resolv.conf"
	printf 'rootfs %s %s\n' "$SUITE" "$tree_hash" >"$tree/etc/aeth/rootfs"
	used=$(du -sm --exclude=.aeth-tree-hash "$tree" | cut -f1)
	size_mb=$ROOTFS_SIZE_MB
	# Room for the seed's git clones and builds; the file is sparse.
	[ "$size_mb" -gt 0 ] || size_mb=$((used + used / 2 + 1024))
	img="$OUT/rootfs.ext4"; tmp="$img.tmp"
	rm -f "$tmp"
	truncate -s "${size_mb}M" "$tmp"
	say "rootfs: mkfs.ext4 -d ($used MiB of files, ${size_mb} MiB image)"
	mkfs.ext4 -q -F -m 0 -L aeth-root -d "$tree" "$tmp" ||
		die "mkfs.ext4 -d $tree failed"
	mv "$tmp" "$img"
	ROOTFS_JSON=$(printf '{"agent_sha256":"%s","suite":"%s","include":"%s","tree_hash":"%s","files_mb":%d,"size_mb":%d,"build_seconds":%d,"cmdline":"aeth.root=/dev/vda"}' \
		"$AGENT_SHA" "$SUITE" "$ROOTFS_INCLUDE" "$tree_hash" "$used" "$size_mb" "$(($(date +%s) - t_start))")
	say "rootfs: $img ready ($(du -h "$img" | cut -f1) on disk, ${size_mb} MiB apparent)"
}
