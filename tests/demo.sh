#!/bin/bash
# demo.sh - what tlsshim does, in one minute, on this machine alone.
#
# Makes a throwaway CA, starts a local TLS 1.3 server (tests/servers/tserver, a
# GnuTLS server that reports what it saw), then runs curl -- an unmodified
# plaintext client -- twice in one process through tlsshim, and prints what
# happened on both sides: TLS version, cipher, verified name, resumption.
# Then the other half: python's plain http.server run under tlsshim with a
# four-line `listen` rule, and curl speaking https to it -- curl sees TLS 1.3
# and a verified certificate, the server logs the plain request and the
# client's real address.
#
# Run it with `make demo` from the build tree.
set -eu

builddir=${top_builddir:-$(pwd)}
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
TLSSHIM=${TLSSHIM:-$builddir/src/tlsshim}
TSERVER=${TSERVER:-$builddir/tests/servers/tserver}
work=$(mktemp -d "${TMPDIR:-/tmp}/tlsshim-demo.XXXXXX")
server_pid=
web_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
	[ -n "$web_pid" ] && kill "$web_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

bold "1. A throwaway CA and a certificate for localhost"
sh "$srcdir/tests/gen-certs.sh" "$work/certs"
echo "   $work/certs/ca.pem signs $work/certs/server.pem (localhost)"

bold "2. A local TLS 1.3 server (GnuTLS) on a free port"
"$TSERVER" --cert "$work/certs/server.pem" --key "$work/certs/server-key.pem" \
	--port-file "$work/port" --log "$work/server.log" --mode http &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
echo "   listening on 127.0.0.1:$port (TLS only)"

bold "3. A policy: plain HTTP to localhost:8080 becomes TLS 1.3 to port $port"
cat > "$work/demo.policy" <<POLICY
log = file:$work/tlsshim.log
log-level = info

[demo]
match = localhost:8080
port = $port
ca = $work/certs/ca.pem

[default]
match = *:*
action = deny
POLICY
chmod 600 "$work/demo.policy"
sed 's/^/   | /' "$work/demo.policy"

bold "4. curl speaks plain HTTP, twice in one process"
echo "   \$ tlsshim -p demo.policy curl http://localhost:8080/first http://localhost:8080/second"
"$TLSSHIM" -p "$work/demo.policy" curl -sS -H 'Connection: close' \
	http://localhost:8080/first http://localhost:8080/second | sed 's/^/   | /'

for _ in $(seq 100); do [ "$(grep -c '^conn ' "$work/server.log" 2>/dev/null)" -ge 2 ] && break; sleep 0.05; done

bold "5. What tlsshim says (its log)"
sed -e 's/^/   /' "$work/tlsshim.log"

bold "6. What the server saw"
grep '^conn ' "$work/server.log" | while read -r line; do
	field() { printf '%s\n' "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	printf '   %-9s cipher=%-12s sni=%-10s resumed=%s client-bytes=%s request=%s\n' \
		"$(field version)" "$(field cipher)" "$(field sni)" "$(field resumed)" \
		"$(field bytes_in)" "$(field first_line | sed 's/%20/ /g')"
done

resumed=$(grep -c '^conn .*resumed=1' "$work/server.log" || true)
tls13=$(grep -c '^conn .*version=TLS1.3' "$work/server.log" || true)
if [ "$tls13" -ge 2 ] && [ "$resumed" -ge 1 ] && grep -q 'verified' "$work/tlsshim.log"; then
	bold "Outbound OK: both connections were TLS 1.3, verified for localhost; the second resumed."
else
	bold "Demo FAILED: expected two TLS 1.3 connections, the second resumed." >&2
	exit 1
fi

bold "7. The other half: a plain HTTP server becomes a TLS 1.3 server (a four-line rule)"
webport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/web.policy" <<POLICY
log = file:$work/web.log
log-level = info

[legacy-web]
listen = 127.0.0.1:$webport
cert = $work/certs/server.pem
key = $work/certs/server-key.pem
POLICY
chmod 600 "$work/web.policy"
sed 's/^/   | /' "$work/web.policy"
echo "hello from a server that knows nothing about TLS" > "$work/hello.txt"
echo "   \$ tlsshim -p web.policy python3 -m http.server $webport --bind 127.0.0.1"
(cd "$work" && exec "$TLSSHIM" -p "$work/web.policy" python3 -m http.server "$webport" --bind 127.0.0.1 \
	>"$work/web.out" 2>&1) &
web_pid=$!
for _ in $(seq 100); do grep -q "Serving HTTP" "$work/web.out" 2>/dev/null && break; sleep 0.05; done

bold "8. curl speaks https to it"
echo "   \$ curl --cacert ca.pem https://localhost:$webport/hello.txt"
curl -sS -v --cacert "$work/certs/ca.pem" "https://localhost:$webport/hello.txt" 2>"$work/curl.err" |
	sed 's/^/   | /'
grep -E 'SSL connection using|subjectAltName' "$work/curl.err" | sed 's/^\* */   curl: /'
for _ in $(seq 100); do grep -q 'GET /hello.txt' "$work/web.out" 2>/dev/null && break; sleep 0.05; done

bold "9. What the server logged (plain HTTP, the client's real address), and tlsshim"
grep 'GET /hello.txt' "$work/web.out" | sed 's/^/   /'
sed -e 's/^/   /' "$work/web.log"

if grep -q 'SSL connection using TLSv1.3' "$work/curl.err" && grep -q '^127\.0\.0\.1 .*GET /hello.txt' "$work/web.out" &&
	grep -q 'accepted .*version=TLS1.3' "$work/web.log"; then
	bold "Demo OK: outbound and inbound, TLS 1.3 both ways, the server still reads plain HTTP."
else
	bold "Demo FAILED: the inbound half did not see TLS 1.3 from both ends." >&2
	exit 1
fi
