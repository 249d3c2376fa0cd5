#include "tests/testing/test_pki.h"

#include <cstdlib>
#include <fstream>

namespace tensorpager::testing {

bool TestPki::Available() {
  return std::system("openssl version >/dev/null 2>&1") == 0;
}

bool TestPki::OpenSsl(const std::string& args) const {
  return std::system(
             ("cd '" + dir_ + "' && openssl " + args + " >/dev/null 2>&1")
                 .c_str()) == 0;
}

bool TestPki::MakeCa(const std::string& name) const {
  return OpenSsl("req -x509 -newkey rsa:2048 -nodes -keyout " + name +
                 ".key -out " + name + ".crt -days 2 -subj /CN=" + name);
}

bool TestPki::MakeCert(const std::string& name, const std::string& ca,
                       const std::string& san) const {
  {
    std::ofstream ext(Path(name + ".ext"));
    ext << "subjectAltName=" << san << "\n";
    if (!ext) return false;
  }  // closed before openssl reads it
  return OpenSsl("req -newkey rsa:2048 -nodes -keyout " + name + ".key -out " +
                 name + ".csr -subj /CN=" + name) &&
         OpenSsl("x509 -req -in " + name + ".csr -CA " + ca + ".crt -CAkey " +
                 ca + ".key -CAcreateserial -out " + name +
                 ".crt -days 2 -extfile " + name + ".ext");
}

}  // namespace tensorpager::testing
