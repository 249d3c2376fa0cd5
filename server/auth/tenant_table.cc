#include "server/auth/tenant_table.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "storage/base/block_key.h"
#include "storage/base/byte_size.h"

namespace tensorpager::server::auth {
namespace {

constexpr absl::string_view kHashPrefix = "sha256:";

bool IsTokenHash(absl::string_view text) {
  if (!absl::StartsWith(text, kHashPrefix)) return false;
  text.remove_prefix(kHashPrefix.size());
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(c) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

// Reads a sequence of scalars; a missing key is an empty list.
absl::StatusOr<std::vector<std::string>> Scalars(const YAML::Node& node,
                                                 const std::string& where) {
  std::vector<std::string> out;
  if (!node) return out;
  if (!node.IsSequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " must be a list, e.g. [a, b]"));
  }
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " must list plain values"));
    }
    out.push_back(item.Scalar());
  }
  return out;
}

// One credential -> one tenant: a second owner is an error, not a choice.
template <typename Key>
absl::Status Claim(absl::flat_hash_map<Key, const Tenant*>& owners,
                   const Key& key, const Tenant* tenant,
                   const std::string& what) {
  auto [it, inserted] = owners.emplace(key, tenant);
  if (!inserted) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is listed for both tenant '", it->second->name,
                     "' and tenant '", tenant->name,
                     "'; a credential belongs to one tenant"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Count(const std::string& text) {
  uint64_t n = 0;
  if (!absl::SimpleAtoi(text, &n)) {
    return absl::InvalidArgumentError("not a whole number");
  }
  return n;
}

// quota: {blocks: N, bytes: SIZE, ram_bytes: SIZE, disk_bytes: SIZE}; a
// missing key is no limit.
absl::Status ParseQuota(const YAML::Node& node, const std::string& who,
                        TenantQuota* quota) {
  if (!node) return absl::OkStatus();
  if (!node.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": quota is a mapping, e.g. {blocks: 100000, bytes: 64GiB}"));
  }
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const std::string text = kv.second.Scalar();
    const auto field =
        std::find_if(kQuotaKeys.begin(), kQuotaKeys.end(),
                     [&key](const auto& k) { return k.first == key; });
    if (field == kQuotaKeys.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": unknown quota '", key,
                       "'; quotas are blocks, bytes, ram_bytes and "
                       "disk_bytes"));
    }
    absl::StatusOr<uint64_t> value =
        key == "blocks" ? Count(text) : base::ParseByteSize(text);
    if (!value.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": quota ", key, " '", text, "': ", value.status().message()));
    }
    if (key == "ram_bytes" && *value == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          who,
          ": quota ram_bytes is 0, but every block passes through RAM "
          "when written or read; give it at least the largest block"));
    }
    quota->*(field->second) = *value;
  }
  return absl::OkStatus();
}

}  // namespace

bool Tenant::MayUse(absl::string_view ns) const {
  if (ns.empty()) ns = storage::kDefaultNamespace;
  for (const std::string& pattern : namespaces) {
    if (absl::EndsWith(pattern, "*")) {
      if (absl::StartsWith(
              ns, absl::string_view(pattern).substr(0, pattern.size() - 1))) {
        return true;
      }
    } else if (ns == pattern) {
      return true;
    }
  }
  return false;
}

std::string TokenHash(absl::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(token.data(), token.size(), digest, &length, EVP_sha256(),
             nullptr);
  return absl::StrCat(kHashPrefix,
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(digest), length)));
}

