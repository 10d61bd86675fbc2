#!/usr/bin/env bash
# Install the Debian packages Aetherium needs to build, test and run.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
pkgs=(build-essential meson ninja-build pkg-config clang
      libhiredis-dev libpq-dev libcjson-dev uuid-dev libcurl4-openssl-dev
      libcmocka-dev libyaml-dev openssl libmicrohttpd-dev prometheus
      redis-server redis-sentinel postgresql postgresql-client
      qemu-system-x86 cpio lz4 busybox-static e2fsprogs debootstrap
      python3 python3-cffi python3-pytest python3-yaml git
      python3-mypy python3-venv python3-pip python3-setuptools python3-wheel
      abigail-tools chromium chromium-driver python3-selenium)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
