#!/usr/bin/env bash
# Build helper for a fresh Debian 12 machine.
#   packaging/dev.sh demo   install build dependencies, build, run the demo
#   packaging/dev.sh test   install build dependencies, build with -Werror, run the whole test suite,
#                           test the .deb under a booted systemd (packaging/systemd-test.sh), run
#                           clang-tidy, build with ASan+UBSan in build-asan/ and run the suite again,
#                           then build libfdbroker's tests with TSan in build-tsan/ and run them
#   packaging/dev.sh build  build only
set -euo pipefail
cd "$(dirname "$0")/.."

# dpkg-dev and file: cpack's .deb (Depends from dpkg-shlibdeps); man-db and systemd: the packaging
# tests check the man pages and units with man and systemd-analyze. clang-tidy: the tidy step.
# lintian: the package test checks the .deb with it. ccache: the test command's compiler cache.
# golang-go: the Go program that transparent mode's tests run (skipped where go is missing).
# python3 ... procps: the corpus of ordinary programs run under the default system call preset
# (tests/corpus/packages.txt; those missing are skipped). patch ... openssh-client: with some of those, the
# real programs tests/programs runs natively and under fdbroker (and make, g++'s gcc, file, cmake and
# the essential coreutils, findutils, diffutils, sed, grep, tar and gzip). debootstrap and
# systemd-container: packaging/systemd-test.sh boots a Debian container to test the .deb under systemd.
packages=(cmake make g++ pkg-config libseccomp-dev libcap-ng-dev libboost-program-options-dev
          libtomlplusplus-dev libsystemd-dev libgtest-dev libgmock-dev libbenchmark-dev
          dpkg-dev file man-db systemd clang-tidy golang-go lintian ccache
          python3 python3-venv nodejs git sqlite3 zstd bzip2 openssl curl imagemagick procps
          patch jq perl xz-utils openssh-client debootstrap systemd-container)

install_deps() {
    local missing=() p
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    if [ "$(id -u)" -ne 0 ]; then
        echo "dev.sh: missing build dependencies; as root run: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# What the test command may keep between runs, outside the checkout: the compiler's cache, the files
# clang-tidy found clean, and packaging/systemd-test.sh's Debian root.
ci_cache=${FDBROKER_CI_CACHE:-/var/cache/fdbroker-ci}
cmake_cache_flags=()

# The test command compiles the tree three times (plain, ASan, TSan) and clang-tidy reads it once more:
# with a cache kept where the next run on this machine finds it, an unchanged file costs nothing. The
# checkout's own path is taken out of what ccache compares, so that another clone hits the same entries.
use_compiler_cache() {
    command -v ccache >/dev/null && mkdir -p "$ci_cache/ccache" 2>/dev/null && [ -w "$ci_cache/ccache" ] ||
        return 0
    export CCACHE_DIR=$ci_cache/ccache CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=5G
    cmake_cache_flags=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
}

build() {
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFDBROKER_WERROR=ON "${cmake_cache_flags[@]}"
    cmake --build build -j"$(nproc)"
}

# The whole suite again under AddressSanitizer and UndefinedBehaviorSanitizer, in build-asan/. Leak
# checking is off: LeakSanitizer stops the process with ptrace at exit, which a confined worker's
# seccomp filter answers by killing it (status 159).
sanitized_test() {
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFDBROKER_WERROR=ON -DFDBROKER_SANITIZE=ON \
        -DFDBROKER_BENCH=OFF "${cmake_cache_flags[@]}"
    cmake --build build-asan -j"$(nproc)"
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        in_private_checkout ctest --test-dir build-asan --output-on-failure -j"$(nproc)"
}

# The folders clang-tidy checks (.clang-tidy says which checks): every source file in them, and the
# headers in them that those files include. A finding fails the step. build/compile_commands.json holds
# the files and flags of the -Werror build; a file found clean before with the same preprocessed input,
# flags, .clang-tidy and installed packages is not read again (packaging/tidy.py).
tidy_folders=(proto client policy sandbox broker tests)

tidy() {
    local cache=$ci_cache/tidy
    mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ] || cache=build/tidy-clean
    packaging/tidy.py build "$cache" "${tidy_folders[@]}"
}

