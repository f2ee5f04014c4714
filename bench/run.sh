#!/usr/bin/env bash
# Builds the benchmarks in Release mode (build-bench/), runs each fdbroker figure side by side with its
# floor or peer, and prints one table of medians and their ratios. Needs root (fdbroker run drops to
# `nobody`), bubblewrap for P5, and about 2-4 minutes on 2 cores.
#
#   bench/run.sh                 # everything
#   ROUNDS=3 bench/run.sh        # fewer repetitions
#   ONLY=P5 bench/run.sh         # only the figures named (comma-separated: P1,P2,...,P7, MEAN)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
rounds=${ROUNDS:-5}
jobs=${JOBS:-$(nproc)}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFDBROKER_TESTS=OFF -DFDBROKER_BENCH=ON >/dev/null
cmake --build "$build" -j"$jobs" --target fdbroker floor_broker floor_broker_policy open_loop_floor open_loop_fdbroker \
    spawn_timer launch_floor policy_bench idle_attach read_files notif_floor notif_floor_policy open_close \
    worker_filter >/dev/null

fdbroker=$build/broker/fdbroker
b=$build/bench
work=$(mktemp -d)
floor_pid=
cleanup() {
    [[ -n $floor_pid ]] && kill "$floor_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The file every brokered open asks for, and a policy that grants just it.
echo payload >"$work/file"
cat >"$work/policy.toml" <<TOML
version = 1
[profile.default]
read = ["$work/file"]
TOML

# The floor's worker confined as fdbroker confines its own (identity, Landlock, filter, cgroup), talking
# to the floor broker: it makes its own socket, which a worker's filter otherwise refuses.
cat >"$work/floor_worker.toml" <<TOML
version = 1
[profile.default]
include = ["runtime"]
syscalls = { allow = ["socket", "connect"] }
TOML

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
field() { awk -v k="$1" '$1 == k { print $2 }'; }

# The floor broker (or the program $2 built from it), pinned to CPU $1, serving on $work/floor.sock until
# stopped.
start_floor() {
    taskset -c "$1" "$b/${2:-floor_broker}" "$work/floor.sock" &
    floor_pid=$!
    for _ in $(seq 50); do [[ -S $work/floor.sock ]] && return; sleep 0.05; done
    echo "floor_broker did not start" >&2
    exit 1
}
stop_floor() {
    kill "$floor_pid"
    wait "$floor_pid" 2>/dev/null || true
    floor_pid=
    rm -f "$work/floor.sock"
}

declare -A result
want() { [[ -z ${ONLY:-} || ,$ONLY, == *,$1,* ]]; }

if want P1; then
    # P1: one worker, one brokered open at a time. Broker on CPU 0; worker on CPU 1 (cross) or 0 (same).
    # Floor and fdbroker alternate in each round so both see the same background load.
    p1_iter=${P1_ITERATIONS:-20000}
    for placement in cross same; do
        wcpu=$([[ $placement == cross ]] && echo 1 || echo 0)
        : >"$work/p1_floor" && : >"$work/p1_fdb" && : >"$work/p1_confined" && : >"$work/p1_worker"
        : >"$work/p1_decide"
        for _ in $(seq "$rounds"); do
            start_floor 0
            FLOOR_SOCKET=$work/floor.sock "$b/open_loop_floor" --cpu "$wcpu" "$work/file" "$p1_iter" 2000 |
                field median_ns >>"$work/p1_floor"
            stop_floor
            taskset -c 0 "$fdbroker" run --policy "$work/policy.toml" -- \
                "$b/open_loop_fdbroker" --cpu "$wcpu" "$work/file" "$p1_iter" 2000 | field median_ns >>"$work/p1_fdb"
            # Context on one CPU, where every extra instruction is on the round trip: the floor pair
            # paying for confinement and authentication as fdbroker does (floor_confine.h).
            if [[ $placement == same ]]; then
                export FLOOR_CONFINED=1
                start_floor 0
                FLOOR_SOCKET=$work/floor.sock "$b/open_loop_floor" --cpu "$wcpu" "$work/file" "$p1_iter" 2000 |
                    field median_ns >>"$work/p1_confined"
                stop_floor
                # And with its worker confined by fdbroker: what is left above this is fdbroker's broker
                # and library.
                start_floor 0
                unset FLOOR_CONFINED
                chmod a+x "$work" && chmod a+rw "$work/floor.sock"
                FLOOR_SOCKET=$work/floor.sock taskset -c 0 "$fdbroker" run --policy "$work/floor_worker.toml" -- \
                    "$b/open_loop_floor" --cpu "$wcpu" "$work/file" "$p1_iter" 2000 | field median_ns >>"$work/p1_worker"
                stop_floor
                # And deciding each request by fdbroker's policy engine before opening (floor_policy.h): above
                # this is fdbroker's request path (framing, sessions, quotas, audit, the library's side).
                FLOOR_CONFINED=1 FLOOR_POLICY=$work/policy.toml start_floor 0 floor_broker_policy
                chmod a+rw "$work/floor.sock"
                FLOOR_SOCKET=$work/floor.sock taskset -c 0 "$fdbroker" run --policy "$work/floor_worker.toml" -- \
                    "$b/open_loop_floor" --cpu "$wcpu" "$work/file" "$p1_iter" 2000 | field median_ns >>"$work/p1_decide"
                stop_floor
            fi
        done
        result[p1_${placement}_floor]=$(median <"$work/p1_floor")
        result[p1_${placement}_fdb]=$(median <"$work/p1_fdb")
    done
    result[p1_same_confined]=$(median <"$work/p1_confined")
    result[p1_same_worker]=$(median <"$work/p1_worker")
    result[p1_same_decide]=$(median <"$work/p1_decide")
fi

if want P7; then
    # P7: 64 files in one fdbroker_open_many() round trip, per file, against the same per-call floor as P1
    # (cross-CPU), both measured here, alternating, so that they see the same background load.
    p7_batch=64
    p7_iter=${P7_ITERATIONS:-2000}
    : >"$work/p7_floor" && : >"$work/p7_fdb"
    for _ in $(seq "$rounds"); do
        start_floor 0
        FLOOR_SOCKET=$work/floor.sock "$b/open_loop_floor" --cpu 1 "$work/file" "$p1_iter" 2000 |
            field median_ns >>"$work/p7_floor"
        stop_floor
        taskset -c 0 "$fdbroker" run --policy "$work/policy.toml" -- \
            "$b/open_loop_fdbroker" --cpu 1 --batch "$p7_batch" "$work/file" "$p7_iter" 200 |
            field median_ns >>"$work/p7_fdb"
    done
    result[p7_floor]=$(median <"$work/p7_floor")
    result[p7_fdb]=$(median <"$work/p7_fdb")
fi

if want P2; then
    # P2: 64 worker processes at once, unpinned; aggregate opens per second.
    p2_iter=${P2_ITERATIONS:-1000}
    : >"$work/p2_floor" && : >"$work/p2_confined" && : >"$work/p2_policy" && : >"$work/p2_fdb"
    for _ in $(seq "$rounds"); do
        start_floor 0-$(($(nproc) - 1))
        FLOOR_SOCKET=$work/floor.sock "$b/open_loop_floor" --procs 64 "$work/file" "$p2_iter" 100 |
            field ops_per_sec >>"$work/p2_floor"
        stop_floor
        # Context: the same pair paying what confinement and authentication cost (floor_confine.h).
        export FLOOR_CONFINED=1
        start_floor 0-$(($(nproc) - 1))
        FLOOR_SOCKET=$work/floor.sock "$b/open_loop_floor" --procs 64 "$work/file" "$p2_iter" 100 |
            field ops_per_sec >>"$work/p2_confined"
        stop_floor
        # And doing what fdbroker's broker must beyond that (floor_policy.h): the decision, a second thread;
        # its workers confined by fdbroker run, as fdbroker's are (P1's floor+fdb+policy).
        FLOOR_POLICY=$work/policy.toml start_floor 0-$(($(nproc) - 1)) floor_broker_policy
        chmod a+x "$work" && chmod a+rw "$work/floor.sock"
        FLOOR_SOCKET=$work/floor.sock "$fdbroker" run --policy "$work/floor_worker.toml" -- \
            "$b/open_loop_floor" --procs 64 "$work/file" "$p2_iter" 100 | field ops_per_sec >>"$work/p2_policy"
        stop_floor
        unset FLOOR_CONFINED
        "$fdbroker" run --policy "$work/policy.toml" -- \
            "$b/open_loop_fdbroker" --procs 64 "$work/file" "$p2_iter" 100 | field ops_per_sec >>"$work/p2_fdb"
    done
    result[p2_floor]=$(median <"$work/p2_floor")
    result[p2_confined]=$(median <"$work/p2_confined")
    result[p2_policy]=$(median <"$work/p2_policy")
    result[p2_fdb]=$(median <"$work/p2_fdb")
fi

if want P3; then
    # P3: the broker's memory per connected idle channel. The broker holds two descriptors per channel (the
    # channel and the sender's pidfd), so the count is capped by the hard RLIMIT_NOFILE it can raise to.
    ulimit -n "$(ulimit -Hn)"
    p3_n=${P3_CHANNELS:-10000}
    p3_max=$((($(ulimit -Hn) - 200) / 2))
    ((p3_n > p3_max)) && p3_n=$p3_max
    # One user holding this many channels is far beyond the default quota (a share of the broker's
    # descriptors): the profile raises it, as an administrator would for such a service.
    cat >"$work/p3.toml" <<TOML
version = 1
[profile.default]
read = ["$work/file"]
quota = { channels = 1000000 }
TOML
    p3_rss() { # CHANNELS: prints the broker's VmRSS in KiB while CHANNELS idle channels are attached
        local fifo=$work/p3_in pid rss ready
        rm -f "$fifo" && mkfifo "$fifo"
        "$fdbroker" run --policy "$work/p3.toml" -- "$b/idle_attach" "$1" <"$fifo" >"$work/p3_out" 2>"$work/p3_err" &
        pid=$!
        exec 9>"$fifo"
        for _ in $(seq 1200); do
            grep -q ready "$work/p3_out" && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        ready=$(grep -c ready "$work/p3_out" || true)
        exec 9>&-
        wait "$pid" || true
        if [[ $ready != 1 || -z $rss ]]; then
            echo "P3 with $1 channels failed: $(head -3 "$work/p3_err")" >&2
            echo 0
        else
            echo "$rss"
        fi
    }
    : >"$work/p3"
    for _ in $(seq "$rounds"); do
        base=$(p3_rss 0)
        full=$(p3_rss "$p3_n")
        awk -v a="$base" -v b="$full" -v n="$p3_n" 'BEGIN { print (b > 0 ? (b - a) / n : 0) }' >>"$work/p3"
    done
    result[p3]=$(median <"$work/p3")
fi

if want P4; then
    # P4: an unmodified program reading 2 000 small files, natively, under the plain-C user-notification
    # floor, under `fdbroker run --transparent` and under proot (if installed); each times its own loop.
    p4_files=${P4_FILES:-2000}
    mkdir -p "$work/p4"
    for i in $(seq 0 $((p4_files - 1))); do echo "file $i" >"$work/p4/$i"; done
    chmod -R a+rX "$work"
    cat >"$work/p4.toml" <<TOML
version = 1
[profile.default]
include = ["runtime"]
read = ["$work/p4/**"]
TOML
    # P8: the same workload with the profile's reads left to the kernel (reads = "kernel": Landlock).
    sed 's/^include = /reads = "kernel"\ninclude = /' "$work/p4.toml" >"$work/p8.toml"
    # And with the stat family left to the kernel too (stat = "kernel"), for a program that walks the tree.
    sed 's/^include = /stat = "kernel"\ninclude = /' "$work/p8.toml" >"$work/p8s.toml"
    have_proot=$(command -v proot || true)
    # Unpinned (the scheduler places supervisor and program), then everything on CPU 0.
    for placement in free same; do
        pin=()
        [[ $placement == same ]] && pin=(taskset -c 0)
        : >"$work/p4_native" && : >"$work/p4_floor" && : >"$work/p4_fdb" && : >"$work/p4_proot"
        : >"$work/p8_fdb" && : >"$work/p4_confined" && : >"$work/p4_policy" && : >"$work/du_native" && : >"$work/du_p8" && : >"$work/du_p8s"
        for _ in $(seq "$rounds"); do
            "${pin[@]}" "$b/read_files" "$work/p4" "$p4_files" 3 | field median_ns >>"$work/p4_native"
            "${pin[@]}" "$b/notif_floor" "$b/read_files" "$work/p4" "$p4_files" 3 | field median_ns >>"$work/p4_floor"
            # Context: the floor doing what the broker must for a path a tree rule grants (notif_floor.c).
            FLOOR_CONFINED=1 "${pin[@]}" "$b/notif_floor" "$b/read_files" "$work/p4" "$p4_files" 3 |
                field median_ns >>"$work/p4_confined"
            # And doing what fdbroker's broker must beyond that (floor_policy.h): the decision, a second
            # thread. Above this is fdbroker's request path and its worker's confinement.
            FLOOR_CONFINED=1 FLOOR_POLICY=$work/p4.toml "${pin[@]}" "$b/notif_floor_policy" "$b/read_files" \
                "$work/p4" "$p4_files" 3 | field median_ns >>"$work/p4_policy"
            "${pin[@]}" "$fdbroker" run --transparent --policy "$work/p4.toml" -- "$b/read_files" "$work/p4" \
                "$p4_files" 3 | field median_ns >>"$work/p4_fdb"
            "${pin[@]}" "$fdbroker" run --transparent --policy "$work/p8.toml" -- "$b/read_files" "$work/p4" \
                "$p4_files" 3 | field median_ns >>"$work/p8_fdb"
            # du -s of the same tree: a stat per file. Whole runs, fdbroker's start-up included.
            "${pin[@]}" "$b/spawn_timer" 5 1 -- du -s "$work/p4" | field median_ns >>"$work/du_native"
            "${pin[@]}" "$b/spawn_timer" 5 1 -- "$fdbroker" run --transparent --policy "$work/p8.toml" -- \
                du -s "$work/p4" | field median_ns >>"$work/du_p8"
            "${pin[@]}" "$b/spawn_timer" 5 1 -- "$fdbroker" run --transparent --policy "$work/p8s.toml" -- \
                du -s "$work/p4" | field median_ns >>"$work/du_p8s"
            if [[ -n $have_proot ]]; then
                "${pin[@]}" proot "$b/read_files" "$work/p4" "$p4_files" 3 | field median_ns >>"$work/p4_proot"
            fi
        done
        result[p4_${placement}_native]=$(median <"$work/p4_native")
        result[p4_${placement}_floor]=$(median <"$work/p4_floor")
        result[p4_${placement}_confined]=$(median <"$work/p4_confined")
        result[p4_${placement}_policy]=$(median <"$work/p4_policy")
        result[p4_${placement}_fdb]=$(median <"$work/p4_fdb")
        result[p4_${placement}_proot]=$([[ -n $have_proot ]] && median <"$work/p4_proot" || echo 0)
        result[p8_${placement}_fdb]=$(median <"$work/p8_fdb")
        for v in native p8 p8s; do result[du_${placement}_$v]=$(median <"$work/du_$v"); done
    done
fi

if want MEAN; then
    # The floor ratios measured another way, as an outside user would: nothing pinned, the whole loop
    # timed at once and divided by its calls (every slow call counted, where P1 and P4 take medians), a
    # bare open+close per call; the floor and fdbroker alternate within each round. P1's pair as above,
    # and transparent mode's bare open against the same user-notification floor as P4.
    mean_iter=${MEAN_ITERATIONS:-20000}
    mkdir -p "$work/mean" && echo payload >"$work/mean/file" && chmod -R a+rX "$work"
    cat >"$work/mean.toml" <<TOML
version = 1
[profile.default]
include = ["runtime"]
read = ["$work/mean/**", "$work/file"]
TOML
    # The same with the file named exactly: such a rule grants whatever the file is, so the broker
    # opens it without first looking at what it is (the look that keeps a FIFO from stalling it and a
    # device from being opened under a tree rule): the context row shows what that look costs.
    cat >"$work/mean_named.toml" <<TOML
version = 1
[profile.default]
include = ["runtime"]
read = ["$work/mean/file"]
TOML
    : >"$work/m1_floor" && : >"$work/m1_fdb" && : >"$work/m4_floor" && : >"$work/m4_fdb" && : >"$work/m4_named"
    : >"$work/m4_stat"
    for _ in $(seq "$rounds"); do
        start_floor 0-$(($(nproc) - 1))
        FLOOR_SOCKET=$work/floor.sock "$b/open_loop_floor" --mean 1 "$work/file" "$mean_iter" 2000 |
            field mean_ns >>"$work/m1_floor"
        stop_floor
        "$fdbroker" run --policy "$work/policy.toml" -- "$b/open_loop_fdbroker" --mean 1 "$work/file" \
            "$mean_iter" 2000 | field mean_ns >>"$work/m1_fdb"
        "$b/notif_floor" "$b/open_close" "$work/mean/file" "$mean_iter" 2000 | field mean_ns >>"$work/m4_floor"
        "$fdbroker" run --transparent --policy "$work/mean.toml" -- "$b/open_close" "$work/mean/file" \
            "$mean_iter" 2000 | field mean_ns >>"$work/m4_fdb"
        "$fdbroker" run --transparent --policy "$work/mean_named.toml" -- "$b/open_close" "$work/mean/file" \
            "$mean_iter" 2000 | field mean_ns >>"$work/m4_named"
        # Context: a brokered call answered without a descriptor. The listener asks the kernel to wake
        # each side on the CPU of the other (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP), which it does for such
        # replies; a descriptor goes in with SECCOMP_IOCTL_NOTIF_ADDFD, whose wake-ups ignore that flag.
        "$fdbroker" run --transparent --policy "$work/mean.toml" -- "$b/open_close" --stat "$work/mean/file" \
            "$mean_iter" 2000 | field mean_ns >>"$work/m4_stat"
    done
    for m in m1_floor m1_fdb m4_floor m4_fdb m4_named m4_stat; do result[$m]=$(median <"$work/$m"); done
fi

if want P5; then
    # P5: start-up of a confined /bin/true, against bubblewrap and against nothing.
    p5_runs=${P5_RUNS:-20}
    : >"$work/p5_fdb" && : >"$work/p5_bwrap" && : >"$work/p5_plain" && : >"$work/p5_launcher"
    : >"$work/p5_fdb_load" && : >"$work/p5_bwrap_load" && : >"$work/p5_bwrap_filter"
    have_bwrap=$(command -v bwrap || true)
    # bwrap --unshare-all filters no system call; for context, bwrap under the program fdbroker's
    # workers run under (worker_filter.cpp), loaded by bwrap itself before its exec.
    "$b/worker_filter" >"$work/worker.bpf"
    for _ in $(seq "$rounds"); do
        "$b/spawn_timer" "$p5_runs" 3 -- "$fdbroker" run --policy "$work/policy.toml" -- /bin/true |
            field median_ns >>"$work/p5_fdb"
        [[ -n $have_bwrap ]] && "$b/spawn_timer" "$p5_runs" 3 -- bwrap --unshare-all --ro-bind / / /bin/true |
            field median_ns >>"$work/p5_bwrap"
        [[ -n $have_bwrap ]] && "$b/spawn_timer" "$p5_runs" 3 --fd 9 "$work/worker.bpf" -- \
            bwrap --unshare-all --ro-bind / / --seccomp 9 /bin/true | field median_ns >>"$work/p5_bwrap_filter"
        "$b/spawn_timer" "$p5_runs" 3 -- /bin/true | field median_ns >>"$work/p5_plain"
        "$b/spawn_timer" "$p5_runs" 3 -- "$b/launch_floor" /bin/true | field median_ns >>"$work/p5_launcher"
        # Each program alone, loaded and ended at once: what its own libraries cost before it does
        # anything (fdbroker: libstdc++, Boost, libseccomp, libcap-ng; bwrap: libc and libcap).
        "$b/spawn_timer" "$p5_runs" 3 -- "$fdbroker" --version | field median_ns >>"$work/p5_fdb_load"
        [[ -n $have_bwrap ]] && "$b/spawn_timer" "$p5_runs" 3 -- bwrap --version |
            field median_ns >>"$work/p5_bwrap_load"
    done
    result[p5_fdb]=$(median <"$work/p5_fdb")
    result[p5_bwrap]=$([[ -n $have_bwrap ]] && median <"$work/p5_bwrap" || echo 0)
    result[p5_plain]=$(median <"$work/p5_plain")
    result[p5_launcher]=$(median <"$work/p5_launcher")
    result[p5_fdb_load]=$(median <"$work/p5_fdb_load")
    result[p5_bwrap_load]=$([[ -n $have_bwrap ]] && median <"$work/p5_bwrap_load" || echo 0)
    result[p5_bwrap_filter]=$([[ -n $have_bwrap ]] && median <"$work/p5_bwrap_filter" || echo 0)
fi

if want P6; then
    # P6: decide() by rule count and depth; Google Benchmark's own repetitions (at least 3, or it
    # reports no median) give the median.
    "$b/policy_bench" --benchmark_repetitions=$((rounds < 3 ? 3 : rounds)) --benchmark_min_time=0.05 \
        --benchmark_report_aggregates_only=true --benchmark_format=csv 2>/dev/null |
        awk -F, '$1 ~ /_median"$/ { gsub(/"/, "", $1); sub(/_median$/, "", $1); print $1, $3 }' >"$work/p6"
    p6() { awk -v k="$1" '$1 == k { print $2 }' "$work/p6"; }
    worst10k=0
    for kind in hit_tree hit_glob miss; do
        for depth in 2 6 12; do
            v=$(p6 "BM_decide_${kind}/rules:10000/depth:${depth}")
            worst10k=$(awk -v a="$worst10k" -v b="$v" 'BEGIN { print (b > a ? b : a) }')
        done
    done
fi

# One table: fdbroker figure, its floor or peer, the ratio of medians, the target.
row() { # name fdbroker-value reference-value unit target-op target reference-name
    awk -v n="$1" -v f="$2" -v r="$3" -v u="$4" -v op="$5" -v t="$6" -v rn="$7" 'BEGIN {
        ratio = r > 0 ? f / r : 0
        if (op == "info") { target = "(context)"; ok = "" }
        else {
            target = sprintf("%s %.2fx", op, t)
            ok = (r <= 0 || f <= 0) ? "n/a (failed)" : (op == "<=" ? (ratio <= t) : (ratio >= t)) ? "met" : "MISSED"
        }
        printf "%-38s %10.1f %-4s %10.1f %-4s %-16s %6.2fx  %-9s %s\n", n, f, u, r, u, rn, ratio, target, ok }'
}
echo
printf '%-38s %15s %15s %-16s %7s  %s\n' benchmark fdbroker reference "" ratio target
if want P1; then
    row "P1 open round trip, cross-CPU" "$(awk -v v="${result[p1_cross_fdb]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[p1_cross_floor]}" 'BEGIN{print v/1000}')" us "<=" 1.10 floor
    row "P1 open round trip, same CPU" "$(awk -v v="${result[p1_same_fdb]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[p1_same_floor]}" 'BEGIN{print v/1000}')" us "<=" 1.10 floor
    row "P1 open round trip, same CPU" "$(awk -v v="${result[p1_same_fdb]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[p1_same_confined]}" 'BEGIN{print v/1000}')" us info 0 "confined floor"
    row "P1 open round trip, same CPU" "$(awk -v v="${result[p1_same_fdb]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[p1_same_worker]}" 'BEGIN{print v/1000}')" us info 0 "floor+fdb worker"
    row "P1 open round trip, same CPU" "$(awk -v v="${result[p1_same_fdb]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[p1_same_decide]}" 'BEGIN{print v/1000}')" us info 0 "floor+fdb+policy"
    # The least a broker with fdbroker's obligations takes, against the floor: the room it leaves.
    row "P1 floor+fdb+policy / floor, same CPU" "$(awk -v v="${result[p1_same_decide]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[p1_same_floor]}" 'BEGIN{print v/1000}')" us info 0 floor
