#!/usr/bin/env python3
"""report.py RESULTS_DIR -- the table of the tlsshim benchmark.

Reads what bench.sh measured (RESULTS_DIR/KEY.WAY: one number per round,
or "fail"; latency_raw.WAY: one time in seconds per connection; machine;
info) and prints the machine, the medians, the ratios and the targets of
issue 5.  Exit status: 0 all targets met, 3 a target missed, 4 a
measurement failed.
"""
import math
import os
import statistics
import sys

WAYS = ("plain", "tlsshim", "native", "stunnel")


def load(res, key, way):
    path = os.path.join(res, "%s.%s" % (key, way))
    if not os.path.exists(path):
        return None
    vals = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line == "fail":
                return "fail"
            vals.append(float(line))
    return vals or None


def median(res, key, way):
    vals = load(res, key, way)
    if vals is None or vals == "fail":
        return vals
    return statistics.median(vals)


def percentile(vals, p):
    """Nearest-rank percentile."""
    s = sorted(vals)
    k = max(1, int(math.ceil(p / 100.0 * len(s))))
    return s[k - 1]


def fmt(v, unit_digits=1):
    if v is None:
        return "-"
    if v == "fail":
        return "FAIL"
    if abs(v) >= 1000:
        return "%.0f" % v
    return "%.*f" % (unit_digits, v)


def ratio(a, b):
    if not isinstance(a, float) or not isinstance(b, float) or b == 0:
        return None
    return a / b


def paired_ratio(res, key, a, b):
    """Median over rounds of A's value / B's value in the same round.

    The ways of one round run back to back, so a per-round ratio cancels
    slow drift of the machine (other load, CPU clocks) that would bias a
    ratio of two medians."""
    va, vb = load(res, key, a), load(res, key, b)
    if not isinstance(va, list) or not isinstance(vb, list) or len(va) != len(vb):
        return None
    rs = [x / y for x, y in zip(va, vb) if y]
    return statistics.median(rs) if rs else None


def fr(r):
    return "-" if r is None else "%.2fx" % r


def exit_status(failed, missed):
    """The report's exit status (says so when a measurement FAILED): 4 a
    measurement failed, 3 a target missed, else 0."""
    if failed:
        print("some measurements FAILED (see the errors above)")
        return 4
    return 3 if missed else 0


