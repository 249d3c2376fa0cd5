#include "client_sdk/tpctl/text_table.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tensorpager::tpctl {

TextTable::TextTable(std::vector<std::string> header)
    : header_(std::move(header)) {}

TextTable& TextTable::AlignRight(std::set<size_t> columns) {
  right_ = std::move(columns);
  return *this;
}

void TextTable::AddRow(std::vector<std::string> cells) {
  cells.resize(std::max(cells.size(), header_.size()));
  rows_.push_back(std::move(cells));
}

std::string TextTable::Render() const {
  std::vector<size_t> width(header_.size(), 0);
  auto measure = [&width](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i >= width.size()) width.resize(i + 1, 0);
      width[i] = std::max(width[i], row[i].size());
    }
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);

  std::string out;
  auto render = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      const size_t pad = width[i] - row[i].size();
      if (right_.count(i) != 0) {
        line.append(pad, ' ');
        line += row[i];
      } else {
        line += row[i];
        line.append(pad, ' ');
      }
    }
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line));
    out += '\n';
  };
  render(header_);
  for (const auto& row : rows_) render(row);
  return out;
}

}  // namespace tensorpager::tpctl
