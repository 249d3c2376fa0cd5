#include "client_sdk/tpctl/status_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client_sdk/tpctl/format.h"
#include "client_sdk/tpctl/text_table.h"

namespace tensorpager::tpctl {
namespace {

std::string Trend(const v1::ResourcePressure& p) {
  return absl::StrFormat("%+.2f%%/s", p.slope_per_second() * 100);
}

std::string ToCritical(const v1::ResourcePressure& p) {
  if (p.level() == v1::CRITICAL) return "now";
  if (p.seconds_to_critical() < 0) return "-";
  return HumanDuration(static_cast<int64_t>(p.seconds_to_critical()));
}

void AppendTiers(const v1::StatusResponse& s, std::string& out) {
  TextTable t({"TIER", "BLOCKS", "BYTES", "USED", "CAPACITY", "UTIL"});
  t.AlignRight({1, 2, 3, 4, 5});
  for (const auto& [name, tier] :
       {std::pair<const char*, const v1::TierStatus*>{"ram", &s.ram()},
        {"disk", &s.disk()}}) {
    t.AddRow({name, absl::StrCat(tier->blocks()), HumanBytes(tier->bytes()),
              HumanBytes(tier->used_bytes()),
              HumanBytes(tier->capacity_bytes()),
              Percent(tier->utilization())});
  }
  absl::StrAppend(&out, t.Render());
}

void AppendPressure(const v1::StatusResponse& s, std::string& out) {
  TextTable t({"RESOURCE", "LEVEL", "USED", "TOTAL", "USAGE", "TREND",
               "TO CRITICAL", "PSI SOME", "SOURCE"});
  t.AlignRight({2, 3, 4, 5, 6, 7});
  for (const v1::ResourcePressure& p : s.pressure()) {
    if (!p.present()) {
      t.AddRow({p.resource(), "absent"});
      continue;
    }
    t.AddRow({p.resource(), PressureLevelName(p.level()),
              HumanBytes(p.used_bytes()), HumanBytes(p.total_bytes()),
              Percent(p.usage_ratio()), Trend(p), ToCritical(p),
              p.resource() == "host_ram"
                  ? absl::StrFormat("%.1f%%", p.psi_some_avg10())
                  : "-",
              p.source()});
  }
  if (t.rows() == 0) {
    absl::StrAppend(&out, "pressure: no resources reported\n");
    return;
  }
  absl::StrAppend(&out, t.Render());
}

void AppendEfficiency(const v1::Efficiency& e, std::string& out) {
  TextTable t({"EFFICIENCY", ""});
  t.AddRow({"accesses",
            absl::StrCat(e.accesses(), " (RAM hits ", e.ram_hits(),
                         ", disk hits ", e.disk_hits(), ", misses ", e.misses(),
                         "), hit rate ", Percent(e.hit_rate()))});
  if (e.accesses_reported() > 0) {
    t.AddRow({"reported by clients", absl::StrCat(e.accesses_reported())});
  }
  t.AddRow({"swap out", absl::StrCat(e.swap_outs(), " blocks, ",
                                     HumanBytes(e.bytes_swapped_out()),
                                     ", avg ", Millis(e.avg_swap_out_ms()))});
  t.AddRow({"swap in", absl::StrCat(e.swap_ins(), " blocks, ",
                                    HumanBytes(e.bytes_swapped_in()), ", avg ",
                                    Millis(e.avg_swap_in_ms()))});
  t.AddRow({"swap space used", Percent(e.swap_space_utilization())});
  if (e.prefetched() > 0) {
    t.AddRow({"prefetch",
              absl::StrCat(e.prefetched(), " blocks, ", e.prefetch_hits(),
                           " used, ", e.prefetch_wasted(), " wasted")});
  }
  if (e.compression_ratio() > 0) {
    t.AddRow({"compression", absl::StrFormat("%.2fx", e.compression_ratio())});
  }
  absl::StrAppend(&out, t.Render());
}

void AppendClients(const v1::StatusResponse& s, absl::Time now,
                   std::string& out) {
  if (s.clients_size() == 0) return;
  TextTable t(
      {"CLIENT", "GPU", "USED", "TOTAL", "CACHED", "HOST CACHE", "REPORTED"});
  t.AlignRight({1, 2, 3, 4, 5});
  for (const v1::ClientUsage& c : s.clients()) {
    const std::string reported = Ago(c.reported_unix_ms(), now);
    if (c.gpus_size() == 0) {
      t.AddRow({c.client_id(), "-", "", "", "",
                HumanBytes(c.host_cache_bytes()), reported});
    }
    for (const v1::GpuUsage& g : c.gpus()) {
      t.AddRow({c.client_id(), absl::StrCat(g.device()),
                HumanBytes(g.used_bytes()), HumanBytes(g.total_bytes()),
                HumanBytes(g.cached_bytes()), HumanBytes(c.host_cache_bytes()),
                reported});
    }
  }
  absl::StrAppend(&out, "\n", t.Render());
}

}  // namespace

std::string StatusReport(const v1::StatusResponse& s, absl::Time now) {
  std::string out = absl::StrCat("tensorpagerd ", s.version(), ", up ",
                                 HumanDuration(s.uptime_seconds()), ", policy ",
                                 AlgorithmName(s.algorithm()), ", io engine ",
                                 s.io_engine(), "\n");
  // The reason names the profile itself ("profile ssd (auto: ...)").
  if (!s.profile_reason().empty()) {
    absl::StrAppend(&out, s.profile_reason(), "\n");
  } else if (!s.profile().empty()) {
    absl::StrAppend(&out, "profile ", s.profile(), "\n");
  }
  absl::StrAppend(&out, "data dir ", s.data_dir(), "\n", "swap out above ",
                  Percent(s.swap_threshold()), " of the RAM budget, down to ",
                  Percent(s.swap_target()), "; largest block ",
                  HumanBytes(s.max_block_bytes()), "\n\n");
  AppendTiers(s, out);
  absl::StrAppend(&out, "\nblocks: ", s.blocks_registered(), " registered, ",
                  s.blocks_in_ram(), " in RAM, ", s.blocks_on_disk(),
                  " on disk, ", s.blocks_pinned(), " pinned (",
                  HumanBytes(s.pinned_bytes()), "), ", s.blocks_empty(),
                  " empty, ", s.blocks_lost(), " lost\n\n");
  AppendPressure(s, out);
  absl::StrAppend(&out, "\n");
  AppendEfficiency(s.efficiency(), out);
  AppendClients(s, now, out);
  return out;
}

std::string PressureEventLine(const v1::PressureEvent& e) {
  const v1::ResourcePressure& p = e.state();
  const std::string when =
      e.unix_ms() > 0 ? absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                                         absl::FromUnixMillis(e.unix_ms()),
                                         absl::UTCTimeZone())
                      : "-";
  // The first events of a watch carry the current state, not a change.
  const std::string change =
      e.previous_level() == v1::PRESSURE_LEVEL_UNSPECIFIED ||
              e.previous_level() == e.level()
          ? absl::StrCat(PressureLevelName(e.level()), " (current)")
          : absl::StrCat(PressureLevelName(e.previous_level()), " -> ",
                         PressureLevelName(e.level()));
  std::string line = absl::StrCat(when, "  ", e.resource(), "  ", change);
  if (e.has_state() && p.present()) {
    absl::StrAppend(&line, "  used ", HumanBytes(p.used_bytes()), " of ",
                    HumanBytes(p.total_bytes()), " (", Percent(p.usage_ratio()),
                    "), trend ", Trend(p), ", critical in ", ToCritical(p));
  }
  return line;
}

}  // namespace tensorpager::tpctl
