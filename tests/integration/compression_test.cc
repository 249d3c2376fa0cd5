// Compression before swap, through the public RPCs: codecs per server,
// region type and block; poor ratios stored raw; transparent reads across
// restarts; concurrent victims; damaged compressed images.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "tests/integration/pager_fixture.h"
#include "tests/testing/tensor_bytes.h"

namespace tensorpager::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class CompressionTest : public PagerTest {
 protected:
  // Registers and writes `data` as a block of `dtype`.
  void PutTensor(const std::string& id, const std::string& data,
                 v1::DType dtype, v1::RegionType type = v1::TENSOR_DATA,
                 v1::Compression compression = v1::COMPRESSION_UNSPECIFIED,
                 std::optional<bool> durable = std::nullopt) {
    BlockSpec spec{id, data.size()};
    spec.dtype = dtype;
    spec.region_type = type;
    spec.compression = compression;
    auto reg = client_->Register(spec);
    ASSERT_TRUE(reg.ok()) << id << ": " << reg.status();
    auto w = client_->Write(id, data, 0, durable);
    ASSERT_TRUE(w.ok()) << id << ": " << w.status();
  }

  void ExpectData(const std::string& id, const std::string& data) {
    auto r = client_->Read(id);
    ASSERT_TRUE(r.ok()) << id << ": " << r.status();
    EXPECT_TRUE(r->data == data) << id << " differs";
  }

  std::string CodecOf(const std::string& id) {
    auto info = client_->Get(id);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->codec() : "";
  }
};

TEST_F(CompressionTest, CompressibleBlocksShrinkOthersStayRawAllReadBack) {
  StartServer(
      {"--ram_budget=64MiB", "--compression=lz4", "--max_concurrent_swaps=4"});
  std::vector<BlockName> names;
  std::map<std::string, std::string> contents;
  for (int i = 0; i < 8; ++i) {
    const std::string id = absl::StrCat("kv", i);
    contents[id] = Bf16TensorBytes(kMiB + 4096 * i, 100 + i);
    PutTensor(id, contents[id], v1::BFLOAT16, v1::KV_CACHE);
    names.push_back(id);
  }
  contents["noise"] = PatternBytes(2 * kMiB, 5);
  PutTensor("noise", contents["noise"], v1::BFLOAT16);
  names.push_back("noise");

  // One call: the victims are compressed and written side by side.
  auto out = client_->SwapOut(names);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->moved_size(), static_cast<int>(names.size()));

  uint64_t logical = 0, stored = 0;
  for (const auto& [id, data] : contents) {
    auto info = client_->Get(id);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->tier(), v1::TIER_DISK) << id;
    logical += data.size();
    stored += info->stored_bytes();
    if (id == "noise") {
      EXPECT_EQ(info->codec(), "none");
      EXPECT_EQ(info->stored_bytes(), data.size());
    } else {
      EXPECT_EQ(info->codec(), "lz4+shuffle2") << id;
      EXPECT_LT(static_cast<double>(info->stored_bytes()) * 1.1,
                static_cast<double>(data.size()))
          << id;
    }
  }
  auto status = client_->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->disk().compressed_blocks(), 8u);
  EXPECT_EQ(status->disk().stored_bytes(), stored);
  EXPECT_DOUBLE_EQ(status->efficiency().compression_ratio(),
                   static_cast<double>(logical) / static_cast<double>(stored));
  EXPECT_GT(status->efficiency().compression_ratio(), 1.1);
  EXPECT_EQ(status->efficiency().compress_attempts(), 9u);
  EXPECT_EQ(status->efficiency().compress_skipped(), 1u);

  // Reads decompress transparently, before and after a restart.
  for (const auto& [id, data] : contents) ExpectData(id, data);
  ASSERT_TRUE(client_->SwapOut(names).ok());
  ASSERT_TRUE(server_->Restart().ok()) << server_->Log();
  Reconnect();
  EXPECT_EQ(CodecOf("kv3"), "lz4+shuffle2");
  for (const auto& [id, data] : contents) ExpectData(id, data);
}

