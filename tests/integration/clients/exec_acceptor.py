#!/usr/bin/env python3
"""exec_acceptor.py MODE PORTFILE HANDLER HANDLER_LOG [ENV...] -- a
plaintext, inetd-style acceptor (run under tlsshim) that starts HANDLER on
the accepted socket (stdin and stdout) in ways the library must not trust,
or must not forget:

  exec        fork, dup2 onto 0 and 1, execve with the environment below
  spawn       os.posix_spawn (dup2 file actions), the environment below
  spawn-read  posix_spawn as above, then the acceptor reads the socket
              itself (it gave the connection away: EIO)
  popen-read  subprocess.Popen (vfork + exec), then the acceptor reads

ENV edits this process's environment for the handler: -NAME drops NAME,
NAME=VALUE sets it, NAME-=WORD drops the entries of a list (LD_PRELOAD)
that contain WORD, NAME+=ENTRY appends one, a lone -i starts from nothing.  The port goes
to PORTFILE, one line per event to stderr ("parent read error=EIO")."""
import errno
import os
import subprocess
import sys

import listener

mode, portfile, handler, handler_log = sys.argv[1:5]
env = dict(os.environ)
for edit in sys.argv[5:]:
    if edit == "-i":
        env = {}
    elif edit.startswith("-"):
        env.pop(edit[1:], None)
    elif "-=" in edit:
        name, word = edit.split("-=", 1)
        env[name] = " ".join(e for e in env.get(name, "").replace(":", " ").split() if word not in e)
    elif "+=" in edit:
        name, word = edit.split("+=", 1)
        env[name] = (env.get(name, "") + " " + word).strip()
    else:
        name, value = edit.split("=", 1)
        env[name] = value
lst = listener.listen(portfile)
conn, addr = lst.accept()
lst.close()
fd = conn.fileno()
argv = [handler, handler_log]


def say(text):
    print(text, file=sys.stderr, flush=True)


def parent_read():
    try:
        say("parent read %r" % conn.recv(100))
    except OSError as e:
        say("parent read error=%s" % errno.errorcode.get(e.errno, e.errno))


pid = None
if mode == "exec":
    pid = os.fork()
    if pid == 0:
        os.dup2(fd, 0)
        os.dup2(fd, 1)
        os.execve(handler, argv, env)
elif mode in ("spawn", "spawn-read"):
    try:
        pid = os.posix_spawn(handler, argv, env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, fd, 0), (os.POSIX_SPAWN_DUP2, fd, 1)])
    except OSError as e:
        say("spawn error=%s" % errno.errorcode.get(e.errno, e.errno))
    if pid is not None and mode == "spawn-read":
        parent_read()
elif mode == "popen-read":
    child = subprocess.Popen(argv, stdin=conn, stdout=conn, env=env)
    pid = child.pid
    parent_read()
    conn.close()
    say("acceptor: handler status %d" % child.wait())
    sys.exit(0)
else:
    sys.exit("unknown mode " + mode)
conn.close()
if pid is not None:
    _, status = os.waitpid(pid, 0)
    say("acceptor: handler status %d" % status)
