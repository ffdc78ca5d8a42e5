// devmemctl: the command-line tool for devmemd. See devmemctl_cli.h.
#include <iostream>
#include <string>
#include <vector>

#include "client/devmemctl_cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return devmem::ctl::Main(args, std::cout, std::cerr);
}
