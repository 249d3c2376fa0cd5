#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/.

The seeds are small valid (and a few nearly valid) inputs in each target's
input format (see the comment at the top of each <target>_fuzzer.cc).
Deterministic: rerun after changing a format or a message, and commit the
result. Protobuf messages are encoded here by hand (wire format), so this
needs nothing beyond Python 3. Other files in the corpus (the reproducers
of fixed crashes, regress-*) are left alone.

  tests/fuzz/make_corpus.py            (re)writes the seeds
  tests/fuzz/make_corpus.py --check    fails when a seed is stale
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


# --- protobuf wire format ---------------------------------------------------

def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def v(field, n):  # varint field (int, enum, bool)
    return key(field, 0) + varint(int(n))


def s(field, data):  # length-delimited field (string, bytes, message)
    if isinstance(data, str):
        data = data.encode()
    return key(field, 2) + varint(len(data)) + data


def packed(field, values):
    return s(field, b"".join(varint(x) for x in values))


def entry(field, k, val):  # one map<string, string> entry
    return s(field, s(1, k) + s(2, val))


# --- http_request -------------------------------------------------------------

def http_request():
    return {
        "get": b"GET /metrics HTTP/1.1\r\nHost: localhost:9464\r\n"
               b"Accept: text/plain\r\n\r\n",
        "head_lf": b"HEAD /metrics HTTP/1.0\n\n",
        "query": b"GET /metrics?name[]=up HTTP/1.1\r\nHost: x\r\n\r\n",
        "root": b"GET / HTTP/1.1\r\n\r\n",
        "not_found": b"GET /nope HTTP/1.1\r\nUser-Agent: fuzz\r\n\r\n",
        "http2": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "absolute": b"GET http://x/metrics HTTP/1.1\r\n\r\n",
        "post_body": b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        "partial": b"GET /metrics HTTP/1.1\r\nHost: loc",
        "mixed_ends": b"GET /metrics HTTP/1.1\nHost: x\r\n\n",
    }


# --- config ---------------------------------------------------------------------

def config():
    return {
        "basic": b"data_dir: /var/lib/tensorpager\nram_budget: 8GiB\n"
                 b"max_swap_size: 64GiB\nalgorithm: clock\n",
        "maps": b"durable_region_types: {WEIGHT: true, TEMPORARY: false}\n"
                b"compression: lz4\n"
                b"compression_region_types: {KV_CACHE: zstd}\n",
        "lists": b"ram_pressure_thresholds: [0.6, 0.8, 0.9]\n"
                 b"gpu_pressure_thresholds: 0.7,0.85,0.95\n",
        "limits": b"max_blocks: 1000\nmax_rpc_threads: 300\n"
                  b"max_watch_streams: 16\nmax_data_streams: 32\n"
                  b"max_inflight_bytes: 1GiB\nswap_threshold: 0.8\n"
                  b"swap_target: 0.6\n",
        "comment": b"# tensorpagerd\n---\nprofile: nvme  # the drive\n...\n",
        "empty": b"",
        "env": b"ram_budget: 1GiB\nio_engine: threads\n\x00"
               b"RAM_BUDGET=2GiB\nALGORITHM=adaptive\nPORT=tcp://10.0.0.1:1\n",
        "env_only": b"\x00PREFETCH_DEPTH=4\nSHARED_MEMORY=false\n"
                    b"COMPRESSION=zstd\nCOMPRESSION_LEVEL=3\n",
        "typo": b"ram_budgte: 1GiB\n",
        "twice": b"algorithm: lru\nalgorithm: clock\n",
        "no_value": b"ram_budget:\n",
        "nested": b"durable_region_types: {WEIGHT: [true]}\n",
        "bad_yaml": b"data_dir: /x\nram_budget: [1GiB\n",
        "anchors": b"a: &x 1\n",
        "bad_value": b"swap_threshold: 0.5\nswap_target: 0.9\n",
    }


# --- ring_slot --------------------------------------------------------------------
# Slot layout (storage/shared_memory/ring_layout.h): state, op,
# namespace_bytes, id_bytes (u32 each), namespace[64], id[256], offset,
# length, data_offset, data_length (u64 each), durable (u32). The decoder
# reads nothing after durable.

SLOT_BYTES = 41880
DATA_OFFSET = 679936  # kDataOffset


