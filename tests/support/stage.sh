#!/usr/bin/env bash
# What workers execute or read from the build and source trees (test programs, libfdbroker.so, the
# Python module, example scripts), copied where a worker running as nobody can reach it: a checkout
# in a private home (/root is 0700) is out of its reach. The copies keep their place relative to
# their tree (BUILD/x -> STAGE/build/x, SOURCE/x -> STAGE/source/x), so that a program finds
# libfdbroker.so through its $ORIGIN-relative RUNPATH; the harness (support/harness.cpp, staged())
# reads STAGE's path from STAGE_FILE.
#   stage.sh setup STAGE_FILE BUILD_DIR SOURCE_DIR PATH...    (a CTest fixture's setup; paths a
#                                                             partial build did not make are skipped)
#   stage.sh cleanup STAGE_FILE                               (and its cleanup)
# FDBROKER_TEST_STAGE_PARENT names where to stage (default: the first of /tmp, /var/tmp, /dev/shm
# where nobody may execute a program).
set -euo pipefail
action=$1 stage_file=$2

cleanup() {
    [ -f "$stage_file" ] || return 0
    local dir
    dir=$(cat "$stage_file")
    # Only what this script made: a name it chose, holding its marker.
    if [[ $dir == */fdbroker-stage-* ]] && [ -f "$dir/.fdbroker-stage" ]; then
        rm -rf -- "$dir"
    fi
    rm -f -- "$stage_file"
}

# Whether nobody can run a program from STAGE and read a file there: an unreachable directory on the
# way, a noexec mount or a missing permission stops it, as it would stop a worker's exec and loader.
nobody_reaches() {
    local stage=$1
    [ "$(id -u)" -eq 0 ] || return 0  # workers then run as the invoking user, who reaches the tree
    cp /bin/true "$stage/.fdbroker-probe"
    chmod 755 "$stage/.fdbroker-probe"
    setpriv --reuid=65534 --regid=65534 --clear-groups -- /bin/sh -c '"$1" && test -r "$2"' _ \
        "$stage/.fdbroker-probe" "$stage/.fdbroker-stage" 2>/dev/null
}

copy_into() {  # STAGE PATH
    local stage=$1 path=$2 rel
    if [[ $path == "$build"/* ]]; then
        rel=build/${path#"$build"/}
    elif [[ $path == "$source"/* ]]; then
        rel=source/${path#"$source"/}
    else
        echo "stage.sh: $path is in neither tree" >&2
        return 1
    fi
    [ -e "$path" ] || return 0  # an optional program this build did not make (no Go, no libc.a)
    mkdir -p "$stage/$(dirname "$rel")"
    cp -a -- "$path" "$stage/$rel"
}

setup() {
    build=$1 source=$2
    shift 2
    cleanup
    local parents=("${FDBROKER_TEST_STAGE_PARENT:-}") parent stage path tried=()
    [ -n "${parents[0]}" ] || parents=(/tmp /var/tmp /dev/shm)
    for parent in "${parents[@]}"; do
        [ -d "$parent" ] || continue
        stage=$(mktemp -d "$parent/fdbroker-stage-XXXXXX") || continue
        touch "$stage/.fdbroker-stage"
        echo "$stage" >"$stage_file"
        chmod 0755 "$stage"
        for path in "$@"; do
            copy_into "$stage" "$path"
        done
        # Everything staged must be readable (and programs executable) by every user.
        chmod -R a+rX "$stage"
        if nobody_reaches "$stage"; then
            echo "staged $# paths for workers in $stage"
            return 0
        fi
        tried+=("$parent")
        cleanup
    done
    echo "fdbroker tests: workers run as nobody, and no directory to copy their programs into (from" \
        "$build) lets nobody execute them (tried: ${tried[*]:-none})." \
        "Set FDBROKER_TEST_STAGE_PARENT to a directory every user may enter, on a file system" \
        "mounted without noexec, or put the checkout where every user can reach it." >&2
    return 1
}

case $action in
    setup) shift 2; setup "$@" ;;
    cleanup) cleanup ;;
    *) echo "usage: stage.sh setup|cleanup STAGE_FILE ..." >&2; exit 2 ;;
esac
