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
# golang-go: the Go program that transparent mode's tests run (skipped where go is missing).
# python3 ... procps: the corpus of ordinary programs run under the default system call preset
# (tests/corpus/packages.txt; those missing are skipped). patch ... openssh-client: with some of those, the
# real programs tests/programs runs natively and under fdbroker (and make, g++'s gcc, file, cmake and
# the essential coreutils, findutils, diffutils, sed, grep, tar and gzip). debootstrap and
# systemd-container: packaging/systemd-test.sh boots a Debian container to test the .deb under systemd.
packages=(cmake make g++ pkg-config libseccomp-dev libcap-ng-dev libboost-program-options-dev
          libtomlplusplus-dev libsystemd-dev libgtest-dev libgmock-dev libbenchmark-dev
          dpkg-dev file man-db systemd clang-tidy golang-go
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

build() {
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFDBROKER_WERROR=ON
    cmake --build build -j"$(nproc)"
}

# The whole suite again under AddressSanitizer and UndefinedBehaviorSanitizer, in build-asan/. Leak
# checking is off: LeakSanitizer stops the process with ptrace at exit, which a confined worker's
# seccomp filter answers by killing it (status 159).
sanitized_test() {
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFDBROKER_WERROR=ON -DFDBROKER_SANITIZE=ON \
        -DFDBROKER_BENCH=OFF
    cmake --build build-asan -j"$(nproc)"
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan --output-on-failure -j"$(nproc)"
}

# The folders clang-tidy checks (.clang-tidy says which checks): every source file in them, and the
# headers in them that those files include. A finding fails the step.
tidy_folders=(proto client policy sandbox broker tests)

tidy() {
    local folders
    folders=$(IFS='|'; echo "${tidy_folders[*]}")
    # build/compile_commands.json: the files and flags of the -Werror build.
    run-clang-tidy -p build -j"$(nproc)" -quiet -header-filter="^$PWD/($folders)/" "^$PWD/($folders)/"
}

# libfdbroker's tests (unit_proto_test, the only target built in build-tsan/) under ThreadSanitizer: the
# leader/follower hand-off of replies between threads, and fork() while other threads wait.
tsan_test() {
    cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFDBROKER_WERROR=ON -DFDBROKER_TSAN=ON \
        -DFDBROKER_BENCH=OFF
    cmake --build build-tsan -j"$(nproc)" --target unit_proto_test
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        ctest --test-dir build-tsan --output-on-failure -j"$(nproc)" -L '^unit_proto_test$'
}

demo() {
    # The example policy, plus the build tree's libfdbroker.so as a runtime path: an installed
    # libfdbroker lives under /usr/lib, which every profile may read already.
    local policy=build/demo.toml
    { cat packaging/examples/demo.toml; echo "runtime = [\"$PWD/build/proto\"]"; } > "$policy"
    echo
    echo "== fdbroker check $policy"
    build/broker/fdbroker check "$policy"
    echo
    echo "== fdbroker run --policy $policy --audit - -- fdcat /etc/debian_version /etc/shadow"
    echo "   (fdcat asks the broker for each file; the audit stream is standard output too)"
    build/broker/fdbroker run --policy "$policy" --audit - -- build/packaging/fdcat /etc/debian_version /etc/shadow ||
        echo "(fdcat exited with status $?: one file was refused, as the policy says)"
}

case "${1:-}" in
    demo) install_deps; build; demo ;;
    test)
        install_deps
        build
        ctest --test-dir build --output-on-failure -j"$(nproc)"
        packaging/systemd-test.sh build
        tidy
        sanitized_test
        tsan_test
        ;;
    build) install_deps; build ;;
    *) echo "usage: packaging/dev.sh demo|test|build" >&2; exit 2 ;;
esac
