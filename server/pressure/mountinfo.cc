#include "server/pressure/mountinfo.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tensorpager::server {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(absl::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' &&
        field[i + 1] <= '3' && field[i + 2] >= '0' && field[i + 2] <= '7' &&
        field[i + 3] >= '0' && field[i + 3] <= '7') {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 +
                                      (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

bool IsPathPrefix(absl::string_view prefix, absl::string_view path) {
  if (prefix == "/") return !path.empty() && path.front() == '/';
  if (!absl::StartsWith(path, prefix)) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

}  // namespace

absl::StatusOr<std::vector<MountEntry>> ParseMountinfo(absl::string_view text) {
  std::vector<MountEntry> mounts;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.empty()) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    // id parent maj:min root mount-point options [optional...] - type
    // source super-options
    size_t separator = 6;
    while (separator < fields.size() && fields[separator] != "-") ++separator;
    std::pair<absl::string_view, absl::string_view> dev =
        fields.size() > 2 ? absl::StrSplit(fields[2], absl::MaxSplits(':', 1))
                          : std::pair<absl::string_view, absl::string_view>();
    MountEntry entry;
    if (separator + 2 >= fields.size() ||
        !absl::SimpleAtoi(dev.first, &entry.major) ||
        !absl::SimpleAtoi(dev.second, &entry.minor)) {
      return absl::InternalError(absl::StrCat("mountinfo line ", line_number,
                                              " is malformed: ", line));
    }
    entry.root = Unescape(fields[3]);
    entry.mount_point = Unescape(fields[4]);
    entry.fs_type = std::string(fields[separator + 1]);
    entry.source = Unescape(fields[separator + 2]);
    if (separator + 3 < fields.size()) {
      entry.super_options = std::string(fields[separator + 3]);
    }
    mounts.push_back(std::move(entry));
  }
  return mounts;
}

absl::StatusOr<std::vector<MountEntry>> ReadMountinfo(const RootedFs& fs) {
  absl::StatusOr<std::string> text = fs.ReadFile("/proc/self/mountinfo");
  if (!text.ok()) return text.status();
  return ParseMountinfo(*text);
}

const MountEntry* FindMountFor(const std::vector<MountEntry>& mounts,
                               absl::string_view path) {
  const MountEntry* best = nullptr;
  // Later entries shadow earlier ones at the same mount point.
  for (const MountEntry& mount : mounts) {
    if (!IsPathPrefix(mount.mount_point, path)) continue;
    if (best == nullptr ||
        mount.mount_point.size() >= best->mount_point.size()) {
      best = &mount;
    }
  }
  return best;
}

}  // namespace tensorpager::server
