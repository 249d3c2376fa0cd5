// Which tenant is calling. A request proves it with, in this order:
// a bearer token ("authorization: Bearer <token>" metadata), a client
// certificate whose SAN the tenants file lists (mutual TLS), or the
// kernel's word on the local user at the other end of a loopback or Unix
// socket. Without a tenants file authentication is off and every caller
// may do everything (the server then listens on loopback only, or with
// --allow_insecure).
//
// The tenants file is read again on SIGHUP (Server::ReloadTenants) and
// when it changes; a file that no longer parses keeps the table in use
// and is logged.
#ifndef TENSORPAGER_SERVER_AUTH_AUTHENTICATOR_H_
#define TENSORPAGER_SERVER_AUTH_AUTHENTICATOR_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/auth/tenant_table.h"
#include "storage/base/shared_mutex.h"

namespace grpc {
class ServerContext;
}

namespace tensorpager::server::auth {

// The credentials a request carries.
struct Credentials {
  std::optional<std::string> authorization;  // the metadata's value
  std::vector<std::string> sans;             // of a verified client cert
  std::optional<uid_t> uid;                  // a local peer's user
};

// Who a request comes from.
class Caller {
 public:
  // Authentication off: may do everything.
  Caller() = default;
  Caller(std::shared_ptr<const Tenant> tenant, std::string credential)
      : tenant_(std::move(tenant)), credential_(std::move(credential)) {}

  bool MayUse(absl::string_view ns) const {
    return tenant_ == nullptr || tenant_->MayUse(ns);
  }
  bool admin() const {
    return tenant_ == nullptr || tenant_->role == Role::kAdmin;
  }
  // "" when authentication is off.
  const std::string& tenant_name() const;
  const Tenant* tenant() const { return tenant_.get(); }
  // How the caller proved who it is ("token", "uid 1000", ...).
  const std::string& credential() const { return credential_; }

 private:
  std::shared_ptr<const Tenant> tenant_;
  std::string credential_;
};

class Authenticator {
 public:
  using UidOf = std::function<std::optional<uid_t>(const std::string& peer)>;

  // Authentication off.
  Authenticator() = default;
  // Reads `tenants_file` and watches it. `uid_of` names a local peer's
  // user from gRPC's peer string.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Open(
      std::string tenants_file, UidOf uid_of);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  bool enabled() const { return !path_.empty(); }

  // UNAUTHENTICATED (saying what to send) when no credential names a
  // tenant; a caller that may do everything when authentication is off.
  absl::StatusOr<Caller> Authenticate(const grpc::ServerContext& context);
  absl::StatusOr<Caller> Authenticate(const Credentials& credentials);

  // Reads the tenants file again; on an error the table in use stays.
  absl::Status Reload();
  // Every tenant (for Status and metrics); empty when off.
  std::vector<std::shared_ptr<const Tenant>> tenants();

 private:
  struct FileStamp {
    int64_t mtime_ns = 0;
    int64_t size = -1;
    uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  static FileStamp StampOf(const std::string& path);
  void Watch();

  std::string path_;
  UidOf uid_of_;
  SharedMutex mu_;
  std::shared_ptr<const TenantTable> table_ ABSL_GUARDED_BY(mu_);
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  CondVar stop_signal_;
  std::thread watcher_;
};

}  // namespace tensorpager::server::auth

#endif  // TENSORPAGER_SERVER_AUTH_AUTHENTICATOR_H_