fi
if want MEAN; then
    row "P1 mean per call, unpinned" "$(awk -v v="${result[m1_fdb]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[m1_floor]}" 'BEGIN{print v/1000}')" us "<=" 1.10 floor
    row "transparent open mean, unpinned" "$(awk -v v="${result[m4_fdb]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[m4_floor]}" 'BEGIN{print v/1000}')" us "<=" 1.10 "notif floor"
    row "transparent open mean, file named" "$(awk -v v="${result[m4_named]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[m4_floor]}" 'BEGIN{print v/1000}')" us info 0 "notif floor"
    row "transparent stat mean, unpinned" "$(awk -v v="${result[m4_stat]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[m4_fdb]}" 'BEGIN{print v/1000}')" us info 0 "open mean"
fi
if want P7; then
    row "P7 open_many of 64, per file, cross" "$(awk -v v="${result[p7_fdb]}" -v n="$p7_batch" 'BEGIN{print v/n/1000}')" \
        "$(awk -v v="${result[p7_floor]}" 'BEGIN{print v/1000}')" us "<=" 0.25 "per-call floor"
fi
if want P2; then
    row "P2 64 workers, opens/s (x1000)" "$(awk -v v="${result[p2_fdb]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[p2_floor]}" 'BEGIN{print v/1000}')" k/s ">=" 0.90 "epoll floor"
    row "P2 64 workers, opens/s (x1000)" "$(awk -v v="${result[p2_fdb]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[p2_confined]}" 'BEGIN{print v/1000}')" k/s info 0 "confined floor"
    row "P2 64 workers, opens/s (x1000)" "$(awk -v v="${result[p2_fdb]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[p2_policy]}" 'BEGIN{print v/1000}')" k/s info 0 "floor+fdb+policy"
    # The least a broker with fdbroker's obligations reaches, against the floor: the room it leaves.
    row "P2 floor+fdb+policy / floor (x1000)" "$(awk -v v="${result[p2_policy]}" 'BEGIN{print v/1000}')" \
        "$(awk -v v="${result[p2_floor]}" 'BEGIN{print v/1000}')" k/s info 0 "epoll floor"
