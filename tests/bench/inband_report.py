#!/usr/bin/env python3
"""inband_report.py RESULTS_DIR -- the table of the in-band benchmark.

Reads what inband_bench.sh measured (RESULTS_DIR/KEY.ARM: one number per
round, or "fail"; machine; info; notes) and prints the machine, the medians,
the ratios of tlsshim (protocol = postgres) against libpq's own TLS and
against stunnel (protocol = pgsql), the CPU per transaction of both sides,
and the bars of issue 12 as PASS/MISS.
Exit status: 0 all bars met, 3 a bar missed (or not measured), 4 a
measurement failed.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inbound_report import cpu_rows, print_bars, print_lines, ratio_row, read_kv, table  # noqa: E402
from report import exit_status, fr, median, paired_ratio  # noqa: E402

ARMS = ("libpq", "tlsshim", "stunnel")
HEADS = ("(a) libpq TLS", "(b) tlsshim", "(c) stunnel")

# key, label, bar against (a), bar against (c) (None: no bar)
THROUGHPUT = (
    ("new", "new connections, pgbench -C -S (conn/s)", 0.9, 1.2),
    ("persistent", "persistent, pgbench -S (tx/s)", 0.9, None),
)


def main():
    res = sys.argv[1]
    m = read_kv(os.path.join(res, "machine"))
    print()
    print("tlsshim in-band benchmark (issue 12): pgbench to one PostgreSQL over TLS 1.3, three ways")
    print("machine: %s CPUs, %s; %s; %s" % (m.get("cpus"), m.get("cpu"), m.get("kernel"), m.get("os")))
    print("software: PostgreSQL %s (server and pgbench/libpq) and stunnel %s with OpenSSL %s;"
          " tlsshim with GnuTLS %s" % (m.get("postgres"), m.get("stunnel"), m.get("openssl"), m.get("gnutls")))
    print("arms: (a) pgbench sslmode=%s; (b) pgbench sslmode=disable under tlsshim, protocol = postgres"
          " (verified); (c) pgbench sslmode=disable to stunnel, client mode, protocol = pgsql (verified)"
          % m.get("sslmode", "require"))
    print("settings: %s" % m.get("settings"))
    print("load average: %s at the start, %s at the end; elapsed %s s"
          % (m.get("load_start"), m.get("load_end"), m.get("elapsed")))
    print_lines(os.path.join(res, "info"), "checked:")
    print_lines(os.path.join(res, "notes"), "notes:")

    rows, bars, failed = [], [], False
    for key, label, bar_a, bar_c in THROUGHPUT:
        r = ratio_row(res, key, label, ARMS, ("libpq", "stunnel"))
        if r is None:
            continue
        row, (ra, rc), fail = r
        rows.append(row)
        failed = failed or fail
        bars.append(("%s: tlsshim >= %.2gx libpq's own TLS" % (key, bar_a), ra, ra is not None and ra >= bar_a))
        if bar_c is not None:
            bars.append(("%s: tlsshim >= %.2gx stunnel" % (key, bar_c), rc, rc is not None and rc >= bar_c))
    print()
    table(("workload",) + HEADS + ("b/a", "b/c"), rows)

    crows = cpu_rows(res, THROUGHPUT, ARMS, ("libpq", "stunnel"), lambda key: "us/tx", 1)
    if crows:
        print()
        table(("CPU per transaction",) + HEADS + ("b/a", "b/c"), crows)
        print("(client: user+system CPU of pgbench, plus stunnel for (c); server: the postmaster, its"
              " backends and background processes; from getrusage and /proc/PID/stat; medians; lower is"
              " better; with -C one transaction is one connection)")
    # New connections: each one forks a backend that loads its catalogs;
    # that server CPU dwarfs either side's TLS, so conn/s ratios are pulled
    # toward 1x; the client's CPU per connection is the sharper view.
    cl = median(res, "cpu_new", "tlsshim")
    srv = median(res, "srv_new", "tlsshim")
    if isinstance(cl, float) and isinstance(srv, float) and srv >= cl:
        print("new connections: the server spends %.0f us of CPU per connection (a backend process each),"
              " the client %.0f us, on %s shared CPUs: conn/s ratios are server-bound; client CPU per"
              " connection: b/a %s, b/c %s"
              % (srv, cl, m.get("cpus", "?"), fr(paired_ratio(res, "cpu_new", "tlsshim", "libpq")),
                 fr(paired_ratio(res, "cpu_new", "tlsshim", "stunnel"))))

    missed = print_bars(12, bars, 45)
    return exit_status(failed, missed)


if __name__ == "__main__":
    sys.exit(main())
