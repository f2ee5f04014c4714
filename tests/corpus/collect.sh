#!/usr/bin/env bash
# Records the system calls a corpus of ordinary Debian programs makes (strace -f), the evidence behind
# the default system call preset that docs/syscalls.md classifies.
#   tests/corpus/collect.sh [OUT_DIR]
# OUT_DIR (default ./syscall-corpus) receives one file per program run, NAME.calls, with the distinct
# system calls it and its children made, and all.calls, their union with the number of runs making
# each call. Programs that are not installed are skipped with a note; packages.txt names the Debian
# packages that provide them.
set -uo pipefail
# Debian's own programs, not whatever a local installation puts first.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
out=$(realpath -m "${1:-syscall-corpus}")
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
command -v strace >/dev/null || { echo "collect.sh: strace is not installed (apt-get install strace)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

# trace NAME COMMAND...: runs COMMAND under strace and keeps the names of the calls made.
trace() {
    local name=$1
    shift
    if ! command -v "$1" >/dev/null; then
        echo "collect.sh: $name: $1 is not installed, skipped" >&2
        return
    fi
    strace -f -qq -o "$work/$name.trace" "$@" >/dev/null 2>"$work/$name.err" </dev/null ||
        echo "collect.sh: $name exited $? (see its calls all the same)" >&2
    # Lines are "PID NAME(ARGS" or "PID <... NAME resumed>"; +++ and --- lines are exits and signals.
    sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' "$work/$name.trace" | sort -u >"$out/$name.calls"
    rm -f "$work/$name.trace"
}

mkdir -p src tree && seq 1 2000 | shuf >src/numbers && echo hello >src/hello
for i in 1 2 3; do mkdir -p "tree/d$i" && cp src/numbers "tree/d$i/f"; done

trace ls ls -l /usr/bin
trace cp cp -a tree tree-copy
trace mv mv tree-copy tree-moved
trace sort sort -n src/numbers -o sorted
trace du du -s tree
trace find find tree -name 'f' -newer src/hello
trace stat stat src/hello
trace touch touch -d '2020-01-01' src/hello
trace chmod chmod -R go-w tree
trace ln ln -s hello src/link
trace mkdir mkdir -p a/b/c
trace rm rm -rf tree-moved a
trace tar tar -cf t.tar tree
trace gzip gzip -k t.tar
trace xz xz -k -T2 t.tar
trace zstd zstd -q -k t.tar
trace bzip2 bzip2 -k t.tar
trace tar-x tar -xzf t.tar.gz --one-top-level=x
trace sed sed -i s/hello/bye/ src/hello

cat >threads.py <<'PY'
import subprocess, threading, tempfile, os
out = []
def work(n):
    out.append(subprocess.run(["echo", str(n)], capture_output=True, text=True).stdout)
threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
with tempfile.NamedTemporaryFile("w", dir=".", delete=False) as f: f.write("".join(sorted(out)))
os.rename(f.name, "threads.out")
PY
trace python3 python3 threads.py
trace python3-venv python3 -m venv --without-pip venv
trace perl perl -MFile::Temp -e 'my $t = File::Temp->new; print $t "x"; my @a = sort map { $_ * 2 } 1..1000; print scalar(@a), "\n"'
trace node node -e 'const fs = require("fs"); fs.writeFileSync("n.txt", "x"); console.log(fs.readFileSync("n.txt", "utf8"))'

git_env=(env HOME="$work" GIT_AUTHOR_NAME=c GIT_AUTHOR_EMAIL=c@example.org GIT_COMMITTER_NAME=c
         GIT_COMMITTER_EMAIL=c@example.org)
trace git-init "${git_env[@]}" git init -q repo
cp src/numbers repo/
trace git-add "${git_env[@]}" git -C repo add numbers
trace git-commit "${git_env[@]}" git -C repo commit -q -m first
trace git-log "${git_env[@]}" git -C repo log --oneline
trace git-status "${git_env[@]}" git -C repo status --short

mkdir -p c && printf '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n' >c/hi.c
printf 'hi: hi.c\n\t$(CC) -O2 -o $@ $<\n' >c/Makefile
trace make make -s -C c

trace sqlite3 sqlite3 db.sqlite 'create table t(x); insert into t values (1),(2); select sum(x) from t;'
trace openssl-dgst openssl dgst -sha256 src/numbers
trace openssl-enc openssl enc -aes-256-cbc -pbkdf2 -pass pass:x -in src/numbers -out n.enc
trace openssl-req openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 1 -subj /CN=x
trace curl curl -s -o curl.out "file://$work/src/numbers"
if [ -x /usr/bin/convert ] && /usr/bin/convert -version 2>/dev/null | grep -q ImageMagick; then
    trace convert /usr/bin/convert -size 64x64 xc:red -blur 0x2 img.png
else
    echo "collect.sh: convert: ImageMagick is not installed, skipped" >&2
fi
trace top top -b -n1
trace ps ps aux
if command -v go >/dev/null; then
    mkdir -p gobin && cp "$here/../support/go_files/main.go" gobin/ &&
        (cd gobin && GOCACHE="$work/gocache" GO111MODULE=off CGO_ENABLED=0 go build -o go_files main.go) &&
        mkdir -p godir && trace go-program gobin/go_files "$work/godir" 20
fi

cd "$out" || exit 1
cat -- *.calls | sort | uniq -c | sort -k2 | awk '{print $2, $1}' >all.calls.tmp && mv all.calls.tmp all.calls
echo "collect.sh: $(ls -- *.calls | grep -vc '^all.calls$') runs, $(wc -l <all.calls) distinct calls: $out" >&2
