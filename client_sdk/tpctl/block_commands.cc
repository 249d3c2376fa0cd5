#include "client_sdk/tpctl/block_commands.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client_sdk/tpctl/enum_args.h"
#include "client_sdk/tpctl/format.h"
#include "client_sdk/tpctl/json_output.h"
#include "client_sdk/tpctl/text_table.h"
#include "client_sdk/tpctl/usage_error.h"
#include "storage/base/byte_size.h"
#include "storage/base/output_file.h"

namespace tensorpager::tpctl {
namespace {

BlockName NameOf(const Invocation& inv, const std::string& id) {
  return BlockName(inv.Get("namespace"), id);
}

std::string Display(const Invocation& inv, const std::string& id) {
  const std::string ns = inv.Get("namespace");
  return ns.empty() ? id : absl::StrCat(ns, "/", id);
}

absl::StatusOr<uint64_t> SizeOption(const Invocation& inv,
                                    absl::string_view name, uint64_t fallback) {
  if (!inv.Has(name)) return fallback;
  absl::StatusOr<uint64_t> v = base::ParseByteSize(inv.Get(name));
  if (!v.ok()) {
    return UsageError(absl::StrCat("--", name, ": ", v.status().message()));
  }
  return *v;
}

// ---- info ------------------------------------------------------------------

std::string Shape(const v1::BlockInfo& b) {
  return absl::StrCat("[", absl::StrJoin(b.shape(), ", "), "]");
}

void PrintBlock(std::ostream& out, const v1::BlockInfo& b) {
  TextTable t({"FIELD", "VALUE"});
  const absl::Time now = absl::Now();
  t.AddRow({"namespace", b.namespace_()});
  t.AddRow({"id", b.id()});
  t.AddRow({"size", absl::StrCat(HumanBytes(b.size_bytes()), " (",
                                 b.size_bytes(), " bytes)")});
  t.AddRow({"region type", RegionTypeName(b.region_type())});
  t.AddRow({"tier", TierName(b.tier())});
  if (b.tier() == v1::TIER_LOST) t.AddRow({"lost reason", b.lost_reason()});
  t.AddRow({"pinned", b.pinned() ? "yes" : "no"});
  if (b.dtype() != v1::DTYPE_UNSPECIFIED || b.shape_size() > 0) {
    t.AddRow({"dtype", DTypeName(b.dtype())});
    t.AddRow({"shape", Shape(b)});
  }
  if (!b.labels().empty()) {
    std::map<std::string, std::string> sorted(b.labels().begin(),
                                              b.labels().end());
    t.AddRow({"labels", absl::StrJoin(sorted, ", ", absl::PairFormatter("="))});
  }
  if (!b.sequence().group().empty()) {
    t.AddRow({"sequence", absl::StrCat(b.sequence().group(), "[",
                                       b.sequence().index(), "]")});
  }
  if (b.stored_bytes() > 0) {
    t.AddRow({"on disk",
              absl::StrCat(HumanBytes(b.stored_bytes()),
                           b.codec().empty() ? "" : " codec ", b.codec())});
  }
  t.AddRow({"checksum", absl::StrFormat("%016x (xxh3-64)", b.checksum())});
  t.AddRow({"version", absl::StrCat(b.version())});
  t.AddRow({"accesses", absl::StrCat(b.access_count(), ", last ",
                                     Ago(b.last_access_unix_ms(), now))});
  t.AddRow({"created", Ago(b.created_unix_ms(), now)});
  out << t.Render();
}

absl::Status RunInfo(const Invocation& inv, Context& ctx) {
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  absl::StatusOr<v1::BlockInfo> b = (*client)->Get(NameOf(inv, inv.args()[0]));
  if (!b.ok()) return b.status();
  if (inv.Has("json")) return PrintJson(ctx.out(), *b);
  PrintBlock(ctx.out(), *b);
  return absl::OkStatus();
}

// ---- list ------------------------------------------------------------------

absl::Status RunList(const Invocation& inv, Context& ctx) {
  v1::ListBlocksRequest req;
  req.set_namespace_(inv.Get("namespace"));
  req.set_all_namespaces(inv.Has("all_namespaces"));
  if (inv.Has("namespace") && inv.Has("all_namespaces")) {
    return UsageError("--namespace and --all_namespaces exclude each other");
  }
  if (inv.Has("tier")) {
    absl::StatusOr<v1::Tier> tier = ParseTier(inv.Get("tier"));
    if (!tier.ok()) return tier.status();
    req.set_tier(*tier);
  }
  if (inv.Has("region_type")) {
    absl::StatusOr<v1::RegionType> type =
        ParseRegionType(inv.Get("region_type"));
    if (!type.ok()) return type.status();
    req.set_region_type(*type);
  }
  if (inv.Has("pinned") && inv.Has("unpinned")) {
    return UsageError("--pinned and --unpinned exclude each other");
  }
  if (inv.Has("pinned")) req.set_pinned(v1::PINNED_ONLY);
  if (inv.Has("unpinned")) req.set_pinned(v1::UNPINNED_ONLY);
  req.set_id_prefix(inv.Get("prefix"));
  uint64_t limit = 0;
  if (inv.Has("limit") &&
      (!absl::SimpleAtoi(inv.Get("limit"), &limit) || limit == 0)) {
    return UsageError("--limit must be a positive number of blocks");
  }

  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  v1::ListBlocksResponse all;
  bool more = false;
  do {
    const uint64_t left = limit == 0 ? 1000 : limit - all.blocks_size();
    req.set_page_size(static_cast<uint32_t>(std::min<uint64_t>(left, 1000)));
    absl::StatusOr<v1::ListBlocksResponse> page = (*client)->List(req);
    if (!page.ok()) return page.status();
    for (v1::BlockInfo& b : *page->mutable_blocks()) {
      if (limit != 0 && static_cast<uint64_t>(all.blocks_size()) >= limit) {
        break;
      }
      *all.add_blocks() = std::move(b);
    }
    req.set_page_token(page->next_page_token());
    more = !page->next_page_token().empty();
  } while (more &&
           (limit == 0 || static_cast<uint64_t>(all.blocks_size()) < limit));
  // Where a --limit cut the listing, the token resumes it.
  if (more) all.set_next_page_token(req.page_token());

  if (inv.Has("json")) return PrintJson(ctx.out(), all);
  const bool show_ns = inv.Has("all_namespaces");
  std::vector<std::string> header = {
      "ID", "SIZE", "TIER", "REGION", "PINNED", "ACCESSES", "LAST ACCESS"};
  if (show_ns) header.insert(header.begin(), "NAMESPACE");
  TextTable t(header);
  t.AlignRight(show_ns ? std::set<size_t>{2, 6} : std::set<size_t>{1, 5});
  const absl::Time now = absl::Now();
  uint64_t bytes = 0;
  for (const v1::BlockInfo& b : all.blocks()) {
    std::vector<std::string> row = {b.id(),
                                    HumanBytes(b.size_bytes()),
                                    TierName(b.tier()),
                                    RegionTypeName(b.region_type()),
                                    b.pinned() ? "yes" : "no",
                                    absl::StrCat(b.access_count()),
                                    Ago(b.last_access_unix_ms(), now)};
    if (show_ns) row.insert(row.begin(), b.namespace_());
    t.AddRow(std::move(row));
    bytes += b.size_bytes();
  }
  if (t.rows() > 0) ctx.out() << t.Render();
  ctx.out() << all.blocks_size()
            << (all.blocks_size() == 1 ? " block" : " blocks") << ", "
            << HumanBytes(bytes) << (more ? " (more: raise --limit)" : "")
            << "\n";
  return absl::OkStatus();
}

// ---- put / get
// ---------------------------------------------------------------

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  if (path == "-") {
    std::string data((std::istreambuf_iterator<char>(std::cin)),
                     std::istreambuf_iterator<char>());
    if (std::cin.bad()) return absl::DataLossError("cannot read stdin");
    return data;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string message =
        absl::StrCat("cannot open ", path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message)
                         : absl::FailedPreconditionError(message);
  }
  std::ostringstream data;
  data << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return std::move(data).str();
}

// "-" is stdout; a file is replaced whole, a device or FIFO written in
// place (see output_file.h).
absl::Status WriteOutput(const std::string& path, absl::string_view data) {
  if (path == "-") {
    std::cout.write(data.data(), static_cast<std::streamsize>(data.size()));
    std::cout.flush();
    if (!std::cout) return absl::DataLossError("cannot write stdout");
    return absl::OkStatus();
  }
  return base::WriteOutputFile(path, data);
}

absl::StatusOr<BlockSpec> SpecFromOptions(const Invocation& inv,
                                          uint64_t size) {
  BlockSpec spec(NameOf(inv, inv.args()[0]), size);
  if (inv.Has("region_type")) {
    absl::StatusOr<v1::RegionType> t = ParseRegionType(inv.Get("region_type"));
    if (!t.ok()) return t.status();
    spec.region_type = *t;
  }
  spec.pinned = inv.Has("pinned");
  if (inv.Has("dtype")) {
    absl::StatusOr<v1::DType> d = ParseDType(inv.Get("dtype"));
    if (!d.ok()) return d.status();
    spec.dtype = *d;
  }
  if (inv.Has("shape")) {
    for (absl::string_view dim : absl::StrSplit(inv.Get("shape"), ',')) {
      int64_t v;
      if (!absl::SimpleAtoi(dim, &v) || v < 0) {
        return UsageError(absl::StrCat("--shape '", inv.Get("shape"),
                                       "': write dimensions like 2,1024,128"));
      }
      spec.shape.push_back(v);
    }
  }
  for (const std::string& label : inv.GetAll("label")) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (kv.first.empty() || label.find('=') == std::string::npos) {
      return UsageError(absl::StrCat("--label '", label, "': write KEY=VALUE"));
    }
    spec.labels[kv.first] = kv.second;
  }
  if (inv.Has("sequence")) {
    const std::string text = inv.Get("sequence");
    const size_t colon = text.rfind(':');
    uint32_t index;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(text.substr(colon + 1), &index)) {
      return UsageError(
          absl::StrCat("--sequence '", text, "': write GROUP:INDEX"));
    }
    spec.sequence = std::make_pair(text.substr(0, colon), index);
  }
  return spec;
}

