#include "client_sdk/tpctl/help.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "client_sdk/tpctl/command_line.h"

namespace tensorpager::tpctl {
namespace {

constexpr absl::string_view kExitCodes =
    "Exit codes: 0 done; 1 the request failed (the server's gRPC code is "
    "printed, e.g. NOT_FOUND, or a local file could not be used); 2 usage "
    "error; 3 server unavailable or deadline exceeded.\n";

std::string OptionLines(const std::vector<OptionSpec>& options) {
  std::vector<std::string> left;
  size_t width = 0;
  for (const OptionSpec& o : options) {
    left.push_back(absl::StrCat("--", o.name, o.value_name.empty() ? "" : " ",
                                o.value_name));
    width = std::max(width, left.back().size());
  }
  std::string out;
  for (size_t i = 0; i < options.size(); ++i) {
    absl::StrAppend(&out, "  ", left[i],
                    std::string(width - left[i].size() + 2, ' '),
                    options[i].help, "\n");
  }
  return out;
}

}  // namespace

std::string MainHelp(const std::vector<CommandSpec>& commands) {
  std::string out =
      "tpctl operates a tensorpagerd server through its gRPC API.\n\n"
      "Usage: tpctl [--target HOST:PORT] [--timeout DURATION] COMMAND "
      "[ARGS] [OPTIONS]\n\nCommands:\n";
  size_t width = 0;
  for (const CommandSpec& c : commands) width = std::max(width, c.name.size());
  for (const CommandSpec& c : commands) {
    absl::StrAppend(&out, "  ", c.name,
                    std::string(width - c.name.size() + 2, ' '), c.summary,
                    "\n");
  }
  absl::StrAppend(&out, "\nGlobal options:\n", OptionLines(GlobalOptions()),
                  "\n'tpctl COMMAND --help' describes a command.\n",
                  kExitCodes);
  return out;
}

std::string CommandHelp(const CommandSpec& c) {
  std::string out = absl::StrCat(
      "Usage: tpctl ", c.name, c.arguments.empty() ? "" : " ", c.arguments,
      c.options.empty() ? "" : " [OPTIONS]", "\n\n", c.summary, "\n");
  if (!c.description.empty()) absl::StrAppend(&out, "\n", c.description, "\n");
  if (!c.options.empty()) {
    absl::StrAppend(&out, "\nOptions:\n", OptionLines(c.options));
  }
  absl::StrAppend(&out, "\nGlobal options:\n", OptionLines(GlobalOptions()),
                  "\n", kExitCodes);
  return out;
}

}  // namespace tensorpager::tpctl
