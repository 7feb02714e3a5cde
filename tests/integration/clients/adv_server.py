#!/usr/bin/env python3
"""adv_server.py MODE PORTFILE LOG -- a plain line echo server for the
inbound adversarial tests (inbound_adv.sh).  Binds 127.0.0.1 on a free
port, writes the port to PORTFILE, answers every line L with "echo:L",
and logs one line per event to LOG ("accept ADDR", "line ADDR L",
"eof ADDR", "error ADDR ERRNO").  It knows nothing about TLS.

MODE:
  thread   one thread per connection, blocking I/O
  epollet  one thread, non-blocking sockets on edge-triggered epoll
  shutwr   one thread per connection that first shuts down its sending
           side (shutdown(SHUT_WR): a receive-only service), then reads
"""
import errno
import select
import socket
import sys
import threading

mode, portfile, logfile = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()


def log(*words):
    with lock, open(logfile, "a") as f:
        f.write(" ".join(str(w) for w in words) + "\n")


def name(addr):
    return "%s:%d" % addr


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def lines(conn, buf, data):
    """Answer the complete lines of BUF + DATA; return what is left."""
    buf += data
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        log("line", conn[1], line.decode(errors="replace"))
        conn[0].sendall(b"echo:" + line + b"\n")
    return buf


def serve_thread(sock, addr, shut_first):
    conn, buf = (sock, name(addr)), b""
    try:
        if shut_first:
            sock.shutdown(socket.SHUT_WR)
            log("shut", conn[1])
        while True:
            data = sock.recv(4096)
            if not data:
                log("eof", conn[1])
                break
            if shut_first:
                log("line", conn[1], data.decode(errors="replace").strip())
            else:
                buf = lines(conn, buf, data)
    except OSError as e:
        log("error", conn[1], errname(e))
    sock.close()


def threads(ls, shut_first):
    while True:
        sock, addr = ls.accept()
        log("accept", name(addr))
        threading.Thread(target=serve_thread, args=(sock, addr, shut_first), daemon=True).start()


def readable(ep, conns, fd):
    """Read FD until EAGAIN (edge-triggered); close it at its end."""
    sock, addr, buf = conns[fd]
    while True:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            conns[fd][2] = buf
            return
        except OSError as e:
            log("error", addr, errname(e))
            break
        if not data:
            log("eof", addr)
            break
        try:
            buf = lines((sock, addr), buf, data)
        except OSError as e:
            log("error", addr, errname(e))
            break
    ep.unregister(fd)
    sock.close()
    del conns[fd]


def epoll_et(ls):
    ep, conns = select.epoll(), {}
    ls.setblocking(False)
    ep.register(ls.fileno(), select.EPOLLIN)
    while True:
        for fd, _ in ep.poll():
            if fd != ls.fileno():
                readable(ep, conns, fd)
                continue
            while True:
                try:
                    sock, addr = ls.accept()
                except BlockingIOError:
                    break
                sock.setblocking(False)
                conns[sock.fileno()] = [sock, name(addr), b""]
                ep.register(sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLET)
                log("accept", name(addr))


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(512)
with open(portfile, "w") as f:
    f.write(str(listener.getsockname()[1]))
if mode == "epollet":
    epoll_et(listener)
else:
    threads(listener, mode == "shutwr")
