// tpctl commands on the server as a whole: status, health, watch, policy,
// version.
#ifndef TENSORPAGER_SERVER_TPCTL_SERVER_COMMANDS_H_
#define TENSORPAGER_SERVER_TPCTL_SERVER_COMMANDS_H_

#include <vector>

#include "server/tpctl/command.h"

namespace tensorpager::tpctl {

std::vector<CommandSpec> ServerCommands();

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_SERVER_TPCTL_SERVER_COMMANDS_H_