# libfdbroker's tests (unit_proto_test, the only target built in build-tsan/) under ThreadSanitizer: the
# leader/follower hand-off of replies between threads, and fork() while other threads wait.
tsan_test() {
    cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFDBROKER_WERROR=ON -DFDBROKER_TSAN=ON \
        -DFDBROKER_BENCH=OFF "${cmake_cache_flags[@]}"
    cmake --build build-tsan -j"$(nproc)" --target unit_proto_test
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        ctest --test-dir build-tsan --output-on-failure -j"$(nproc)" -L '^unit_proto_test$'
}

demo() {
    # fdcat runs as nobody, who may not reach the build tree (a checkout in /root, which is 0700): it
    # and libfdbroker.so are copied, in their places relative to each other (fdcat finds the library
    # through $ORIGIN), into a directory every user can reach, removed at the end. That library
    # directory is the profile's runtime path: an installed libfdbroker lives under /usr/lib, which
    # every profile may read already.
    local stage policy=build/demo.toml
    stage=$(mktemp -d /tmp/fdbroker-demo-XXXXXX)
    # shellcheck disable=SC2064 # $stage is local: expanded now, not at exit
    trap "rm -rf '$stage'" EXIT
    chmod 755 "$stage"
    mkdir "$stage/packaging" "$stage/client"
    cp build/packaging/fdcat "$stage/packaging/"
    cp -a build/client/libfdbroker.so* "$stage/client/"
    { cat packaging/examples/demo.toml; echo "runtime = [\"$stage/client\"]"; } > "$policy"
    echo
    echo "== fdbroker check $policy"
    build/broker/fdbroker check "$policy"
    echo
    echo "== fdbroker run --policy $policy --audit - -- fdcat /etc/debian_version /etc/shadow"
    echo "   (fdcat asks the broker for each file; the audit stream is standard output too)"
    build/broker/fdbroker run --policy "$policy" --audit - -- "$stage/packaging/fdcat" /etc/debian_version /etc/shadow ||
        echo "(fdcat exited with status $?: one file was refused, as the policy says)"
}

# The suite must pass wherever the checkout lives, a private home included: workers run as nobody,
# and the tests copy what they run where nobody reaches it (tests/support/stage.sh). To keep it so,
# the tests run with the checkout behind a directory only root may enter, as a clone into /root would
# be: in a mount namespace of their own, a 0700 tmpfs covers the checkout's parent directory and the
# checkout is mounted back at its own path inside it. Where that cannot be (not root, no unshare, or
# the parent is a directory the tests use themselves), they run from the checkout as it is.
in_private_checkout() {
    local parent
    parent=$(dirname "$PWD")
    case $parent in
        / | /tmp | /var/tmp | /dev/shm | /run | /var | /usr | /etc | /dev | /proc | /sys)
            echo "dev.sh: the checkout's parent is $parent: the tests run from it as it is" >&2
            "$@"
            return ;;
    esac
    if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
        echo "dev.sh: not root or no unshare: the tests run from the checkout as it is" >&2
        "$@"
        return
    fi
    # fd 3 holds the checkout while the tmpfs covers its parent; mount binds it back from there.
    unshare --mount --propagation private -- bash -c '
        set -e
        checkout=$1 parent=$(dirname "$1")
        shift
        exec 3<"$checkout"
        mount -t tmpfs -o mode=0700 fdbroker-private "$parent"
        mkdir "$parent/$(basename "$checkout")"
        mount --no-canonicalize --bind /proc/self/fd/3 "$checkout"
        exec 3<&-
        cd "$checkout"
        if setpriv --reuid=65534 --regid=65534 --clear-groups -- test -x "$checkout/packaging/dev.sh"; then
            echo "dev.sh: nobody still reaches $checkout: the check would prove nothing" >&2
            exit 1
        fi
        echo "dev.sh: the tests run with $parent only root may enter (mode 0700), as in a private home"
        "$@"' _ "$PWD" "$@"
}

case "${1:-}" in
    demo) install_deps; build; demo ;;
    test)
        install_deps
        use_compiler_cache
        build
        in_private_checkout ctest --test-dir build --output-on-failure -j"$(nproc)"
        packaging/systemd-test.sh build
        tidy
        sanitized_test
        tsan_test
        ;;
    build) install_deps; build ;;
    *) echo "usage: packaging/dev.sh demo|test|build" >&2; exit 2 ;;
esac
