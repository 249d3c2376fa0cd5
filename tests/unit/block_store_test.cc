// The block store over an in-memory data file and an engine that fails on
// demand: every device fault either fails the request and changes nothing,
// or (a write that lied about landing) turns into DATA_LOSS on the next
// read. The kill -9 tests (crash_recovery_test) prove the same against a
// real server and disk; these prove it in milliseconds, fault by fault.
#include "storage/block_store.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "storage/testing/faulty_io_engine.h"
#include "storage/testing/memory_io_engine.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::storage {
namespace {

using ::tensorpager::storage::testing::Fault;
using ::tensorpager::storage::testing::FaultyIoEngine;
using ::tensorpager::storage::testing::MemoryFile;
using ::tensorpager::storage::testing::MemoryIoEngine;

constexpr uint64_t kBlock = 64 << 10;

std::vector<std::byte> Pattern(uint64_t size, uint32_t seed) {
  std::vector<std::byte> bytes(size);
  std::mt19937 rng(seed);
  for (std::byte& b : bytes) b = static_cast<std::byte>(rng());
  return bytes;
}

class BlockStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  // Opens the store over the same metadata dir and memory file: a restart.
  void Open(BlockStoreOptions options = {}) {
    store_.reset();
    options.data_dir = dir_.Sub("data");
    options.ram_budget_bytes = 16 * kBlock;
    options.max_swap_bytes = 64 * kBlock;
    options.file_growth_bytes = 8 * kBlock;
    options.prefetch_depth = 0;
    options.open_io_engine = [this](const IoEngineOptions&) {
      auto engine = std::make_unique<FaultyIoEngine>(
          std::make_unique<MemoryIoEngine>(file_));
      engine_ = engine.get();
      return absl::StatusOr<std::unique_ptr<IoEngine>>(std::move(engine));
    };
    absl::StatusOr<std::unique_ptr<BlockStore>> store =
        BlockStore::Open(std::move(options));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  static BlockKey Key(const std::string& id) {
    return *BlockKey::Make("t", id);
  }

  void Register(const std::string& id, uint64_t size = kBlock) {
    BlockAttributes attrs;
    attrs.size_bytes = size;
    ASSERT_TRUE(store_->Register(Key(id), attrs).ok());
  }

  absl::Status Write(const std::string& id, const std::vector<std::byte>& bytes,
                     bool durable, uint64_t offset = 0) {
    base::AlignedBuffer data = store_->NewBuffer(bytes.size());
    std::memcpy(data.data(), bytes.data(), bytes.size());
    WriteOptions options;
    options.durable = durable;
    return store_->Write(Key(id), offset, std::move(data), options).status();
  }

  // The block's bytes, or the error of reading them.
  absl::StatusOr<std::vector<std::byte>> Read(const std::string& id) {
    absl::StatusOr<ReadResult> r = store_->Read(Key(id), {});
    if (!r.ok()) return r.status();
    const std::byte* begin = r->data->data() + r->offset;
    return std::vector<std::byte>(begin, begin + r->length);
  }

  void ExpectBytes(const std::string& id, const std::vector<std::byte>& want) {
    absl::StatusOr<std::vector<std::byte>> got = Read(id);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == want) << id << " read back other bytes";
  }

  Tier TierOf(const std::string& id) { return store_->Get(Key(id))->tier; }
  uint64_t DiskUsed() { return store_->Stats().disk.used_bytes; }

  tensorpager::testing::TempDir dir_;
  std::shared_ptr<MemoryFile> file_ = std::make_shared<MemoryFile>();
  std::unique_ptr<BlockStore> store_;
  FaultyIoEngine* engine_ = nullptr;  // owned by store_
};

TEST_F(BlockStoreTest, BytesSurviveSwapsAndRestartOnTheMemoryEngine) {
  const auto a = Pattern(kBlock, 1);
  const auto b = Pattern(kBlock, 2);
  Register("a");
  Register("b");
  ASSERT_TRUE(Write("a", a, /*durable=*/true).ok());
  ASSERT_TRUE(Write("b", b, /*durable=*/false).ok());
  ASSERT_TRUE(store_->SwapOut({Key("a"), Key("b")}).ok());
  EXPECT_EQ(TierOf("b"), Tier::kDisk);
  ExpectBytes("b", b);

  Open();
  EXPECT_EQ(store_->recovery().blocks_on_disk, 2u);
  ExpectBytes("a", a);
  ExpectBytes("b", b);
  EXPECT_EQ(store_->Stats().io_engine, "memory");
}