fi
if want P3; then
    row "P3 broker RSS per idle channel" "${result[p3]}" 4 KiB "<=" 1.00 "(4 KiB budget)"
fi
ms() { awk -v v="$1" 'BEGIN{print v/1e6}'; }
if want P4; then
    for placement in free same; do
        label=$([[ $placement == free ]] && echo "unpinned" || echo "same CPU")
        row "P4 2000 files, $label" "$(ms "${result[p4_${placement}_fdb]}")" \
            "$(ms "${result[p4_${placement}_floor]}")" ms "<=" 1.10 "notif floor"
        row "P4 2000 files, $label" "$(ms "${result[p4_${placement}_fdb]}")" \
            "$(ms "${result[p4_${placement}_confined]}")" ms info 0 "confined floor"
        row "P4 2000 files, $label" "$(ms "${result[p4_${placement}_fdb]}")" \
            "$(ms "${result[p4_${placement}_policy]}")" ms info 0 "confined+policy"
        # The least a broker with fdbroker's obligations takes, against the floor: the room it leaves.
        row "P4 confined+policy / floor, $label" "$(ms "${result[p4_${placement}_policy]}")" \
            "$(ms "${result[p4_${placement}_floor]}")" ms info 0 "notif floor"
        # Against proot the target is a speed-up: proot's time over fdbroker's, at least 10.
        row "P4 proot / transparent, $label" "$(ms "${result[p4_${placement}_proot]}")" \
            "$(ms "${result[p4_${placement}_fdb]}")" ms ">=" 10 "transparent"
        # What any one-notification-per-open supervisor can reach against proot: the floor's own speed-up.
        row "P4 proot / notif floor, $label" "$(ms "${result[p4_${placement}_proot]}")" \
            "$(ms "${result[p4_${placement}_floor]}")" ms info 0 "notif floor"
        row "P4 2000 files, $label" "$(ms "${result[p4_${placement}_fdb]}")" \
            "$(ms "${result[p4_${placement}_native]}")" ms info 0 native
        row "P8 2000 files, kernel reads, $label" "$(ms "${result[p8_${placement}_fdb]}")" \
            "$(ms "${result[p4_${placement}_native]}")" ms "<=" 1.50 native
        row "P8 2000 files, kernel reads, $label" "$(ms "${result[p8_${placement}_fdb]}")" \
            "$(ms "${result[p4_${placement}_fdb]}")" ms info 0 "broker reads"
        row "P8 du -s, stat = kernel, $label" "$(ms "${result[du_${placement}_p8s]}")" \
            "$(ms "${result[du_${placement}_p8]}")" ms info 0 "stat brokered"
        row "P8 du -s, stat = kernel, $label" "$(ms "${result[du_${placement}_p8s]}")" \
            "$(ms "${result[du_${placement}_native]}")" ms info 0 "native"
    done
