#include "storage/policy/sim/trace.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::policy::sim {
namespace {

template <typename T>
bool ParseNumber(absl::string_view text, T* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

// FNV-1a: a stable key for traces whose ids are not integers.
uint64_t HashText(absl::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t KeyOf(absl::string_view id) {
  uint64_t key;
  if (ParseNumber(id, &key)) return key;
  int64_t signed_key;
  if (ParseNumber(id, &signed_key)) return static_cast<uint64_t>(signed_key);
  return HashText(id);
}

// Splits off the first three comma-separated fields; false if fewer.
bool SplitFields(absl::string_view line, absl::string_view fields[3]) {
  for (int f = 0; f < 3; ++f) {
    const size_t comma = line.find(',');
    if (comma == absl::string_view::npos) {
      if (f < 2) return false;
      fields[f] = absl::StripAsciiWhitespace(line);
      return true;
    }
    fields[f] = absl::StripAsciiWhitespace(line.substr(0, comma));
    line.remove_prefix(comma + 1);
  }
  return true;
}

}  // namespace

TraceSummary Summarize(const Trace& trace) {
  TraceSummary s;
  absl::flat_hash_map<uint64_t, uint64_t> sizes;
  sizes.reserve(trace.requests.size() / 4);
  for (const Request& r : trace.requests) {
    sizes[r.key] = r.bytes;
    s.requested_bytes += r.bytes;
  }
  s.requests = trace.requests.size();
  s.unique_objects = sizes.size();
  for (const auto& [key, bytes] : sizes) s.working_set_bytes += bytes;
  return s;
}

absl::StatusOr<Trace> ParseTraceCsv(absl::string_view text,
                                    absl::string_view name) {
  Trace trace;
  trace.name = std::string(name);
  trace.requests.reserve(text.size() / 16);
  uint64_t line_no = 0;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    if (eol == absl::string_view::npos) eol = text.size();
    absl::string_view line = text.substr(0, eol);
    text.remove_prefix(std::min(eol + 1, text.size()));
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::string_view fields[3];
    if (!SplitFields(line, fields)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_no, ": expected 'timestamp,obj_id,",
                       "obj_size' but found '", line, "'"));
    }
    uint64_t bytes;
    if (!ParseNumber(fields[2], &bytes)) {
      if (line_no == 1) continue;  // the header line
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", line_no, ": obj_size '", fields[2],
                       "' is not a non-negative integer"));
    }
    if (bytes == 0) {
      ++trace.zero_size_rows;
      bytes = 1;
    }
    trace.requests.push_back(Request{KeyOf(fields[1]), bytes});
  }
  if (trace.requests.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name,
                     ": no requests; a trace needs rows of "
                     "'timestamp,obj_id,obj_size' after the header"));
  }
  return trace;
}

absl::StatusOr<Trace> ReadTraceCsv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string message =
        absl::StrCat("cannot open trace ", path, ": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::UnavailableError(message);
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("cannot read trace ", path));
  }
  const std::string text = std::move(buffer).str();
  return ParseTraceCsv(text, path);
}

absl::Status WriteTraceCsv(const Trace& trace, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  out << "timestamp,obj_id,obj_size\n";
  uint64_t t = 0;
  for (const Request& r : trace.requests) {
    out << t++ << ',' << r.key << ',' << r.bytes << '\n';
  }
  out.flush();
  if (!out) {
    return absl::DataLossError(
        absl::StrCat("writing ", path, " failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace tensorpager::policy::sim
