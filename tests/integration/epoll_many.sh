#!/bin/bash
# epoll_many.sh - more epoll instances than the library notes by number (64):
# closing one must still drop its registrations of upgraded sockets, so a
# new instance that gets the same number never reports them (they carry the
# old instance's data: in C, often a freed pointer).
. "$top_srcdir/tests/integration/lib.sh"
need_python
need_tlsshim

start_tserver srv
policy many "$srv_port"
out=$(run many "$PYTHON" "$CLIENTS/epoll_many.py" 2>&1)
ok $? "the client ran to the end"
diag "$out"
like "$out" "first_ready=[0-9]" "the 65th instance reported the upgraded socket"
if [[ $out == *same_number=1* ]]; then
	like "$out" "foreign=0" "the new instance with the old number reports only its own registration"
else
	skip "the new instance did not get the old number"
fi
like "$out" "response=HTTP/1.[01] 200" "the response arrived through TLS"
check "server logged it" wait_for_lines "$srv_log" 1
is "$(tserver_field "$srv_log" 1 first_line)" "GET /many HTTP/1.0" "the server got the request over TLS"
done_testing
