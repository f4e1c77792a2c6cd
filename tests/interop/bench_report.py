#!/usr/bin/env python3
"""Report of tests/interop/bench.sh: reads the clients' result lines, prints
Markdown tables (median of the rounds), the ratios rust/java and rust/go
against the targets, and writes an SVG chart (standard library only).

Result lines, as the script keeps them:

  round=1 load=0.52 rust send threads=1 size=128 msgs=.. msgs_per_s=.. p50_us=.. p99_us=.. p999_us=.. errors=0
  round=1 load=0.52 rust proc first_ack_ms=.. cpu_s=.. msgs=.. rss_kb=..
  round=1 load=0.52 raw send threads=1 size=128 ...
  round=1 load=0.52 rust drain kind=push msgs=.. distinct=.. dups=.. secs=.. msgs_per_s=.. cpu_s=.. rss_kb=..

Exit status 1 when a client's lines are missing, a send failed or a drain
did not deliver every stored message.
"""

import argparse
import math
import shutil
import statistics
import sys

CLIENTS = ["rust", "java", "go"]
COLOURS = {"rust": "#b7410e", "java": "#5382a1", "go": "#00add8", "raw": "#888888"}
DRAINS = [("rust", "push"), ("rust", "lite"), ("java", "push"), ("java", "lite"), ("go", "push")]


def parse(path):
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if len(words) < 4:
                continue
            rec = {}
            rest = []
            for w in words:
                if "=" in w:
                    k, v = w.split("=", 1)
                    rec[k] = v
                else:
                    rest.append(w)
            if len(rest) < 2:
                continue
            rec["client"], rec["measure"] = rest[0], rest[1]
            records.append(rec)
    return records


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


class Figures:
    """Median over the rounds of every figure, keyed by (client, name)."""

    def __init__(self, records):
        self.values = {}
        self.rounds = sorted({int(r["round"]) for r in records if "round" in r})
        self.loads = [num(r.get("load")) for r in records]
        self.sizes = sorted({int(r["size"]) for r in records if r["measure"] == "send"})
        self.problems = []
        for r in records:
            c, m = r["client"], r["measure"]
            if m == "send":
                size, threads = int(r["size"]), int(r["threads"])
                if threads == 1:
                    for p in ("p50", "p99", "p999"):
                        self.add(c, ("lat", size, p), num(r[p + "_us"]))
                    self.add(c, ("tput1", size), num(r["msgs_per_s"]))
                else:
                    self.add(c, ("tput8", size), num(r["msgs_per_s"]))
                    self.threads = threads
                if int(r.get("errors", "0")) != 0:
                    self.problems.append(f"round {r['round']}: {c} send size={size} threads={threads}: {r['errors']} errors")
            elif m == "proc":
                self.add(c, ("first_ack_ms",), num(r["first_ack_ms"]))
                self.add(c, ("send_cpu",), num(r["cpu_s"]) * 1e5 / max(1.0, num(r["msgs"])))
                self.add(c, ("send_rss",), num(r["rss_kb"]) / 1024)
            elif m == "drain":
                k = r["kind"]
                want, distinct = int(r["msgs"]), int(r["distinct"])
                if distinct != want or math.isnan(num(r["secs"])):
                    self.problems.append(f"round {r['round']}: {c} {k} drain delivered {distinct} of {want}")
                    continue
                self.add(c, ("drain", k), num(r["msgs_per_s"]))
                self.add(c, ("drain_cpu", k), num(r["cpu_s"]) * 1e5 / want)
                self.add(c, ("drain_rss", k), num(r["rss_kb"]) / 1024)
                self.drain_n = want
        for rnd in self.rounds:
            for c in CLIENTS:
                for s in self.sizes:
                    for key in (("lat", s, "p50"), ("tput8", s)):
                        if len(self.values.get((c, key), [])) < rnd:
                            self.problems.append(f"round {rnd}: no {key[0]} figure of {c} for size {s}")
            for c, k in DRAINS:
                if len(self.values.get((c, ("drain", k)), [])) < rnd:
                    self.problems.append(f"round {rnd}: no {k} drain figure of {c}")
            for s in self.sizes:
                if len(self.values.get(("raw", ("lat", s, "p50")), [])) < rnd:
                    self.problems.append(f"round {rnd}: no raw floor figure for size {s}")

    def add(self, client, key, value):
        self.values.setdefault((client, key), []).append(value)

    def get(self, client, *key):
        v = [x for x in self.values.get((client, key), []) if not math.isnan(x)]
        return statistics.median(v) if v else math.nan

    def spread(self, client, *key):
        v = [x for x in self.values.get((client, key), []) if not math.isnan(x)]
        return (min(v), max(v)) if v else (math.nan, math.nan)


def fmt(v, digits=0):
    if v is None or math.isnan(v):
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def signed(v):
    return "n/a" if v != v else f"{v:+,.1f}"


def size_name(s):
    return f"{s // 1024} KiB" if s % 1024 == 0 else f"{s} B"


def ratio(a, b):
    return a / b if a == a and b == b and b != 0 else math.nan


