// Archivers and compressors (programs_test.cpp).
#include "programs/program_case.hpp"

namespace fdbroker::test::programs {

namespace {

constexpr const char* kTree =
    "mkdir -p tree/sub\n"
    "printf 'alpha\\nbeta\\n' > tree/a.txt\n"
    "printf 'sub\\n' > tree/sub/s.txt\n"
    "printf 'secret\\n' > tree/private && chmod 600 tree/private\n"
    "ln -s a.txt tree/link\n";

constexpr const char* kBig = "seq 1 2000 | sed 's/$/ lorem ipsum dolor sit amet/' > big.txt\n";

}  // namespace

std::vector<ProgramCase> archive_cases() {
    return {
        {.name = "tar_c",
         .commands = {{"/bin/tar", "-cf", "out.tar", "tree"}, {"/bin/tar", "-tvf", "out.tar"}},
         .setup = kTree},
        // The archive's times and modes differ from the set-up's, so that tar must set them.
        {.name = "tar_x",
         .commands = {{"/bin/tar", "-xpf", "in.tar", "-C", "out"}},
         .setup = std::string(kTree) +
                  "tar --mtime=@1234567890 --owner=0 --group=0 -cf in.tar tree && rm -r tree && mkdir out\n",
         .times = {"out/tree", "out/tree/a.txt", "out/tree/link", "out/tree/private", "out/tree/sub",
                   "out/tree/sub/s.txt"}},
        // As above, without -p and without symlinks: what a user (not root) extracting an archive does.
        {.name = "tar_x_plain",
         .commands = {{"/bin/tar", "-xf", "in.tar", "-C", "out"}},
         .setup =
             std::string(kTree) +
             "rm tree/link && tar --mtime=@1234567890 --owner=0 --group=0 -cf in.tar tree && rm -r tree && "
             "mkdir out\n",
         .times = {"out/tree", "out/tree/a.txt", "out/tree/private", "out/tree/sub", "out/tree/sub/s.txt"}},
        {.name = "gzip",
         .commands = {{"/bin/gzip", "-9", "big.txt"},
                      {"/bin/gzip", "-l", "big.txt.gz"},
                      {"/bin/gunzip", "-k", "big.txt.gz"}},
         .setup = kBig,
         .exec = true,  // gunzip is a shell script that runs gzip -d
         .times = {"big.txt", "big.txt.gz"}},
        {.name = "xz",
         .commands = {{"/usr/bin/xz", "-k", "-6", "big.txt"},
                      {"/usr/bin/xz", "-t", "big.txt.xz"},
                      {"/usr/bin/xz", "-dc", "big.txt.xz"}},
         .setup = kBig,
         .times = {"big.txt.xz"}},
        {.name = "zstd",
         .commands = {{"/usr/bin/zstd", "-q", "-19", "big.txt", "-o", "big.zst"},
                      {"/usr/bin/zstd", "-q", "-d", "big.zst", "-o", "back.txt"}},
         .setup = kBig,
         .times = {"big.zst", "back.txt"}},
        {.name = "bzip2",
         .commands = {{"/bin/bzip2", "-k", "big.txt"}, {"/bin/bunzip2", "-c", "big.txt.bz2"}},
         .setup = kBig,
         .times = {"big.txt.bz2"}},
    };
}

}  // namespace fdbroker::test::programs
