#!/usr/bin/env python3
"""A plain HTTP GET that also reports where its socket really goes.

  proxy_get.py HOST PORT PATH

Connects to HOST:PORT, sends "GET PATH HTTP/1.1" in clear, reads the whole
answer, and before closing looks its own socket up in /proc/net/tcp and
tcp6 (by inode): the kernel's remote address, not getpeername(), which an
interposer may answer.  Prints, one per line:
  local=ADDR:PORT        getsockname()
  kernel_peer=ADDR:PORT  the socket's remote end in the kernel's table
  status=LINE            the answer's status line
  body=LINE              each line of the body
or error=TEXT when the connection failed (exit 1)."""
import ipaddress
import os
import socket
import sys


def kernel_peer(sock):
    """ADDR:PORT of SOCK's remote end, from /proc/net/tcp{,6}."""
    inode = os.readlink("/proc/self/fd/%d" % sock.fileno())[len("socket:["):-1]
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            rows = f.read().splitlines()[1:]
        for row in rows:
            f = row.split()
            if f[9] != inode:
                continue
            addr, port = f[2].split(":")
            raw = bytes.fromhex(addr)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(raw)
            if ip.version == 6 and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            return ("[%s]:%d" if ip.version == 6 else "%s:%d") % (ip, int(port, 16))
    return "-"


def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        s = socket.create_connection((host, port), timeout=15)
        local = s.getsockname()
        print("local=%s:%d" % (local[0], local[1]), flush=True)
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                   % (path, host, port)).encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        print("kernel_peer=%s" % kernel_peer(s), flush=True)
        s.close()
    except OSError as e:
        print("error=%s" % e)
        return 1
    head, _, body = data.partition(b"\r\n\r\n")
    print("status=%s" % head.split(b"\r\n")[0].decode("latin-1"))
    for line in body.decode("latin-1").splitlines():
        print("body=%s" % line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
