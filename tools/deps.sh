#!/bin/sh
# Install the Debian packages ember needs to build, test and benchmark, if any is missing.
# Run by every top-level make target, so a fresh Debian 12 machine needs nothing by hand.
set -e
PKGS="gcc make pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
libnl-3-dev libnl-route-3-dev libseccomp-dev liburing-dev libcriterion-dev libjansson-dev
libmicrohttpd-dev libsqlite3-dev libcap-dev busybox-static runc crun qemu-system-x86 cpio
python3 iproute2 procps gnuplot-nox"
missing=""
for p in $PKGS; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$s" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing (run make as root to install them)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