absl::Status RunPut(const Invocation& inv, Context& ctx) {
  const std::string& id = inv.args()[0];
  absl::StatusOr<std::string> data = ReadInput(inv.args()[1]);
  if (!data.ok()) return data.status();
  if (data->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        inv.args()[1], " is empty; blocks hold at least one byte"));
  }
  absl::StatusOr<BlockSpec> spec = SpecFromOptions(inv, data->size());
  if (!spec.ok()) return spec.status();
  std::optional<bool> durable;
  if (inv.Has("durable")) durable = true;

  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  absl::StatusOr<v1::BlockInfo> reg = (*client)->Register(*spec);
  if (reg.status().code() == absl::StatusCode::kAlreadyExists &&
      inv.Has("replace")) {
    absl::StatusOr<v1::UnregisterBlockResponse> gone =
        (*client)->Unregister(spec->name);
    if (!gone.ok()) return gone.status();
    reg = (*client)->Register(*spec);
  }
  if (!reg.ok()) {
    if (reg.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat(
          reg.status().message(), " (--replace unregisters it first)"));
    }
    return reg.status();
  }
  absl::StatusOr<v1::WriteBlockResponse> w =
      (*client)->Write(spec->name, *data, 0, durable);
  if (!w.ok()) {
    // Leave nothing half-made behind: the block was registered just now.
    (void)(*client)->Unregister(spec->name);
    return w.status();
  }
  if (inv.Has("json")) return PrintJson(ctx.out(), *w);
  ctx.out() << "put " << Display(inv, id) << ": "
            << HumanBytes(w->bytes_written()) << ", tier "
            << TierName(w->block().tier()) << (w->durable() ? ", on disk" : "")
            << ", checksum " << absl::StrFormat("%016x", w->block().checksum())
            << "\n";
  return absl::OkStatus();
}

