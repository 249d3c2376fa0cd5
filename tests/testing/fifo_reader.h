// Reads a FIFO (named pipe) the way `cat FIFO` would, on a thread of its
// own, for tests of programs that write into one.
#ifndef TENSORPAGER_TESTS_TESTING_FIFO_READER_H_
#define TENSORPAGER_TESTS_TESTING_FIFO_READER_H_

#include <string>
#include <thread>

#include "absl/time/time.h"

namespace tensorpager::testing {

class FifoReader {
 public:
  // Opens the FIFO at `path` (it must exist) and reads until a writer has
  // come and closed it, or `timeout` has passed: a writer that never comes
  // fails the test instead of hanging it.
  explicit FifoReader(const std::string& path,
                      absl::Duration timeout = absl::Seconds(30));
  ~FifoReader();  // Finish() if not called
  FifoReader(const FifoReader&) = delete;
  FifoReader& operator=(const FifoReader&) = delete;

  // Waits for the end and returns what was read.
  std::string Finish();
  // Whether the writer closed it (false: the timeout ended the read).
  bool complete() const { return complete_; }

 private:
  void Run(absl::Time deadline);

  int fd_ = -1;
  std::string data_;
  bool complete_ = false;
  std::thread thread_;
};

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_TESTS_TESTING_FIFO_READER_H_
