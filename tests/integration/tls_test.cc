// Integration: TLS and mutual TLS on the client port, with certificates made
// by openssl for the test.
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

// A CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA.
class Certificates {
 public:
  Certificates() {
    char dir[] = "/tmp/drover-tls-XXXXXX";
    dir_ = mkdtemp(dir);
    std::string script = absl::StrCat(
        "set -e; cd ", dir_, "; S='-days 2 -nodes -newkey rsa:2048';",
        "openssl req -x509 $S -keyout ca.key -out ca.pem -subj /CN=drover-test-ca;",
        "openssl req -x509 $S -keyout other.key -out other.pem -subj /CN=other-ca;",
        "openssl req $S -keyout server.key -out server.csr -subj /CN=localhost;",
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san;",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san;",
        "openssl req $S -keyout client.key -out client.csr -subj /CN=drover-client;",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2");
    CommandResult made = RunProgram({"/bin/sh", "-c", script});
    ok_ = made.exit_code == 0;
    EXPECT_TRUE(ok_) << made.err;
  }
  ~Certificates() { std::filesystem::remove_all(dir_); }
  std::string operator()(const std::string& name) const { return dir_ + "/" + name; }
  bool ok() const { return ok_; }

 private:
  std::string dir_;
  bool ok_ = false;
};

CommandResult Jobs(const std::string& target, std::vector<std::string> flags) {
  std::vector<std::string> argv = {BinPath("drover"), "--coordinator", target};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("jobs");
  return RunProgram(argv);
}

TEST(Tls, ClientsMustSpeakTlsAndTrustTheServer) {
  Certificates certs;
  ASSERT_TRUE(certs.ok());
  TestCluster cluster({"--tls-cert", certs("server.pem"), "--tls-key", certs("server.key")});
  EXPECT_EQ(Jobs(cluster.client_target(), {"--ca", certs("ca.pem")}).exit_code, 0);
  // Each error says what is wrong, without gRPC's own log lines.
  CommandResult plain = Jobs(cluster.client_target(), {});
  EXPECT_EQ(plain.exit_code, 3);
  EXPECT_NE(plain.err.find("expects TLS: pass --ca FILE"), std::string::npos) << plain.err;
  CommandResult untrusted = Jobs(cluster.client_target(), {"--ca", certs("other.pem")});
  EXPECT_EQ(untrusted.exit_code, 3);
  EXPECT_NE(untrusted.err.find("certificate is not signed by the CA you trust"), std::string::npos) << untrusted.err;
  EXPECT_EQ(Lines(untrusted.err).size(), 1u) << untrusted.err;
  TestCluster plaintext;
  CommandResult tls_to_plain = Jobs(plaintext.client_target(), {"--ca", certs("ca.pem")});
  EXPECT_EQ(tls_to_plain.exit_code, 3);
  EXPECT_NE(tls_to_plain.err.find("speaks plaintext, not TLS"), std::string::npos) << tls_to_plain.err;
}

TEST(Tls, MutualTlsWantsAClientCertificate) {
  Certificates certs;
  ASSERT_TRUE(certs.ok());
  TestCluster cluster({"--tls-cert", certs("server.pem"), "--tls-key", certs("server.key"), "--tls-client-ca",
                       certs("ca.pem")});
  CommandResult without_cert = Jobs(cluster.client_target(), {"--ca", certs("ca.pem")});
  EXPECT_EQ(without_cert.exit_code, 3);
  EXPECT_NE(without_cert.err.find("wants a client certificate"), std::string::npos) << without_cert.err;
  CommandResult with_cert = Jobs(cluster.client_target(), {"--ca", certs("ca.pem"), "--client-cert",
                                                           certs("client.pem"), "--client-key", certs("client.key")});
  EXPECT_EQ(with_cert.exit_code, 0) << with_cert.err;
}

TEST(Tls, GrpcJobsCallTlsTargetsTheyTrust) {
  Certificates certs;
  ASSERT_TRUE(certs.ok());
  EchoServer echo({"--tls-cert", certs("server.pem"), "--tls-key", certs("server.key")});
  TestCluster cluster;
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  auto call = [&](std::vector<std::string> flags) {
    std::vector<std::string> args = {"run", "--grpc", echo.address(), "--method", "/drover.echo.v1.Echo/Say"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {":::", R"({"message":"sealed"})"});
    return cluster.Drover(args);
  };
  CommandResult trusted = call({"--grpc-ca", certs("ca.pem")});  // reflection and calls over TLS
  EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
  EXPECT_EQ(trusted.out, "{\"message\":\"sealed\",\"attempt\":1}\n");
  CommandResult untrusted = call({"--grpc-ca", certs("other.pem"), "--proto-set", DROVER_ECHO_DESCRIPTORS});
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_NE(untrusted.err.find("UNAVAILABLE"), std::string::npos) << untrusted.err;
  CommandResult plain = call({"--proto-set", DROVER_ECHO_DESCRIPTORS});
  EXPECT_EQ(plain.exit_code, 1);
}

}  // namespace
}  // namespace drover::testing
