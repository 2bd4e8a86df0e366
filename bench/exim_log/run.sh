#!/bin/sh
# Times `smtpguard watch exim-log` against Debian's eximstats (perl, from
# exim4-base) on the same generated main log, warm page cache: eximstats on
# one core (taskset -c 0), smtpguard on one core and on two (taskset -c 0,1).
# Not part of the test suite.
#
#   bench/exim_log/run.sh                  # 1 GiB log in $WORK, 3 rounds
#   SIZE_MB=256 RUNS=5 bench/exim_log/run.sh
#
# Knobs (defaults): SMTPGUARD=build/src/cli/smtpguard (relative to the
# repository), WORK=/tmp/smtpguard-exim-bench, SIZE_MB=1024, SEED=42,
# RUNS=3 (smtpguard runs per round), EXIMSTATS_RUNS=3 (rounds), MAX_LOAD=3
# (refuses to measure above this 1-minute load; FORCE=1 measures anyway).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
SMTPGUARD=${SMTPGUARD:-$repo/build/src/cli/smtpguard}
WORK=${WORK:-/tmp/smtpguard-exim-bench}
SIZE_MB=${SIZE_MB:-1024}
SEED=${SEED:-42}
RUNS=${RUNS:-3}
EXIMSTATS_RUNS=${EXIMSTATS_RUNS:-3}
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
# seconds (wall) of one run of "$@" on the CPUs $cpus, output discarded
timed() {
  /usr/bin/time -f '%e %U %S' -o "$WORK/time" taskset -c "$cpus" "$@" >"$WORK/out" 2>"$WORK/err" ||
    { echo "run.sh: failed: $*" >&2; cat "$WORK/err" >&2; exit 70; }
  cut -d' ' -f1 "$WORK/time"
}
best() { sort -n | head -1; }
sg_best() {  # best of RUNS runs of smtpguard on $cpus
  i=0
  while [ $i -lt "$RUNS" ]; do
    timed "$SMTPGUARD" --config "$conf" watch exim-log "$log"
    i=$((i + 1))
  done | best
}

# Rounds: eximstats once (one core: it is single-threaded perl), then
# smtpguard RUNS times on one core (reading, parsing and the detectors on
# one thread) and RUNS times on two (the detectors on a second thread).
# Both tools' best are compared, and each round's eximstats time with that
# round's best smtpguard times: this machine is shared, and a round's
# figures see the same neighbours.
es_all="" one_all="" two_all=""
r=0
while [ $r -lt "$EXIMSTATS_RUNS" ]; do
  cpus=0
  es=$(timed "$EXIMSTATS" "$log")
  one=$(sg_best)
  cpus=0,1
  two=$(sg_best)
  es_all="$es_all $es" one_all="$one_all $one" two_all="$two_all $two"
  r=$((r + 1))
done
summary=$(grep ' lines (' "$WORK/out" | head -1)

echo "file: $log ($bytes bytes), load before: $load"
echo "smtpguard: $summary"
echo "rounds: eximstats s, best smtpguard s on one core and on two (ratios):"
awk -v es="$es_all" -v one="$one_all" -v two="$two_all" -v b="$bytes" '
function median(a, n,   i, j, t) {
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
BEGIN {
  n = split(es, e, " "); split(one, o, " "); split(two, w, " ")
  be = e[1]; bo = o[1]; bw = w[1]
  for (i = 1; i <= n; i++) {
    printf "  round %d: %.2f, %.2f (%.1fx), %.2f (%.1fx)\n", i, e[i], o[i], e[i] / o[i], w[i], e[i] / w[i]
    ro[i] = e[i] / o[i]; rw[i] = e[i] / w[i]
    if (e[i] < be) be = e[i]
    if (o[i] < bo) bo = o[i]
    if (w[i] < bw) bw = w[i]
  }
  printf "eximstats:                 %.2f s  %.1f MB/s (best)\n", be, b / be / 1e6
  printf "smtpguard, one core:       %.2f s  %.0f MB/s (best); %.1fx best against best, %.1fx median of rounds\n", bo, b / bo / 1e6, be / bo, median(ro, n)
  printf "smtpguard, two cores:      %.2f s  %.0f MB/s (best); %.1fx best against best, %.1fx median of rounds\n", bw, b / bw / 1e6, be / bw, median(rw, n)
}'
