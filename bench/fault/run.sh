#!/bin/sh
# bench/fault/run.sh - the fault suite (tests/fault) with long bursts, not
# part of the default test run: Redis killed, terminated or restarted
# without its data, PostgreSQL crashed, during bursts of TASKS submits
# (default 3000, ~1 minute each), ROUNDS times; prints each run's figures
# (accepted, completed, failed, lost, disagreeing, duplicated, recovery)
# and exits 1 if any run lost or disagreed.
#   bench/fault/run.sh [BUILD_DIR] [TASKS] [ROUNDS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
export AETH_FAULT_TASKS=${2:-3000}
rounds=${3:-1}
export AETH_SOURCE_ROOT=$root AETH_BUILD_ROOT=$build
export AETH_JAILER=${AETH_JAILER:-$build/lib/jail/aeth-jailer}
[ -x "$build/tests/fault/burst" ] || { echo "run.sh: $build/tests/fault/burst not built" >&2; exit 1; }
rc=0
r=0
while [ $r -lt "$rounds" ]; do
	r=$((r + 1))
	for t in "test_redis.py kill" "test_redis.py term" "test_redis.py lost" \
		 "test_pg.py immediate"; do
		echo "== round $r: $t ($AETH_FAULT_TASKS tasks)"
		# shellcheck disable=SC2086
		out=$(python3 "$root/tests/fault/"$t 2>&1) || rc=1
		printf '%s\n' "$out" | grep -E '^\[|^ok|FAIL' || true
	done
done
exit $rc
