#!/usr/bin/env bash
# Runs every fuzz harness for SECONDS (default 60), two at a time, from the committed seeds.
#   tests/fuzz/run.sh [SECONDS] [NAME...]     (after building build-fuzz/, see README.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
shift || true
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(wire policy address matcher)

run_one() {
    local name=$1 corpus=build-fuzz/corpus/$1 findings=build-fuzz/findings/$1
    mkdir -p "$corpus" "$findings"
    cp -n tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
    build-fuzz/tests/fuzz/"$name"_fuzz -max_total_time="$seconds" -artifact_prefix="$findings"/ \
        -print_final_stats=1 "$corpus" > build-fuzz/findings/"$name".log 2>&1 || true
    echo "$name: $(grep -E '^stat::number_of_executed_units' build-fuzz/findings/"$name".log || echo 'no stats')," \
        "crashes: $(find "$findings" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)," \
        "slow inputs: $(find "$findings" -type f -name 'slow-unit-*' | wc -l)"
}

for ((i = 0; i < ${#names[@]}; i += 2)); do
    run_one "${names[i]}" &
    [ $((i + 1)) -lt ${#names[@]} ] && run_one "${names[i + 1]}" &
    wait
done
