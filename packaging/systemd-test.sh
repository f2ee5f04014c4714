#!/usr/bin/env bash
# The .deb under a booted systemd. Boots a Debian 12 system container (systemd-nspawn -b) with systemd
# as its PID 1, installs the package built from BUILD_DIR into it with apt, and drives it from outside
# through the container's namespaces (nsenter): the group made by systemd-sysusers, socket activation
# and Type=notify readiness, a client in the group served and one outside it refused, reload with a
# good and a broken policy, a pool running as its user, the hardening as systemd applied it
# (`systemd-analyze security` online, and the broker's own /proc) with and without the drop-ins of
# examples/systemd, the audit and pool lines in the journal, a draining stop, and `apt purge` leaving
# nothing behind.
#   packaging/systemd-test.sh [BUILD_DIR]     (default: build)
# Needs root, debootstrap and systemd-nspawn (systemd-container). The container's root file system is
# made once with debootstrap and kept in $FDBROKER_CI_CACHE (default /var/cache/fdbroker-ci); a run
# never changes it: the container boots with --volatile=overlay, its writes going to a tmpfs over it.
# Prints "SKIPPED: reason" and exits 0 only where the machine cannot run it at all.

# Text in single quotes is for the container's shell, awk or dpkg-query to expand, not this one's.
# shellcheck disable=SC2016
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)

# The exposure levels, in tenths, that `systemd-analyze security` may report for the service as systemd
# loaded it: the unit alone, and with the drop-ins. The limits of the offline check of the unit files
# (packaging.systemd_units), read from where that check is declared so that the two cannot differ.
gate=$here/../tests/packaging/CMakeLists.txt
read -r exposure_threshold exposure_threshold_dropins < <(
    sed -n 's|^ *${PROJECT_SOURCE_DIR}/packaging/systemd \([0-9]*\) \([0-9]*\))$|\1 \2|p' "$gate") || true
[ -n "${exposure_threshold_dropins:-}" ] || { echo "FAILED: no exposure levels found in $gate" >&2; exit 1; }

cache=${FDBROKER_CI_CACHE:-/var/cache/fdbroker-ci}
mirror=${FDBROKER_CI_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# What the container has besides debootstrap's minimal base: an init, and the D-Bus system bus that
# systemctl and systemd-analyze expect on a real machine. The package's own Depends are added to it.
base_packages=(systemd systemd-sysv dbus)

skip() { echo "SKIPPED: $*"; exit 0; }
fail() { echo "FAILED: $*" >&2; exit 1; }
start=$SECONDS
step() { echo "== [$((SECONDS - start)) s] $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, systemd-nspawn)"
for tool in debootstrap systemd-nspawn nsenter cpack dpkg-deb flock; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (packaging/dev.sh installs it)"
done

tmp=$(mktemp -d /tmp/fdbroker-systemd-XXXXXX)
nspawn_pid=
cleanup() {
    local status=$?
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        # SIGTERM asks the container's systemd to power off; SIGKILL if it has not within 30 s.
        kill -TERM "$nspawn_pid" 2>/dev/null || true
        for _ in $(seq 300); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$nspawn_pid" 2>/dev/null || true
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -s "$tmp/nspawn.log" ]; then
        echo "-- systemd-nspawn's output:"
        tail -n 30 "$tmp/nspawn.log"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "the package (cpack)"
cpack --config "$build/CPackConfig.cmake" -B "$tmp/deb" >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; fail "cpack"; }
debs=("$tmp"/deb/fdbroker_*.deb)
[ -f "${debs[0]}" ] || fail "cpack made no fdbroker_*.deb"
deb=${debs[0]}
echo "${deb##*/}"

# The package's Depends, each by its first alternative's name: in the cached root, so that installing
# the package needs no network.
depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/ //g' |
    sed '/^$/d' | sort -u | tr '\n' ' ')
packages=$(echo "${base_packages[*]} $depends" | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ',')
packages=${packages%,}