def slot(pages, op, ns, id_, offset=0, length=0, data_offset=DATA_OFFSET,
         data_length=4096, durable=0, ns_bytes=None, id_bytes=None):
    ns, id_ = ns.encode(), id_.encode()
    out = struct.pack("<I", pages)
    out += struct.pack("<IIII", 2, op, len(ns) if ns_bytes is None else ns_bytes,
                       len(id_) if id_bytes is None else id_bytes)
    out += ns.ljust(64, b"\0") + id_.ljust(256, b"\0")
    out += struct.pack("<QQQQI", offset, length, data_offset, data_length,
                       durable)
    return out


def ring_slot():
    return {
        "write": slot(4, 1, "default", "layer0", data_length=4096),
        "read": slot(16, 2, "", "kv/7", offset=512, length=1024,
                     data_offset=DATA_OFFSET + 8192, data_length=1024,
                     durable=2),
        "read_to_end": slot(1, 2, "ns", "b", data_length=4096, durable=1),
        "empty_range": slot(0, 1, "ns", "b", data_offset=DATA_OFFSET,
                            data_length=0),
        "past_end": slot(1, 1, "ns", "b", data_length=8192),
        "in_ring": slot(8, 1, "ns", "b", data_offset=4096),
        "bad_op": slot(8, 7, "ns", "b"),
        "batch_lookup": slot(4, 3, "", "", offset=DATA_OFFSET + 4096,
                             length=4096, data_length=64),
        "batch_reply_outside": slot(2, 5, "", "", offset=DATA_OFFSET * 4,
                                    length=4096, data_length=64),
        "long_names": slot(2, 1, "n" * 64, "i" * 256, ns_bytes=0xFFFFFFFF,
                           id_bytes=300),
        "small_segment": slot(0x80000000 | 5000, 1, "ns", "b"),
    }


# --- block_record -----------------------------------------------------------------
# BlockRecordProto (storage/proto/block_record.proto).

def record(size_bytes=4096, region_type=1, pinned=False, dtype=0, shape=(),
           labels=(), sequence=None, written=True, version=1, checksum=0,
           on_disk=False, extent_offset=0, extent_length=0, stored_bytes=0,
           codec="", stored_checksum=0, access_count=0, last_access=0,
           created=1700000000000, lost_reason="", requested_codec=0):
    out = v(1, size_bytes) + v(2, region_type)
    if pinned:
        out += v(3, 1)
    if dtype:
        out += v(4, dtype)
    if shape:
        out += packed(5, shape)
    for k, val in labels:
        out += entry(6, k, val)
    if sequence is not None:
        out += v(7, 1) + s(8, sequence[0]) + v(9, sequence[1])
    if written:
        out += v(10, 1)
    out += v(11, version) + v(12, checksum)
    if on_disk:
        out += v(13, 1) + v(14, extent_offset) + v(15, extent_length)
        out += v(16, stored_bytes) + s(17, codec) + v(18, stored_checksum)
    out += v(19, access_count) + v(20, last_access) + v(21, created)
    if lost_reason:
        out += s(22, lost_reason)
    if requested_codec:
        out += v(23, requested_codec)
    return out


def records(*pairs):
    out = b""
    for k, val in pairs:
        out += bytes([len(k)]) + k + struct.pack("<H", len(val)) + val
    return out


def block_record():
    a = b"default\0a"
    b = b"default\0b"
    c = b"models\0layer.0"
    return {
        "on_disk": records((a, record(on_disk=True, extent_length=4096,
                                      stored_bytes=4096, codec="none",
                                      checksum=0x1234,
                                      stored_checksum=0x1234))),
        "ram_only": records((a, record(written=True))),
        "empty": records((a, record(written=False, version=0))),
        "lost": records((a, record(lost_reason="it was only in RAM"))),
        "rich": records((c, record(
            size_bytes=4096, region_type=4, pinned=True, dtype=1,
            shape=(32, 32), labels=(("model", "llama"), ("layer", "0")),
            sequence=("prompt-1", 3), written=False, requested_codec=2))),
        "compressed": records((b, record(
            size_bytes=65536, on_disk=True, extent_offset=4096,
            extent_length=8192, stored_bytes=5000, codec="lz4",
            requested_codec=2))),
        "sequence": records(
            (a, record(sequence=("s", 0), written=False)),
            (b, record(sequence=("s", 1), on_disk=True, extent_length=4096,
                       stored_bytes=4096))),
        "overlap": records(
            (a, record(on_disk=True, extent_length=4096, stored_bytes=4096)),
            (b, record(on_disk=True, extent_length=4096, stored_bytes=4096))),
        "bad_extent": records((a, record(on_disk=True, extent_offset=100,
                                         extent_length=4096,
                                         stored_bytes=8192))),
        "bad_region": records((a, record(region_type=45, on_disk=True,
                                         extent_length=4096,
                                         stored_bytes=4096))),
        "bad_codec": records((a, record(requested_codec=7))),
        "bad_key": records((b"no-separator", record())),
        "bad_value": records((a, b"\x0a\xff\xff")),
        "three": records((a, record()), (b, record(written=False)),
                         (c, record(region_type=6, written=False))),
    }


