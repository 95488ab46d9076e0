#!/bin/sh
# Run every Criterion test binary given, one after the other; print each runner's summary and a
# final total. Exit non-zero if any runner failed. CRITERION_FLAGS passes options (default -j1:
# many tests share kernel objects such as the ember cgroup parent).
# Criterion reports an assertion that fails in a suite's .init or .fini (where the host tests
# stop `ember serve` and check that it left nothing behind) but still counts the test as passed:
# such an assertion fails the run here.
status=0
tmp=$(mktemp -d /tmp/ember-run-tests-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for t in "$@"; do
	name=$(basename "$t")
	echo "== $name"
	{ "$t" ${CRITERION_FLAGS:---jobs 1}; echo $? >"$tmp/rc"; } 2>&1 | tee "$tmp/out"
	[ "$(cat "$tmp/rc")" = 0 ] || status=1
	if grep -q 'Assertion Failed' "$tmp/out" && ! grep -q 'Failing: [^0]' "$tmp/out"; then
		echo "== $name: an assertion failed outside a test body (a suite's init or fini): the run fails"
		status=1
	fi
done
exit $status