fi
if want P5; then
    row "P5 start-up of /bin/true" "$(awk -v v="${result[p5_fdb]}" 'BEGIN{print v/1e6}')" \
        "$(awk -v v="${result[p5_bwrap]}" 'BEGIN{print v/1e6}')" ms "<=" 1.00 bwrap
    row "P5 start-up of /bin/true" "$(ms "${result[p5_fdb]}")" "$(ms "${result[p5_bwrap_filter]}")" ms info 0 \
        "bwrap + filter"
    row "P5 start-up of /bin/true" "$(awk -v v="${result[p5_fdb]}" 'BEGIN{print v/1e6}')" \
        "$(awk -v v="${result[p5_plain]}" 'BEGIN{print v/1e6}')" ms info 0 "plain /bin/true"
    row "P5 start-up of /bin/true" "$(ms "${result[p5_fdb]}")" "$(ms "${result[p5_launcher]}")" ms info 0 \
        "launcher floor"
    # The floor launcher (fork, exec, wait; static C) against bwrap: the share of bwrap's time that any
    # launcher spends before doing anything of its own.
    row "P5 launcher floor / bwrap" "$(ms "${result[p5_launcher]}")" "$(ms "${result[p5_bwrap]}")" ms info 0 bwrap
    row "P5 loading alone: --version" "$(ms "${result[p5_fdb_load]}")" "$(ms "${result[p5_bwrap_load]}")" ms info 0 \
        "bwrap --version"
    # Each start-up less its program's loading alone: what fdbroker does of its own (policy, cgroup,
    # keeper, the worker's confinement, the broker's) against what bwrap does (namespaces, mounts).
    row "P5 start-up beyond loading" \
        "$(awk -v a="${result[p5_fdb]}" -v b="${result[p5_fdb_load]}" 'BEGIN{print (a - b) / 1e6}')" \
        "$(awk -v a="${result[p5_bwrap]}" -v b="${result[p5_bwrap_load]}" 'BEGIN{print (a - b) / 1e6}')" ms info 0 \
        "bwrap, same"
    # The same against bwrap filtering system calls as fdbroker's workers are filtered.
    row "P5 start-up beyond loading" \
        "$(awk -v a="${result[p5_fdb]}" -v b="${result[p5_fdb_load]}" 'BEGIN{print (a - b) / 1e6}')" \
        "$(awk -v a="${result[p5_bwrap_filter]}" -v b="${result[p5_bwrap_load]}" 'BEGIN{print (a - b) / 1e6}')" \
        ms info 0 "bwrap + filter"
