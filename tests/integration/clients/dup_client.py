#!/usr/bin/env python3
"""dup_client.py HOST PORT: against an ECHO server.  Writes one line through
each of: the socket, os.dup(), os.dup2() to fd 50, fcntl(F_DUPFD, 100) and
fcntl(F_DUPFD_CLOEXEC, 110), reading each echo back through a DIFFERENT
descriptor.  Then closes the original socket and keeps using a duplicate.
Prints the echoed lines and "sha256_out=HASH" of everything written.
Knows nothing about TLS."""
import fcntl
import hashlib
import os
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=15)
s.settimeout(None)      # a blocking descriptor, as os.read() on the dups expects
fd = s.fileno()
fds = {
    "socket": fd,
    "dup": os.dup(fd),
    "dup2": os.dup2(fd, 50),
    "F_DUPFD": fcntl.fcntl(fd, fcntl.F_DUPFD, 100),
    "F_DUPFD_CLOEXEC": fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 110),
}
sent = b""


def readline(rfd):
    line = b""
    while not line.endswith(b"\n"):
        d = os.read(rfd, 1)
        if not d:
            break
        line += d
    return line


names = list(fds)
for i, name in enumerate(names):
    line = ("via %s\n" % name).encode()
    wfd, rfd = fds[name], fds[names[(i + 1) % len(names)]]
    n = os.write(wfd, line)
    assert n == len(line), n
    sent += line
    print(readline(rfd).decode().rstrip())

# Close the original: the duplicates keep the connection alive.
s.close()
line = b"after close\n"
os.write(fds["dup"], line)
sent += line
print(readline(fds["F_DUPFD"]).decode().rstrip())
for name in names[1:]:
    os.close(fds[name])
print("sha256_out=" + hashlib.sha256(sent).hexdigest())
print("bytes_out=%d" % len(sent))
