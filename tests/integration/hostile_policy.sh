#!/bin/bash
# hostile_policy.sh -- hostile and broken policy files.
#
# For every bad policy (too big, NUL bytes, over-long lines, names/wildcards
# past the parser's limits, 10001 rules, bad key/ca files, unsafe
# permissions, symbolic links, not a regular file, unreadable, ...):
#   * "tlsshim check -p FILE" exits 2 (never a signal, never >= 128) with an
#     error that starts "FILE:LINE: " (or "FILE: " for whole-file problems);
#   * "tlsshim -p FILE COMMAND" fails and does NOT run COMMAND.
# Controls at the limits (exactly 1 MiB, a 4096-byte line, 10000 rules, a
# 127-label wildcard, a 1 MiB rule with 40,000 match entries) are valid and
# are parsed quickly.
# Then the library on its own (LD_PRELOAD + TLSSHIM_POLICY, no launcher to
# stop it) with broken policies: every TCP connection is refused
# (ECONNREFUSED: curl exit 7), the plain server behind it sees nothing,
# stderr says why, nothing crashes.  Key/cert/ca files that exist but hold
# garbage pass "check" (it does not parse them) but fail closed at connect.
#
# Unreadable files: root reads anything, so when run as root the "cannot
# read" cases run "tlsshim check" as nobody (setpriv); without setpriv they
# are skipped.

# shellcheck disable=SC2154   # start_* set ${NAME}_port etc.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

need_python
need_tlsshim
need_cmd curl timeout
P=$WORK/p
mkdir -p "$P"
LIMIT=20                        # seconds any single command may take

# ---- helpers ---------------------------------------------------------------------------

# base_policy: a valid 5-line policy (log + one rule); the rule's last key
# is on line 5, so a line appended to it is line 6
base_policy() {
    printf 'log = stderr\n[r1]\nmatch = localhost:18080\nport = 1\nca = %s\n' "$CERTS/ca.pem"
}

# mk NAME: write stdin to $P/NAME with mode 600; print the path
mk() {
    cat >"$P/$1" && chmod 600 "$P/$1"
    printf '%s\n' "$P/$1"
}

# check_run FILE: run "tlsshim check -p FILE" with a time limit;
# sets $st, $err (stderr), $out (stdout), $secs
check_run() {
    local t0=$SECONDS
    out=$(timeout -s KILL $LIMIT "$TLSSHIM" check -p "$1" 2>"$WORK/check.err")
    st=$?
    err=$(cat "$WORK/check.err")
    secs=$((SECONDS - t0))
}

# bad_policy DESC FILE LINE REASON-REGEX
#   LINE is the expected line number, "any" for some line, or "" for a
#   whole-file error ("FILE: reason").  Checks "tlsshim check" (exit 2, the
#   first line of stderr is "FILE:LINE: reason") and the launcher.
bad_policy() {
    local desc=$1 file=$2 line=$3 re=$4 esc lre shown
    esc=$(printf '%s' "$file" | sed 's/[][\.*^$+?(){}|]/\\&/g')
    case $line in
    "") lre="^$esc: " shown="FILE: " ;;
    any) lre="^$esc:[0-9]+: " shown="FILE:N: " ;;
    *) lre="^$esc:$line: " shown="FILE:$line: " ;;
    esac
    check_run "$file"
    is "$st" 2 "$desc: tlsshim check exits 2 (not a crash)"
    if printf '%s\n' "$err" | head -n 1 | grep -Eq -- "$lre.*($re)"; then
        pass "$desc: error is '$shown$re'"
    else
        fail "$desc: error is '$shown$re'"
        diag "stderr: $(printf '%s' "$err" | head -c 400)"
    fi
    local ran="$WORK/ran.$RANDOM$RANDOM"
    timeout -s KILL $LIMIT "$TLSSHIM" -p "$file" touch "$ran" >/dev/null 2>"$WORK/launch.err"
    local lst=$?
    if [ $lst -ne 0 ] && [ $lst -lt 128 ] && [ ! -e "$ran" ]; then
        pass "$desc: tlsshim -p FILE COMMAND fails (exit $lst) and does not run COMMAND"
    else
        fail "$desc: tlsshim -p FILE COMMAND fails (exit $lst) and does not run COMMAND"
        [ -e "$ran" ] && diag "COMMAND RAN"
        diag "launcher stderr: $(head -c 300 "$WORK/launch.err")"
    fi
}

