#!/usr/bin/env python3
"""A plain, unmodified-style HTTP server for inbound tests: binds
127.0.0.1:PORT (argv[1]), serves files from argv[2] with one thread per
connection, logs "CLIENT_ADDR:PORT REQUEST_LINE" for every request to
argv[3], and writes PORT to argv[4] once it listens.  It knows nothing
about TLS: under tlsshim its accepted sockets speak TLS 1.3."""
import functools
import http.server
import sys

port, root, log, portfile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        with open(log, "a") as f:
            f.write("%s:%d %s\n" % (self.client_address[0], self.client_address[1], self.requestline))


srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Handler, directory=root))
with open(portfile, "w") as f:
    f.write(str(port))
srv.serve_forever()
