#include "client_sdk/tpctl/command.h"

#include "absl/time/clock.h"

namespace tensorpager::tpctl {

OptionSpec NamespaceOption() {
  return {"namespace", "NS", "namespace of the blocks (default: default)"};
}

OptionSpec JsonOption() {
  return {"json", "", "print JSON (proto field names) instead"};
}

bool Invocation::Has(absl::string_view option) const {
  return options_.count(std::string(option)) != 0;
}

std::string Invocation::Get(absl::string_view option,
                            absl::string_view fallback) const {
  auto range = options_.equal_range(std::string(option));
  if (range.first == range.second) return std::string(fallback);
  return std::prev(range.second)->second;
}

std::vector<std::string> Invocation::GetAll(absl::string_view option) const {
  std::vector<std::string> values;
  auto range = options_.equal_range(std::string(option));
  for (auto it = range.first; it != range.second; ++it) {
    values.push_back(it->second);
  }
  return values;
}

Context::Context(std::string target, absl::Duration timeout, std::ostream& out,
                 ConnectionSecurity security)
    : target_(std::move(target)),
      timeout_(timeout),
      out_(out),
      security_(std::move(security)) {}

absl::StatusOr<Client*> Context::client() {
  if (client_ == nullptr) {
    // A one-shot tool: one connection, no local cache traffic, no pressure
    // following or usage reports, no device probing, and no SDK log lines
    // (every failure reaches the user as the command's status).
    ClientOptions options;
    options.timeout = timeout_;
    options.connections = 1;
    options.prefetch_threads = 1;
    options.client_id = "tpctl";
    options.reporting.watch_pressure = false;
    options.reporting.usage_interval = absl::ZeroDuration();
    options.device_runtime =
        HostOnlyDeviceRuntime("tpctl moves bytes between files and the server");
    options.log_sink = [](absl::string_view) {};
    options.token = security_.token;
    options.tls_ca_file = security_.tls_ca_file;
    options.tls_cert_file = security_.tls_cert_file;
    options.tls_key_file = security_.tls_key_file;
    options.tls_server_name = security_.tls_server_name;
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Connect(target_, options);
    if (!client.ok()) return client.status();
    client_ = *std::move(client);
  }
  return client_.get();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Context::channel() {
  absl::StatusOr<Client*> c = client();
  if (!c.ok()) return c.status();
  return (*c)->channel();
}

void Context::SetDeadline(grpc::ClientContext& context) const {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
}

}  // namespace tensorpager::tpctl