def tables(f):
    out = []
    sizes = f.sizes
    head = ["client"]
    for s in sizes:
        head.append(f"1 thread {size_name(s)}: p50 / p99 / p999 µs")
    for s in sizes:
        head.append(f"{getattr(f, 'threads', 8)} threads {size_name(s)} msg/s")
    head += ["CPU s / 100k sends", "peak RSS MiB", "start → first ack ms"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for c in CLIENTS + ["raw"]:
        row = [c if c != "raw" else "raw socket (floor)"]
        for s in sizes:
            row.append(" / ".join(fmt(f.get(c, "lat", s, p), 0) for p in ("p50", "p99", "p999")))
        for s in sizes:
            row.append(fmt(f.get(c, "tput8", s)) if c != "raw" else "")
        if c == "raw":
            row += ["", "", ""]
        else:
            row += [fmt(f.get(c, "send_cpu"), 2), fmt(f.get(c, "send_rss"), 1), fmt(f.get(c, "first_ack_ms"), 1)]
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    n = getattr(f, "drain_n", 0)
    head = ["client", f"drain of {n:,}: msg/s", "CPU s / 100k", "peak RSS MiB"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for c, k in DRAINS:
        name = {"push": "push consumer", "lite": "lite pull consumer"}[k]
        out.append(
            f"| {c} {name} | {fmt(f.get(c, 'drain', k))} | {fmt(f.get(c, 'drain_cpu', k), 2)} | "
            f"{fmt(f.get(c, 'drain_rss', k), 1)} |"
        )
    out.append("")
    out.append("Floor: our sync-send overhead above a raw socket sending pre-encoded SEND_MESSAGE_V2 frames (1 thread): "
               + "; ".join(f"{size_name(s)}: p50 {signed(f.get('rust', 'lat', s, 'p50') - f.get('raw', 'lat', s, 'p50'))} µs, "
                           f"p99 {signed(f.get('rust', 'lat', s, 'p99') - f.get('raw', 'lat', s, 'p99'))} µs"
                           for s in sizes) + ".")
    return out


def ratio_rows(f):
    """(what, rust/java, rust/go, target text, met) for every target."""
    rows = []
    t = getattr(f, "threads", 8)

    def row(what, key, target, higher, against_go=False):
        r = f.get("rust", *key)
        j, g = ratio(r, f.get("java", *key)), ratio(r, f.get("go", *key))
        checks = [j] + ([g] if against_go else [])
        met = all(x == x and (x >= target if higher else x <= target) for x in checks)
        sign = "≥" if higher else "≤"
        goal = f"{sign} {target} × Java" + (" and Go" if against_go else "")
        rows.append((what, j, g, goal, met))

    for s in f.sizes:
        row(f"{t}-thread send msg/s, {size_name(s)}", ("tput8", s), 1.0, True, against_go=True)
    for s in f.sizes:
        row(f"1-thread send p99, {size_name(s)}", ("lat", s, "p99"), 1.0, False)
    row("CPU per message, sends", ("send_cpu",), 0.3, False)
    row("CPU per message, push drain", ("drain_cpu", "push"), 0.3, False)
    row("CPU per message, lite pull drain", ("drain_cpu", "lite"), 0.3, False)
    row("peak RSS, send process", ("send_rss",), 0.1, False)
    row("peak RSS, push drain", ("drain_rss", "push"), 0.1, False)
    row("peak RSS, lite pull drain", ("drain_rss", "lite"), 0.1, False)
    row("start → first acknowledged send", ("first_ack_ms",), 0.1, False)
    row("drain msg/s, push", ("drain", "push"), 1.0, True)
    row("drain msg/s, lite pull", ("drain", "lite"), 1.0, True)
    return rows


def ratio_table(f):
    out = ["| figure | rust / java | rust / go | target | met |", "|---|---|---|---|---|"]
    for what, j, g, goal, met in ratio_rows(f):
        out.append(f"| {what} | {fmt(j, 2)} | {fmt(g, 2)} | {goal} | {'yes' if met else '**no**'} |")
    return out


def round_table(f):
    """Per-round spread of the headline figures (min – max over the rounds)."""
    out = ["| figure | rust | java | go |", "|---|---|---|---|"]
    s = f.sizes[0]
    for label, key, d in [
        (f"8-thread send msg/s, {size_name(s)}", ("tput8", s), 0),
        (f"1-thread p99 µs, {size_name(s)}", ("lat", s, "p99"), 0),
        ("push drain msg/s", ("drain", "push"), 0),
    ]:
        cells = []
        for c in CLIENTS:
            lo, hi = f.spread(c, *key)
            cells.append(f"{fmt(lo, d)} – {fmt(hi, d)}")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(f, title, setup):
    """Horizontal bars: 1-thread latency percentiles (log scale), 8-thread send and drain throughput."""
    width, label_w, bar_w, row_h = 1060, 250, 640, 15
    parts = []
    lines, cur = [], ""
    for piece in setup.split("; "):
        if cur and len(cur) + len(piece) > 150:
            lines.append(cur)
            cur = ""
        cur = f"{cur}; {piece}" if cur else piece
    if cur:
        lines.append(cur)
    y = 38 + 15 * len(lines)

    def text(x, yy, s, size=12, anchor="start", weight="normal", fill="#222"):
        parts.append(f'<text x="{x}" y="{yy}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
                     f'fill="{fill}">{esc(s)}</text>')

    def bar(yy, label, client, value, scale, unit):
        text(label_w - 8, yy + row_h - 4, label, 11, "end")
        if value == value and value > 0:
            w = max(1.0, scale(value))
            parts.append(f'<rect x="{label_w}" y="{yy + 1}" width="{w:.1f}" height="{row_h - 3}" fill="{COLOURS[client]}"/>')
            text(label_w + w + 5, yy + row_h - 4, f"{fmt(value, 0)} {unit}", 11)
        else:
            text(label_w + 5, yy + row_h - 4, "n/a", 11)

    def section(heading):
        nonlocal y
        y += 14
        text(10, y, heading, 14, weight="bold")
        y += 10

    # 1. Latency, log scale.
    lat_clients = CLIENTS + ["raw"]
    values = [f.get(c, "lat", s, p) for c in lat_clients for s in f.sizes for p in ("p50", "p99", "p999")]
    values = [v for v in values if v == v and v > 0]
    lo = 10 ** math.floor(math.log10(min(values))) if values else 1
    hi = 10 ** math.ceil(math.log10(max(values))) if values else 10
    hi = max(hi, lo * 10)

    def log_scale(v):
        return bar_w * (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    section("Sync send latency, 1 thread (µs, log scale; lower is better)")
    top = y
    for s in f.sizes:
        for p in ("p50", "p99", "p999"):
            for c in lat_clients:
                bar(y, f"{size_name(s)} {p} {c if c != 'raw' else 'raw socket'}", c, f.get(c, "lat", s, p), log_scale, "µs")
                y += row_h
            y += 5
    decade = lo
    while decade <= hi:
        x = label_w + log_scale(decade)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{y}" stroke="#ccc" stroke-width="0.5"/>')
        text(x, y + 11, fmt(decade), 10, "middle", fill="#666")
        decade *= 10
    y += 16

    # 2. Throughput, linear.
    t = getattr(f, "threads", 8)
    send_vals = [f.get(c, "tput8", s) for c in CLIENTS for s in f.sizes]
    drain_vals = [f.get(c, "drain", k) for c, k in DRAINS]
    for heading, rows, vals in [
        (f"Sync send throughput, {t} threads (msg/s; higher is better)",
         [(f"{size_name(s)} {c}", c, f.get(c, "tput8", s)) for s in f.sizes for c in CLIENTS], send_vals),
        (f"Drain of {getattr(f, 'drain_n', 0):,} stored messages (msg/s; higher is better)",
         [(f"{c} {k}", c, f.get(c, "drain", k)) for c, k in DRAINS], drain_vals),
    ]:
        vals = [v for v in vals if v == v]
        top_v = max(vals) if vals else 1

        def lin(v, top_v=top_v):
            return bar_w * v / top_v

        section(heading)
        for label, c, v in rows:
            bar(y, label, c, v, lin, "msg/s")
            y += row_h
        y += 10

    # Legend.
    x = 10
    for c in lat_clients:
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{COLOURS[c]}"/>')
        text(x + 16, y + 10, {"raw": "raw socket (floor)"}.get(c, c), 11)
        x += 150
    y += 24
    head = [f'<text x="10" y="20" font-size="13" font-weight="bold" fill="#222">{esc(title)}</text>']
    head += [f'<text x="10" y="{38 + 15 * i}" font-size="11" fill="#444">{esc(t)}</text>' for i, t in enumerate(lines)]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" viewBox="0 0 {width} {y}" '
            f'font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(head + parts) + "\n</svg>\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--svg", required=True)
    ap.add_argument("--svg-copy")
    ap.add_argument("--title", default="")
    ap.add_argument("--setup", default="")
    a = ap.parse_args()
    f = Figures(parse(a.results))
    print()
    print(a.title)
    print(a.setup)
    loads = [x for x in f.loads if x == x]
    if loads:
        print(f"load average (1 min) when each client started: {min(loads):.2f} – {max(loads):.2f}")
    print()
    print(f"Median of {len(f.rounds)} round(s):")
    print()
    print("\n".join(tables(f)))
    print()
    print("\n".join(ratio_table(f)))
    if len(f.rounds) > 1:
        print()
        print("Spread over the rounds (min – max):")
        print()
        print("\n".join(round_table(f)))
    with open(a.svg, "w", encoding="utf-8") as out:
        out.write(svg(f, a.title, a.setup))
    print()
    print(f"chart: {a.svg}")
    if a.svg_copy:
        shutil.copyfile(a.svg, a.svg_copy)
        print(f"chart copied to {a.svg_copy}")
    if f.problems:
        print()
        for p in f.problems:
            print("PROBLEM: " + p)
        return 1
    print("every client ran; no send failed; every drain delivered every stored message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
