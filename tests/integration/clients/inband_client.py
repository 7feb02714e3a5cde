#!/usr/bin/env python3
"""inband_client.py - a plaintext client of many system-call shapes for
inband_adv.sh, run under tlsshim with a `protocol =` rule.  It speaks its
protocol in clear, as an unmodified program does.

    inband_client.py PORT PROTO SHAPE

PROTO: smtp imap pop3 (text), mysql, pg, raw (send one line, close).
SHAPE (text and raw): block, poll, epollet.  mysql: see MYSQL_SHAPES.
pg: sslgss, together.

Prints "greeting ..."/"note ..." lines, then "ok", or "error NAME
elapsed=SECONDS" (exit 1): NAME is the errno's name, or a word.
"""
import errno
import fcntl
import os
import select
import socket
import struct
import sys
import termios
import time

PORT, PROTO, SHAPE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
T0 = time.monotonic()
LIMIT = 20.0


def out(*a):
    print(*a, flush=True)


def die(word):
    out("error %s elapsed=%.2f" % (word, time.monotonic() - T0))
    sys.exit(1)


def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if getattr(e, "errno", None) else type(e).__name__


class Stream:
    """Blocking, or non-blocking with poll() or an edge-triggered epoll."""

    def __init__(self, shape):
        self.shape = shape = {"fork": "poll", "shutwr": "poll", "shutwr_early": "poll"}.get(shape, shape)
        self.s = socket.socket()
        self.buf = b""
        if shape == "block":
            try:
                self.s.connect(("127.0.0.1", PORT))
            except OSError as e:
                die(ename(e))
            return
        self.s.setblocking(False)
        if shape == "epollet":
            self.ep = select.epoll()
            self.ep.register(self.s.fileno(), select.EPOLLIN | select.EPOLLOUT | select.EPOLLET)
        else:
            self.p = select.poll()
        try:
            self.s.connect(("127.0.0.1", PORT))
        except BlockingIOError:
            pass
        except OSError as e:
            die(ename(e))
        if SHAPE == "shutwr_early":
            # shutdown(SHUT_WR) while the exchange has not even begun.
            self.s.shutdown(socket.SHUT_WR)
        self.wait(False)
        err = self.s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            die(errno.errorcode.get(err, str(err)))

    def wait(self, for_read):
        left = LIMIT - (time.monotonic() - T0)
        if left <= 0:
            die("STALL")
        if self.shape == "epollet":
            # Edge-triggered: only called after EAGAIN, as the man page says.
            if not self.ep.poll(left):
                die("STALL")
            return
        self.p.register(self.s.fileno(), select.POLLIN if for_read else select.POLLOUT)
        if not self.p.poll(left * 1000):
            die("STALL")

    def recv(self, n=4096):
        while True:
            try:
                return self.s.recv(n)
            except (BlockingIOError, InterruptedError):
                self.wait(True)
            except OSError as e:
                die(ename(e))

    def send(self, data):
        while data:
            try:
                n = self.s.send(data)
                data = data[n:]
            except (BlockingIOError, InterruptedError):
                self.wait(False)
            except OSError as e:
                die(ename(e))

    def line(self):
        while b"\n" not in self.buf:
            b = self.recv()
            if not b:
                die("EOF")
            self.buf += b
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def smtp_reply(self):
        lines = b""
        while True:
            line = self.line()
            lines += line
            if len(line) < 4 or line[3:4] != b"-":
                return lines


