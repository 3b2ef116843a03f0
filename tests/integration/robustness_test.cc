// Integration: malformed and foreign messages never crash the coordinator or
// a worker; another protocol version gets a clear refusal; a killed worker's
// chunks are re-run elsewhere and every result is recorded once.
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "absl/strings/str_cat.h"
#include "common/wire.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

TEST(Robustness, GarbageIsDroppedAndAnotherVersionIsRefused) {
  TestCluster cluster;
  zmq::context_t context;
  zmq::socket_t peer(context, zmq::socket_type::dealer);
  peer.set(zmq::sockopt::linger, 0);
  peer.connect(cluster.worker_endpoint());
  peer.send(zmq::buffer(std::string("\xff\xfe garbage \x01", 12)), zmq::send_flags::none);
  peer.send(zmq::str_buffer(""), zmq::send_flags::none);
  peer.send(zmq::str_buffer("a"), zmq::send_flags::sndmore);
  peer.send(zmq::str_buffer("b"), zmq::send_flags::none);

  v1::WorkerMessage hello;
  hello.mutable_hello()->set_slots(1);
  zmq::message_t frame = EncodeFrame(hello);
  v1::WorkerMessage future;
  future.ParseFromArray(frame.data(), static_cast<int>(frame.size()));
  future.set_protocol_version(2);
  peer.send(zmq::buffer(future.SerializeAsString()), zmq::send_flags::none);
  peer.set(zmq::sockopt::rcvtimeo, 20000);
  zmq::message_t reply;
  ASSERT_TRUE(peer.recv(reply));
  v1::CoordinatorMessage refusal;
  ASSERT_TRUE(refusal.ParseFromArray(reply.data(), static_cast<int>(reply.size())));
  EXPECT_NE(refusal.refusal().reason().find("version 2"), std::string::npos)
      << refusal.DebugString();

  // Still serving: a real worker joins and a job runs.
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult r = cluster.Drover({"run", "--kernel", "echo", "ok"});
  EXPECT_EQ(r.out, "ok\n") << r.err;
  EXPECT_TRUE(cluster.coordinator().Running());
}

TEST(Robustness, ASigtermedWorkerWhoseCoordinatorIsGoneExitsSoon) {
  TestCluster cluster({"--heartbeat", "0.5"});
  ChildProcess& worker = cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  cluster.coordinator().Signal(SIGKILL);
  ASSERT_TRUE(cluster.coordinator().Wait().has_value());
  worker.Signal(SIGTERM);
  // It holds nothing: it stops waiting for an answer to its drain after two
  // silent heartbeat intervals and does not linger on its unsent Goodbye.
  std::optional<int> status = worker.Wait(absl::Seconds(4));
  ASSERT_TRUE(status.has_value()) << worker.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << worker.Log();
}

TEST(Robustness, OversizeWorkerMessagesAndRawBytesOnTheClientPortLeaveItServing) {
  TestCluster cluster({"--max-worker-message-mib", "1"});
  {
    zmq::context_t context;
    zmq::socket_t peer(context, zmq::socket_type::dealer);
    peer.set(zmq::sockopt::linger, 0);
    peer.connect(cluster.worker_endpoint());
    std::string big(3 << 20, 'x');  // over the 1 MiB limit: the coordinator drops the connection
    peer.send(zmq::buffer(big), zmq::send_flags::none);
  }
  // Raw bytes at the gRPC port: an HTTP/2 preface followed by nonsense frames,
  // and plain garbage on another connection.
  std::string target = cluster.client_target();
  int port = std::stoi(target.substr(target.rfind(':') + 1));
  for (std::string payload : {std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string(64, '\xff') +
                                  std::string("\x00\x00\x04\x08\x00\x00\x00\x00\x00\x7f\xff\xff\xff", 13),
                              std::string(100000, '\x42')}) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ssize_t ignored = send(fd, payload.data(), payload.size(), MSG_NOSIGNAL);
    (void)ignored;
    close(fd);
  }
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult r = cluster.Drover({"run", "--kernel", "echo", "still serving"});
  EXPECT_EQ(r.out, "still serving\n") << r.err;
  EXPECT_TRUE(cluster.coordinator().Running());
}

TEST(Robustness, AWorkerRefusesACoordinatorOfAnotherVersion) {
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::vector<std::string> argv = {BinPath("drover-worker"), "--coordinator", endpoint, "--slots", "1"};
  if (geteuid() == 0) argv.push_back("--allow-root");
  ChildProcess worker(argv);
  router.set(zmq::sockopt::rcvtimeo, 20000);
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(router, std::back_inserter(frames)));
  ASSERT_EQ(frames.size(), 2u);
  const std::string worker_id = frames[0].to_string();
  // Nonsense first (dropped), then a message of version 9.
  router.send(zmq::buffer(worker_id), zmq::send_flags::sndmore);
  router.send(zmq::str_buffer("\x08\x01\x12"), zmq::send_flags::none);
  v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_worker_id("w1");
  welcome.set_protocol_version(9);
  router.send(zmq::buffer(worker_id), zmq::send_flags::sndmore);
  router.send(zmq::buffer(welcome.SerializeAsString()), zmq::send_flags::none);
  std::optional<int> status = worker.Wait();
  ASSERT_TRUE(status.has_value()) << worker.Log();
  EXPECT_EQ(WEXITSTATUS(*status), 1);
  EXPECT_NE(worker.Log().find("protocol version 9"), std::string::npos) << worker.Log();
}

TEST(Robustness, AKilledWorkersChunksAreRerunAndRecordedOnce) {
  TestCluster cluster({"--worker-timeout", "1", "--heartbeat", "0.2"});
  ChildProcess& doomed = cluster.AddWorker(2, {"--name", "doomed"});
  cluster.AddWorker(2);
  ASSERT_TRUE(cluster.WaitForWorkers(2));
  std::vector<std::string> args = {"submit", "--kernel", "sleep_ms", "--chunk", "2"};
  for (int i = 0; i < 60; ++i) args.push_back("200");  // 3 s of work on 4 slots
  std::string job = Lines(cluster.Drover(args).out).at(0);
  ASSERT_TRUE(WaitUntil([&] { return ChunksHeldBy(cluster, "doomed") > 0; }));
  doomed.Signal(SIGKILL);
  EXPECT_EQ(cluster.Drover({"status", job}).out.find("60/60 done"), std::string::npos) << "finished before the kill";
  CommandResult waited = cluster.Drover({"wait", "--quiet", job});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  // The victim held chunks when it died; they went back and ran elsewhere.
  EXPECT_GT(ChunksRequeuedFromLostWorkers(cluster.coordinator().Log()), 0) << cluster.coordinator().Log();
  CommandResult results = cluster.Drover({"results", job});
  EXPECT_EQ(Lines(results.out), std::vector<std::string>(60, "200"));
  CommandResult status = cluster.Drover({"status", job});
  EXPECT_NE(status.out.find("60/60 done, 0 failed"), std::string::npos) << status.out;
}

}  // namespace
}  // namespace drover::testing
