#!/bin/sh
# Build the test rootfs: busybox-static with one symlink per applet, ember's static test helper
# (emtest), a minimal /etc. Used by the tests and the benchmarks.
#   mkrootfs.sh OUTDIR EMTEST_BINARY
set -eu
out=$1
emtest=$2
tmp="$out.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/sbin" "$tmp/usr/bin" "$tmp/usr/sbin" "$tmp/etc" "$tmp/proc" "$tmp/sys" \
	"$tmp/dev" "$tmp/tmp" "$tmp/root" "$tmp/run" "$tmp/var/tmp" "$tmp/home/user"
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
cp /bin/busybox "$tmp/bin/busybox"
for applet in $(/bin/busybox --list-full); do
	[ -e "$tmp/$applet" ] || ln -s /bin/busybox "$tmp/$applet"
done
install -m 0755 "$emtest" "$tmp/usr/bin/emtest"
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
daemon:x:1:
user:x:1000:
audio:x:29:user
nogroup:x:65534:
G
echo "ember-test" > "$tmp/etc/hostname"
chown 1000:1000 "$tmp/home/user"
rm -rf "$out"
mv "$tmp" "$out"
