// The table of real programs (programs_test.cpp runs each natively and brokered). Set-up scripts run
// as root in the work directory; @W is the work directory.
#include "programs/program_case.hpp"

namespace fdbroker::test::programs {

namespace {

// A small tree most file utilities work on: text, a CSV, a symlink, a hard link, a private file, a
// sub-directory two levels deep.
constexpr const char* kTree =
    "mkdir -p tree/sub/deep\n"
    "printf 'alpha\\nbeta\\ngamma\\nfoo bar foo\\n' > tree/a.txt\n"
    "printf 'name,count\\npears,7\\napples,12\\nfigs,3\\n' > tree/data.csv\n"
    "printf 'deep foo\\n' > tree/sub/deep/d.txt\n"
    "printf 'sub\\n' > tree/sub/s.txt\n"
    "ln -s a.txt tree/link\n"
    "ln tree/a.txt tree/hard\n"
    "printf 'secret\\n' > tree/private && chmod 600 tree/private\n"
    "printf '#!/bin/sh\\n' > tree/run.sh && chmod 755 tree/run.sh\n";

// Text of a few kilobytes, compressible.
constexpr const char* kBig = "seq 1 2000 | sed 's/$/ lorem ipsum dolor sit amet/' > big.txt\n";

std::vector<ProgramCase> coreutils() {
    return {
        {.name = "cat",
         .commands = {{"/bin/cat", "tree/a.txt", "tree/sub/s.txt", "tree/link"}},
         .setup = kTree},
        {.name = "ls_l",
         .commands = {{"/bin/ls", "-lR", "--time-style=+%Y-%m-%dT%H:%M:%S", "tree"}},
         .setup = kTree},
        {.name = "cp_a",
         .commands = {{"/bin/cp", "-a", "tree", "copy"}},
         .setup = kTree,
         .times = {"copy", "copy/a.txt", "copy/link", "copy/private", "copy/sub", "copy/sub/deep/d.txt"}},
        {.name = "mv",
         .commands = {{"/bin/mv", "tree/a.txt", "tree/sub/moved.txt"}, {"/bin/mv", "tree/sub", "renamed"}},
         .setup = kTree},
        {.name = "ln",
         .commands = {{"/bin/ln", "-s", "tree/a.txt", "soft"}, {"/bin/ln", "tree/data.csv", "hardlink"}},
         .setup = kTree},
        {.name = "chmod", .commands = {{"/bin/chmod", "-R", "go-rwx,u+x", "tree"}}, .setup = kTree},
        {.name = "touch_d",
         .commands = {{"/usr/bin/touch", "-d", "2021-02-03T04:05:06.5Z", "tree/a.txt", "new"},
                      {"/usr/bin/touch", "-h", "-d", "2020-01-01T00:00:00Z", "tree/link"}},
         .setup = kTree,
         .times = {"tree/a.txt", "new", "tree/link"}},
        {.name = "mkdir_p", .commands = {{"/bin/mkdir", "-p", "-m", "0750", "made/b/c"}}},
        {.name = "rm_r", .commands = {{"/bin/rm", "-r", "tree/sub", "tree/link"}}, .setup = kTree},
        {.name = "find",
         .commands = {{"/usr/bin/find", "tree", "-name", "*.txt", "-newer", "tree/data.csv", "-o", "-type",
                       "l", "-printf", "%p %l %m\\n"},
                      {"/usr/bin/find", "tree", "-type", "f", "-size", "-1k", "-perm", "-u+x"}},
         .setup = kTree},
        {.name = "du", .commands = {{"/usr/bin/du", "-ab", "tree"}}, .setup = kTree},
        {.name = "stat",
         .commands = {{"/usr/bin/stat", "-c", "%n %s %a %F %U %G %h %Y", "tree/a.txt", "tree/link",
                       "tree/sub"},
                      {"/usr/bin/stat", "-L", "-c", "%n %F", "tree/link"}},
         .setup = kTree},
        {.name = "sort",
         .commands = {{"/usr/bin/sort", "-t,", "-k2n", "-o", "sorted.csv", "tree/data.csv"}},
         .setup = kTree},
        {.name = "sed_i",
         .commands = {{"/bin/sed", "-i", "s/foo/bar/g", "tree/a.txt", "tree/private"}},
         .setup = kTree},
        {.name = "install",
         .commands = {{"/usr/bin/install", "-m", "0640", "-D", "tree/a.txt", "dest/dir/a.txt"}},
         .setup = kTree},
        {.name = "split_truncate",
         .commands = {{"/usr/bin/split", "-b", "8000", "-d", "big.txt", "part."},
                      {"/usr/bin/truncate", "-s", "10K", "big.txt"}},
         .setup = kBig},
        {.name = "readlink_realpath",
         .commands = {{"/bin/readlink", "-f", "tree/link"},
                      {"/usr/bin/realpath", "--relative-to=tree/sub", "tree/link"}},
         .setup = kTree},
        {.name = "base64",
         .commands = {{"/usr/bin/base64", "tree/a.txt"}, {"/usr/bin/base64", "-d", "encoded"}},
         .setup = "printf 'aGVsbG8K' > encoded"},
        {.name = "sha256sum",
         .commands = {{"/usr/bin/sha256sum", "tree/a.txt", "tree/data.csv"},
                      {"/usr/bin/sha256sum", "-c", "sums"}},
         .setup = std::string(kTree) +
                  "(cd tree && sha256sum a.txt sub/s.txt) > sums && sed -i 's| | tree/|' sums\n"},
        {.name = "mkfifo", .commands = {{"/usr/bin/mkfifo", "-m", "0600", "fifo"}}},
        {.name = "find_delete",
         .commands = {{"/usr/bin/find", "tree", "-name", "*.txt", "-delete"}},
         .setup = kTree},
        // A tree of hard links, and a symlink replaced in place (ln makes a new one and renames it over).
        {.name = "cp_al_ln_sf",
         .commands = {{"/bin/cp", "-al", "tree", "linked"}, {"/bin/ln", "-sfn", "sub", "tree/link"}},
         .setup = kTree},
        {.name = "chown_same_owner",
         .commands = {{"/bin/chown", "-R", "nobody:nogroup", "tree"}},
         .setup = kTree},
        {.name = "dd",
         .commands = {{"/bin/dd", "if=big.txt", "of=copy", "bs=4096", "seek=1", "conv=fsync", "status=none"}},
         .setup = kBig},
        {.name = "shred", .commands = {{"/usr/bin/shred", "-u", "-n", "1", "big.txt"}}, .setup = kBig},
        // Shell scripts: redirections, globs, pipes and the programs they run.
        {.name = "sh_script",
         .commands = {{"/bin/sh", "-c",
                       "set -e; for f in tree/*.txt; do wc -l \"$f\"; done > counts; mkdir -p out; "
                       "sort -r counts | tee out/sorted > /dev/null; ls tree | xargs -n 2 echo > out/names; "
                       "test -e tree/missing || echo no missing >> out/names; cat out/names"}},
         .setup = kTree,
         .exec = true},
        {.name = "bash_script",
         .commands =
             {{"/bin/bash", "-c",
               "shopt -s globstar; n=0; for f in tree/**; do [[ -f $f ]] && ((n += 1)); done; echo $n; "
               "exec 3> fd3.txt; echo via three >&3; exec 3>&-; cd tree/sub && pwd && cd - > /dev/null; "
               "printf '%s\\n' *.txt"}},
         .setup = kTree,
         .exec = true},
        // A sort larger than its buffer, spilled into temporary files in the work directory.
        {.name = "sort_spill",
         .commands = {{"/usr/bin/sort", "-r", "-S", "16K", "-T", ".", "-o", "sorted", "big.txt"}},
         .setup = kBig},
    };
}

std::vector<ProgramCase> text_tools() {
    return {
        {.name = "awk",
         .commands = {{"/usr/bin/awk", "-F,", "NR > 1 { s += $2; print $1 > \"names\" } END { print s }",
                       "tree/data.csv"}},
         .setup = kTree},
        {.name = "grep_r", .commands = {{"/bin/grep", "-rn", "foo", "tree"}}, .setup = kTree},
        {.name = "diff",
         .commands = {{"/usr/bin/diff", "-u", "tree/a.txt", "tree/sub/s.txt"},
                      {"/usr/bin/diff", "-r", "tree", "other"}},
         .setup = std::string(kTree) + "cp -a tree other && echo changed > other/sub/s.txt\n"},
        {.name = "patch",
         .commands = {{"/usr/bin/patch", "-p1", "-b", "-i", "fix.diff"}},
         .setup = std::string(kTree) +
                  "cat > fix.diff <<'EOF'\n"
                  "--- a/tree/a.txt\n+++ b/tree/a.txt\n@@ -1,4 +1,4 @@\n alpha\n-beta\n+BETA\n gamma\n"
                  " foo bar foo\n"
                  "--- a/tree/sub/s.txt\n+++ b/tree/sub/s.txt\n@@ -1 +1,2 @@\n sub\n+added\n"
                  "--- /dev/null\n+++ b/tree/new.txt\n@@ -0,0 +1 @@\n+created by patch\n"
                  "EOF\n"},
        {.name = "jq",
         .commands = {{"/usr/bin/jq", "-S",
                       "[.items[] | select(.n > 1)] | {total: (map(.n) | add), names: "
                       "map(.name)}",
                       "in.json"},
                      {"/usr/bin/jq", "-r", "--arg", "k", "name", ".items[][$k]", "in.json"}},
         .setup =
             "printf "
             "'{\"items\":[{\"name\":\"a\",\"n\":1},{\"name\":\"b\",\"n\":2},{\"name\":\"c\",\"n\":3}]}' "
             "> in.json"},
        {.name = "file",
         .commands = {{"/usr/bin/file", "tree/a.txt", "tree/run.sh", "tree/link", "archive.tar.gz"}},
         .setup = std::string(kTree) +
                  "tar --mtime=@1000000000 --owner=0 --group=0 -cf - tree | gzip -n > archive.tar.gz\n"},
    };
}

}  // namespace

std::vector<ProgramCase> archive_cases();
std::vector<ProgramCase> language_cases();
std::vector<ProgramCase> example_cases();

const std::vector<ProgramCase>& program_cases() {
    static const std::vector<ProgramCase> all = [] {
        std::vector<ProgramCase> out;
        for (auto part : {coreutils(), text_tools(), archive_cases(), language_cases(), example_cases()})
            out.insert(out.end(), part.begin(), part.end());
        return out;
    }();
    return all;
}

}  // namespace fdbroker::test::programs
