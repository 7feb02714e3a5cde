#!/usr/bin/env python3
"""split_client.py MODE WHO HOST PORT ARGS...: connect, os.fork(), then one
process only writes to the socket and the other only reads from it (what
rsync's generator and receiver do).  WHO says which: child-reads (the parent
writes) or parent-reads (the child writes).  Knows nothing about TLS.

MODE echo FILE: the writer sends FILE in 16 KiB pieces; the reader reads
    back as many bytes (an echo server), then the writer closes.  Prints
    (from the reader): "read N SHA256".
MODE cmd FIFO OUT: the writer takes lines from FIFO: "send TEXT" sends
    TEXT and a newline, "close" closes the socket and ends.  The reader
    appends what it reads to OUT, and at the end one line
    "[reader eof]" or "[reader error ERRNO]".
MODE handover: the parent writes "one", the child reads the echo and
    exits; the parent writes "two" (its direction), then tries to read (the
    exited child's direction) and prints "parent recv=ok|ERRNO"; then closes.
Exit status 0 when both processes ended without an error."""
import errno
import hashlib
import os
import socket
import sys

mode, who, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if who not in ("child-reads", "parent-reads"):
    sys.exit("WHO must be child-reads or parent-reads")
s = socket.create_connection((host, port), timeout=30)
done_r, done_w = os.pipe()  # reader -> writer: "I have read it all"

pid = os.fork()
is_reader = (pid == 0) == (who == "child-reads")


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def reader_echo(size):
    h, n = hashlib.sha256(), 0
    try:
        while n < size:
            d = s.recv(65536)
            if not d:
                break
            h.update(d)
            n += len(d)
    finally:
        os.write(done_w, b"x")  # never leave the writer waiting
    print("read %d %s" % (n, h.hexdigest()), flush=True)
    return 0 if n == size else 1


def writer_echo(path):
    with open(path, "rb") as f:
        data = f.read()
    for i in range(0, len(data), 16384):
        s.sendall(data[i:i + 16384])
    os.read(done_r, 1)  # the reader has everything: end the connection
    s.close()
    return 0


def reader_cmd(out):
    status = 0
    with open(out, "ab", buffering=0) as f:
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    f.write(b"[reader eof]\n")
                    break
                f.write(d)
        except OSError as e:
            f.write(("[reader error %s]\n" % errname(e)).encode())
            status = 1
    return status


def writer_cmd(fifo):
    with open(fifo, "r") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("send "):
                s.sendall(line[5:].encode() + b"\n")
            elif line == "close":
                s.close()
                return 0
    return 1


try:
    if mode == "echo":
        if is_reader:
            status = reader_echo(os.path.getsize(sys.argv[5]))
        else:
            status = writer_echo(sys.argv[5])
    elif mode == "handover":
        if pid == 0:
            d = b""
            while len(d) < 4:
                d += s.recv(4 - len(d)) or b"!!!!"
            print("child read %r" % d, flush=True)
            status = 0
        else:
            s.sendall(b"one\n")
            os.waitpid(pid, 0)
            pid = -1
            s.sendall(b"two\n")
            try:
                s.settimeout(5)
                s.recv(100)
                print("parent recv=ok", flush=True)
            except socket.timeout:
                print("parent recv=timeout", flush=True)
            except OSError as e:
                print("parent recv=" + errname(e), flush=True)
            s.close()
            sys.exit(0)
    elif mode == "cmd":
        status = reader_cmd(sys.argv[6]) if is_reader else writer_cmd(sys.argv[5])
    else:
        sys.exit("unknown mode " + mode)
except OSError as e:
    print("%s: %s" % ("reader" if is_reader else "writer", errname(e)), flush=True)
    status = 1

if pid == 0:
    os._exit(status)
_, st = os.waitpid(pid, 0)
sys.exit(status or (1 if os.waitstatus_to_exitcode(st) else 0))
