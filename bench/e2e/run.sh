#!/usr/bin/env bash
# End-to-end acceptance benchmark: smtpguard relay vs Exim 4.96 (see docs/benchmarks.md).
#
# Starts, on free 127.0.0.1 ports: Postfix's smtp-sink, a private Exim 4.96
# (exim4-daemon-heavy, own config and spool, relaying everything to smtp-sink)
# and `smtpguard relay`; drives each with bench/smtp_load (latency, RSS) and
# Postfix's smtp-source (throughput) at 1, 20 and 50 sessions, then 200 open
# sessions for peak RSS; stops everything and prints a Markdown table.
#
# usage: bench/e2e/run.sh            (as root: Exim needs its setuid re-exec)
# env:   BUILD=build-bench (in the repo)  POINTS="1 20 50"  MESSAGES=2000  TIME_CAP=30
#        SIZE=1000  RSS_SESSIONS=200  SERVERS="sink exim smtpguard"  ROUNDS=1
#        SPOOL_SYNC=fdatasync|syncfs ([relay] spool_sync; unset: smtpguard's default)
#        SKIP_BUILD=1 (use existing binaries)  KEEP=1 (keep the work dir)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
POINTS=${POINTS:-"1 20 50"}
MESSAGES=${MESSAGES:-2000}
TIME_CAP=${TIME_CAP:-30}  # seconds per smtp_load run; smtp-source gets about half
SIZE=${SIZE:-1000}
RSS_SESSIONS=${RSS_SESSIONS:-200}
SERVERS=${SERVERS:-"sink exim smtpguard"}
ROUNDS=${ROUNDS:-1}  # repeat all points; the table shows medians (memory: maxima)
TOOLS=$BUILD/bench-tools
PFX=$TOOLS/postfix
SENDER=sender@bench.example
RCPT=rcpt@example.net

