#!/usr/bin/env python3
"""Blocking client: one process, a sequence of steps.  Each step is a URL
(fetched with urllib over a fresh connection) or "sleep:SECONDS".  Prints
one word per URL: "ok" (status 200, body read) or "error".  Knows nothing
about TLS; always exits 0 (the words are the result)."""
import sys
import time
import urllib.request

words = []
for step in sys.argv[1:]:
    if step.startswith("sleep:"):
        time.sleep(float(step[6:]))
        continue
    try:
        with urllib.request.urlopen(step, timeout=20) as resp:
            resp.read()
            words.append("ok" if resp.status == 200 else "error")
    except Exception as exc:  # the failure is the result under test
        sys.stderr.write("%s: %s\n" % (step, exc))
        words.append("error")
print(" ".join(words))