absl::Status RunGet(const Invocation& inv, Context& ctx) {
  absl::StatusOr<uint64_t> offset = SizeOption(inv, "offset", 0);
  if (!offset.ok()) return offset.status();
  absl::StatusOr<uint64_t> length = SizeOption(inv, "length", 0);
  if (!length.ok()) return length.status();
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  const std::string& id = inv.args()[0];
  const std::string& path = inv.args()[1];
  absl::StatusOr<ReadResult> r =
      (*client)->Read(NameOf(inv, id), *offset, *length);
  if (!r.ok()) return r.status();
  if (absl::Status s = WriteOutput(path, r->data); !s.ok()) return s;
  if (path != "-") {
    ctx.out() << "got " << Display(inv, id) << ": "
              << HumanBytes(r->data.size()) << " to " << path << " ("
              << (r->hit ? "from RAM" : "swapped in from disk") << ")\n";
  }
  return absl::OkStatus();
}

// ---- swap ------------------------------------------------------------------

absl::Status RunSwap(v1::SwapDirection direction, const Invocation& inv,
                     Context& ctx) {
  absl::StatusOr<uint64_t> bytes = SizeOption(inv, "bytes", 0);
  if (!bytes.ok()) return bytes.status();
  if (inv.args().empty() == !inv.Has("bytes")) {
    return UsageError("name the blocks (IDs) or give --bytes SIZE, not both");
  }
  if (inv.Has("bytes") && *bytes == 0) {
    return UsageError("--bytes must be positive");
  }
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  absl::StatusOr<v1::SwapResponse> r;
  if (inv.args().empty()) {
    r = (*client)->SwapBytes(direction, *bytes);
  } else {
    std::vector<BlockName> names;
    for (const std::string& id : inv.args()) names.push_back(NameOf(inv, id));
    r = direction == v1::SWAP_OUT ? (*client)->SwapOut(names)
                                  : (*client)->SwapIn(names);
  }
  if (!r.ok()) return r.status();
  if (inv.Has("json")) return PrintJson(ctx.out(), *r);
  const bool out = direction == v1::SWAP_OUT;
  ctx.out() << (out ? "swapped out " : "swapped in ") << r->blocks_moved()
            << (r->blocks_moved() == 1 ? " block, " : " blocks, ")
            << HumanBytes(r->bytes_moved()) << " in "
            << Millis(static_cast<double>(r->duration_us()) / 1000) << "\n";
  if (r->already_there_size() > 0) {
    std::vector<std::string> ids;
    for (const v1::BlockRef& b : r->already_there()) ids.push_back(b.id());
    ctx.out() << (out ? "already on disk: " : "already in RAM: ")
              << absl::StrJoin(ids, ", ") << "\n";
  }
  return absl::OkStatus();
}

