#include "client_sdk/tpctl/server_commands.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_sdk/tpctl/enum_args.h"
#include "client_sdk/tpctl/format.h"
#include "client_sdk/tpctl/json_output.h"
#include "client_sdk/tpctl/status_report.h"
#include "client_sdk/tpctl/usage_error.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace tensorpager::tpctl {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

absl::Status RunStatus(const Invocation& inv, Context& ctx) {
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  absl::StatusOr<v1::StatusResponse> s = (*client)->Status();
  if (!s.ok()) return s.status();
  if (inv.Has("json")) return PrintJson(ctx.out(), *s);
  ctx.out() << StatusReport(*s, absl::Now());
  return absl::OkStatus();
}

absl::Status RunHealth(const Invocation& inv, Context& ctx) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = ctx.channel();
  if (!channel.ok()) return channel.status();
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::ClientContext rpc;
  ctx.SetDeadline(rpc);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(inv.Get("service"));
  grpc::health::v1::HealthCheckResponse resp;
  if (absl::Status s = FromGrpc(stub->Check(&rpc, req, &resp)); !s.ok()) {
    return s;
  }
  const std::string state =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
  if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::FailedPreconditionError(
        absl::StrCat("health of '", req.service(), "' is ", state));
  }
  ctx.out() << state << "\n";
  return absl::OkStatus();
}

absl::Status RunWatch(const Invocation& inv, Context& ctx) {
  uint64_t count = 0;
  if (inv.Has("count") &&
      (!absl::SimpleAtoi(inv.Get("count"), &count) || count == 0)) {
    return UsageError("--count must be a positive number of events");
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = ctx.channel();
  if (!channel.ok()) return channel.status();
  auto stub = v1::TensorPager::NewStub(*channel);
  // A watch runs until interrupted or --count events arrived: no deadline.
  grpc::ClientContext rpc;
  v1::WatchPressureRequest req;
  req.set_send_current(!inv.Has("changes_only"));
  std::unique_ptr<grpc::ClientReader<v1::PressureEvent>> reader =
      stub->WatchPressure(&rpc, req);
  v1::PressureEvent event;
  uint64_t seen = 0;
  while (reader->Read(&event)) {
    if (inv.Has("json")) {
      if (absl::Status s = PrintJson(ctx.out(), event, JsonStyle::kOneLine);
          !s.ok()) {
        return s;
      }
    } else {
      ctx.out() << PressureEventLine(event) << "\n";
    }
    ctx.out().flush();
    if (count != 0 && ++seen >= count) {
      rpc.TryCancel();
      reader->Finish();
      return absl::OkStatus();
    }
  }
  absl::Status s = FromGrpc(reader->Finish());
  if (s.ok()) {
    return absl::UnavailableError("the server ended the pressure stream");
  }
  return s;
}

absl::Status RunPolicy(const Invocation& inv, Context& ctx) {
  absl::StatusOr<v1::Algorithm> algorithm = ParseAlgorithm(inv.args()[0]);
  if (!algorithm.ok()) return algorithm.status();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = ctx.channel();
  if (!channel.ok()) return channel.status();
  auto stub = v1::TensorPager::NewStub(*channel);
  grpc::ClientContext rpc;
  ctx.SetDeadline(rpc);
  v1::SetPolicyRequest req;
  req.set_algorithm(*algorithm);
  v1::SetPolicyResponse resp;
  if (absl::Status s = FromGrpc(stub->SetPolicy(&rpc, req, &resp)); !s.ok()) {
    return s;
  }
  if (inv.Has("json")) return PrintJson(ctx.out(), resp);
  ctx.out() << "policy " << AlgorithmName(resp.previous()) << " -> "
            << AlgorithmName(resp.algorithm()) << " (" << resp.resident_blocks()
            << " resident blocks keep their access history)\n";
  return absl::OkStatus();
}

absl::Status RunVersion(const Invocation&, Context& ctx) {
  ctx.out() << "tpctl " << TENSORPAGER_VERSION << "\n";
  absl::StatusOr<Client*> client = ctx.client();
  if (!client.ok()) return client.status();
  absl::StatusOr<v1::StatusResponse> s = (*client)->Status();
  if (!s.ok()) return s.status();
  ctx.out() << "tensorpagerd " << s->version() << " at " << ctx.target()
            << "\n";
  return absl::OkStatus();
}

}  // namespace

std::vector<CommandSpec> ServerCommands() {
  std::vector<CommandSpec> c;
  c.push_back(
      CommandSpec{.name = "status",
                  .arguments = "",
                  .summary = "tiers, pressure, block counts and efficiency",
                  .description = "",
                  .min_args = 0,
                  .max_args = 0,
                  .options = {JsonOption()},
                  .run = RunStatus});
  c.push_back(CommandSpec{
      .name = "health",
      .arguments = "",
      .summary = "standard gRPC health check (exit 0 when SERVING)",
      .description =
          "Calls grpc.health.v1.Health/Check. Fit for container health "
          "checks:\n  HEALTHCHECK CMD tpctl --timeout 3s health",
      .min_args = 0,
      .max_args = 0,
      .options = {{"service", "NAME",
                   "service to check (default: the server as a whole)"}},
      .run = RunHealth});
  c.push_back(CommandSpec{
      .name = "watch",
      .arguments = "",
      .summary = "follow pressure-level changes live (WatchPressure)",
      .description =
          "Prints the current level of every resource, then one line per "
          "change, until interrupted (Ctrl-C) or --count events.",
      .min_args = 0,
      .max_args = 0,
      .options = {{"changes_only", "", "skip the current state, only changes"},
                  {"count", "N", "stop after N events"},
                  {"json", "", "one JSON object per line"}},
      .run = RunWatch});
  c.push_back(CommandSpec{
      .name = "policy",
      .arguments = "ALGORITHM",
      .summary = "switch the eviction algorithm: lru, clock or adaptive",
      .description = "Access history carries over to the new algorithm.",
      .min_args = 1,
      .max_args = 1,
      .options = {JsonOption()},
      .run = RunPolicy});
  c.push_back(CommandSpec{.name = "version",
                          .arguments = "",
                          .summary = "versions of tpctl and of the server",
                          .description = "",
                          .min_args = 0,
                          .max_args = 0,
                          .options = {},
                          .run = RunVersion});
  c.push_back(CommandSpec{.name = "help",
                          .arguments = "[COMMAND]",
                          .summary = "this overview, or a command's help",
                          .description = "",
                          .min_args = 0,
                          .max_args = 1,
                          .options = {},
                          .run = nullptr});
  return c;
}

}  // namespace tensorpager::tpctl
