#!/usr/bin/env python3
"""inband_server.py - a HOSTILE or broken server for the in-band
negotiation (inband_adv.sh): it plays the plaintext part of postgres, smtp,
imap, pop3, ldap, mysql or an HTTP proxy the way MODE says (trickling,
silent, closing, injecting, odd splits, odd encodings), then, where the mode
goes on to TLS, hands the socket to python's ssl module (a real TLS 1.3
server) and records what arrived inside TLS.

    inband_server.py PORTFILE LOG MODE CERT KEY

Each connection N writes, when it ends, one line to LOG:
    cN done plain=HEX tls=VERSION|- tlsin=HEX end=WORDS
plain: every byte received before TLS (in clear); tlsin: every byte
received inside TLS; end: how it ended.  Lines "cN note TEXT" come before.
"""
import ssl
import struct
import sys
import threading
import time

from listener import listen, serve_forever

PORTFILE, LOG, MODE, CERT, KEY = sys.argv[1:6]
lock = threading.Lock()


def log(line):
    with lock:
        with open(LOG, "a") as f:
            f.write(line + "\n")


class Conn:
    def __init__(self, sock, n):
        self.s, self.n = sock, n
        self.plain = bytearray()
        self.tlsin = bytearray()
        self.tls = "-"
        self.end = []

    def note(self, text):
        log("c%d note %s" % (self.n, text))

    def recv_exact(self, n, timeout=10):
        """Exactly N bytes in clear (never more: a ClientHello may follow)."""
        self.s.settimeout(timeout)
        buf = bytearray()
        while len(buf) < n:
            b = self.s.recv(n - len(buf))
            if not b:
                raise EOFError("eof in clear after %d bytes" % len(buf))
            buf += b
            self.plain += b
        return bytes(buf)

    def read_plain(self, timeout):
        """Add what the client sends in clear to self.plain until EOF (an
        OSError, a timeout included, propagates; what came stays)."""
        self.s.settimeout(timeout)
        while True:
            b = self.s.recv(4096)
            if not b:
                break
            self.plain += b

    def recv_line(self, timeout=10):
        """One line in clear, byte by byte (nothing past its LF is read)."""
        buf = bytearray()
        while not buf.endswith(b"\n"):
            buf += self.recv_exact(1, timeout)
        return bytes(buf)

    def send(self, data, split=None, pause=0.05):
        """Send DATA, cut at the offsets SPLIT with a pause between."""
        cuts = [0] + list(split or []) + [len(data)]
        for a, b in zip(cuts, cuts[1:]):
            if b > a:
                self.s.sendall(data[a:b])
                if b < len(data):
                    time.sleep(pause)

    def trickle(self, data, every=0.1):
        for i in range(len(data)):
            self.s.sendall(data[i:i + 1])
            time.sleep(every)

    def start_tls(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(CERT, KEY)
        self.s.settimeout(10)
        self.t = ctx.wrap_socket(self.s, server_side=True, suppress_ragged_eofs=False)
        self.tls = self.t.version()

    def tls_recv(self, n=65536):
        b = self.t.recv(n)
        self.tlsin += b
        return b

    def tls_line(self):
        buf = bytearray()
        while not buf.endswith(b"\n"):
            b = self.tls_recv(1)
            if not b:
                raise EOFError("eof inside TLS")
            buf += b
        return bytes(buf)

    def tls_drain(self):
        """Record what comes inside TLS until the client's end."""
        try:
            while self.tls_recv():
                pass
            self.end.append("tls-eof")
            self.t.unwrap()
        except (OSError, ssl.SSLError) as e:
            self.end.append("tls-error:%s" % type(e).__name__)

    def finish(self):
        log("c%d done plain=%s tls=%s tlsin=%s end=%s" % (
            self.n, self.plain.hex() or "-", self.tls, self.tlsin.hex() or "-",
            ",".join(self.end) or "-"))


# ---- the plaintext parts ---------------------------------------------------

SMTP_GREET = b"220 hostile.test ESMTP ready\r\n"
SMTP_EHLO = b"250-hostile.test hello\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 HELP\r\n"


def smtp_inside(c):
    """A minimal SMTP server inside TLS: 250 to all, DATA to the dot, 221."""
    data = False
    while True:
        line = c.tls_line()
        if data:
            if line == b".\r\n":
                data = False
                c.t.sendall(b"250 queued\r\n")
            continue
        verb = line[:4].upper()
        if verb == b"QUIT":
            c.t.sendall(b"221 bye\r\n")
            c.end.append("quit")
            return
        if verb == b"DATA":
            data = True
            c.t.sendall(b"354 go on\r\n")
        elif verb == b"EHLO":
            c.t.sendall(b"250-hostile.test inside\r\n250 HELP\r\n")
        else:
            c.t.sendall(b"250 ok\r\n")


def smtp(c, greet=SMTP_GREET, ehlo=SMTP_EHLO, go=b"220 go ahead\r\n", split=None,
         inject=None, inject_after=None, close_at=None):
    if close_at == "greeting":
        return c.end.append("closed-at-greeting")
    c.send(greet, split and split.get("greet"))
    if close_at == "ehlo":
        c.recv_line()
        return c.end.append("closed-at-ehlo")
    line = c.recv_line()
    c.note("ehlo %r" % line)
    c.send(ehlo, split and split.get("ehlo"))
    line = c.recv_line()
    c.note("starttls %r" % line)
    if close_at == "starttls":
        return c.end.append("closed-at-starttls")
    c.s.sendall(go + (inject or b""))
    if inject_after:
        time.sleep(0.2)
        c.s.sendall(inject_after)
    c.start_tls()
    smtp_inside(c)


def imap(c, greet=b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hostile ready\r\n",
         untagged=b"", inject=None, inject_after=None):
    c.s.sendall(greet)
    line = c.recv_line()
    c.note("starttls %r" % line)
    tag = line.split(b" ")[0]
    c.send(untagged + tag + b" OK Begin TLS now\r\n" + (inject or b""), [len(untagged)] if untagged else None)
    if inject_after:
        time.sleep(0.2)
        c.s.sendall(inject_after)
    c.start_tls()
    while True:
        line = c.tls_line()
        tag = line.split(b" ")[0]
        if b"LOGOUT" in line.upper():
            c.t.sendall(b"* BYE\r\n" + tag + b" OK LOGOUT done\r\n")
            c.end.append("logout")
            return
        c.t.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")


def pop3(c, inject=None, inject_after=None):
    c.s.sendall(b"+OK hostile POP3 ready\r\n")
    line = c.recv_line()
    c.note("stls %r" % line)
    c.s.sendall(b"+OK Begin TLS\r\n" + (inject or b""))
    if inject_after:
        time.sleep(0.2)
        c.s.sendall(inject_after)
    c.start_tls()
    while True:
        line = c.tls_line()
        if line.upper().startswith(b"QUIT"):
            c.t.sendall(b"+OK bye\r\n")
            c.end.append("quit")
            return
        c.t.sendall(b"+OK\r\nUSER\r\n.\r\n" if line.upper().startswith(b"CAPA") else b"+OK\r\n")


def postgres(c, answer=b"S"):
    req = c.recv_exact(8)
    c.note("sslrequest %s" % req.hex())
    c.s.sendall(answer)
    c.start_tls()
    c.tls_drain()


def ber_len4(n):
    return b"\x84" + struct.pack(">I", n)


def ldap_inside(c):
    """Inside TLS: BindResponse to a bind, SearchResultDone to a search,
    end at an unbind (each message's ID echoed)."""
    while True:
        head = c.tls_recv(2)
        if len(head) < 2:
            c.end.append("tls-eof")
            return
        while len(head) < 2:
            head += c.tls_recv(2 - len(head))
        if head[1] & 0x80:
            k = head[1] & 0x7f
            lb = b""
            while len(lb) < k:
                lb += c.tls_recv(k - len(lb))
            n = int.from_bytes(lb, "big")
        else:
            n = head[1]
        body = b""
        while len(body) < n:
            body += c.tls_recv(n - len(body))
        idlen = body[1]
        msgid = body[2:2 + idlen]
        op = body[2 + idlen]
        idfield = b"\x02" + bytes([idlen]) + msgid
        done = b"\x0a\x01\x00\x04\x00\x04\x00"
        if op == 0x42:
            c.end.append("unbind")
            c.tls_drain()
            return
        if op == 0x60:
            resp = b"\x61" + bytes([len(done)]) + done
        else:
            resp = b"\x65" + bytes([len(done)]) + done
        msg = idfield + resp
        c.t.sendall(b"\x30" + bytes([len(msg)]) + msg)


def ldap(c, long_lengths=True):
    req = c.recv_exact(31)
    c.note("starttls-request %s" % req.hex())
    if long_lengths:
        # Every length in the 0x84 form (four length bytes), as some
        # directories write them.
        op = b"\x0a" + ber_len4(1) + b"\x00" + b"\x04" + ber_len4(0) + b"\x04" + ber_len4(0)
        body = b"\x02" + ber_len4(1) + b"\x01" + b"\x78" + ber_len4(len(op)) + op
        resp = b"\x30" + ber_len4(len(body)) + body
    else:
        resp = bytes.fromhex("300c02010178070a010004000400")
    c.send(resp, [3, 9])
    c.start_tls()
    ldap_inside(c)


MYSQL_SSL = 0x0800


def mysql_greeting(caps=0xf7ff | MYSQL_SSL):
    p = (b"\x0a" + b"5.5.5-10.11.6-MariaDB-hostile\x00" + struct.pack("<I", 7) + b"abcdefgh\x00" +
         struct.pack("<H", caps & 0xffff) + b"\x2d" + struct.pack("<H", 2) +
         struct.pack("<H", 0x81bf) + b"\x15" + b"\x00" * 6 + struct.pack("<I", 0) +
         b"ijklmnopqrst\x00" + b"mysql_native_password\x00")
    return struct.pack("<I", len(p))[:3] + b"\x00" + p


def mysql(c, chatty=False):
    c.s.sendall(mysql_greeting())
    if chatty:
        # A byte in the program's turn (the server must wait for it).
        time.sleep(0.3)
        c.s.sendall(b"\x00")
        c.read_plain(5)
        return c.end.append("chatty-eof")
    req = c.recv_exact(36)
    c.note("sslrequest %s" % req.hex())
    c.start_tls()
    # The program's HandshakeResponse, as it arrives inside TLS.
    head = b""
    while len(head) < 4:
        b = c.tls_recv(4 - len(head))
        if not b:
            c.end.append("tls-eof-before-response")
            return
        head += b
    n = struct.unpack("<I", head[:3] + b"\x00")[0]
    body = b""
    while len(body) < n:
        b = c.tls_recv(n - len(body))
        if not b:
            c.end.append("tls-eof-in-response")
            return
        body += b
    c.note("response seq=%d len=%d" % (head[3], n))
    # OK, sequence 3 (the program counts it as 2).
    ok = b"\x00\x00\x00\x02\x00\x00\x00"
    try:
        c.t.sendall(struct.pack("<I", len(ok))[:3] + bytes([head[3] + 1]) + ok)
    except OSError:
        c.end.append("ok-not-sent")
    c.tls_drain()


# ---- the proxy -----------------------------------------------------------------


def proxy(c, status=b"HTTP/1.1 200 Connection established\r\n\r\n", then="tls", inject=None):
    req = bytearray()
    while not req.endswith(b"\r\n\r\n"):
        req += c.recv_exact(1)
    c.note("connect %r" % bytes(req).split(b"\r\n")[0])
    c.s.sendall(status + (inject or b""))
    if then == "tls":
        c.start_tls()
        c.tls_drain()
    elif then == "read":
        # A refusal: record whatever else the client sends in clear.
        try:
            c.read_plain(5)
            c.end.append("eof")
        except OSError as e:
            c.end.append("error:%s" % type(e).__name__)


# ---- the modes -------------------------------------------------------------------


def trickle(c):
    c.trickle(b"220 " + b"x" * 200 + b"\r\n")
    c.end.append("trickled")


def longline(c):
    c.s.sendall(b"220 " + b"y" * 3000)
    time.sleep(3)
    c.end.append("longline")


def longreply(c):
    for _ in range(9):
        c.s.sendall(b"220-" + b"z" * 1000 + b"\r\n")
    time.sleep(3)
    c.end.append("longreply")


def silent(c):
    try:
        c.read_plain(30)
    except OSError:
        pass
    c.end.append("silent")


MODES = {
    "smtp": lambda c: smtp(c),
    # Greeting and EHLO reply multi-line, cut in the middle of words, of
    # codes, between CR and LF.
    "smtp_split": lambda c: smtp(
        c, greet=b"220-hostile.test first line\r\n220-second line\r\n220 third\r\n",
        split={"greet": [1, 3, 4, 29, 30, 41], "ehlo": [5, 26, 27, 40, 44, 46, 60]}),
    "smtp_trickle": trickle,
    "silent": silent,
    "smtp_close_greeting": lambda c: smtp(c, close_at="greeting"),
    "smtp_close_ehlo": lambda c: smtp(c, close_at="ehlo"),
    "smtp_close_starttls": lambda c: smtp(c, close_at="starttls"),
    "smtp_longline": longline,
    "smtp_longreply": longreply,
    "smtp_nostarttls": lambda c: smtp(c, ehlo=b"250-hostile.test\r\n250-XSTARTTLS\r\n250 STARTTLSX\r\n"),
    "smtp_inject": lambda c: smtp(c, inject=b"250 injected\r\n"),
    "smtp_inject_late": lambda c: smtp(c, inject_after=b"250 injected\r\n"),
    "imap_untagged": lambda c: imap(
        c, untagged=b"* CAPABILITY IMAP4rev1 STARTTLS\r\n* OK still thinking\r\n* NO [ALERT] odd\r\n"),
    "imap_inject": lambda c: imap(c, inject=b"* OK injected\r\n"),
    "imap_inject_late": lambda c: imap(c, inject_after=b"* OK injected\r\n"),
    "pop3_inject": lambda c: pop3(c, inject=b"+OK injected\r\n"),
    "pop3_inject_late": lambda c: pop3(c, inject_after=b"+OK injected\r\n"),
    "pop3": lambda c: pop3(c),
    "pg": lambda c: postgres(c),
    "pg_inject": lambda c: postgres(c, answer=b"SR\x00\x00\x00\x08\x00\x00\x00\x00"),
    "pg_n": lambda c: postgres(c, answer=b"N"),
    "ldap84": lambda c: ldap(c),
    "tls": lambda c: (c.start_tls(), c.t.sendall(b"220 tls-greeting\r\n"), c.tls_drain()),
    "mysql": mysql,
    "mysql_chatty": lambda c: mysql(c, chatty=True),
    "proxy_headers": lambda c: proxy(c, b"HTTP/1.1 200 Connection established\r\nVia: 1.1 hostile\r\n"
                                        b"Proxy-Agent: hostile/1.0\r\nX-Long: " + b"h" * 1500 + b"\r\n\r\n"),
    "proxy_http10": lambda c: proxy(c, b"HTTP/1.0 200 OK\r\n\r\n"),
    "proxy_1xx": lambda c: proxy(c, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n",
                                 then="read"),
    "proxy_407": lambda c: proxy(c, b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                    b"Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
                                 then="read"),
    "proxy_403": lambda c: proxy(c, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", then="read"),
    "proxy_inject": lambda c: proxy(c, inject=b"\x16\x03\x03\x00\x02\x02\x28"),
}


def serve(sock, n):
    c = Conn(sock, n)
    try:
        MODES[MODE](c)
    except (OSError, EOFError, ssl.SSLError) as e:
        c.end.append("%s:%s" % (type(e).__name__, str(e).replace(" ", "_")[:80]))
    finally:
        if c.tls != "-":
            try:
                c.t.unwrap()
            except (OSError, ValueError, ssl.SSLError):
                pass
        c.finish()
        try:
            sock.close()
        except OSError:
            pass


def main():
    serve_forever(listen(PORTFILE), serve, threaded=True)


if __name__ == "__main__":
    main()
