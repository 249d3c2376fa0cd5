// Certificates for TLS tests and benchmarks, made with the openssl
// command in a directory: CAs, and certificates they sign with given SANs.
#ifndef TENSORPAGER_TESTS_TESTING_TEST_PKI_H_
#define TENSORPAGER_TESTS_TESTING_TEST_PKI_H_

#include <string>

namespace tensorpager::testing {

class TestPki {
 public:
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {}
  // Whether the openssl command runs here.
  static bool Available();
  // `name`.crt and `name`.key: a self-signed CA.
  bool MakeCa(const std::string& name) const;
  // `name`.crt and `name`.key signed by CA `ca`, with `san` (e.g.
  // "DNS:localhost,IP:127.0.0.1").
  bool MakeCert(const std::string& name, const std::string& ca,
                const std::string& san) const;
  std::string Path(const std::string& file) const { return dir_ + "/" + file; }

 private:
  bool OpenSsl(const std::string& args) const;
  std::string dir_;
};

}  // namespace tensorpager::testing

#endif  // TENSORPAGER_TESTS_TESTING_TEST_PKI_H_
