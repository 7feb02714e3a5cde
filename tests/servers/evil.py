#!/usr/bin/env python3
"""evil.py -- a scriptable MISBEHAVING server for the tlsshim hostile tests.

    evil.py --mode MODE --port-file F --log F [--cert F --key F]
            [--marker STR] [--max-conns N] [--hold SECONDS]

Listens on 127.0.0.1 (ephemeral port, written to --port-file), serves every
connection in its own thread (up to --max-conns, default unlimited) and
appends ONE line per connection to --log when the connection ends:

    conn mode=M raw_in=N raw_out=N tls_record=0|1 plaintext=0|1
         marker_raw=0|1 app_in=N marker_app=0|1 ended=eof|reset|timeout|closed
         note=URLENC

  raw_in     bytes received on the TCP socket (everything, TLS or not)
  tls_record 1 if the first received byte looks like a TLS handshake record
             (0x16 0x03) -- a ClientHello, not plaintext
  plaintext  1 if the RAW bytes contain plaintext-looking application data
             (b"GET ", b"POST ", b"HTTP/1.", b"Host:") -- must stay 0
  marker_raw 1 if the raw bytes contain --marker (the test's unique
             string that only the client's request carries) -- must stay 0
  app_in     decrypted application bytes (TLS modes only, after handshake)
  marker_app 1 if the decrypted bytes contain --marker (proves the request
             went out, encrypted)
  ended      how the client's side ended: eof, reset (ECONNRESET), timeout
             (--hold expired), closed (we closed first and stopped reading)
  note       what this server did (percent-encoded, no spaces)

Modes, raw TCP (no TLS at all):
  reset-handshake   read the ClientHello, then close with RST (SO_LINGER 0)
  silent            read and never answer (until the client closes, or --hold)
  garbage           read the ClientHello, answer "HTTP/1.1 400 Bad Request",
                    then keep reading until the client closes
  close-handshake   read the ClientHello, then close normally (FIN)

Modes, TLS (Python ssl through memory BIOs, so every raw byte in and out
is under our control and can be counted/corrupted):
  stall-handshake   start a TLS 1.3 handshake: send ONLY the first record
                    (ServerHello), then stop answering (until --hold)
  serve             a well-behaved TLS 1.3 HTTP server (Connection: close,
                    close_notify at the end) -- the control, and with a bad
                    --cert the bad-chain/long-chain cases
  tls12             TLS 1.2 only (maximum_version = TLSv1_2)
  alert-midstream   TLS 1.3 handshake, read the request, send the response
                    head and part of the body, then a genuine ENCRYPTED
                    fatal alert (bad_record_mac: we feed OpenSSL a corrupted
                    record, it answers with the alert, we forward it)
  plain-alert       same, but then inject an UNENCRYPTED alert record
                    15 03 03 00 02 02 28 (handshake_failure) -- after the
                    TLS 1.3 handshake that is itself a protocol violation
  truncate          same, but then close the TCP connection without
                    close_notify (FIN, plain close) in the middle of a
                    response that has no Content-Length (read-until-EOF)
  corrupt           same, but flip one byte inside the first application
                    data record of the response (bad AEAD tag -> decryption
                    failure on the client)
"""
import argparse
import errno
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

PLAIN_SIGNS = (b"GET ", b"POST ", b"HTTP/1.", b"Host:", b"host:")
TLS_MODES = ("serve", "stall-handshake", "tls12", "alert-midstream", "plain-alert", "truncate", "corrupt")
RAW_MODES = ("reset-handshake", "silent", "garbage", "close-handshake")

log_lock = threading.Lock()


