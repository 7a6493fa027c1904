#!/bin/sh
# run.sh MODE BINARY NAME SEEDS WORKDIR - run one libFuzzer target (tests/fuzz/CMakeLists.txt).
#
#   MODE brief: replay the seed corpus, then fuzz AGENTBOX_FUZZ_SECONDS (default 30) seconds
#   MODE long:  the same for AGENTBOX_FUZZ_LONG_SECONDS (default 1200) seconds
#
# The working corpus (WORKDIR/corpus) persists between runs, so coverage accumulates; crash,
# leak and timeout inputs are written to WORKDIR/ and the run fails. A summary line
# (executions, coverage, corpus size) is appended to WORKDIR/runs.log for the record.
set -eu
mode=$1 bin=$2 name=$3 seeds=$4 work=$5
here=$(cd "$(dirname "$0")" && pwd)
case $mode in
  brief) secs=${AGENTBOX_FUZZ_SECONDS:-30} ;;
  long) secs=${AGENTBOX_FUZZ_LONG_SECONDS:-1200} ;;
  *) echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
esac
mkdir -p "$work/corpus"
dict=
[ -f "$here/$name.dict" ] && dict="-dict=$here/$name.dict"
max_len=4096
case $name in jsonrpc|http) max_len=16384 ;; esac

# 1. Regression: every seed once (libFuzzer exits non-zero on the first crash).
echo "== fuzz $name: replaying the seed corpus"
"$bin" -runs=0 -timeout=20 -artifact_prefix="$work/" $dict "$seeds" 2>"$work/replay.log" || {
  tail -n 60 "$work/replay.log"; exit 1; }
grep -E "INITED|DONE" "$work/replay.log" | tail -n 2 || true

# 2. Fuzz. -close_fd_mask=3 would hide our invariant messages; keep stderr, quiet stdout.
echo "== fuzz $name: fuzzing for $secs s"
log="$work/fuzz.log"
rc=0
"$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -max_len=$max_len \
  -print_final_stats=1 -artifact_prefix="$work/" $dict "$work/corpus" "$seeds" \
  >"$log" 2>&1 || rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
ft=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
corp=$(ls "$work/corpus" | wc -l)
line="$(date -u +%Y-%m-%dT%H:%M:%SZ) $name mode=$mode seconds=$secs execs=${execs:-?} cov=${cov:-?} ft=${ft:-?} corpus=$corp rc=$rc"
echo "$line" >>"$work/runs.log"
echo "$line"
if [ $rc -ne 0 ]; then
  echo "== fuzz $name FAILED; the last lines of $log:"
  tail -n 80 "$log"
  ls -1 "$work" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sed "s|^|  artifact: $work/|" || true
  exit 1
fi
