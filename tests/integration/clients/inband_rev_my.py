#!/usr/bin/env python3
"""inband_rev_my.py MODE PORT USER PASSWORD: a MySQL client speaking the
protocol by hand, in clear, on a BLOCKING socket to 127.0.0.1:PORT (run
under tlsshim with protocol = mysql), logging in with
mysql_native_password.  Modes:

  twothread  thread A reads the greeting, then calls a blocking recv()
             for the reply to the login; thread B sends the
             HandshakeResponse41 0.3 s later;
  pipeline   the HandshakeResponse41 and a COM_QUERY (sequence 0) go out
             in ONE write before the OK is read;
  silent     reads the greeting, then a blocking recv() without ever
             answering it: prints what that recv returned.

twothread and pipeline then run SHOW STATUS LIKE 'Ssl_version' in the same
session (pipeline: that is the pipelined query) and print
    auth seq=N first=HEX after=SECONDS   (the reply to the login; SECONDS
                                          since the greeting was read)
    row Ssl_version VALUE
Exit status 0 when the query's row arrived, 1 otherwise."""
import hashlib
import socket
import struct
import sys
import threading
import time

CAPS = (0x0001 | 0x0004 | 0x0200 | 0x2000 | 0x8000 | 0x80000)   # long password,
# long flag, protocol 4.1, transactions, secure connection, plugin auth
QUERY = b"SHOW STATUS LIKE 'Ssl_version'"


def recv_exact(s, n):
    """N bytes from S (blocking recv calls); EOFError at end of stream."""
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise EOFError("end of stream after %d bytes" % len(buf))
        buf += d
    return buf


def packet(s):
    """One packet from S: (sequence id, payload)."""
    h = recv_exact(s, 4)
    return h[3], recv_exact(s, h[0] | h[1] << 8 | h[2] << 16)


def frame(seq, payload):
    """PAYLOAD as a packet with sequence id SEQ."""
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def scramble_of(greeting):
    """The 20-byte scramble in a HandshakeV10 greeting."""
    i = greeting.index(b"\0", 1) + 1 + 4       # version, connection id
    part1 = greeting[i:i + 8]
    i += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10        # filler, caps, charset, status, caps, len, reserved
    return part1 + greeting[i:i + 12]


def response(greeting, user, password):
    """A HandshakeResponse41 (sequence 1) for USER with mysql_native_password."""
    pw1 = hashlib.sha1(password.encode()).digest()
    pw2 = hashlib.sha1(scramble_of(greeting) + hashlib.sha1(pw1).digest()).digest()
    auth = bytes(a ^ b for a, b in zip(pw1, pw2))
    body = struct.pack("<IIB", CAPS, 1 << 24, 33) + b"\0" * 23
    body += user.encode() + b"\0" + bytes([len(auth)]) + auth + b"mysql_native_password\0"
    return frame(1, body)


def lenenc_strings(p):
    """The length-encoded strings of a text result row P."""
    out, i = [], 0
    while i < len(p):
        n = p[i]
        i += 1
        if n == 0xfb:
            out.append("NULL")
            continue
        if n == 0xfc:
            n, i = p[i] | p[i + 1] << 8, i + 2
        out.append(p[i:i + n].decode())
        i += n
    return out


def result_rows(s):
    """The rows of a text result set (no CLIENT_DEPRECATE_EOF)."""
    seq, p = packet(s)
    if p[:1] == b"\xff":
        raise RuntimeError("query error: %r" % p[3:])
    for _ in range(p[0]):
        packet(s)                               # column definitions
    packet(s)                                   # EOF
    rows = []
    while True:
        seq, p = packet(s)
        if p[:1] == b"\xfe" and len(p) < 9:
            return rows
        rows.append(lenenc_strings(p))


def main():
    mode, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    s = socket.create_connection(("127.0.0.1", port))
    _, greeting = packet(s)
    t0 = time.monotonic()
    resp = response(greeting, user, password)
    if mode == "silent":
        try:
            d = s.recv(100)
            print("recv returned %d bytes after=%.2f" % (len(d), time.monotonic() - t0))
        except OSError as e:
            print("recv failed: %s after=%.2f" % (e.strerror or e, time.monotonic() - t0))
        return 1
    if mode == "twothread":
        def writer():
            time.sleep(0.3)
            try:
                s.sendall(resp)
                print("writer sent %d bytes after=%.2f" % (len(resp), time.monotonic() - t0), flush=True)
            except OSError as e:
                print("writer failed: %s after=%.2f" % (e, time.monotonic() - t0), flush=True)
        w = threading.Thread(target=writer)
        w.start()
    else:
        s.sendall(resp + frame(0, b"\x03" + QUERY))
    try:
        seq, p = packet(s)
        print("auth seq=%d first=%s after=%.2f" % (seq, p[:1].hex(), time.monotonic() - t0), flush=True)
        if mode == "twothread":
            w.join()
            if p[:1] != b"\x00":
                return 1
            s.sendall(frame(0, b"\x03" + QUERY))
        for row in result_rows(s):
            print("row " + " ".join(row))
    except (OSError, EOFError, RuntimeError) as e:
        print("failed: %s after=%.2f" % (e, time.monotonic() - t0), flush=True)
        return 1
    return 0


sys.exit(main())
