#!/usr/bin/env python3
"""mail_fetch.py -- read message 1 over PLAIN IMAP or POP3 (never STARTTLS
or STLS), with the standard library's blocking clients.

usage: mail_fetch.py imaplib|poplib HOST PORT USER PASSWORD

Prints the server's capabilities as the client saw them, one per line
("capability=NAME"; for IMAP those after LOGIN are printed too, as
"capability-after=NAME"), then the message, one "body=LINE" per line.
Exits 0 when the message was read; on a failure prints "error=..." and
exits 1."""

import imaplib
import poplib
import sys


def with_imaplib(host, port, user, password):
    """IMAP4 (plain): CAPABILITY, LOGIN, SELECT, FETCH 1, LOGOUT."""
    m = imaplib.IMAP4(host, port, timeout=20)
    for cap in m.capabilities:
        print("capability=%s" % cap)
    m.login(user, password)
    typ, data = m.capability()
    for cap in data[0].decode().split():
        print("capability-after=%s" % cap)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY[])")
    if typ != "OK" or not data or not isinstance(data[0], tuple):
        raise RuntimeError("FETCH: %s %r" % (typ, data))
    for line in data[0][1].decode(errors="replace").splitlines():
        print("body=%s" % line)
    m.logout()


def with_poplib(host, port, user, password):
    """POP3 (plain): CAPA, USER/PASS, RETR 1, QUIT."""
    p = poplib.POP3(host, port, timeout=20)
    print("greeting=%s" % p.getwelcome().decode(errors="replace"))
    for cap in p.capa():
        print("capability=%s" % cap)
    p.user(user)
    p.pass_(password)
    resp, lines, _ = p.retr(1)
    for line in lines:
        print("body=%s" % line.decode(errors="replace"))
    p.quit()


def main():
    mode, host, port, user, password = sys.argv[1:6]
    try:
        if mode == "imaplib":
            with_imaplib(host, int(port), user, password)
        else:
            with_poplib(host, int(port), user, password)
    except Exception as e:  # the failure is the test's evidence
        print("error=%s: %s" % (type(e).__name__, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
