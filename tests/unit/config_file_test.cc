// The YAML config file parser: values in flag syntax, and errors that name
// the key and line an operator has to fix.
#include "server/config/config_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/testing/temp_dir.h"

namespace tensorpager::server {
namespace {

using ::testing::HasSubstr;

const std::set<std::string> kKnown = {"data_dir", "ram_budget",
                                      "durable_writes", "durable_region_types",
                                      "algorithm"};

TEST(ConfigFileTest, ScalarsMapsAndListsBecomeFlagText) {
  auto values = ParseConfigYaml(R"(
# comment
data_dir: /var/lib/tensorpager
ram_budget: 8GiB
durable_writes: yes
durable_region_types: {WEIGHT: true, TEMPORARY: false}
algorithm: [clock]
)",
                                "tp.yaml", kKnown);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(values->at("data_dir").value, "/var/lib/tensorpager");
  EXPECT_EQ(values->at("data_dir").line, 3);
  EXPECT_EQ(values->at("ram_budget").value, "8GiB");
  EXPECT_EQ(values->at("durable_writes").value, "yes");
  EXPECT_EQ(values->at("durable_region_types").value,
            "WEIGHT=true,TEMPORARY=false");
  EXPECT_EQ(values->at("algorithm").value, "clock");
}

TEST(ConfigFileTest, EmptyDocumentSetsNothing) {
  auto values = ParseConfigYaml("# only a comment\n", "tp.yaml", kKnown);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_TRUE(values->empty());
}

TEST(ConfigFileTest, QuotedEmptyStringIsAValue) {
  auto values = ParseConfigYaml("data_dir: \"\"\n", "tp.yaml", kKnown);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(values->at("data_dir").value, "");
}

TEST(ConfigFileTest, UnknownKeyNamesKeyLineAndNearestSetting) {
  auto values =
      ParseConfigYaml("data_dir: /x\nram_budgte: 1GiB\n", "tp.yaml", kKnown);
  ASSERT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(values.status().message(), HasSubstr("tp.yaml:2"));
  EXPECT_THAT(values.status().message(), HasSubstr("'ram_budgte'"));
  EXPECT_THAT(values.status().message(),
              HasSubstr("did you mean 'ram_budget'"));
}

TEST(ConfigFileTest, FarOffKeyListsKnownKeys) {
  auto values = ParseConfigYaml("colour: blue\n", "tp.yaml", kKnown);
  ASSERT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(values.status().message(), HasSubstr("unknown key 'colour'"));
  EXPECT_THAT(values.status().message(),
              HasSubstr("known keys: algorithm, data_dir"));
}

TEST(ConfigFileTest, KeySetTwiceIsAnError) {
  auto values =
      ParseConfigYaml("algorithm: lru\nalgorithm: clock\n", "tp.yaml", kKnown);
  ASSERT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(values.status().message(), HasSubstr("set twice"));
  EXPECT_THAT(values.status().message(), HasSubstr("line 1"));
}

TEST(ConfigFileTest, KeyWithoutValueIsAnError) {
  auto values = ParseConfigYaml("ram_budget:\n", "tp.yaml", kKnown);
  ASSERT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(values.status().message(), HasSubstr("'ram_budget'"));
  EXPECT_THAT(values.status().message(), HasSubstr("has no value"));
}

TEST(ConfigFileTest, NestedValueIsAnError) {
  auto values = ParseConfigYaml("durable_region_types:\n  WEIGHT: {a: b}\n",
                                "tp.yaml", kKnown);
  ASSERT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(values.status().message(), HasSubstr("durable_region_types"));
}

TEST(ConfigFileTest, TopLevelMustBeAMapping) {
  auto values = ParseConfigYaml("- ram_budget\n", "tp.yaml", kKnown);
  ASSERT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(values.status().message(), HasSubstr("must be a mapping"));
}

TEST(ConfigFileTest, SyntaxErrorNamesTheLine) {
  auto values =
      ParseConfigYaml("data_dir: /x\nram_budget: [1GiB\n", "tp.yaml", kKnown);
  ASSERT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(values.status().message(), HasSubstr("tp.yaml:"));
  EXPECT_THAT(values.status().message(), HasSubstr("not valid YAML"));
}

TEST(ConfigFileTest, ReadsAFileAndReportsMissingOnes) {
  testing::TempDir dir;
  const std::string path = dir.Sub("tp.yaml");
  std::ofstream(path) << "ram_budget: 64MiB\n";
  auto values = ReadConfigFile(path, kKnown);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(values->at("ram_budget").value, "64MiB");

  auto missing = ReadConfigFile(dir.Sub("absent.yaml"), kKnown);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("absent.yaml"));

  auto directory = ReadConfigFile(dir.path(), kKnown);
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(directory.status().message(), HasSubstr("is a directory"));
}

}  // namespace
}  // namespace tensorpager::server
