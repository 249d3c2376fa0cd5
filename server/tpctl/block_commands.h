// tpctl commands on blocks: list, info, put, get, swap-out, swap-in, pin,
// unpin, unregister.
#ifndef TENSORPAGER_SERVER_TPCTL_BLOCK_COMMANDS_H_
#define TENSORPAGER_SERVER_TPCTL_BLOCK_COMMANDS_H_

#include <vector>

#include "server/tpctl/command.h"

namespace tensorpager::tpctl {

std::vector<CommandSpec> BlockCommands();

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_SERVER_TPCTL_BLOCK_COMMANDS_H_
