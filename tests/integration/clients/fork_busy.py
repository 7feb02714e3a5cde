#!/usr/bin/env python3
"""fork_busy.py PORT: fork while another thread is blocked reading an
upgraded connection.

Thread R connects to 127.0.0.1:PORT (an echo server) and blocks in recv().
Once R is inside the system call (/proc/self/task/TID/syscall), the main
thread forks.  The child tries send() and recv() on that connection under a
15 s alarm: the parent's thread is using it, so the child must get an error
at once, not hang and not write (it would share the parent's TLS state).
Then the parent sends a message on it, R gets the echo, and the parent
closes it.  Knows nothing about TLS.

Prints "child=SEND/RECV parent=ok": SEND and RECV are what the child's calls
got ("sent" or the errno name), "deadlocked" if the alarm killed it."""
import errno
import os
import signal
import socket
import sys
import threading
import time

port = int(sys.argv[1])
MSG = b"the parent keeps its connection\n"
DEADLINE = time.monotonic() + 30

s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.settimeout(None)  # blocking: R waits inside recv() itself
tid = []
got = []


def reader():
    tid.append(threading.get_native_id())
    data = b""
    try:
        while len(data) < len(MSG):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        got.append("error %s" % errno.errorcode.get(e.errno, e.errno))
        return
    got.append("ok" if data == MSG else "bad echo %r" % data)


r = threading.Thread(target=reader, daemon=True)
r.start()
# recvfrom (45): R is inside recv() (x86_64)
while time.monotonic() < DEADLINE:
    if tid:
        try:
            with open("/proc/self/task/%d/syscall" % tid[0]) as f:
                nr = f.read().split()[0]
            if nr == "45":
                break
        except OSError:
            pass
    time.sleep(0.005)

pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(15)
    res = []
    for what in ("send", "recv"):
        try:
            if what == "send":
                s.send(b"child\n")
                res.append("sent")
            else:
                s.recv(1)
                res.append("received")
        except OSError as e:
            res.append(errno.errorcode.get(e.errno, str(e.errno)))
    os.write(1, ("/".join(res)).encode() + b"\n")
    os._exit(0)

deadline = time.monotonic() + 30
status = None
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.05)
else:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
sys.stdout.flush()
if status is None:
    child = "hung"
elif os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
    child = "deadlocked"
else:
    child = "exited"
try:
    s.sendall(MSG)
except OSError as e:
    got.append("send error %s" % errno.errorcode.get(e.errno, e.errno))
r.join(20)
s.close()
print("child=%s parent=%s" % (child, got[0] if got else "hung"))
