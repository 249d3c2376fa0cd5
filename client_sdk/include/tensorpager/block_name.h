// Names a block: an id in a namespace.
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BLOCK_NAME_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BLOCK_NAME_H_

#include <string>
#include <utility>

namespace tensorpager {

// The name a caller gives a block; public API. It resolves to the block's
// identity, a BlockKey (storage/base/block_key.h, shared by the SDK and the
// server): an empty namespace means "default", and the SDK checks both
// parts with the server's rules and messages before it sends a request.
struct BlockName {
  BlockName(const char* id) : id(id) {}             // NOLINT: ids convert
  BlockName(std::string id) : id(std::move(id)) {}  // NOLINT: implicitly
  BlockName(std::string ns, std::string id)
      : ns(std::move(ns)), id(std::move(id)) {}
  std::string ns;
  std::string id;

  // "ns/id" with the namespace resolved, for messages.
  std::string ToString() const;
};

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BLOCK_NAME_H_
