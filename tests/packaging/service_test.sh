#!/usr/bin/env bash
# fdbroker serve under what fdbroker.service grants it, as far as it can be reproduced without systemd
# as PID 1: only the unit's CapabilityBoundingSet= (plus a drop-in's), no_new_privs, a private
# network namespace (PrivateNetwork=yes), a /proc mounted as ProtectProc= and ProcSubset= say, and
# no openat2 (RestrictSUIDSGID=yes).
# The broker must start, serve a root client and one of another user, and with pools.conf run a
# pool worker.
#   service_test.sh FDBROKER FDCAT LIBFDBROKER_DIR UNIT_DIR
set -euo pipefail
fdbroker=$1 fdcat=$2 libdir=$3 units=$4
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (capability bounding sets, namespaces)"; exit 77; }
command -v setpriv >/dev/null && command -v unshare >/dev/null || { echo "SKIP: needs setpriv and unshare"; exit 77; }

tmp=$(mktemp -d /tmp/fdbroker-service-XXXXXX)
chmod 755 "$tmp"
trap 'kill "$broker" 2>/dev/null || true; rm -rf "$tmp"' EXIT
# fdcat for the client that is not root, where it can reach it (it finds libfdbroker by $ORIGIN).
mkdir -p "$tmp/bin/packaging" "$tmp/bin/client"
cp "$fdcat" "$tmp/bin/packaging/"
cp -a "$libdir"/libfdbroker.so* "$tmp/bin/client/"
chmod -R a+rX "$tmp/bin"

# "CAP_DAC_OVERRIDE CAP_CHOWN" from the unit files -> "-all,+dac_override,+chown" for setpriv.
bounding_set() {
    local caps
    caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$@" | tr ' ' '\n' | sed -n 's/^CAP_//p' | tr 'A-Z' 'a-z')
    echo "-all$(printf ',+%s' $caps)"
}

# ProtectProc= and ProcSubset= of the unit files (the last of each wins), as procfs mount options.
proc_options() {
    local protect subset options=()
    protect=$(sed -n 's/^ProtectProc=//p' "$@" | tail -1)
    subset=$(sed -n 's/^ProcSubset=//p' "$@" | tail -1)
    case $protect in invisible | noaccess | ptraceable) options+=("hidepid=$protect") ;; esac
    [ "$subset" != pid ] || options+=(subset=pid)
    (IFS=,; echo "${options[*]:-defaults}")
}

# RestrictSUIDSGID=yes of the unit files: its filter answers openat2 with ENOSYS, which the broker
# is told as FDBROKER_SIMULATE_ABSENT=openat2.
absent_features() {
    [ "$(sed -n 's/^RestrictSUIDSGID=//p' "$@" | tail -1)" != yes ] || echo openat2
}

# Serves with the bounding set and /proc of the given unit files; a root client and a client running
# as nobody each read one granted file, and the latter its own /proc/self.
serve_and_read() {
    local log=$tmp/log policy=$1 socket=$tmp/run/fdbroker.sock; shift
    rm -f "$log"
    unshare --net --mount --propagation private -- /bin/sh -c 'mount -t proc -o "$1" proc /proc && shift && exec "$@"' \
        _ "$(proc_options "$@")" setpriv --bounding-set="$(bounding_set "$@")" --no-new-privs -- \
        env FDBROKER_SIMULATE_ABSENT="$(absent_features "$@")" "$fdbroker" serve --policy "$policy" --socket "$socket" --socket-mode 0666 2>"$log" &
    broker=$!
    for _ in $(seq 200); do [ -S "$socket" ] && break; sleep 0.05; done
    out=$(FDBROKER_SOCKET=$socket "$fdcat" "$tmp/granted")
    [ "$out" = "$tmp/granted: granted" ] || { echo "the root client read '$out'"; cat "$log"; exit 1; }
    out=$(FDBROKER_SOCKET=$socket setpriv --reuid=65534 --regid=65534 --clear-groups -- \
        "$tmp/bin/packaging/fdcat" "$tmp/granted" /proc/self/status)
    # /proc/self is the client's own, which the broker opens as the client (visible under hidepid).
    [ "$out" = "$tmp/granted: granted"$'\n'"/proc/self/status: Name:"$'\t'"fdcat" ] ||
        { echo "the client running as nobody read '$out'"; cat "$log"; exit 1; }
}

stop() {
    kill -TERM "$broker"
    wait "$broker" || { echo "fdbroker serve exited $?"; cat "$tmp/log"; exit 1; }
}

echo granted >"$tmp/granted"
cat >"$tmp/policy.toml" <<POLICY
version = 1
[profile.admin]
clients = { users = [0, 65534] }
read = ["$tmp/granted"]
POLICY
echo "== the base unit's bounding set: $(bounding_set "$units/fdbroker.service"), /proc: $(proc_options "$units/fdbroker.service"), absent: $(absent_features "$units/fdbroker.service")"
serve_and_read "$tmp/policy.toml" "$units/fdbroker.service"
stop
grep "capabilities kept" "$tmp/log"
! grep -q "started without" "$tmp/log" || { cat "$tmp/log"; echo "the unit withholds what the broker needs"; exit 1; }

cat >>"$tmp/policy.toml" <<POLICY
[profile.pool]
command = ["/bin/echo", "pool worker says hello"]
restart = "never"
namespaces = ["net", "ipc", "uts", "pid"]
POLICY
echo "== with pools.conf: $(bounding_set "$units/fdbroker.service" "$units/pools.conf"), /proc: $(proc_options "$units/fdbroker.service" "$units/pools.conf")"
serve_and_read "$tmp/policy.toml" "$units/fdbroker.service" "$units/pools.conf"
for _ in $(seq 200); do grep -q "pool worker says hello" "$tmp/log" && break; sleep 0.05; done
stop
grep "capabilities kept\|hello" "$tmp/log"
grep -q "\[pool/0 [0-9]*\] pool worker says hello" "$tmp/log" || { cat "$tmp/log"; echo "the pool did not run"; exit 1; }
! grep -q "started without" "$tmp/log" || { cat "$tmp/log"; echo "pools.conf withholds what pools need"; exit 1; }
echo "ok"
