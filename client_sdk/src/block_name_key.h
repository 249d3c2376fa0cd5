// How the SDK turns a public BlockName into the internal identity
// (storage::BlockKeyView, the server's rules and messages).
#ifndef TENSORPAGER_CLIENT_SDK_SRC_BLOCK_NAME_KEY_H_
#define TENSORPAGER_CLIENT_SDK_SRC_BLOCK_NAME_KEY_H_

#include "absl/status/statusor.h"
#include "storage/base/block_key.h"
#include "tensorpager/block_name.h"

namespace tensorpager::internal {

// Resolves and checks a name with the server's rules (the same code), so a
// bad name fails here, with the server's message, before any RPC.
absl::StatusOr<storage::BlockKeyView> CheckedKey(const BlockName& name);

// Resolves a name for a lookup in the local cache, where a name that was
// never checked simply is not found.
storage::BlockKeyView LocalKey(const BlockName& name);

}  // namespace tensorpager::internal

#endif  // TENSORPAGER_CLIENT_SDK_SRC_BLOCK_NAME_KEY_H_
