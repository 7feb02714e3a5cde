#!/bin/bash
# cert_request.sh -- a server that asks for a client certificate when the
# rule configures none: the handshake succeeds (TLS 1.3: the server judges
# the empty Certificate after the client has finished), then nginx answers
# HTTP 400 and tserver --require-client-cert sends certificate_required.
# The operator must learn why from tlsshim's log.  Proves:
#   * nginx (ssl_verify_client on): nginx saw TLSv1.3, no client_dn and
#     answered 400; tlsshim logged at WARNING that the server requested a
#     client certificate and rule [mtls] configures none (rule and dest);
#   * tserver --require-client-cert: the server saw no client certificate
#     and no application bytes; the same warning, and the error that follows;
#   * tserver --request-client-cert (optional): the request went through,
#     and the warning was logged too (the client cannot tell optional from
#     required);
#   * no warning when the rule has a certificate, nor when the server asks
#     for none.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_cmd curl
need_tlsshim
WARN_RE='warning: rule \[mtls\] 127\.0\.0\.1:18443 -> 127\.0\.0\.1:[0-9]+: the server requested a client certificate and the rule configures none'

# every policy: rule [mtls] for localhost:18443; WITH_CERT adds the client certificate
POLICY_RULE=mtls POLICY_MATCH=localhost:18443 POLICY_LEVEL=warning
WITH_CERT=("cert = $CERTS/client.pem" "key = $CERTS/client-key.pem")

# ==== 1. nginx, ssl_verify_client on ======================================================
if [ -x "${NGINX:-/usr/sbin/nginx}" ]; then
    start_nginx ngx mtls
    policy ngx0 "$ngx_port"
    out=$(tlsshim_run "$WORK/ngx0.policy" "${CURL[@]}" -o /dev/null -w '%{http_code}' http://localhost:18443/nocert 2>&1)
    is "$out" 400 "nginx: curl got HTTP 400"
    check "nginx: logged the request" wait_for_requests "$ngx_log" 1
    is "$(nginx_field "$ngx_log" 1 proto) $(nginx_field "$ngx_log" 1 status) $(nginx_field "$ngx_log" 1 client_dn)" \
        "TLSv1.3 400 -" "nginx: TLSv1.3, no client certificate, status 400"
    check "nginx: tlsshim warned that the server requested a client certificate" \
        grep -Eq "$WARN_RE" "$WORK/ngx0.tlsshim.log"
    diag "tlsshim said: $(cat "$WORK/ngx0.tlsshim.log")"

    policy ngx1 "$ngx_port" "${WITH_CERT[@]}"
    out=$(tlsshim_run "$WORK/ngx1.policy" "${CURL[@]}" http://localhost:18443/withcert 2>&1)
    is "$out" "hello from nginx" "nginx with a client cert: body"
    check "nginx with a client cert: logged the request" wait_for_requests "$ngx_log" 2
    like "$(nginx_field "$ngx_log" 2 client_dn)" 'CN=tlsshim-client' "nginx with a client cert: client_dn"
    check_fail "nginx with a client cert: no warning" grep -q 'requested a client certificate' "$WORK/ngx1.tlsshim.log"
else
    for i in 1 2 3 4 5 6 7 8; do skip "nginx check $i" "nginx not installed"; done
fi

# ==== 2. tserver --require-client-cert ======================================================
start_tserver req --require-client-cert --client-ca "$CERTS/ca.pem"
policy req "$req_port"
out=$(tlsshim_run "$WORK/req.policy" "${CURL[@]}" http://localhost:18443/nocert 2>&1)
st=$?
[ $st -ne 0 ]
ok $? "require: curl fails (exit $st)"
check "require: tserver logged the attempt" wait_for_lines "$req_log" 1
is "$(tserver_field "$req_log" 1 client_cert) $(tserver_field "$req_log" 1 bytes_in)" "- 0" \
    "require: tserver saw no client certificate and no application bytes"
check "require: tlsshim warned that the server requested a client certificate" \
    grep -Eq "$WARN_RE" "$WORK/req.tlsshim.log"
check "require: and logged the error that followed" \
    grep -Eq 'error: rule \[mtls\] .*Certificate is required' "$WORK/req.tlsshim.log"
diag "tlsshim said: $(cat "$WORK/req.tlsshim.log")"

# ==== 3. tserver --request-client-cert (optional) ===========================================
start_tserver opt --request-client-cert --client-ca "$CERTS/ca.pem"
policy opt "$opt_port"
out=$(tlsshim_run "$WORK/opt.policy" "${CURL[@]}" http://localhost:18443/optional 2>&1)
like "$out" 'hello from tserver' "optional: the request went through"
check "optional: tserver logged it" wait_for_lines "$opt_log" 1
is "$(tserver_field "$opt_log" 1 status) $(tserver_field "$opt_log" 1 client_cert) $(tserver_field "$opt_log" 1 first_line)" \
    "ok - GET /optional HTTP/1.1" "optional: tserver: status ok, no client certificate, the request"
check "optional: tlsshim warned that the server requested a client certificate" \
    grep -Eq "$WARN_RE" "$WORK/opt.tlsshim.log"

# ==== 4. a server that asks for none: no warning =============================================
start_tserver plain
policy plain "$plain_port"
out=$(tlsshim_run "$WORK/plain.policy" "${CURL[@]}" http://localhost:18443/none 2>&1)
like "$out" 'hello from tserver' "no request: the request went through"
check "no request: tserver logged it" wait_for_lines "$plain_log" 1
is "$(tserver_field "$plain_log" 1 status) $(tserver_field "$plain_log" 1 version)" "ok TLS1.3" \
    "no request: tserver status ok, TLS1.3"
check_fail "no request: no warning" grep -q 'requested a client certificate' "$WORK/plain.tlsshim.log"

done_testing
