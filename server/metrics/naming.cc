#include "server/metrics/naming.h"

#include <algorithm>
#include <iterator>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/metrics/text_format.h"

namespace tensorpager::metrics {
namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }

// The shape shared by metric and label names once ':' (legal in metric
// names but reserved for recording rules) is excluded: [a-z_][a-z0-9_]*.
// `what` is "metric name" or "label name".
absl::Status ValidateSnakeCase(absl::string_view name, absl::string_view what) {
  if (name.empty())
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (IsDigit(name[0])) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", name, "\" starts with a digit"));
  }
  for (char c : name) {
    if (IsLower(c) || IsDigit(c) || c == '_') continue;
    if (IsUpper(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " \"", name,
                       "\" has an upper-case letter; Prometheus names are "
                       "lowercase snake_case"));
    }
    if (c == ':') {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " \"", name,
                       "\" contains ':', which is reserved for "
                       "recording rules"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        what, " \"", name, "\" contains '", absl::string_view(&c, 1),
        "'; only [a-z0-9_] are allowed"));
  }
  if (absl::StartsWith(name, "__")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", name,
                     "\" starts with \"__\", which Prometheus reserves "
                     "for internal use"));
  }
  return absl::OkStatus();
}

// Non-base units and the base unit to use instead, as promtool's linter
// knows them ("milliseconds" is a prefixed "seconds", listed by prefix).
struct UnitRule {
  absl::string_view unit;
  absl::string_view base;
};
constexpr UnitRule kUnits[] = {
    {"amperes", "amperes"},    {"bytes", "bytes"},     {"celsius", "celsius"},
    {"grams", "grams"},        {"joules", "joules"},   {"kelvin", "kelvin"},
    {"meters", "meters"},      {"metres", "metres"},   {"seconds", "seconds"},
    {"volts", "volts"},        {"minutes", "seconds"}, {"hours", "seconds"},
    {"days", "seconds"},       {"weeks", "seconds"},   {"kelvins", "kelvin"},
    {"fahrenheit", "celsius"}, {"rankine", "celsius"}, {"inches", "meters"},
    {"yards", "meters"},       {"miles", "meters"},    {"bits", "bytes"},
    {"calories", "joules"},    {"pounds", "grams"},    {"ounces", "grams"},
};
constexpr absl::string_view kUnitPrefixes[] = {
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo",
    "kibi", "mega", "mibi",  "mebi",  "giga",  "gibi", "tera", "tebi",  "peta"};
constexpr absl::string_view kUnitAbbreviations[] = {
    "s",  "ms", "us", "ns", "sec", "b", "kb",
    "mb", "gb", "tb", "pb", "m",   "h", "d"};
constexpr absl::string_view kTypeWords[] = {"counter", "gauge", "histogram",
                                            "summary"};
// Sample-name suffixes a histogram (or summary) generates.
constexpr absl::string_view kGeneratedSuffixes[] = {"_bucket", "_count",
                                                    "_sum"};

const UnitRule* FindUnit(absl::string_view word) {
  for (const UnitRule& rule : kUnits) {
    if (rule.unit == word) return &rule;
  }
  return nullptr;
}

// A unit word that is not a base unit, e.g. "milliseconds" or "hours";
// the message says which base unit to use.
absl::Status CheckUnit(absl::string_view name, absl::string_view word) {
  if (const UnitRule* rule = FindUnit(word); rule != nullptr) {
    if (rule->unit == rule->base) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("metric name \"", name, "\" uses unit \"", word,
                     "\"; use the base unit \"", rule->base, "\""));
  }
  for (absl::string_view prefix : kUnitPrefixes) {
    if (!absl::StartsWith(word, prefix)) continue;
    if (const UnitRule* rule = FindUnit(word.substr(prefix.size()));
        rule != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric name \"", name, "\" uses unit \"", word,
                       "\"; use the base unit \"", rule->base, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateMetricName(absl::string_view name, MetricType type) {
  if (absl::Status s = ValidateSnakeCase(name, "metric name"); !s.ok()) {
    return s;
  }
  const bool total = absl::EndsWith(name, "_total");
  if (type == MetricType::kCounter && !total) {
    return absl::InvalidArgumentError(
        absl::StrCat("counter \"", name, "\" must end in \"_total\""));
  }
  if (type != MetricType::kCounter && total) {
    return absl::InvalidArgumentError(
        absl::StrCat(MetricTypeName(type), " \"", name,
                     "\" ends in \"_total\", which is for counters only"));
  }
  for (absl::string_view suffix : kGeneratedSuffixes) {
    if (absl::EndsWith(name, suffix)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric name \"", name, "\" ends in \"", suffix,
                       "\", which histograms generate for their samples"));
    }
  }
  const std::vector<absl::string_view> words = absl::StrSplit(name, '_');
  for (size_t i = 0; i < words.size(); ++i) {
    const absl::string_view word = words[i];
    if (absl::Status s = CheckUnit(name, word); !s.ok()) return s;
    // The first word is the namespace ("tensorpager"); the linter only
    // looks for type words and unit abbreviations after it.
    if (i == 0) continue;
    if (std::ranges::find(kTypeWords, word) != std::end(kTypeWords)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric name \"", name, "\" contains the type word \"",
                       word, "\"; the TYPE line already says it"));
    }
    if (std::ranges::find(kUnitAbbreviations, word) !=
        std::end(kUnitAbbreviations)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metric name \"", name, "\" uses the abbreviation \"", word,
          "\"; spell the unit out (e.g. \"seconds\", \"bytes\")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelNames(std::span<const std::string> label_names) {
  std::set<absl::string_view> seen;
  for (const std::string& label : label_names) {
    if (absl::Status s = ValidateSnakeCase(label, "label name"); !s.ok()) {
      return s;
    }
    if (label == "le" || label == "quantile") {
      return absl::InvalidArgumentError(absl::StrCat(
          "label name \"", label,
          "\" is reserved for histogram buckets and summary quantiles"));
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("label name \"", label, "\" is repeated"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateHelp(absl::string_view help) {
  if (help.empty()) {
    return absl::InvalidArgumentError(
        "help text is empty; say what the metric measures");
  }
  if (!IsValidUtf8(help)) {
    return absl::InvalidArgumentError("help text is not valid UTF-8");
  }
  return absl::OkStatus();
}

absl::Status ValidateSpec(const MetricSpec& spec, MetricType type) {
  if (absl::Status s = ValidateMetricName(spec.name, type); !s.ok()) return s;
  if (absl::Status s = ValidateLabelNames(spec.label_names); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric \"", spec.name, "\": ", s.message()));
  }
  if (absl::Status s = ValidateHelp(spec.help); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric \"", spec.name, "\": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace tensorpager::metrics
