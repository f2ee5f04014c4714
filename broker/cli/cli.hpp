// Command-line front end (Contract 1): `fdbroker run | serve | check | learn | explain | doctor`,
// --help, --version.
//
// Exit status: `run` exits with the worker's status (128 + N when a signal N ended it, 159 when its
// filter killed it), 125 when fdbroker itself failed or was misused, 126 when the program cannot be
// executed and 127 when it is not found, as env(1) and `timeout` do; `learn` exits as `run`. `serve`
// exits 0 after a clean stop, 1 on a failure and 2 on misuse; `check` exits 0 when every file is valid,
// 1 when one is not, 2 on misuse. `explain` exits 0 when the request is allowed, 1 when it is denied, 2
// on misuse or a policy that does not load; `doctor` 0 when everything the policy needs is there, 1
// when not, 2 the same.
#pragma once

namespace fdbroker::broker {

int main_cli(int argc, char** argv);

}  // namespace fdbroker::broker
