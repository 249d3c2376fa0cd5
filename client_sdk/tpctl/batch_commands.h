// tpctl commands over many blocks at once, through the batch calls:
// lookup (which of these ids are present, and the longest present prefix)
// and rm (by ids, or every id with a prefix).
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_BATCH_COMMANDS_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_BATCH_COMMANDS_H_

#include <vector>

#include "client_sdk/tpctl/command.h"

namespace tensorpager::tpctl {

std::vector<CommandSpec> BatchCommands();

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_BATCH_COMMANDS_H_
