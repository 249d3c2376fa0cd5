// Searches a file's bytes, for tests that check what reached the drive
// (encryption at rest, punched extents).
#ifndef TENSORPAGER_TESTS_TESTING_FIND_IN_FILE_H_
#define TENSORPAGER_TESTS_TESTING_FIND_IN_FILE_H_

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

namespace tensorpager::testing {

// The offset of `needle` in the file at `path`, or -1.
inline int64_t FindInFile(const std::string& path, const std::string& needle) {
  std::ifstream f(path, std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(f)),
                        std::istreambuf_iterator<char>());
  const size_t at = all.find(needle);
  return at == std::string::npos ? -1 : static_cast<int64_t>(at);
}

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_TESTS_TESTING_FIND_IN_FILE_H_
