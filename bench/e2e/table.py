#!/usr/bin/env python3
"""Prints the Markdown tables of bench/e2e/run.sh from its results.jsonl."""
import json
import statistics
import sys

results_path, machine, messages, time_cap, size, spooled, rounds = sys.argv[1:8]
rows = [json.loads(line) for line in open(results_path) if line.strip()]
NAMES = {"sink": "smtp-sink (baseline)", "exim": "Exim 4.96", "smtpguard": "smtpguard"}


def merge(results):
    """One result from several rounds: medians of rates and latencies, maxima of
    memory peaks, sums of counts."""
    out = {}
    for key in results[0]:
        values = [r[key] for r in results if key in r]
        if key == "failures":
            merged = {}
            for v in values:
                for what, n in v.items():
                    merged[what] = merged.get(what, 0) + n
            out[key] = merged
        elif not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = values[0]
        elif key.startswith(("peak_", "max_")) or key == "rc":
            out[key] = max(values)
        elif key in ("accepted", "failed", "messages"):
            out[key] = sum(values)
        else:
            out[key] = statistics.median(values)
    return out


def get(server, point, tool):
    found = [r["r"] for r in rows
             if r["server"] == server and r["point"] == point and r["tool"] == tool]
    return merge(found) if found else None


def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def mb(kb):
    return None if kb is None else kb / 1024


def ratio(a, b):
    return "-" if not a or not b else f"{a / b:.2f}"


def failures(r):
    if not r or not r.get("failed"):
        return "0"
    return f'{r["failed"]} ' + json.dumps(r.get("failures", {}))


points = sorted({r["point"] for r in rows if r["tool"] == "smtp_load"})
servers = [s for s in NAMES if any(r["server"] == s for r in rows)]
print(f"Machine: {machine}. Rounds: {rounds} (medians; memory: maxima).")
print(f"Per point: smtp_load sends up to {messages} messages of {size} body bytes or stops "
      f"after {time_cap} s; smtp-source then sends about {int(time_cap) // 2} s worth.\n")
print("| sessions | server | accepted msg/s (smtp_load) | msg/s (smtp-source) | p50 ms | p99 ms "
      "| peak RSS sum MB | peak PSS sum MB | procs | failures |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
for p in points:
    for s in servers:
        r, src = get(s, p, "smtp_load"), get(s, p, "smtp_source")
        if r is None:
            continue
        watched = s != "sink"
        src_rate = None if src is None else src["msgs_per_s"]
        if src is not None and src["rc"] != 0:
            src_rate_text = f'failed (rc {src["rc"]})'
        else:
            src_rate_text = fmt(src_rate)
        print(f'| {p} | {NAMES[s]} | {fmt(r.get("msgs_per_s"))} | {src_rate_text} '
              f'| {fmt(r.get("p50_ms"), 2)} | {fmt(r.get("p99_ms"), 2)} '
              f'| {fmt(mb(r.get("peak_sum_rss_kb")) if watched else None)} '
              f'| {fmt(mb(r.get("peak_sum_pss_kb")) if watched else None)} '
              f'| {r.get("max_procs", "-") if watched else "-"} | {failures(r)} |')

if "exim" in servers and "smtpguard" in servers:
    print("\nsmtpguard / Exim (throughput: higher is better; latency and memory: lower is better)\n")
    print("| sessions | msg/s (smtp_load) | msg/s (smtp-source) | p50 | p99 | peak PSS sum |")
    print("|---:|---:|---:|---:|---:|---:|")
    for p in points:
        g, e = get("smtpguard", p, "smtp_load"), get("exim", p, "smtp_load")
        gs, es = get("smtpguard", p, "smtp_source"), get("exim", p, "smtp_source")
        if not g or not e:
            continue
        print(f'| {p} | {ratio(g.get("msgs_per_s"), e.get("msgs_per_s"))} '
              f'| {ratio(gs and gs["msgs_per_s"], es and es["msgs_per_s"])} '
              f'| {ratio(g.get("p50_ms"), e.get("p50_ms"))} | {ratio(g.get("p99_ms"), e.get("p99_ms"))} '
              f'| {ratio(g.get("peak_sum_pss_kb"), e.get("peak_sum_pss_kb"))} |')

if int(rounds) > 1:
    print("\nSpread: accepted msg/s of every round (smtp_load / smtp-source)\n")
    print("| sessions | server | smtp_load | smtp-source |")
    print("|---:|---|---|---|")
    for p in points:
        for s in servers:
            per_tool = []
            for tool in ("smtp_load", "smtp_source"):
                per_tool.append(" ".join(fmt(r["r"].get("msgs_per_s")) for r in rows if
                                         r["server"] == s and r["point"] == p and r["tool"] == tool))
            print(f"| {p} | {NAMES[s]} | {per_tool[0]} | {per_tool[1]} |")

reuse = [r for r in rows if r["tool"] == "smtp_load_reuse"]
if reuse:
    print("\nPeak memory with many sessions open at once (smtp_load --reuse: connections stay open)\n")
    print("| sessions | server | accepted msg/s | peak RSS sum MB | peak PSS sum MB "
          "| largest single VmHWM MB | procs | failures |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for row in reuse:
        r = row["r"]
        print(f'| {row["point"]} | {NAMES[row["server"]]} | {fmt(r.get("msgs_per_s"))} '
              f'| {fmt(mb(r.get("peak_sum_rss_kb")))} | {fmt(mb(r.get("peak_sum_pss_kb")))} '
              f'| {fmt(mb(r.get("max_hwm_kb")))} | {r.get("max_procs", "-")} | {failures(r)} |')

accepted = {}
for row in rows:
    r = row["r"]
    n = r.get("accepted", r.get("messages", 0) if r.get("rc") == 0 else 0)
    accepted[row["server"]] = accepted.get(row["server"], 0) + n
print("\nAcknowledged with 250 (clients) vs. recorded by the server (Exim mainlog '<=' lines, "
      "smtpguard queue files): " +
      ", ".join(f"{s}: {accepted.get(s, 0)} vs {n}" for s, n in
                (kv.split("=") for kv in spooled.split())))
