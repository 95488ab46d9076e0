#!/bin/sh
# make demo: ember as a function host, then as an OCI runtime, in under two minutes:
#  1. `ember serve` on its own socket, run and data directories and cgroup parent; every example
#     deployed with `ember fn deploy` and invoked through each start path the host has: cold (a
#     pre-made sandbox execs the function, its init runs), warm (the idle instance, frozen
#     since its last invocation, is thawed), zygote (forked from the function's template) and
#     restore (the template restored from its snapshot after a host restart); `ember fn invoke --verbose`, `ls`, `invocations`,
#     `logs`, and the HTTP API with curl (if installed); then the host stops on SIGTERM.
#  2. start latencies next to `crun run` / `runc run` of the same bundles: build/bench/bench-host
#     with few rounds (EMBER_DEMO_ROUNDS, EMBER_DEMO_HEAVY_ROUNDS; `make bench` runs it in full).
#  3. the OCI runtime: a bundle through run, create/start/state/exec/kill/delete, and billing.
# Leaves nothing behind: directories, state, the host's and the runtime's cgroup parents.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
E="$top/build/ember"
work=$(mktemp -d /tmp/ember-demo-XXXXXX)
chmod 755 "$work"
sock="$work/ember.sock"
serve_cg=ember-demo-$$-serve
oci_cg=ember-demo-$$-oci
root=/run/ember-demo-$$
host=
t_start=$(date +%s)

# Remove what is left of a cgroup parent: the freezer anchor ember keeps frozen in it (thawed
# first), then the parent in every hierarchy.
remove_cg_parent() {
	for d in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
		[ -d "$d" ] || continue
		if [ -d "$d/ember-freezer-anchor" ]; then
			echo THAWED > "$d/ember-freezer-anchor/freezer.state" 2>/dev/null || true
			rmdir "$d/ember-freezer-anchor" || true
		fi
		rmdir "$d" 2>/dev/null || { echo "demo: $d is not empty, left in place" >&2; return 1; }
	done
}

stop_host() {
	[ -n "$host" ] || return 0
	kill -TERM "$host" 2>/dev/null || true
	st=0
	wait "$host" || st=$?
	host=
	if [ "$st" -ne 0 ]; then
		echo "demo: ember serve exited with status $st after SIGTERM; its log:" >&2
		cat "$work/serve.log" >&2
		return 1
	fi
}

cleanup() {
	rc=$?
	set +e
	stop_host || rc=1
	"$E" --root "$root" --cgroup-parent "$oci_cg" delete --force demo1 >/dev/null 2>&1
	rm -rf "$work" "$root"
	remove_cg_parent "$serve_cg" || rc=1
	remove_cg_parent "$oci_cg" || rc=1
	[ "$rc" -eq 0 ] && echo "== demo done in $(( $(date +%s) - t_start )) s; nothing left behind"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }

# An operator's `ember fn` command: shown as typed, run against the demo's socket.
efn() {
	printf '$ ember fn %s\n' "$*"
	"$E" fn "$@" --socket "$sock"
}

# Invoke: the command, the answer, then how the instance was readied and the times (headers).
inv() {
	printf "\$ ember fn invoke %s '%s'\n" "$1" "$2"
	"$E" fn invoke "$@" --verbose --socket "$sock" 2>"$work/headers"
	echo
	awk -F': ' '
		/^Ember-Start:/ { s = $2 } /^Ember-Init-Ms:/ { i = $2 }
		/^Ember-Duration-Ms:/ { d = $2 } /^Ember-Billed-Ms:/ { b = $2 }
		/^Ember-Cpu-Ms:/ { c = $2 }
		END { printf "  -> %s start: init %s ms; in the function %s ms (billed %s ms, CPU %s ms)\n", s, i, d, b, c }
	' "$work/headers"
	# After a cold start the host parks a new sandbox for the function. Give it a moment before
	# the next command connects: the host making a connection thread while it clones a sandbox
	# can hang that sandbox (glibc's setgroups in the clone waits for the parent's threads).
	if grep -q '^Ember-Start: cold' "$work/headers"; then sleep 0.2; fi
}

