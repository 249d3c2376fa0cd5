// tpctl's pure parts: human-readable values, tables, enum arguments and the
// command-line parser (the end-to-end behaviour is in tpctl_test).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client_sdk/tpctl/command_line.h"
#include "client_sdk/tpctl/enum_args.h"
#include "client_sdk/tpctl/exit_code.h"
#include "client_sdk/tpctl/format.h"
#include "client_sdk/tpctl/text_table.h"
#include "client_sdk/tpctl/usage_error.h"

namespace tensorpager::tpctl {
namespace {

using ::testing::HasSubstr;

TEST(TpctlFormatTest, HumanValues) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.50 KiB");
  EXPECT_EQ(HumanBytes(12ull << 20), "12.0 MiB");
  EXPECT_EQ(HumanBytes(512ull << 30), "512 GiB");
  EXPECT_EQ(Percent(0.305), "30.5%");
  EXPECT_EQ(HumanDuration(45), "45s");
  EXPECT_EQ(HumanDuration(725), "12m05s");
  EXPECT_EQ(HumanDuration(3 * 3600 + 120), "3h02m");
  EXPECT_EQ(HumanDuration(4 * 86400 + 7 * 3600), "4d07h");
  EXPECT_EQ(Ago(0, absl::Now()), "-");
  EXPECT_EQ(Ago(absl::ToUnixMillis(absl::FromUnixSeconds(100)),
                absl::FromUnixSeconds(112)),
            "12s ago");
  EXPECT_EQ(TierName(v1::TIER_RAM_AND_DISK), "ram+disk");
  EXPECT_EQ(RegionTypeName(v1::KV_CACHE), "kv_cache");
  EXPECT_EQ(PressureLevelName(v1::CRITICAL), "critical");
}

TEST(TpctlFormatTest, TableAlignsColumns) {
  TextTable t({"NAME", "SIZE"});
  t.AlignRight({1});
  t.AddRow({"a", "1 B"});
  t.AddRow({"longer", "12.0 MiB"});
  EXPECT_EQ(t.Render(),
            "NAME        SIZE\n"
            "a            1 B\n"
            "longer  12.0 MiB\n");
}

TEST(TpctlFormatTest, EnumArguments) {
  EXPECT_EQ(ParseTier("disk").value(), v1::TIER_DISK);
  EXPECT_EQ(ParseTier("ram+disk").value(), v1::TIER_RAM_AND_DISK);
  EXPECT_EQ(ParseTier("RAM_AND_DISK").value(), v1::TIER_RAM_AND_DISK);
  EXPECT_EQ(ParseRegionType("kv_cache").value(), v1::KV_CACHE);
  EXPECT_EQ(ParseDType("bfloat16").value(), v1::BFLOAT16);
  EXPECT_EQ(ParseAlgorithm("Clock").value(), v1::CLOCK);
  absl::StatusOr<v1::Tier> bad = ParseTier("unspecified");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(IsUsageError(bad.status()));
  EXPECT_THAT(bad.status().message(), HasSubstr("use empty, ram, disk"));
}

TEST(TpctlFormatTest, ExitCodes) {
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), kExitOk);
  EXPECT_EQ(ExitCodeFor(UsageError("x")), kExitUsage);
  EXPECT_EQ(ExitCodeFor(absl::InvalidArgumentError("server said")),
            kExitFailed);
  EXPECT_EQ(ExitCodeFor(absl::UnavailableError("down")), kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(absl::DeadlineExceededError("slow")), kExitUnavailable);
  EXPECT_EQ(ErrorLine(absl::NotFoundError("block 'x'"), "h:1"),
            "tpctl: NOT_FOUND: block 'x'");
}

std::vector<CommandSpec> Commands() {
  CommandSpec get{.name = "get",
                  .arguments = "ID FILE",
                  .summary = "read",
                  .description = "",
                  .min_args = 2,
                  .max_args = 2,
                  .options = {{"offset", "BYTES", ""}, {"json", "", ""}},
                  .run = nullptr};
  return {get};
}

TEST(TpctlCommandLineTest, OptionsAnywhereAfterTheCommand) {
  const std::vector<CommandSpec> commands = Commands();
  auto p = ParseCommandLine({"--target=h:1", "get", "--offset", "10", "x",
                             "--timeout", "2s", "out", "--json"},
                            commands, "default:1");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->target, "h:1");
  EXPECT_EQ(p->timeout, absl::Seconds(2));
  EXPECT_EQ(p->command->name, "get");
  EXPECT_THAT(p->invocation.args(), ::testing::ElementsAre("x", "out"));
  EXPECT_EQ(p->invocation.Get("offset"), "10");
  EXPECT_TRUE(p->invocation.Has("json"));
}

TEST(TpctlCommandLineTest, DashIsAnArgumentAndDoubleDashEndsOptions) {
  const std::vector<CommandSpec> commands = Commands();
  auto p = ParseCommandLine({"get", "--", "--odd-id", "-"}, commands, "d:1");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(p->invocation.args(), ::testing::ElementsAre("--odd-id", "-"));
  EXPECT_EQ(p->target, "d:1");
}

TEST(TpctlCommandLineTest, HelpAndMistakes) {
  const std::vector<CommandSpec> commands = Commands();
  auto help = ParseCommandLine({"get", "-h"}, commands, "d:1");
  ASSERT_TRUE(help.ok());
  EXPECT_THAT(*help->help, HasSubstr("Usage: tpctl get ID FILE [OPTIONS]"));
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"get", "x"},
                                             {"get", "x", "y", "z"},
                                             {"get", "x", "y", "--offset"},
                                             {"get", "x", "y", "--json=1"},
                                             {"--offset=1", "get", "x", "y"},
                                             {"--timeout=-1s", "get", "x", "y"},
                                             {"put"}}) {
    auto p = ParseCommandLine(args, commands, "d:1");
    EXPECT_TRUE(IsUsageError(p.status())) << args.back() << p.status();
  }
}

}  // namespace
}  // namespace tensorpager::tpctl
