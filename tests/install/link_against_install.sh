#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds the example workers the way a user would —
# only the installed headers and libraries, shared and static — and runs them under the broker.
set -euo pipefail
build=$1 source=$2
prefix=$(mktemp -d /tmp/fdbroker-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
chmod 755 "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
inc=$prefix/include
lib=$(dirname "$(find "$prefix" -name libfdbroker.so | head -1)")  # lib/ or lib/<multiarch>/

cc -Wall -Werror -I"$inc" "$source/packaging/examples/fdcat.c" -L"$lib" -lfdbroker -Wl,-rpath,"$lib" -o "$prefix/fdcat-shared"
c++ -std=c++20 -Wall -Werror -I"$inc" "$source/packaging/examples/fdstat.cpp" "$lib/libfdbroker.a" -lseccomp -pthread -o "$prefix/fdstat-static"
# Really static. (A `! ...` pipeline never trips errexit, so the check is written out.)
if grep -q libfdbroker <<<"$(ldd "$prefix/fdstat-static")"; then echo "fdstat-static loads libfdbroker.so"; exit 1; fi

policy=$prefix/policy.toml
printf 'version = 1\n[profile.default]\nread = ["%s/policy.toml"]\nruntime = ["%s"]\n' "$prefix" "$lib" > "$policy"
out=$("$prefix/bin/fdbroker" run --policy "$policy" -- "$prefix/fdcat-shared" "$policy" /etc/passwd || true)
echo "$out"
grep -qx "$policy: version = 1" <<<"$out"
grep -qx "/etc/passwd: Permission denied (EACCES)" <<<"$out"
out=$("$prefix/bin/fdbroker" run --policy "$policy" -- "$prefix/fdstat-static" "$policy" /etc/passwd || true)
echo "$out"
grep -q "^$policy: file, [0-9]* bytes, starts with \"version = 1" <<<"$out"
grep -qx "/etc/passwd: stat: Permission denied" <<<"$out"
echo "installed headers and libraries work for C (shared) and C++ (static)"
