#!/usr/bin/env python3
"""pattern_sha256.py N: print the sha256 of tserver's /bytes/N body
(byte i = i % 251).  Computed independently of any connection."""
import hashlib
import sys

n = int(sys.argv[1])
h = hashlib.sha256()
block = bytes(i % 251 for i in range(251)) * 64     # whole periods
while n >= len(block):
    h.update(block)
    n -= len(block)
h.update(block[:n])
print(h.hexdigest())
