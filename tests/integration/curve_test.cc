// Integration: workers join only with CURVE keys the coordinator admits, and
// talk only to the coordinator whose key they were given.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include <optional>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/curve.h"
#include "common/wire.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

class Keys {
 public:
  Keys() {
    char dir[] = "/tmp/drover-keys-XXXXXX";
    dir_ = mkdtemp(dir);
    for (const char* name : {"coordinator", "good", "bad", "other"}) {
      CommandResult r = RunProgram({BinPath("drover"), "keygen", Path(name)});
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    RunProgram({"/bin/cp", Path("good") + ".pub", dir_ + "/authorized"});
  }
  ~Keys() { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string authorized() const { return dir_ + "/authorized"; }

 private:
  std::string dir_;
};

std::vector<std::string> WorkerWith(const std::string& endpoint, const Keys& keys, const std::string& key,
                                    const std::string& server) {
  std::vector<std::string> argv = {BinPath("drover-worker"), "--coordinator", endpoint, "--slots", "1",
                                   "--curve-key", keys.Path(key) + ".key", "--coordinator-key",
                                   keys.Path(server) + ".pub"};
  if (geteuid() == 0) argv.push_back("--allow-root");
  return argv;
}

TEST(Curve, KeygenWritesPrivateKeyFiles) {
  Keys keys;
  struct stat info;
  for (const char* suffix : {".key", ".pub"}) {
    ASSERT_EQ(stat((keys.Path("good") + suffix).c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u) << suffix;
  }
  CommandResult again = RunProgram({BinPath("drover"), "keygen", keys.Path("good")});
  EXPECT_NE(again.exit_code, 0);  // never overwrites a key
}

TEST(Curve, OnlyAuthorizedWorkersJoinAndRun) {
  Keys keys;
  TestCluster cluster({"--curve-key", keys.Path("coordinator") + ".key", "--authorized-keys", keys.authorized()});
  ChildProcess good(WorkerWith(cluster.worker_endpoint(), keys, "good", "coordinator"));
  ChildProcess bad(WorkerWith(cluster.worker_endpoint(), keys, "bad", "coordinator"));
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  std::optional<int> refused = bad.Wait();
  ASSERT_TRUE(refused.has_value()) << "a refused worker keeps waiting";
  EXPECT_EQ(WEXITSTATUS(*refused), 1);
  EXPECT_NE(bad.Log().find("refused this worker's key"), std::string::npos) << bad.Log();
  EXPECT_NE(cluster.coordinator().Log().find("not in the authorized keys"), std::string::npos);
  CommandResult workers = cluster.Drover({"--json", "workers"});
  EXPECT_EQ(Lines(workers.out).size(), 1u) << workers.out;  // only the good one
  CommandResult r = cluster.Drover({"run", "--range", "0:4", "--", "sh", "-c", "echo {}"});
  EXPECT_EQ(r.out, "0\n1\n2\n3\n") << r.err;
}

TEST(Curve, AWorkerWithTheWrongCoordinatorKeyCannotConnect) {
  Keys keys;
  TestCluster cluster({"--curve-key", keys.Path("coordinator") + ".key", "--authorized-keys", keys.authorized()});
  ChildProcess lost(WorkerWith(cluster.worker_endpoint(), keys, "good", "other"));
  std::optional<int> status = lost.Wait();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_NE(lost.Log().find("security handshake with the coordinator failed"), std::string::npos) << lost.Log();
  EXPECT_TRUE(cluster.coordinator().Running());
}

TEST(Curve, AWorkerAndACoordinatorThatDisagreeOnCurveSaySoAndTheWorkerGivesUp) {
  Keys keys;
  TestCluster curve({"--curve-key", keys.Path("coordinator") + ".key", "--authorized-keys", keys.authorized()});
  std::vector<std::string> keyless = {BinPath("drover-worker"), "--coordinator", curve.worker_endpoint()};
  if (geteuid() == 0) keyless.push_back("--allow-root");
  ChildProcess without_keys(keyless);
  std::optional<int> status = without_keys.Wait();
  ASSERT_TRUE(status.has_value()) << "a worker without keys keeps waiting";
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_NE(without_keys.Log().find("the coordinator requires CURVE: pass --coordinator-key"), std::string::npos)
      << without_keys.Log();

  TestCluster plain;
  ChildProcess with_keys(WorkerWith(plain.worker_endpoint(), keys, "good", "coordinator"));
  status = with_keys.Wait();
  ASSERT_TRUE(status.has_value()) << "a worker with keys keeps waiting for a coordinator without CURVE";
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_NE(with_keys.Log().find("the coordinator does not use CURVE"), std::string::npos) << with_keys.Log();
}

TEST(Curve, ACoordinatorWithKeysAndATokenMayListenBeyondLoopback) {
  Keys keys;
  RunProgram({"/bin/sh", "-c", absl::StrCat("echo t0ken > ", keys.Path("token"))});
  int ready = -1;
  ChildProcess coordinator({BinPath("drover-coordinator"), "--listen-workers", "tcp://0.0.0.0:0",
                            "--listen-clients", "0.0.0.0:0", "--curve-key", keys.Path("coordinator") + ".key",
                            "--authorized-keys", keys.authorized(), "--token-file", keys.Path("token"),
                            "--ready-fd", "3"},
                           {}, &ready);
  char c;
  EXPECT_EQ(read(ready, &c, 1), 1) << coordinator.Log();  // it started and reported its addresses
  close(ready);
  EXPECT_TRUE(coordinator.Running());
}

// A DEALER with its own CURVE keys and a chosen routing id, speaking the worker protocol.
zmq::socket_t CurvePeer(zmq::context_t& context, const std::string& endpoint, const Keys& keys,
                        const std::string& key, const std::string& routing_id) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  absl::StatusOr<CurveKeyPair> pair = ReadKeyPair(keys.Path(key) + ".key");
  absl::StatusOr<std::string> server = ReadPublicKey(keys.Path("coordinator") + ".pub");
  EXPECT_TRUE(pair.ok() && server.ok());
  socket.set(zmq::sockopt::curve_serverkey, *server);
  socket.set(zmq::sockopt::curve_publickey, pair->public_key);
  socket.set(zmq::sockopt::curve_secretkey, pair->secret_key);
  socket.set(zmq::sockopt::routing_id, routing_id);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::rcvtimeo, 20000);
  socket.connect(endpoint);
  return socket;
}

v1::CoordinatorMessage ReceiveNoHeartbeat(zmq::socket_t& socket) {
  while (true) {
    zmq::message_t frame;
    v1::CoordinatorMessage message;
    if (!socket.recv(frame) || !DecodeFrame(frame, &message).ok()) return {};
    if (!message.has_heartbeat()) return message;
  }
}

TEST(Curve, AnotherAdmittedKeyCannotActAsAWorkerByTakingItsRoutingId) {
  Keys keys;
  RunProgram({"/bin/sh", "-c", absl::StrCat("cat ", keys.Path("other"), ".pub >> ", keys.authorized())});
  // A long --worker-timeout: "good" must still be registered when the takeover
  // lands, and on a loaded machine the old connection can take seconds to end.
  TestCluster cluster({"--curve-key", keys.Path("coordinator") + ".key", "--authorized-keys", keys.authorized(),
                       "--worker-timeout", "120"});
  zmq::context_t context;
  v1::Chunk held;
  uint64_t instance = 0;
  {
    // "good" registers as routing id "w/1", takes a chunk, and disconnects.
    zmq::socket_t good = CurvePeer(context, cluster.worker_endpoint(), keys, "good", "w/1");
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_name("good");
    hello.mutable_hello()->set_slots(1);
    hello.mutable_hello()->add_kernels("echo");
    good.send(EncodeFrame(hello), zmq::send_flags::none);
    v1::CoordinatorMessage welcome = ReceiveNoHeartbeat(good);
    ASSERT_TRUE(welcome.has_welcome()) << welcome.DebugString();
    instance = welcome.welcome().coordinator_instance();
    v1::WorkerMessage credit;
    credit.mutable_ready()->set_credit(1);
    good.send(EncodeFrame(credit), zmq::send_flags::none);
    CommandResult submitted = cluster.Drover({"submit", "--kernel", "echo", "real"});
    ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
    v1::CoordinatorMessage assign = ReceiveNoHeartbeat(good);
    ASSERT_EQ(assign.assign().chunks_size(), 1) << assign.DebugString();
    held = assign.assign().chunks(0);
  }
  // "other" (also admitted) connects with the same routing id and reports that chunk.
  v1::WorkerMessage forged;
  v1::ChunkResult* result = forged.mutable_ready()->add_results();
  result->set_job_id(held.job_id());
  result->set_chunk_index(held.chunk_index());
  result->set_attempt(held.attempt());
  result->set_coordinator_instance(instance);
  result->mutable_outputs()->set_first_index(0);
  result->mutable_outputs()->set_item_count(1);
  result->mutable_outputs()->set_outputs("FORGED");
  result->mutable_outputs()->add_output_sizes(6);
  // Sent until the coordinator has seen it under the taken-over routing id. The
  // ROUTER refuses a routing id still in use, so a connection made before the
  // old one's end was processed is refused: each try after half a second is
  // made on a new connection.
  std::optional<zmq::socket_t> other;
  absl::Time connected = absl::InfinitePast();
  ASSERT_TRUE(WaitUntil([&] {
    if (absl::Now() - connected > absl::Milliseconds(500)) {
      other.emplace(CurvePeer(context, cluster.worker_endpoint(), keys, "other", "w/1"));
      connected = absl::Now();
    }
    other->send(EncodeFrame(forged), zmq::send_flags::dontwait);
    return cluster.coordinator().Log().find("came with another CURVE key") != std::string::npos;
  })) << cluster.coordinator().Log();
  CommandResult status = cluster.Drover({"status", "1"});
  EXPECT_NE(status.out.find("0/1 done"), std::string::npos) << status.out;  // nothing recorded
}

}  // namespace
}  // namespace drover::testing