# The cached root: $cache/root, made for the package list in $cache/root.packages; made again when
# the list changes. Built beside it and renamed, so an interrupted debootstrap leaves no half root.
prepare_root() {
    mkdir -p "$cache"
    exec 9>"$cache/lock"
    flock 9
    if [ -d "$cache/root" ] && [ "$(cat "$cache/root.packages" 2>/dev/null)" = "$packages" ]; then
        echo "cached in $cache/root"
        return
    fi
    if ! wget -q --spider --timeout=30 --tries=2 "$mirror/dists/$suite/Release" 2>/dev/null; then
        skip "no cached root in $cache and no access to $mirror"
    fi
    rm -rf "$cache/root.new"
    echo "debootstrap $suite from $mirror with $packages (once; cached in $cache)"
    debootstrap --variant=minbase --include="$packages" "$suite" "$cache/root.new" "$mirror" \
        >"$tmp/debootstrap.log" 2>&1 || { tail -n 30 "$tmp/debootstrap.log"; fail "debootstrap"; }
    # The archive's lists and downloaded packages are not needed to boot: smaller cache.
    rm -rf "$cache"/root.new/var/cache/apt/archives/*.deb "$cache"/root.new/var/lib/apt/lists/*_Packages
    rm -rf "$cache/root"
    mv "$cache/root.new" "$cache/root"
    echo "$packages" >"$cache/root.packages"
}
step "the container's root file system"
command -v wget >/dev/null || skip "wget is not installed (debootstrap needs it)"
prepare_root
flock -u 9

# What the container sees of the host, read-only at /mnt/fdbroker-test: the package, an example worker
# (fdcat, linked with the shared libfdbroker that the package installs), the drop-ins.
share=$tmp/share
mkdir -p "$share"
cp "$deb" "$share/fdbroker.deb"
cp "$build/packaging/fdcat" "$share/fdcat"
cp "$here/systemd/pools.conf" "$here/systemd/network.conf" "$here/systemd/low-ports.conf" "$share/"
chmod -R a+rX "$share"

step "boot"
machine=fdbroker-test-$$
# --register=no and --keep-unit: no systemd-machined needed on the host; --volatile=overlay keeps the
# cached root unchanged; --console=passive: no terminal needed (CI has none). systemd-nspawn's own
# system call filter, which every process in the container inherits, lacks Landlock, which pool
# workers are confined with: --system-call-filter adds it.
systemd-nspawn --quiet --boot --directory="$cache/root" --machine="$machine" --register=no --keep-unit \
    --volatile=overlay --console=passive --bind-ro="$share:/mnt/fdbroker-test" \
    --system-call-filter="landlock_create_ruleset landlock_add_rule landlock_restrict_self" \
    >"$tmp/nspawn.log" 2>&1 &
nspawn_pid=$!

# The container's PID 1, as the host sees it: the child of systemd-nspawn whose innermost pid is 1.
leader=
for _ in $(seq 300); do
    kill -0 "$nspawn_pid" 2>/dev/null || fail "systemd-nspawn exited"
    read -ra children <"/proc/$nspawn_pid/task/$nspawn_pid/children" || true
    for pid in "${children[@]}"; do
        nspid=$(sed -n 's/^NSpid:\t//p' "/proc/$pid/status" 2>/dev/null) || continue
        if [ "${nspid##*[[:space:]]}" = 1 ] && [ "$nspid" != 1 ]; then leader=$pid; break 2; fi
    done
    sleep 0.1
done
[ -n "$leader" ] || fail "found no PID 1 in the container"

# Runs a command in the container as root, with a clean environment.
inside() {
    nsenter --target "$leader" --mount --uts --ipc --net --pid --cgroup --root --wd -- \
        /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}
state=
for _ in $(seq 240); do
    state=$(inside systemctl is-system-running 2>/dev/null) || true
    case $state in running | degraded) break ;; esac
    sleep 0.5
done
case $state in
    running) echo "systemd is running (container $machine, PID 1 is $leader on the host)" ;;
    degraded) inside systemctl --failed --no-legend; fail "the container booted degraded" ;;
    *) fail "the container's systemd is '$state' after 120 s" ;;
esac

step "install the package with apt"
inside env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -q \
    /mnt/fdbroker-test/fdbroker.deb >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; fail "apt-get install"; }
inside dpkg-query -W -f='${Package} ${Version} ${Status}\n' fdbroker
inside dpkg-query -L fdbroker | sort >"$tmp/package-files"
group=$(inside getent group fdbroker) || fail "no group fdbroker after installing (sysusers.d/fdbroker.conf)"
gid=$(cut -d: -f3 <<<"$group")
[ "$gid" -lt 1000 ] || fail "the group fdbroker has gid $gid, not a system gid"
echo "group: $group (a system group: made by systemd-sysusers from /usr/lib/sysusers.d/fdbroker.conf)"
[ "$(inside systemctl is-enabled fdbroker.socket || true)" = disabled ] || fail "fdbroker.socket enabled by installing"

# The machine's side: users, the files the policies name, the example worker in /usr/local/bin.
# alice is in the group fdbroker, mallory is not; fdpool is the user the pools run as.
inside sh -euc '
    useradd --system --no-create-home --shell /usr/sbin/nologin --groups fdbroker alice
    useradd --system --no-create-home --shell /usr/sbin/nologin mallory
    useradd --system --no-create-home --shell /usr/sbin/nologin fdpool
    mkdir -p /srv/data /srv/pool
    echo alpha >/srv/data/a.txt; echo bravo >/srv/data/b.txt; echo pool-input >/srv/pool/input.txt
    chmod 600 /srv/data/*.txt /srv/pool/input.txt
    ln -s a.txt /srv/data/to-a; ln -s b.txt /srv/data/to-b; ln -s . /srv/data/here
    install -m 755 /mnt/fdbroker-test/fdcat /usr/local/bin/fdcat'
lib=$(inside ldd /usr/local/bin/fdcat | sed -n 's/^[[:space:]]*libfdbroker\.so\.0 => \([^ ]*\).*/\1/p')
lib=$(inside readlink -f "$lib")  # /lib is /usr/lib
grep -qx "$lib" "$tmp/package-files" || fail "fdcat loads libfdbroker from '$lib', not from the package"
echo "fdcat (the example worker) loads the package's $lib"

# The policy as an administrator writes it (stdin: the file's text).
set_policy() { inside sh -c 'cat >/etc/fdbroker/policy.toml'; }
# fdcat as USER: prints "PATH: first line" or "PATH: error (ENAME)" per file. Only root's processes
# find the system socket by default (a user's is $XDG_RUNTIME_DIR/fdbroker.sock, libfdbroker(3)).
fdcat_as() {
    local user=$1; shift
    inside setpriv --reuid="$user" --regid="$user" --init-groups -- \
        env FDBROKER_SOCKET=/run/fdbroker/fdbroker.sock /usr/local/bin/fdcat "$@" 2>&1 || true
}
expect() {  # WHAT EXPECTED ACTUAL
    [ "$3" = "$2" ] || fail "$1: expected '$2', got '$3'"
    echo "$1: $3" | sed '2,$s/^/    /'
}
journal() { inside journalctl --quiet --no-pager -o cat -u fdbroker.service; }
# Waits until the journal of fdbroker.service has more lines matching PATTERN than COUNT.
wait_journal() {  # PATTERN COUNT
    for _ in $(seq 100); do
        [ "$(journal | grep -c -- "$1" || true)" -gt "$2" ] && return
        sleep 0.1
    done
    journal | tail -n 20
    fail "no new '$1' in the journal after 10 s"
}
main_pid() { inside systemctl show -p MainPID --value fdbroker.service; }
reload() { inside systemctl reload fdbroker.service || { journal | tail -n 20; fail "systemctl reload fdbroker.service"; }; }

set_policy <<'POLICY'
version = 1
# Processes of the members of the group fdbroker (SO_PEERGROUPS), as fdbroker.socket admits only them.
[profile.members]
clients = { groups = ["fdbroker"] }
read    = ["/srv/data/**"]
deny    = ["/srv/data/b.txt"]
POLICY
inside fdbroker check /etc/fdbroker/policy.toml

step "enable and start fdbroker.socket"
inside systemctl enable --now fdbroker.socket 2>&1
expect "fdbroker.socket" active "$(inside systemctl is-active fdbroker.socket || true)"
expect "fdbroker.service before any client" inactive "$(inside systemctl is-active fdbroker.service || true)"
expect "the socket" "root fdbroker 660 socket" \
    "$(inside stat -c '%U %G %a %F' /run/fdbroker/fdbroker.sock)"

step "a member of the group fdbroker is served; socket activation starts the service"
expect "alice (in fdbroker)" "/srv/data/a.txt: alpha
/srv/data/b.txt: Permission denied (EACCES)" "$(fdcat_as alice /srv/data/a.txt /srv/data/b.txt)"
# Through symlinks, on the broker's careful path: under RestrictSUIDSGID=yes, where openat2 answers
# ENOSYS, its own walk of each component (broker/ops/openat2_compat.hpp).
expect "alice, through symlinks" "/srv/data/to-a: alpha
/srv/data/here/a.txt: alpha
/srv/data/to-b: Permission denied (EACCES)" "$(fdcat_as alice /srv/data/to-a /srv/data/here/a.txt /srv/data/to-b)"
journal | grep "openat2 answers ENOSYS" || fail "the broker did not say it resolves paths without openat2"
# Type=notify: "active" only once the broker sent READY=1 (before, it is "activating").
expect "fdbroker.service" "notify fdbroker.socket active running" \
    "$(inside systemctl show -p Type -p ActiveState -p SubState -p TriggeredBy --value fdbroker.service | tr '\n' ' ' |
        sed 's/ $//')"
