// A cache-access trace held in memory: the requests of a CSV file in the
// `timestamp,obj_id,obj_size` format (one header line), or of a generator.
#ifndef TENSORPAGER_STORAGE_POLICY_SIM_TRACE_H_
#define TENSORPAGER_STORAGE_POLICY_SIM_TRACE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tensorpager::policy::sim {

struct Request {
  uint64_t key = 0;
  uint64_t bytes = 0;
};

struct Trace {
  std::string name;
  std::vector<Request> requests;
  // Rows whose obj_size was 0; they were counted as 1 byte.
  uint64_t zero_size_rows = 0;
};

struct TraceSummary {
  uint64_t requests = 0;
  uint64_t unique_objects = 0;
  // Sum over unique objects of the size each was last requested with.
  uint64_t working_set_bytes = 0;
  uint64_t requested_bytes = 0;
};

TraceSummary Summarize(const Trace& trace);

// Reads a CSV trace. obj_id may be any integer or, failing that, any text
// (hashed to a key). Errors name the file and line.
absl::StatusOr<Trace> ReadTraceCsv(const std::string& path);
// Parses CSV text as ReadTraceCsv does; `name` labels errors and the trace.
absl::StatusOr<Trace> ParseTraceCsv(absl::string_view text,
                                    absl::string_view name);
absl::Status WriteTraceCsv(const Trace& trace, const std::string& path);

}  // namespace tensorpager::policy::sim

#endif  // TENSORPAGER_STORAGE_POLICY_SIM_TRACE_H_
