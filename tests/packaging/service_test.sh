#!/usr/bin/env bash
# fdbroker serve under what fdbroker.service grants it, as far as it can be reproduced without systemd
# as PID 1: only the unit's CapabilityBoundingSet= (plus a drop-in's), no_new_privs, and a private
# network namespace (PrivateNetwork=yes). The broker must start, serve a client, and with pools.conf
# run a pool worker.
#   service_test.sh FDBROKER FDCAT UNIT_DIR
set -euo pipefail
fdbroker=$1 fdcat=$2 units=$3
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (capability bounding sets, namespaces)"; exit 77; }
command -v setpriv >/dev/null && command -v unshare >/dev/null || { echo "SKIP: needs setpriv and unshare"; exit 77; }

tmp=$(mktemp -d /tmp/fdbroker-service-XXXXXX)
chmod 755 "$tmp"
trap 'kill "$broker" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# "CAP_DAC_OVERRIDE CAP_CHOWN" from the unit files -> "-all,+dac_override,+chown" for setpriv.
bounding_set() {
    local caps
    caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$@" | tr ' ' '\n' | sed -n 's/^CAP_//p' | tr 'A-Z' 'a-z')
    echo "-all$(printf ',+%s' $caps)"
}

# Serves with the bounding set of the given unit files; the client reads one granted file.
serve_and_read() {
    local log=$tmp/log policy=$1; shift
    rm -f "$log"
    unshare --net setpriv --bounding-set="$(bounding_set "$@")" --no-new-privs -- \
        "$fdbroker" serve --policy "$policy" --socket "$tmp/run/fdbroker.sock" 2>"$log" &
    broker=$!
    for _ in $(seq 200); do [ -S "$tmp/run/fdbroker.sock" ] && break; sleep 0.05; done
    out=$(FDBROKER_SOCKET=$tmp/run/fdbroker.sock "$fdcat" "$tmp/granted")
    [ "$out" = "$tmp/granted: granted" ] || { echo "the client read '$out'"; cat "$log"; exit 1; }
}

stop() {
    kill -TERM "$broker"
    wait "$broker" || { echo "fdbroker serve exited $?"; cat "$tmp/log"; exit 1; }
}

echo granted >"$tmp/granted"
cat >"$tmp/policy.toml" <<POLICY
version = 1
[profile.admin]
clients = { users = [0] }
read = ["$tmp/granted"]
POLICY
echo "== the base unit's bounding set: $(bounding_set "$units/fdbroker.service")"
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
echo "== with pools.conf: $(bounding_set "$units/fdbroker.service" "$units/pools.conf")"
serve_and_read "$tmp/policy.toml" "$units/fdbroker.service" "$units/pools.conf"
for _ in $(seq 200); do grep -q "pool worker says hello" "$tmp/log" && break; sleep 0.05; done
stop
grep "capabilities kept\|hello" "$tmp/log"
grep -q "\[pool/0 [0-9]*\] pool worker says hello" "$tmp/log" || { cat "$tmp/log"; echo "the pool did not run"; exit 1; }
! grep -q "started without" "$tmp/log" || { cat "$tmp/log"; echo "pools.conf withholds what pools need"; exit 1; }
echo "ok"
