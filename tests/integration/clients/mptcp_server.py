#!/usr/bin/env python3
"""mptcp_server.py PORTFILE LOG -- a plaintext line server listening with
socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP) on 127.0.0.1 (port written to
PORTFILE); run it under tlsshim.  For each connection it logs the accepted
socket's protocol (262 when the client spoke MPTCP too), reads one line and
answers "hello LINE\n".  LOG gets, per connection:
  proto=P line=LINE      or     proto=P error=ENAME|eof (after read=BYTES)"""
import errno
import socket
import sys

import listener

IPPROTO_MPTCP = 262
portfile, logname = sys.argv[1:3]
lst = listener.listen(portfile, proto=IPPROTO_MPTCP)
log = open(logname, "a", buffering=1)
while True:
    try:
        conn, _ = lst.accept()
    except OSError as e:
        log.write("accept error=%s\n" % errno.errorcode.get(e.errno, e.errno))
        continue
    proto = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL)
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = conn.recv(1024)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        log.write("proto=%d read=%r error=%s\n" % (proto, data, errno.errorcode.get(e.errno, e.errno)))
        conn.close()
        continue
    if not data.endswith(b"\n"):
        log.write("proto=%d read=%r error=eof\n" % (proto, data))
        conn.close()
        continue
    line = data[:-1].decode(errors="backslashreplace")
    log.write("proto=%d line=%s\n" % (proto, line))
    try:
        conn.sendall(b"hello " + data)
    except OSError:
        pass
    conn.close()
