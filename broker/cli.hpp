// Command-line front end (Contract 1): `fdbroker run | check`, --help, --version.
#pragma once

namespace fdbroker::broker {

int main_cli(int argc, char** argv);

}  // namespace fdbroker::broker
