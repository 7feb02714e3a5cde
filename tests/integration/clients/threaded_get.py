#!/usr/bin/env python3
"""threaded_get.py HOST PORT THREADS REQUESTS: THREADS threads, each doing
REQUESTS sequential GETs with http.client (blocking sockets, one connection
per request).  Prints "ok N/TOTAL"; exits 1 unless all succeeded.  Knows
nothing about TLS."""
import http.client
import sys
import threading

host, port = sys.argv[1], int(sys.argv[2])
threads, reqs = int(sys.argv[3]), int(sys.argv[4])
results = []
lock = threading.Lock()


def worker(t):
    for r in range(reqs):
        ok = False
        try:
            c = http.client.HTTPConnection(host, port, timeout=20)
            c.request("GET", "/t%d/r%d" % (t, r))
            resp = c.getresponse()
            body = resp.read()
            ok = resp.status == 200 and body.startswith(b"hello from tserver")
            c.close()
        except Exception as e:  # report, don't die: count the failures
            print("thread %d request %d: %r" % (t, r, e), file=sys.stderr)
        with lock:
            results.append(ok)


ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
good = sum(results)
print("ok %d/%d" % (good, threads * reqs))
sys.exit(0 if good == threads * reqs else 1)
