#!/usr/bin/python3
"""Summarises a bench/scan/run.sh run: bytes/s of each tool (from WORK/times
and the corpus size), ratios, recall of the planted secrets (a planted secret
counts as found when the tool reports its file and its secret's line), and
reports outside every planted range (false positives: the filler matches no
rule by construction).

    recall.py WORK
"""
import json
import os
import sys


def norm(path):
    return path[2:] if path.startswith("./") else path


def smtpguard_hits(path):
    hits = []
    with open(path) as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                hits.append((norm(j["path"]), int(j["line"]), j["rule"]))
    return hits


def rg_hits(path):
    hits = []
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.split(":", 2)
            if len(parts) == 3 and parts[1].isdigit():
                hits.append((norm(parts[0]), int(parts[1]), "rg"))
    return hits


def secretlint_hits(path, webroot):
    hits = []
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    for entry in doc:
        rel = os.path.relpath(entry["filePath"], webroot)
        for m in entry.get("messages", []):
            hits.append((rel, int(m["loc"]["start"]["line"]), m.get("ruleId", "?")))
    return hits


def score(hits, plants):
    found, wrong_rule = 0, []
    keys = {(h[0], h[1]) for h in hits}
    rules = {}
    for h in hits:
        rules.setdefault((h[0], h[1]), set()).add(h[2])
    for p in plants:
        if (p["path"], p["line"]) in keys:
            found += 1
            if "rg" not in rules[(p["path"], p["line"])] and p["rule"] not in rules[
                    (p["path"], p["line"])]:
                wrong_rule.append((p["path"], p["rule"], sorted(rules[(p["path"], p["line"])])))
    ranges = {}
    for p in plants:
        ranges.setdefault(p["path"], []).append((p["first"], p["line"]))
    extra = [h for h in hits
             if not any(a <= h[1] <= b for a, b in ranges.get(h[0], []))]
    return found, wrong_rule, extra


def main():
    work = sys.argv[1]
    webroot = os.path.join(work, "webroot")
    manifest = json.load(open(os.path.join(work, "manifest.json")))
    subset_sites = [s["site"] for s in manifest["subset"]]
    times, cpu = {}, {}
    for line in open(os.path.join(work, "times")):
        words = line.split()
        times[words[0]] = words[1]
        cpu[words[0]] = float(words[2]) if len(words) > 2 else float("nan")

    def tree_bytes(sites):
        total = 0
        for s in sites:
            for d, _, files in os.walk(os.path.join(webroot, s)):
                total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
        return total

    all_bytes = tree_bytes(sorted(os.listdir(webroot)))
    sub_bytes = tree_bytes(subset_sites)
    plants = manifest["plants"]
    sub_plants = [p for p in plants if p["path"].split("/")[0] in subset_sites]
    rows = []
    for name, size, plist, parse in (
            ("smtpguard", all_bytes, plants, smtpguard_hits),
            ("rg", all_bytes, plants, rg_hits),
            ("smtpguard_subset", sub_bytes, sub_plants, smtpguard_hits),
            ("rg_subset", sub_bytes, sub_plants, rg_hits),
            ("secretlint", sub_bytes, sub_plants, None)):
        if name not in times:
            continue
        out = os.path.join(work, name + ".out")
        hits = secretlint_hits(out, webroot) if parse is None else parse(out)
        if hits is None:
            print("%s: no parsable output (see %s.err)" % (name, name))
            continue
        found, wrong, extra = score(hits, plist)
        secs = float(times[name])
        rows.append((name, size, secs, size / secs, cpu[name], found, len(plist), len(extra)))
        for w in wrong:
            print("  %s: %s found under another rule: %s" % (name, w[:2], w[2]))
        if name.startswith("smtpguard"):
            missed = [p for p in plist if (p["path"], p["line"]) not in
                      {(h[0], h[1]) for h in hits}]
            for p in missed[:20]:
                print("  %s MISSED %s %s:%d" % (name, p["rule"], p["path"], p["line"]))
            for h in extra[:10]:
                print("  %s extra %s:%d %s" % (name, h[0], h[1], h[2]))
    print("\n| tool | corpus | bytes | best wall time | throughput | CPU (user+sys) | "
          "planted found | reports outside planted lines |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    by = {}
    for name, size, secs, bps, cpus, found, total, extra in rows:
        by[name] = bps
        print("| %s | %s | %d | %.2f s | %.1f MB/s | %.2f s | %d/%d | %d |" % (
            name.replace("_subset", ""), "subset" if "subset" in name or name == "secretlint"
            else "full", size, secs, bps / 1e6, cpus, found, total, extra))
    if "smtpguard" in by and "rg" in by:
        print("\nsmtpguard / rg (full corpus): %.2fx" % (by["smtpguard"] / by["rg"]))
    if "smtpguard_subset" in by and "secretlint" in by:
        print("smtpguard / secretlint (subset): %.0fx" % (by["smtpguard_subset"] / by["secretlint"]))


if __name__ == "__main__":
    main()
