// Runs a program to completion for integration tests and captures its exit
// code, stdout and stderr (through files, so no pipe can fill and block).
#ifndef TENSORPAGER_TESTS_INTEGRATION_RUN_COMMAND_H_
#define TENSORPAGER_TESTS_INTEGRATION_RUN_COMMAND_H_

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace tensorpager::testing {

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;
  std::string err;
};

inline std::ostream& operator<<(std::ostream& os, const CommandResult& r) {
  return os << "exit " << r.exit_code << "\nstdout:\n"
            << r.out << "stderr:\n"
            << r.err;
}

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct CommandOptions {
  std::string input;  // stdin
  // Environment changes: a value sets the variable, std::nullopt unsets it.
  std::map<std::string, std::optional<std::string>> env;
};

// argv[0] is the program's path.
inline CommandResult RunCommand(std::vector<std::string> args,
                                const CommandOptions& options = {}) {
  TempDir io;
  const std::string in_path = io.Sub("stdin");
  std::ofstream(in_path, std::ios::binary) << options.input;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (options.env.count(entry.substr(0, entry.find('='))) == 0) {
      env_storage.push_back(entry);
    }
  }
  for (const auto& [name, value] : options.env) {
    if (value.has_value())
      env_storage.push_back(absl::StrCat(name, "=", *value));
  }
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, in_path.c_str(),
                                   O_RDONLY, 0);
  const std::string out_path = io.Sub("stdout");
  const std::string err_path = io.Sub("stderr");
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CommandResult result;
  pid_t pid;
  const int rc =
      posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    result.err =
        absl::StrCat("cannot start ", args[0], ": ", std::strerror(rc));
    return result;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code =
      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFileBytes(out_path);
  result.err = ReadFileBytes(err_path);
  return result;
}

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_TESTS_INTEGRATION_RUN_COMMAND_H_
