#!/bin/bash
# locks_registered.sh -- every lock defined in src/ is reset in a forked
# child (src/forklock.h): a static lock must be defined with FORKLOCK_MUTEX;
# a lock inside a structure must be re-initialised by the handler named in a
# "forklock: FUNCTION" comment on its line, and that FUNCTION must be called
# from the child handler; pthread_once_t is left to glibc (fork() restarts an
# initialisation that another thread of the parent had in progress).  Any
# other synchronisation object (rwlock, spinlock, condition, semaphore,
# barrier) fails: add it to the registry first.  Then the built objects: the
# registry sections of libtlsshim.so and libtlsshim-tls.so hold exactly as
# many entries as their sources define.

. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
set -u

src=$top_srcdir/src
kinds='pthread_(mutex|rwlock|spinlock|cond|barrier)_t|\bsem_t\b'

# Static definitions not made with the macro.
bad=$(grep -nE "^\s*(static\s+)?($kinds)\s+\w+\s*(=|;|\[)" "$src"/*.c "$src"/*.h |
    grep -v "^$src/forklock\.h:.*static pthread_mutex_t name = PTHREAD_MUTEX_INITIALIZER")
is "$bad" "" "no lock defined outside FORKLOCK_MUTEX"

# Members of structures: "pthread_mutex_t a, b; /* forklock: fn */" or a bare
# declaration inside a struct.  Everything that names a lock type and is not
# the registry itself, the macro, or a pointer argument.
members=$(grep -nE "^\s+($kinds)\s+[a-z_]+(\s*,\s*[a-z_]+)*\s*;" "$src"/*.c "$src"/*.h |
    grep -v "^$src/forklock\.[ch]:")
while IFS= read -r line; do
    [ -n "$line" ] || continue
    file=${line%%:*}
    fn=$(printf '%s\n' "$line" | sed -n 's/.*forklock: *\([a-z_]*\).*/\1/p')
    decl=$(printf '%s\n' "$line" | sed -E "s/^[^:]*:[0-9]+:\s*($kinds)\s+//; s/;.*//")
    if [ -z "$fn" ]; then
        fail "$(basename "$file"): '$decl' has no 'forklock: FUNCTION' saying what resets it"
        continue
    fi
    body=$(sed -n "/^[a-z].*\b$fn(/,/^}/p" "$src"/*.c)
    [ -n "$body" ] || { fail "$fn (resets $decl) is not defined in src/"; continue; }
    for m in ${decl//,/ }; do
        like "$body" "pthread_mutex_init\(&[a-z_]+->$m," "$fn re-initialises $m ($(basename "$file"))"
    done
    like "$(sed -n '/^void shim_fork_child(/,/^}/p' "$src/fork.c")$(sed -n '/^static void forked_one(/,/^}/p' "$src/fork.c")" \
        "\b$fn\(" "shim_fork_child calls $fn"
done <<<"$members"

child=$(sed -n '/^void shim_fork_child(/,/^}/p' "$src/fork.c")
like "$child" "forklock_child_reset\(\)" "shim_fork_child resets the registry"
like "$(grep -n 'pthread_atfork' "$src/init.c")" "pthread_atfork\([a-z_]+, NULL, shim_fork_child\)" "fork() runs shim_fork_child"
like "$(sed -n '/^pid_t _Fork(/,/^}/p' "$src/hook_process.c")" "shim_fork_child\(\)" "_Fork runs shim_fork_child"
like "$(sed -n '/^static void load_module(/,/^}/p' "$src/tls_loader.c")" "forklock_add\(" "the TLS module's locks are registered when it loads"

# pthread_once_t: listed, for the record.
diag "pthread_once_t left to glibc's fork generation: $(grep -oE 'pthread_once_t\s+\w+' "$src"/*.c | sed 's|.*/||; s/:pthread_once_t */:/' | tr '\n' ' ')"

# The built objects.
if command -v readelf >/dev/null 2>&1; then
    for obj in "$top_builddir/src/.libs/libtlsshim.so:$(cd "$src" && ls -- *.c | grep -v '^tls\.c$\|^tlsshim\.c$\|^ticket\.c$')" \
               "$top_builddir/src/.libs/libtlsshim-tls.so:tls.c ticket.c"; do
        lib=${obj%%:*} files=${obj#*:}
        [ -f "$lib" ] || { skip "$(basename "$lib") not built"; continue; }
        want=$(cd "$src" && cat $files | grep -cE '^FORKLOCK_MUTEX\(')
        size=$(readelf -SW "$lib" | sed -n 's/.* tlsshim_forklocks *PROGBITS *[0-9a-f]* [0-9a-f]* \([0-9a-f]*\) .*/\1/p')
        got=0
        [ -n "$size" ] && got=$((16#$size / 16))
        is "$got" "$want" "$(basename "$lib"): $want locks in its registry section"
    done
else
    skip "readelf not installed"
fi

done_testing
