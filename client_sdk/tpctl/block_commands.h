// tpctl commands on blocks: list, info, put, get, swap-out, swap-in, pin,
// unpin, unregister.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_BLOCK_COMMANDS_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_BLOCK_COMMANDS_H_

#include <vector>

#include "client_sdk/tpctl/command.h"

namespace tensorpager::tpctl {

std::vector<CommandSpec> BlockCommands();

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_BLOCK_COMMANDS_H_
