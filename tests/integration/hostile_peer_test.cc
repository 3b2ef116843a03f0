// Integration: the coordinator trusts nothing from the wire. The test speaks
// the worker protocol over ZeroMQ itself, as an attacker would: results for
// chunks it was never handed are dropped (whether it said Hello or not), a
// Hello out of bounds is refused, and command items with a NUL byte are
// refused at submit.
#include <gtest/gtest.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <zmq.hpp>

#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/wire.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

// A length-delimited protobuf field, encoded by hand.
std::string LengthDelimited(int field, const std::string& contents) {
  std::string out(1, static_cast<char>(field << 3 | 2));
  for (uint64_t n = contents.size(); ; n >>= 7) {
    out.push_back(static_cast<char>((n & 0x7f) | (n >= 0x80 ? 0x80 : 0)));
    if (n < 0x80) break;
  }
  return out + contents;
}

// Sends an encoded drover.v1.SubmitRequest as it is, the way any gRPC client could.
grpc::Status RawSubmit(const std::string& target, const grpc::Slice& encoded) {
  grpc::GenericStub stub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  grpc::CompletionQueue queue;
  grpc::ByteBuffer request(&encoded, 1);
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&context, "/drover.v1.Drover/Submit", request, &queue);
  call->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  call->Finish(&reply, &status, nullptr);
  void* tag = nullptr;
  bool ok = false;
  queue.Next(&tag, &ok);
  return status;
}

