#!/bin/sh
# tools/vm/run.sh KERNEL INITRAMFS LOG [TEST_ARGS] — boot the test VM under qemu (TCG: this
# machine has no KVM), pure cgroup v2 (cgroup_no_v1=all), serial console on stdout and in LOG.
# Exit 0 only if the VM printed "EMBER-VM-DONE status=0". VM_TIMEOUT (s) bounds the run,
# VM_MEM / VM_SMP size the guest.
set -u
kernel=$1 initrd=$2 log=$3 targs=${4:-}
timeout=${VM_TIMEOUT:-1500}
accel=tcg
[ -w /dev/kvm ] && [ "${VM_KVM:-0}" = 1 ] && accel=kvm
append="console=ttyS0 cgroup_no_v1=all panic=-1 quiet loglevel=3"
[ -n "$targs" ] && append="$append ember.args=$(echo "$targs" | tr ' ' ,)"
echo "  VM      qemu-system-x86_64 ($accel, ${VM_SMP:-2} CPUs, ${VM_MEM:-1G}): $append"
rm -f "$log.rc"
{
	timeout --foreground "$timeout" qemu-system-x86_64 -accel "$accel" -cpu max \
		-m "${VM_MEM:-1G}" -smp "${VM_SMP:-2}" -nographic -no-reboot -nodefaults \
		-serial stdio -monitor none -kernel "$kernel" -initrd "$initrd" -append "$append" \
		</dev/null 2>&1
	echo $? > "$log.rc"
} | tee "$log"
qrc=$(cat "$log.rc" 2>/dev/null || echo '?')
rm -f "$log.rc"
if grep -q '^EMBER-VM-DONE status=0' "$log"; then
	grep '^EMBER-VM-RESULT' "$log"
	exit 0
fi
if ! grep -q '^EMBER-VM-DONE' "$log"; then
	echo "vm: no result line (qemu exit $qrc, 124 = timeout after ${timeout}s); see $log" >&2
else
	grep '^EMBER-VM-RESULT' "$log" >&2
	echo "vm: tests failed in the VM; see $log" >&2
fi
exit 1