TEST_F(BlockStoreTest, EioOnADurableWriteChangesNothing) {
  const auto v1 = Pattern(kBlock, 1);
  Register("a");
  ASSERT_TRUE(Write("a", v1, true).ok());
  const uint64_t used = DiskUsed();

  engine_->FailNext(IoOp::kWrite, Fault::kEio);
  const absl::Status s = Write("a", Pattern(kBlock, 2), true);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_NE(s.message().find("EIO"), std::string::npos) << s;
  ExpectBytes("a", v1);
  EXPECT_EQ(DiskUsed(), used) << "the failed copy's extent leaked";

  Open();
  ExpectBytes("a", v1);
}

TEST_F(BlockStoreTest, EioOnSwapOutKeepsTheBlockInRam) {
  const auto a = Pattern(kBlock, 3);
  Register("a");
  ASSERT_TRUE(Write("a", a, false).ok());
  engine_->FailNext(IoOp::kWrite, Fault::kEio);
  EXPECT_FALSE(store_->SwapOut({Key("a")}).ok());
  EXPECT_EQ(TierOf("a"), Tier::kRam);
  EXPECT_EQ(DiskUsed(), 0u);
  ExpectBytes("a", a);
  // The device recovered: the next swap-out goes through.
  ASSERT_TRUE(store_->SwapOut({Key("a")}).ok());
  ExpectBytes("a", a);
}

TEST_F(BlockStoreTest, EioOnReadIsDataLossNeverOtherBytes) {
  Register("a");
  ASSERT_TRUE(Write("a", Pattern(kBlock, 4), true).ok());
  ASSERT_TRUE(store_->SwapOut({Key("a")}).ok());
  engine_->FailNext(IoOp::kRead, Fault::kEio);
  EXPECT_EQ(Read("a").status().code(), absl::StatusCode::kDataLoss);
  // The copy is untrusted from now on, across a restart too, until the
  // block is written again.
  EXPECT_EQ(TierOf("a"), Tier::kLost);
  Open();
  EXPECT_EQ(TierOf("a"), Tier::kLost);
  const auto v2 = Pattern(kBlock, 5);
  ASSERT_TRUE(Write("a", v2, true).ok());
  ExpectBytes("a", v2);
}

TEST_F(BlockStoreTest, ShortWriteFailsTheWriteAndFreesItsExtent) {
  const auto v1 = Pattern(kBlock, 6);
  Register("a");
  ASSERT_TRUE(Write("a", v1, true).ok());
  const uint64_t used = DiskUsed();
  engine_->FailNext(IoOp::kWrite, Fault::kShortTransfer);
  const absl::Status s = Write("a", Pattern(kBlock, 7), true);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_NE(s.message().find("accepted no bytes"), std::string::npos) << s;
  ExpectBytes("a", v1);
  EXPECT_EQ(DiskUsed(), used);
  Open();
  ExpectBytes("a", v1);
}

TEST_F(BlockStoreTest, ShortReadFailsOnceAndLosesNothing) {
  const auto a = Pattern(kBlock, 8);
  Register("a");
  ASSERT_TRUE(Write("a", a, true).ok());
  ASSERT_TRUE(store_->SwapOut({Key("a")}).ok());
  engine_->FailNext(IoOp::kRead, Fault::kShortTransfer);
  EXPECT_EQ(Read("a").status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(TierOf("a"), Tier::kDisk);
  ExpectBytes("a", a);
}

TEST_F(BlockStoreTest, NoSpaceToGrowTheFileIsResourceExhausted) {
  const auto a = Pattern(kBlock, 9);
  Register("a");
  // The growth step and then the extent alone both find the disk full.
  engine_->FailNext(IoOp::kReserve, Fault::kNoSpace, 2);
  const absl::Status s = Write("a", a, true);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("filesystem is full"), std::string::npos) << s;
  EXPECT_EQ(TierOf("a"), Tier::kEmpty);
  EXPECT_EQ(DiskUsed(), 0u);
  ASSERT_TRUE(Write("a", a, true).ok());
  ExpectBytes("a", a);
}

