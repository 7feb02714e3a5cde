#!/usr/bin/env python3
"""A TCP "server" that accepts connections and never sends a byte: what a
hung TLS server looks like mid-handshake.  Listens on 127.0.0.1 (an
ephemeral port, written to PORTFILE), and for each connection appends one
line to LOG when the peer goes away (or after HOLD seconds):

  conn n=N bytes=TOTAL first_hex=HEX(first 16 bytes) plain_http=0|1 end=eof|reset|hold

plain_http=1 if the bytes received contain an HTTP request line ("GET ",
"POST ", "HTTP/1.").

usage: silent_server.py PORTFILE LOG [HOLD]"""
import socket
import sys
import threading

portfile, logfile = sys.argv[1], sys.argv[2]
hold = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
lock = threading.Lock()
count = 0


def serve(conn, n):
    data, end = b"", "hold"
    conn.settimeout(hold)
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                end = "eof"
                break
            data += chunk
    except socket.timeout:
        end = "hold"
    except ConnectionResetError:
        end = "reset"
    finally:
        conn.close()
    plain = any(m in data for m in (b"GET ", b"POST ", b"HTTP/1."))
    line = f"conn n={n} bytes={len(data)} first_hex={data[:16].hex() or '-'} plain_http={int(plain)} end={end}\n"
    with lock:
        with open(logfile, "a") as f:
            f.write(line)


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(16)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
import os
os.rename(portfile + ".tmp", portfile)
while True:
    c, _ = srv.accept()
    count += 1
    threading.Thread(target=serve, args=(c, count), daemon=True).start()
