#!/bin/sh
# Times `smtpguard watch exim-log` against Debian's eximstats (perl, from
# exim4-base) on the same generated main log, warm page cache, one core
# (taskset -c 0). Not part of the test suite.
#
#   bench/exim_log/run.sh                  # 1 GiB log in $WORK, 3 runs each
#   SIZE_MB=256 RUNS=5 bench/exim_log/run.sh
#
# Knobs (defaults): SMTPGUARD=build/src/cli/smtpguard (relative to the
# repository), WORK=/tmp/smtpguard-exim-bench, SIZE_MB=1024, SEED=42,
# RUNS=3 (smtpguard; best is reported), EXIMSTATS_RUNS=1, MAX_LOAD=3
# (refuses to measure above this 1-minute load; FORCE=1 measures anyway).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
SMTPGUARD=${SMTPGUARD:-$repo/build/src/cli/smtpguard}
WORK=${WORK:-/tmp/smtpguard-exim-bench}
SIZE_MB=${SIZE_MB:-1024}
SEED=${SEED:-42}
RUNS=${RUNS:-3}
EXIMSTATS_RUNS=${EXIMSTATS_RUNS:-1}
MAX_LOAD=${MAX_LOAD:-3}
EXIMSTATS=${EXIMSTATS:-/usr/sbin/eximstats}

[ -x "$SMTPGUARD" ] || { echo "run.sh: no smtpguard at $SMTPGUARD (set SMTPGUARD=)" >&2; exit 66; }
[ -x "$EXIMSTATS" ] || { echo "run.sh: no $EXIMSTATS (apt-get install exim4-base)" >&2; exit 69; }
mkdir -p "$WORK"
log=$WORK/mainlog-$SIZE_MB-$SEED
if [ ! -s "$log" ]; then
  echo "generating $log ($SIZE_MB MiB, seed $SEED)"
  /usr/bin/python3 "$here/generate.py" "$log.tmp" --size-mb "$SIZE_MB" --seed "$SEED"
  mv "$log.tmp" "$log"
fi
conf=$WORK/smtpguard.toml
printf '[relay]\nstate_dir = "%s/state"\n' "$WORK" >"$conf"
bytes=$(stat -c %s "$log")

load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v m="$MAX_LOAD" 'BEGIN { exit !(l > m) }' && [ "${FORCE:-0}" != 1 ]; then
  echo "run.sh: load average $load > $MAX_LOAD; not measuring (FORCE=1 to measure anyway)" >&2
  exit 75
fi

cat "$log" >/dev/null  # warm the page cache
# seconds (wall) of one run of "$@" on core 0, output discarded
timed() {
  /usr/bin/time -f '%e %U %S' -o "$WORK/time" taskset -c 0 "$@" >"$WORK/out" 2>"$WORK/err" ||
    { echo "run.sh: failed: $*" >&2; cat "$WORK/err" >&2; exit 70; }
  cut -d' ' -f1 "$WORK/time"
}
best() { sort -n | head -1; }

sg=$(i=0; while [ $i -lt "$RUNS" ]; do
  timed "$SMTPGUARD" --config "$conf" watch exim-log "$log"; i=$((i + 1)); done | best)
lines=$(head -1 "$WORK/out")
es=$(i=0; while [ $i -lt "$EXIMSTATS_RUNS" ]; do
  timed "$EXIMSTATS" "$log"; i=$((i + 1)); done | best)

echo "file: $log ($bytes bytes), load before: $load"
echo "smtpguard: $lines"
awk -v b="$bytes" -v s="$sg" -v e="$es" 'BEGIN {
  printf "smtpguard watch exim-log: %.2f s  %.0f MB/s\n", s, b / s / 1e6
  printf "eximstats:                %.2f s  %.1f MB/s\n", e, b / e / 1e6
  printf "ratio: %.1fx\n", e / s }'