// ---- pin / unpin / unregister ----------------------------------------------

absl::Status RunPin(bool pin, const Invocation& inv, Context& ctx) {
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  for (const std::string& id : inv.args()) {
    absl::StatusOr<v1::BlockInfo> b = pin ? (*client)->Pin(NameOf(inv, id))
                                          : (*client)->Unpin(NameOf(inv, id));
    if (!b.ok()) {
      return absl::Status(b.status().code(),
                          absl::StrCat(id, ": ", b.status().message()));
    }
    ctx.out() << (pin ? "pinned " : "unpinned ") << Display(inv, id)
              << " (tier " << TierName(b->tier()) << ")\n";
  }
  return absl::OkStatus();
}

absl::Status RunUnregister(const Invocation& inv, Context& ctx) {
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  for (const std::string& id : inv.args()) {
    absl::StatusOr<v1::UnregisterBlockResponse> r =
        (*client)->Unregister(NameOf(inv, id));
    if (!r.ok()) {
      return absl::Status(r.status().code(),
                          absl::StrCat(id, ": ", r.status().message()));
    }
    ctx.out() << "unregistered " << Display(inv, id) << ": freed "
              << HumanBytes(r->ram_bytes_freed()) << " of RAM, "
              << HumanBytes(r->disk_bytes_freed()) << " of disk\n";
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<CommandSpec> BlockCommands() {
  std::vector<CommandSpec> c;
  c.push_back(CommandSpec{
      .name = "list",
      .arguments = "",
      .summary = "list blocks, with filters",
      .description =
          "Pages through ListBlocks and prints one row per block.\n"
          "Example: tpctl list --tier disk --region_type kv_cache --limit 20",
      .min_args = 0,
      .max_args = 0,
      .options = {NamespaceOption(),
                  {"all_namespaces", "", "blocks of every namespace"},
                  {"tier", "TIER",
                   "only blocks in TIER: empty, ram, disk, ram+disk, lost"},
                  {"region_type", "TYPE",
                   "only TYPE: tensor_data, kv_cache, activation, weight, "
                   "image_features, temporary"},
                  {"pinned", "", "only pinned blocks"},
                  {"unpinned", "", "only unpinned blocks"},
                  {"prefix", "PREFIX", "only ids starting with PREFIX"},
                  {"limit", "N", "at most N blocks (default: all)"},
                  JsonOption()},
      .run = RunList});
  c.push_back(CommandSpec{.name = "info",
                          .arguments = "ID",
                          .summary = "show one block's metadata",
                          .description = "",
                          .min_args = 1,
                          .max_args = 1,
                          .options = {NamespaceOption(), JsonOption()},
                          .run = RunInfo});
  c.push_back(CommandSpec{
      .name = "put",
      .arguments = "ID FILE",
      .summary = "store FILE (- for stdin) as block ID",
      .description =
          "Registers block ID with FILE's size and writes FILE's bytes in one "
          "stream.\nIf the write fails the block is unregistered again.",
      .min_args = 2,
      .max_args = 2,
      .options = {NamespaceOption(),
                  {"region_type", "TYPE",
                   "what the block holds (default tensor_data)"},
                  {"pinned", "", "never swap the block out"},
                  {"durable", "", "acknowledge once the bytes are on disk"},
                  {"dtype", "DTYPE",
                   "element type, e.g. float16, bfloat16, int8"},
                  {"shape", "DIMS", "tensor shape, e.g. 2,1024,128"},
                  {"label", "KEY=VALUE", "a label (repeatable)"},
                  {"sequence", "GROUP:INDEX", "position in an ordered group"},
                  {"replace", "", "unregister an existing block ID first"},
                  JsonOption()},
      .run = RunPut});
  c.push_back(CommandSpec{
      .name = "get",
      .arguments = "ID FILE",
      .summary = "read block ID into FILE (- for stdout)",
      .description =
          "Swaps the block in when it is on disk. A regular FILE is written "
          "under a\ntemporary name and renamed, so it is whole or absent; a "
          "device or FIFO\n(/dev/null, a named pipe) is written in place.",
      .min_args = 2,
      .max_args = 2,
      .options = {NamespaceOption(),
                  {"offset", "BYTES", "start of the range (default 0)"},
                  {"length", "BYTES", "bytes to read (default: to the end)"}},
      .run = RunGet});
  const std::vector<OptionSpec> swap_options = {
      NamespaceOption(),
      {"bytes", "SIZE",
       "instead of IDs: at least SIZE bytes (e.g. 256MiB), blocks chosen by "
       "the policy"},
      JsonOption()};
  c.push_back(CommandSpec{
      .name = "swap-out",
      .arguments = "[ID...]",
      .summary = "move blocks from RAM to the NVMe tier",
      .description = "Data is on disk (fdatasync) when the command returns.",
      .min_args = 0,
      .max_args = CommandSpec::kAnyNumber,
      .options = swap_options,
      .run = [](const Invocation& inv, Context& ctx) {
        return RunSwap(v1::SWAP_OUT, inv, ctx);
      }});
  c.push_back(CommandSpec{
      .name = "swap-in",
      .arguments = "[ID...]",
      .summary = "move blocks from the NVMe tier into RAM",
      .description = "With --bytes, the most recently used disk blocks first.",
      .min_args = 0,
      .max_args = CommandSpec::kAnyNumber,
      .options = swap_options,
      .run = [](const Invocation& inv, Context& ctx) {
        return RunSwap(v1::SWAP_IN, inv, ctx);
      }});
  c.push_back(
      CommandSpec{.name = "pin",
                  .arguments = "ID...",
                  .summary = "keep blocks in RAM (brings them in from disk)",
                  .description = "",
                  .min_args = 1,
                  .max_args = CommandSpec::kAnyNumber,
                  .options = {NamespaceOption()},
                  .run = [](const Invocation& inv, Context& ctx) {
                    return RunPin(true, inv, ctx);
                  }});
  c.push_back(CommandSpec{.name = "unpin",
                          .arguments = "ID...",
                          .summary = "let the policy swap blocks out again",
                          .description = "",
                          .min_args = 1,
                          .max_args = CommandSpec::kAnyNumber,
                          .options = {NamespaceOption()},
                          .run = [](const Invocation& inv, Context& ctx) {
                            return RunPin(false, inv, ctx);
                          }});
  c.push_back(
      CommandSpec{.name = "unregister",
                  .arguments = "ID...",
                  .summary = "delete blocks, freeing their RAM and disk space",
                  .description = "",
                  .min_args = 1,
                  .max_args = CommandSpec::kAnyNumber,
                  .options = {NamespaceOption()},
                  .run = RunUnregister});
  return c;
}

}  // namespace tensorpager::tpctl
