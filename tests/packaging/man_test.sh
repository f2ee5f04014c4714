#!/usr/bin/env bash
# The hand-written man pages render without a warning from man or groff, at 80 columns, and name
# what they document.   man_test.sh MAN_DIR
set -euo pipefail
dir=$1
command -v man >/dev/null || { echo "SKIP: man is not installed"; exit 77; }
status=0
for page in fdbroker.1 fdbroker.toml.5 libfdbroker.3; do
    warnings=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$dir/$page" 2>&1 >/dev/null)
    if [ -n "$warnings" ]; then
        echo "$page:"; echo "$warnings"; status=1
    fi
    text=$(MANWIDTH=80 LC_ALL=C.UTF-8 man -l "$dir/$page" 2>/dev/null)
    grep -q "^NAME" <<<"$text" && grep -q "^SYNOPSIS" <<<"$text" || { echo "$page: no NAME or SYNOPSIS"; status=1; }
    echo "$page: $(wc -l <<<"$text") lines"
done
exit $status
