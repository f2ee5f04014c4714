// The corpus of ordinary Debian programs (packages.txt) under `fdbroker run --transparent`, with a
// policy granting what each needs: none may be killed by the default system call preset, and each
// must exit as it does natively, run as the same user (nobody) in a directory of its own. A program
// that is not installed is skipped, naming its package.
#include <gtest/gtest.h>
#include <unistd.h>

#include <ostream>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace fdbroker::test {
namespace {

struct Case {
    const char* name;
    std::vector<const char*> needs;  // programs that must be installed (absolute paths)
    const char* package;             // the Debian package that provides them
    std::string script;              // run by /bin/sh in the work directory
};

// gtest names a case by its name (the default prints its bytes).
void PrintTo(const Case& c, std::ostream* os) {
    *os << c.name;
}

// Inputs every case may use, created in each work directory: numbers, a tree, a C program.
void prepare(const std::string& dir) {
    ::mkdir((dir + "/tmp").c_str(), 0700);
    ::mkdir((dir + "/tree").c_str(), 0755);
    ::mkdir((dir + "/tree/sub").c_str(), 0755);
    std::string numbers;
    for (int i = 2000; i > 0; --i)
        numbers += std::to_string(i * 7919 % 2003) + "\n";
    write_file(dir + "/numbers", numbers);
    write_file(dir + "/tree/a", "hello\n");
    write_file(dir + "/tree/sub/b", numbers);
    write_file(dir + "/hi.c", "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n");
    write_file(dir + "/Makefile", "hi: hi.c\n\t$(CC) -O2 -o $@ $<\n");
    write_file(
        dir + "/threads.py",
        "import subprocess, threading, tempfile, os\n"
        "out = []\n"
        "def work(n):\n"
        "    out.append(subprocess.run(['echo', str(n)], capture_output=True, text=True).stdout)\n"
        "ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]\n"
        "for t in ts: t.start()\n"
        "for t in ts: t.join()\n"
        "with tempfile.NamedTemporaryFile('w', dir='.', delete=False) as f: f.write(''.join(sorted(out)))\n"
        "os.rename(f.name, 'threads.out')\n");
    give_to_nobody(dir);
}

const std::vector<Case>& cases() {
    static const std::vector<Case> all = {
        {"coreutils",
         {"/bin/cp", "/usr/bin/find"},
         "coreutils findutils",
         "cp -a tree t2 && mv t2 t3 && sort -n numbers -o sorted && du -s tree && find tree -name b && "
         "stat tree/a && touch -d 2020-01-01 tree/a && chmod -R go-w tree && ln -s a tree/l && mkdir -p "
         "x/y/z && "
         "rm -rf t3 x && ls -l /usr/bin >/dev/null && sed -i s/hello/bye/ tree/a"},
        {"tar-gzip", {"/bin/tar", "/bin/gzip"}, "tar gzip", "tar -czf t.tgz tree && tar -xzf t.tgz -C tmp"},
        {"xz", {"/usr/bin/xz"}, "xz-utils", "tar -cf t.tar tree && xz -k -T2 t.tar && xz -t t.tar.xz"},
        {"zstd",
         {"/usr/bin/zstd"},
         "zstd",
         "zstd -q numbers -o n.zst && zstd -q -d n.zst -o n2 && cmp numbers n2"},
        {"bzip2", {"/bin/bzip2"}, "bzip2", "bzip2 -k numbers && bzip2 -t numbers.bz2"},
        {"python3", {"/usr/bin/python3"}, "python3", "python3 threads.py && cat threads.out"},
        {"python3-venv", {"/usr/bin/python3"}, "python3-venv", "python3 -m venv --without-pip venv"},
        {"perl",
         {"/usr/bin/perl"},
         "perl",
         "perl -e 'my @a = sort { $a <=> $b } map { $_ * 2 } 1..1000; print \"$a[-1]\\n\"'"},
        {"node",
         {"/usr/bin/node"},
         "nodejs",
         "node -e 'const fs = require(\"fs\"); fs.writeFileSync(\"n.txt\", \"x\"); "
         "console.log(fs.readFileSync(\"n.txt\", \"utf8\"))'"},
        {"git",
         {"/usr/bin/git"},
         "git",
         "export GIT_AUTHOR_NAME=c GIT_AUTHOR_EMAIL=c@example.org GIT_COMMITTER_NAME=c "
         "GIT_COMMITTER_EMAIL=c@example.org && git init -q repo && cp numbers repo/ && git -C repo add "
         "numbers && "
         "git -C repo commit -q -m first && git -C repo log --oneline && git -C repo status --short"},
        {"gcc-make", {"/usr/bin/gcc", "/usr/bin/make"}, "gcc make", "make -s CC=gcc && test -x hi"},
        {"sqlite3",
         {"/usr/bin/sqlite3"},
         "sqlite3",
         "sqlite3 db 'create table t(x); insert into t values (1),(2); select sum(x) from t;'"},
        {"openssl",
         {"/usr/bin/openssl"},
         "openssl",
         "openssl dgst -sha256 numbers && openssl enc -aes-256-cbc -pbkdf2 -pass pass:x -in numbers -out "
         "n.enc && "
         "openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 1 -subj /CN=x "
         "2>/dev/null"},
        {"curl", {"/usr/bin/curl"}, "curl", "curl -s -o copy \"file://$PWD/numbers\" && cmp numbers copy"},
        {"imagemagick",
         {"/usr/bin/convert"},
         "imagemagick",
         "/usr/bin/convert -size 64x64 xc:red -blur 0x2 img.png"},
        {"procps", {"/usr/bin/top", "/bin/ps"}, "procps", "top -b -n1 >/dev/null && ps aux >/dev/null"},
    };
    return all;
}

// A native and a confined work directory, and the policy for the confined one.
class CorpusRun {
  protected:
    bool prepared() {
        if (!is_root()) return false;
        ::mkdir((dir / "native").c_str(), 0755);
        ::mkdir((dir / "confined").c_str(), 0755);
        prepare(dir / "native");
        prepare(dir / "confined");
        return true;
    }