# --------------------------------------------------------------------------- the function host
start_host() {
	echo "\$ ember serve --socket $sock --run-dir $work/run --data-dir $work/data --cgroup-parent $serve_cg --capacity-mb 16384 &"
	"$E" serve --socket "$sock" --run-dir "$work/run" --data-dir "$work/data" \
		--cgroup-parent "$serve_cg" --capacity-mb 16384 >>"$work/serve.log" 2>&1 </dev/null &
	host=$!
	i=0
	until [ -S "$sock" ]; do
		if ! kill -0 "$host" 2>/dev/null || [ $i -ge 300 ]; then
			echo "demo: ember serve did not come up; its log:" >&2
			cat "$work/serve.log" >&2
			exit 1
		fi
		i=$((i + 1))
		sleep 0.1
	done
}

say "the function host: ember serve with its own socket, directories and cgroup parent"
: >"$work/serve.log"
start_host
sed 's/^/  serve: /' "$work/serve.log"
echo "(every \`ember fn\` command below also gets --socket $sock)"

say "deploy the examples (a deploy returns once a pre-made sandbox is parked for the function)"
cd "$top"
efn deploy hello-c --bundle build/examples/hello-c --memory 1769
echo
for f in hello-python init-heavy-c init-heavy-python probe; do
	efn deploy "$f" --bundle "build/examples/$f" --memory 1769 >/dev/null
done
# half a vCPU: CPU follows memory, so 100 ms of CPU take about 200 ms
efn deploy spin --bundle build/examples/spin --memory 885 >/dev/null
efn ls

say "invoke: the first invocation is a cold start, the next ones are warm"
printf '$ ember fn invoke hello-c world --verbose\n'
"$E" fn invoke hello-c world --verbose --socket "$sock"
echo
sleep 0.2 # a cold start: see inv
inv hello-c world
inv hello-python world
inv hello-python world
inv init-heavy-c "1 2 3"
inv init-heavy-c "1 2 3"
inv init-heavy-python "1 2 3"
inv init-heavy-python "1 2 3"
echo "# the same instance answers both: the same namespaces, and it is pid 1 in its own pid namespace"
inv probe pid
inv probe pid
echo "# spin at 885 MB = half a vCPU (CPU follows memory: 50 ms of CPU per 100 ms period): 100 ms of CPU take 100-200 ms"
inv spin 100
inv spin 100
inv probe "log a line from inside the function"

say "zygote: a template runs the init once; new instances are forked from it (--template provisioned)"
efn deploy init-heavy-c --bundle build/examples/init-heavy-c --memory 1769 --template provisioned >/dev/null
efn deploy init-heavy-python --bundle build/examples/init-heavy-python --memory 1769 --template provisioned >/dev/null
efn deploy probe-python --bundle build/examples/probe-python --memory 1769 --template provisioned >/dev/null
echo "# the new versions' first instances are forks: no exec, no init (compare the cold starts above)"
inv init-heavy-c "1 2 3"
inv init-heavy-python "1 2 3"
inv init-heavy-python "1 2 3"
echo "# a forked instance: pid 1 of its own pid namespace, its own /proc (one process), its own /tmp"
inv probe-python pid
inv probe-python "write mine"
printf '$ ember fn ls --json | template of probe-python\n'
"$E" fn ls --json --socket "$sock" | python3 -c 'import json,sys; [print(" ", f["name"], f["template"]) for f in json.load(sys.stdin) if f["name"].startswith("probe-python")]'

