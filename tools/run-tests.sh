#!/bin/sh
# Run every Criterion test binary given, one after the other; print each runner's summary and a
# final total. Exit non-zero if any runner failed. CRITERION_FLAGS passes options (default -j1:
# many tests share kernel objects such as the ember cgroup parent).
status=0
for t in "$@"; do
	echo "== $(basename "$t")"
	"$t" ${CRITERION_FLAGS:---jobs 1} || status=1
done
exit $status
