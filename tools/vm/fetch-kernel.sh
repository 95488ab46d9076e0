#!/bin/sh
# tools/vm/fetch-kernel.sh DIR — put Debian's current kernel image at DIR/vmlinuz, taken out of the
# package linux-image-amd64 depends on (apt-get download + dpkg -x). Nothing is installed on this
# machine: the package is only unpacked below DIR. Cached: a second run does nothing.
set -e
dir=$1
[ -n "$dir" ] || { echo "usage: $0 DIR" >&2; exit 2; }
[ -e "$dir/vmlinuz" ] && exit 0
mkdir -p "$dir"
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
	apt-get update -qq
	pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -1)
fi
[ -n "$pkg" ] || { echo "fetch-kernel: cannot tell which kernel linux-image-amd64 depends on" >&2; exit 1; }
deb=$(ls "$dir"/${pkg}_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
	echo "  VM      apt-get download $pkg"
	# _apt cannot write into a root-owned build tree: that warning is harmless
	(cd "$dir" && apt-get download "$pkg" 2>&1 | grep -v 'unsandboxed' >&2 || true)
	deb=$(ls "$dir"/${pkg}_*.deb 2>/dev/null | head -1)
	[ -n "$deb" ] || { echo "fetch-kernel: download of $pkg failed" >&2; exit 1; }
fi
rm -rf "$dir/pkg"
dpkg -x "$deb" "$dir/pkg"
img=$(ls "$dir"/pkg/boot/vmlinuz-* | head -1)
[ -n "$img" ] || { echo "fetch-kernel: no /boot/vmlinuz-* in $deb" >&2; exit 1; }
cp "$img" "$dir/vmlinuz.tmp"
basename "$img" | sed 's/^vmlinuz-//' > "$dir/kernel-version"
mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
echo "  VM      kernel $(cat "$dir/kernel-version") from $(basename "$deb")"