say "snapshots: the template's memory on disk; after a host restart the template is restored, not re-initialised"
efn deploy init-heavy-c --bundle build/examples/init-heavy-c --memory 1769 --snapshot provisioned >/dev/null
efn deploy init-heavy-python --bundle build/examples/init-heavy-python --memory 1769 --snapshot provisioned >/dev/null
img=$(ls "$work"/data/snapshots/init-heavy-c-v*.img)
printf '$ ember snapshot inspect %s | head -8\n' "$img"
"$E" snapshot inspect "$img" | head -8
echo "\$ kill -TERM $host   # the host stops; the deployed functions and their images stay"
stop_host
start_host
echo "# the first invocation after the restart: its template is restored from the image (Ember-Start: restore)"
inv init-heavy-c "1 2 3"
inv init-heavy-python "1 2 3"
inv init-heavy-python "1 2 3"

say "what the host recorded: billing records (BPF) and the function's output"
efn invocations init-heavy-c --limit 3
efn logs probe --limit 1
efn ls

if command -v curl >/dev/null 2>&1; then
	say "the same API with curl"
	printf '$ curl -si --unix-socket %s -X POST http://ember/v1/functions/hello-c/invoke -d curl\n' "$sock"
	curl -si --unix-socket "$sock" -X POST http://ember/v1/functions/hello-c/invoke -d curl
	echo
	printf '$ curl -s --unix-socket %s http://ember/metrics | grep "^ember_invocations_total"\n' "$sock"
	curl -s --unix-socket "$sock" http://ember/metrics | grep '^ember_invocations_total' || true
else
	say "(curl is not installed: the curl examples are in runtime/host/API.md)"
fi

say "stop the host: SIGTERM; it removes every instance and its socket"
echo "\$ kill -TERM $host"
stop_host
sed -n 's/^/  serve: /; /stopping\|stopped/p' "$work/serve.log"

# --------------------------------------------------------------------------- start latencies
say "start latencies next to crun run / runc run of the same bundles (bench-host, few rounds)"
bench="$top/build/bench/bench-host"
if [ -x "$bench" ]; then
	EMBER_BENCH_HOST_ROUNDS=${EMBER_DEMO_ROUNDS:-5} \
	EMBER_BENCH_HOST_HEAVY_ROUNDS=${EMBER_DEMO_HEAVY_ROUNDS:-2} \
	EMBER_BENCH_HOST_WARM=20 EMBER_BENCH_HOST_TPUT_MS=1000 \
		"$bench" >"$work/bench.txt" 2>&1 || { cat "$work/bench.txt"; exit 1; }
	grep -E '^# (machine|crun|runc|load average at the start):' "$work/bench.txt"
	awk '/^# summary/ { p = 1 } p || /clients: throughput|first failure/' "$work/bench.txt"
	echo "(few rounds: \`make bench\` has the full figures; build/bench/bench-host runs them alone)"
else
	echo "(build/bench/bench-host is not built)"
fi

# --------------------------------------------------------------------------- the OCI runtime
say "ember as an OCI runtime: the same CLI containerd and podman drive"
em() { "$E" --root "$root" --cgroup-parent "$oci_cg" "$@"; }
mkdir "$work/bundle"
cd "$work/bundle"
"$E" spec
# $1: the process's args as a JSON array
set_args() {
	python3 - "$top/build/rootfs" "$1" <<'PY'
import json, sys
c = json.load(open("config.json"))
c["root"]["path"] = sys.argv[1]
c["process"]["terminal"] = False
c["process"]["args"] = json.loads(sys.argv[2])
json.dump(c, open("config.json", "w"), indent=2)
PY
}
set_args '["sh", "-c", "echo \"hello from pid $$ on $(hostname), uid $(id -u)\"; grep CapEff /proc/self/status"]'
echo '$ ember run demo1'
em run demo1
set_args '["sleep", "60"]'
echo '$ ember create --pid-file pid demo1; ember start demo1; ember exec ...; ember kill demo1 KILL; ember delete demo1'
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
echo '$ ember run --bill - demo1   # billing in the kernel (BPF): 50 ms of work'
set_args '["emtest", "spin", "50"]'
em run --bill - demo1
cd "$top"
