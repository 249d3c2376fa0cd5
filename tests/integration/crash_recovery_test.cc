// Durability under crashes: a client writes durably, swaps and reads while
// tensorpagerd is killed with SIGKILL at random moments; after every
// restart each acknowledged durable block must read back byte for byte and
// the allocator must account for every extent. Also: corrupted data files
// give DATA_LOSS for the damaged block only.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/integration/pager_fixture.h"
#include "tests/testing/find_in_file.h"
#include "tests/testing/temp_dir.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kKiB = 1024;

int Cycles() {
  int cycles = 30;
  if (const char* env = std::getenv("TP_CRASH_CYCLES")) {
    if (!absl::SimpleAtoi(env, &cycles)) cycles = 30;
  }
  return cycles;
}

uint64_t SizeOf(int block) { return (block % 7 + 1) * 48 * kKiB + block; }

class CrashRecoveryTest : public PagerTest {
 protected:
  // Writes, swaps and reads while the server is killed at random moments
  // (`cycles` times); every acknowledged durable block must come back.
  // With `key_file`, the NVMe tier is encrypted, and at the end the data
  // file holds none of the blocks' bytes in the clear.
  void SurviveRandomKills(int cycles, const std::string& key_file);
};

TEST_F(CrashRecoveryTest, AcknowledgedDurableBlocksSurviveRandomKills) {
  SurviveRandomKills(Cycles(), "");
}

TEST_F(CrashRecoveryTest, EncryptedTierSurvivesRandomKillsWithNoPlaintext) {
  TempDir dir;
  const std::string keys = dir.Sub("keys");
  std::ofstream(keys) << "k1 "
                      << "00112233445566778899aabbccddeeff"
                         "00112233445566778899aabbccddeeff\n";
  SurviveRandomKills(std::max(Cycles() / 3, 1), keys);
}

void CrashRecoveryTest::SurviveRandomKills(int cycles,
                                           const std::string& key_file) {
  constexpr int kBlocks = 24;
  std::vector<std::string> flags = {"--ram_budget=2MiB",
                                    "--max_swap_size=256MiB"};
  if (!key_file.empty()) flags.push_back("--encryption_key_file=" + key_file);
  StartServer(flags);
  // A sealed copy's extent also holds its 16-byte GCM tag.
  const uint64_t tag = key_file.empty() ? 0 : 16;
  // What each block must hold after a crash: the seed of its last
  // acknowledged durable write, plus the seed of a write in flight at the
  // kill (either is then acceptable).
  std::map<int, uint64_t> acked;
  std::map<int, uint64_t> in_flight;
  std::mt19937_64 rng(12345);
  uint64_t next_seed = 1;
  std::map<uint64_t, int> written;  // every write's seed, to its block

  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::atomic<bool> stop{false};
    std::thread killer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 250));
      stop = true;
      server_->Kill();
    });
    while (!stop) {
      const int b = static_cast<int>(rng() % kBlocks);
      const std::string id = absl::StrCat("c", b);
      const int op = static_cast<int>(rng() % 10);
      if (op < 5) {
        if (!acked.contains(b) && !in_flight.contains(b)) {
          BlockSpec spec{id, SizeOf(b)};
          auto reg = client_->Register(spec);
          if (!reg.ok() &&
              reg.status().code() != absl::StatusCode::kAlreadyExists) {
            break;  // server gone
          }
        }
        const uint64_t seed = next_seed++;
        written[seed] = b;
        in_flight[b] = seed;
        auto w = client_->Write(id, PatternBytes(SizeOf(b), seed), 0, true);
        if (!w.ok()) break;
        acked[b] = seed;
        in_flight.erase(b);
      } else if (op < 8) {
        std::vector<BlockName> names;
        for (int i = 0; i < 3; ++i)
          names.emplace_back(absl::StrCat("c", rng() % kBlocks));
        auto s = client_->SwapOut(names);
        if (!s.ok() && s.status().code() == absl::StatusCode::kUnavailable) {
          break;
        }
      } else if (acked.contains(b) && !in_flight.contains(b)) {
        auto r = client_->Read(id);
        if (!r.ok()) break;
        ASSERT_TRUE(r->data == PatternBytes(SizeOf(b), acked[b]))
            << id << " read wrong bytes while the server ran";
      }
    }
    killer.join();
    ASSERT_TRUE(server_->Restart().ok()) << server_->Log();
    Reconnect();

    for (const auto& [b, seed] : acked) {
      const std::string id = absl::StrCat("c", b);
      auto r = client_->Read(id);
      ASSERT_TRUE(r.ok()) << "cycle " << cycle << ": " << id << ": "
                          << r.status() << "\n"
                          << server_->Log();
      if (r->data == PatternBytes(SizeOf(b), seed)) continue;
      auto pending = in_flight.find(b);
      ASSERT_TRUE(pending != in_flight.end() &&
                  r->data == PatternBytes(SizeOf(b), pending->second))
          << "cycle " << cycle << ": " << id << " lost acknowledged bytes";
      acked[b] = pending->second;  // the write in flight did land
    }
    // A write in flight that never acknowledged a first version either
    // landed or left the block registered-but-empty or lost.
    for (const auto& [b, seed] : in_flight) {
      if (acked.contains(b)) continue;
      auto r = client_->Read(absl::StrCat("c", b));
      if (r.ok()) {
        ASSERT_TRUE(r->data == PatternBytes(SizeOf(b), seed));
        acked[b] = seed;
      }
    }
    in_flight.clear();

    // The allocator holds exactly the extents the metadata points to.
    auto st = client_->Status();
    ASSERT_TRUE(st.ok());
    uint64_t stored = 0;
    v1::ListBlocksRequest list;
    list.set_page_size(1000);
    auto page = client_->List(list);
    ASSERT_TRUE(page.ok());
    // Extents are whole 4 KiB units; stored_bytes is the image inside.
    for (const auto& blk : page->blocks()) {
      if (blk.stored_bytes() == 0) continue;
      stored += (blk.stored_bytes() + tag + 4095) / 4096 * 4096;
    }
    ASSERT_EQ(st->disk().used_bytes(), stored) << "cycle " << cycle;
    ASSERT_EQ(st->blocks_on_disk(), st->disk().blocks());
  }
  EXPECT_GT(acked.size(), 0u);
  if (key_file.empty()) return;
  // Encrypted: no version of any block lies in the data file in the clear.
  std::ifstream f(server_->data_dir() + "/blocks.dat", std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(f)),
                         std::istreambuf_iterator<char>());
  ASSERT_FALSE(file.empty());
  for (const auto& [seed, b] : written) {
    ASSERT_EQ(file.find(PatternBytes(SizeOf(b), seed).substr(0, 4096)),
              std::string::npos)
        << "plaintext of block c" << b << " (write " << seed
        << ") in the data file";
  }
}

