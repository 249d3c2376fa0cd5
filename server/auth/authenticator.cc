#include "server/auth/authenticator.h"

#include <grpcpp/server_context.h>
#include <sys/stat.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "storage/base/log.h"

namespace tensorpager::server::auth {
namespace {

// How often the watcher looks at the tenants file (Kubernetes updates a
// mounted Secret by swapping a symlink: the stamp changes).
constexpr absl::Duration kWatchInterval = absl::Seconds(1);

}  // namespace

const std::string& Caller::tenant_name() const {
  static const std::string kNone;
  return tenant_ ? tenant_->name : kNone;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Open(
    std::string tenants_file, UidOf uid_of) {
  const FileStamp stamp = StampOf(tenants_file);
  absl::StatusOr<TenantTable> table = TenantTable::Load(tenants_file);
  if (!table.ok()) return table.status();
  auto auth = std::make_unique<Authenticator>();
  auth->path_ = std::move(tenants_file);
  auth->uid_of_ = std::move(uid_of);
  {
    MutexLock lock(&auth->mu_);
    auth->table_ = std::make_shared<const TenantTable>(*std::move(table));
    auth->stamp_ = stamp;
  }
  auth->watcher_ = std::thread([a = auth.get()] { a->Watch(); });
  return auth;
}

Authenticator::~Authenticator() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  stop_signal_.SignalAll();
  if (watcher_.joinable()) watcher_.join();
}

Authenticator::FileStamp Authenticator::StampOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return FileStamp{};
  return FileStamp{
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
      static_cast<int64_t>(st.st_size), static_cast<uint64_t>(st.st_ino)};
}

void Authenticator::Watch() {
  MutexLock lock(&mu_);
  while (!stop_) {
    stop_signal_.WaitWithTimeout(&mu_, kWatchInterval);
    if (stop_) return;
    const FileStamp now = StampOf(path_);
    if (now == stamp_) continue;
    stamp_ = now;
    mu_.Unlock();
    (void)Reload();
    mu_.Lock();
  }
}

absl::Status Authenticator::Reload() {
  if (!enabled()) return absl::OkStatus();
  absl::StatusOr<TenantTable> table = TenantTable::Load(path_);
  if (!table.ok()) {
    TP_LOG(ERROR) << "tenants file not reloaded, the previous one stays in "
                     "use: "
                  << table.status().message();
    return table.status();
  }
  const size_t count = table->tenants().size();
  {
    MutexLock lock(&mu_);
    table_ = std::make_shared<const TenantTable>(*std::move(table));
  }
  TP_LOG(INFO) << "tenants file " << path_ << " loaded: " << count
               << " tenant(s)";
  return absl::OkStatus();
}

std::vector<std::shared_ptr<const Tenant>> Authenticator::tenants() {
  if (!enabled()) return {};
  ReaderMutexLock lock(&mu_);
  return table_->tenants();
}

absl::StatusOr<Caller> Authenticator::Authenticate(
    const grpc::ServerContext& context) {
  if (!enabled()) return Caller();
  Credentials credentials;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    credentials.authorization =
        std::string(it->second.data(), it->second.size());
  }
  // Only a certificate the TLS handshake verified has peer properties.
  if (const std::shared_ptr<const grpc::AuthContext> auth =
          context.auth_context();
      auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const grpc::string_ref& san :
         auth->FindPropertyValues("x509_subject_alternative_name")) {
      credentials.sans.emplace_back(san.data(), san.size());
    }
  }
  if (!credentials.authorization && uid_of_) {
    credentials.uid = uid_of_(context.peer());
  }
  return Authenticate(credentials);
}

absl::StatusOr<Caller> Authenticator::Authenticate(
    const Credentials& credentials) {
  if (!enabled()) return Caller();
  std::shared_ptr<const TenantTable> table;
  {
    ReaderMutexLock lock(&mu_);
    table = table_;
  }
  // The Tenant objects live as long as the table that holds them; a
  // Caller keeps its tenant through a shared_ptr that shares the table.
  auto hold = [&table](const Tenant* t) {
    return std::shared_ptr<const Tenant>(table, t);
  };
  if (credentials.authorization) {
    absl::string_view value = *credentials.authorization;
    absl::string_view token = value;
    if (!absl::ConsumePrefix(&token, "Bearer ") &&
        !absl::ConsumePrefix(&token, "bearer ")) {
      return absl::UnauthenticatedError(
          "the 'authorization' metadata is not 'Bearer <token>'");
    }
    token = absl::StripAsciiWhitespace(token);
    if (const Tenant* t = table->ByToken(token))
      return Caller(hold(t), "token");
    return absl::UnauthenticatedError(
        "the bearer token is not in the server's tenants file (revoked, "
        "or mistyped?); ask the server's operator for a token");
  }
  for (const std::string& san : credentials.sans) {
    if (const Tenant* t = table->BySan(san)) {
      return Caller(hold(t), absl::StrCat("certificate ", san));
    }
  }
  if (credentials.uid) {
    if (const Tenant* t = table->ByUid(*credentials.uid)) {
      return Caller(hold(t), absl::StrCat("uid ", *credentials.uid));
    }
  }
  return absl::UnauthenticatedError(absl::StrCat(
      "no credential names a tenant of this server: send a bearer token "
      "('authorization: Bearer <token>' metadata; the SDK's token option)",
      credentials.sans.empty()
          ? ""
          : absl::StrCat(", or a client certificate with a SAN the tenants "
                         "file lists (this one has ",
                         credentials.sans.front(), ")"),
      credentials.uid ? absl::StrCat(", or run as a user the tenants file "
                                     "lists (uid ",
                                     *credentials.uid, " is not)")
                      : ""));
}

}  // namespace tensorpager::server::auth