# --- service ----------------------------------------------------------------------
# RPC numbers as in service_fuzzer.cc's enum Rpc.
(REGISTER, WRITE, WRITE_MORE, ACCESS, SWAP, PIN, UNPIN, UNREGISTER, GET, LIST,
 STATUS, WATCH, SET_POLICY, REPORT_ACCESSES, REPORT_USAGE, ATTACH, DETACH,
 WRITE_SHARED, ACCESS_SHARED, LOOKUP, PUT_BLOCKS, GET_BLOCKS,
 UNREGISTER_BLOCKS) = range(23)


def calls(*pairs):
    return b"".join(bytes([rpc]) + struct.pack("<H", len(m)) + m
                    for rpc, m in pairs)


def block_ref(ns, id_):
    return (s(1, ns) if ns else b"") + s(2, id_)


def shared_range(offset, length, segment_id=0):
    out = v(2, offset) + v(3, length)
    if segment_id:
        out += v(1, segment_id)
    return out


def service():
    register_x = (s(2, "x") + v(3, 8192) + v(4, 2) + v(6, 1) +
                  packed(7, (2048,)) + entry(8, "model", "m") +
                  s(9, s(1, "g") + v(2, 0)) + v(10, 2))
    return {
        "write_read": calls(
            (REGISTER, register_x),
            (WRITE, s(2, "x") + v(4, 8192) + s(6, b"\x01" * 4096)),
            (WRITE_MORE, s(6, b"\x02" * 4096)),
            (ACCESS, s(2, "x") + v(6, 1024)),
            (GET, s(2, "x"))),
        "partial_write": calls(
            (WRITE, s(2, "a") + v(3, 1024) + s(6, b"z" * 512)),
            (ACCESS, s(2, "a") + v(3, 1000) + v(4, 100))),
        "swap": calls(
            (SWAP, v(1, 1) + s(3, "a") + s(3, "b")),
            (SWAP, v(1, 2) + s(3, "c")),
            (SWAP, v(1, 1) + v(4, 1 << 20)),
            (SWAP, v(1, 2) + v(4, 1 << 20)),
            (STATUS, b"")),
        "pin": calls(
            (PIN, block_ref("", "a")),
            (SWAP, v(1, 1) + v(4, 1 << 30)),
            (UNPIN, block_ref("", "a")),
            (UNREGISTER, block_ref("", "b"))),
        "list": calls(
            (LIST, v(2, 1) + v(3, 2)),
            (LIST, v(5, 4) + v(7, 2) + s(8, "a")),
            (LIST, s(4, "default\0b"))),
        "policy": calls(
            (SET_POLICY, v(1, 2)),
            (ACCESS, s(2, "a") + v(5, 1)),
            (SET_POLICY, v(1, 3)),
            (REPORT_ACCESSES, s(1, "client") + s(2, s(2, "a") + v(3, 5)) +
             s(2, s(2, "gone") + v(3, 1)))),
        "usage": calls(
            (REPORT_USAGE, s(1, "client-1") +
             s(2, v(1, 0) + v(2, 1 << 30) + v(3, 80 << 30)) + v(3, 1 << 20)),
            (STATUS, b""),
            (WATCH, v(1, 1))),
        "shared": calls(
            (WRITE_SHARED, s(2, "e") + s(5, shared_range(4096, 65536))),
            (ACCESS_SHARED, s(2, "a") + s(5, shared_range(0, 4096))),
            (ACCESS_SHARED, s(2, "e") + v(3, 100) + v(4, 10) +
             s(5, shared_range(1 << 19, 16)))),
        "shared_bad": calls(
            (WRITE_SHARED, s(2, "a") + v(3, 4000) +
             s(5, shared_range(0, 4096))),
            (ACCESS_SHARED, s(2, "e") + s(5, shared_range(2 << 20, 4096))),
            (DETACH, v(1, 1) + s(2, "x" * 32))),
        "attach": calls(
            (ATTACH, v(2, 0) + v(3, 1 << 20) + s(4, "T" * 16)),
            (ATTACH, v(2, 1) + v(3, 4096) + s(4, "T" * 8))),
        "batches": calls(
            (LOOKUP, s(2, "a") + s(2, "b") + s(2, "zz") + s(2, "c")),
            (PUT_BLOCKS, s(2, s(1, "p0") + s(10, b"\x05" * 100)) +
             s(2, s(1, "p1") + v(2, 64) + v(4, 1) + packed(5, (4, 4)) +
               s(10, b"\x06" * 64)) +
             s(2, s(1, "p2") + s(11, shared_range(0, 4096))) + v(3, 1)),
            (GET_BLOCKS, s(2, "p0") + s(2, "missing") + s(2, "c")),
            (GET_BLOCKS, s(2, "a") + s(2, "p2") +
             s(3, shared_range(0, 4096)) + s(3, shared_range(8192, 16))),
            (UNREGISTER_BLOCKS, s(2, "p0") + s(2, "nope")),
            (UNREGISTER_BLOCKS, s(3, "p"))),
        "sequence": calls(
            (ACCESS, s(2, "b") + v(5, 1)),
            (ACCESS, s(2, "c")),
            (UNREGISTER, block_ref("", "c"))),
    }


