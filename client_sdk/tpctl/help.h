// tpctl's help texts, built from the command table so they never drift from
// what the parser accepts.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_HELP_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_HELP_H_

#include <string>
#include <vector>

#include "client_sdk/tpctl/command.h"

namespace tensorpager::tpctl {

// tpctl --help: usage, every command with its summary, global options,
// exit codes.
std::string MainHelp(const std::vector<CommandSpec>& commands);
// tpctl COMMAND --help: usage line, description, options.
std::string CommandHelp(const CommandSpec& command);

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_HELP_H_
