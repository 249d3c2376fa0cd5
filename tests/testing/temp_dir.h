// A directory that exists for the lifetime of the object.
#ifndef TENSORPAGER_TESTS_TESTING_TEMP_DIR_H_
#define TENSORPAGER_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace tensorpager::testing {

class TempDir {
 public:
  // Created under $TMPDIR (or /tmp) with a unique name.
  TempDir();
  ~TempDir();  // removes it recursively
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_TESTS_TESTING_TEMP_DIR_H_
