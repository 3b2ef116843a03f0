// drover: the command-line client. See cli.h.
#include "client/cli.h"

int main(int argc, char** argv) { return drover::RunCli(argc, argv); }
