// The `anvil` command: one file per subcommand (tools/cmd_<name>.cpp), each registering a
// Command. Exit codes: 0 ok, 1 a check failed, 2 bad usage or bad input.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace anvil::cli {

struct Command {
  std::string name;
  std::string summary;  // one line for `anvil --help`
  /// argv[0] is the subcommand name. Returns the exit code; may throw anvil::Error (-> 2).
  std::function<int(int argc, char** argv)> main;
};

void register_command(Command c);
const std::vector<Command>& commands();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { register_command(std::move(c)); }
};

}  // namespace anvil::cli
