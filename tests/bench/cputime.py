#!/usr/bin/env python3
"""cputime.py COMMAND [ARG...] -- run COMMAND, then print its CPU time.

COMMAND's output passes through unchanged; afterwards one more line goes
to standard output: "CPU-seconds: USER+SYSTEM" of COMMAND and everything it
waited for (RUSAGE_CHILDREN).  The exit status is COMMAND's.
"""
import resource
import subprocess
import sys

if len(sys.argv) < 2:
    sys.stderr.write(__doc__)
    sys.exit(2)
rc = subprocess.call(sys.argv[1:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.write("CPU-seconds: %.6f\n" % (ru.ru_utime + ru.ru_stime))
sys.exit(rc if rc >= 0 else 128 - rc)
