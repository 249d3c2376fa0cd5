#include "server/peer_identity.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace tensorpager::server {
namespace {

constexpr absl::Duration kRemember = absl::Seconds(5);
constexpr size_t kMaxRemembered = 4096;
constexpr absl::string_view kEstablished = "01";

// The address as the kernel prints it in /proc/net/tcp: each 32-bit word
// of the address in host order, as 8 hex digits, then ":PORT" in hex.
std::string KernelHex(const std::vector<uint8_t>& bytes, uint16_t port) {
  std::string out;
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    uint32_t word;
    std::memcpy(&word, bytes.data() + i, 4);
    out += absl::StrFormat("%08X", word);
  }
  return absl::StrFormat("%s:%04X", out, port);
}

std::optional<std::vector<uint8_t>> AddressBytes(const std::string& address,
                                                 bool v6) {
  std::vector<uint8_t> bytes(v6 ? 16 : 4);
  if (::inet_pton(v6 ? AF_INET6 : AF_INET, address.c_str(), bytes.data()) !=
      1) {
    return std::nullopt;
  }
  return bytes;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::optional<LoopbackEndpoint> ParseLoopbackPeer(absl::string_view peer) {
  LoopbackEndpoint e;
  absl::string_view host;
  absl::string_view port;
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    const size_t colon = peer.rfind(':');
    if (colon == absl::string_view::npos) return std::nullopt;
    host = peer.substr(0, colon);
    port = peer.substr(colon + 1);
    if (!absl::StartsWith(host, "127.")) return std::nullopt;
  } else if (absl::ConsumePrefix(&peer, "ipv6:")) {
    e.v6 = true;
    // gRPC writes the brackets plainly or percent-encoded.
    if (!absl::ConsumePrefix(&peer, "[") &&
        !absl::ConsumePrefix(&peer, "%5B")) {
      return std::nullopt;
    }
    size_t close = peer.find(']');
    size_t skip = 1;
    if (close == absl::string_view::npos) {
      close = peer.find("%5D");
      skip = 3;
    }
    if (close == absl::string_view::npos) return std::nullopt;
    host = peer.substr(0, close);
    peer.remove_prefix(close + skip);
    if (!absl::ConsumePrefix(&peer, ":")) return std::nullopt;
    port = peer;
    if (host != "::1") return std::nullopt;
  } else {
    return std::nullopt;
  }
  uint32_t p;
  if (!absl::SimpleAtoi(port, &p) || p == 0 || p > 65535) return std::nullopt;
  e.address = std::string(host);
  e.port = static_cast<uint16_t>(p);
  return e;
}

std::optional<uid_t> UidOfSocket(absl::string_view table,
                                 const LoopbackEndpoint& peer) {
  std::optional<std::vector<uint8_t>> bytes =
      AddressBytes(peer.address, peer.v6);
  if (!bytes) return std::nullopt;
  // A v4 client socket shows in tcp6 as ::ffff:a.b.c.d when it is a v6
  // socket talking v4.
  std::vector<std::string> wanted = {KernelHex(*bytes, peer.port)};
  if (!peer.v6) {
    std::vector<uint8_t> mapped(16, 0);
    mapped[10] = mapped[11] = 0xff;
    std::memcpy(mapped.data() + 12, bytes->data(), 4);
    wanted.push_back(KernelHex(mapped, peer.port));
  }
  std::optional<uid_t> found;
  for (absl::string_view line : absl::StrSplit(table, '\n')) {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 8 || f[3] != kEstablished) continue;
    bool match = false;
    for (const std::string& w : wanted) match = match || f[1] == w;
    if (!match) continue;
    uint32_t uid;
    if (!absl::SimpleAtoi(f[7], &uid)) return std::nullopt;
    if (found && *found != uid) return std::nullopt;  // ambiguous
    found = uid;
  }
  return found;
}

namespace {

std::optional<ino_t> InodeOf(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return std::nullopt;
  return st.st_ino;
}

}  // namespace

void PeerIdentity::NoteUnixPeer(int fd, uid_t uid) {
  const std::optional<ino_t> inode = InodeOf(fd);
  MutexLock lock(&mu_);
  unix_peers_[fd] = UnixPeer{uid, inode.value_or(0)};
}

size_t PeerIdentity::OpenUnixConnections(uid_t uid) {
  MutexLock lock(&mu_);
  size_t open = 0;
  for (auto it = unix_peers_.begin(); it != unix_peers_.end();) {
    if (InodeOf(it->first) != it->second.inode) {
      unix_peers_.erase(it++);
      continue;
    }
    open += it->second.uid == uid;
    ++it;
  }
  return open;
}

std::optional<uid_t> PeerIdentity::UidOf(const std::string& grpc_peer) {
  if (absl::StartsWith(grpc_peer, "fd:")) {
    int fd = -1;
    if (!absl::SimpleAtoi(absl::string_view(grpc_peer).substr(3), &fd)) {
      return std::nullopt;
    }
    ReaderMutexLock lock(&mu_);
    auto it = unix_peers_.find(fd);
    if (it == unix_peers_.end()) return std::nullopt;
    return it->second.uid;
  }
  std::optional<LoopbackEndpoint> peer = ParseLoopbackPeer(grpc_peer);
  if (!peer) return std::nullopt;
  const absl::Time now = absl::Now();
  {
    ReaderMutexLock lock(&mu_);
    auto it = known_.find(grpc_peer);
    if (it != known_.end() && it->second.until > now) return it->second.uid;
  }
  std::optional<uid_t> uid = UidOfSocket(ReadAll(proc_net_ + "/tcp"), *peer);
  if (!uid) uid = UidOfSocket(ReadAll(proc_net_ + "/tcp6"), *peer);
  if (!uid) return std::nullopt;
  MutexLock lock(&mu_);
  if (known_.size() >= kMaxRemembered) known_.clear();
  known_[grpc_peer] = Known{*uid, now + kRemember};
  return uid;
}

}  // namespace tensorpager::server