# good_policy DESC FILE REGEX: check exits 0 within 5 s, stdout's first line
# matches REGEX
good_policy() {
    local desc=$1 file=$2 re=$3
    check_run "$file"
    is "$st" 0 "$desc: tlsshim check accepts it"
    [ "$st" = 0 ] || diag "stderr: $(printf '%s' "$err" | head -c 300)"
    like "$(printf '%s\n' "$out" | head -n 1)" "$re" "$desc: check says '$re'"
    [ $secs -le 5 ]
    ok $? "$desc: parsed quickly (${secs}s)"
}

# pad_to FILE SIZE: append comment lines to FILE until it is exactly SIZE bytes
pad_to() {
    "$PYTHON" - "$1" "$2" <<'EOF'
import os, sys
path, size = sys.argv[1], int(sys.argv[2])
left = size - os.path.getsize(path)
with open(path, "a") as f:
    while left > 0:
        n = min(left, 100)
        f.write(("#" + "p" * (n - 2) + "\n") if n >= 2 else "\n")
        left -= n
EOF
}

# ==== 1. size ==============================================================================
f=$(base_policy | mk exact-1mib.policy)
pad_to "$f" 1048576
good_policy "exactly 1 MiB" "$f" 'valid, 1 rule'
f=$(base_policy | mk over-1mib.policy)
pad_to "$f" 1048577
bad_policy "1 MiB + 1 byte" "$f" "" 'too large'
f=$(mk huge-rules.policy < <("$PYTHON" -c '
for i in range(40000):
    print("[r%d]\nmatch = h%d.example:80\naction = deny" % (i, i))'))
bad_policy "2 MiB of rules" "$f" "" 'too large'
: | mk sparse-1g.policy >/dev/null
truncate -s 1G "$P/sparse-1g.policy"
bad_policy "1 GiB sparse file" "$P/sparse-1g.policy" "" 'too large'

# ==== 2. NUL bytes and binary garbage =====================================================
f=$({ base_policy; printf 'alpn = h2\0evil\n'; } | mk nul-value.policy)
bad_policy "NUL inside a value (line 6)" "$f" 6 'NUL'
f=$({ printf '# comment\0\n'; base_policy; } | mk nul-line1.policy)
bad_policy "NUL in a comment on line 1" "$f" 1 'NUL'
f=$(head -c 4096 /dev/zero | mk all-nul.policy)
bad_policy "4 KiB of NUL bytes" "$f" 1 'NUL'
f=$("$PYTHON" -c '
import random, sys
r = random.Random(1234)
sys.stdout.buffer.write(bytes(r.randrange(256) for _ in range(65536)))' | mk random-binary.policy)
bad_policy "64 KiB of random bytes" "$f" any '.'
f=$("$PYTHON" -c '
import random, sys
r = random.Random(99)
sys.stdout.buffer.write(bytes(r.choice(b"[]=#*.:,\n\t abc\xff\xfe\x01\x7f") for _ in range(65536)))' | mk random-syntax.policy)
bad_policy "64 KiB of random policy-ish bytes" "$f" any '.'
f=$({ printf '\xef\xbb\xbf\xef\xbb\xbf'; base_policy; } | mk double-bom.policy)
bad_policy "two byte order marks" "$f" 1 '.'

# ==== 3. over-long lines ===================================================================
f=$({ base_policy; printf '#%s\n' "$(head -c 4095 /dev/zero | tr '\0' a)"; } | mk line-4096.policy)
good_policy "a 4096-byte line" "$f" 'valid, 1 rule'
f=$({ base_policy; printf '#%s\n' "$(head -c 4096 /dev/zero | tr '\0' a)"; } | mk line-4097.policy)
bad_policy "a 4097-byte line" "$f" 6 'line too long'
f=$({ base_policy; printf 'match = %s' "$(head -c 100000 /dev/zero | tr '\0' a)"; } | mk line-100k.policy)
bad_policy "a 100 KB line without a final newline" "$f" 6 'line too long'
f=$("$PYTHON" -c 'print("[" + "r" * 5000 + "]")' | mk header-5000.policy)
bad_policy "a 5000-byte [rule] header" "$f" 1 'line too long'

# ==== 4. names, wildcards, rules: the parser's limits =========================================
# deep_wildcard N: "*.a.a...a" with N labels after "*."
deep_wildcard() { "$PYTHON" -c "import sys; print('*.' + '.'.join(['a'] * int(sys.argv[1])))" "$1"; }
f=$(printf '[deep]\nmatch = %s:80\naction = deny\n' "$(deep_wildcard 100)" | mk deep-100.policy)
good_policy "a wildcard 100 labels deep" "$f" 'valid, 1 rule'
f=$(printf '[deep]\nmatch = %s:80\naction = deny\n' "$(deep_wildcard 127)" | mk deep-127.policy)
good_policy "a wildcard 127 labels deep (253 characters after *.)" "$f" 'valid, 1 rule'
f=$(printf '[deep]\nmatch = %s:80\naction = deny\n' "$(deep_wildcard 128)" | mk deep-128.policy)
bad_policy "a wildcard 128 labels deep" "$f" 2 'longer than 253'
f=$(printf '[deep]\nmatch = %s:80\naction = deny\n' "$(deep_wildcard 2000)" | mk deep-2000.policy)
bad_policy "a wildcard 2000 labels deep" "$f" 2 'longer than 253'
f=$(printf '[w]\nmatch = *.*.*.example:80\naction = deny\n' | mk multi-star.policy)
bad_policy "*.*.*.example" "$f" 2 'only allowed as a leading'
f=$(printf '[w]\nmatch = *.%s.example:80\naction = deny\n' "$(head -c 64 /dev/zero | tr '\0' b)" | mk label-64.policy)
bad_policy "a 64-character label" "$f" 2 'label longer than 63'
f=$(printf '[%s]\nmatch = a.example:80\naction = deny\n' "$(head -c 65 /dev/zero | tr '\0' n)" | mk name-65.policy)
bad_policy "a 65-character rule name" "$f" 1 '.'
f=$("$PYTHON" -c '
for i in range(10000):
    print("[r%d]\nmatch = h%d.example:80\naction = deny" % (i, i))' | mk rules-10000.policy)
good_policy "10000 rules" "$f" 'valid, 10000 rules'
f=$("$PYTHON" -c '
for i in range(10001):
    print("[r%d]\nmatch = h%d.example:80\naction = deny" % (i, i))' | mk rules-10001.policy)
bad_policy "10001 rules" "$f" 30001 'too many rules'
f=$("$PYTHON" -c '
for i in range(10000):
    print("[same]\nmatch = h%d.example:80\naction = deny" % i)' | mk dup-names.policy)
bad_policy "10000 rules with the same name" "$f" 4 'duplicate rule name'
# one rule, ~1 MiB of match entries (40,950 of them on 273 lines)
f=$("$PYTHON" -c '
print("[many]\naction = deny")
for l in range(273):
    print("match = " + ",".join("h%d.example.com:%d" % (l * 150 + j, 1 + j) for j in range(150)))' | mk many-matches.policy)
good_policy "one rule with 40950 match entries" "$f" 'valid, 1 rule'

# ==== 5. key, cert and ca files ================================================================
K=$WORK/keys
mkdir -p "$K"
cp "$CERTS/client.pem" "$CERTS/client-key.pem" "$K/"
chmod 644 "$K/client.pem"
chmod 600 "$K/client-key.pem"
# mtls_policy NAME CA CERT KEY: ca on line 4, cert 5, key 6
mtls_policy() {
    printf 'log = stderr\n[m]\nmatch = localhost:18080\nca = %s\ncert = %s\nkey = %s\n' "$2" "$3" "$4" | mk "$1"
}
f=$(mtls_policy key-missing.policy "$CERTS/ca.pem" "$K/client.pem" "$K/missing-key.pem")
bad_policy "missing key file" "$f" 6 'cannot read key file .*No such file'
mkdir -p "$K/dir-key.pem"
f=$(mtls_policy key-dir.policy "$CERTS/ca.pem" "$K/client.pem" "$K/dir-key.pem")
bad_policy "key file is a directory" "$f" 6 'not a regular file'
f=$(mtls_policy key-devzero.policy "$CERTS/ca.pem" "$K/client.pem" /dev/zero)
bad_policy "key file is /dev/zero" "$f" 6 'not a regular file'
cp "$K/client-key.pem" "$K/gw-key.pem"
chmod 620 "$K/gw-key.pem"
f=$(mtls_policy key-gw.policy "$CERTS/ca.pem" "$K/client.pem" "$K/gw-key.pem")
bad_policy "group-writable key file" "$f" 6 'writable by group or others'
ln -s nowhere "$K/dangling-key.pem"
f=$(mtls_policy key-dangling.policy "$CERTS/ca.pem" "$K/client.pem" "$K/dangling-key.pem")
bad_policy "dangling symlink as key file" "$f" 6 'cannot read key file'
f=$(mtls_policy key-relative.policy "$CERTS/ca.pem" "$K/client.pem" keys/client-key.pem)
bad_policy "relative key path" "$f" 6 'absolute'
f=$(mtls_policy ca-missing.policy "$K/no-ca.pem" "$K/client.pem" "$K/client-key.pem")
bad_policy "missing ca file" "$f" 4 'cannot read ca file'
if [ "$(id -u)" = 0 ]; then
    cp "$K/client-key.pem" "$K/other-key.pem"
    chown 65534 "$K/other-key.pem"
    f=$(mtls_policy key-other.policy "$CERTS/ca.pem" "$K/client.pem" "$K/other-key.pem")
    bad_policy "key file owned by another user" "$f" 6 'owned by uid 65534'
else
    for i in 1 2 3; do skip "key file owned by another user ($i)" "needs root to chown"; done
fi

# Unreadable key file and unreadable policy.  As root: run check as nobody
# in a world-traversable directory (root-owned files are trusted by owner).
NOBODY=()
if [ "$(id -u)" = 0 ] && nobody_can_read "$TLSSHIM" "$TLSSHIM_LIBRARY"; then
    NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
if [ "$(id -u)" != 0 ] || [ ${#NOBODY[@]} -gt 0 ]; then
    U=$WORK/pub
    mkdir -p "$U"
    chmod 711 "$WORK"
    chmod 755 "$U"
    cp "$CERTS/ca.pem" "$K/client.pem" "$K/client-key.pem" "$U/"
    chmod 644 "$U/ca.pem" "$U/client.pem"
    chmod 000 "$U/client-key.pem"
    printf 'log = stderr\n[m]\nmatch = localhost:18080\nca = %s\ncert = %s\nkey = %s\n' \
        "$U/ca.pem" "$U/client.pem" "$U/client-key.pem" >"$U/unreadable-key.policy"
    chmod 644 "$U/unreadable-key.policy"
    base_policy >"$U/unreadable.policy"
    chmod 000 "$U/unreadable.policy"
    for c in "unreadable-key.policy:6:cannot read key file .*Permission denied" \
        "unreadable.policy::cannot open: Permission denied"; do
        IFS=: read -r name line re <<<"$c"
        if [ -n "$line" ]; then prefix="$U/$name:$line: "; else prefix="$U/$name: "; fi
        out=$(timeout -s KILL $LIMIT "${NOBODY[@]}" "$TLSSHIM" check -p "$U/$name" 2>&1 >/dev/null)
        st=$?
        is "$st" 2 "$name (as $(id -un 2>/dev/null || id -u)${NOBODY:+ -> nobody}): tlsshim check exits 2"
        [[ $out == "$prefix"* ]] && printf '%s\n' "$out" | grep -Eq -- "$re"
        ok $? "$name: error is 'FILE${line:+:$line}: $re'" || diag "$out"
        timeout -s KILL $LIMIT "${NOBODY[@]}" "$TLSSHIM" -p "$U/$name" touch "$U/ran.$name" >/dev/null 2>&1
        st=$?
        [ $st -ne 0 ] && [ $st -lt 128 ] && [ ! -e "$U/ran.$name" ]
        ok $? "$name: the launcher fails (exit $st) and does not run COMMAND"
    done
    # the library as nobody: refuses every connection
    out=$(timeout -s KILL $LIMIT "${NOBODY[@]}" env LD_PRELOAD="${TLSSHIM_PRELOAD:-$TLSSHIM_LIBRARY}" \
        TLSSHIM_POLICY="$U/unreadable-key.policy" curl -sS --noproxy '*' http://127.0.0.1:9/ 2>&1)
    st=$?
    is "$st" 7 "unreadable key file: the library (LD_PRELOAD) refuses connections (curl exit 7)"
    like "$out" 'invalid policy, refusing every TCP connection: .*Permission denied' \
        "unreadable key file: the library says why"
else
    for i in $(seq 8); do
        skip "unreadable files ($i)" "as root, needs setpriv and a build tree user nobody can read: root can read anything"
    done
fi

# ==== 6. the policy file itself: permissions, links, type ========================================
f=$(base_policy | mk group-writable.policy)
chmod 620 "$f"
bad_policy "group-writable policy" "$f" "" 'writable by group or others \(mode 0620\)'
f=$(base_policy | mk world-writable.policy)
chmod 602 "$f"
bad_policy "world-writable policy" "$f" "" 'writable by group or others \(mode 0602\)'
if [ "$(id -u)" = 0 ]; then
    f=$(base_policy | mk other-owner.policy)
    chown 65534 "$f"
    bad_policy "policy owned by another user" "$f" "" 'owned by uid 65534'
else
    for i in 1 2 3; do skip "policy owned by another user ($i)" "needs root to chown"; done
fi
good=$(base_policy | mk good.policy)
ln -s good.policy "$P/link.policy"
bad_policy "symlinked policy (absolute path)" "$P/link.policy" "" 'symbolic link'
ln -s "$P" "$WORK/linkdir"
good_policy "a policy reached through a symlinked DIRECTORY (only the file itself must not be a link)" \
    "$WORK/linkdir/good.policy" 'valid, 1 rule'
ln -s nowhere "$P/dangling.policy"
bad_policy "dangling symlink as policy" "$P/dangling.policy" "" 'symbolic link|No such file'

# The same symlink given as a RELATIVE path must be refused too.
# (tlsshim.policy(5): "The policy must be a regular file (not a symbolic link)")
(
    cd "$P" || exit 1
    rel_err=$(timeout -s KILL $LIMIT "$TLSSHIM" check -p link.policy 2>&1 >/dev/null)
    echo "$?"
    printf '%s\n' "$rel_err"
) >"$WORK/rel.out"
is "$(head -n 1 "$WORK/rel.out")" 2 "symlinked policy given as a relative path (-p link.policy): check exits 2"
like "$(sed -n 2p "$WORK/rel.out")" 'link\.policy: is a symbolic link' \
    "symlinked policy given as a relative path: error names the link"
(cd "$P" && timeout -s KILL $LIMIT "$TLSSHIM" -p link.policy touch "$WORK/ran.rel-link" >/dev/null 2>&1)
[ ! -e "$WORK/ran.rel-link" ]
ok $? "symlinked policy given as a relative path: the launcher does not run COMMAND"

mkdir -p "$P/dir.policy"
bad_policy "policy is a directory" "$P/dir.policy" "" 'not a regular file'
bad_policy "policy is /dev/zero" /dev/zero "" 'not a regular file'
mkfifo "$P/fifo.policy"
bad_policy "policy is a FIFO (no writer: must not hang)" "$P/fifo.policy" "" 'not a regular file'
bad_policy "missing policy" "$P/missing.policy" "" 'cannot open: No such file'
# A long path (1.5 KB, well under PATH_MAX) to a bad policy: the error
# must still say what is wrong, not just repeat the path.
deep=$P/$(printf 'dddddddddddddddddddd/%.0s' $(seq 70))
mkdir -p "$deep"
cp "$P/nul-value.policy" "$deep/nul.policy"
bad_policy "a bad policy with a 1.5 KB path" "$deep/nul.policy" 6 'NUL'
# A path longer than PATH_MAX: just no crash, nothing run.
longpath=/$(printf 'x/%.0s' $(seq 3000))policy
check_run "$longpath"
is "$st" 2 "a 6000-character policy path: tlsshim check exits 2 (not a crash)"
timeout -s KILL $LIMIT "$TLSSHIM" -p "$longpath" touch "$WORK/ran.longpath" >/dev/null 2>&1
st=$?
[ $st -ne 0 ] && [ $st -lt 128 ] && [ ! -e "$WORK/ran.longpath" ]
ok $? "a 6000-character policy path: the launcher fails (exit $st) and does not run COMMAND"

# ==== 7. the library alone with a broken policy: fail closed =======================================
# A plain HTTP server the connections would reach if tlsshim let them out.
start_plain plain
plain_conns() { grep -c '^conn ' "$WORK/plain.log"; }

# lib_curl POLICY: curl http://localhost:PLAIN/ with the library preloaded
lib_curl() {
    timeout -s KILL $LIMIT env LD_PRELOAD="${TLSSHIM_PRELOAD:-$TLSSHIM_LIBRARY}" TLSSHIM_POLICY="$1" \
        curl -sS --noproxy '*' --max-time 10 -o /dev/null "http://localhost:$plain_port/" 2>"$WORK/lib.err"
}

# control: a good policy that does not match the plain port lets it through
lib_curl "$good"
is "$?" 0 "library, control: a good policy passes an unmatched connection through"
wait_for_match "$WORK/plain.log" '^conn ' 5
is "$(plain_conns)" 1 "library, control: the plain server got the request"

# lib_refuses DESC POLICY LOG-REGEX: curl exits 7, nothing reached the
# server, stderr names the policy problem
lib_refuses() {
    local desc=$1 pol=$2 re=$3 before st
    before=$(plain_conns)
    lib_curl "$pol"
    st=$?
    is "$st" 7 "library, $desc: connection refused (curl exit 7, no crash)"
    sleep 0.2
    is "$(plain_conns)" "$before" "library, $desc: nothing reached the server"
    if grep -q 'invalid policy, refusing every TCP connection' "$WORK/lib.err" &&
        grep -Eq -- "$re" "$WORK/lib.err" && grep -q 'refused: invalid policy' "$WORK/lib.err"; then
        pass "library, $desc: stderr says the policy is invalid and why ($re)"
    else
        fail "library, $desc: stderr says the policy is invalid and why ($re)"
        diag "stderr: $(head -c 500 "$WORK/lib.err")"
    fi
}
lib_refuses "NUL byte" "$P/nul-value.policy" 'nul-value.policy:6: NUL'
lib_refuses "1 MiB + 1" "$P/over-1mib.policy" 'too large'
lib_refuses "10001 rules" "$P/rules-10001.policy" 'rules-10001.policy:30001: too many rules'
lib_refuses "4097-byte line" "$P/line-4097.policy" 'line too long'
lib_refuses "group-writable policy" "$P/group-writable.policy" 'writable by group'
lib_refuses "symlinked policy" "$P/link.policy" 'symbolic link'
lib_refuses "missing policy" "$P/missing.policy" 'cannot open'
lib_refuses "policy is a directory" "$P/dir.policy" 'not a regular file'
lib_refuses "policy is a FIFO" "$P/fifo.policy" 'not a regular file'
lib_refuses "missing key file" "$P/key-missing.policy" 'cannot read key file'
lib_refuses "a bad policy with a 1.5 KB path" "$deep/nul.policy" 'nul.policy:6: NUL byte'
before=$(plain_conns)
lib_curl "$longpath"
is "$?" 7 "library, a 6000-character policy path: connection refused (curl exit 7, no crash)"
is "$(plain_conns)" "$before" "library, a 6000-character policy path: nothing reached the server"

# python too: ConnectionRefusedError, no crash
out=$(timeout -s KILL $LIMIT env LD_PRELOAD="${TLSSHIM_PRELOAD:-$TLSSHIM_LIBRARY}" TLSSHIM_POLICY="$P/random-binary.policy" \
    "$PYTHON" -c '
import socket, sys
try:
    socket.create_connection(("localhost", int(sys.argv[1])), timeout=10)
except ConnectionRefusedError as e:
    print("refused", e.errno)
else:
    print("connected")' "$plain_port" 2>/dev/null)
is "$out" "refused 111" "library, random-binary policy: python gets ConnectionRefusedError"

# a huge but valid policy still decides correctly: rule 10000 of 10000 denies
f=$("$PYTHON" -c '
import sys
for i in range(9999):
    print("[r%d]\nmatch = h%d.example:80\naction = deny" % (i, i))
print("[last]\nmatch = localhost:%s\naction = deny" % sys.argv[1])' "$plain_port" | mk last-of-10000.policy)
before=$(plain_conns)
lib_curl "$f"
is "$?" 7 "library, 10000 rules: the last rule denies (curl exit 7)"
grep -q 'rule \[last\] .*denied by policy' "$WORK/lib.err"
ok $? "library, 10000 rules: log names rule [last]" || diag "$(cat "$WORK/lib.err")"
is "$(plain_conns)" "$before" "library, 10000 rules: nothing reached the server"

# ---- key/cert/ca files that exist but hold garbage: check passes, connect refuses ----
start_tserver ts
printf 'garbage\n' >"$K/garbage.pem"
chmod 644 "$K/garbage.pem"
head -c 3000000 /dev/urandom >"$K/huge-random-key.pem"
chmod 600 "$K/huge-random-key.pem"
: >"$K/empty.pem"
chmod 644 "$K/empty.pem"
# runtime_refuses DESC REGEX POLICY-LINES...: check accepts the policy; a
# connection through the launcher is refused, tserver sees nothing
n_rt=0
runtime_refuses() {
    local desc=$1 re=$2 st
    shift 2
    n_rt=$((n_rt + 1))
    {
        printf 'log = stderr\n[m]\nmatch = localhost:18080\nport = %s\n' "$ts_port"
        printf '%s\n' "$@"
    } | mk "rt$n_rt.policy" >/dev/null
    "$TLSSHIM" check -p "$P/rt$n_rt.policy" >/dev/null 2>&1
    is "$?" 0 "$desc: tlsshim check accepts it (it checks files, not contents)"
    timeout -s KILL $LIMIT "$TLSSHIM" -p "$P/rt$n_rt.policy" curl -sS --noproxy '*' --max-time 10 \
        -o /dev/null http://localhost:18080/x 2>"$WORK/rt.err"
    st=$?
    is "$st" 7 "$desc: the connection is refused (curl exit 7)"
    grep -Eq -- "error: rule \[m\] .*refused: .*($re)" "$WORK/rt.err"
    ok $? "$desc: log says why ($re)" || diag "$(cat "$WORK/rt.err")"
}
runtime_refuses "garbage key file" 'cannot load client certificate' \
    "ca = $CERTS/ca.pem" "cert = $K/client.pem" "key = $K/garbage.pem"
runtime_refuses "3 MB random key file" 'cannot load client certificate' \
    "ca = $CERTS/ca.pem" "cert = $K/client.pem" "key = $K/huge-random-key.pem"
runtime_refuses "garbage cert file" 'cannot load client certificate' \
    "ca = $CERTS/ca.pem" "cert = $K/garbage.pem" "key = $K/client-key.pem"
runtime_refuses "key does not match the cert" 'do not match' \
    "ca = $CERTS/ca.pem" "cert = $K/client.pem" "key = $CERTS/server-key.pem"
runtime_refuses "garbage ca file" 'no certificate found' "ca = $K/garbage.pem"
runtime_refuses "empty ca file" 'no certificate found' "ca = $K/empty.pem"
sleep 0.2
is "$(tserver_conns "$ts_log")" 0 "garbage credentials: tserver never saw a connection"

done_testing
