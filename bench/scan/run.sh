#!/bin/bash
# Leak scanner benchmark: `smtpguard scan` against ripgrep running the
# equivalent regexes (all rules in one invocation) on a generated ~1 GB
# web-root corpus, and against secretlint (recommended preset) on a ~50 MB
# subset. Warm page cache, 2 threads each; bytes/s, ratios and recall of the
# planted secrets (bench/scan/gen_corpus.py writes them to manifest.json).
#
#   bench/scan/run.sh BUILD_DIR        (smtpguard at BUILD_DIR/src/cli/smtpguard)
#   env: SIZE_MB=1024 ROUNDS=3 WORK=BUILD_DIR/bench-scan NO_SECRETLINT=1
#
# The corpus and secretlint (npm --prefix WORK/npm) stay under WORK, never in
# the repository. Run it on a quiet machine: it checks `uptime` first.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
SG=$BUILD/src/cli/smtpguard
WORK=${WORK:-$BUILD/bench-scan}
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
mkdir -p "$WORK"

load=$(cut -d' ' -f1 /proc/loadavg)
echo "load average $load on $(nproc) cores"
if awk "BEGIN{exit !($load > 3)}"; then
  echo "machine busy (load > 3); figures would not be comparable" >&2
  [ "${FORCE:-}" = 1 ] || exit 75
fi

# 1. Corpus (regenerated when the size asked for changes).
if [ ! -f "$WORK/manifest.json" ] || [ "$(cat "$WORK/size_mb" 2>/dev/null)" != "$SIZE_MB" ]; then
  rm -rf "$WORK/webroot" "$WORK/manifest.json"
  /usr/bin/python3 "$HERE/gen_corpus.py" "$WORK" --size-mb "$SIZE_MB"
  echo "$SIZE_MB" >"$WORK/size_mb"
fi
cd "$WORK/webroot"
mapfile -t SUBSET < <(/usr/bin/python3 -c 'import json,sys
for s in json.load(open(sys.argv[1]))["subset"]: print(s["site"])' "$WORK/manifest.json")

# 2. The rules as ripgrep regexes (one -e each; what the scanner's triggers
#    plus extraction look for, without its validation and context rules).
RG_RULES=(
  '(?:AKIA|ASIA)[A-Z2-7]{16}'
  '(?:^|[^A-Za-z0-9+/])B[A-P][A-Za-z0-9+/]{42}'
  '(?:^|[^A-Za-z0-9+/])A[g-v][A-Za-z0-9+/]{42}'
  '(?i)aws_?secret_?(?:access_?)?key["'"'"']?\s*[=:]\s*["'"'"']?[A-Za-z0-9/+]{40}'
  '(?i)->Password\s*=\s*["'"'"'][^"'"'"']+'
  '(?i)(?:smtps?|ses\+https?)://[^:/\s]+:[^@\s]+@'
  '(?i)->setPassword\(\s*["'"'"'][^"'"'"']+'
  'MAIL_PASSWORD\s*=\s*\S+'
  'WPMS_SMTP_PASS["'"'"']\s*,\s*["'"'"'][^"'"'"']+'
  '(?i)s:\d+:\\?"(?:smtp_)?pass(?:word)?\\?";s:\d+:\\?"[^"\\]+'
  '^\s*password\s+\S+'
  '^\s*\[[A-Za-z0-9.-]+\](?::\d+)?\s+[^\s:]+:\S+'
  '^[*A-Za-z0-9.-]+:[^:\s]+:\S+$'
  '(?i)client_send\s*=\s*[:^][^\n]*[:^]\S+'
  '(?i)(?:smtp_?pass(?:word)?|smtp_auth_pass|mail_?pass(?:word)?|email_pass|mailer_pass)\w*["'"'"']?\s*(?:=>|=|:)\s*["'"'"']?[^\s"'"'"']{4,}'
)
RG_ARGS=()
for r in "${RG_RULES[@]}"; do RG_ARGS+=(-e "$r"); done

# best_of NAME CMD...: ROUNDS timed runs (stdout to $WORK/NAME.out); records
# the best wall time and the CPU seconds (user + sys) of that run.
best_of() {
  local name=$1 best="" cpu="" real user sys
  shift
  for _ in $(seq "$ROUNDS"); do
    TIMEFORMAT='%R %U %S'
    { time { "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || [ $? -le 1 ]; }; } 2>"$WORK/$name.time"
    read -r real user sys <"$WORK/$name.time"
    if [ -z "$best" ] || awk "BEGIN{exit !($real < $best)}"; then
      best=$real
      cpu=$(awk "BEGIN{print $user + $sys}")
    fi
  done
  echo "$name $best $cpu" >>"$WORK/times"
  echo "$name: best of $ROUNDS: ${best}s wall, ${cpu}s CPU"
}

# 3. Warm the page cache, then time.
find . -type f -print0 | xargs -0 cat >/dev/null
: >"$WORK/times"
best_of smtpguard "$SG" scan --format json --no-vault --jobs 2 .
best_of rg rg --no-ignore --hidden -j2 -n --no-heading --with-filename "${RG_ARGS[@]}" .
best_of smtpguard_subset "$SG" scan --format json --no-vault --jobs 2 "${SUBSET[@]}"
best_of rg_subset rg --no-ignore --hidden -j2 -n --no-heading --with-filename "${RG_ARGS[@]}" \
  "${SUBSET[@]}"

# 4. secretlint on the subset (node is single-threaded; one round is enough).
if [ -z "${NO_SECRETLINT:-}" ]; then
  NPM=$WORK/npm
  if [ ! -x "$NPM/node_modules/.bin/secretlint" ]; then
    npm --prefix "$NPM" install --no-audit --no-fund secretlint \
      @secretlint/secretlint-rule-preset-recommend >/dev/null
  fi
  echo '{"rules":[{"id":"@secretlint/secretlint-rule-preset-recommend"}]}' >"$WORK/secretlintrc.json"
  GLOBS=()
  for s in "${SUBSET[@]}"; do GLOBS+=("$s/**/*" "$s/**/.*"); done
  ROUNDS=1 best_of secretlint "$NPM/node_modules/.bin/secretlint" --secretlintrc \
    "$WORK/secretlintrc.json" --format json --no-color "${GLOBS[@]}"
fi

# 5. Throughput, ratios, recall.
/usr/bin/python3 "$HERE/recall.py" "$WORK"
