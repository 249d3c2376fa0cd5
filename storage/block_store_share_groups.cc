// BlockStore: share groups (the server's tenants). Eviction takes first
// from groups above an equal share of the RAM budget; a group's RAM limit
// makes it evict its own blocks; its disk limit keeps its blocks in RAM
// rather than let them fill the NVMe tier.
//
// Limits are checked against what the group holds when a reservation or
// swap is decided. Reservations in flight are not counted per group, so
// a group writing several new blocks at the same moment can pass its RAM
// limit by those blocks until the next reservation evicts them.
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "storage/block_store.h"
#include "storage/block_store_internal.h"

namespace tensorpager::storage {

// Each namespace's group and each group's use and NVMe room left, from
// one pass over the per-namespace tally (one group_of_ call per
// namespace), so that one selection never takes a group past its disk
// limit.
class BlockStore::GroupLookup {
 public:
  explicit GroupLookup(const BlockStore& store) ABSL_NO_THREAD_SAFETY_ANALYSIS
      : store_(store) {
    if (!store.group_of_) return;
    for (const auto& [ns, u] : store.tally_.by_namespace) {
      Group& g = Add(ns);
      g.disk_used += u.disk_bytes;
    }
  }

  const std::string& GroupOf(absl::string_view ns) {
    auto it = group_of_ns_.find(ns);
    if (it != group_of_ns_.end()) return it->second;
    Add(ns);  // a namespace the tally does not hold yet
    return group_of_ns_.at(ns);
  }

  // Whether swapping `v` out alone would keep its group within its disk
  // limit. Policies may ask several times about one block, so this
  // counts nothing; KeepWithinDiskLimits does, once victims are chosen.
  bool FitsOnDisk(const Entry& v) {
    if (v.disk.has_value()) return true;  // its copy is on disk already
    const std::optional<uint64_t> left = Left(groups_.at(GroupOf(v.ns())));
    return !left.has_value() || v.attrs.size_bytes <= *left;
  }

  // Drops from `victims`, keeping their order, those that would take
  // their group past its disk limit after the ones before them.
  void KeepWithinDiskLimits(std::vector<policy::Handle>* victims)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    std::erase_if(*victims, [&](policy::Handle k) {
      const Entry& v = *Entry::Of(k);
      if (v.disk.has_value()) return false;
      Group& g = groups_.at(GroupOf(v.ns()));
      const std::optional<uint64_t> left = Left(g);
      if (!left.has_value()) return false;
      if (v.attrs.size_bytes > *left) return true;
      g.disk_used += v.attrs.size_bytes;
      return false;
    });
  }

 private:
  struct Group {
    std::optional<uint64_t> disk_limit;
    uint64_t disk_used = 0;  // with the victims kept so far
  };

  static std::optional<uint64_t> Left(const Group& g) {
    if (!g.disk_limit) return std::nullopt;
    return *g.disk_limit > g.disk_used ? *g.disk_limit - g.disk_used : 0;
  }

  Group& Add(absl::string_view ns) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    const ShareGroup share = store_.group_of_(ns);
    Group& g = groups_[share.name];
    g.disk_limit = share.disk_bytes;
    group_of_ns_.emplace(std::string(ns), share.name);
    return g;
  }

  const BlockStore& store_;
  absl::flat_hash_map<std::string, std::string> group_of_ns_;
  absl::flat_hash_map<std::string, Group> groups_;
};

void BlockStore::SetShareGroups(
    std::function<ShareGroup(absl::string_view ns)> group_of) {
  MutexLock lock(&mu_);
  group_of_ = std::move(group_of);
}

BlockStore::GroupUse BlockStore::UseOfGroup(absl::string_view ns) const {
  GroupUse use;
  if (!group_of_) return use;
  use.group = group_of_(ns);
  if (use.group.name.empty() ||
      (!use.group.ram_bytes && !use.group.disk_bytes)) {
    return use;
  }
  for (const auto& [other, u] : tally_.by_namespace) {
    if (other != ns && group_of_(other).name != use.group.name) continue;
    use.ram_bytes += u.ram_bytes;
    use.disk_bytes += u.disk_bytes;
  }
  return use;
}

