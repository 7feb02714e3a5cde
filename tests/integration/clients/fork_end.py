#!/usr/bin/env python3
"""fork_end.py HOST PORT SIZE FORK END: connect, send the first 1000 bytes
of SIZE bytes of a known pattern (byte i = i % 251, as pattern_sha256.py),
start a child that never touches the socket, send the rest with sendall,
never read anything, then end.  Prints "sent N SHA256" (flushed) before
ending.  Knows nothing about TLS.

FORK  fork    os.fork(); the child _exits at once, the parent waits for it
      system  os.system("true") (posix_spawn underneath)
      none    no child
END   close   close(), then sys.exit(0)
      exit    sys.exit(0) with the socket open
      _exit   os._exit(0)
      abort   os.abort() (SIGABRT: no code of the library runs)
      kill    SIGKILL to itself"""
import hashlib
import os
import signal
import socket
import sys

host, port, size, how, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
block = bytes(i % 251 for i in range(251)) * 256
data = (block * (size // len(block) + 1))[:size]
s = socket.create_connection((host, port))
s.sendall(data[:1000])
if how == "fork":
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
elif how == "system":
    os.system("true")
elif how == "none":
    pass
else:
    sys.exit("unknown FORK " + how)
s.sendall(data[1000:])
print("sent %d %s" % (size, hashlib.sha256(data).hexdigest()), flush=True)
if end == "close":
    s.close()
    sys.exit(0)
elif end == "exit":
    sys.exit(0)
elif end == "_exit":
    os._exit(0)
elif end == "abort":
    os.abort()
elif end == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.exit("unknown END " + end)
