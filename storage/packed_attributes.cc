#include "storage/packed_attributes.h"

#include <utility>

#include "google/protobuf/io/coded_stream.h"

namespace tensorpager::storage {
namespace {

// The extras of a record: its shape, labels and sequence alone, built in
// `scratch`, whose allocations a caller converting many records reuses.
std::string ExtrasOf(const BlockRecordProto& r, BlockRecordProto& scratch) {
  if (r.shape().empty() && r.labels().empty() && !r.has_sequence()) return "";
  scratch.Clear();
  *scratch.mutable_shape() = r.shape();
  if (!r.labels().empty()) *scratch.mutable_labels() = r.labels();
  if (r.has_sequence()) {
    scratch.set_has_sequence(true);
    scratch.set_sequence_group(r.sequence_group());
    scratch.set_sequence_index(r.sequence_index());
  }
  std::string extras;
  scratch.SerializeToString(&extras);
  return extras;
}

// Merges `extras` into `r`. The store wrote these bytes itself: they
// always parse.
void MergeExtras(const CompactString& extras, BlockRecordProto* r) {
  if (extras.empty()) return;
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(extras.view().data()),
      static_cast<int>(extras.size()));
  r->MergeFromCodedStream(&in);
}

BlockRecordProto ParseExtras(const CompactString& extras) {
  BlockRecordProto r;
  MergeExtras(extras, &r);
  return r;
}

}  // namespace

PackedAttributes PackedAttributes::Pack(const BlockAttributes& attrs) {
  PackedAttributes p;
  p.size_bytes = attrs.size_bytes;
  p.dtype = attrs.dtype;
  p.region_type = attrs.region_type;
  p.pinned = attrs.pinned;
  p.has_sequence = attrs.sequence.has_value();
  p.codec = attrs.codec;
  BlockRecordProto r;
  for (int64_t d : attrs.shape) r.add_shape(d);
  r.mutable_labels()->insert(attrs.labels.begin(), attrs.labels.end());
  if (attrs.sequence) {
    r.set_has_sequence(true);
    r.set_sequence_group(attrs.sequence->group);
    r.set_sequence_index(attrs.sequence->index);
  }
  // r holds only the extras' fields.
  if (!attrs.shape.empty() || !attrs.labels.empty() || attrs.sequence) {
    p.extras = CompactString(r.SerializeAsString());
  }
  return p;
}

PackedAttributes PackedAttributes::FromRecord(const BlockRecordProto& r) {
  BlockRecordProto scratch;
  return FromRecord(r, scratch);
}

PackedAttributes PackedAttributes::FromRecord(const BlockRecordProto& r,
                                              BlockRecordProto& scratch) {
  PackedAttributes p;
  p.size_bytes = r.size_bytes();
  p.dtype = static_cast<DType>(r.dtype());
  p.region_type = static_cast<RegionType>(r.region_type());
  p.pinned = r.pinned();
  p.has_sequence = r.has_sequence();
  if (r.requested_codec() != 0)
    p.codec = static_cast<Codec>(r.requested_codec());
  p.extras = CompactString(ExtrasOf(r, scratch));
  return p;
}

BlockAttributes PackedAttributes::Unpack() const {
  BlockAttributes a;
  a.size_bytes = size_bytes;
  a.dtype = dtype;
  a.region_type = region_type;
  a.pinned = pinned;
  a.codec = codec;
  if (extras.empty()) return a;
  const BlockRecordProto r = ParseExtras(extras);
  a.shape.assign(r.shape().begin(), r.shape().end());
  a.labels.insert(r.labels().begin(), r.labels().end());
  if (r.has_sequence()) {
    a.sequence = SequenceRef{r.sequence_group(), r.sequence_index()};
  }
  return a;
}

std::optional<SequenceRef> PackedAttributes::sequence() const {
  if (!has_sequence) return std::nullopt;
  BlockRecordProto r = ParseExtras(extras);
  return SequenceRef{std::move(*r.mutable_sequence_group()),
                     r.sequence_index()};
}

void PackedAttributes::ToRecord(BlockRecordProto* r) const {
  MergeExtras(extras, r);
  r->set_size_bytes(size_bytes);
  r->set_region_type(static_cast<uint32_t>(region_type));
  r->set_pinned(pinned);
  r->set_dtype(static_cast<uint32_t>(dtype));
  if (codec) r->set_requested_codec(static_cast<uint32_t>(*codec));
}

}  // namespace tensorpager::storage
