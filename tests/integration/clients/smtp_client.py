#!/usr/bin/env python3
"""smtp_client.py -- send one message over PLAIN SMTP (never STARTTLS).

usage: smtp_client.py smtplib|asyncio HOST PORT BODY

smtplib: the standard library's blocking smtplib.SMTP (ehlo, sendmail; no
starttls()).  asyncio: a non-blocking client written here on asyncio
streams, speaking SMTP by hand (EHLO, MAIL, RCPT, DATA, QUIT).

Prints the EHLO reply's keywords one per line ("ehlo=KEYWORD") and the
server's answer to the end of DATA ("queued=REPLY"); exits 0 only when the
server accepted the message.  Every line it reads is printed as
"<- LINE" (the transcript)."""

import asyncio
import smtplib
import sys

FROM = "a@example.test"
TO = "user@example.test"


def message(body):
    """The message text, CRLF line ends."""
    return ("From: %s\r\nTo: %s\r\nSubject: in-band\r\n\r\n%s\r\n" % (FROM, TO, body))


def with_smtplib(host, port, body):
    """Blocking smtplib, plaintext.  Returns the exit status."""
    s = smtplib.SMTP(host, port, local_hostname="client.test", timeout=20)
    code, resp = s.ehlo()
    print("<- %d %s" % (code, resp.decode(errors="replace").replace("\n", " | ")))
    for kw in s.esmtp_features:
        print("ehlo=%s" % kw.upper())
    for verb, arg in (("MAIL", FROM), ("RCPT", TO)):
        code, resp = s.mail(arg) if verb == "MAIL" else s.rcpt(arg)
        print("<- %d %s" % (code, resp.decode(errors="replace")))
        if code != 250:
            raise RuntimeError("%s: %d %s" % (verb, code, resp.decode(errors="replace")))
    code, resp = s.data(message(body).encode())
    print("queued=%d %s" % (code, resp.decode(errors="replace")))
    s.quit()
    return 0 if code == 250 else 1


async def reply(reader):
    """One SMTP reply (its lines); prints them."""
    lines = []
    while True:
        raw = await reader.readline()
        if not raw:
            raise ConnectionError("server closed")
        line = raw.decode(errors="replace").rstrip("\r\n")
        print("<- %s" % line)
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines


async def command(reader, writer, text, want):
    """Send TEXT (a line), read the reply, require code WANT."""
    writer.write(text.encode() + b"\r\n")
    await writer.drain()
    lines = await reply(reader)
    if not lines[-1].startswith(want):
        raise RuntimeError("%r: %s" % (text, lines[-1]))
    return lines


async def with_asyncio(host, port, body):
    """Non-blocking client on asyncio streams.  Returns the exit status."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 20)
    greet = await reply(reader)
    if not greet[-1].startswith("220"):
        return 1
    for line in (await command(reader, writer, "EHLO client.test", "250"))[1:]:
        print("ehlo=%s" % line[4:].split(" ")[0].upper())
    await command(reader, writer, "MAIL FROM:<%s>" % FROM, "250")
    await command(reader, writer, "RCPT TO:<%s>" % TO, "250")
    await command(reader, writer, "DATA", "354")
    writer.write(message(body).encode())
    done = await command(reader, writer, ".", "250")
    print("queued=%s" % done[-1])
    await command(reader, writer, "QUIT", "221")
    writer.close()
    return 0


def main():
    mode, host, port, body = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    try:
        if mode == "smtplib":
            return with_smtplib(host, port, body)
        return asyncio.run(asyncio.wait_for(with_asyncio(host, port, body), 30))
    except Exception as e:  # the failure is the test's evidence
        print("error=%s: %s" % (type(e).__name__, e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