TEST_F(BlockStoreTest, NoSpaceOnWriteFailsTheSwapOutOnly) {
  const auto a = Pattern(kBlock, 10);
  const auto b = Pattern(kBlock, 11);
  Register("a");
  Register("b");
  ASSERT_TRUE(Write("a", a, false).ok());
  ASSERT_TRUE(Write("b", b, false).ok());
  engine_->FailNext(IoOp::kWrite, Fault::kNoSpace);
  absl::StatusOr<SwapResult> swap = store_->SwapOut({Key("a"), Key("b")});
  EXPECT_EQ(swap.status().code(), absl::StatusCode::kResourceExhausted);
  // One of the two made it to disk, the other stayed in RAM; both read.
  EXPECT_EQ(store_->Stats().blocks_in_ram, 1u);
  ExpectBytes("a", a);
  ExpectBytes("b", b);
}

TEST_F(BlockStoreTest, FailedSyncFailsTheDurableWrite) {
  const auto v1 = Pattern(kBlock, 12);
  Register("a");
  ASSERT_TRUE(Write("a", v1, true).ok());
  engine_->FailNext(IoOp::kSync, Fault::kEio);
  EXPECT_EQ(Write("a", Pattern(kBlock, 13), true).code(),
            absl::StatusCode::kDataLoss);
  ExpectBytes("a", v1);
  Open();
  ExpectBytes("a", v1);
}

// A torn write that reported failure: the record was never committed, so a
// restart finds the previous version, whole.
TEST_F(BlockStoreTest, TornWriteThatFailedLeavesThePreviousVersion) {
  const auto v1 = Pattern(kBlock, 14);
  Register("a");
  ASSERT_TRUE(Write("a", v1, true).ok());
  engine_->FailNext(IoOp::kWrite, Fault::kShortTransfer);
  EXPECT_FALSE(Write("a", Pattern(kBlock, 15), true).ok());
  Open();
  ExpectBytes("a", v1);
}

// A torn write the device acknowledged: the store committed it, and after
// the restart the checksum catches the missing tail. The block reads as
// DATA_LOSS: never the torn bytes, never the older version.
TEST_F(BlockStoreTest, AcknowledgedTornWriteIsDataLossAfterRestart) {
  Register("a");
  ASSERT_TRUE(Write("a", Pattern(kBlock, 16), true).ok());
  engine_->FailNext(IoOp::kWrite, Fault::kTornWrite);
  ASSERT_TRUE(Write("a", Pattern(kBlock, 17), true).ok());
  Open();
  EXPECT_EQ(TierOf("a"), Tier::kDisk);
  const absl::Status s = Read("a").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("t/a"), std::string::npos) << s;
  EXPECT_EQ(TierOf("a"), Tier::kLost);
}

