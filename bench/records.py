#!/usr/bin/env python3
"""records.py: issue #20's targets over many runs of bench/peer.sh, not one.

  bench/records.py $(ls docs/data/peer-2026-12-0[56]-record-*.csv | grep -v raw)

One run's five-round median moves by more than most changes do (this machine's speed drifts
between the rounds of one workload), so whether a ratio sits above or below a target in one
run says little when it is near it. This prints, per workload, what the runs given (summary
CSVs of `peer.sh --predixy`, `--cluster` for the second mode) say together: asterd's
throughput over predixy's (mean, range, how many runs met 1.2x), asterd's CPU per request over
predixy's (mean, how many runs met 0.85x), how many runs had asterd's p99 at or below the
best peer's and its p99 over predixy's (mean); then each run's count of pipelined and MGET
workloads at 1.2x, and cluster MGET10 P16 over standalone (target 0.85).
"""
import csv
import statistics
import sys

MODES = (  # name, asterd's and predixy's target names in the CSV, the p99 test's column
    ("standalone", "asterd", "predixy", "asterd_p99_le_best_peer"),
    ("cluster", "acluster", "pcluster", "acluster_p99_le_pcluster"),
)


def num(row, col):
    try:
        return float(row.get(col) or "")
    except ValueError:
        return None


def ratios(rows, a, b):
    """a over b in each row that has both."""
    return [num(r, a) / num(r, b) for r in rows if num(r, a) and num(r, b)]


def main(paths):
    if not paths:
        sys.exit(__doc__.strip().split("\n\n")[0])
    rows = {}  # workload -> rows, in the order the workloads first appear
    per_run = []  # each run's pipelined and MGET workloads at 1.2x, and those short
    for p in paths:
        met, short = 0, []
        with open(p, newline="") as f:
            for r in csv.DictReader(f):
                rows.setdefault(r["workload"], []).append(r)
                if "P16" not in r["workload"] and not r["workload"].startswith("MGET"):
                    continue
                for mode, a, b, _ in MODES:
                    for x in ratios([r], f"{a}_rps", f"{b}_rps"):
                        if x >= 1.2:
                            met += 1
                        else:
                            short.append(f"{mode} {r['workload']} {x:.3f}")
        per_run.append(f"{p}: {met} of {met + len(short)} at 1.2x" +
                       (f"; short: {', '.join(short)}" if short else ""))
    print(f"{len(paths)} runs. Per workload and mode: asterd/predixy throughput mean (min-max) "
          "and runs >= 1.2 | CPU per request asterd/predixy mean and runs <= 0.85 | "
          "runs with p99 <= the best peer's (standalone: twemproxy's or predixy's), and asterd's "
          "p99 over predixy's, mean")
    for w, rs in rows.items():
        for mode, a, p, p99 in MODES:
            # From the medians' rps, not the CSV's ratio column: that is rounded to two places
            # (1.197 would count as 1.20).
            t = ratios(rs, f"{a}_rps", f"{p}_rps")
            if not t:
                continue
            c = ratios(rs, f"{a}_cpu_us_per_req", f"{p}_cpu_us_per_req")
            q = ratios(rs, f"{a}_p99_ms", f"{p}_p99_ms")
            le = [r[p99] for r in rs if r.get(p99)]
            cpu = f"{statistics.mean(c):.2f} {sum(x <= 0.85 for x in c)}/{len(c)}" if c else "-"
            print(f"{w:11} {mode:10} {statistics.mean(t):.3f} ({min(t):.3f}-{max(t):.3f}) "
                  f"{sum(x >= 1.2 for x in t)}/{len(t)} | {cpu} | "
                  f"{sum(x == 'yes' for x in le)}/{len(le)}"
                  + (f", p99 over predixy's {statistics.mean(q):.2f}" if q else ""))
    print("Pipelined and MGET workloads (target 1.2x), per run:")
    for line in per_run:
        print("  " + line)
    m = ratios(rows.get("MGET10 P16", []), "acluster_rps", "asterd_rps")
    if m:
        print(f"cluster MGET10 P16 / standalone: mean {statistics.mean(m):.3f} "
              f"({min(m):.3f}-{max(m):.3f}), runs >= 0.85: {sum(x >= 0.85 for x in m)}/{len(m)}")


if __name__ == "__main__":
    main(sys.argv[1:])