def main():
    res = sys.argv[1]
    machine = {}
    with open(os.path.join(res, "machine")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            machine[k] = v

    print()
    print("tlsshim benchmark (issue 5)")
    print("machine: %s CPUs, %s" % (machine.get("cpus"), machine.get("cpu")))
    print("         %s; %s" % (machine.get("kernel"), machine.get("os")))
    print("software: GnuTLS %s (tlsshim), OpenSSL %s (curl, wrk, nginx, stunnel), nginx %s, "
          "stunnel %s, wrk %s, curl %s, Python %s"
          % (machine.get("gnutls"), machine.get("openssl"), machine.get("nginx"),
             machine.get("stunnel"), machine.get("wrk"), machine.get("curl"), machine.get("python")))
    print("settings: %s" % machine.get("settings"))
    info = os.path.join(res, "info")
    if os.path.exists(info):
        print("negotiated (nginx's view, 3 new connections per way):")
        with open(info) as f:
            for line in f:
                print("  " + line.rstrip("\n"))

    rows = []   # (workload, {way: value}, target text, met: True/False/None)
    verdicts = []

    def throughput(key, label, t_native, t_stunnel):
        vals = {w: median(res, key, w) for w in WAYS}
        if all(v is None for v in vals.values()):
            return
        rn = paired_ratio(res, key, "tlsshim", "native")
        rs = paired_ratio(res, key, "tlsshim", "stunnel")
        target = ">=%.2gx native, >=%.2gx stunnel" % (t_native, t_stunnel)
        if rn is None or rs is None:
            met = None
        else:
            met = rn >= t_native and rs >= t_stunnel
        rows.append((label, vals, rn, rs, paired_ratio(res, key, "tlsshim", "plain"), target, met))

    throughput("bulk", "bulk, 1 GiB curl (MB/s)", 0.95, 1.5)
    throughput("requests", "requests, wrk keep-alive (req/s)", 0.95, 2)
    throughput("newconn_resume", "new conns, resumption on (conn/s)", 1.0, 5)
    throughput("newconn_noresume", "new conns, resumption off (conn/s)", 1.0, 5)

    # Latency: pooled over rounds; lower is better; no target.
    lat = {}
    for w in WAYS:
        path = os.path.join(res, "latency_raw.%s" % w)
        if os.path.exists(path):
            with open(path) as f:
                lines = [l.strip() for l in f if l.strip()]
            lat[w] = "fail" if "fail" in lines else [float(x) for x in lines]
    if lat:
        for p in (50, 99):
            vals = {w: (None if w not in lat else lat[w] if lat[w] == "fail"
                        else percentile(lat[w], p) * 1000) for w in WAYS}
            rows.append(("latency, 1st request p%d (ms)" % p, vals,
                         ratio(vals["tlsshim"], vals["native"]), ratio(vals["tlsshim"], vals["stunnel"]),
                         ratio(vals["tlsshim"], vals["plain"]), "(lower is better)", None))

    mem = {w: median(res, "memory", w) for w in WAYS}
    if mem["plain"] is not None or mem["tlsshim"] is not None:
        diff = (mem["tlsshim"] - mem["plain"]) if all(isinstance(mem[w], float) for w in ("plain", "tlsshim")) else None
        rows.append(("memory, idle conn (KiB RSS/conn)", mem, None, None, None,
                     "tlsshim-plain %s <=64 KiB" % (fmt(diff) if diff is not None else "?"),
                     None if diff is None else diff <= 64))

    for key, label in (("untouched_keepalive", "untouched, keep-alive (req/s)"),
                       ("untouched_close", "untouched, Connection: close (req/s)")):
        vals = {w: median(res, key, w) for w in WAYS}
        if vals["plain"] is None and vals["tlsshim"] is None:
            continue
        rp = paired_ratio(res, key, "tlsshim", "plain")
        rows.append((label, vals, None, None, rp, ">=0.97x no tlsshim", None if rp is None else rp >= 0.97))

    st = {w: median(res, "startup", w) for w in WAYS}
    if st["plain"] is not None:
        rp = paired_ratio(res, "startup", "tlsshim", "plain")
        rows.append(("start-up, /bin/true x%s (ms)" % machine.get("startup_n", "?"), st, None, None, rp, "<=1.1x without",
                     None if rp is None else rp <= 1.1))

    head = ("workload", "plain", "tlsshim", "native", "stunnel", "shim/native", "shim/stunnel",
            "shim/plain", "target", "met?")
    table = []
    failed = False
    for label, vals, rn, rs, rp, target, met in rows:
        if any(v == "fail" for v in vals.values()):
            failed = True
            met_s = "ERROR"
        else:
            met_s = "-" if met is None else ("yes" if met else "NO")
        if met is not None:
            verdicts.append((label, met))
        table.append((label, fmt(vals["plain"]), fmt(vals["tlsshim"]), fmt(vals["native"]),
                      fmt(vals["stunnel"]), fr(rn), fr(rs), fr(rp), target, met_s))
    widths = [max(len(r[i]) for r in [head] + table) for i in range(len(head))]

    def line(r):
        cells = []
        for i, c in enumerate(r):
            cells.append(c.ljust(widths[i]) if i in (0, 8, 9) else c.rjust(widths[i]))
        return "| " + " | ".join(cells) + " |"

    print()
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in table:
        print(line(r))
    # Client-side CPU per operation: far less sensitive to a busy or noisy
    # machine than throughput, and where a profile should start.
    def cpu_table(prefix, title, note):
        cpu_rows = []
        for key, label in (("cpu_requests", "requests, keep-alive"),
                           ("cpu_newconn_resume", "new conns, resumption on"),
                           ("cpu_newconn_noresume", "new conns, resumption off"),
                           ("cpu_untouched_keepalive", "untouched, keep-alive"),
                           ("cpu_untouched_close", "untouched, Connection: close")):
            shim_way = "untouched" if key.startswith("cpu_untouched") else "tlsshim"
            vals = {w: median(res, prefix + key, shim_way if w == "tlsshim" else w) for w in WAYS}
            if all(v is None for v in vals.values()):
                continue
            cpu_rows.append((label + " (us/op)", fmt(vals["plain"], 2), fmt(vals["tlsshim"], 2),
                             fmt(vals["native"], 2), fmt(vals["stunnel"], 2),
                             fr(ratio(vals["tlsshim"], vals["native"])),
                             fr(ratio(vals["tlsshim"], vals["stunnel"])),
                             fr(ratio(vals["tlsshim"], vals["plain"]))))
        if not cpu_rows:
            return
        chead = (title, "plain", "tlsshim", "native", "stunnel", "shim/native", "shim/stunnel", "shim/plain")
        cw = [max(len(r[i]) for r in [chead] + cpu_rows) for i in range(len(chead))]

        def cline(r):
            return "| " + " | ".join(c.ljust(cw[i]) if i == 0 else c.rjust(cw[i])
                                     for i, c in enumerate(r)) + " |"
        print()
        print(cline(chead))
        print("|" + "|".join("-" * (w + 2) for w in cw) + "|")
        for r in cpu_rows:
            print(cline(r))
        print(note)

    cpu_table("", "client CPU per operation",
              "(user+system CPU of the client process per request, including stunnel's for the"
              " stunnel way; nginx's not counted; medians; no targets)")
    cpu_table("srv_", "server (nginx) CPU per operation",
              "(user+system CPU of nginx's one worker per request, in the same runs; medians)")
    # New connections are bound by the server: with one nginx worker, no
    # client can open more connections per second than 1 s / nginx's CPU
    # per connection.  Say where that puts the "5x stunnel" target.
    for key, label in (("newconn_resume", "resumption on"), ("newconn_noresume", "resumption off")):
        srv = median(res, "srv_cpu_" + key, "tlsshim")
        st = median(res, key, "stunnel")
        shim = median(res, key, "tlsshim")
        if isinstance(srv, float) and srv > 0 and isinstance(st, float) and isinstance(shim, float):
            ceiling = 1e6 / srv
            print("new conns, %s: nginx's ceiling (one worker, %.0f us/conn) %.0f conn/s; tlsshim reached"
                  " %.0f (%.0f%% of it); 5x stunnel would be %.0f conn/s%s"
                  % (label, srv, ceiling, shim, 100 * shim / ceiling, 5 * st,
                     " (above the ceiling: out of reach for any client)" if 5 * st > ceiling else ""))

    print()
    print("plain = the client over plain HTTP (for 'untouched' and 'start-up': without tlsshim;"
          " there 'tlsshim' = library loaded, no rule matching)")
    print("values: medians over rounds; ratios: medians of the per-round ratios (the ways of a round"
          " run back to back);\nlatency percentiles pooled over all rounds; elapsed %s s"
          % machine.get("elapsed", "?"))
    missed = [l for l, m in verdicts if not m]
    print("targets met: %d of %d%s" % (len(verdicts) - len(missed), len(verdicts),
                                        ("; MISSED: " + "; ".join(missed)) if missed else ""))
    return exit_status(failed, missed)


if __name__ == "__main__":
    sys.exit(main())
