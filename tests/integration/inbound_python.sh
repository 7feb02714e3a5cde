#!/bin/bash
# inbound_python.sh -- inbound, threads per connection with blocking I/O:
# python3 -m http.server (ThreadingHTTPServer) runs unmodified under
# tlsshim with a `listen` rule; real TLS clients fetch from it.
# Proves, from both ends:
#   * curl (verifying with ca.pem, from $SRC) saw TLS 1.3 and a verified
#     certificate and got the file's exact bytes (a small file and 1 MiB);
#   * python's ssl module saw TLSv1.3 too;
#   * the server's own log shows each plaintext request line ("GET /...")
#     and the client's real address ($SRC, 127.0.0.2 where the loopback
#     allows it: no proxy on 127.0.0.1 could give the daemon that address);
#   * tlsshim logged the inbound connection with the client's address.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_cmd curl
need_tlsshim ca.pem server.pem server-key.pem

SRC=$(client_addr)
re_src=${SRC//./\\.}
mkdir -p "$WORK/www"
echo "hello inbound $$" >"$WORK/www/file.txt"
head -c 1048576 /dev/urandom >"$WORK/www/big.bin"

start_inbound web -- "$PYTHON" -u -m http.server @PORT@ --bind 127.0.0.1 --directory "$WORK/www"
diag "python http.server on 127.0.0.1:$web_port, clients from $SRC"

# ==== 1. curl, small file ===========================================================
https_get small "https://localhost:$web_port/file.txt"
ok $? "curl https GET /file.txt exits 0"
check "curl: TLS 1.3 and a verified certificate" saw_tls13 "$WORK/small.trace"
is "$(cat "$WORK/small.body")" "hello inbound $$" "curl: the file's content"
check "server log: GET /file.txt from $SRC" \
    wait_for_match "$web_out" "^$re_src - - \[.*\] \"GET /file\.txt HTTP/1\.1\" 200"

# ==== 2. curl, 1 MiB =================================================================
https_get big "https://localhost:$web_port/big.bin"
ok $? "curl https GET /big.bin exits 0"
check "curl (big): TLS 1.3 and a verified certificate" saw_tls13 "$WORK/big.trace"
is "$(sha256sum <"$WORK/big.body" | cut -d' ' -f1)" "$(sha256sum <"$WORK/www/big.bin" | cut -d' ' -f1)" \
    "curl (big): sha256 of the 1 MiB body matches the file"
check "server log: GET /big.bin from $SRC" \
    wait_for_match "$web_out" "^$re_src - - \[.*\] \"GET /big\.bin HTTP/1\.1\" 200"

# ==== 3. python ssl client ===========================================================
out=$("$PYTHON" "$CLIENTS/inbound_client.py" --ca "$CERTS/ca.pem" --source "$SRC" \
    --send 'GET /file.txt?py HTTP/1.0\r\n\r\n' 127.0.0.1 "$web_port")
ok $? "python ssl client exits 0"
like "$out" '^version=TLSv1\.3$' "python ssl: TLSv1.3"
like "$out" '^verified=yes$' "python ssl: certificate verified (localhost, ca.pem)"
like "$out" '^reply=HTTP/1\.0 200 ' "python ssl: HTTP 200"
like "$out" "^reply=hello inbound $$\$" "python ssl: the file's content"
check "server log: GET /file.txt?py from $SRC" \
    wait_for_match "$web_out" "^$re_src - - \[.*\] \"GET /file\.txt\?py HTTP/1\.0\" 200"

# ==== 4. tlsshim's own line ==========================================================
small=$(cat "$WORK/small.local")
check "tlsshim log: the inbound connection from $small accepted, TLS1.3, SNI localhost" \
    wait_for_match "$web_tlog" "info: rule \[web\] ${small//./\\.} -> 127\.0\.0\.1:$web_port: accepted sni=localhost version=TLS1\.3 "

done_testing