// Flips byte `offset` of the block whose bytes are `block` where its raw
// copy lies in `data_file`; false when the copy is not found there.
bool DamageBlockInFile(const std::string& data_file, const std::string& block,
                       uint64_t offset) {
  const int64_t at = FindInFile(data_file, block.substr(0, 4096));
  if (at < 0) return false;
  std::fstream f(data_file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(at + static_cast<int64_t>(offset));
  const char flipped = static_cast<char>(block[offset] ^ 0x5a);
  f.write(&flipped, 1);
  return f.good();
}

TEST_F(CrashRecoveryTest, CorruptedExtentIsDataLossForThatBlockOnly) {
  StartServer({"--ram_budget=64MiB"});
  Put("victim", 256 * kKiB, 1);
  Put("bystander", 256 * kKiB, 2);
  ASSERT_TRUE(client_->SwapOut({"victim", "bystander"}).ok());
  ASSERT_TRUE(server_->Stop().ok());

  ASSERT_TRUE(DamageBlockInFile(server_->data_dir() + "/blocks.dat",
                                PatternBytes(256 * kKiB, 1), 100000))
      << "victim's bytes not found in the data file";
  ASSERT_TRUE(server_->Restart().ok()) << server_->Log();
  Reconnect();
  auto r = client_->Read("victim");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_NE(r.status().message().find("victim"), std::string::npos);
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos);
  ExpectBytes("bystander", 256 * kKiB, 2);
  EXPECT_EQ(client_->Get("victim")->tier(), v1::TIER_LOST);
  // Writing it again heals it.
  ASSERT_TRUE(client_->Write("victim", PatternBytes(256 * kKiB, 3)).ok());
  ExpectBytes("victim", 256 * kKiB, 3);
}

