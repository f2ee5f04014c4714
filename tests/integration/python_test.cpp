// fdbroker's Python module (client/python/fdbroker) in a Python worker: under `fdbroker run`, and as a
// client of `fdbroker serve`; the README's Python example; and the module's message when libfdbroker
// cannot be loaded. The module loads the build tree's libfdbroker through FDBROKER_LIBRARY.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "support/harness.hpp"
#include "support/serve_broker.hpp"

namespace fdbroker::test {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

class Python : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!is_root()) GTEST_SKIP() << "workers run as nobody: needs root";
        if (::access(kPython, X_OK) != 0) GTEST_SKIP() << "no " << kPython << " on this machine";
#if defined(__SANITIZE_ADDRESS__)
        GTEST_SKIP() << "a sanitized libfdbroker.so cannot be loaded into an unsanitized python3";
#endif
        ::mkdir((dir / "pub").c_str(), 0755);
        ::mkdir((dir / "secret").c_str(), 0755);
        ::mkdir((dir / "out").c_str(), 0755);
        write_file(dir / "pub/hello", "hello");
        write_file(dir / "secret/key", "KEY", 0644);
        give_to_nobody(dir / "out");
    }

    // The module, the worker scripts and libfdbroker, where the worker reaches them.
    static std::string module_dir() {
        return staged(PYTHON_MODULE_DIR);
    }
    static std::string library() {
        return std::string(shared_library_dir()) + "/libfdbroker.so.0";
    }
    static std::vector<std::string> env() {
        return {"/usr/bin/env", "PYTHONPATH=" + module_dir(), "FDBROKER_LIBRARY=" + library(),
                "PYTHONDONTWRITEBYTECODE=1"};
    }
    [[nodiscard]] std::string rules() const {
        const std::string d = dir.path();
        return "read = [\"" + d + "/pub/**\", \"" + d + "/out/**\"]\nwrite = [\"" + d +
               "/out/**\"]\ncreate = [\"" + d + "/out/**\"]\nconnect = [\"unix:" + d +
               "/out/sock\"]\nlisten = [\"unix:" + d + "/out/sock\"]\n";
    }
    // The module, libfdbroker and the folder of the script run.
    static std::string runtime(const std::string& scripts) {
        return "runtime = [\"" + module_dir() + "\", \"" + std::string(shared_library_dir()) + "\", \"" +
               staged(scripts) + "\"]\n";
    }
    // What python_worker.py prints when the broker grants what `rules` grants.
    [[nodiscard]] std::vector<std::string> expected() const {
        return {"read hello",
                "read-bytes b'hello'",
                "denied PermissionError 13",
                "denied-absent PermissionError 13",
                "absent FileNotFoundError 2",
                "write-denied PermissionError 13",
                "text ['één', 'twee', '" + (dir / "out/new.txt") + "']",
                "after ['één', 'twee', 'drie']",
                "exclusive b'\\x00\\x01'",
                "exists FileExistsError 17",
                "sockets ['socket', 'AF_UNIX', 'socket', 'ping']",
                "connect-denied PermissionError 13",
                "bad-address OSError 22",
                "bad-mode invalid mode: 'rw'"};
    }

    TempDir dir;
};

TEST_F(Python, AWorkerUnderRunGetsFilesAndSocketsAsPythonObjects) {
    write_file(dir / "policy.toml",
               "version = 1\n[profile.default]\n" + rules() + runtime(PYTHON_SCRIPTS_DIR));
    std::vector<std::string> argv = env();
    argv.insert(argv.end(), {fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--", kPython,
                             staged(PYTHON_SCRIPTS_DIR "/python_worker.py"), dir.path()});
    const Outcome o = run_command(argv);
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), expected()) << o.err;
    // The files were made by the broker for the worker, as its user.
    struct ::stat st {};
    ASSERT_EQ(::stat((dir / "out/new.bin").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 65534U);
}

TEST_F(Python, AClientOfServeGetsTheSameFromItsProfile) {
    ServeBroker broker(dir, "[profile.python]\nclients = { users = [65534] }\n" + rules());
    ASSERT_TRUE(broker.ready());
    std::vector<std::string> argv = env();
    argv.insert(argv.end(), {"FDBROKER_SOCKET=" + broker.socket(), "/usr/bin/setpriv", "--reuid=65534",
                             "--regid=65534", "--clear-groups", "--", kPython,
                             staged(PYTHON_SCRIPTS_DIR "/python_worker.py"), dir.path()});
    const Outcome o = run_command(argv);
    EXPECT_EQ(o.status, 0) << o.err;
    EXPECT_EQ(o.lines(), expected()) << o.err;
    EXPECT_EQ(broker.stop().status, 0);
}

TEST_F(Python, TheReadmeExampleWorksAsShown) {
    // packaging/examples/fdcat.py under demo.toml, as the README runs it (with the build tree's
    // module and library, which an installed package has in /usr/lib).
    std::ifstream demo(PYTHON_EXAMPLES_DIR "/demo.toml");
    const std::string policy((std::istreambuf_iterator<char>(demo)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(policy.empty());
    write_file(dir / "policy.toml", policy + runtime(PYTHON_EXAMPLES_DIR));
    std::vector<std::string> argv = env();
    argv.insert(argv.end(), {fdbroker_bin(), "run", "--policy", dir / "policy.toml", "--", kPython,
                             staged(PYTHON_EXAMPLES_DIR "/fdcat.py"), "/etc/debian_version", "/etc/shadow"});
    const Outcome o = run_command(argv);
    std::string version = read_file("/etc/debian_version");
    version.resize(version.find('\n') == std::string::npos ? version.size() : version.find('\n'));
    EXPECT_EQ(o.status, 1) << o.err;
    EXPECT_EQ(o.lines(), (std::vector<std::string>{"/etc/debian_version: " + version,
                                                   "/etc/shadow: Permission denied (EACCES)"}))
        << o.err;
}

TEST_F(Python, WithoutLibfdbrokerTheImportSaysWhatIsMissing) {
    const Outcome o =
        run_command({"/usr/bin/env", "PYTHONPATH=" + module_dir(), "FDBROKER_LIBRARY=" + (dir / "absent.so"),
                     "PYTHONDONTWRITEBYTECODE=1", kPython, "-c", "import fdbroker"});
    EXPECT_NE(o.status, 0);
    EXPECT_TRUE(contains(o.err, "ImportError: fdbroker: cannot load " + (dir / "absent.so"))) << o.err;
    EXPECT_TRUE(contains(o.err, "set FDBROKER_LIBRARY")) << o.err;
}

}  // namespace
}  // namespace fdbroker::test
