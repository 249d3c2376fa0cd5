#include "client_sdk/tpctl/command_line.h"

#include <cstdlib>
#include <fstream>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client_sdk/tpctl/help.h"
#include "client_sdk/tpctl/usage_error.h"

namespace tensorpager::tpctl {
namespace {

const CommandSpec* FindCommand(const std::vector<CommandSpec>& commands,
                               absl::string_view name) {
  for (const CommandSpec& c : commands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const OptionSpec* FindOption(const std::vector<OptionSpec>& options,
                             absl::string_view name) {
  for (const OptionSpec& o : options) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

// "-" alone is an argument (stdin/stdout), as are negative numbers.
bool IsOption(absl::string_view token) {
  return token.size() > 1 && token[0] == '-' &&
         !absl::ascii_isdigit(static_cast<unsigned char>(token[1]));
}

absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text) {
  absl::Duration d;
  double seconds;
  if (absl::SimpleAtod(text, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return UsageError(absl::StrCat("--timeout '", text,
                                   "' is not a duration; write e.g. 10s, "
                                   "500ms, 2m"));
  }
  if (d <= absl::ZeroDuration()) {
    return UsageError("--timeout must be positive");
  }
  return d;
}

}  // namespace

std::vector<OptionSpec> GlobalOptions() {
  return {
      {"target", "HOST:PORT",
       absl::StrCat("server address, or unix:PATH (default: $", kTargetVariable,
                    " or ", kDefaultTarget, ")")},
      {"timeout", "DURATION",
       "deadline of each request, e.g. 5s, 500ms (default 30s)"},
      {"token_file", "FILE",
       "file holding the bearer token that names your tenant (default: "
       "$TENSORPAGER_TOKEN; --token TOKEN also works, but shows in ps)"},
      {"token", "TOKEN", "the bearer token itself (prefer --token_file)"},
      {"tls_ca", "FILE",
       "PEM CA that signed the server's certificate; turns TLS on "
       "(default: $TENSORPAGER_TLS_CA)"},
      {"tls_cert", "FILE",
       "PEM client certificate, for mutual TLS ($TENSORPAGER_TLS_CERT)"},
      {"tls_key", "FILE", "its PEM private key ($TENSORPAGER_TLS_KEY)"},
      {"tls_server_name", "NAME",
       "name the server's certificate must carry (default: the target's "
       "host; $TENSORPAGER_TLS_SERVER_NAME)"},
      {"help", "", "show help (also -h; tpctl COMMAND --help)"},
  };
}

absl::StatusOr<ParsedCommandLine> ParseCommandLine(
    const std::vector<std::string>& args,
    const std::vector<CommandSpec>& commands, absl::string_view default_target,
    ConnectionSecurity default_security) {
  const std::vector<OptionSpec> globals = GlobalOptions();
  ParsedCommandLine parsed;
  parsed.target = std::string(default_target);
  parsed.security = std::move(default_security);
  bool help = false;
  bool options_ended = false;
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> options;

  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view token = args[i];
    if (!options_ended && token == "--") {
      options_ended = true;
      continue;
    }
    if (options_ended || !IsOption(token)) {
      if (parsed.command == nullptr) {
        parsed.command = FindCommand(commands, token);
        if (parsed.command == nullptr) {
          return UsageError(
              absl::StrCat("unknown command '", token, "'; see tpctl --help"));
        }
      } else {
        positional.emplace_back(token);
      }
      continue;
    }
    absl::ConsumePrefix(&token, "-");
    absl::ConsumePrefix(&token, "-");
    const size_t eq = token.find('=');
    const std::string name(token.substr(0, eq));
    if (name == "h" || name == "help") {
      help = true;
      continue;
    }
    const OptionSpec* spec = FindOption(globals, name);
    if (spec == nullptr && parsed.command != nullptr) {
      spec = FindOption(parsed.command->options, name);
    }
    if (spec == nullptr) {
      return UsageError(
          parsed.command == nullptr
              ? absl::StrCat("unknown option --", name,
                             " (command options go after the command); see "
                             "tpctl --help")
              : absl::StrCat("unknown option --", name, " for 'tpctl ",
                             parsed.command->name, "'; see tpctl ",
                             parsed.command->name, " --help"));
    }
    std::string value;
    if (spec->value_name.empty()) {
      if (eq != absl::string_view::npos) {
        return UsageError(absl::StrCat("--", name, " takes no value"));
      }
    } else if (eq != absl::string_view::npos) {
      value = std::string(token.substr(eq + 1));
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return UsageError(
          absl::StrCat("--", name, " needs a value (", spec->value_name, ")"));
    }
    if (name == "target") {
      if (value.empty()) return UsageError("--target must not be empty");
      parsed.target = value;
    } else if (name == "timeout") {
      absl::StatusOr<absl::Duration> timeout = ParseTimeout(value);
      if (!timeout.ok()) return timeout.status();
      parsed.timeout = *timeout;
    } else if (name == "token") {
      parsed.security.token = value;
    } else if (name == "token_file") {
      std::ifstream in(value);
      std::string token;
      if (!in || !std::getline(in, token)) {
        return absl::NotFoundError(
            absl::StrCat("--token_file ", value, " cannot be read"));
      }
      parsed.security.token = std::string(absl::StripAsciiWhitespace(token));
    } else if (name == "tls_ca") {
      parsed.security.tls_ca_file = value;
    } else if (name == "tls_cert") {
      parsed.security.tls_cert_file = value;
    } else if (name == "tls_key") {
      parsed.security.tls_key_file = value;
    } else if (name == "tls_server_name") {
      parsed.security.tls_server_name = value;
    } else {
      options.emplace(name, std::move(value));
    }
  }

  if (parsed.command != nullptr && parsed.command->name == "help") {
    if (positional.size() > 1) {
      return UsageError("usage: tpctl help [COMMAND]");
    }
    if (positional.empty()) {
      parsed.help = MainHelp(commands);
      return parsed;
    }
    const CommandSpec* about = FindCommand(commands, positional[0]);
    if (about == nullptr) {
      return UsageError(absl::StrCat("unknown command '", positional[0],
                                     "'; see tpctl --help"));
    }
    parsed.help = CommandHelp(*about);
    return parsed;
  }
  if (help) {
    parsed.help = parsed.command == nullptr ? MainHelp(commands)
                                            : CommandHelp(*parsed.command);
    return parsed;
  }
  if (parsed.command == nullptr) {
    return UsageError("no command given; see tpctl --help");
  }
  const CommandSpec& c = *parsed.command;
  if (positional.size() < c.min_args || positional.size() > c.max_args) {
    return UsageError(
        absl::StrCat(positional.size() < c.min_args ? "missing arguments"
                                                    : "too many arguments",
                     "; usage: tpctl ", c.name, c.arguments.empty() ? "" : " ",
                     c.arguments, " (see tpctl ", c.name, " --help)"));
  }
  parsed.invocation = Invocation(std::move(positional), std::move(options));
  return parsed;
}

ConnectionSecurity SecurityFromEnvironment() {
  auto get = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value == nullptr ? "" : value);
  };
  ConnectionSecurity s;
  s.token = get("TENSORPAGER_TOKEN");
  s.tls_ca_file = get("TENSORPAGER_TLS_CA");
  s.tls_cert_file = get("TENSORPAGER_TLS_CERT");
  s.tls_key_file = get("TENSORPAGER_TLS_KEY");
  s.tls_server_name = get("TENSORPAGER_TLS_SERVER_NAME");
  return s;
}

}  // namespace tensorpager::tpctl
