#!/usr/bin/env python3
"""shut_early.py MODE PORT: shutdown() before the handshake, on 127.0.0.1:PORT
(an upgraded connection under tlsshim).

  wr_then_write   a first connection for a session, then a second one (0-RTT
                  possible): shutdown(SHUT_WR) before anything, then send():
                  must fail with EPIPE, as the kernel says after SHUT_WR
                  (the bytes must never go out, as 0-RTT data or otherwise)
  rd_then_write   non-blocking connect, shutdown(SHUT_RD) at once, then wait
                  for POLLOUT and send a line: it must go (the kernel's
                  SHUT_RD ends no writing), and reads return end of stream

Prints one line per step: "send=N", "send=EPIPE", "recv=b''"..."""
import errno
import select
import signal
import socket
import sys

signal.signal(signal.SIGPIPE, signal.SIG_IGN)
MODE, PORT = sys.argv[1], int(sys.argv[2])


def step(what, fn):
    try:
        print("%s=%r" % (what, fn()), flush=True)
    except OSError as e:
        print("%s=%s" % (what, errno.errorcode.get(e.errno, str(e.errno))), flush=True)


if MODE == "wr_then_write":
    s = socket.create_connection(("127.0.0.1", PORT))
    s.sendall(b"first\n")
    s.shutdown(socket.SHUT_WR)
    while s.recv(4096):
        pass
    s.close()
    s = socket.create_connection(("127.0.0.1", PORT))
    s.shutdown(socket.SHUT_WR)
    step("send", lambda: s.send(b"AFTER-SHUTDOWN\n"))
    step("recv", lambda: s.recv(100))
    s.close()
elif MODE == "rd_then_write":
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", PORT))
    s.shutdown(socket.SHUT_RD)
    p = select.poll()
    p.register(s, select.POLLOUT)
    p.poll(10000)
    s.setblocking(True)
    step("send", lambda: s.send(b"after-shut-rd\n"))
    step("recv", lambda: s.recv(100))
    s.shutdown(socket.SHUT_WR)
    s.close()
