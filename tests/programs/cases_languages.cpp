// Interpreters, a database, version control and a compiler (programs_test.cpp).
#include "programs/program_case.hpp"

namespace fdbroker::test::programs {

namespace {

// A script of the kind a data tool is: JSON in, CSV and JSON out, through a temporary file renamed into
// place, a directory made for the results, a mode set, and a listing.
constexpr const char* kPythonSetup =
    "cat > tool.py <<'PY'\n"
    "import csv, json, os, sys, tempfile\n"
    "with open('in.json') as f:\n"
    "    rows = json.load(f)['items']\n"
    "os.makedirs('out/csv', exist_ok=True)\n"
    "fd, tmp = tempfile.mkstemp(dir='out/csv', suffix='.tmp')\n"
    "with os.fdopen(fd, 'w', newline='') as f:\n"
    "    w = csv.DictWriter(f, fieldnames=['name', 'n'])\n"
    "    w.writeheader()\n"
    "    w.writerows(rows)\n"
    "os.replace(tmp, 'out/csv/items.csv')\n"
    "os.chmod('out/csv/items.csv', 0o640)\n"
    "with open('out/summary.json', 'w') as f:\n"
    "    json.dump({'total': sum(r['n'] for r in rows), 'files': sorted(os.listdir('out'))}, f, "
    "sort_keys=True)\n"
    "print(os.path.exists('missing'), os.stat('in.json').st_size, os.access('in.json', os.W_OK))\n"
    "print('done', file=sys.stderr)\n"
    "PY\n"
    "printf '{\"items\":[{\"name\":\"a\",\"n\":1},{\"name\":\"b\",\"n\":2}]}' > in.json\n";

constexpr const char* kPerlScript =
    "use strict; use warnings; use File::Copy;"
    "open(my $in, '<', 'tree/a.txt') or die; my @l = <$in>; close $in;"
    "mkdir 'perl-out' or die; copy('tree/a.txt', 'perl-out/copy.txt') or die;"
    "open(my $out, '>', 'perl-out/upper.txt') or die; print $out map { uc } @l; close $out;"
    "rename 'perl-out/copy.txt', 'perl-out/renamed.txt' or die; chmod 0600, 'perl-out/renamed.txt';"
    "printf \"%d lines, -e missing: %s\\n\", scalar @l, (-e 'missing' ? 'yes' : 'no');";

// A fixed identity and fixed dates make commits, and so their hashes, the same in both runs.
const std::vector<std::string> kGitEnv{"GIT_AUTHOR_NAME=Ada",
                                       "GIT_AUTHOR_EMAIL=ada@example.org",
                                       "GIT_COMMITTER_NAME=Ada",
                                       "GIT_COMMITTER_EMAIL=ada@example.org",
                                       "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z",
                                       "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z"};

constexpr const char* kCProject =
    "mkdir -p proj tmp\n"
    "printf '#include \"greet.h\"\\nint main(void) { greet(\"world\"); return 0; }\\n' > proj/main.c\n"
    "printf 'void greet(const char *who);\\n' > proj/greet.h\n"
    "printf '#include <stdio.h>\\n#include \"greet.h\"\\nvoid greet(const char *who) { printf(\"hello, "
    "%%s\\\\n\", who); "
    "}\\n' > proj/greet.c\n"
    "printf 'CFLAGS = -O2 -Wall\\nhello: main.o greet.o\\n\\t$(CC) -o $@ $^\\nmain.o greet.o: greet.h\\n' > "
    "proj/Makefile\n";

// One argument: sqlite3 runs it as one batch.
constexpr const char* kSql =
    "create table fruit(name text, n int); insert into fruit values ('pear', 7), ('fig', 3); "
    "select name, n from fruit order by n;";

constexpr const char* kWalSql =
    "pragma journal_mode=wal; create table t(x); insert into t values (1), (2); select sum(x) from t;";

// CommonJS by its extension, so node looks for no package.json above the work directory.
constexpr const char* kNodeScript =
    "const fs = require('fs'); const os = require('os'); const zlib = require('zlib');\n"
    "fs.mkdirSync('node-out');\n"
    "const text = fs.readFileSync('in.json', 'utf8');\n"
    "const items = JSON.parse(text).items;\n"
    "fs.writeFileSync('node-out/names.txt', items.map(i => i.name).join('\\n') + '\\n');\n"
    "fs.writeFileSync('node-out/in.json.gz', zlib.gzipSync(text, {level: 9}));\n"
    "fs.renameSync('node-out/names.txt', 'node-out/list.txt'); fs.chmodSync('node-out/list.txt', 0o600);\n"
    "console.log(items.length, os.cpus().length > 0, os.totalmem() > 0, fs.existsSync('missing'));\n";

}  // namespace

std::vector<ProgramCase> language_cases() {
    return {
        {.name = "python3_script", .commands = {{"/usr/bin/python3", "tool.py"}}, .setup = kPythonSetup},
        {.name = "python3_venv", .commands = {{"/usr/bin/python3", "-m", "venv", "--without-pip", "venv"}}},
        {.name = "node",
         .commands = {{"/usr/bin/node", "tool.cjs"}},
         .setup = std::string("cat > tool.cjs <<'EOF'\n") + kNodeScript +
                  "EOF\nprintf '{\"items\":[{\"name\":\"a\"},{\"name\":\"b\"}]}' > in.json\n",
         // libuv sizes node's heap by its cgroup's memory limits, which an administrator grants or lets
         // it do without (it then takes the machine's memory, and the refusals are audited).
         .read = {"/sys/fs/cgroup/**"}},
        {
            .name = "perl",
            .commands = {{"/usr/bin/perl", "-e", kPerlScript},
                         {"/usr/bin/perl", "-pi", "-e", "s/foo/baz/", "tree/a.txt"}},
            .setup = "mkdir tree && printf 'foo\\nbar\\n' > tree/a.txt\n",
            // Perl's @INC is in /etc/perl and /usr, which the runtime include grants.
        },
        {.name = "sqlite3",
         .commands = {{"/usr/bin/sqlite3", "-init", "init.sql", "db.sqlite", kSql},
                      {"/usr/bin/sqlite3", "-init", "init.sql", "db.sqlite", "select sum(n) from fruit;"}},
         .setup = "printf '.headers on\\n.mode csv\\n' > init.sql\n"},
        {.name = "git",
         .commands = {{"/usr/bin/git", "init", "-q", "repo"},
                      {"/usr/bin/git", "-C", "repo", "add", "."},
                      {"/usr/bin/git", "-C", "repo", "commit", "-q", "-m", "first"},
                      {"/usr/bin/git", "-C", "repo", "mv", "a.txt", "b.txt"},
                      {"/usr/bin/git", "-C", "repo", "commit", "-q", "-m", "second"},
                      {"/usr/bin/git", "-C", "repo", "log", "--stat"},
                      {"/usr/bin/git", "-C", "repo", "status", "--short"}},
         .setup =
             "mkdir repo && printf 'one\\ntwo\\n' > repo/a.txt && mkdir repo/sub && echo s > repo/sub/s\n",
         .env = kGitEnv,
         .exec = true,
         .volatile_content = {"repo/.git/index"}},
        {.name = "gcc",
         .commands = {{"/usr/bin/gcc", "-O2", "-Wall", "-o", "proj/hello", "proj/main.c", "proj/greet.c"},
                      {"@W/proj/hello"}},
         .setup = kCProject,
         .env = {"TMPDIR=@W/tmp"},
         .exec = true},
        {.name = "make",
         .commands = {{"/usr/bin/make", "-C", "proj"}, {"@W/proj/hello"}},
         .setup = kCProject,
         .env = {"TMPDIR=@W/tmp"},
         .exec = true},
        {
            .name = "openssl",
            .commands = {{"/usr/bin/openssl", "dgst", "-sha256", "in.txt"},
                         {"/usr/bin/openssl", "enc", "-base64", "-in", "in.txt", "-out", "in.b64"}},
            .setup = "echo 'some data' > in.txt\n",
        },
        {.name = "ssh_keygen",
         .commands = {{"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", "key"},
                      {"/usr/bin/ssh-keygen", "-c", "-C", "renamed", "-P", "", "-f", "key"}},
         // A new key each time: compared by type, mode and owner.
         .volatile_content = {"key", "key.pub"}},
        {.name = "cmake_script",
         .commands = {{"/usr/bin/cmake", "-P", "script.cmake"}},
         .setup =
             "printf 'file(WRITE out/a.txt \"hello\\\\n\")\\nfile(GLOB t *.cmake)\\nmessage(STATUS "
             "\"${t}\")\\n"
             "file(COPY out/a.txt DESTINATION copy)\\nfile(SHA256 out/a.txt h)\\nmessage(\"${h}\")\\n' > "
             "script.cmake\n",
         // Where CMake looks for its documentation and a source tree's marker outside /usr, and GnuTLS's
         // configuration, none of which exists.
         .read = {"/Utilities/Sphinx/html/index.html", "/CMakeFiles/CMakeSourceDir.txt",
                  "/etc/gnutls/config"}},
        // Write-ahead logging: a -wal file, and a -shm file the library maps and locks.
        {.name = "sqlite3_wal",
         .commands = {{"/usr/bin/sqlite3", "-init", "init.sql", "db.sqlite", kWalSql}},
         .setup = "printf '.bail on\\n' > init.sql\n"},
        {.name = "python3_compileall",
         .commands = {{"/usr/bin/python3", "-m", "compileall", "-q", "pkg"},
                      {"/usr/bin/python3", "-m", "zipfile", "-c", "data.zip", "data"}},
         // The zip file records its members' times: those of the set-up, not of compileall's output.
         .setup = "mkdir -p pkg/sub data && echo 'X = 1' > pkg/__init__.py && echo 'Y = 2' > pkg/sub/m.py && "
                  "echo 'a,b' > data/t.csv\n"},
        // A local clone hard-links the objects; gc repacks them, running git's helpers.
        {.name = "git_clone_gc",
         .commands = {{"/usr/bin/git", "-C", "repo", "commit", "-q", "--allow-empty", "-m", "second"},
                      {"/usr/bin/git", "clone", "-q", "repo", "clone"},
                      {"/usr/bin/git", "-C", "clone", "gc", "-q"},
                      {"/usr/bin/git", "-C", "clone", "log", "--oneline"}},
         // The first commit's dates are fixed too, so that both runs start from the same history.
         .setup = "export GIT_AUTHOR_DATE=2019-01-01T00:00:00Z GIT_COMMITTER_DATE=2019-01-01T00:00:00Z\n"
                  "git init -q repo && echo a > repo/a && git -C repo add a && "
                  "git -C repo -c user.name=A -c user.email=a@b commit -q -m first\n",
         .env = kGitEnv,
         .exec = true,
         .volatile_content = {"repo/.git/index", "clone/.git/index"}},
        {.name = "convert_thumbnail",
         .commands = {{"/usr/bin/convert-im6.q16", "photo.png", "-thumbnail", "16x12", "-strip", "-define",
                       "png:exclude-chunks=date,time", "thumb.png"}},
         .setup = "convert-im6.q16 -size 64x48 gradient:red-blue -define png:exclude-chunks=date,time "
                  "photo.png\n"},
    };
}

}  // namespace fdbroker::test::programs