def text(proto):
    st = Stream(SHAPE)
    if SHAPE == "fork":
        # A child forked in the middle of the exchange closes its copy and
        # exits normally: the parent's connection goes on.
        pid = os.fork()
        if pid == 0:
            st.s.close()
            sys.exit(0)
        os.waitpid(pid, 0)
    if SHAPE in ("shutwr", "shutwr_early"):
        # The program ends its sending before the exchange is over: the
        # greeting still comes, the server sees the end inside TLS.
        # (shutwr_early shut it at connect already: a second shutdown of
        # a connection the server has closed is ENOTCONN, as over TCP.)
        if SHAPE == "shutwr":
            st.s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            b = st.recv()
            if not b:
                break
            data += b
        out("greeting %r" % data)
        out("ok")
        return
    if proto == "smtp":
        out("greeting %r" % st.smtp_reply())
        st.send(b"EHLO client.test\r\n")
        out("ehlo %r" % st.smtp_reply())
        st.send(b"QUIT\r\n")
        out("quit %r" % st.smtp_reply())
    elif proto == "imap":
        out("greeting %r" % st.line())
        st.send(b"a1 CAPABILITY\r\n")
        while True:
            line = st.line()
            out("capability %r" % line)
            if line.startswith(b"a1 "):
                break
        st.send(b"a2 LOGOUT\r\n")
        while not st.line().startswith(b"a2 "):
            pass
    elif proto == "pop3":
        out("greeting %r" % st.line())
        st.send(b"QUIT\r\n")
        out("quit %r" % st.line())
    else:
        st.send(b"hello-through-the-tunnel\n")
        st.s.shutdown(socket.SHUT_WR)
        while st.recv():
            pass
    out("ok")


# ---- mysql -------------------------------------------------------------------


def handshake_response():
    caps = 0x0200 | 0x8000 | 0x80000 | 0x0001 | 0x0004 | 0x0008 | 0x0200000  # no CLIENT_SSL
    p = (struct.pack("<IIB", caps, 1 << 24, 0x2d) + b"\x00" * 23 + b"tester\x00" +
         b"\x14" + bytes(range(20)) + b"appdb\x00" + b"mysql_native_password\x00")
    return struct.pack("<I", len(p))[:3] + b"\x01" + p


COM_PING = b"\x01\x00\x00\x00\x0e"
COM_QUIT = b"\x01\x00\x00\x00\x01"


def read_greeting_block(s, how):
    """The server greeting (as the program sees it), read HOW."""
    if how == "peek":
        head = s.recv(4, socket.MSG_PEEK)
        out("note peeked %d" % len(head))
        if len(head) < 4:
            head += s.recv(4 - len(head), socket.MSG_PEEK | socket.MSG_WAITALL)
    data = b""
    if how == "onebyte":
        while len(data) < 4 or len(data) < 4 + struct.unpack("<I", data[:3] + b"\x00")[0]:
            b = s.recv(1)
            if not b:
                die("EOF")
            data += b
        return data
    while len(data) < 4 or len(data) < 4 + struct.unpack("<I", data[:3] + b"\x00")[0]:
        if how == "readv":
            a, b = bytearray(3), bytearray(200)
            n = os.readv(s.fileno(), [a, b])
            b = (bytes(a) + bytes(b))[:n]
        elif how == "recvmsg":
            b = s.recvmsg(4096)[0]
        else:
            b = s.recv(4096)
        if not b:
            die("EOF")
        data += b
    return data


def greeting_caps(g):
    p = g[4:]
    nul = p.index(b"\x00", 1)
    return struct.unpack("<H", p[nul + 1 + 4 + 9:nul + 1 + 4 + 9 + 2])[0]


def read_packet(s):
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack("<I", data[:3] + b"\x00")[0]:
        try:
            b = s.recv(4096)
        except BlockingIOError:
            select.select([s], [], [], LIMIT)
            continue
        if not b:
            die("EOF")
        data += b
    return data


def mysql_block():
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", PORT))
    except OSError as e:
        die(ename(e))
    try:
        return mysql_block_on(s)
    except OSError as e:
        die(ename(e))