void BlockStore::SelectVictimsFairly(
    uint64_t bytes, absl::FunctionRef<bool(const Entry&)> eligible,
    bool ahead_of_need) {
  victims_.clear();
  GroupLookup groups(*this);
  auto may_go = [&](const Entry& v) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return eligible(v) && (!group_of_ || groups.FitsOnDisk(v));
  };
  // Namespaces whose group holds more RAM than an equal share of the
  // budget among the groups that hold any.
  absl::flat_hash_set<std::string> over;
  bool several_groups = false;
  if (group_of_) {
    absl::flat_hash_map<std::string, uint64_t> group_ram;
    for (const auto& [ns, u] : tally_.by_namespace) {
      if (u.ram_bytes != 0) group_ram[groups.GroupOf(ns)] += u.ram_bytes;
    }
    several_groups = group_ram.size() > 1;
    if (several_groups) {
      const uint64_t fair = ram_budget_ / group_ram.size();
      for (const auto& [ns, u] : tally_.by_namespace) {
        if (u.ram_bytes != 0 && group_ram[groups.GroupOf(ns)] > fair) {
          over.insert(ns);
        }
      }
    }
  }
  uint64_t chosen = 0;
  if (!over.empty()) {
    chosen = policy_->SelectVictims(
        bytes,
        [&](policy::Handle k) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          const Entry* v = Entry::Of(k);
          return over.contains(v->ns()) && may_go(*v);
        },
        &victims_);
  }
  // Headroom is made from groups above their share only: a group within
  // its share gives up blocks only when the RAM tier is really full.
  if (chosen < bytes && !(ahead_of_need && several_groups)) {
    const absl::flat_hash_set<policy::Handle> taken(victims_.begin(),
                                                    victims_.end());
    policy_->SelectVictims(
        bytes - chosen,
        [&](policy::Handle k) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return !taken.contains(k) && may_go(*Entry::Of(k));
        },
        &victims_);
  }
  if (group_of_) groups.KeepWithinDiskLimits(&victims_);
}

absl::Status BlockStore::MarkGroupVictims(const Entry& e, uint64_t bytes,
                                          std::vector<Entry*>* marked) {
  const GroupUse use = UseOfGroup(e.ns());
  if (!use.group.ram_bytes || use.ram_bytes + bytes <= *use.group.ram_bytes) {
    return absl::OkStatus();
  }
  const uint64_t limit = *use.group.ram_bytes;
  const std::string who = absl::StrCat("tenant '", use.group.name, "'");
  if (bytes > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "block ", e.key().ToString(), " needs ", bytes, " bytes of RAM but ",
        who, "'s RAM quota (quota.ram_bytes in the tenants file) is ", limit,
        " bytes; write smaller blocks or ask the operator to raise it"));
  }
  GroupLookup groups(*this);
  victims_.clear();
  policy_->SelectVictims(
      use.ram_bytes + bytes - limit,
      [&](policy::Handle k) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        const Entry* v = Entry::Of(k);
        return v != &e && v->io == Io::kIdle && v->ram() != nullptr &&
               !v->attrs.pinned && groups.GroupOf(v->ns()) == use.group.name &&
               groups.FitsOnDisk(*v);
      },
      &victims_);
  groups.KeepWithinDiskLimits(&victims_);
  if (victims_.empty()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        who, " holds ", use.ram_bytes, " bytes in RAM and its RAM quota ",
        "(quota.ram_bytes in the tenants file) is ", limit, "; ", bytes,
        " more are needed and none of its blocks can leave RAM (pinned, "
        "busy, or its disk quota is full): unpin or unregister some of its "
        "blocks, or ask the operator to raise the quota"));
  }
  for (policy::Handle k : victims_) {
    Entry* v = Entry::Of(k);
    v->io = Io::kSwappingOut;
    marked->push_back(v);
  }
  return absl::OkStatus();
}

bool BlockStore::SealFor(const Entry& e) const {
  return !group_of_ || group_of_(e.ns()).encrypted;
}

absl::Status BlockStore::DiskLimitAllows(
    absl::Span<const Entry* const> entries) const {
  if (!group_of_) return absl::OkStatus();
  // On the durable-write path: one group lookup per namespace named, and
  // a sum over the tally only for groups that have a disk limit.
  struct Adding {
    const Entry* first;
    GroupUse use;
    uint64_t bytes = 0;
  };
  absl::flat_hash_map<std::string, std::string> limited_group;  // by ns
  absl::flat_hash_set<std::string> unlimited;                   // namespaces
  absl::flat_hash_map<std::string, Adding> by_group;
  for (const Entry* e : entries) {
    if (e->disk.has_value()) continue;  // a new copy replaces the old one
    if (unlimited.contains(e->ns())) continue;
    auto group = limited_group.find(e->ns());
    if (group == limited_group.end()) {
      GroupUse use = UseOfGroup(e->ns());
      if (!use.group.disk_bytes) {
        unlimited.emplace(e->ns());
        continue;
      }
      std::string name = use.group.name;
      by_group.try_emplace(name, Adding{e, std::move(use)});
      group =
          limited_group.emplace(std::string(e->ns()), std::move(name)).first;
    }
    by_group.at(group->second).bytes += e->attrs.size_bytes;
  }
  for (const auto& [name, adding] : by_group) {
    const GroupUse& use = adding.use;
    if (use.disk_bytes + adding.bytes <= *use.group.disk_bytes) continue;
    return absl::ResourceExhaustedError(absl::StrCat(
        "tenant '", name, "' holds ", use.disk_bytes,
        " bytes on the NVMe tier and its disk quota (quota.disk_bytes in the "
        "tenants file) is ",
        *use.group.disk_bytes, "; block ", adding.first->key().ToString(),
        adding.bytes > adding.first->attrs.size_bytes ? " and others" : "",
        " would add ", adding.bytes,
        ": unregister some of its blocks, keep them in RAM (durable=false), "
        "or ask the operator to raise the quota"));
  }
  return absl::OkStatus();
}

}  // namespace tensorpager::storage
