#!/usr/bin/env bash
# The systemd units: `systemd-analyze verify` clean against a staged install of the build (their
# ExecStart= pointed at the staged fdbroker, their man: references at the staged man pages), and the
# service's exposure level (`systemd-analyze security`) at most THRESHOLD tenths, with and without
# the opt-in drop-ins.
#   units_test.sh BUILD_DIR UNIT_DIR THRESHOLD THRESHOLD_WITH_DROPINS
set -euo pipefail
build=$1 units=$2 threshold=$3 threshold_dropins=$4
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed"; exit 77; }
command -v man >/dev/null || { echo "SKIP: man is not installed (verify checks Documentation=man:...)"; exit 77; }

tmp=$(mktemp -d /tmp/fdbroker-units-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
DESTDIR=$tmp/stage cmake --install "$build" --prefix /usr >/dev/null
mkdir "$tmp/units"
sed "s|/usr/bin/fdbroker |$tmp/stage/usr/bin/fdbroker |" "$units/fdbroker.service" >"$tmp/units/fdbroker.service"
cp "$units/fdbroker.socket" "$tmp/units/"
grep -q "^ExecStart=$tmp/stage/usr/bin/fdbroker serve" "$tmp/units/fdbroker.service"

echo "== systemd-analyze verify"
out=$(MANPATH=$tmp/stage/usr/share/man systemd-analyze verify "$tmp/units/fdbroker.socket" \
      "$tmp/units/fdbroker.service" 2>&1) || { echo "$out"; exit 1; }
[ -z "$out" ] || { echo "$out"; echo "verify is not clean"; exit 1; }

echo "== systemd-analyze security (threshold $threshold)"
systemd-analyze security --offline=true --threshold="$threshold" "$units/fdbroker.service" | tail -1
# The drop-ins, appended as a drop-in directory would apply them.
cat "$units/fdbroker.service" "$units/network.conf" "$units/pools.conf" "$units/low-ports.conf" \
    >"$tmp/units/fdbroker.service"
echo "== with network.conf, pools.conf and low-ports.conf (threshold $threshold_dropins)"
systemd-analyze security --offline=true --threshold="$threshold_dropins" "$tmp/units/fdbroker.service" | tail -1
