#!/usr/bin/env python3
"""fork_creds.py CA_PATH SLOW_PORT FAST_PORT: fork while another thread is
inside the library's credential loading, then connect from the child.

First one exchange with 127.0.0.1:FAST_PORT (the library reads its policy,
which wants CA files to be regular files).  Then CA_PATH, the CA file of the
rule for 127.0.0.1:SLOW_PORT, is replaced by a named pipe holding nothing
yet, and thread T connects to SLOW_PORT: the library opens the pipe while
building that rule's credentials and waits there for a writer.  The main thread opens FIFO for writing, which
returns only once T's reader has it open, i.e. while T is inside credential
loading (holding the library's credentials lock).  Then it forks.  The child
connects to 127.0.0.1:FAST_PORT again (another rule, whose CA is a plain file),
sends a message and reads the echo back; it is killed by SIGALRM after 15 s
(a deadlock).  Afterwards the parent writes the CA into FIFO, and T finishes
its own exchange.  Knows nothing about TLS.

Prints "child=ok parent=ok" and exits 0 if both exchanges completed; else
says what happened ("child=deadlocked" when the alarm killed it) and exits 1."""
import os
import signal
import socket
import sys
import threading
import time

fifo, slow_port, fast_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
CA = open(fifo, "rb").read()
CHILD_MSG = b"child after fork, while the parent loads credentials\n" * 8
PARENT_MSG = b"parent thread, credentials loaded at last\n" * 8


def exchange(port, msg):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    return "ok" if got == msg else "bad echo (%d of %d bytes)" % (len(got), len(msg))


parent_result = []


def slow():
    try:
        parent_result.append(exchange(slow_port, PARENT_MSG))
    except Exception as e:  # report, don't die
        parent_result.append("error %r" % e)


first = exchange(fast_port, CHILD_MSG)
if first != "ok":
    print("first exchange: %s" % first)
    sys.exit(1)
os.unlink(fifo)
os.mkfifo(fifo, 0o600)
t = threading.Thread(target=slow, daemon=True)
t.start()
wfd = os.open(fifo, os.O_WRONLY)  # returns once T's credential loading opened it

pid = os.fork()
if pid == 0:
    os.close(wfd)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(15)  # a deadlock in C code cannot be interrupted otherwise
    try:
        code = 0 if exchange(fast_port, CHILD_MSG) == "ok" else 3
    except Exception as e:
        print("child error %r" % e, file=sys.stderr)
        code = 4
    os._exit(code)

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
if status is None:
    child = "hung"
elif os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
    child = "deadlocked"
elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
    child = "ok"
else:
    child = "failed(%r)" % status

os.write(wfd, CA)
os.close(wfd)
t.join(30)
parent = parent_result[0] if parent_result else "hung"
print("child=%s parent=%s" % (child, parent))
sys.exit(0 if child == "ok" and parent == "ok" else 1)
