// What a tpctl command is: its name, arguments, options and help, and the
// function that runs it against a server.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_COMMAND_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_COMMAND_H_

#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tensorpager/client.h"

namespace tensorpager::tpctl {

struct OptionSpec {
  std::string name;        // without dashes: "tier"
  std::string value_name;  // "TIER"; empty for a switch
  std::string help;
};

// The arguments and options one command was given.
class Invocation {
 public:
  Invocation() = default;
  Invocation(std::vector<std::string> args,
             std::multimap<std::string, std::string> options)
      : args_(std::move(args)), options_(std::move(options)) {}

  const std::vector<std::string>& args() const { return args_; }
  bool Has(absl::string_view option) const;
  // The last value given for `option`, or `fallback`.
  std::string Get(absl::string_view option,
                  absl::string_view fallback = "") const;
  // Every value given for a repeatable option, in order.
  std::vector<std::string> GetAll(absl::string_view option) const;

 private:
  std::vector<std::string> args_;
  std::multimap<std::string, std::string> options_;
};

// How tpctl proves who it is to the server and checks the server
// (--token, --token_file, --tls_*; TENSORPAGER_TOKEN, TENSORPAGER_TLS_*).
struct ConnectionSecurity {
  std::string token;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name;
};

// The connection and output streams a command runs with.
class Context {
 public:
  Context(std::string target, absl::Duration timeout, std::ostream& out,
          ConnectionSecurity security = {});

  const std::string& target() const { return target_; }
  absl::Duration timeout() const { return timeout_; }
  std::ostream& out() { return out_; }

  // The SDK client, connected on first use.
  absl::StatusOr<Client*> client();
  // Its channel, for the RPCs and services the SDK does not wrap.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel();
  // Sets the RPC deadline (--timeout) on `context`.
  void SetDeadline(grpc::ClientContext& context) const;

 private:
  std::string target_;
  absl::Duration timeout_;
  std::ostream& out_;
  ConnectionSecurity security_;
  std::unique_ptr<Client> client_;
};

// Options several commands share.
OptionSpec NamespaceOption();
OptionSpec JsonOption();

struct CommandSpec {
  static constexpr size_t kAnyNumber = std::numeric_limits<size_t>::max();

  std::string name;
  std::string arguments;    // "ID FILE", for the usage line
  std::string summary;      // one line, for tpctl --help
  std::string description;  // paragraphs for tpctl COMMAND --help
  size_t min_args = 0;
  size_t max_args = 0;
  std::vector<OptionSpec> options;
  std::function<absl::Status(const Invocation&, Context&)> run;
};

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_COMMAND_H_
