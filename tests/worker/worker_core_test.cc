// Tests worker/worker_core.h with a recording link, a fake runner and a
// hand-driven clock: registration and re-registration, both credit ledgers,
// draining, a lost coordinator, work stealing.
#include "worker/worker_core.h"

#include <signal.h>

#include <gtest/gtest.h>

#include <deque>

namespace drover {
namespace {

class FakeLink : public CoordinatorLink {
 public:
  void Send(v1::WorkerMessage& message) override { sent.push_back(message); }
  v1::WorkerMessage Take() {
    if (sent.empty()) {
      ADD_FAILURE() << "nothing was sent";
      return {};
    }
    v1::WorkerMessage message = sent.front();
    sent.pop_front();
    return message;
  }
  std::deque<v1::WorkerMessage> sent;
};

class FakeRunner : public WorkRunner {
 public:
  void Push(std::vector<v1::Chunk> cpu, std::vector<v1::Chunk> io) override {
    for (auto& c : cpu) queued.push_back(c);
    for (auto& c : io) io_queued.push_back(c);
  }
  void CancelJob(uint64_t job_id) override { cancelled.push_back(job_id); }
  std::vector<v1::ChunkStart> TakeStarted() override { return std::exchange(started, {}); }
  void DropAll() override {
    dropped_cpu += queued.size();
    dropped_io += io_queued.size();
    queued.clear();
    io_queued.clear();
    ++drop_alls;
  }
  std::vector<v1::ChunkRef> Steal(uint32_t max_chunks, const std::vector<uint64_t>&) override {
    std::vector<v1::ChunkRef> taken;
    while (!queued.empty() && taken.size() < max_chunks) {
      v1::ChunkRef& ref = taken.emplace_back();
      ref.set_job_id(queued.back().job_id());
      ref.set_chunk_index(queued.back().chunk_index());
      ref.set_attempt(queued.back().attempt());
      queued.pop_back();
      ++stolen;
    }
    return taken;
  }
  // Finishes every queued chunk (CPU and I/O).
  void FinishAll() {
    for (const v1::Chunk& chunk : queued) {
      v1::ChunkResult& r = results.emplace_back();
      r.set_job_id(chunk.job_id());
      r.set_chunk_index(chunk.chunk_index());
    }
    finished_cpu += queued.size();
    finished_io += io_queued.size();
    for (const v1::Chunk& chunk : io_queued) finished_io_items += static_cast<uint64_t>(chunk.inline_().items_size());
    queued.clear();
    io_queued.clear();
  }
  std::vector<v1::ChunkResult> TakeFinished(uint64_t* cpu, uint64_t* io, uint64_t* io_items) override {
    *cpu = std::exchange(finished_cpu, 0) + std::exchange(dropped_cpu, 0) + std::exchange(stolen, 0);
    *io = std::exchange(finished_io, 0) + std::exchange(dropped_io, 0);
    *io_items = std::exchange(finished_io_items, 0);
    return std::exchange(results, {});
  }
  v1::WorkerLoad Load() override { return {}; }

  std::vector<v1::Chunk> queued, io_queued;
  std::vector<v1::ChunkResult> results;
  std::vector<v1::ChunkStart> started;
  std::vector<uint64_t> cancelled;
  uint64_t finished_cpu = 0, finished_io = 0, finished_io_items = 0, dropped_cpu = 0, dropped_io = 0, stolen = 0;
  int drop_alls = 0;
};

class WorkerCoreTest : public ::testing::Test {
 protected:
  WorkerCoreTest() : core_(Identity(), absl::Seconds(10), &link_, &runner_) {}
  ~WorkerCoreTest() override { EXPECT_TRUE(link_.sent.empty()) << link_.sent.size() << " unexpected message(s)"; }

