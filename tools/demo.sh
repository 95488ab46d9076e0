#!/bin/sh
# make demo: run a bundle end to end through every path the OCI runtime has today
# (run, create/start/state/exec/kill/delete, the netns pool, billing), then time ember, crun
# and runc side by side on the same bundle. Leaves nothing behind.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
E="$top/build/ember"
work=$(mktemp -d /tmp/ember-demo-XXXXXX)
root=/run/ember-demo-$$
parent=ember-demo-$$
em() { "$E" --root "$root" --cgroup-parent "$parent" "$@"; }
cleanup() {
	em delete --force demo1 >/dev/null 2>&1 || true
	em netns-pool destroy >/dev/null 2>&1 || true
	rm -rf "$work" "$root"
	# the demo's cgroup parent (and the freezer anchor ember keeps in it)
	for d in $(find /sys/fs/cgroup -maxdepth 3 -type d -name "$parent" 2>/dev/null); do
		[ -d "$d/ember-freezer-anchor" ] && { echo THAWED > "$d/ember-freezer-anchor/freezer.state" 2>/dev/null || true; rmdir "$d/ember-freezer-anchor"; }
		rmdir "$d" 2>/dev/null || true
	done
}
trap cleanup EXIT INT TERM

chmod 755 "$work"
cd "$work"
"$E" spec
python3 - "$top/build/rootfs" <<'PY'
import json, sys
c = json.load(open("config.json"))
c["root"]["path"] = sys.argv[1]
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo \"hello from pid $$ on $(hostname), uid $(id -u)\"; grep CapEff /proc/self/status"]
json.dump(c, open("config.json", "w"), indent=2)
PY

echo "== ember run (foreground, exit status propagated)"
em run demo1
echo "== create / start / state / exec / kill / delete (as containerd drives it)"
sed -i 's/"sh",/"sleep", "60", "--", "sh",/' config.json 2>/dev/null || true
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["args"] = ["sleep", "60"]
json.dump(c, open("config.json", "w"), indent=2)
PY
em create --pid-file "$work/pid" demo1
echo "pid file: $(cat "$work/pid")"
em state demo1 | grep '"status"'
em start demo1
em state demo1 | grep '"status"'
em exec demo1 sh -c 'echo "exec joined: $(hostname), pid 1 is $(cat /proc/1/comm)"'
em kill demo1 KILL
sleep 0.2
em state demo1 | grep '"status"'
em delete demo1
echo "== network namespaces from the pool"
em netns-pool fill 2
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["args"] = ["readlink", "/proc/self/ns/net"]
json.dump(c, open("config.json", "w"), indent=2)
PY
em run demo1
em netns-pool status
em netns-pool destroy
echo "== billing in the kernel (BPF): 50 ms of work"
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["args"] = ["emtest", "spin", "50"]
json.dump(c, open("config.json", "w"), indent=2)
PY
em run --bill - demo1
echo
echo "== start latency: ember vs crun vs runc on the same bundle (/bin/true)"
if [ -x "$top/build/bench/bench-run" ]; then
	EMBER_BENCH_RUNS=${EMBER_BENCH_RUNS:-20} "$top/build/bench/bench-run"
else
	echo "(build/bench/bench-run not built)"
fi
