#!/usr/bin/env python3
"""early_end.py HOST PORT MODE: a 1st connection fetches a session ticket
(so the 2nd may use 0-RTT); then the 2nd connection:
  close     blocking connect; non-blocking send of 1000 bytes (0-RTT); close() at once
  shut      the same, then shutdown(SHUT_WR) at once and read to the end
  shuthttp  an HTTP request as 0-RTT, shutdown(SHUT_WR) at once, read the reply
  nbwrite   non-blocking connect, 0.3 s without polling, then the request
  nbread    non-blocking connect, 0.3 s without polling, a read first (EAGAIN)
Prints what happened; exits 1 on an error the program should not see."""
import errno, select, socket, sys, time

host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
REQ = b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def ticket():
    first = socket.create_connection((host, port))
    if mode in ("close", "shut"):
        first.sendall(b"hello")
        first.settimeout(1)
        try:
            first.recv(1)
        except socket.timeout:
            pass
    else:
        first.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while first.recv(65536):
            pass
    first.close()


def read_to_end(s):
    data = b""
    end = time.time() + 20
    while time.time() < end:
        select.select([s], [], [], 1)
        try:
            d = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError as e:
            print("recv error", errno.errorcode.get(e.errno, e.errno), flush=True)
            sys.exit(1)
        if not d:
            print("eof", flush=True)
            break
        data += d
    return data


def reply(data):
    print("got", len(data), data.split(b"\r\n")[0].decode(), flush=True)
    sys.exit(0 if data.startswith(b"HTTP/1.1 200") else 1)


ticket()
if mode in ("close", "shut", "shuthttp"):
    s = socket.create_connection((host, port))
    s.setblocking(False)
    n = s.send(bytes(i % 251 for i in range(1000)) if mode != "shuthttp" else REQ)
    print("send", n, flush=True)
    if mode == "close":
        s.close()
        sys.exit(0)
    s.shutdown(socket.SHUT_WR)
    print("shutdown ok", flush=True)
    data = read_to_end(s)
    if mode == "shuthttp":
        reply(data)
    sys.exit(0)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setblocking(False)
r = s.connect_ex((host, port))
print("connect_ex", errno.errorcode.get(r, r), flush=True)
time.sleep(0.3)
try:
    if mode == "nbread":
        try:
            s.recv(100)
            print("read: data before the request?", flush=True)
            sys.exit(1)
        except BlockingIOError:
            print("read EAGAIN", flush=True)
    try:
        n = s.send(REQ)
    except BlockingIOError:
        n = 0  # the handshake goes on: the rest below, blocking
    print("send", n, flush=True)
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno), flush=True)
    sys.exit(1)
s.setblocking(True)
if n < len(REQ):
    s.sendall(REQ[n:])
s.setblocking(False)
reply(read_to_end(s))
