#!/usr/bin/env python3
"""inetd_acceptor.py MODE PORTFILE HANDLER HANDLER_LOG -- a plaintext,
inetd-style acceptor (run under tlsshim): it listens on 127.0.0.1, accepts
one connection and starts HANDLER with the socket as its stdin and stdout:

  exec        fork, dup2 onto 0 and 1, execv (inetd, tcpserver)
  read-exec   the same after reading the client's first line itself: the
              TLS handshake has begun, the handler must not get the socket
  subprocess  subprocess.Popen(stdin=conn, stdout=conn) (vfork + exec)
  spawn       os.posix_spawn with dup2 file actions

It writes its port to PORTFILE and one line per event to stderr."""
import os
import subprocess
import sys

import listener

mode, portfile, handler, handler_log = sys.argv[1:5]
lst = listener.listen(portfile)
conn, addr = lst.accept()
lst.close()
fd = conn.fileno()
argv = [handler, handler_log]
if mode == "read-exec":
    first = b""
    while not first.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        first += chunk
    print("acceptor read %r" % first, file=sys.stderr, flush=True)
if mode in ("exec", "read-exec"):
    pid = os.fork()
    if pid == 0:
        os.dup2(fd, 0)
        os.dup2(fd, 1)
        os.execv(handler, argv)
    conn.close()
    _, status = os.waitpid(pid, 0)
elif mode == "subprocess":
    child = subprocess.Popen(argv, stdin=conn, stdout=conn)
    conn.close()
    status = child.wait()
elif mode == "spawn":
    pid = os.posix_spawn(handler, argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, fd, 0), (os.POSIX_SPAWN_DUP2, fd, 1)])
    conn.close()
    _, status = os.waitpid(pid, 0)
else:
    sys.exit("unknown mode " + mode)
print("acceptor: handler status %d" % status, file=sys.stderr, flush=True)
