#!/usr/bin/env bash
# Builds the .deb from the build tree with cpack, unpacks it into a scratch root, and checks it the way
# a user meets it: its file list and control data, the packaged fdbroker, and a C program built
# against the unpacked tree once with pkg-config and once with find_package(fdbroker) (shared and
# static), each of which must load the packaged library and call it.
#   deb_test.sh BUILD_DIR SOURCE_DIR LIBDIR BUILD_TYPE VERSION [EXTRA_CFLAGS]
# EXTRA_CFLAGS: a sanitized build packages instrumented libraries, which only instrumented programs link.
set -euo pipefail
build=$1 here=$2 libdir=$3 build_type=$4 version=$5 extra_cflags=${6:-}
# dpkg-shlibdeps (dpkg-dev) and file: cpack needs them to compute the package's Depends.
for tool in cpack dpkg-deb dpkg-shlibdeps file cc pkg-config cmake objdump ldd; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

tmp=$(mktemp -d /tmp/fdbroker-deb-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
step() { echo "== $*"; }

step "cpack"
cpack --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; exit 1; }
debs=("$tmp"/out/fdbroker_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || { echo "expected one fdbroker_*.deb, got: ${debs[*]}"; exit 1; }
deb=${debs[0]}
dpkg-deb -x "$deb" "$root"

step "lintian"
if command -v lintian >/dev/null; then
    # Errors and warnings fail. Overrides, each with its reason: deb/lintian-overrides.
    lintian --allow-root "$deb" >"$tmp/lintian.log" 2>&1 || true
    if grep -E '^[EW]: ' "$tmp/lintian.log"; then
        echo "lintian reports errors or warnings"; exit 1
    fi
    grep -E '^[EW]: ' "$tmp/lintian.log" || echo "lintian: no errors or warnings"
else
    echo "(no lintian: skipped)"
fi

step "file list"
sed -e "s|@LIBDIR@|$libdir|" -e "s|@BUILDTYPE@|${build_type,,}|" -e "s|@VERSION@|$version|" \
    "$here/expected-files.txt" | sort >"$tmp/expected"
(cd "$root" && find . -mindepth 1 \( -type f -printf '%P\n' -o -type l -printf '%P -> %l\n' \)) |
    sed 's|^|/|' | sort >"$tmp/actual"
diff -u "$tmp/expected" "$tmp/actual" || { echo "the package's files differ from expected-files.txt"; exit 1; }

step "control data"
[ "$(dpkg-deb -f "$deb" Package)" = fdbroker ]
[ "$(dpkg-deb -f "$deb" Section)" = admin ]
[ "$(dpkg-deb -f "$deb" Version)" = "$version-1" ]
grep -q 'libseccomp2' <<<"$(dpkg-deb -f "$deb" Depends)" || { echo "Depends lacks libseccomp2"; exit 1; }
grep -q 'libsystemd0' <<<"$(dpkg-deb -f "$deb" Depends)" || { echo "Depends lacks libsystemd0 (dlopened)"; exit 1; }
grep -q 'procps' <<<"$(dpkg-deb -f "$deb" Depends)" || { echo "Depends lacks procps (ExecReload=/bin/kill)"; exit 1; }
dpkg-deb -e "$deb" "$tmp/control"
grep -qx /etc/fdbroker/policy.toml "$tmp/control/conffiles" || { echo "policy.toml is not a conffile"; exit 1; }
grep -q "^libfdbroker 0 fdbroker" "$tmp/control/shlibs" || { echo "no shlibs entry for libfdbroker.so.0"; exit 1; }
lib=$root/usr/$libdir
soname=$(objdump -p "$lib/libfdbroker.so.$version" | sed -n 's/^ *SONAME *//p')
[ "$soname" = libfdbroker.so.0 ] || { echo "SONAME is '$soname', not libfdbroker.so.0"; exit 1; }

step "packaged fdbroker checks the packaged policy and examples"
"$root/usr/bin/fdbroker" check "$root/etc/fdbroker/policy.toml" "$root"/usr/share/doc/fdbroker/examples/*.toml

# No broker for the consumers: an explicit socket path where nothing listens.
export FDBROKER_SOCKET=$tmp/no-broker.sock
unset FDBROKER_FD
# Whether PROGRAM loads libfdbroker.so, and from where. (ldd's output is read whole: `ldd | grep -q`
# fails under pipefail whenever grep stops reading first.)
libfdbroker_of() { ldd "$1" | sed -n 's/^[[:space:]]*libfdbroker\.so\.0 => \([^ ]*\).*/\1/p'; }
runs_packaged() {  # PROGRAM: runs it, and it must have loaded libfdbroker from the unpacked tree (or none)
    "$1"
    local from
    from=$(libfdbroker_of "$1")
    [ -z "$from" ] || [[ $from == "$lib/"* ]] || { echo "$1 loads $from, not the package's library"; exit 1; }
}

step "pkg-config consumer"
# Only the package's .pc files, with paths inside the unpacked root.
export PKG_CONFIG_LIBDIR=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
flags=$(pkg-config --cflags --libs fdbroker)
echo "pkg-config --cflags --libs fdbroker: $flags"
grep -q -- "-I$root/" <<<"$flags" || { echo "pkg-config's include path is not in the package"; exit 1; }
# shellcheck disable=SC2086 # flags are words
cc -Wall -Werror $extra_cflags "$here/consumer/consumer.c" $flags -Wl,-rpath,"$lib" -o "$tmp/consumer-pc"
[ -n "$(libfdbroker_of "$tmp/consumer-pc")" ] || { echo "consumer-pc is not linked with libfdbroker"; exit 1; }
runs_packaged "$tmp/consumer-pc"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

step "CMake consumer (find_package)"
cmake -S "$here/consumer" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$root/usr" -DEXPECTED_ROOT="$root" \
    -DCMAKE_C_FLAGS="-Wall -Werror $extra_cflags" -DCMAKE_CXX_FLAGS="$extra_cflags" \
    -DCMAKE_EXE_LINKER_FLAGS="$extra_cflags" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }
cmake --build "$tmp/cmake" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
[ -n "$(libfdbroker_of "$tmp/cmake/consumer_shared")" ] || { echo "consumer_shared is not linked with libfdbroker"; exit 1; }
[ -z "$(libfdbroker_of "$tmp/cmake/consumer_static")" ] || { echo "consumer_static loads libfdbroker.so"; exit 1; }
runs_packaged "$tmp/cmake/consumer_shared"
runs_packaged "$tmp/cmake/consumer_static"
step "Python module"
if [ -n "$extra_cflags" ]; then
    # An instrumented libfdbroker cannot be loaded into an uninstrumented python3 (the sanitizer's
    # runtime must come first); python_test skips for the same reason.
    echo "(a sanitized build: skipped)"
elif command -v python3 >/dev/null; then
    # Debian's python3 reads /usr/lib/python3/dist-packages; here the unpacked copy, loading the
    # package's library. No broker listens: the call must fail with ENOTCONN, as the C API does.
    out=$(PYTHONPATH=$root/usr/lib/python3/dist-packages FDBROKER_LIBRARY=$lib/libfdbroker.so.0 \
        PYTHONDONTWRITEBYTECODE=1 python3 -c '
import errno, fdbroker
try:
    fdbroker.open("/etc/hostname")
except OSError as e:
    print(fdbroker.__file__, errno.errorcode[e.errno])')
    [ "$out" = "$root/usr/lib/python3/dist-packages/fdbroker/__init__.py ENOTCONN" ] ||
        { echo "the packaged Python module printed '$out'"; exit 1; }
else
    echo "(no python3: skipped)"
fi
echo "the package installs, and its library works through pkg-config, CMake and Python"
