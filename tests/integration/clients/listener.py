"""listener.py - the listening side the test servers of this directory
share (they import it as a sibling: Python puts a script's directory on
sys.path).

    srv = listen(portfile)                  127.0.0.1, an ephemeral port
    serve_forever(srv, handle)              handle(conn, n) per connection
"""
import os
import socket
import threading


def listen(portfile, host="127.0.0.1", backlog=16, proto=0):
    """A TCP socket (PROTO: e.g. MPTCP) listening on HOST (an IPv6
    address: AF_INET6) at an ephemeral port, SO_REUSEADDR set; the port is
    written to PORTFILE (publish_port), unless PORTFILE is None (the
    caller publishes it when it is ready)."""
    srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, proto)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, 0))
    srv.listen(backlog)
    if portfile is not None:
        publish_port(srv, portfile)
    return srv


def publish_port(srv, portfile):
    """SRV's port written to PORTFILE atomically (the tests wait for the
    file, then read it whole)."""
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)


def serve_forever(srv, handle, threaded=False):
    """Accept on SRV forever; HANDLE(conn, n) each connection (n counts from
    1), one after the other or, THREADED, each in a daemon thread."""
    n = 0
    while True:
        conn, _ = srv.accept()
        n += 1
        if threaded:
            threading.Thread(target=handle, args=(conn, n), daemon=True).start()
        else:
            handle(conn, n)


def read_to_eof(conn, data=b""):
    """DATA plus what CONN sends until EOF or an error (a timeout included)."""
    try:
        while True:
            d = conn.recv(65536)
            if not d:
                break
            data += d
    except OSError:
        pass
    return data


def append_line(path, line):
    """Append LINE and a newline to the file PATH."""
    with open(path, "a") as f:
        f.write(line + "\n")