fi
if want P6; then
    row "P6 decide(), 10000 rules, worst" "$worst10k" 1000 ns "<=" 1.00 "(1 us budget)"
    for depth in 2 6 12; do
        row "P6 decide() miss, 10000 rules, depth $depth" "$(p6 "BM_decide_miss/rules:10000/depth:$depth")" \
            "$(p6 "BM_decide_miss/rules:10/depth:$depth")" ns info 0 "same, 10 rules"
    done
fi
want P3 && echo "P3 measured with $p3_n channels in $(((p3_n + 3) / 4)) processes (4 per process)"
counts="rounds: $rounds"
want P1 && counts+="; P1 $p1_iter calls/round"
want P7 && counts+="; P7 $p7_iter batches of $p7_batch/round"
want P2 && counts+="; P2 64 x $p2_iter calls/round"
want P5 && counts+="; P5 $p5_runs runs/round"
echo "$counts"
# What crossing CPUs costs depends on how an idle CPU is woken: in a guest that halts its idle vCPUs at
# once, every cross-CPU row pays the host's wake-up (bench/README.md, "What crossing CPUs costs here").
poll=/sys/module/haltpoll/parameters/guest_halt_poll_ns
if [[ -r $poll ]]; then echo "guest halt-polling: $(cat "$poll") ns"; fi