absl::StatusOr<TenantTable> TenantTable::Parse(absl::string_view yaml,
                                               absl::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not YAML: ", e.what()));
  }
  if (!root.IsMap() || !root["tenants"] || !root["tenants"].IsSequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": expected a 'tenants:' list (see tensorpagerd --help, "
                     "--tenants_file)"));
  }
  static const std::set<std::string> kKeys = {"name",   "role",   "namespaces",
                                              "tokens", "uids",   "tls_sans",
                                              "quota",  "encrypt"};
  TenantTable table;
  std::set<std::string> names;
  for (const YAML::Node& entry : root["tenants"]) {
    const std::string where = absl::StrCat(source, ":", entry.Mark().line + 1);
    if (!entry.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where,
                       ": a tenant is a mapping (name:, namespaces:, "
                       "...)"));
    }
    for (const auto& kv : entry) {
      if (!kKeys.count(kv.first.Scalar())) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": unknown key '", kv.first.Scalar(),
            "'; a tenant has name, role, namespaces, tokens, uids, tls_sans, "
            "quota and encrypt"));
      }
    }
    auto tenant = std::make_shared<Tenant>();
    if (!entry["name"] || !entry["name"].IsScalar() ||
        entry["name"].Scalar().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": the tenant has no name"));
    }
    tenant->name = entry["name"].Scalar();
    const std::string who =
        absl::StrCat(where, ": tenant '", tenant->name, "'");
    if (!names.insert(tenant->name).second) {
      return absl::InvalidArgumentError(absl::StrCat(who, " is listed twice"));
    }
    const std::string role =
        entry["role"] ? entry["role"].Scalar() : std::string("client");
    if (role == "admin") {
      tenant->role = Role::kAdmin;
    } else if (role != "client") {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": role '", role, "' is neither client nor admin"));
    }
    absl::StatusOr<std::vector<std::string>> namespaces =
        Scalars(entry["namespaces"], who + " namespaces");
    if (!namespaces.ok()) return namespaces.status();
    if (namespaces->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          who,
          " lists no namespaces; give its names, prefixes ending in "
          "'*', or '*' for all"));
    }
    for (const std::string& pattern : *namespaces) {
      const absl::string_view name =
          absl::EndsWith(pattern, "*")
              ? absl::string_view(pattern).substr(0, pattern.size() - 1)
              : absl::string_view(pattern);
      if (absl::Status s = storage::ValidateNamespace(name);
          !s.ok() || (name.empty() && pattern != "*")) {
        return absl::InvalidArgumentError(absl::StrCat(
            who, ": namespace '", pattern, "' is not a namespace name",
            s.ok() ? "" : absl::StrCat(" (", s.message(), ")")));
      }
    }
    tenant->namespaces = *std::move(namespaces);
    if (const YAML::Node encrypt = entry["encrypt"]; encrypt) {
      const std::string text = encrypt.Scalar();
      if (text != "true" && text != "false") {
        return absl::InvalidArgumentError(
            absl::StrCat(who, ": encrypt is true or false, not '", text, "'"));
      }
      tenant->encrypt = text == "true";
    }
    if (absl::Status s = ParseQuota(entry["quota"], who, &tenant->quota);
        !s.ok()) {
      return s;
    }

    absl::StatusOr<std::vector<std::string>> tokens =
        Scalars(entry["tokens"], who + " tokens");
    absl::StatusOr<std::vector<std::string>> uids =
        Scalars(entry["uids"], who + " uids");
    absl::StatusOr<std::vector<std::string>> sans =
        Scalars(entry["tls_sans"], who + " tls_sans");
    for (const auto* list : {&tokens, &uids, &sans}) {
      if (!list->ok()) return list->status();
    }
    for (const std::string& hash : *tokens) {
      if (!IsTokenHash(hash)) {
        return absl::InvalidArgumentError(absl::StrCat(
            who,
            ": tokens are listed as their hashes, 'sha256:' and 64 "
            "lowercase hex digits (printf %s TOKEN | sha256sum), not '",
            hash.substr(0, 12), "...'"));
      }
      if (absl::Status s =
              Claim(table.by_token_hash_, hash, tenant.get(),
                    absl::StrCat("token '", hash.substr(0, 19), "...'"));
          !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", s.message()));
      }
    }
    for (const std::string& text : *uids) {
      uint32_t uid = 0;
      if (!absl::SimpleAtoi(text, &uid)) {
        return absl::InvalidArgumentError(
            absl::StrCat(who, ": uid '", text, "' is not a number"));
      }
      if (absl::Status s = Claim(table.by_uid_, static_cast<uid_t>(uid),
                                 tenant.get(), absl::StrCat("uid ", uid));
          !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", s.message()));
      }
    }
    for (const std::string& san : *sans) {
      if (absl::Status s = Claim(table.by_san_, san, tenant.get(),
                                 absl::StrCat("SAN '", san, "'"));
          !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", s.message()));
      }
    }
    if (tokens->empty() && uids->empty() && sans->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, " has no credential: list tokens, uids or tls_sans"));
    }
    table.tenants_.push_back(std::move(tenant));
  }
  return table;
}

absl::StatusOr<TenantTable> TenantTable::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read the tenants file ", path,
                     "; check --tenants_file (or TENSORPAGER_TENANTS_FILE, or "
                     "tenants_file: in the --config file) and the file's "
                     "permissions. Set it empty to run without "
                     "authentication (loopback only, or with "
                     "--allow_insecure)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

const Tenant* TenantTable::ByToken(absl::string_view token) const {
  auto it = by_token_hash_.find(TokenHash(token));
  return it == by_token_hash_.end() ? nullptr : it->second;
}

const Tenant* TenantTable::ByUid(uid_t uid) const {
  auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? nullptr : it->second;
}

const Tenant* TenantTable::BySan(absl::string_view san) const {
  auto it = by_san_.find(san);
  return it == by_san_.end() ? nullptr : it->second;
}

}  // namespace tensorpager::server::auth