    // The program's environment: its home, its temporary files and PATH in its work directory.
    static std::string shell(const std::string& work, const std::string& script) {
        return "cd " + work + " && export HOME=" + work + " TMPDIR=" + work + "/tmp PATH=/usr/bin:/bin && " +
               script;
    }

    std::string policy(const std::string& work) const {
        return "version = 1\n[profile.default]\ninclude = [\"runtime\"]\nexec = true\n"
               "read = [\"/etc/**\", \"/usr/**\", \"/proc\", \"/proc/**\", \"/sys/**\", \"" +
               dir.path() + "\", \"" + work + "/**\"]\nwrite = [\"" + work +
               "/**\", \"/dev/null\"]\ncreate = [\"" + work + "/**\", \"/dev/null\"]\n";
    }

    TempDir dir;
};

class Corpus : public CorpusRun, public ::testing::TestWithParam<Case> {
  protected:
    void SetUp() override {
        for (const char* program : GetParam().needs)
            if (::access(program, X_OK) != 0)
                GTEST_SKIP() << program << " is not installed (Debian package " << GetParam().package << ")";
        if (!prepared()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
    }
};

class CorpusGo : public CorpusRun, public ::testing::Test {
  protected:
    void SetUp() override {
        if (!prepared()) GTEST_SKIP() << "workers run as nobody: the broker needs root to read their memory";
    }
};

TEST_P(Corpus, RunsAsItDoesNatively) {
    const Case& c = GetParam();
    const std::string native_dir = dir / "native";
    const std::string confined_dir = dir / "confined";
    const Outcome native = run_command({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                        "--clear-groups", "/bin/sh", "-c", shell(native_dir, c.script)});
    const Outcome confined = run_broker(dir, policy(confined_dir),
                                        {"/bin/sh", "-c", shell(confined_dir, c.script)}, {"--transparent"});
    // Each script works natively: a case that fails there would prove nothing.
    EXPECT_EQ(native.status, 0) << native.err;
    EXPECT_NE(confined.status, 159) << confined.err;
    EXPECT_FALSE(contains(confined.err, "killed")) << confined.err;
    EXPECT_EQ(confined.status, native.status) << "natively:\n"
                                              << native.err << "\nconfined:\n"
                                              << confined.err;
}

// A static Go program (tests/support/go_files): its runtime's threads, signals and file calls.
TEST_F(CorpusGo, RunsAsItDoesNatively) {
#ifndef GO_FILES_BIN
    GTEST_SKIP() << "no Go toolchain when this tree was configured (Debian package golang-go)";
#else
    const std::string native_dir = dir / "native";
    const std::string confined_dir = dir / "confined";
    const Outcome native = run_command({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                        "--clear-groups", staged(GO_FILES_BIN), native_dir, "20"});
    const Outcome confined =
        run_broker(dir, policy(confined_dir), {staged(GO_FILES_BIN), confined_dir, "20"}, {"--transparent"});
    EXPECT_EQ(native.status, 0) << native.err;
    EXPECT_EQ(confined.status, native.status) << confined.err;
#endif
}

INSTANTIATE_TEST_SUITE_P(Programs, Corpus, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param) {
                             std::string name = param.param.name;
                             for (char& ch : name)
                                 if (ch == '-') ch = '_';
                             return name;
                         });

}  // namespace
}  // namespace fdbroker::test
