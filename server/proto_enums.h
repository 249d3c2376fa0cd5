// Explicit conversions between the service's enums (storage, policy,
// pressure) and the public proto's. Internal -> proto switches name every
// internal value, so a new one fails the build (-Wswitch -Werror); proto ->
// internal ones answer nullopt for *_UNSPECIFIED (except DType, whose
// UNSPECIFIED is a value blocks carry) and unknown numbers, and
// pin each proto enum's size, so a new proto value fails the build until
// it is mapped. tests/unit/proto_enums_test.cc round-trips every value.
#ifndef TENSORPAGER_SERVER_PROTO_ENUMS_H_
#define TENSORPAGER_SERVER_PROTO_ENUMS_H_

#include <optional>

#include "server/pressure/pressure_level.h"
#include "storage/block_types.h"
#include "storage/codec.h"
#include "storage/policy/eviction_policy.h"
#include "tensorpager/v1/tensorpager.pb.h"

namespace tensorpager::server {

v1::RegionType ToProto(storage::RegionType type);
v1::Tier ToProto(storage::Tier tier);
v1::Compression ToProto(storage::Codec codec);
v1::DType ToProto(storage::DType dtype);
v1::Algorithm ToProto(policy::Algorithm algorithm);
v1::PressureLevel ToProto(PressureLevel level);

std::optional<storage::RegionType> FromProto(v1::RegionType type);
std::optional<storage::Tier> FromProto(v1::Tier tier);
std::optional<storage::Codec> FromProto(v1::Compression compression);
std::optional<storage::DType> FromProto(v1::DType dtype);
std::optional<policy::Algorithm> FromProto(v1::Algorithm algorithm);
std::optional<PressureLevel> FromProto(v1::PressureLevel level);

}  // namespace tensorpager::server

#endif  // TENSORPAGER_SERVER_PROTO_ENUMS_H_