// A compressible block's image is a few hundred bytes in one I/O unit; the
// torn write of that unit lands nothing, and the stored checksum says so.
TEST_F(BlockStoreTest, TornCompressedImageIsDataLoss) {
  BlockStoreOptions options;
  options.compression.codec = Codec::kLz4;
  Open(options);
  // Compressible: the image is stored compressed.
  std::vector<std::byte> zeros(kBlock, std::byte{0});
  for (size_t i = 0; i < zeros.size(); i += 64) zeros[i] = std::byte{7};
  Register("a");
  engine_->FailNext(IoOp::kWrite, Fault::kTornWrite);
  ASSERT_TRUE(Write("a", zeros, true).ok());
  ASSERT_EQ(store_->Stats().blocks_compressed, 1u);
  // The extent holds the image (a few hundred bytes), not the block.
  EXPECT_EQ(DiskUsed(), base::kIoAlignment);
  Open(options);
  EXPECT_EQ(Read("a").status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(BlockStoreTest, DamagedSectorIsDataLoss) {
  Register("a");
  ASSERT_TRUE(Write("a", Pattern(kBlock, 18), true).ok());
  ASSERT_TRUE(store_->SwapOut({Key("a")}).ok());
  file_->Damage(kBlock / 2, 512);
  EXPECT_EQ(Read("a").status().code(), absl::StatusCode::kDataLoss);
}

// Random writes, swaps, reads and restarts with random faults: every read
// returns the last acknowledged bytes or an error, never anything else.
TEST_F(BlockStoreTest, RandomFaultsNeverYieldWrongBytes) {
  constexpr int kBlocks = 24;
  constexpr int kSteps = 600;
  std::mt19937 rng(20261206);
  std::vector<std::optional<std::vector<std::byte>>> acked(kBlocks);
  for (int i = 0; i < kBlocks; ++i) Register("b" + std::to_string(i));
  const Fault faults[] = {Fault::kEio, Fault::kShortTransfer, Fault::kNoSpace,
                          Fault::kTornWrite};
  int reads_checked = 0;
  for (int step = 0; step < kSteps; ++step) {
    const int i = static_cast<int>(rng() % kBlocks);
    const std::string id = "b" + std::to_string(i);
    if (rng() % 5 == 0) {
      const Fault fault = faults[rng() % 4];
      const IoOp op = rng() % 2 ? IoOp::kWrite : IoOp::kRead;
      engine_->FailNext(op, fault);
    }
    switch (rng() % 6) {
      case 0:
      case 1: {
        const auto bytes = Pattern(kBlock, static_cast<uint32_t>(rng()));
        // A write that fails leaves the acknowledged bytes as they were.
        if (Write(id, bytes, rng() % 2 == 0).ok()) acked[i] = bytes;
        break;
      }
      case 2:
        store_->SwapOut({Key(id)}).IgnoreError();
        break;
      case 3:
      case 4: {
        absl::StatusOr<std::vector<std::byte>> got = Read(id);
        if (got.ok()) {
          ASSERT_TRUE(acked[i].has_value())
              << id << " returned bytes never written";
          ASSERT_TRUE(*got == *acked[i])
              << id << " returned wrong bytes at step " << step;
          ++reads_checked;
        }
        break;
      }
      case 5:
        if (rng() % 8 == 0) {
          Open();
          // Blocks only in RAM at the restart come back lost, not stale.
          for (int k = 0; k < kBlocks; ++k) {
            const Tier tier = TierOf("b" + std::to_string(k));
            if (tier == Tier::kLost) acked[k].reset();
          }
        }
        break;
    }
  }
  EXPECT_GT(reads_checked, 50);
  // Without faults, every acknowledged block that is not lost reads back.
  Open();
  for (int k = 0; k < kBlocks; ++k) {
    const std::string id = "b" + std::to_string(k);
    absl::StatusOr<std::vector<std::byte>> got = Read(id);
    if (got.ok()) {
      ASSERT_TRUE(acked[k].has_value()) << id;
      EXPECT_TRUE(*got == *acked[k]) << id << " wrong bytes after restart";
    } else {
      EXPECT_TRUE(got.status().code() == absl::StatusCode::kDataLoss ||
                  got.status().code() == absl::StatusCode::kFailedPrecondition)
          << id << ": " << got.status();
    }
  }
}

// Unregistering many blocks at once: each key gets its own outcome (a
// key listed twice or not registered is NOT_FOUND), the others go from
// RAM and disk, and after a restart they stay gone while the rest stay.
TEST_F(BlockStoreTest, UnregisterManyGivesEachKeyItsOutcome) {
  for (const char* id : {"a", "b", "c"}) {
    Register(id);
    ASSERT_TRUE(Write(id, Pattern(kBlock, id[0]), /*durable=*/true).ok());
  }
  ASSERT_TRUE(store_->SwapOut({Key("a"), Key("b")}).ok());
  const uint64_t disk_before = DiskUsed();
  const std::vector<BlockKey> keys = {Key("a"), Key("missing"), Key("a"),
                                      Key("b")};
  std::vector<absl::StatusOr<BlockStore::Freed>> out =
      store_->UnregisterMany(keys);
  ASSERT_EQ(out.size(), 4u);
  ASSERT_TRUE(out[0].ok()) << out[0].status();
  EXPECT_EQ(out[0]->disk_bytes, kBlock);
  EXPECT_EQ(out[1].status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(out[2].status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(out[3].ok()) << out[3].status();
  EXPECT_EQ(DiskUsed(), disk_before - 2 * kBlock);
  Open();
  EXPECT_EQ(store_->Get(Key("a")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Get(Key("b")).status().code(), absl::StatusCode::kNotFound);
  ExpectBytes("c", Pattern(kBlock, 'c'));
}

}  // namespace
}  // namespace tensorpager::storage

namespace tensorpager::storage {
namespace {

std::shared_ptr<const KeyRing> Keys(const std::string& text) {
  absl::StatusOr<std::shared_ptr<const KeyRing>> keys =
      KeyRing::Parse(text, "keys");
  EXPECT_TRUE(keys.ok()) << keys.status();
  return keys.ok() ? *keys : nullptr;
}

constexpr char kOld[] =
    "old 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
constexpr char kNew[] =
    "new f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100\n";

class EncryptedStoreTest : public BlockStoreTest {
 protected:
  void OpenWith(const std::string& keys, Codec codec = Codec::kNone) {
    BlockStoreOptions options;
    options.encryption_keys = Keys(keys);
    options.compression.codec = codec;
    Open(std::move(options));
  }
  // Whether the data file holds `bytes` anywhere, as they are.
  bool FileHolds(const std::vector<std::byte>& bytes) {
    std::vector<std::byte> all(file_->size());
    EXPECT_TRUE(file_->ReadAt(0, absl::MakeSpan(all)).ok());
    return std::search(all.begin(), all.end(), bytes.begin(),
                       bytes.begin() + 4096) != all.end();
  }
};

TEST_F(EncryptedStoreTest, CopiesHoldNoPlaintextAndReadBack) {
  OpenWith(kOld);
  const auto a = Pattern(kBlock, 31);
  // Compressible bytes go compressed, then encrypted.
  std::vector<std::byte> z(kBlock, std::byte{0});
  for (size_t i = 0; i < z.size(); i += 64) z[i] = std::byte{9};
  OpenWith(kOld, Codec::kLz4);
  Register("a");
  Register("z");
  ASSERT_TRUE(Write("a", a, /*durable=*/true).ok());
  ASSERT_TRUE(Write("z", z, /*durable=*/true).ok());
  ASSERT_TRUE(store_->SwapOut({Key("a"), Key("z")}).ok());
  EXPECT_FALSE(FileHolds(a));
  EXPECT_EQ(store_->Get(Key("a"))->tier, Tier::kDisk);
  OpenWith(kOld, Codec::kLz4);  // a restart reads them from the records
  ExpectBytes("a", a);
  ExpectBytes("z", z);
}

TEST_F(EncryptedStoreTest, RotatedKeysKeepOldCopiesReadable) {
  OpenWith(kOld);
  const auto a = Pattern(kBlock, 32);
  const auto b = Pattern(kBlock, 33);
  Register("a");
  Register("b");
  ASSERT_TRUE(Write("a", a, true).ok());
  ASSERT_TRUE(store_->SwapOut({Key("a")}).ok());
  // The new key first: new copies use it, old ones still read.
  OpenWith(std::string(kNew) + kOld);
  ASSERT_TRUE(Write("b", b, true).ok());
  ASSERT_TRUE(store_->SwapOut({Key("b")}).ok());
  ExpectBytes("a", a);
  ASSERT_TRUE(store_->SwapOut({Key("a")}).ok());  // "a" is resident again
  // Without the old key, its copy is unreadable but not lost: the key
  // coming back makes it readable again.
  OpenWith(kNew);
  ExpectBytes("b", b);
  absl::StatusOr<std::vector<std::byte>> gone = Read("a");
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kFailedPrecondition)
      << gone.status();
  EXPECT_NE(gone.status().message().find("key 'old'"), std::string::npos);
  EXPECT_NE(TierOf("a"), Tier::kLost);
  OpenWith(std::string(kNew) + kOld);
  ExpectBytes("a", a);
}

TEST_F(EncryptedStoreTest, AlteredOrMovedCopyFailsItsTag) {
  OpenWith(kOld);
  Register("a");
  ASSERT_TRUE(Write("a", Pattern(kBlock, 34), true).ok());
  ASSERT_TRUE(store_->SwapOut({Key("a")}).ok());
  file_->Damage(100, 1);  // one byte of the ciphertext
  absl::StatusOr<std::vector<std::byte>> r = Read("a");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_NE(r.status().message().find("tag"), std::string::npos);
}

TEST(KeyRingTest, MistakesAreNamed) {
  for (const auto& [text, expect] :
       std::vector<std::pair<std::string, std::string>>{
           {"", "lists no key"},
           {"k1 00", "has 2 hex digits"},
           {std::string("k1 ") + std::string(64, 'x'), "not hexadecimal"},
           {std::string("bad/id ") + std::string(64, '0'), "is not 1 to 16"},
           {std::string("k ") + std::string(64, '0') + "\nk " +
                std::string(64, '1'),
            "listed twice"},
           {"just-one-word", "expected '<id> <64 hex digits>'"}}) {
    absl::StatusOr<std::shared_ptr<const KeyRing>> keys =
        KeyRing::Parse(text, "keyfile");
    ASSERT_FALSE(keys.ok()) << text;
    EXPECT_NE(keys.status().message().find(expect), std::string::npos)
        << keys.status();
  }
  std::shared_ptr<const KeyRing> ring =
      Keys(std::string("# comment\n") + kNew + kOld);
  ASSERT_NE(ring, nullptr);
  EXPECT_EQ(ring->current().id, "new");
  EXPECT_NE(ring->Find("old"), nullptr);
  EXPECT_EQ(ring->Find("other"), nullptr);
}

}  // namespace
}  // namespace tensorpager::storage
