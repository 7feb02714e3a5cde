#!/bin/bash
# mtls.sh -- client certificates (mutual TLS) from the policy's cert/key.
# Proves:
#   * tserver --require-client-cert logs client_cert with CN=tlsshim-client;
#   * nginx (ssl_verify_client on) logs client_dn with tlsshim-client, TLSv1.3
#     and answers 200;
#   * without cert/key in the policy, against a server that requires one:
#     the client fails, the server received no application bytes, and
#     tlsshim's log names the reason (alert 116 "Certificate is required").

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_tlsshim

# every policy: rule [mtls] for localhost:18443; WITH_CERT adds the client certificate
POLICY_RULE=mtls POLICY_MATCH=localhost:18443
WITH_CERT=("cert = $CERTS/client.pem" "key = $CERTS/client-key.pem")

# ==== 1. tserver requiring a client certificate ===========================================
start_tserver ts --require-client-cert --client-ca "$CERTS/ca.pem"
policy ts "$ts_port" "${WITH_CERT[@]}"
body=$(tlsshim_run "$WORK/ts.policy" "${CURL[@]}" http://localhost:18443/mtls)
ok $? "tserver: curl with a client cert from the policy exits 0"
check "tserver: logged the connection" wait_for_lines "$ts_log" 1
is "$(tserver_field "$ts_log" 1 status) $(tserver_field "$ts_log" 1 version)" "ok TLS1.3" \
    "tserver: status=ok version=TLS1.3"
like "$(tserver_field "$ts_log" 1 client_cert)" 'CN=tlsshim-client' "tserver: client_cert has CN=tlsshim-client"
is "$(tserver_field "$ts_log" 1 first_line)" "GET /mtls HTTP/1.1" "tserver: got the request"
like "$body" 'hello from tserver' "curl got the server's body"

# ==== 2. nginx with ssl_verify_client on =====================================================
if [ -x "${NGINX:-/usr/sbin/nginx}" ]; then
    start_nginx ngx mtls
    policy ngx "$ngx_port" "${WITH_CERT[@]}"
    body=$(tlsshim_run "$WORK/ngx.policy" "${CURL[@]}" http://localhost:18443/nginx-mtls)
    ok $? "nginx: curl with a client cert exits 0"
    is "$body" "hello from nginx" "nginx: body"
    check "nginx: logged the request" wait_for_requests "$ngx_log" 1
    like "$(nginx_field "$ngx_log" 1 client_dn)" 'CN=tlsshim-client' "nginx: client_dn has CN=tlsshim-client"
    is "$(nginx_field "$ngx_log" 1 proto)" TLSv1.3 "nginx: proto=TLSv1.3"
    is "$(nginx_field "$ngx_log" 1 status)" 200 "nginx: status=200"
    is "$(nginx_field "$ngx_log" 1 request)" "GET /nginx-mtls HTTP/1.1" "nginx: request line"

    # The same without a client certificate: nginx completes the handshake
    # and refuses at the HTTP level (400), never serving the resource.
    policy ngx0 "$ngx_port"
    check_fail "nginx: curl -f without a client cert fails" \
        tlsshim_run "$WORK/ngx0.policy" "${CURL[@]}" -f -o /dev/null http://localhost:18443/nocert
    check "nginx: logged the refused request" wait_for_requests "$ngx_log" 2
    is "$(nginx_field "$ngx_log" 2 status) $(nginx_field "$ngx_log" 2 client_dn)" "400 -" \
        "nginx: no client_dn, HTTP 400"
else
    for i in 1 2 3 4 5 6 7 8 9 10; do skip "nginx check $i" "nginx not installed"; done
fi

# ==== 3. no client certificate configured, server requires one =================================
policy none "$ts_port"
out=$(tlsshim_run "$WORK/none.policy" "${CURL[@]}" http://localhost:18443/nocert 2>&1)
st=$?
[ $st -ne 0 ]
ok $? "no cert: curl fails (exit $st)"
check "no cert: tserver logged the attempt" wait_for_lines "$ts_log" 2
like "$(tserver_field "$ts_log" 2 status)" '^(handshake-failed|io-error)$' \
    "no cert: tserver status=$(tserver_field "$ts_log" 2 status)"
is "$(tserver_field "$ts_log" 2 bytes_in)" 0 "no cert: tserver received no application bytes"
is "$(tserver_field "$ts_log" 2 client_cert)" - "no cert: tserver saw no client certificate"
check "no cert: tlsshim log names the reason (certificate required, alert 116)" \
    grep -Eq 'error: rule \[mtls\] .*Certificate is required \(116\)' "$WORK/none.tlsshim.log"
diag "curl said: $out"
diag "tlsshim said: $(cat "$WORK/none.tlsshim.log")"

done_testing
