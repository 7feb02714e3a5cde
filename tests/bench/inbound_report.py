#!/usr/bin/env python3
"""inbound_report.py RESULTS_DIR -- the table of the inbound benchmark.

Reads what inbound_bench.sh measured (RESULTS_DIR/KEY.ARM: one number per
round, or "fail"; machine; info; notes) and prints the machine, the medians,
the ratios of tlsshim against nginx's own TLS and against stunnel, the CPU
per operation of both sides, and the bars of issue 11 as PASS/MISS.
Exit status: 0 all bars met, 3 a bar missed (or not measured), 4 a
measurement failed.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import exit_status, fmt, fr, median, paired_ratio  # noqa: E402

ARMS = ("nginx", "stunnel", "tlsshim", "plain")
HEADS = ("(a) nginx TLS", "(b) stunnel", "(c) tlsshim", "(d) plain")

# key, label, bar against (a), bar against (b)
THROUGHPUT = (
    ("requests", "requests, wrk keep-alive (req/s)", 0.95, 2.0),
    ("resumed", "new conns, resumed (conn/s)", 0.95, 1.5),
    ("full", "new conns, full handshake (conn/s)", 0.95, 1.5),
    ("bulk", "bulk, curl download (MB/s)", 0.95, 1.5),
)
MEMORY_BAR_KIB = 40.0


def table(head, rows, left=(0,)):
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]

    def line(r):
        return "| " + " | ".join(c.ljust(widths[i]) if i in left else c.rjust(widths[i])
                                 for i, c in enumerate(r)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def read_kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                out[k] = v
    return out


def ratio_row(res, key, label, arms, refs, digits=1):
    """The table row of KEY: LABEL, each arm's median, then tlsshim's paired
    ratio to each arm of REFS; returned with those ratios and whether an arm
    failed.  None when no arm measured KEY."""
    vals = {a: median(res, key, a) for a in arms}
    if all(v is None for v in vals.values()):
        return None
    ratios = [paired_ratio(res, key, "tlsshim", r) for r in refs]
    row = [label] + [fmt(vals[a], digits) for a in arms] + [fr(r) for r in ratios]
    return row, ratios, any(v == "fail" for v in vals.values())


def cpu_rows(res, throughput, arms, refs, unit, digits):
    """The CPU table's rows: client (cpu_KEY) and server (srv_KEY) of each
    key of THROUGHPUT that was measured; UNIT(KEY) is the row's unit."""
    rows = []
    for key in (t[0] for t in throughput):
        for side, prefix in (("client", "cpu_"), ("server", "srv_")):
            r = ratio_row(res, prefix + key, "%s, %s (%s)" % (key, side, unit(key)), arms, refs, digits)
            if r is not None:
                rows.append(r[0])
    return rows


def print_bars(issue, bars, width, shown=lambda text, v: "%.2fx" % v):
    """Print BARS ((text, value or None, met) each) as PASS/MISS/n/a with
    SHOWN(text, value), TEXT padded to WIDTH; return how many were missed."""
    print()
    print("bars of issue %s (ratios: medians of per-round ratios; the arms of a round run back to back):"
          % issue)
    missed = 0
    for text, value, ok in bars:
        verdict = "n/a" if value is None else ("PASS" if ok else "MISS")
        if not ok:
            missed += 1
        print("  %-4s %-*s %s" % (verdict, width, text, "-" if value is None else shown(text, value)))
    print("bars met: %d of %d" % (len(bars) - missed, len(bars)))
    return missed


def print_lines(path, title):
    if os.path.exists(path):
        print(title)
        with open(path) as f:
            for line in f:
                print("  " + line.rstrip("\n"))