// A DEALER that speaks drover's worker protocol by hand.
class Impostor {
 public:
  explicit Impostor(const std::string& endpoint) : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 20000);
    socket_.connect(endpoint);
  }
  void Send(v1::WorkerMessage message) { socket_.send(EncodeFrame(message), zmq::send_flags::none); }
  // The next message from the coordinator that is not a heartbeat.
  v1::CoordinatorMessage Receive() {
    while (true) {
      zmq::message_t frame;
      v1::CoordinatorMessage message;
      if (!socket_.recv(frame) || !DecodeFrame(frame, &message).ok()) return {};
      if (!message.has_heartbeat()) return message;
    }
  }
  // Results for chunks 0..count-1 of `job`, attempt 1, each item's output "FORGED".
  static v1::WorkerMessage ForgedResults(uint64_t job, int count, uint64_t instance) {
    v1::WorkerMessage message;
    for (int i = 0; i < count; ++i) {
      v1::ChunkResult* result = message.mutable_ready()->add_results();
      result->set_job_id(job);
      result->set_chunk_index(static_cast<uint64_t>(i));
      result->set_attempt(1);
      result->set_coordinator_instance(instance);
      result->mutable_outputs()->set_first_index(static_cast<uint64_t>(i));
      result->mutable_outputs()->set_item_count(1);
      result->mutable_outputs()->set_outputs("FORGED");
      result->mutable_outputs()->add_output_sizes(6);
    }
    return message;
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

TEST(HostilePeer, ResultsFromAPeerThatNeverSaidHelloAreDropped) {
  TestCluster cluster;
  CommandResult submitted = cluster.Drover({"submit", "--kernel", "echo", "--chunk", "1", "--range", "0:4"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job = Lines(submitted.out).at(0);
  Impostor rogue(cluster.worker_endpoint());
  rogue.Send(Impostor::ForgedResults(std::stoull(job), 4, 0));
  EXPECT_TRUE(rogue.Receive().has_reregister());  // told it is unknown, nothing more
  CommandResult status = cluster.Drover({"status", job});
  EXPECT_NE(status.out.find("QUEUED"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("0/4 done"), std::string::npos) << status.out;
  EXPECT_EQ(Lines(cluster.Drover({"workers"}).out).size(), 1u);  // the header only: no "rogue" registered
}

TEST(HostilePeer, ARegisteredWorkerCannotReportAnotherWorkersChunks) {
  TestCluster cluster;
  cluster.AddWorker(1, {"--name", "honest"});
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  Impostor rogue(cluster.worker_endpoint());
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_name("rogue");
  hello.mutable_hello()->set_slots(1);
  hello.mutable_hello()->add_kernels("nothing-anyone-runs");  // so it is handed no chunk
  rogue.Send(hello);
  v1::CoordinatorMessage welcome = rogue.Receive();
  ASSERT_TRUE(welcome.has_welcome()) << welcome.DebugString();
  v1::WorkerMessage credit;
  credit.mutable_ready()->set_credit(10);
  rogue.Send(credit);
  ASSERT_TRUE(cluster.WaitForWorkers(2));

  CommandResult submitted =
      cluster.Drover({"submit", "--kernel", "sleep_ms", "--chunk", "1", ":::", "300", "300", "300"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job = Lines(submitted.out).at(0);
  ASSERT_TRUE(WaitUntil([&] { return ChunksHeldBy(cluster, "honest") > 0; }));
  // It knows the coordinator's instance (from its Welcome) and the chunk numbers.
  rogue.Send(Impostor::ForgedResults(std::stoull(job), 3, welcome.welcome().coordinator_instance()));
  EXPECT_EQ(cluster.Drover({"wait", "--quiet", job}).exit_code, 0);
  EXPECT_EQ(Lines(cluster.Drover({"results", job}).out), (std::vector<std::string>{"300", "300", "300"}));
}

TEST(HostilePeer, AHelloOutOfBoundsIsRefused) {
  TestCluster cluster;
  struct Case {
    const char* what;
    v1::Hello hello;
  };
  std::vector<Case> cases(4);
  cases[0] = {"at most 256 bytes", {}};
  cases[0].hello.set_name(std::string(100000, 'n'));
  cases[1] = {"more than the 4096 allowed", {}};
  cases[1].hello.set_slots(4294967295u);
  cases[2] = {"at most 1024 kernels", {}};
  for (int i = 0; i < 100000; ++i) cases[2].hello.add_kernels(absl::StrCat("k", i));
  cases[3] = {"at least one slot", {}};
  cases[3].hello.set_slots(0);
  for (Case& c : cases) {
    if (c.hello.slots() == 0 && c.what != std::string("at least one slot")) c.hello.set_slots(1);
    Impostor peer(cluster.worker_endpoint());
    v1::WorkerMessage message;
    *message.mutable_hello() = c.hello;
    peer.Send(message);
    v1::CoordinatorMessage reply = peer.Receive();
    ASSERT_TRUE(reply.has_refusal()) << c.what << ": " << reply.DebugString();
    EXPECT_NE(reply.refusal().reason().find(c.what), std::string::npos) << reply.refusal().reason();
  }
  EXPECT_EQ(Lines(cluster.Drover({"workers"}).out).size(), 1u);  // none registered
  EXPECT_TRUE(cluster.coordinator().Running());
}

TEST(HostilePeer, ACommandItemWithANulByteIsRefusedAtSubmit) {
  TestCluster cluster;
  cluster.AddWorker(1);
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult r =
      cluster.Drover({"--json", "run", "--each-line", "-", "--", "printf", "[%s]", "{}"}, std::string("a\0nul\n", 6));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("contains a NUL byte"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");  // nothing ran
  // A kernel may take such an item.
  CommandResult kernel = cluster.Drover({"run", "--kernel", "echo", "--each-line", "-"}, std::string("a\0b\n", 4));
  EXPECT_EQ(kernel.exit_code, 0) << kernel.err;
  EXPECT_EQ(kernel.out, std::string("a\0b\n", 4));
}

TEST(HostilePeer, ARequireTakesOneLabelAndTheItemStaysAnItem) {
  TestCluster cluster;
  cluster.AddWorker(1, {"--label", "gpu"});
  ASSERT_TRUE(cluster.WaitForWorkers(1));
  CommandResult r = cluster.Drover({"run", "--kernel", "echo", "--require", "gpu", "a"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "a\n");
}

TEST(HostilePeer, SubmitsOfMillionsOfEmptyItemsAreRefusedBeforeTheyAreParsed) {
  // 33.5 M empty items fit a 64 MiB request; parsed, each would be a 40-byte string.
  if (kAddressSanitizer) {
    GTEST_SKIP() << "under AddressSanitizer, freed memory is held in quarantine: RSS says nothing here";
  }
  TestCluster cluster({"--no-auth"});
  const pid_t coordinator = cluster.coordinator().pid();
  const int64_t rss_before_kb = ProcStatusKb(coordinator, "VmRSS");
  std::string items;
  for (int i = 0; i < 33'500'000; ++i) items.append("\x0a\x00", 2);  // InlineItems.items = ""
  const grpc::Slice encoded(LengthDelimited(
      1, std::string("\x0a\x04" "echo", 6) + LengthDelimited(2, LengthDelimited(2, items))));
  items.clear();
  std::vector<grpc::Status> answers(3);
  std::vector<std::thread> submitters;
  for (grpc::Status& answer : answers) {
    submitters.emplace_back([&] { answer = RawSubmit(cluster.client_target(), encoded); });
  }
  for (std::thread& submitter : submitters) submitter.join();
  for (const grpc::Status& answer : answers) {
    EXPECT_EQ(answer.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(answer.error_message().find("--max-items"), std::string::npos) << answer.error_message();
  }
  // Three requests held as received (64 MiB each), never parsed (about 1.3 GB each).
  const int64_t peak_kb = ProcStatusKb(coordinator, "VmHWM");
  const int64_t rss_after_kb = ProcStatusKb(coordinator, "VmRSS");
  EXPECT_LT(peak_kb, rss_before_kb + 3 * 80 * 1024) << "peak " << peak_kb << " kB, from " << rss_before_kb;
  EXPECT_LT(rss_after_kb, rss_before_kb + 64 * 1024) << "after " << rss_after_kb << " kB";  // given back
  EXPECT_EQ(cluster.Drover({"submit", "--kernel", "echo", "still", "serving"}).exit_code, 0);
}

TEST(HostilePeer, ASubmitTooLargeToReadWithinTheBudgetIsRefusedNamingTheFlag) {
  TestCluster cluster({"--no-auth", "--submit-memory-mib", "16"});
  std::string items;
  for (int i = 0; i < 1'000'000; ++i) items.append("\x0a\x01x", 3);  // ~48 MB to parse, 3 MB to send
  const grpc::Slice encoded(LengthDelimited(
      1, std::string("\x0a\x04" "echo", 6) + LengthDelimited(2, LengthDelimited(2, items))));
  grpc::Status answer = RawSubmit(cluster.client_target(), encoded);
  EXPECT_EQ(answer.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(answer.error_message().find("--submit-memory-mib"), std::string::npos) << answer.error_message();
  // The drover CLI sends such a job as a stream, which the budget does not bound: it is accepted.
  std::string lines;
  for (int i = 0; i < 1'000'000; ++i) lines += "x\n";
  EXPECT_EQ(cluster.Drover({"submit", "--kernel", "echo", "--each-line", "-"}, lines).exit_code, 0);
}

}  // namespace
}  // namespace drover::testing