def mysql_block_on(s):
    how = SHAPE if SHAPE in ("peek", "onebyte", "readv", "recvmsg") else "plain"
    if SHAPE == "fork":
        pid = os.fork()
        if pid == 0:
            # The child does the whole exchange; the parent only waits.
            g = read_greeting_block(s, "plain")
            s.sendall(handshake_response())
            ok = read_packet(s)
            os.write(1, b"note child ok-seq=%d first=%02x\n" % (ok[3], ok[4]))
            s.sendall(COM_QUIT)
            os._exit(0)
        _, st = os.waitpid(pid, 0)
        if st != 0:
            die("CHILD-%d" % st)
        s.close()
        out("ok")
        return
    g = read_greeting_block(s, how)
    out("greeting len=%d caps=0x%04x" % (len(g), greeting_caps(g)))
    if SHAPE == "slow":
        time.sleep(1)
    if SHAPE == "shut_early":
        s.shutdown(socket.SHUT_WR)
        out("note shut_early done")
    if SHAPE == "readagain":
        try:
            b = s.recv(1)
            out("note readagain got %r" % b)
        except OSError as e:
            die(ename(e))
    resp = handshake_response()
    if SHAPE == "write1":
        for i in range(len(resp)):
            if s.send(resp[i:i + 1]) != 1:
                die("SHORT")
    elif SHAPE == "together":
        n = s.send(resp + COM_PING)
        out("note together sent=%d of %d response=%d" % (n, len(resp) + len(COM_PING), len(resp)))
        s.sendall((resp + COM_PING)[n:])
    else:
        s.sendall(resp)
    if SHAPE == "close":
        s.close()
        out("ok")
        return
    if SHAPE in ("shutwr", "shutwr_early"):
        s.shutdown(socket.SHUT_WR)
    ok = read_packet(s)
    out("note ok-seq=%d first=%02x" % (ok[3], ok[4]))
    if SHAPE != "shutwr":
        s.sendall(COM_QUIT)
    s.close()
    out("ok")


def mysql_nonblock():
    """The whole exchange non-blocking: poll, edge-triggered epoll, or
    FIONREAD after the wake-up; readagain_nb reads once more first."""
    st = Stream("epollet" if SHAPE == "epollet" else "poll")
    s = st.s
    g = b""
    while len(g) < 4 or len(g) < 4 + struct.unpack("<I", g[:3] + b"\x00")[0]:
        if SHAPE == "fionread" and not g:
            st.wait(True)
            n = struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
            out("note fionread %d" % n)
        b = st.recv()
        if not b:
            die("EOF")
        g += b
    out("greeting len=%d caps=0x%04x" % (len(g), greeting_caps(g)))
    if SHAPE == "readagain_nb":
        try:
            s.recv(1)
            out("note readagain returned data")
        except BlockingIOError:
            out("note readagain EAGAIN")
        except OSError as e:
            die(ename(e))
    st.send(handshake_response())
    ok = b""
    while len(ok) < 4 or len(ok) < 4 + struct.unpack("<I", ok[:3] + b"\x00")[0]:
        b = st.recv()
        if not b:
            die("EOF")
        ok += b
    out("note ok-seq=%d first=%02x" % (ok[3], ok[4]))
    st.send(COM_QUIT)
    s.close()
    out("ok")


# ---- postgres ------------------------------------------------------------------

SSLREQ = bytes.fromhex("0000000804d2162f")
GSSREQ = bytes.fromhex("0000000804d21630")


def startup():
    p = struct.pack(">I", 196608) + b"user\x00tester\x00database\x00appdb\x00\x00"
    return struct.pack(">I", 4 + len(p)) + p


def pg():
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", PORT))
        if SHAPE == "together":
            n = s.send(SSLREQ + startup())
            out("note together sent=%d" % n)
            out("note answer %r" % s.recv(1))
            s.sendall((SSLREQ + startup())[n:])
        else:
            s.sendall(SSLREQ)
            out("note answer %r" % s.recv(1))
            s.sendall(GSSREQ)
            out("note answer %r" % s.recv(1))
            s.sendall(startup())
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        try:
            s.recv(100)
        except socket.timeout:
            pass
    except OSError as e:
        die(ename(e))
    out("ok")


if PROTO in ("smtp", "imap", "pop3", "raw"):
    text(PROTO)
elif PROTO == "mysql":
    if SHAPE in ("poll", "epollet", "fionread", "readagain_nb"):
        mysql_nonblock()
    else:
        mysql_block()
elif PROTO == "pg":
    pg()
else:
    die("usage")