TEST_F(CompressionTest, BlockAndRegionChoicesOverrideTheServerDefault) {
  StartServer({"--ram_budget=64MiB", "--compression=none",
               "--compression_region_types=KV_CACHE=zstd,ACTIVATION=lz4"});
  const std::string bf16 = Bf16TensorBytes(kMiB, 1);
  PutTensor("default", bf16, v1::BFLOAT16);
  PutTensor("kv", bf16, v1::BFLOAT16, v1::KV_CACHE);
  PutTensor("kv-raw", bf16, v1::BFLOAT16, v1::KV_CACHE, v1::COMPRESSION_NONE);
  PutTensor("asked", bf16, v1::FLOAT32, v1::TENSOR_DATA, v1::COMPRESSION_LZ4);
  // Byte data (a quantized feature map, say) that repeats: compressible
  // without a shuffle.
  std::string u8;
  while (u8.size() < kMiB) u8 += PatternBytes(4096, 9);
  PutTensor("bytes", u8, v1::UINT8, v1::ACTIVATION);
  ASSERT_TRUE(
      client_->SwapOut({"default", "kv", "kv-raw", "asked", "bytes"}).ok());
  EXPECT_EQ(CodecOf("default"), "none");
  EXPECT_EQ(CodecOf("kv"), "zstd+shuffle2");
  EXPECT_EQ(CodecOf("kv-raw"), "none");
  EXPECT_EQ(CodecOf("asked"), "lz4+shuffle4");  // shuffled by FLOAT32
  EXPECT_EQ(CodecOf("bytes"), "lz4");           // 1-byte elements: no shuffle
  EXPECT_EQ(client_->Get("asked")->compression(), v1::COMPRESSION_LZ4);
  for (const char* id : {"default", "kv", "kv-raw", "asked"}) {
    ExpectData(id, bf16);
  }
  ExpectData("bytes", u8);
}

TEST_F(CompressionTest, DurableCompressedWritesSurviveKill) {
  StartServer({"--ram_budget=64MiB", "--compression=zstd"});
  const std::string data = Bf16TensorBytes(3 * kMiB, 2);
  PutTensor("durable", data, v1::BFLOAT16, v1::KV_CACHE,
            v1::COMPRESSION_UNSPECIFIED, /*durable=*/true);
  auto info = client_->Get("durable");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->tier(), v1::TIER_RAM_AND_DISK);
  EXPECT_EQ(info->codec(), "zstd+shuffle2");
  // Rewrite part of it: the new version is compressed again.
  std::string changed = data;
  changed.replace(4096, 8192, Bf16TensorBytes(8192, 3));
  ASSERT_TRUE(client_
                  ->Write("durable", changed.substr(4096, 8192), 4096,
                          /*durable=*/true)
                  .ok());
  server_->Kill();
  ASSERT_TRUE(server_->Restart().ok()) << server_->Log();
  Reconnect();
  ExpectData("durable", changed);
}

TEST_F(CompressionTest, DamagedCompressedImageIsDataLossForThatBlockOnly) {
  StartServer({"--ram_budget=64MiB", "--compression=lz4"});
  const std::string victim = Bf16TensorBytes(kMiB, 4);
  const std::string bystander = Bf16TensorBytes(kMiB, 5);
  PutTensor("victim", victim, v1::BFLOAT16);
  PutTensor("bystander", bystander, v1::BFLOAT16);
  // Separate swaps: the victim's image is the first extent of the file.
  ASSERT_TRUE(client_->SwapOut({"victim"}).ok());
  ASSERT_TRUE(client_->SwapOut({"bystander"}).ok());
  const uint64_t stored = client_->Get("victim")->stored_bytes();
  ASSERT_GT(stored, 8192u);
  ASSERT_TRUE(server_->Stop().ok());
  {
    std::fstream f(server_->data_dir() + "/blocks.dat",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(stored / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(stored / 2));
    f.write(&c, 1);
  }
  ASSERT_TRUE(server_->Restart().ok()) << server_->Log();
  Reconnect();
  auto r = client_->Read("victim");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_NE(r.status().message().find("victim"), std::string::npos);
  ExpectData("bystander", bystander);
  EXPECT_EQ(client_->Get("victim")->tier(), v1::TIER_LOST);
}

TEST_F(CompressionTest, UnknownCompressionIsInvalidArgument) {
  StartServer({"--ram_budget=64MiB"});
  BlockSpec spec{"x", 4096};
  spec.compression = static_cast<v1::Compression>(42);
  auto reg = client_->Register(spec);
  EXPECT_EQ(reg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(reg.status().message().find("COMPRESSION_LZ4"), std::string::npos);
  EXPECT_EQ(client_->Get("x").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tensorpager::testing