class Conn:
    def __init__(self, sock, args):
        self.sock = sock
        self.args = args
        self.raw = bytearray()
        self.raw_out = 0
        self.app = bytearray()
        self.ended = "-"
        self.notes = []

    # ---- raw socket helpers ----
    def recv_raw(self, timeout):
        """Read what is there (wait up to TIMEOUT s).  Returns bytes, b"" on
        EOF, None on timeout; sets self.ended on EOF/reset."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.ended = "reset"
            return b""
        except OSError as e:
            self.ended = "error-%s" % errno.errorcode.get(e.errno, e.errno)
            return b""
        if not data:
            self.ended = "eof"
            return b""
        self.raw += data
        return data

    def send_raw(self, data):
        self.sock.sendall(data)
        self.raw_out += len(data)

    def read_client_hello(self, timeout=10):
        """Read until one whole TLS record (the ClientHello) arrived."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.raw) >= 5:
                need = 5 + struct.unpack("!H", bytes(self.raw[3:5]))[0]
                if len(self.raw) >= need:
                    return True
            d = self.recv_raw(max(0.01, deadline - time.time()))
            if d == b"":
                return False
        return False

    def drain_until_close(self, hold):
        """Keep reading (and recording) until the client closes or HOLD s."""
        deadline = time.time() + hold
        while True:
            left = deadline - time.time()
            if left <= 0:
                self.ended = "timeout"
                return
            d = self.recv_raw(left)
            if d == b"":
                return

    # ---- the log line ----
    def log(self):
        raw = bytes(self.raw)
        marker = self.args.marker.encode() if self.args.marker else None
        fields = [
            "mode=%s" % self.args.mode,
            "raw_in=%d" % len(raw),
            "raw_out=%d" % self.raw_out,
            "tls_record=%d" % (1 if raw[:2] == b"\x16\x03" else 0),
            "plaintext=%d" % (1 if any(s in raw for s in PLAIN_SIGNS) else 0),
            "marker_raw=%d" % (1 if marker and marker in raw else 0),
            "app_in=%d" % len(self.app),
            "marker_app=%d" % (1 if marker and marker in bytes(self.app) else 0),
            "ended=%s" % self.ended,
            "note=%s" % (urllib.parse.quote(";".join(self.notes), safe="") or "-"),
        ]
        line = "conn " + " ".join(fields) + "\n"
        with log_lock:
            with open(self.args.log, "a") as f:
                f.write(line)

    # ---- raw modes ----
    def run_raw(self):
        mode = self.args.mode
        if mode == "reset-handshake":
            if self.read_client_hello():
                self.notes.append("got ClientHello, sending RST")
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.ended = "closed"
        elif mode == "close-handshake":
            if self.read_client_hello():
                self.notes.append("got ClientHello, closing (FIN)")
            self.sock.shutdown(socket.SHUT_WR)
            self.drain_until_close(self.args.hold)
        elif mode == "silent":
            self.notes.append("never answering")
            self.drain_until_close(self.args.hold)
        elif mode == "garbage":
            if self.read_client_hello():
                self.send_raw(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                self.notes.append("answered HTTP 400")
            self.drain_until_close(self.args.hold)

    # ---- TLS modes (memory BIOs) ----
    def tls_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self.args.mode == "tls12":
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(self.args.cert, self.args.key)
        return ctx

    def flush(self, obj, outgoing, mangle=None):
        data = outgoing.read()
        if data:
            if mangle:
                data = mangle(data)
            self.send_raw(data)
        return data

    def pump_in(self, incoming, timeout):
        d = self.recv_raw(timeout)
        if d is None:
            raise TimeoutError("client sent nothing for %.0f s" % timeout)
        if d == b"":
            incoming.write_eof()
            return False
        incoming.write(d)
        return True

    def handshake(self, obj, incoming, outgoing):
        deadline = time.time() + 15
        while True:
            try:
                obj.do_handshake()
                self.flush(obj, outgoing)
                return True
            except ssl.SSLWantReadError:
                self.flush(obj, outgoing)
                if time.time() > deadline:
                    raise TimeoutError("handshake timeout")
                if not self.pump_in(incoming, deadline - time.time()):
                    self.notes.append("client closed during handshake")
                    return False
            except ssl.SSLError as e:
                self.flush(obj, outgoing)     # the alert, if any
                self.notes.append("handshake failed: %s" % (e.reason or e))
                return False

    def read_request(self, obj, incoming, outgoing):
        """Read decrypted bytes until the end of an HTTP request head."""
        deadline = time.time() + 15
        while b"\r\n\r\n" not in self.app:
            try:
                chunk = obj.read(65536)
                if not chunk:
                    return False
                self.app += chunk
                continue
            except ssl.SSLWantReadError:
                pass
            self.flush(obj, outgoing)        # session tickets etc.
            if time.time() > deadline:
                raise TimeoutError("no request")
            if not self.pump_in(incoming, deadline - time.time()):
                return False
        return True

    def run_tls(self):
        mode = self.args.mode
        ctx = self.tls_context()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_side=True)
        if mode == "stall-handshake":
            if not self.read_client_hello():
                return
            incoming.write(bytes(self.raw))
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            out = outgoing.read()
            rlen = struct.unpack("!H", out[3:5])[0] if len(out) >= 5 else 0
            self.send_raw(out[:5 + rlen])
            self.notes.append("sent the first record (%d of %d bytes), stalling"
                              % (5 + rlen, len(out)))
            self.drain_until_close(self.args.hold)
            return
        if not self.handshake(obj, incoming, outgoing):
            self.drain_until_close(self.args.hold)
            return
        self.notes.append("handshake %s" % obj.version())
        if not self.read_request(obj, incoming, outgoing):
            self.notes.append("no complete request")
            self.drain_until_close(self.args.hold)
            return
        self.notes.append("request %d bytes" % len(self.app))

        if mode == "serve":
            body = b"hello from evil.py\n"
            obj.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                      % (len(body), body))
            try:
                obj.unwrap()
            except ssl.SSLWantReadError:
                pass
            self.flush(obj, outgoing)
            self.notes.append("served, close_notify sent")
            self.drain_until_close(self.args.hold)
            return

        # A response without Content-Length: only the end of the connection
        # (close_notify) says it is complete.
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
        part = b"partial-body-" + b"x" * 1000 + b"\n"
        obj.write(head + part)
        if mode == "corrupt":
            def mangle(data):
                # flip one byte in the middle of the first application data
                # record (type 23) of this flight
                b = bytearray(data)
                off = 0
                while off + 5 <= len(b):
                    rlen = struct.unpack("!H", bytes(b[off + 3:off + 5]))[0]
                    if b[off] == 23 and rlen > 20:
                        b[off + 5 + rlen // 2] ^= 0x01
                        self.notes.append("flipped byte %d of a %d-byte record" % (rlen // 2, rlen))
                        break
                    off += 5 + rlen
                return bytes(b)
            self.flush(obj, outgoing, mangle)
            self.drain_until_close(self.args.hold)
            return
        self.flush(obj, outgoing)
        self.notes.append("sent head + %d body bytes" % len(part))
        time.sleep(0.2)             # let the client read the partial response
        if mode == "alert-midstream":
            # Make OpenSSL produce a real encrypted fatal alert: feed it a
            # record it cannot decrypt; it answers bad_record_mac.
            incoming.write(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
            try:
                obj.read(1)
            except ssl.SSLError as e:
                self.notes.append("openssl: %s" % (e.reason or e))
            alert = self.flush(obj, outgoing)
            self.notes.append("sent %d-byte encrypted fatal alert" % len(alert or b""))
            if not alert:
                # should not happen; fall back to a plaintext alert
                self.send_raw(b"\x15\x03\x03\x00\x02\x02\x14")
                self.notes.append("fallback plaintext bad_record_mac alert")
            self.drain_until_close(self.args.hold)
        elif mode == "plain-alert":
            self.send_raw(b"\x15\x03\x03\x00\x02\x02\x28")
            self.notes.append("injected plaintext fatal alert handshake_failure")
            self.drain_until_close(self.args.hold)
        elif mode == "truncate":
            self.notes.append("closing TCP without close_notify")
            self.ended = "closed"
            # a plain FIN: shutdown(SHUT_WR), then drain what the client sends
            self.sock.shutdown(socket.SHUT_WR)
            self.drain_until_close(self.args.hold)

    def run(self):
        try:
            if self.args.mode in RAW_MODES:
                self.run_raw()
            else:
                self.run_tls()
        except Exception as e:          # log whatever happened, never die
            self.notes.append("exception %s: %s" % (type(e).__name__, e))
        finally:
            self.log()
            try:
                self.sock.close()
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=RAW_MODES + TLS_MODES)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--marker", default="")
    ap.add_argument("--max-conns", type=int, default=0)
    ap.add_argument("--hold", type=float, default=30.0,
                    help="how long to keep a connection open waiting for the client")
    args = ap.parse_args()
    if args.mode in TLS_MODES and not (args.cert and args.key):
        ap.error("--cert and --key are needed for mode %s" % args.mode)
    if args.mode in TLS_MODES:
        # fail now (not per connection) if the certificate cannot be loaded
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(args.cert, args.key)

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, args.port_file)

    threads = []
    n = 0
    while not args.max_conns or n < args.max_conns:
        s, _ = ls.accept()
        n += 1
        t = threading.Thread(target=Conn(s, args).run, daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
