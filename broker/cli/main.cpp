#include "broker/cli/cli.hpp"

int main(int argc, char** argv) {
    return fdbroker::broker::main_cli(argc, argv);
}
