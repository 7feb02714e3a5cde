#!/usr/bin/env python3
"""Blocking client: fetch each URL with urllib (a fresh connection each),
print the bodies.  Knows nothing about TLS."""
import sys
import urllib.request

for url in sys.argv[1:]:
    with urllib.request.urlopen(url, timeout=20) as resp:
        sys.stdout.write(resp.read().decode())