log() { echo "run.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}
[[ $(id -u) == 0 ]] || die "run as root (Exim's -C config must be trusted; apt-get)"

# --- peers -------------------------------------------------------------------
install_peers() {
  mkdir -p "$TOOLS"
  if [[ ! -x $PFX/usr/sbin/smtp-source || ! -x $PFX/usr/sbin/smtp-sink ]]; then
    log "extracting smtp-source/smtp-sink from Debian's postfix package (not installed)"
    (cd "$TOOLS" && rm -f postfix_*.deb && apt-get download postfix >/dev/null 2>&1 &&
      rm -rf postfix && dpkg -x postfix_*.deb postfix) || die "cannot fetch postfix .deb"
  fi
  if ! command -v exim4 >/dev/null; then
    local before
    before=$(pgrep -x exim4 || true)
    log "installing exim4-daemon-heavy"
    DEBIAN_FRONTEND=noninteractive apt-get install -y exim4-daemon-heavy >/dev/null ||
      die "apt-get install exim4-daemon-heavy failed"
    # The package may start the system daemon; we never use it.
    for pid in $(pgrep -x exim4 || true); do
      grep -qw "$pid" <<<"$before" || { log "stopping system exim4 pid $pid"; kill "$pid"; }
    done
  fi
  exim4 -bV | head -1 | grep -q 'version 4\.96' || log "warning: $(exim4 -bV | head -1)"
}
export LD_LIBRARY_PATH=$PFX/usr/lib/postfix${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

build() {
  [[ ${SKIP_BUILD:-0} == 1 ]] && return 0
  [[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  make -C "$BUILD" -j2 smtp_load >/dev/null || die "cannot build smtp_load"
  if [[ $SERVERS == *smtpguard* ]] && ! make -C "$BUILD" -j2 smtpguard >"$BUILD/bench-e2e-build.log" 2>&1; then
    log "smtpguard does not build (see $BUILD/bench-e2e-build.log); benchmarking the others"
    SERVERS=${SERVERS//smtpguard/}
  fi
}

# --- process helpers (every wait is bounded) ---------------------------------
PIDS=()
TRUSTED_LIST=/etc/exim4/trusted_configs
TRUSTED_BACKUP=
WORK=

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {  # PORT PID: until something listens, at most 20 s
  for _ in $(seq 200); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
stop_pid() {  # SIGTERM, up to 15 s, then SIGKILL
  kill -0 "$1" 2>/dev/null || return 0
  kill "$1" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $1 did not stop on SIGTERM; killing"
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  wait 2>/dev/null || true
  if [[ -n $TRUSTED_BACKUP ]]; then
    mv -f "$TRUSTED_BACKUP" "$TRUSTED_LIST"
  elif [[ -n $WORK ]]; then
    rm -f "$TRUSTED_LIST"
  fi
  if [[ -n $WORK && ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- servers -----------------------------------------------------------------
declare -A PORT PID
start_sink() {
  PORT[sink]=$(free_port)
  "$PFX/usr/sbin/smtp-sink" -u nobody -m 2000 "127.0.0.1:${PORT[sink]}" 1024 \
    >"$WORK/sink.log" 2>&1 &
  PID[sink]=$!
  PIDS+=("$!")
  wait_port "${PORT[sink]}" "${PID[sink]}" || die "smtp-sink did not start"
}

start_exim() {
  PORT[exim]=$(free_port)
  mkdir -p "$WORK/exim/spool" "$WORK/exim/log"
  chown -R Debian-exim:Debian-exim "$WORK/exim"
  sed -e "s#@WORK@#$WORK#g; s#@PORT@#${PORT[exim]}#; s#@SINK_PORT@#${PORT[sink]}#" \
    "$SRC/bench/e2e/exim.conf.in" >"$WORK/exim.conf"
  chmod 644 "$WORK/exim.conf"
  # Debian's Exim keeps root (needed for its normal re-exec model) with -C only
  # for configs listed in TRUSTED_CONFIG_LIST; the entry is removed on exit.
  if [[ -e $TRUSTED_LIST ]]; then
    TRUSTED_BACKUP=$WORK/trusted_configs.orig
    cp -p "$TRUSTED_LIST" "$TRUSTED_BACKUP"
  fi
  echo "$WORK/exim.conf" >>"$TRUSTED_LIST"
  chmod 644 "$TRUSTED_LIST"
  # -q30m as in Debian's init script; -bdf keeps the daemon in our process group.
  exim4 -C "$WORK/exim.conf" -bdf -q30m -oX "${PORT[exim]}" >"$WORK/exim/stderr" 2>&1 &
  PID[exim]=$!
  PIDS+=("$!")
  wait_port "${PORT[exim]}" "${PID[exim]}" || die "exim did not start: $(cat "$WORK/exim/stderr")"
  ! grep -q 'lost privilege' "$WORK/exim/stderr" || die "exim dropped root for -C"
}

start_smtpguard() {
  local sg=$BUILD/src/cli/smtpguard conf=$WORK/smtpguard.toml
  PORT[smtpguard]=$(free_port)
  mkdir -p "$WORK/sg"
  cat >"$conf" <<EOF
[relay]
listen = ["127.0.0.1:${PORT[smtpguard]}"]
state_dir = "$WORK/sg/state"
EOF
  [[ -z ${SPOOL_SYNC:-} ]] || echo "spool_sync = \"$SPOOL_SYNC\"" >>"$conf"
  # A load generator is not an incident: the detectors only alert here.
  printf '[monitor]\nlisten = ""\n[detect.rate]\naction = "alert"\n[detect.recipients]\naction = "alert"\n' >>"$conf"
  "$sg" --config "$conf" client add bench --ip 127.0.0.1/32 --allowed-sender '*@bench.example' \
    --max-recipients 100 >"$WORK/sg/client-add.log" 2>&1 ||
    die "client add failed: $(cat "$WORK/sg/client-add.log")"
  "$sg" --config "$conf" relay >"$WORK/sg/relay.log" 2>&1 &
  PID[smtpguard]=$!
  PIDS+=("$!")
  wait_port "${PORT[smtpguard]}" "${PID[smtpguard]}" ||
    die "smtpguard relay did not start: $(tail -5 "$WORK/sg/relay.log")"
}

# Exim keeps delivering after the load stops; let it finish so one run's
# deliveries do not steal CPU from the next. Messages Exim chose to queue
# (smtp_accept_queue_per_connection) wait for the next queue run, so stop when
# the spool is empty or has not shrunk for 5 s (at most 120 s in all).
drain() {
  [[ $1 == exim ]] || return 0
  local count last=-1 still=0
  for _ in $(seq 240); do
    count=$(find "$WORK/exim/spool/input" -type f -name '*-H' | wc -l)
    [[ $count == 0 ]] && return 0
    if [[ $count == "$last" ]]; then
      still=$((still + 1))
      ((still < 10)) || return 0
    else
      still=0
    fi
    last=$count
    sleep 0.5
  done
  log "exim queue not empty after 120 s; continuing"
}

# --- load --------------------------------------------------------------------
RESULTS=
record() {  # SERVER SESSIONS TOOL JSON
  echo "{\"server\": \"$1\", \"point\": $2, \"tool\": \"$3\", \"r\": $4}" >>"$RESULTS"
}

run_load() {  # SERVER SESSIONS [extra smtp_load args]
  local server=$1 n=$2 out
  shift 2
  out=$("$BUILD/bench/smtp_load" --port "${PORT[$server]}" --sessions "$n" --messages "$MESSAGES" \
    --time-limit "$TIME_CAP" --size "$SIZE" --from "$SENDER" --to "$RCPT" \
    --watch-pid "${PID[$server]}" "$@") || true
  [[ -n $out ]] || out='{"accepted": 0}'
  echo "$out"
}

run_source() {  # SERVER SESSIONS RATE: smtp-source with ~TIME_CAP/2 s worth of messages
  local server=$1 n=$2 rate=$3 count t0 t1 rc=0
  count=$(python3 -c "print(max($n, min($MESSAGES, int($rate * $TIME_CAP / 2))))")
  t0=$(date +%s.%N)
  timeout $((TIME_CAP * 2)) "$PFX/usr/sbin/smtp-source" -s "$n" -m "$count" -l "$SIZE" \
    -f "$SENDER" -t "$RCPT" -M bench.example "127.0.0.1:${PORT[$server]}" \
    >"$WORK/source.out" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  python3 -c "print('{\"messages\": $count, \"rc\": $rc, \"elapsed_s\": %.3f, \"msgs_per_s\": %.1f}'
    % ($t1 - $t0, ($count if $rc == 0 else 0) / ($t1 - $t0)))"
}

measure_point() {  # SERVER SESSIONS LABEL
  local j rate
  log "$3: $1, $2 sessions: smtp_load"
  j=$(run_load "$1" "$2")
  record "$1" "$2" smtp_load "$j"
  drain "$1"
  log "$3: $1, $2 sessions: smtp-source"
  rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("msgs_per_s") or 1)' "$j")
  record "$1" "$2" smtp_source "$(run_source "$1" "$2" "$rate")"
  drain "$1"
}

main() {
  install_peers
  build
  mkdir -p "$BUILD/bench-e2e"
  WORK=$(mktemp -d "$BUILD/bench-e2e/run.XXXXXX")
  chmod 755 "$WORK"
  RESULTS=$WORK/results.jsonl
  log "work dir $WORK; servers: $SERVERS; spool_sync: ${SPOOL_SYNC:-default}"
  local machine
  machine="nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load before: $(cut -d' ' -f1-3 /proc/loadavg)"

  start_sink
  [[ $SERVERS == *exim* ]] && start_exim
  [[ $SERVERS == *smtpguard* ]] && start_smtpguard

  local n server round
  for round in $(seq "$ROUNDS"); do
    for n in $POINTS; do
      for server in $SERVERS; do
        measure_point "$server" "$n" "round $round/$ROUNDS"
      done
    done
  done
  for server in $SERVERS; do
    [[ $server == sink ]] && continue
    log "$server, $RSS_SESSIONS open sessions (--reuse): peak RSS"
    record "$server" "$RSS_SESSIONS" smtp_load_reuse "$(run_load "$server" "$RSS_SESSIONS" --reuse)"
    drain "$server"
  done
  machine+=", load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  # Cross-check the clients' 250 count against what the servers recorded.
  local spooled=
  [[ $SERVERS == *exim* ]] && spooled+=" exim=$(grep -c ' <= ' "$WORK/exim/log/mainlog" || true)"
  [[ $SERVERS == *smtpguard* ]] &&
    spooled+=" smtpguard=$(find "$WORK/sg/state/spool/queue" "$WORK/sg/state/spool/hold" -type f | wc -l)"
  cp "$RESULTS" "$BUILD/bench-e2e/last-results.jsonl"
  python3 "$SRC/bench/e2e/table.py" "$RESULTS" "$machine" "$MESSAGES" "$TIME_CAP" "$SIZE" "$spooled" "$ROUNDS"
}

main "$@"