journal | grep "serving /etc/fdbroker/policy.toml" || fail "the broker did not log that it serves"

step "a user outside the group fdbroker is refused"
out=$(fdcat_as mallory /srv/data/a.txt)
echo "mallory (not in fdbroker): $out"
if [[ $out != "/srv/data/a.txt: "* ]] || [[ $out == *alpha* ]]; then fail "mallory was not refused: '$out'"; fi

# Capability names by number (linux/capability.h), to read the kernel's CapBnd mask.
capabilities=(chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap linux_immutable
    net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module sys_rawio sys_chroot
    sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time sys_tty_config mknod lease
    audit_write audit_control setfcap mac_override mac_admin syslog wake_alarm block_suspend audit_read
    perfmon bpf checkpoint_restore)
# The hardening as the kernel shows it on the running broker, against what systemd says it applied.
check_applied() {  # NETWORK: private (PrivateNetwork=yes), or the machine's (network.conf)
    local pid status allowed bounding i
    pid=$(main_pid)
    status=$(inside cat "/proc/$pid/status")
    expect "no_new_privs (NoNewPrivileges=)" 1 "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$status")"
    expect "seccomp (SystemCallFilter=, and the broker's own filter)" 2 "$(awk '/^Seccomp:/ {print $2}' <<<"$status")"
    expect "RestrictSUIDSGID= (openat2 answers ENOSYS)" yes \
        "$(inside systemctl show -p RestrictSUIDSGID --value fdbroker.service)"
    allowed=" $(inside systemctl show -p CapabilityBoundingSet --value fdbroker.service) "
    bounding=$((16#$(awk '/^CapBnd:/ {print $2}' <<<"$status")))
    for i in "${!capabilities[@]}"; do
        if (((bounding >> i) & 1)) && [[ $allowed != *" cap_${capabilities[i]} "* ]]; then
            fail "the broker's bounding set has cap_${capabilities[i]}, which CapabilityBoundingSet= lacks"
        fi
    done
    echo "bounding set within CapabilityBoundingSet=$allowed(CapBnd $(awk '/^CapBnd:/ {print $2}' <<<"$status"))"
    if [ "$(inside readlink "/proc/$pid/ns/net")" = "$(inside readlink /proc/1/ns/net)" ]; then
        expect "network namespace" "$1" "the machine's"
    else
        expect "network namespace" "$1" private
    fi
    expect "/ in the broker's mount namespace (ProtectSystem=strict)" ro \
        "$(inside awk '$5 == "/" {split($6, o, ","); print o[1]}' "/proc/$pid/mountinfo" | tail -n 1)"
    expect "/run/fdbroker (ReadWritePaths=)" rw \
        "$(inside awk '$5 == "/run/fdbroker" {split($6, o, ","); print o[1]}' "/proc/$pid/mountinfo" | tail -n 1)"
}
# `systemd-analyze security` on the unit as systemd loaded it (with its drop-ins), at most THRESHOLD.
check_exposure() {  # THRESHOLD (tenths)
    local out
    out=$(inside systemd-analyze security --no-pager --threshold="$1" fdbroker.service 2>&1) ||
        { echo "$out" | grep '✗' | head -n 40; echo "$out" | tail -n 1;
          fail "exposure above $(($1 / 10)).$(($1 % 10))"; }
    echo "$out" | tail -n 1
}

step "the hardening systemd applied (the unit alone)"
check_applied private
check_exposure "$exposure_threshold"

step "a pool declared in the policy runs as its user (pools.conf drop-in)"
inside install -D -m 644 /mnt/fdbroker-test/pools.conf /etc/systemd/system/fdbroker.service.d/pools.conf
inside systemctl daemon-reload
pools_policy() {  # the members' profile (stdin), then the two pools
    cat
    cat <<'POLICY'
# A worker that reads its input through the broker once, and two that stay (for reloads to keep).
[profile.reader]
command = ["/usr/local/bin/fdcat", "/srv/pool/input.txt"]
user    = "fdpool"
restart = "never"
read    = ["/srv/pool/**"]
[profile.idle]
command   = ["/bin/sleep", "infinity"]
user      = "fdpool"
instances = 2
restart   = "always"
POLICY
}
members_v1='version = 1
[profile.members]
clients = { groups = ["fdbroker"] }
read    = ["/srv/data/**"]
deny    = ["/srv/data/b.txt"]'
pools_policy <<<"$members_v1" | set_policy
# Capabilities are dropped at start: a first pool needs a restart, not a reload.
inside systemctl restart fdbroker.service || { journal | tail -n 20; fail "systemctl restart fdbroker.service"; }
expect "fdbroker.service" active "$(inside systemctl is-active fdbroker.service || true)"
wait_journal '\[reader/0 [0-9]*\] /srv/pool/input.txt: pool-input' 0
journal | grep '\[reader/0 '
# The pool workers "sleep infinity": pid, user and unit of each.
idle_workers() {
    inside sh -c 'for p in /proc/[0-9]*; do
        [ "$(tr "\0" " " <"$p/cmdline" 2>/dev/null)" = "/bin/sleep infinity " ] || continue
        echo "${p#/proc/} $(awk "/^Uid:/ {print \$2 \$3 \$4 \$5}" "$p/status") $(grep -q "/fdbroker.service" "$p/cgroup" && echo fdbroker.service)"
    done' | sort -n
}
for _ in $(seq 100); do [ "$(idle_workers | wc -l)" -eq 2 ] && break; sleep 0.1; done
workers=$(idle_workers)
pool_uid=$(inside id -u fdpool)
expect "the idle pool's 2 workers (pid, real/effective/saved/fs uid, unit)" \
    "$(awk -v u="$pool_uid$pool_uid$pool_uid$pool_uid" '{print $1, u, "fdbroker.service"}' <<<"$workers")" "$workers"
step "the hardening systemd applied (with pools.conf)"
check_applied private
check_exposure "$exposure_threshold_dropins"

step "systemctl reload with a good policy: applied, the broker and its workers kept"
pid_before=$(main_pid)
reloads=$(journal | grep -c "reloaded /etc/fdbroker/policy.toml" || true)
pools_policy <<<"${members_v1%deny*}" | set_policy
reload
wait_journal "reloaded /etc/fdbroker/policy.toml" "$reloads"
expect "MainPID" "$pid_before" "$(main_pid)"
expect "the pool's workers" "$workers" "$(idle_workers)"
expect "alice after the reload" "/srv/data/b.txt: bravo" "$(fdcat_as alice /srv/data/b.txt)"

step "systemctl reload with a broken policy: the old one stays, the journal says why"
errors=$(journal | grep -c "has errors; still serving" || true)
pools_policy <<<"${members_v1%deny*}
write   = \"/srv/data/**\"" | set_policy
reload
wait_journal "has errors; still serving" "$errors"
journal | grep -A3 "policy.toml:[0-9]*:[0-9]*: error" | tail -n 4 || fail "no FILE:LINE:COL error in the journal"
expect "fdbroker.service" active "$(inside systemctl is-active fdbroker.service || true)"
expect "MainPID" "$pid_before" "$(main_pid)"
expect "the pool's workers" "$workers" "$(idle_workers)"
expect "alice, under the policy kept" "/srv/data/a.txt: alpha
/srv/data/b.txt: bravo" "$(fdcat_as alice /srv/data/a.txt /srv/data/b.txt)"
# The administrator mends the file (a start would fail on it).
reloads=$(journal | grep -c "reloaded /etc/fdbroker/policy.toml" || true)
pools_policy <<<"${members_v1%deny*}" | set_policy
reload
wait_journal "reloaded /etc/fdbroker/policy.toml" "$reloads"

step "journalctl -u fdbroker"
journal >"$tmp/journal"
grep -q '"decision"' "$tmp/journal" || { cat "$tmp/journal"; fail "no audit record in the journal"; }
grep -m 3 '"decision"' "$tmp/journal"
grep -q '\[reader/0 [0-9]*\] /srv/pool/input.txt: pool-input' "$tmp/journal" || fail "no pool output in the journal"
grep -q "\"uid\":$pool_uid,\"profile\":\"reader\",\"op\":\"open\",\"path\":\"/srv/pool/input.txt\",.*\"decision\":\"allow\"" \
    "$tmp/journal" || fail "no audit record of the pool worker's open, as uid $pool_uid"
echo "the pool worker's open is audited with its uid ($pool_uid)"
# The broker starts without CAP_SETPCAP (the unit's bounding set) and must not complain of it.
if grep "libcap-ng" "$tmp/journal"; then fail "libcap-ng complains in the journal"; fi

step "network.conf and low-ports.conf: the machine's network, a port below 1024"
inside install -m 644 /mnt/fdbroker-test/network.conf /mnt/fdbroker-test/low-ports.conf \
    /etc/systemd/system/fdbroker.service.d/
inside systemctl daemon-reload
pools_policy <<<"${members_v1%deny*}listen  = [\"tcp:127.0.0.1:80\"]
connect = [\"tcp:127.0.0.1:8080\"]" | set_policy
starts=$(journal | grep -c "serving /etc/fdbroker/policy.toml" || true)
inside systemctl restart fdbroker.service || { journal | tail -n 20; fail "systemctl restart fdbroker.service"; }
wait_journal "serving /etc/fdbroker/policy.toml" "$starts"
kept=$(journal | grep "serving /etc/fdbroker/policy.toml" | tail -n 1)
echo "$kept"
[[ $kept == *" net_bind_service"* ]] || fail "the broker did not keep CAP_NET_BIND_SERVICE for its listen rule"
if journal | grep "started without"; then fail "the drop-ins withhold a capability the policy needs"; fi
check_applied "the machine's"
check_exposure "$exposure_threshold_dropins"

step "systemctl stop drains and exits 0; the socket starts the service again"
inside systemctl stop fdbroker.service 2>&1 | grep -v "can still be activated by\|^ *fdbroker.socket$" || true
expect "fdbroker.service after stop (result, exit code, status)" "success exited 0" \
    "$(inside systemctl show -p Result -p ExecMainCode -p ExecMainStatus --value fdbroker.service | tr '\n' ' ' |
        sed -e 's/ $//' -e 's/^success 1 /success exited /')"
journal | grep "stopping: answering the requests in flight" | tail -n 1 || fail "the broker did not drain"
expect "the pool's workers after stop" "" "$(idle_workers)"
expect "fdbroker.socket" active "$(inside systemctl is-active fdbroker.socket || true)"
expect "alice" "/srv/data/a.txt: alpha" "$(fdcat_as alice /srv/data/a.txt)"
expect "fdbroker.service, started by the socket again" active "$(inside systemctl is-active fdbroker.service || true)"

step "apt purge fdbroker leaves nothing behind"
# The drop-in is the administrator's file, not the package's: the administrator removes it.
inside rm -r /etc/systemd/system/fdbroker.service.d
inside systemctl daemon-reload
inside env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q fdbroker >"$tmp/purge.log" 2>&1 ||
    { cat "$tmp/purge.log"; fail "apt-get purge"; }
grep -i "warn\|error" "$tmp/purge.log" && fail "apt-get purge warned"
expect "the package" "" "$(inside dpkg-query -W -f='${db:Status-Abbrev}' fdbroker 2>/dev/null | tr -d ' ' || true)"
# Every path the package had is gone, but directories other packages share.
left=$(inside sh -c 'while read -r path; do
    [ -e "$path" ] || [ -L "$path" ] || continue
    if [ -d "$path" ] && [ ! -L "$path" ] && dpkg-query -S "$path" >/dev/null 2>&1; then continue; fi
    echo "$path"
done' <"$tmp/package-files")
expect "files of the package left" "" "$left"
expect "units named fdbroker* under /etc and /run" "" \
    "$(inside find /etc/systemd /run/systemd/system /run/systemd/generator* -name 'fdbroker*' 2>/dev/null || true)"
expect "fdbroker units systemd knows" "" \
    "$(inside systemctl list-units --all --no-legend --plain 'fdbroker*' | awk '$3 != "inactive" || $2 != "not-found"')"
expect "/run/fdbroker" "" "$(inside sh -c 'ls -d /run/fdbroker 2>/dev/null || true')"
expect "processes named fdbroker" "" "$(inside sh -c 'grep -l "^Name:.fdbroker" /proc/[0-9]*/status 2>/dev/null || true')"
# Debian leaves system users and groups in place on purge: files may still be owned by them.
echo "group fdbroker after purge (kept, as for every Debian system group): $(inside getent group fdbroker || echo none)"

echo "ok: the package works under a booted systemd"
