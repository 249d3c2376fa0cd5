"""The enums of the tensorpager.v1 API, with the proto's numbers."""

from __future__ import annotations

import enum
from typing import Type, TypeVar, Union


class DType(enum.IntEnum):
    """Element type of a tensor block (tensorpager.v1.DType)."""

    UNSPECIFIED = 0
    FLOAT32 = 1
    FLOAT16 = 2
    BFLOAT16 = 3
    FLOAT64 = 4
    INT8 = 5
    UINT8 = 6
    INT16 = 7
    INT32 = 8
    INT64 = 9
    BOOL = 10
    FLOAT8_E4M3 = 11
    FLOAT8_E5M2 = 12


class RegionType(enum.IntEnum):
    """What a block holds; sets its eviction priority and defaults."""

    UNSPECIFIED = 0
    TENSOR_DATA = 1
    KV_CACHE = 2
    ACTIVATION = 3
    WEIGHT = 4
    IMAGE_FEATURES = 5
    TEMPORARY = 6


class Compression(enum.IntEnum):
    """Codec of a block's copy on the NVMe tier."""

    UNSPECIFIED = 0
    NONE = 1
    LZ4 = 2
    ZSTD = 3


class Tier(enum.IntEnum):
    """Where a block's bytes are (tensorpager.v1.Tier)."""

    UNSPECIFIED = 0  # no such block
    EMPTY = 1  # registered, never written
    RAM = 2
    DISK = 3
    RAM_AND_DISK = 4
    LOST = 5  # did not survive a restart, or failed its checksum


_E = TypeVar("_E", bound=enum.IntEnum)


def coerce(enum_type: Type[_E], value: Union[_E, int, str]) -> _E:
    """`value` as a member of `enum_type`: a member, its number, or its
    name in any case with or without the proto's prefix ("kv_cache",
    "KV_CACHE", "TIER_RAM")."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        name = value.upper()
        for prefix in ("TIER_", "DTYPE_", "COMPRESSION_", "REGION_TYPE_"):
            if name.startswith(prefix) and name[len(prefix):] in \
                    enum_type.__members__:
                name = name[len(prefix):]
        try:
            return enum_type[name]
        except KeyError:
            raise ValueError(
                f"{value!r} is not a {enum_type.__name__}; one of "
                f"{', '.join(enum_type.__members__)}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return enum_type(value)
    raise TypeError(
        f"expected a {enum_type.__name__}, its name or number, not "
        f"{type(value).__name__}")
