#include "client_sdk/tpctl/batch_commands.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "client_sdk/tpctl/format.h"
#include "client_sdk/tpctl/json_output.h"
#include "client_sdk/tpctl/text_table.h"
#include "client_sdk/tpctl/usage_error.h"

namespace tensorpager::tpctl {
namespace {

absl::Status RunLookup(const Invocation& inv, Context& ctx) {
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  absl::StatusOr<LookupOutcome> found =
      (*client)->Lookup(inv.Get("namespace"), inv.args());
  if (!found.ok()) return found.status();
  if (inv.Has("json")) {
    v1::LookupResponse response;
    for (const v1::LookupEntry& e : found->entries) *response.add_entries() = e;
    response.set_prefix_hits(found->prefix_hits);
    return PrintJson(ctx.out(), response);
  }
  TextTable t({"ID", "PRESENT", "TIER", "SIZE"});
  t.AlignRight({3});
  for (size_t i = 0; i < found->entries.size(); ++i) {
    const v1::LookupEntry& e = found->entries[i];
    t.AddRow(
        {inv.args()[i], e.present() ? "yes" : "no",
         e.tier() == v1::TIER_UNSPECIFIED ? "-" : TierName(e.tier()),
         e.tier() == v1::TIER_UNSPECIFIED ? "-" : HumanBytes(e.size_bytes())});
  }
  ctx.out() << t.Render();
  ctx.out() << "prefix hits: " << found->prefix_hits << " of "
            << found->entries.size() << "\n";
  return absl::OkStatus();
}

absl::Status RunRm(const Invocation& inv, Context& ctx) {
  const bool by_prefix = inv.Has("prefix");
  if (by_prefix == !inv.args().empty()) {
    return UsageError("give IDs or --prefix PREFIX, not both and not neither");
  }
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  const std::string ns = inv.Get("namespace");
  absl::StatusOr<UnregisterOutcome> gone =
      by_prefix ? (*client)->UnregisterPrefix(ns, inv.Get("prefix"))
                : (*client)->UnregisterBatch(ns, inv.args());
  if (!gone.ok()) return gone.status();
  // Missing ids are reported, and fail the command, after the others went.
  absl::Status first_error = gone->first_failure;
  for (size_t i = 0; i < gone->results.size(); ++i) {
    if (!gone->results[i].ok() && first_error.ok()) {
      first_error = absl::Status(
          gone->results[i].code(),
          absl::StrCat(inv.args()[i], ": ", gone->results[i].message()));
    }
  }
  if (inv.Has("json")) {
    v1::UnregisterBlocksResponse response;
    response.set_blocks_removed(gone->blocks_removed);
    response.set_ram_bytes_freed(gone->ram_bytes_freed);
    response.set_disk_bytes_freed(gone->disk_bytes_freed);
    response.set_blocks_failed(gone->blocks_failed);
    for (const absl::Status& s : gone->results) {
      v1::BlockStatus* out = response.add_results();
      out->set_code(static_cast<int32_t>(s.code()));
      out->set_message(std::string(s.message()));
    }
    if (absl::Status s = PrintJson(ctx.out(), response); !s.ok()) return s;
  } else {
    ctx.out() << "removed " << gone->blocks_removed << " block"
              << (gone->blocks_removed == 1 ? "" : "s") << ": freed "
              << HumanBytes(gone->ram_bytes_freed) << " of RAM, "
              << HumanBytes(gone->disk_bytes_freed) << " of disk\n";
  }
  return first_error;
}

}  // namespace

std::vector<CommandSpec> BatchCommands() {
  std::vector<CommandSpec> c;
  c.push_back(CommandSpec{
      .name = "lookup",
      .arguments = "ID...",
      .summary = "which blocks are present, and how many from the first",
      .description =
          "One Lookup call for all IDs: each one's tier and size, and the\n"
          "prefix hits (how many IDs, counting from the first, are present "
          "and\nreadable; empty and lost blocks are not present).\n"
          "Example: tpctl lookup --namespace qwen3-vl page0 page1 page2",
      .min_args = 1,
      .max_args = CommandSpec::kAnyNumber,
      .options = {NamespaceOption(), JsonOption()},
      .run = RunLookup});
  c.push_back(CommandSpec{
      .name = "rm",
      .arguments = "[ID...]",
      .summary = "delete blocks by IDs, or every ID with a prefix",
      .description =
          "Unregisters in batches (UnregisterBlocks). With --prefix, every "
          "block of the\nnamespace whose id starts with PREFIX: one "
          "conversation's or one model's pages.\nIDs not registered are "
          "reported and make the command fail after the rest\nare gone.\n"
          "Example: tpctl rm --namespace qwen3-vl --prefix conv-42/",
      .min_args = 0,
      .max_args = CommandSpec::kAnyNumber,
      .options = {NamespaceOption(),
                  {"prefix", "PREFIX", "every id starting with PREFIX"},
                  JsonOption()},
      .run = RunRm});
  return c;
}

}  // namespace tensorpager::tpctl
