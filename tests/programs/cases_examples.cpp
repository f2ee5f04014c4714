// The example policies of packaging/examples, each run as shipped (its paths moved into the work
// directory) with the program it was written for (programs_test.cpp).
#include "programs/program_case.hpp"

namespace fdbroker::test::programs {

std::vector<ProgramCase> example_cases() {
    return {
        {.name = "example_imagemagick_thumbnails",
         .commands = {{"/usr/bin/mogrify-im6.q16", "-path", "@W/photos/thumbs", "-thumbnail", "16x16",
                       "-strip", "-define", "png:exclude-chunks=date,time", "-format", "png",
                       "@W/photos/in/a.png", "@W/photos/in/b.png"}},
         .setup = "mkdir -p photos/in/.private photos/thumbs\n"
                  "convert-im6.q16 -size 64x48 gradient:red-blue -define png:exclude-chunks=date,time "
                  "photos/in/a.png\n"
                  "convert-im6.q16 -size 40x60 pattern:checkerboard -define png:exclude-chunks=date,time "
                  "photos/in/b.png\n"
                  "cp photos/in/b.png photos/in/.private/secret.png\n",
         .cwd = "photos/thumbs",
         .env = {"HOME=/nonexistent"},
         .example = "imagemagick-thumbnails.toml",
         .example_paths = {{"/srv/photos", "@W/photos"}},
         .profile = "thumbnails"},
        {.name = "example_git_worktree",
         .commands = {{"/usr/bin/git", "init", "-q"},
                      {"/usr/bin/git", "add", "."},
                      {"/usr/bin/git", "commit", "-q", "-m", "generated"},
                      {"/usr/bin/git", "rm", "-q", "old.html"},
                      {"/usr/bin/git", "commit", "-q", "-m", "removed"},
                      {"/usr/bin/git", "log", "--oneline", "--name-status"}},
         .setup =
             "mkdir -p site/css && echo '<h1>hi</h1>' > site/index.html && echo 'old' > site/old.html && "
             "echo 'h1 {}' > site/css/site.css\n",
         .cwd = "site",
         .env = {"HOME=/nonexistent", "GIT_AUTHOR_NAME=Build", "GIT_AUTHOR_EMAIL=build@example.org",
                 "GIT_COMMITTER_NAME=Build", "GIT_COMMITTER_EMAIL=build@example.org",
                 "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z"},
         .volatile_content = {"site/.git/index"},
         .example = "git-worktree.toml",
         .example_paths = {{"/srv/build/site", "@W/site"}},
         .profile = "git"},
        {.name = "example_python_json2csv",
         .commands = {{"/usr/bin/python3", "-I", "@W/tool/json2csv.py", "@W/reports/in", "@W/reports/out"}},
         .setup =
             "mkdir -p tool reports/in reports/out && cp @E/json2csv.py tool/\n"
             "printf '{\"items\": [{\"id\": 1, \"name\": \"pear\"}, {\"id\": 2, \"name\": \"fig\", \"note\": "
             "\"ripe, sweet\"}]}' > reports/in/fruit.json\n"
             "printf '[{\"city\": \"Oslo\", \"t\": -3.5}]' > reports/in/weather.json\n"
             "echo 'not json' > reports/in/README\n",
         .example = "python-json2csv.toml",
         .example_paths = {{"/opt/json2csv", "@W/tool"}, {"/srv/reports", "@W/reports"}},
         .profile = "json2csv"},
    };
}

}  // namespace fdbroker::test::programs
