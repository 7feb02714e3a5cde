#!/usr/bin/env python3
"""One line to an inbound test server, as a real client would send it.

  line_client.py tls PORT CA [mptcp]    python ssl, certificate verified
                                        against CA for "localhost"; sends
                                        "ping\\n", reads one answer line
  line_client.py plain PORT [mptcp]     sends "hello\\n" in clear, prints
                                        what came back

Prints, one per line: port= (its own source port: the server must log
it), proto= (its socket's protocol: 262 for MPTCP), then version=,
verified= and answer= (tls) or got= (plain), or error= when the
connection failed."""
import socket
import ssl
import sys


def connect(port, mptcp):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262 if mptcp else 0)
    s.settimeout(15)
    s.connect(("127.0.0.1", port))
    print("port=%d" % s.getsockname()[1], flush=True)
    print("proto=%d" % s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL), flush=True)
    return s


def tls(port, ca, mptcp):
    ctx = ssl.create_default_context(cafile=ca)
    with ctx.wrap_socket(connect(port, mptcp), server_hostname="localhost") as t:
        print("version=%s" % t.version())
        print("verified=%s" % dict(x[0] for x in t.getpeercert()["subject"])["commonName"])
        t.sendall(b"ping\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = t.recv(100)
            if not chunk:
                break
            data += chunk
        print("answer=%s" % data.decode().strip())


def plain(port, mptcp):
    with connect(port, mptcp) as s:
        s.sendall(b"hello\n")
        print("got=%r" % s.recv(100))


def main():
    try:
        if sys.argv[1] == "tls":
            tls(int(sys.argv[2]), sys.argv[3], sys.argv[4:] == ["mptcp"])
        else:
            plain(int(sys.argv[2]), sys.argv[3:] == ["mptcp"])
    except (OSError, ssl.SSLError) as e:
        print("error=%s" % e)


main()
