#include "server/proto_convert.h"

#include "absl/strings/str_cat.h"
#include "server/proto_enums.h"

namespace tensorpager::server {
namespace {

constexpr size_t kMaxLabels = 64;
constexpr size_t kMaxLabelBytes = 256;
// Labels live in RAM for the block's whole life: what one block may carry
// in all, so a client cannot make metadata cost more than the block.
constexpr size_t kMaxLabelBytesPerBlock = 2048;
constexpr size_t kMaxShapeRank = 16;

}  // namespace

void ToProto(const storage::BlockInfo& in, v1::BlockInfo* out) {
  out->set_namespace_(in.ns);
  out->set_id(in.id);
  out->set_size_bytes(in.attrs.size_bytes);
  out->set_region_type(ToProto(in.attrs.region_type));
  out->set_pinned(in.attrs.pinned);
  out->set_dtype(ToProto(in.attrs.dtype));
  for (int64_t d : in.attrs.shape) out->add_shape(d);
  out->mutable_labels()->insert(in.attrs.labels.begin(), in.attrs.labels.end());
  out->set_tier(ToProto(in.tier));
  out->set_stored_bytes(in.stored_bytes);
  out->set_checksum(in.checksum);
  out->set_access_count(in.access_count);
  out->set_last_access_unix_ms(in.last_access_unix_ms);
  out->set_created_unix_ms(in.created_unix_ms);
  if (in.attrs.sequence) {
    out->mutable_sequence()->set_group(in.attrs.sequence->group);
    out->mutable_sequence()->set_index(in.attrs.sequence->index);
  }
  out->set_lost_reason(in.lost_reason);
  out->set_version(in.version);
  out->set_codec(in.codec);
  if (in.attrs.codec) {
    out->set_compression(ToProto(*in.attrs.codec));
  }
}

void ToProto(const storage::WriteResult& in, v1::WriteBlockResponse* out) {
  ToProto(in.block, out->mutable_block());
  out->set_bytes_written(in.bytes_written);
  out->set_durable(in.durable);
}

template <typename Request>
absl::StatusOr<storage::BlockAttributes> AttributesFromRequest(
    const Request& request) {
  storage::BlockAttributes a;
  a.size_bytes = request.size_bytes();
  if (request.region_type() != v1::REGION_TYPE_UNSPECIFIED) {
    std::optional<storage::RegionType> region =
        FromProto(request.region_type());
    if (!region) {
      return absl::InvalidArgumentError(
          absl::StrCat("region_type ", request.region_type(), " is unknown"));
    }
    a.region_type = *region;
  }
  a.pinned = request.pinned();
  if (request.compression() != v1::COMPRESSION_UNSPECIFIED) {
    a.codec = FromProto(request.compression());
    if (!a.codec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "compression ", request.compression(),
          " is unknown; use COMPRESSION_NONE, COMPRESSION_LZ4 or "
          "COMPRESSION_ZSTD (or leave it unset for the server's default)"));
    }
  }
  std::optional<storage::DType> dtype = FromProto(request.dtype());
  if (!dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype ", request.dtype(), " is unknown"));
  }
  a.dtype = *dtype;
  if (static_cast<size_t>(request.shape_size()) > kMaxShapeRank) {
    return absl::InvalidArgumentError(
        absl::StrCat("shape has ", request.shape_size(),
                     " dimensions; at most ", kMaxShapeRank, " are allowed"));
  }
  a.shape.assign(request.shape().begin(), request.shape().end());
  if (request.labels_size() > static_cast<int>(kMaxLabels)) {
    return absl::InvalidArgumentError(
        absl::StrCat("block has ", request.labels_size(), " labels; at most ",
                     kMaxLabels, " are allowed"));
  }
  size_t label_bytes = 0;
  for (const auto& [k, v] : request.labels()) {
    if (k.empty() || k.size() > kMaxLabelBytes || v.size() > kMaxLabelBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label '", k.substr(0, 32), "': keys must be 1 to ", kMaxLabelBytes,
          " bytes and values at most ", kMaxLabelBytes, " bytes"));
    }
    label_bytes += k.size() + v.size();
  }
  if (label_bytes > kMaxLabelBytesPerBlock) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels of the block take ", label_bytes,
                     " bytes; keys and values "
                     "may take at most ",
                     kMaxLabelBytesPerBlock, " bytes per block"));
  }
  a.labels.insert(request.labels().begin(), request.labels().end());
  if (request.has_sequence()) {
    if (request.sequence().group().empty() ||
        request.sequence().group().size() > storage::kMaxIdBytes) {
      return absl::InvalidArgumentError(
          "sequence.group must be 1 to 256 bytes when a sequence is given");
    }
    a.sequence = storage::SequenceRef{request.sequence().group(),
                                      request.sequence().index()};
  }
  return a;
}

template absl::StatusOr<storage::BlockAttributes> AttributesFromRequest(
    const v1::RegisterBlockRequest& request);
template absl::StatusOr<storage::BlockAttributes> AttributesFromRequest(
    const v1::PutBlock& request);

absl::StatusOr<storage::ListFilter> FilterFromRequest(
    const v1::ListBlocksRequest& request) {
  storage::ListFilter f;
  if (absl::Status s = storage::ValidateNamespace(request.namespace_());
      !s.ok()) {
    return s;
  }
  f.ns = request.namespace_();
  f.all_namespaces = request.all_namespaces();
  f.id_prefix = request.id_prefix();
  if (request.tier() != v1::TIER_UNSPECIFIED) {
    f.tier = FromProto(request.tier());
    if (!f.tier) {
      return absl::InvalidArgumentError(
          absl::StrCat("tier filter ", request.tier(), " is unknown"));
    }
  }
  if (request.region_type() != v1::REGION_TYPE_UNSPECIFIED) {
    f.region_type = FromProto(request.region_type());
    if (!f.region_type) {
      return absl::InvalidArgumentError(absl::StrCat(
          "region_type filter ", request.region_type(), " is unknown"));
    }
  }
  switch (request.pinned()) {
    case v1::PINNED_ANY:
      break;
    case v1::PINNED_ONLY:
      f.pinned = true;
      break;
    case v1::UNPINNED_ONLY:
      f.pinned = false;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("pinned filter ", request.pinned(), " is unknown"));
  }
  return f;
}

}  // namespace tensorpager::server
