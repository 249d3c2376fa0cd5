// tpctl: the operator's command line for tensorpagerd. `tpctl --help` lists
// the commands; `tpctl COMMAND --help` describes one.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "client_sdk/tpctl/batch_commands.h"
#include "client_sdk/tpctl/block_commands.h"
#include "client_sdk/tpctl/command_line.h"
#include "client_sdk/tpctl/exit_code.h"
#include "client_sdk/tpctl/server_commands.h"

namespace tensorpager::tpctl {
namespace {

std::vector<CommandSpec> AllCommands() {
  std::vector<CommandSpec> commands = ServerCommands();
  for (CommandSpec& c : BlockCommands()) commands.push_back(std::move(c));
  for (CommandSpec& c : BatchCommands()) commands.push_back(std::move(c));
  return commands;
}

int Main(const std::vector<std::string>& args) {
  const std::vector<CommandSpec> commands = AllCommands();
  const char* env_target = std::getenv(std::string(kTargetVariable).c_str());
  const std::string default_target =
      env_target != nullptr && *env_target != '\0'
          ? env_target
          : std::string(kDefaultTarget);
  absl::StatusOr<ParsedCommandLine> parsed = ParseCommandLine(
      args, commands, default_target, SecurityFromEnvironment());
  if (!parsed.ok()) {
    std::cerr << ErrorLine(parsed.status(), default_target) << "\n";
    return ExitCodeFor(parsed.status());
  }
  if (parsed->help.has_value()) {
    std::cout << *parsed->help;
    return kExitOk;
  }
  Context context(parsed->target, parsed->timeout, std::cout, parsed->security);
  const absl::Status status = parsed->command->run(parsed->invocation, context);
  std::cout.flush();
  if (!status.ok()) std::cerr << ErrorLine(status, parsed->target) << "\n";
  return ExitCodeFor(status);
}

}  // namespace
}  // namespace tensorpager::tpctl

int main(int argc, char** argv) {
  return tensorpager::tpctl::Main(
      std::vector<std::string>(argv + 1, argv + argc));
}
