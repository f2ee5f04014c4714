#!/bin/bash
# The static thread-local storage of each program and library given stays within a budget: the dynamic
# loader zeroes all of it at every start of a program (and every thread it starts), page by page, and
# on a machine where a page fault costs tens of microseconds a 64 KiB buffer there costs more than the
# rest of the broker's own start-up work.
#
# usage: tls_test.sh BUDGET_BYTES FILE...
set -euo pipefail
command -v readelf >/dev/null || { echo "readelf is not installed"; exit 77; }
budget=$1
shift
status=0
for file in "$@"; do
    # The PT_TLS program header's MemSiz (sixth field), if there is one.
    size=$(readelf -lW "$file" | awk '$1 == "TLS" { print $6 }')
    size=$((${size:-0}))
    if ((size > budget)); then
        echo "FAIL: $file has $size bytes of static TLS (budget $budget)"
        status=1
    else
        echo "ok: $file has $size bytes of static TLS (budget $budget)"
    fi
done
exit $status