  static WorkerIdentity Identity() {
    WorkerIdentity identity;
    identity.name = "w";
    identity.slots = 2;
    identity.io_capacity = 80;
    identity.kernels = {"echo"};
    return identity;
  }
  static v1::CoordinatorMessage Welcome() {
    v1::CoordinatorMessage m;
    m.mutable_welcome()->set_worker_id("w1");
    m.mutable_welcome()->set_heartbeat_interval_ms(1000);
    return m;
  }
  static v1::CoordinatorMessage Assign(int cpu, int io_calls = 0) {
    static uint64_t next = 0;
    v1::CoordinatorMessage m;
    for (int i = 0; i < cpu; ++i) {
      v1::Chunk* chunk = m.mutable_assign()->add_chunks();
      chunk->set_job_id(1);
      chunk->set_chunk_index(next++);
      chunk->set_attempt(1);
      chunk->set_kernel("echo");
    }
    if (io_calls > 0) {
      v1::Chunk* chunk = m.mutable_assign()->add_chunks();
      chunk->set_job_id(2);
      chunk->set_chunk_index(next++);
      chunk->mutable_grpc()->set_target("t");
      for (int i = 0; i < io_calls; ++i) chunk->mutable_inline_()->add_items("{}");
    }
    return m;
  }
  // Starts and registers; takes the Hello and the first Ready.
  void Register() {
    core_.Start(now_);
    ASSERT_TRUE(link_.Take().has_hello());
    ASSERT_TRUE(core_.OnMessage(Welcome(), now_).ok());
    core_.SendResultsAndCredit(now_);
    v1::WorkerMessage ready = link_.Take();
    ASSERT_TRUE(ready.has_ready());
    EXPECT_EQ(ready.ready().credit(), 2u * (1 + WorkerCore::kMaxPrefetchPerSlot));
    EXPECT_EQ(ready.ready().io_credit(), 80u);
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  FakeLink link_;
  FakeRunner runner_;
  WorkerCore core_;
};

TEST_F(WorkerCoreTest, HelloIsRepeatedWithBackoffUntilWelcome) {
  core_.Start(now_);
  EXPECT_EQ(link_.Take().hello().slots(), 2u);
  now_ += absl::Milliseconds(400);
  core_.OnTick(now_);
  EXPECT_TRUE(link_.sent.empty());
  now_ += absl::Milliseconds(100);
  core_.OnTick(now_);
  EXPECT_TRUE(link_.Take().has_hello());  // 0.5 s
  now_ += absl::Milliseconds(900);
  core_.OnTick(now_);
  EXPECT_TRUE(link_.sent.empty());  // next after 1 s
  now_ += absl::Milliseconds(100);
  core_.OnTick(now_);
  EXPECT_TRUE(link_.Take().has_hello());
}

TEST_F(WorkerCoreTest, CreditIsGrantedBackAsChunksFinishInBothLedgers) {
  Register();
  ASSERT_TRUE(core_.OnMessage(Assign(5, /*io_calls=*/30), now_).ok());
  core_.SendResultsAndCredit(now_);
  EXPECT_TRUE(link_.sent.empty());  // nothing finished: no credit to give (I/O gap under an eighth)
  runner_.FinishAll();
  core_.SendResultsAndCredit(now_);
  v1::WorkerMessage ready = link_.Take();
  EXPECT_EQ(ready.ready().results_size(), 5);
  EXPECT_EQ(ready.ready().credit(), 5u);      // CPU credit back, in chunks
  EXPECT_EQ(ready.ready().io_credit(), 30u);  // I/O credit back, in calls
  EXPECT_EQ(ready.ready().chunks_received(), 6u);
}

TEST_F(WorkerCoreTest, ChunkStartsGoWithTheNextMessageUnlessTheirResultGoesFirst) {
  Register();
  ASSERT_TRUE(core_.OnMessage(Assign(2), now_).ok());
  const v1::Chunk first = runner_.queued[0], second = runner_.queued[1];
  for (const v1::Chunk& chunk : {first, second}) {
    v1::ChunkStart& start = runner_.started.emplace_back();
    start.set_job_id(chunk.job_id());
    start.set_chunk_index(chunk.chunk_index());
    start.set_attempt(chunk.attempt());
    start.set_started_unix_us(absl::ToUnixMicros(now_));
  }
  // The first finishes at once: its start is not sent, the second's is.
  runner_.queued.pop_back();
  runner_.FinishAll();
  core_.SendResultsAndCredit(now_);
  v1::WorkerMessage ready = link_.Take();
  ASSERT_EQ(ready.ready().results_size(), 1);
  ASSERT_EQ(ready.ready().started_size(), 1);
  EXPECT_EQ(ready.ready().started(0).chunk_index(), second.chunk_index());
  EXPECT_EQ(ready.ready().started(0).started_unix_us(), absl::ToUnixMicros(now_));
  // A start with nothing else to send waits for the heartbeat.
  v1::ChunkStart& later = runner_.started.emplace_back();
  later.set_job_id(1);
  later.set_chunk_index(99);
  core_.SendResultsAndCredit(now_);
  EXPECT_TRUE(link_.sent.empty());
  now_ += absl::Seconds(1);
  core_.OnTick(now_);
  v1::WorkerMessage beat = link_.Take();
  ASSERT_EQ(beat.heartbeat().started_size(), 1);
  EXPECT_EQ(beat.heartbeat().started(0).chunk_index(), 99u);
}

TEST_F(WorkerCoreTest, AReregisterDropsHeldWorkAndSaysHelloAgain) {
  Register();
  ASSERT_TRUE(core_.OnMessage(Assign(3), now_).ok());
  v1::CoordinatorMessage again;
  again.mutable_reregister()->set_reason("lost");
  ASSERT_TRUE(core_.OnMessage(again, now_).ok());
  EXPECT_EQ(runner_.drop_alls, 1);
  EXPECT_TRUE(link_.Take().has_hello());
  EXPECT_FALSE(core_.registered());
  core_.SendResultsAndCredit(now_);
  EXPECT_TRUE(link_.sent.empty());  // nothing is reported for a lost registration
  ASSERT_TRUE(core_.OnMessage(Welcome(), now_).ok());
  core_.SendResultsAndCredit(now_);
  v1::WorkerMessage ready = link_.Take();
  EXPECT_EQ(ready.ready().chunks_received(), 0u);  // counted from the new Welcome
  EXPECT_EQ(ready.ready().credit(), 2u * (1 + WorkerCore::kMaxPrefetchPerSlot));  // full credit again
}

TEST_F(WorkerCoreTest, ASilentCoordinatorIsGivenUpOnAndHeartbeatsFlowMeanwhile) {
  Register();
  ASSERT_TRUE(core_.OnMessage(Assign(1), now_).ok());
  now_ += absl::Seconds(1);
  core_.OnTick(now_);
  EXPECT_EQ(link_.Take().heartbeat().chunks_received(), 1u);
  now_ += absl::Seconds(10);
  core_.OnTick(now_);
  EXPECT_TRUE(link_.Take().has_hello());
  EXPECT_EQ(runner_.drop_alls, 1);
  EXPECT_FALSE(core_.registered());
}

TEST_F(WorkerCoreTest, DrainFinishesWhatIsHeldThenEnds) {
  Register();
  ASSERT_TRUE(core_.OnMessage(Assign(2), now_).ok());
  core_.Drain(now_);
  v1::WorkerMessage draining = link_.Take();
  EXPECT_TRUE(draining.ready().draining());
  EXPECT_EQ(draining.ready().chunks_received(), 2u);  // else the coordinator thinks Assigns were lost
  v1::CoordinatorMessage drain;
  drain.mutable_drain();
  ASSERT_TRUE(core_.OnMessage(drain, now_).ok());
  EXPECT_FALSE(core_.DrainDone(now_));  // two chunks still held
  runner_.FinishAll();
  core_.SendResultsAndCredit(now_);
  v1::WorkerMessage last = link_.Take();
  EXPECT_EQ(last.ready().results_size(), 2);
  EXPECT_EQ(last.ready().credit(), 0u);  // no new credit while draining
  EXPECT_TRUE(core_.DrainDone(now_));
  core_.SayGoodbye("drained");
  EXPECT_EQ(link_.Take().goodbye().reason(), "drained");
}

TEST_F(WorkerCoreTest, ATaskStoppedWithADrainingWorkerGivesItsChunkBackInsteadOfFailing) {
  Register();
  ASSERT_TRUE(core_.OnMessage(Assign(2), now_).ok());
  core_.Drain(now_);  // SIGTERM to the worker; Slurm or systemd sent one to its tasks too
  ASSERT_TRUE(link_.Take().ready().draining());
  runner_.FinishAll();
  runner_.results[0].mutable_outputs()->add_tasks()->set_signal(SIGTERM);  // killed with the worker
  runner_.results[1].mutable_outputs()->add_tasks()->set_signal(SIGSEGV);  // failed on its own
  core_.SendResultsAndCredit(now_);
  v1::WorkerMessage last = link_.Take();
  ASSERT_EQ(last.ready().returned_size(), 1);
  ASSERT_EQ(last.ready().results_size(), 1);
  EXPECT_EQ(last.ready().results(0).outputs().tasks(0).signal(), SIGSEGV);
  EXPECT_NE(last.ready().returned(0).chunk_index(), last.ready().results(0).chunk_index());
}

TEST_F(WorkerCoreTest, ATaskKilledBySigtermWhileNotDrainingIsAFailureOnceTheWorkerIsNotStoppedToo) {
  Register();
  ASSERT_TRUE(core_.OnMessage(Assign(1), now_).ok());
  runner_.FinishAll();
  runner_.results[0].mutable_outputs()->add_tasks()->set_signal(SIGTERM);  // someone killed the task alone
  core_.SendResultsAndCredit(now_);
  EXPECT_TRUE(link_.sent.empty());  // it waits for a stop of the worker that may follow
  now_ += WorkerCore::kStopSignalGrace;
  core_.SendResultsAndCredit(now_);
  v1::WorkerMessage ready = link_.Take();
  EXPECT_EQ(ready.ready().returned_size(), 0);
  EXPECT_EQ(ready.ready().results_size(), 1);
}

TEST_F(WorkerCoreTest, ATaskKilledJustBeforeTheWorkersOwnStopGivesItsChunkBack) {
  Register();
  ASSERT_TRUE(core_.OnMessage(Assign(1), now_).ok());
  runner_.FinishAll();
  runner_.results[0].mutable_outputs()->add_tasks()->set_signal(SIGTERM);  // Slurm signalled the task first
  core_.SendResultsAndCredit(now_);
  EXPECT_TRUE(link_.sent.empty());
  now_ += WorkerCore::kStopSignalGrace / 2;
  core_.Drain(now_);  // then the worker
  ASSERT_TRUE(link_.Take().ready().draining());
  core_.SendResultsAndCredit(now_);
  v1::WorkerMessage last = link_.Take();
  EXPECT_EQ(last.ready().results_size(), 0);
  ASSERT_EQ(last.ready().returned_size(), 1);
  EXPECT_TRUE(core_.DrainDone(now_ + absl::Seconds(3)));
}

TEST_F(WorkerCoreTest, ADrainWithTheCoordinatorGoneEndsWithoutWaitingForIt) {
  Register();
  core_.Drain(now_);
  ASSERT_TRUE(link_.Take().ready().draining());
  EXPECT_FALSE(core_.DrainDone(now_));  // the answer may still come
  now_ += absl::Seconds(3);              // two heartbeat intervals of silence
  EXPECT_TRUE(core_.DrainDone(now_));
}

TEST_F(WorkerCoreTest, AStealGivesBackUnstartedChunksAndTheirCredit) {
  Register();
  ASSERT_TRUE(core_.OnMessage(Assign(4), now_).ok());
  v1::CoordinatorMessage steal;
  steal.mutable_steal()->set_steal_id(9);
  steal.mutable_steal()->set_max_chunks(3);
  ASSERT_TRUE(core_.OnMessage(steal, now_).ok());
  v1::WorkerMessage answer = link_.Take();
  EXPECT_EQ(answer.ready().answered_steal(), 9u);
  ASSERT_EQ(answer.ready().returned_size(), 3);
  EXPECT_EQ(answer.ready().returned(0).chunk_index(), answer.ready().returned(2).chunk_index() + 2);  // latest first
  core_.SendResultsAndCredit(now_);
  EXPECT_EQ(link_.Take().ready().credit(), 3u);  // room for three more
  EXPECT_EQ(core_.held(), 1u);
}

TEST_F(WorkerCoreTest, ARefusalEndsTheWorker) {
  core_.Start(now_);
  link_.Take();
  v1::CoordinatorMessage refusal;
  refusal.mutable_refusal()->set_reason("a worker needs at least one slot");
  absl::Status status = core_.OnMessage(refusal, now_);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("at least one slot"), std::string::npos);
}

}  // namespace
}  // namespace drover
