#include "server/metrics/callback_family.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/metrics/label_values.h"
#include "server/metrics/text_format.h"

namespace tensorpager::metrics {

void SampleSink::Add(std::span<const absl::string_view> label_values,
                     double value) {
  samples_.push_back(
      {std::vector<std::string>(label_values.begin(), label_values.end()),
       value});
}

CallbackFamily::CallbackFamily(MetricType type, MetricSpec spec,
                               CollectFn collect)
    : type_(type), spec_(std::move(spec)), collect_(std::move(collect)) {}

absl::Status CallbackFamily::AppendText(std::string* out) const {
  SampleSink sink;
  collect_(sink);
  std::vector<SampleSink::Sample>& samples = sink.samples_;
  if (samples.empty()) return absl::OkStatus();

  for (const SampleSink::Sample& sample : samples) {
    const std::vector<absl::string_view> values(sample.label_values.begin(),
                                                sample.label_values.end());
    if (absl::Status s =
            ValidateLabelValues(spec_.name, spec_.label_names, values);
        !s.ok()) {
      return absl::InternalError(
          absl::StrCat("scrape callback: ", s.message()));
    }
    if (type_ == MetricType::kCounter && !(sample.value >= 0)) {
      return absl::InternalError(absl::StrCat(
          "scrape callback: counter \"", spec_.name, "\" reported ",
          sample.value, " for {", absl::StrJoin(sample.label_values, ","),
          "}; counters are >= 0"));
    }
  }
  std::sort(samples.begin(), samples.end(),
            [](const SampleSink::Sample& a, const SampleSink::Sample& b) {
              return LabelValuesLess()(a.label_values, b.label_values);
            });
  for (size_t i = 1; i < samples.size(); ++i) {
    if (samples[i - 1].label_values == samples[i].label_values) {
      return absl::InternalError(
          absl::StrCat("scrape callback: metric \"", spec_.name,
                       "\" reported label values {",
                       absl::StrJoin(samples[i].label_values, ","), "} twice"));
    }
  }

  AppendFamilyHeader(spec_.name, spec_.help, type_, out);
  for (const SampleSink::Sample& sample : samples) {
    AppendSample(spec_.name, "", spec_.label_names, sample.label_values, "",
                 sample.value, out);
  }
  return absl::OkStatus();
}

}  // namespace tensorpager::metrics
