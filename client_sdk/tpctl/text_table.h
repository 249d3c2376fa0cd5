// Plain-text tables for tpctl's human-readable output: a header row and
// columns padded to their widest cell, numbers aligned right.
#ifndef TENSORPAGER_CLIENT_SDK_TPCTL_TEXT_TABLE_H_
#define TENSORPAGER_CLIENT_SDK_TPCTL_TEXT_TABLE_H_

#include <set>
#include <string>
#include <vector>

namespace tensorpager::tpctl {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header);

  // Cells of the given columns are aligned right (numbers, sizes).
  TextTable& AlignRight(std::set<size_t> columns);
  // A row with fewer cells than the header is padded with empty cells.
  void AddRow(std::vector<std::string> cells);

  size_t rows() const { return rows_.size(); }
  // Columns separated by two spaces, no trailing blanks, one "\n" per row.
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::set<size_t> right_;
};

}  // namespace tensorpager::tpctl

#endif  // TENSORPAGER_CLIENT_SDK_TPCTL_TEXT_TABLE_H_
