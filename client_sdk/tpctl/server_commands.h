// tpctl commands on the server as a whole: status, health, watch, policy,
// version.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_SERVER_COMMANDS_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_SERVER_COMMANDS_H_

#include <vector>

#include "client_sdk/tpctl/command.h"

namespace tensorpager::tpctl {

std::vector<CommandSpec> ServerCommands();

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_SERVER_COMMANDS_H_
