// Names a block: an id in a namespace.
#ifndef TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BLOCK_NAME_H_
#define TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BLOCK_NAME_H_

#include <string>
#include <utility>

namespace tensorpager {

// An empty namespace means "default", as on the server.
struct BlockName {
  BlockName(const char* id) : id(id) {}             // NOLINT: ids convert
  BlockName(std::string id) : id(std::move(id)) {}  // NOLINT: implicitly
  BlockName(std::string ns, std::string id)
      : ns(std::move(ns)), id(std::move(id)) {}
  std::string ns;
  std::string id;

  // "ns/id" with the namespace resolved, for messages.
  std::string ToString() const {
    return (ns.empty() ? std::string("default") : ns) + "/" + id;
  }
};

}  // namespace tensorpager

#endif  // TENSORPAGER_CLIENT_SDK_INCLUDE_TENSORPAGER_BLOCK_NAME_H_
