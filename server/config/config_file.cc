#include "server/config/config_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tensorpager::server {
namespace {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "did you mean 'ram_budget'?" for a near miss, else the list of keys.
std::string UnknownKeyHint(absl::string_view key,
                           const std::set<std::string>& known) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, key.size() / 3) + 1;
  for (const std::string& name : known) {
    const size_t d = EditDistance(key, name);
    if (d < best_distance) {
      best_distance = d;
      best = name;
    }
  }
  if (!best.empty()) return absl::StrCat("did you mean '", best, "'?");
  return absl::StrCat("known keys: ", absl::StrJoin(known, ", "));
}

int LineOf(const YAML::Node& node) { return node.Mark().line + 1; }

// A value in flag syntax: scalars as written, a sequence of scalars as
// "a,b", a mapping of scalars as "k=v,k=v".
absl::StatusOr<std::string> FlagText(const YAML::Node& value,
                                     const std::string& where) {
  switch (value.Type()) {
    case YAML::NodeType::Scalar:
      return value.Scalar();
    case YAML::NodeType::Sequence: {
      std::vector<std::string> items;
      for (const YAML::Node& item : value) {
        if (!item.IsScalar()) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": list items must be plain values"));
        }
        items.push_back(item.Scalar());
      }
      return absl::StrJoin(items, ",");
    }
    case YAML::NodeType::Map: {
      std::vector<std::string> items;
      for (const auto& kv : value) {
        if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
          return absl::InvalidArgumentError(absl::StrCat(
              where, ": mapping entries must be plain key: value pairs"));
        }
        items.push_back(
            absl::StrCat(kv.first.Scalar(), "=", kv.second.Scalar()));
      }
      return absl::StrJoin(items, ",");
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      where, ": has no value; give one or remove the key to keep the default"));
}

}  // namespace

absl::StatusOr<ConfigFileValues> ParseConfigYaml(
    absl::string_view text, absl::string_view origin,
    const std::set<std::string>& known_settings) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
  }
  ConfigFileValues values;
  if (root.IsNull()) return values;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin,
                     ": must be a mapping of setting names to values, e.g. "
                     "'ram_budget: 8GiB'"));
  }
  for (const auto& kv : root) {
    const int line = LineOf(kv.first);
    if (!kv.first.IsScalar()) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ":", line, ": keys must be setting names"));
    }
    const std::string& key = kv.first.Scalar();
    const std::string where = absl::StrCat(origin, ":", line, ": '", key, "'");
    if (known_settings.count(key) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ":", line, ": unknown key '", key, "'; ",
                       UnknownKeyHint(key, known_settings)));
    }
    if (auto it = values.find(key); it != values.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " is set twice (first on line ", it->second.line, ")"));
    }
    absl::StatusOr<std::string> value = FlagText(kv.second, where);
    if (!value.ok()) return value.status();
    values[key] = ConfigFileValue{*std::move(value), line};
  }
  return values;
}

absl::StatusOr<ConfigFileValues> ReadConfigFile(
    const std::string& path, const std::set<std::string>& known_settings) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config file ", path, " is a directory; name the YAML file in it"));
  }
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    const std::string message =
        absl::StrCat("config file ", path, ": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::FailedPreconditionError(message);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(
        absl::StrCat("config file ", path, ": read failed"));
  }
  return ParseConfigYaml(text.str(), path, known_settings);
}

}  // namespace tensorpager::server