def main():
    res = sys.argv[1]
    m = read_kv(os.path.join(res, "machine"))
    print()
    print("tlsshim inbound benchmark (issue 11): the same plain nginx four ways")
    print("machine: %s CPUs, %s; %s; %s" % (m.get("cpus"), m.get("cpu"), m.get("kernel"), m.get("os")))
    print("software: nginx %s and stunnel %s with OpenSSL %s; tlsshim with GnuTLS %s"
          % (m.get("nginx"), m.get("stunnel"), m.get("openssl"), m.get("gnutls")))
    print("settings: %s" % m.get("settings"))
    print("load average: %s at the start, %s at the end; elapsed %s s"
          % (m.get("load_start"), m.get("load_end"), m.get("elapsed")))
    print_lines(os.path.join(res, "info"), "negotiated (Python ssl, certificate verified):")
    print_lines(os.path.join(res, "notes"), "notes:")

    rows, bars, failed = [], [], False
    for key, label, bar_a, bar_b in THROUGHPUT:
        r = ratio_row(res, key, label, ARMS, ("nginx", "stunnel", "plain"))
        if r is None:
            continue
        row, (ra, rb, _), fail = r
        rows.append(row)
        failed = failed or fail
        bars.append(("%s: tlsshim >= %.2fx nginx TLS" % (key, bar_a), ra, ra is not None and ra >= bar_a))
        bars.append(("%s: tlsshim >= %.2gx stunnel" % (key, bar_b), rb, rb is not None and rb >= bar_b))
    mem = {a: median(res, "memory", a) for a in ARMS}
    if any(v is not None for v in mem.values()):
        failed = failed or any(v == "fail" for v in mem.values())
        mr = {a: median(res, "memory_rss", a) for a in ARMS}
        rows.append(["memory, idle conn (KiB Pss/conn)"] + [fmt(mem[a]) for a in ARMS] + ["", "", ""])
        rows.append(["memory, idle conn (KiB Rss/conn)"] + [fmt(mr[a]) for a in ARMS] + ["", "", ""])
        v = mem["tlsshim"]
        bars.append(("memory: tlsshim <= %.0f KiB Pss per idle connection" % MEMORY_BAR_KIB,
                     v if isinstance(v, float) else None,
                     isinstance(v, float) and v <= MEMORY_BAR_KIB))
    print()
    table(("workload",) + HEADS + ("c/a", "c/b", "c/d"), rows)

    crows = cpu_rows(res, THROUGHPUT, ARMS, ("nginx", "stunnel"),
                     lambda key: "us/MiB" if key == "bulk" else "us/req", 2)
    if crows:
        print()
        table(("CPU per operation",) + HEADS + ("c/a", "c/b"), crows)
        print("(client: user+system CPU of wrk or curl; server: of the arm's nginx worker, plus stunnel"
              " for (b); from getrusage and /proc/PID/stat; medians; lower is better)")
    # New connections: the TLS client (wrk, OpenSSL) costs about as much CPU
    # per connection as the server on the same CPUs, so conn/s ratios are
    # pulled toward 1x; the server's CPU per connection is the sharper view.
    for key in ("resumed", "full"):
        cl = median(res, "cpu_" + key, "tlsshim")
        srv = median(res, "srv_" + key, "tlsshim")
        if isinstance(cl, float) and isinstance(srv, float) and cl >= srv:
            print("new conns, %s: the client spends %.0f us of CPU per connection, tlsshim's server %.0f us,"
                  " on %s shared CPUs: conn/s ratios are client-bound; server CPU per connection: c/a %s, c/b %s"
                  % (key, cl, srv, m.get("cpus", "?"),
                     fr(paired_ratio(res, "srv_" + key, "tlsshim", "nginx")),
                     fr(paired_ratio(res, "srv_" + key, "tlsshim", "stunnel"))))

    missed = print_bars(11, bars, 52,
                        lambda text, v: "%.1f KiB" % v if "memory" in text else "%.2fx" % v)
    print("memory: Pss delta of the server processes over %s idle connections / N (stunnel: stunnel +"
          " the nginx behind it); kernel socket buffers not included" % m.get("idle_n", "?"))
    return exit_status(failed, missed)


if __name__ == "__main__":
    sys.exit(main())