# --- tenant_table -------------------------------------------------------------
# The tenants file (server/auth/tenant_table.h).

def tenant_table():
    token = "sha256:" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    return {
        "two_tenants": (
            "tenants:\n"
            "  - name: team-a\n"
            "    role: client\n"
            "    namespaces: [team-a, \"team-a/*\"]\n"
            f"    tokens: [\"{token}\"]\n"
            "    uids: [1000]\n"
            "    tls_sans: [engine-a.example.com]\n"
            "    quota: {blocks: 100000, bytes: 64GiB, ram_bytes: 8GiB, "
            "disk_bytes: 60GiB}\n"
            "    encrypt: true\n"
            "  - name: ops\n"
            "    role: admin\n"
            "    namespaces: [\"*\"]\n"
            "    uids: [0]\n").encode(),
        "zero_ram_quota": b"tenants: [{name: a, namespaces: [a], uids: [1], "
                          b"quota: {ram_bytes: 0}}]\n",
        "shared_token": (
            f"tenants: [{{name: a, namespaces: [a], tokens: [\"{token}\"]}}, "
            f"{{name: b, namespaces: [b], tokens: [\"{token}\"]}}]\n"
        ).encode(),
        "not_a_list": b"tenants: {name: a}\n",
    }


# --- compact_name -------------------------------------------------------------
# Two encoded names "ns\0id" split at the first 0xff byte
# (storage/compact_name.h): packed hex ids against text ids and prefixes.

def compact_name():
    sha = b"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    return {
        "hex_and_text": b"default\0ab01\xffdefault\0abz",
        "sha_and_prefix": b"kv\0" + sha + b"\xffkv\0" + sha[:9],
        "odd_hex_and_upper": b"t\0abc\xfft\0ABCD",
        "namespace_prefix": b"t0\0ff\xfft",
    }


TARGETS = {
    "http_request": http_request,
    "config": config,
    "ring_slot": ring_slot,
    "block_record": block_record,
    "service": service,
    "tenant_table": tenant_table,
    "compact_name": compact_name,
}


def seeds():
    """(target, name) -> bytes of every generated seed."""
    return {(target, name): data
            for target, make in TARGETS.items()
            for name, data in make().items()}


def main():
    corpus = os.path.join(HERE, "corpus")
    check = sys.argv[1:] == ["--check"]
    stale = []
    for (target, name), data in sorted(seeds().items()):
        path = os.path.join(corpus, target, name)
        try:
            with open(path, "rb") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == data:
            continue
        stale.append(os.path.relpath(path, HERE))
        if not check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
    if check and stale:
        sys.exit("stale seeds (run tests/fuzz/make_corpus.py): " +
                 ", ".join(stale))


if __name__ == "__main__":
    main()