// A SWAP_IN of many small blocks reads them in one engine batch: a damaged
// one fails alone, the others come in.
TEST_F(CrashRecoveryTest, DamagedBlockInABatchedSwapInFailsAlone) {
  StartServer({"--ram_budget=64MiB"});
  std::vector<BlockName> names;
  for (int i = 0; i < 12; ++i) {
    Put(absl::StrCat("page", i), 64 * kKiB, 20 + i);
    names.emplace_back(absl::StrCat("page", i));
  }
  ASSERT_TRUE(client_->SwapOut(names).ok());
  ASSERT_TRUE(server_->Stop().ok());
  ASSERT_TRUE(DamageBlockInFile(server_->data_dir() + "/blocks.dat",
                                PatternBytes(64 * kKiB, 27), 5000))
      << "page7's bytes not found in the data file";
  ASSERT_TRUE(server_->Restart().ok()) << server_->Log();
  Reconnect();

  auto in = client_->SwapIn(names);
  EXPECT_EQ(in.status().code(), absl::StatusCode::kDataLoss) << in.status();
  EXPECT_NE(in.status().message().find("page7"), std::string::npos)
      << in.status();
  EXPECT_EQ(client_->Get("page7")->tier(), v1::TIER_LOST);
  for (int i = 0; i < 12; ++i) {
    if (i == 7) continue;
    EXPECT_EQ(client_->Get(absl::StrCat("page", i))->tier(),
              v1::TIER_RAM_AND_DISK)
        << i;
    ExpectBytes(absl::StrCat("page", i), 64 * kKiB, 20 + i);
  }
}

TEST_F(CrashRecoveryTest, SwapSpaceLimitIsResourceExhaustedAndServiceGoesOn) {
  StartServer({"--ram_budget=64MiB", "--max_swap_size=1MiB"});
  Put("a", 600 * kKiB, 1);
  Put("b", 600 * kKiB, 2);
  ASSERT_TRUE(client_->SwapOut({"a"}).ok());
  auto full = client_->SwapOut({"b"});
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted)
      << full.status();
  EXPECT_NE(full.status().message().find("--max_swap_size"), std::string::npos);
  EXPECT_EQ(client_->Get("b")->tier(), v1::TIER_RAM);
  ExpectBytes("a", 600 * kKiB, 1);
  ExpectBytes("b", 600 * kKiB, 2);
  // Freeing space makes room again.
  ASSERT_TRUE(client_->Unregister("a").ok());
  auto room = client_->SwapOut({"b"});
  ASSERT_TRUE(room.ok()) << room.status();
  ExpectBytes("b", 600 * kKiB, 2);
}

}  // namespace
}  // namespace tensorpager::testing

namespace tensorpager::testing {
namespace {

// Unregistered and overwritten blocks leave the drive: their extents are
// punched out of the data file (by the reclaimer thread, soon after), so their
// bytes cannot be read back from it (and the drive may trim them).
TEST_F(CrashRecoveryTest, FreedBlocksBytesLeaveTheDataFile) {
  StartServer({"--ram_budget=64MiB"});
  const std::string data_file = server_->data_dir() + "/blocks.dat";
  Put("deleted", 256 * kKiB, 41);
  Put("rewritten", 256 * kKiB, 42);
  Put("kept", 256 * kKiB, 43);
  ASSERT_TRUE(client_->SwapOut({"deleted", "rewritten", "kept"}).ok());
  for (uint64_t seed : {41, 42, 43}) {
    ASSERT_GE(FindInFile(data_file, PatternBytes(256 * kKiB, seed)), 0)
        << "block " << seed << " is not in the data file raw";
  }
  ASSERT_TRUE(client_->Unregister("deleted").ok());
  ASSERT_TRUE(client_->Write("rewritten", PatternBytes(256 * kKiB, 44)).ok());
  ASSERT_TRUE(client_->SwapOut({"rewritten"}).ok());
  // The punches run on the disk tier's reclaimer thread, soon after.
  for (uint64_t seed : {41, 42}) {
    const std::string bytes = PatternBytes(256 * kKiB, seed);
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (FindInFile(data_file, bytes) >= 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_LT(FindInFile(data_file, bytes), 0) << "block " << seed;
  }
  EXPECT_GE(FindInFile(data_file, PatternBytes(256 * kKiB, 43)), 0);
  ExpectBytes("kept", 256 * kKiB, 43);
  ExpectBytes("rewritten", 256 * kKiB, 44);
}

}  // namespace
}  // namespace tensorpager::testing
