#!/usr/bin/env python3
"""spawn_client.py HOST PORT MODE: connect (to an echo server), exchange one
line, start a child process in the way MODE says, then exchange a second
line on the same connection and close it.

The child is always a new program image (sh) that tries to write
"PLAINTEXT-LEAK" on the connection.  It must not get there: the exec'd image
cannot carry the TLS session.  The parent's connection must keep working.

MODE
  run-true        subprocess.run(["true"]) (vfork underneath)
  popen-stdout    subprocess.Popen(sh, stdout=sock)  (vfork, dup2 in the child)
  popen-spawn     subprocess.Popen(/bin/sh, stdout=sock, close_fds=False)
                  (posix_spawn with a dup2 file action underneath)
  posix-spawn     os.posix_spawn(/bin/sh, file_actions=[dup2(sock, 1)])
  inheritable     os.set_inheritable(sock, True), then
                  subprocess.run(sh -c 'printf ... >&FD', close_fds=False)
  pass-fds        subprocess.run(sh -c 'printf ... >&FD', pass_fds=[sock])
  fork-exec       os.set_inheritable(sock, True), os.fork(), os.execv(sh)
Prints lines:
  echo1=LINE  child=WHAT  echo2=LINE  [inheritable=BOOL]
Knows nothing about TLS."""
import errno
import os
import socket
import subprocess
import sys

host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=20)
fd = s.fileno()
LEAK = "PLAINTEXT-LEAK"


def exchange(tag):
    line = ("%s from the parent\n" % tag).encode()
    s.sendall(line)
    data = b""
    while not data.endswith(b"\n"):
        d = s.recv(4096)
        if not d:
            break
        data += d
    print("%s=%s" % (tag, data.decode(errors="replace").strip()), flush=True)


def err_name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


exchange("echo1")
try:
    if mode == "run-true":
        r = subprocess.run(["true"])
        print("child=exit%d" % r.returncode)
    elif mode == "popen-stdout":
        p = subprocess.Popen(["sh", "-c", "printf %s" % LEAK], stdout=s)
        print("child=exit%d" % p.wait())
    elif mode == "popen-spawn":
        p = subprocess.Popen(["/bin/sh", "-c", "printf %s" % LEAK], stdout=s, close_fds=False)
        print("child=exit%d" % p.wait())
    elif mode == "posix-spawn":
        pid = os.posix_spawn("/bin/sh", ["sh", "-c", "printf %s" % LEAK], os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, fd, 1)])
        print("child=exit%d" % os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    elif mode == "inheritable":
        os.set_inheritable(fd, True)
        print("inheritable=%s" % os.get_inheritable(fd))
        r = subprocess.run(["sh", "-c", "printf %s >&%d" % (LEAK, fd)], close_fds=False)
        print("child=exit%d" % r.returncode)
    elif mode == "pass-fds":
        r = subprocess.run(["sh", "-c", "printf %s >&%d" % (LEAK, fd)], pass_fds=[fd])
        print("child=exit%d" % r.returncode)
    elif mode == "fork-exec":
        os.set_inheritable(fd, True)
        pid = os.fork()
        if pid == 0:
            try:
                os.execv("/bin/sh", ["sh", "-c", "printf %s >&%d" % (LEAK, fd)])
            finally:
                os._exit(127)
        print("child=exit%d" % os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    else:
        sys.exit("unknown mode " + mode)
except OSError as e:
    print("child=%s" % err_name(e))
sys.stdout.flush()
try:
    exchange("echo2")
except OSError as e:
    print("echo2=%s" % err_name(e))
s.close()
