// tpctl's command line: global options, a command, its arguments and
// options, in any order after the command ("--" ends the options).
//   tpctl [--target HOST:PORT] [--timeout DURATION] COMMAND [ARGS] [OPTIONS]
// Options take their value as --name=VALUE or --name VALUE.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_COMMAND_LINE_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_COMMAND_LINE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client_sdk/tpctl/command.h"

namespace tensorpager::tpctl {

inline constexpr absl::string_view kTargetVariable = "TENSORPAGER_TARGET";
inline constexpr absl::string_view kDefaultTarget = "127.0.0.1:50051";
inline constexpr absl::Duration kDefaultTimeout = absl::Seconds(30);

// Options every command accepts.
std::vector<OptionSpec> GlobalOptions();

struct ParsedCommandLine {
  std::string target;
  absl::Duration timeout = kDefaultTimeout;
  ConnectionSecurity security;
  // Set when help was asked for (--help, -h, tpctl help [COMMAND]): the text
  // to print; nothing runs.
  std::optional<std::string> help;
  const CommandSpec* command = nullptr;
  Invocation invocation;
};

// `args` excludes the program name. `default_target` is used when --target
// is not given, `default_security` (from the environment) for what the
// security options do not set. Mistakes are usage errors (IsUsageError);
// an unreadable --token_file is NOT_FOUND. The result's `command` points
// into `commands`, which must outlive it.
absl::StatusOr<ParsedCommandLine> ParseCommandLine(
    const std::vector<std::string>& args,
    const std::vector<CommandSpec>& commands, absl::string_view default_target,
    ConnectionSecurity default_security = {});

// The security settings of tpctl's environment: TENSORPAGER_TOKEN,
// TENSORPAGER_TLS_CA, TENSORPAGER_TLS_CERT, TENSORPAGER_TLS_KEY,
// TENSORPAGER_TLS_SERVER_NAME.
ConnectionSecurity SecurityFromEnvironment();

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_COMMAND_LINE_H_
