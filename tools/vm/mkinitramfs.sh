#!/bin/sh
# tools/vm/mkinitramfs.sh OUT.cpio.gz BIN... — a small initramfs: busybox-static, the given test
# binaries under /tests (with every shared library ldd names, and the dynamic loader), and
# tools/vm/init as /init. Extra files: VM_EXTRA="host/path:/guest/path ...".
set -e
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/ember-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/bin" "$stage/sbin" "$stage/tests" "$stage/proc" "$stage/sys" "$stage/dev" \
	"$stage/tmp" "$stage/run" "$stage/etc"
bb=$(command -v busybox || echo /bin/busybox)
file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' ||
	{ echo "mkinitramfs: $bb is not static (install busybox-static)" >&2; exit 1; }
cp "$bb" "$stage/bin/busybox"
for app in $("$bb" --list); do
	[ -e "$stage/bin/$app" ] || ln -s busybox "$stage/bin/$app"
done
cp "$here/init" "$stage/init"
chmod 755 "$stage/init"

copy_libs() {
	ldd "$1" 2>/dev/null | while read -r a b c d; do
		for lib in "$a" "$c"; do
			case "$lib" in /*) ;; *) continue ;; esac
			[ -e "$stage$lib" ] && continue
			mkdir -p "$stage$(dirname "$lib")"
			cp -L "$lib" "$stage$lib"
		done
	done
}
for bin in "$@"; do
	cp "$bin" "$stage/tests/"
	copy_libs "$bin"
done
for pair in $VM_EXTRA; do
	src=${pair%%:*}
	dst=${pair#*:}
	if [ ! -e "$src" ]; then
		echo "mkinitramfs: $src not built, left out of the VM" >&2
		continue
	fi
	mkdir -p "$stage$(dirname "$dst")"
	cp -a "$src" "$stage$dst"
	[ -f "$src" ] && [ -x "$src" ] && copy_libs "$src"
done
# the loader looks for libraries in /lib/x86_64-linux-gnu via the default path on Debian too,
# but only through /etc/ld.so.cache or its built-in list: keep both layouts working
[ -d "$stage/lib64" ] || ln -s lib "$stage/lib64" 2>/dev/null || true
echo "/lib/x86_64-linux-gnu" > "$stage/etc/ld.so.conf"
(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
