#!/usr/bin/env python3
"""poller.py MODE PORT: a dedicated poller thread, as in BEAM, libuv or tokio.

Thread A blocks in an epoll wait on a set that holds only a plain pipe.  Only
once A is inside the system call (read from /proc/self/task/TID/syscall) does
the main thread connect to 127.0.0.1:PORT (plain TCP: knows nothing of TLS),
make the socket non-blocking, add it to A's epoll set and send a message.  A
must then see the socket's own data, never a foreign value; it reads the
echoed message back, and the main thread closes the socket.

MODE: poll    select.epoll().poll() (epoll_wait; data is the fd)
      wait    epoll_wait through ctypes, data a 64-bit value of our own
      pwait   epoll_pwait the same way
      pwait2  epoll_pwait2 the same way

Prints "ok BYTES" and exits 0 when the echo came back whole and every event
named the pipe or the socket; "foreign ..." (exit 1) at the first event whose
data is neither; "timeout ..." (exit 2) if nothing completes within 20 s."""
import ctypes
import os
import select
import socket
import sys
import threading
import time

mode, port = sys.argv[1], int(sys.argv[2])
MESSAGE = b"poller says hello through a dedicated epoll thread\n" * 20
DEADLINE = time.monotonic() + 20
PIPE_DATA = 0x5EED_0000_0000_0001  # what the program registered (ctypes modes)
SOCK_DATA = 0x5EED_0000_0000_0002
# x86_64 syscall numbers: what A must be blocked in before the socket is added
WAIT_SYSCALLS = {"poll": {232, 281}, "wait": {232, 281}, "pwait": {281}, "pwait2": {441}}[mode]

libc = ctypes.CDLL(None, use_errno=True)


class EpollEvent(ctypes.Structure):
    _pack_ = 1  # struct epoll_event is packed on x86_64
    _fields_ = [("events", ctypes.c_uint32), ("data", ctypes.c_uint64)]


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


rpipe, wpipe = os.pipe()
if mode == "poll":
    ep = select.epoll()
    epfd = ep.fileno()
    ep.register(rpipe, select.EPOLLIN)
else:
    ep = None
    epfd = os.epoll_create1(0) if hasattr(os, "epoll_create1") else libc.epoll_create1(0)


def ctl_add(fd, data):
    ev = EpollEvent(select.EPOLLIN, data)
    if libc.epoll_ctl(epfd, 1, fd, ctypes.byref(ev)) != 0:  # EPOLL_CTL_ADD
        raise OSError(ctypes.get_errno(), "epoll_ctl")


if ep is None:
    ctl_add(rpipe, PIPE_DATA)

tid = []
sock = None
sock_ready = threading.Event()
result = []


def wait_events(timeout_ms):
    """[(data, events)] from one wait."""
    if mode == "poll":
        return [(fd, ev) for fd, ev in ep.poll(timeout_ms / 1000.0)]
    evs = (EpollEvent * 16)()
    if mode == "wait":
        n = libc.epoll_wait(epfd, evs, 16, timeout_ms)
    elif mode == "pwait":
        n = libc.epoll_pwait(epfd, evs, 16, timeout_ms, None)
    else:
        ts = Timespec(timeout_ms // 1000, (timeout_ms % 1000) * 1000000)
        n = libc.epoll_pwait2(epfd, evs, 16, ctypes.byref(ts), None)
    if n < 0:
        err = ctypes.get_errno()
        if err == 4:  # EINTR
            return []
        raise OSError(err, "epoll wait")
    return [(evs[i].data, evs[i].events) for i in range(n)]


def poller():
    tid.append(threading.get_native_id())
    got = b""
    pipe_data = rpipe if mode == "poll" else PIPE_DATA
    while time.monotonic() < DEADLINE:
        for data, events in wait_events(int((DEADLINE - time.monotonic()) * 1000) + 1):
            if data == pipe_data:
                result.append("pipe readable: nobody wrote to it")
                return
            if not sock_ready.is_set():
                result.append("foreign data=%#x events=%#x before the socket was added" % (data, events))
                return
            want = sock.fileno() if mode == "poll" else SOCK_DATA
            if data != want:
                result.append("foreign data=%#x events=%#x (the socket is fd %d, data %#x)"
                              % (data, events, sock.fileno(), want))
                return
            while True:
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    break
                if not chunk:
                    result.append("eof after %d bytes" % len(got))
                    return
                got += chunk
            if len(got) >= len(MESSAGE):
                result.append("ok %d" % len(got) if got == MESSAGE else "bad echo %d bytes" % len(got))
                return
    result.append("timeout: %d bytes of %d" % (len(got), len(MESSAGE)))


a = threading.Thread(target=poller, daemon=True)
a.start()
# Wait (with a deadline) until A is blocked inside the wait system call.
while time.monotonic() < DEADLINE:
    if tid:
        try:
            with open("/proc/self/task/%d/syscall" % tid[0]) as f:
                nr = f.read().split()[0]
            if nr.isdigit() and int(nr) in WAIT_SYSCALLS:
                break
        except OSError:
            pass
    time.sleep(0.005)
else:
    print("timeout: the poller never blocked in its wait")
    sys.exit(2)

sock = socket.create_connection(("127.0.0.1", port), timeout=20)
sock.setblocking(False)
sock_ready.set()
if mode == "poll":
    ep.register(sock.fileno(), select.EPOLLIN)
else:
    ctl_add(sock.fileno(), SOCK_DATA)
sent = 0
while sent < len(MESSAGE) and time.monotonic() < DEADLINE:
    try:
        sent += sock.send(MESSAGE[sent:])
    except BlockingIOError:
        select.select([], [sock], [], 0.1)
a.join(max(0.0, DEADLINE - time.monotonic()) + 1)
if not result:
    result.append("timeout: the poller did not finish")
sock.close()
print(result[0])
sys.exit(0 if result[0].startswith("ok ") else 1 if result[0].startswith("foreign") else 2)
