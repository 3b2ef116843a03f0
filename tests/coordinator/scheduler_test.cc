// Tests coordinator/scheduler.h with a recording outbox and a hand-driven
// clock: registration, credit-bounded dispatch, worker loss, duplicates,
// unknown peers and kernels.
#include "coordinator/scheduler.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "common/items.h"

namespace drover {
namespace {

// Records what the scheduler sends. Tests take messages in order and check
// that nothing unexpected is left.
class FakeOutbox : public WorkerOutbox {
 public:
  void Send(const std::string& peer, v1::CoordinatorMessage& message) override {
    sent_.emplace_back(peer, message);
  }
  // The next message sent to `peer` (test fails if there is none).
  v1::CoordinatorMessage Take(const std::string& peer) {
    for (auto it = sent_.begin(); it != sent_.end(); ++it) {
      if (it->first == peer) {
        v1::CoordinatorMessage message = it->second;
        sent_.erase(it);
        return message;
      }
    }
    ADD_FAILURE() << "nothing was sent to " << peer;
    return {};
  }
  bool empty() const { return sent_.empty(); }
  size_t size() const { return sent_.size(); }

 private:
  std::deque<std::pair<std::string, v1::CoordinatorMessage>> sent_;
};

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() : scheduler_(Options(), &outbox_, nullptr, results_.get()) {}
  ~SchedulerTest() override {
    EXPECT_TRUE(outbox_.empty()) << outbox_.size() << " unexpected message(s)";
    EXPECT_TRUE(scheduler_.CheckInvariants().ok()) << scheduler_.CheckInvariants();
  }

  static SchedulerOptions Options() {
    SchedulerOptions options;
    options.heartbeat_interval = absl::Seconds(1);
    options.worker_timeout = absl::Seconds(5);
    return options;
  }

  void Register(const std::string& peer, uint32_t slots, std::vector<std::string> kernels = {"echo"},
                std::vector<std::string> labels = {}) {
    v1::WorkerMessage message;
    message.mutable_hello()->set_name(peer);
    message.mutable_hello()->set_slots(slots);
    for (const auto& k : kernels) message.mutable_hello()->add_kernels(k);
    for (const auto& l : labels) message.mutable_hello()->add_labels(l);
    scheduler_.OnWorkerMessage(peer, message, now_);
    v1::CoordinatorMessage welcome = outbox_.Take(peer);
    ASSERT_TRUE(welcome.has_welcome());
  }

  void Credit(const std::string& peer, uint32_t credit) {
    v1::WorkerMessage message;
    message.mutable_ready()->set_credit(credit);
    scheduler_.OnWorkerMessage(peer, message, now_);
  }

  uint64_t SubmitRange(int64_t items, uint32_t chunk, std::string kernel = "echo") {
    v1::JobSpec spec;
    spec.set_kernel(kernel);
    spec.mutable_items()->mutable_range()->set_end(items);
    spec.set_chunk_size(chunk);
    absl::StatusOr<uint64_t> id = scheduler_.Submit(spec, now_);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }

  // Sends the (empty-output) result of every chunk in `assign`, each measured
  // at `run_time` by the worker.
  void Complete(const std::string& peer, const v1::Assign& assign,
                absl::Duration run_time = absl::Milliseconds(1)) {
    v1::WorkerMessage message;
    for (const v1::Chunk& chunk : assign.chunks()) {
      v1::ChunkResult* result = message.mutable_ready()->add_results();
      result->set_run_ns(static_cast<uint64_t>(absl::ToInt64Nanoseconds(run_time)));
      result->set_job_id(chunk.job_id());
      result->set_chunk_index(chunk.chunk_index());
      result->set_attempt(chunk.attempt());
      result->mutable_outputs()->set_first_index(chunk.first_index());
      result->mutable_outputs()->set_item_count(
          static_cast<uint32_t>(chunk.range().end() - chunk.range().start()));
    }
    scheduler_.OnWorkerMessage(peer, message, now_);
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  FakeOutbox outbox_;
  std::unique_ptr<ResultStore> results_ = ResultStore::InMemory();
  Scheduler scheduler_;
};

TEST_F(SchedulerTest, DispatchNeverExceedsAWorkersCredit) {
  Register("a", 4);
  uint64_t job = SubmitRange(100, 10);
  scheduler_.Dispatch(now_);
  EXPECT_TRUE(outbox_.empty());  // no credit yet
  Credit("a", 3);
  scheduler_.Dispatch(now_);
  v1::CoordinatorMessage assign = outbox_.Take("a");
  ASSERT_EQ(assign.assign().chunks_size(), 3);
  EXPECT_EQ(assign.assign().chunks(0).job_id(), job);
  EXPECT_EQ(assign.assign().chunks(2).range().start(), 20);
  scheduler_.Dispatch(now_);
  EXPECT_TRUE(outbox_.empty());  // credit used up
}

TEST_F(SchedulerTest, FasterWorkersGetMoreWork) {
  Register("fast", 1);
  Register("slow", 1);
  uint64_t job = SubmitRange(10, 1);
  Credit("fast", 1);
  Credit("slow", 1);
  scheduler_.Dispatch(now_);
  v1::Assign slow_work = outbox_.Take("slow").assign();
  v1::Assign fast_work = outbox_.Take("fast").assign();
  while (fast_work.chunks_size() > 0) {
    Complete("fast", fast_work);
    Credit("fast", 1);
    scheduler_.Dispatch(now_);
    if (outbox_.empty()) break;
    fast_work = outbox_.Take("fast").assign();
  }
  Complete("slow", slow_work);
  absl::StatusOr<v1::JobStatus> status = scheduler_.GetJob(job);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state(), v1::JOB_STATE_SUCCEEDED);
  std::vector<v1::WorkerInfo> workers = scheduler_.ListWorkers();
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(workers[0].name(), "fast");
  EXPECT_EQ(workers[0].chunks_done(), 9u);
  EXPECT_EQ(workers[1].chunks_done(), 1u);
}

TEST_F(SchedulerTest, ALoopHeldUpByASlowDiskDoesNotLoseItsWorkers) {
  Register("a", 1);
  scheduler_.OnTick(now_);
  now_ += absl::Seconds(8);  // stuck in an fsync: no tick, no message read
  scheduler_.OnTick(now_);
  EXPECT_EQ(scheduler_.ListWorkers().size(), 1u);
  for (int i = 0; i < 60; ++i) {  // then silent for real, ticking every 100 ms
    now_ += absl::Milliseconds(100);
    scheduler_.OnTick(now_);
  }
  EXPECT_TRUE(scheduler_.ListWorkers().empty());
  while (!outbox_.empty()) EXPECT_TRUE(outbox_.Take("a").has_heartbeat());
}

TEST_F(SchedulerTest, ASilentWorkerIsLostAndItsChunksGoToAnother) {
  Register("a", 2);
  Register("b", 2);
  uint64_t job = SubmitRange(2, 1);
  Credit("a", 2);
  scheduler_.Dispatch(now_);
  v1::Assign held_by_a = outbox_.Take("a").assign();
  ASSERT_EQ(held_by_a.chunks_size(), 2);

  // b keeps talking, a goes silent past the timeout.
  now_ += absl::Seconds(3);
  Credit("b", 2);
  now_ += absl::Seconds(3);
  scheduler_.OnTick(now_);
  EXPECT_TRUE(outbox_.Take("b").has_heartbeat());
  scheduler_.Dispatch(now_);
  v1::Assign moved = outbox_.Take("b").assign();
  ASSERT_EQ(moved.chunks_size(), 2);
  EXPECT_EQ(moved.chunks(0).attempt(), 2u);
  Complete("b", moved);

  // a wakes up (SIGCONT) and reports the same chunks: dropped as duplicates,
  // and a is told to register again.
  Complete("a", held_by_a);
  EXPECT_TRUE(outbox_.Take("a").has_reregister());
  absl::StatusOr<v1::JobStatus> status = scheduler_.GetJob(job);
  EXPECT_EQ(status->done_items(), 2u);
  EXPECT_EQ(status->state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(SchedulerTest, GoodbyeRequeuesAtOnce) {
  Register("a", 1);
  SubmitRange(1, 1);
  Credit("a", 1);
  scheduler_.Dispatch(now_);
  outbox_.Take("a");
  v1::WorkerMessage bye;
  bye.mutable_goodbye()->set_reason("stopping");
  scheduler_.OnWorkerMessage("a", bye, now_);
  EXPECT_TRUE(scheduler_.ListWorkers().empty());
  Register("b", 1);
  Credit("b", 1);
  scheduler_.Dispatch(now_);
  EXPECT_EQ(outbox_.Take("b").assign().chunks_size(), 1);
}

TEST_F(SchedulerTest, OnlyWorkersOfferingTheKernelGetItsChunks) {
  Register("plain", 1, {"echo"});
  Register("special", 1, {"echo", "reverse"});
  SubmitRange(1, 1, "reverse");
  Credit("plain", 1);
  scheduler_.Dispatch(now_);
  EXPECT_TRUE(outbox_.empty());
  Credit("special", 1);
  scheduler_.Dispatch(now_);
  EXPECT_EQ(outbox_.Take("special").assign().chunks_size(), 1);
}

TEST_F(SchedulerTest, RequiredLabelsPickTheWorkers) {
  Register("cpu", 1);
  Register("gpu", 2, {"echo"}, {"gpu=a100", "zone=b"});
  v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(2);
  spec.add_require("gpu");
  spec.add_require("zone=b");
  ASSERT_TRUE(scheduler_.Submit(spec, now_).ok());
  Credit("cpu", 2);
  scheduler_.Dispatch(now_);
  EXPECT_TRUE(outbox_.empty());
  Credit("gpu", 2);
  scheduler_.Dispatch(now_);
  EXPECT_EQ(outbox_.Take("gpu").assign().chunks_size(), 2);

  spec.set_require(1, "zone=c");
  absl::StatusOr<uint64_t> none = scheduler_.Submit(spec, now_);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("no connected worker has the labels gpu, zone=c"), std::string::npos);
}

TEST(SchedulerLimits, OversizeJobsAreRefusedWithTheLimitNamed) {
  FakeOutbox outbox;
  SchedulerOptions options;
  options.item_limits.max_items = 2;
  options.item_limits.max_item_bytes = 4;
  options.max_command_bytes = 16;
  Scheduler scheduler(options, &outbox);
  const absl::Time now = absl::FromUnixSeconds(1);
  v1::JobSpec spec;
  spec.set_kernel("echo");
  for (const char* item : {"a", "b", "c"}) spec.mutable_items()->mutable_inline_()->add_items(item);
  EXPECT_NE(scheduler.Submit(spec, now).status().message().find("--max-items"), std::string::npos);
  spec.mutable_items()->mutable_inline_()->clear_items();
  spec.mutable_items()->mutable_inline_()->add_items("toolong");
  EXPECT_NE(scheduler.Submit(spec, now).status().message().find("--max-item-bytes"), std::string::npos);
  v1::JobSpec command;
  command.mutable_items()->mutable_range()->set_end(1);
  command.mutable_command()->add_argv("a-rather-long-program-name");
  EXPECT_NE(scheduler.Submit(command, now).status().message().find("--max-command-bytes"), std::string::npos);
  spec.mutable_items()->mutable_inline_()->set_items(0, "ok");
  EXPECT_TRUE(scheduler.Submit(spec, now).ok());
  EXPECT_TRUE(outbox.empty());
}

TEST_F(SchedulerTest, UnknownKernelIsRefusedWithTheKernelsOnOffer) {
  Register("a", 1, {"echo", "noop"});
  v1::JobSpec spec;
  spec.set_kernel("nope");
  spec.mutable_items()->mutable_range()->set_end(1);
  absl::StatusOr<uint64_t> id = scheduler_.Submit(spec, now_);
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(id.status().message().find("echo, noop"), std::string::npos) << id.status();
}

TEST_F(SchedulerTest, CancelTellsTheWorkersHoldingItsChunks) {
  Register("a", 1);
  Register("b", 1);
  uint64_t job = SubmitRange(4, 1);
  Credit("a", 4);
  scheduler_.Dispatch(now_);
  outbox_.Take("a");
  ASSERT_TRUE(scheduler_.Cancel(job, now_).ok());
  EXPECT_EQ(outbox_.Take("a").cancel().job_id(), job);  // b held nothing: told nothing
  EXPECT_EQ(scheduler_.Cancel(job, now_).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_.Cancel(99, now_).status().code(), absl::StatusCode::kNotFound);
}

// Results streams wait on this count to never hold back a job's last results.
TEST_F(SchedulerTest, TheEndedCountGrowsWhenAJobEndsByItsLastResultOrACancel) {
  Register("a", 1);
  const uint64_t finishing = SubmitRange(4, 2);
  const uint64_t cancelled = SubmitRange(4, 2);
  EXPECT_EQ(scheduler_.jobs_ended_count(), 0u);
  Credit("a", 1);
  scheduler_.Dispatch(now_);
  v1::CoordinatorMessage first = outbox_.Take("a");
  ASSERT_EQ(first.assign().chunks(0).job_id(), finishing);
  Complete("a", first.assign());
  EXPECT_EQ(scheduler_.jobs_ended_count(), 0u);  // a result, not the job's last
  Credit("a", 1);
  scheduler_.Dispatch(now_);
  v1::CoordinatorMessage second = outbox_.Take("a");
  ASSERT_EQ(second.assign().chunks(0).job_id(), finishing);
  Complete("a", second.assign());
  EXPECT_EQ(scheduler_.jobs_ended_count(), 1u);
  ASSERT_TRUE(scheduler_.Cancel(cancelled, now_).ok());
  EXPECT_EQ(scheduler_.jobs_ended_count(), 2u);
  EXPECT_FALSE(scheduler_.Cancel(cancelled, now_).ok());  // ended already: counted once
  EXPECT_EQ(scheduler_.jobs_ended_count(), 2u);
}

TEST_F(SchedulerTest, WrongProtocolVersionIsRefused) {
  scheduler_.OnWrongVersion("old", "peer speaks drover protocol version 7");
  v1::CoordinatorMessage refusal = outbox_.Take("old");
  EXPECT_NE(refusal.refusal().reason().find("version 7"), std::string::npos);
  EXPECT_TRUE(scheduler_.ListWorkers().empty());
}

TEST_F(SchedulerTest, HeartbeatsGoToIdleWorkers) {
  Register("a", 1);
  now_ += absl::Milliseconds(500);
  scheduler_.OnTick(now_);
  EXPECT_TRUE(outbox_.empty());
  now_ += absl::Milliseconds(600);
  scheduler_.OnTick(now_);
  EXPECT_TRUE(outbox_.Take("a").has_heartbeat());
}

TEST_F(SchedulerTest, ReaderLeavingAStreamJobCancelsIt) {
  Register("a", 1);
  v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(3);
  spec.set_stream_results(true);
  uint64_t job = *scheduler_.Submit(spec, now_);
  ASSERT_TRUE(scheduler_.AttachReader(job).ok());
  scheduler_.ReaderGone(job, now_);
  EXPECT_EQ(scheduler_.GetJob(job)->state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(SchedulerTest, AssignsLostInTransitAreRequeued) {
  Register("a", 2);
  Register("b", 2);
  SubmitRange(2, 1);
  Credit("a", 2);
  scheduler_.Dispatch(now_);
  outbox_.Take("a");  // this Assign never reaches the worker (a reconnect dropped it)
  for (int tick = 0; tick < 5; ++tick) {
    now_ += absl::Seconds(1);
    scheduler_.OnTick(now_);
    EXPECT_TRUE(outbox_.Take("a").has_heartbeat());
    EXPECT_TRUE(outbox_.Take("b").has_heartbeat());
    v1::WorkerMessage beat;
    beat.mutable_heartbeat()->set_chunks_received(0);
    scheduler_.OnWorkerMessage("a", beat, now_);
    Credit("b", 0);
    if (scheduler_.ListWorkers().size() == 1) break;
  }
  ASSERT_EQ(scheduler_.ListWorkers().size(), 1u);  // a was dropped...
  EXPECT_TRUE(outbox_.Take("a").has_reregister());  // ...and told to register again
  Credit("b", 2);
  scheduler_.Dispatch(now_);
  EXPECT_EQ(outbox_.Take("b").assign().chunks_size(), 2);  // its chunks moved
}

TEST_F(SchedulerTest, AMalformedResultSendsTheChunkAgain) {
  Register("a", 1);
  uint64_t job = SubmitRange(4, 2);
  Credit("a", 1);
  scheduler_.Dispatch(now_);
  v1::Assign assign = outbox_.Take("a").assign();
  v1::WorkerMessage bad;
  v1::ChunkResult* result = bad.mutable_ready()->add_results();
  result->set_job_id(job);
  result->set_chunk_index(0);
  result->set_attempt(assign.chunks(0).attempt());
  result->mutable_outputs()->set_item_count(99);
  bad.mutable_ready()->set_credit(1);
  scheduler_.OnWorkerMessage("a", bad, now_);
  scheduler_.Dispatch(now_);
  v1::Assign again = outbox_.Take("a").assign();
  ASSERT_GE(again.chunks_size(), 1);
  EXPECT_EQ(again.chunks(0).chunk_index(), 0u);
  EXPECT_EQ(again.chunks(0).attempt(), 2u);
}

TEST_F(SchedulerTest, ResultsForAnotherCoordinatorInstanceAreDropped) {
  Register("a", 1);
  uint64_t job = SubmitRange(1, 1);
  Credit("a", 1);
  scheduler_.Dispatch(now_);
  v1::Assign assign = outbox_.Take("a").assign();
  assign.mutable_chunks(0)->set_coordinator_instance(12345);  // as if from before a restart
  v1::WorkerMessage message;
  v1::ChunkResult* result = message.mutable_ready()->add_results();
  result->set_job_id(job);
  result->set_chunk_index(0);
  result->set_attempt(1);
  result->set_coordinator_instance(12345);
  result->mutable_outputs()->set_item_count(1);
  scheduler_.OnWorkerMessage("a", message, now_);
  EXPECT_EQ(scheduler_.GetJob(job)->done_items(), 0u);
}

TEST_F(SchedulerTest, AStreamJobNobodyReadsIsCancelled) {
  v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(3);
  spec.set_stream_results(true);
  uint64_t job = *scheduler_.Submit(spec, now_);
  now_ += absl::Seconds(31);
  scheduler_.OnTick(now_);
  EXPECT_EQ(scheduler_.GetJob(job)->state(), v1::JOB_STATE_CANCELLED);
}

// ---- durability, restore and drain (a fake journal that can fail) ----

class FakeJournal : public JournalSink {
 public:
  absl::Status Append(const v1::JournalRecord& record) override {
    if (refuse_appends) return absl::InvalidArgumentError("a journal record of 2 GiB is over the limit");
    pending.push_back(record);
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    if (fail) return absl::ResourceExhaustedError("disk full");
    for (auto& r : pending) durable.push_back(r);
    pending.clear();
    return absl::OkStatus();
  }
  bool has_pending() const override { return !pending.empty(); }
  void DiscardPending() override { pending.clear(); }
  uint64_t size_bytes() const override {
    uint64_t bytes = 0;
    for (const auto& r : durable) bytes += r.ByteSizeLong();
    return bytes;
  }
  absl::Status Rewrite(const std::function<bool(v1::JournalRecord*)>& next) override {
    durable.clear();
    v1::JournalRecord record;
    while (next(&record)) durable.push_back(std::exchange(record, {}));
    return absl::OkStatus();
  }
  bool fail = false;
  bool refuse_appends = false;
  std::vector<v1::JournalRecord> pending, durable;
};

class DurableSchedulerTest : public SchedulerTest {
 protected:
  DurableSchedulerTest() : durable_(Options(), &outbox_, &journal_) {}
  FakeJournal journal_;
  Scheduler durable_;
};

TEST_F(DurableSchedulerTest, ASubmitSentAgainWithItsKeyMakesOneJobAcrossARestart) {
  v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(3);
  absl::StatusOr<uint64_t> first = durable_.Submit(spec, now_, "key-1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*durable_.Submit(spec, now_, "key-1"), *first);  // the answer was lost; the retry
  EXPECT_NE(*durable_.Submit(spec, now_, "key-2"), *first);
  EXPECT_NE(*durable_.Submit(spec, now_), *durable_.Submit(spec, now_));  // no key: no check
  EXPECT_EQ(durable_.ListJobs().size(), 4u);
  EXPECT_FALSE(durable_.Submit(spec, now_, std::string(200, 'k')).ok());

  Scheduler restarted(Options(), &outbox_, &journal_);
  restarted.Restore(journal_.durable, now_);
  EXPECT_EQ(*restarted.Submit(spec, now_, "key-1"), *first);
  ASSERT_TRUE(restarted.Cancel(*first, now_).ok());
  ASSERT_TRUE(restarted.Forget({*first}, absl::ZeroDuration(), now_).ok());
  EXPECT_NE(*restarted.Submit(spec, now_, "key-1"), *first);  // forgotten with its job
}

TEST_F(DurableSchedulerTest, IdsOfForgottenJobsAreNeverGivenAgainAfterACompactionAndARestart) {
  v1::JobSpec big;
  big.set_kernel("echo");
  for (int i = 0; i < 5000; ++i) big.mutable_items()->mutable_inline_()->add_items("item-item");
  v1::JobSpec small = big;
  small.mutable_items()->mutable_inline_()->mutable_items()->DeleteSubrange(1, 4999);
  const uint64_t kept = *durable_.Submit(small, now_);
  const uint64_t last = *durable_.Submit(big, now_);  // its forgotten record outweighs the live one
  ASSERT_TRUE(durable_.Cancel(last, now_).ok());
  ASSERT_TRUE(durable_.Forget({last}, absl::ZeroDuration(), now_).ok());
  ASSERT_EQ(journal_.durable.size(), 2u);  // compacted: the next id, then the kept job
  EXPECT_EQ(journal_.durable[0].next_job_id(), last + 1);
  Scheduler restarted(Options(), &outbox_, &journal_);
  restarted.Restore(journal_.durable, now_);
  EXPECT_TRUE(restarted.GetJob(kept).ok());
  EXPECT_EQ(*restarted.Submit(big, now_), last + 1);
}

TEST_F(DurableSchedulerTest, ASubmitWhoseRecordIsRefusedIsRefusedAndTooManyRetriesToo) {
  v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(3);
  journal_.refuse_appends = true;
  absl::StatusOr<uint64_t> refused = durable_.Submit(spec, now_);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);  // never "OK" with nothing journaled
  EXPECT_TRUE(durable_.ListJobs().empty());
  journal_.refuse_appends = false;
  spec.set_retries(kMaxRetries + 1);
  EXPECT_NE(durable_.Submit(spec, now_).status().message().find("retries 101 is too many"), std::string::npos);
  spec.set_retries(kMaxRetries);
  EXPECT_TRUE(durable_.Submit(spec, now_).ok());
}

TEST_F(DurableSchedulerTest, ACancelThatCannotBeMadeDurableIsRefusedAndTheJobRuns) {
  v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(4);
  uint64_t job = *durable_.Submit(spec, now_);
  journal_.fail = true;
  absl::StatusOr<v1::JobStatus> refused = durable_.Cancel(job, now_);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(durable_.GetJob(job)->state(), v1::JOB_STATE_QUEUED);  // not cancelled in memory either
  EXPECT_TRUE(journal_.pending.empty());                           // nor written later
  journal_.fail = false;
  ASSERT_TRUE(durable_.Cancel(job, now_).ok());
  ASSERT_EQ(journal_.durable.size(), 2u);
  EXPECT_TRUE(journal_.durable[1].has_cancelled());
  EXPECT_EQ(durable_.GetJob(job)->state(), v1::JOB_STATE_CANCELLED);
}

TEST_F(DurableSchedulerTest, ASubmitThatCannotBeMadeDurableIsRefused) {
  v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(4);
  journal_.fail = true;
  EXPECT_EQ(durable_.Submit(spec, now_).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(durable_.ListJobs().empty());
}

TEST_F(SchedulerTest, RestoreBringsBackJobsResultsAndCancellations) {
  v1::JobSpec kept;
  kept.set_kernel("echo");
  kept.mutable_items()->mutable_range()->set_end(4);
  kept.set_chunk_size(2);
  v1::JobSpec streamed = kept;
  streamed.set_stream_results(true);
  std::vector<v1::JournalRecord> records(5);
  records[0].mutable_submitted()->set_job_id(3);
  *records[0].mutable_submitted()->mutable_spec() = kept;
  records[1].mutable_cancelled()->set_job_id(99);  // a job never submitted: ignored
  records[2].mutable_submitted()->set_job_id(4);
  *records[2].mutable_submitted()->mutable_spec() = kept;
  records[3].mutable_cancelled()->set_job_id(4);
  records[4].mutable_submitted()->set_job_id(5);
  *records[4].mutable_submitted()->mutable_spec() = streamed;  // its client is gone: cancelled
  // Job 3's chunk of items 2..3 is in the result store.
  v1::ChunkOutputs done;
  done.set_first_index(2);
  done.set_item_count(2);
  done.set_outputs("23");
  done.add_output_sizes(1);
  done.add_output_sizes(1);
  results_->Append(3, done);
  ASSERT_TRUE(results_->Sync().ok());
  scheduler_.Restore(records, now_);
  EXPECT_EQ(scheduler_.GetJob(3)->done_items(), 2u);
  EXPECT_EQ(scheduler_.TaskResult(3, 3)->outputs(), "23");
  EXPECT_EQ(scheduler_.GetJob(4)->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(scheduler_.GetJob(5)->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(SubmitRange(1, 1), 6u);  // ids go on after the journal's
  // Only the items not done run again.
  Register("a", 4);
  Credit("a", 10);
  scheduler_.Dispatch(now_);
  v1::Assign assign = outbox_.Take("a").assign();
  std::vector<std::pair<uint64_t, int64_t>> sent;
  for (const v1::Chunk& chunk : assign.chunks()) sent.emplace_back(chunk.job_id(), chunk.range().start());
  EXPECT_EQ(sent, (std::vector<std::pair<uint64_t, int64_t>>{{3, 0}, {6, 0}}));
}

TEST_F(SchedulerTest, AWorkersIdIsItsNameUniqueAmongTheRegistered) {
  auto hello_as = [&](const std::string& peer, const std::string& name) {
    v1::WorkerMessage message;
    message.mutable_hello()->set_name(name);
    message.mutable_hello()->set_slots(1);
    message.mutable_hello()->add_kernels("echo");
    scheduler_.OnWorkerMessage(peer, message, now_);
    return outbox_.Take(peer).welcome().worker_id();
  };
  EXPECT_EQ(hello_as("p1", "node7"), "node7");
  EXPECT_EQ(hello_as("p2", "node7"), "node7-2");  // a second worker with that name
  EXPECT_EQ(hello_as("p1", "node7"), "node7");    // registering again keeps it
  v1::WorkerMessage bye;
  bye.mutable_goodbye()->set_reason("done");
  scheduler_.OnWorkerMessage("p1", bye, now_);
  EXPECT_EQ(hello_as("p3", "node7"), "node7");    // free again once its worker left
  // A job can ask for one worker by its id.
  v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(2);
  spec.add_require("worker=node7-2");
  ASSERT_TRUE(scheduler_.Submit(spec, now_).ok());
  Credit("p3", 2);
  Credit("p2", 2);
  scheduler_.Dispatch(now_);
  EXPECT_TRUE(outbox_.Take("p2").has_assign());
  EXPECT_TRUE(scheduler_.DrainWorker("node7-2", now_).ok());
  EXPECT_TRUE(outbox_.Take("p2").has_drain());
  EXPECT_EQ(scheduler_.DrainWorker("w1", now_).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, ADrainedWorkerGetsNothingNewAndItsGoodbyeMovesNothing) {
  Register("a", 1);
  Register("b", 1);
  SubmitRange(4, 1);
  Credit("a", 10);
  scheduler_.Dispatch(now_);
  v1::Assign held = outbox_.Take("a").assign();
  ASSERT_EQ(held.chunks_size(), 1);
  absl::StatusOr<v1::WorkerInfo> info = scheduler_.DrainWorker("a", now_);  // its name is its id
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->draining());
  EXPECT_TRUE(outbox_.Take("a").has_drain());
  Complete("a", held);
  Credit("a", 10);  // ignored while draining
  scheduler_.Dispatch(now_);
  EXPECT_TRUE(outbox_.empty());
  v1::WorkerMessage bye;
  bye.mutable_goodbye()->set_reason("drained");
  scheduler_.OnWorkerMessage("a", bye, now_);
  Credit("b", 10);
  scheduler_.Dispatch(now_);
  v1::Assign rest = outbox_.Take("b").assign();
  EXPECT_EQ(rest.chunks(0).attempt(), 1u);  // the drained chunk was done, not re-run
  EXPECT_EQ(scheduler_.DrainWorker("nope", now_).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, CpusAboveEveryWorkersSlotsAreRefusedAtSubmit) {
  Register("a", 2);
  v1::JobSpec spec;
  spec.mutable_command()->add_argv("true");
  spec.mutable_command()->set_cpus(3);
  spec.mutable_items()->mutable_range()->set_end(1);
  absl::StatusOr<uint64_t> refused = scheduler_.Submit(spec, now_);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("the largest has 2 slot(s)"), std::string::npos) << refused.status();
  spec.mutable_command()->set_cpus(2);
  EXPECT_TRUE(scheduler_.Submit(spec, now_).ok());
}

// ---- dispatch policy: free slots first, fair share, per-job prefetch, stealing ----

uint64_t SubmitSpec(Scheduler& scheduler, int64_t items, uint32_t chunk, int32_t priority, absl::Time now) {
  v1::JobSpec spec;
  spec.set_kernel("echo");
  spec.mutable_items()->mutable_range()->set_end(items);
  spec.set_chunk_size(chunk);
  spec.set_priority(priority);
  absl::StatusOr<uint64_t> id = scheduler.Submit(spec, now);
  EXPECT_TRUE(id.ok()) << id.status();
  return id.value_or(0);
}

TEST_F(SchedulerTest, AWorkerWithCreditToSpareTakesNoMoreThanItsFreeSlots) {
  Register("first", 1);
  SubmitRange(4, 1);
  Credit("first", 1000);  // the first to register asks for a lot
  scheduler_.Dispatch(now_);
  EXPECT_EQ(outbox_.Take("first").assign().chunks_size(), 1);  // ...and gets a chunk per free slot
  Register("second", 1);
  Credit("second", 1000);
  scheduler_.Dispatch(now_);
  EXPECT_EQ(outbox_.Take("second").assign().chunks_size(), 1);  // a worker joining mid-job gets work at once
}

TEST_F(SchedulerTest, PrefetchIsLearnedPerJobAndStartsAtZero) {
  Register("a", 1);
  Credit("a", 1000);
  SubmitRange(100000, 1);  // a fast job: 1 us chunks
  scheduler_.Dispatch(now_);
  v1::Assign first = outbox_.Take("a").assign();
  ASSERT_EQ(first.chunks_size(), 1);
  Complete("a", first, absl::Microseconds(1));
  scheduler_.Dispatch(now_);
  // Measured short: a reserve of chunks hides the round trip.
  EXPECT_GT(outbox_.Take("a").assign().chunks_size(), 100);
  ASSERT_TRUE(scheduler_.Cancel(1, now_).ok());
  outbox_.Take("a");  // the cancel
  Credit("a", 1000);  // what a worker grants back for the dropped chunks

  // A slow job after it does not inherit that appetite.
  Register("b", 1);
  Credit("b", 1000);
  SubmitRange(20, 1);
  scheduler_.Dispatch(now_);
  EXPECT_EQ(outbox_.Take("a").assign().chunks_size(), 1);
  v1::Assign b_work = outbox_.Take("b").assign();
  ASSERT_EQ(b_work.chunks_size(), 1);
  Complete("b", b_work, absl::Seconds(1));
  scheduler_.Dispatch(now_);
  EXPECT_EQ(outbox_.Take("b").assign().chunks_size(), 1);  // measured slow: still one per slot
}

TEST_F(SchedulerTest, JobsOfEqualPriorityShareTheSlots) {
  Register("a", 2);
  Register("b", 2);
  uint64_t one = SubmitRange(100, 1);
  uint64_t two = SubmitRange(100, 1);
  Credit("a", 100);
  Credit("b", 100);
  scheduler_.Dispatch(now_);
  std::map<uint64_t, int> per_job;
  for (const char* peer : {"a", "b"}) {
    v1::Assign assign = outbox_.Take(peer).assign();
    for (const v1::Chunk& chunk : assign.chunks()) ++per_job[chunk.job_id()];
  }
  EXPECT_EQ(per_job[one], 2);
  EXPECT_EQ(per_job[two], 2);
}

TEST_F(SchedulerTest, AHigherPriorityJobGetsFreeSlotsFirst) {
  Register("a", 2);
  SubmitSpec(scheduler_, 100, 1, /*priority=*/0, now_);
  uint64_t urgent = SubmitSpec(scheduler_, 100, 1, /*priority=*/5, now_);
  Credit("a", 100);
  scheduler_.Dispatch(now_);
  v1::Assign assign = outbox_.Take("a").assign();
  ASSERT_EQ(assign.chunks_size(), 2);
  EXPECT_EQ(assign.chunks(0).job_id(), urgent);
  EXPECT_EQ(assign.chunks(1).job_id(), urgent);
}

// Makes "a" (1 slot) hold a reserve of chunks of a job measured as fast, then
// brings in an idle worker "b". Returns what a holds.
class StealingTest : public SchedulerTest {
 protected:
  v1::Assign HoldReserve() {
    Register("a", 1);
    Credit("a", 1000);
    job_ = SubmitRange(10, 1);
    scheduler_.Dispatch(now_);
    v1::Assign first = outbox_.Take("a").assign();
    Complete("a", first, absl::Milliseconds(1));  // looks fast: a reserve is worth holding
    scheduler_.Dispatch(now_);
    v1::Assign held = outbox_.Take("a").assign();
    EXPECT_EQ(held.chunks_size(), 9);  // every chunk left
    Register("b", 1);
    Credit("b", 1000);
    scheduler_.Dispatch(now_);  // nothing queued for b: ask a for chunks back
    return held;
  }
  v1::WorkerMessage Returned(const v1::Steal& steal, const v1::Assign& held, int count) {
    v1::WorkerMessage message;
    message.mutable_ready()->set_answered_steal(steal.steal_id());
    for (int i = held.chunks_size() - 1; i >= held.chunks_size() - count; --i) {
      v1::ChunkRef* ref = message.mutable_ready()->add_returned();
      ref->set_job_id(held.chunks(i).job_id());
      ref->set_chunk_index(held.chunks(i).chunk_index());
      ref->set_attempt(held.chunks(i).attempt());
    }
    return message;
  }
  uint64_t job_ = 0;
};

TEST_F(StealingTest, AnIdleWorkerGetsUnstartedChunksFromABusyOne) {
  v1::Assign held = HoldReserve();
  v1::CoordinatorMessage steal = outbox_.Take("a");
  ASSERT_TRUE(steal.has_steal());
  EXPECT_EQ(steal.steal().max_chunks(), 1u);  // b has one free slot
  EXPECT_EQ(steal.steal().job_ids(0), job_);
  scheduler_.OnWorkerMessage("a", Returned(steal.steal(), held, 1), now_);
  scheduler_.Dispatch(now_);
  v1::Assign stolen = outbox_.Take("b").assign();
  ASSERT_EQ(stolen.chunks_size(), 1);
  EXPECT_EQ(stolen.chunks(0).chunk_index(), held.chunks(8).chunk_index());
  EXPECT_EQ(scheduler_.chunks_stolen(), 1u);

  // A result that crosses the steal (a reports the chunk it gave back) is
  // dropped: only b holds it now. b's result counts once.
  v1::Assign late;
  *late.add_chunks() = held.chunks(8);
  Complete("a", late);
  EXPECT_EQ(scheduler_.GetJob(job_)->done_items(), 1u);
  Complete("b", stolen);
  EXPECT_EQ(scheduler_.GetJob(job_)->done_items(), 2u);
}

TEST_F(StealingTest, AWorkerLostWhileAStealIsInFlightLosesNothing) {
  v1::Assign held = HoldReserve();
  ASSERT_TRUE(outbox_.Take("a").has_steal());
  v1::WorkerMessage bye;
  bye.mutable_goodbye()->set_reason("killed");
  scheduler_.OnWorkerMessage("a", bye, now_);  // the steal is never answered
  scheduler_.Dispatch(now_);
  uint64_t done = 0;
  for (int round = 0; round < 20 && done < 9; ++round) {
    v1::Assign work = outbox_.Take("b").assign();
    ASSERT_GT(work.chunks_size(), 0);
    Complete("b", work, absl::Seconds(1));
    done += static_cast<uint64_t>(work.chunks_size());
    scheduler_.Dispatch(now_);
  }
  EXPECT_EQ(scheduler_.GetJob(job_)->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(scheduler_.GetJob(job_)->done_items(), 10u);
}

TEST_F(SchedulerTest, ResultsFromPeersThatDoNotHoldTheChunkAreDropped) {
  Register("honest", 1);
  Register("rogue", 1);
  uint64_t job = SubmitRange(2, 1);
  Credit("honest", 1);
  scheduler_.Dispatch(now_);
  v1::Assign assign = outbox_.Take("honest").assign();
  Complete("rogue", assign);  // registered, but was never handed the chunk
  EXPECT_EQ(scheduler_.GetJob(job)->done_items(), 0u);
  Complete("stranger", assign);  // never said Hello
  EXPECT_TRUE(outbox_.Take("stranger").has_reregister());
  EXPECT_EQ(scheduler_.GetJob(job)->done_items(), 0u);
  v1::Assign wrong_attempt = assign;
  wrong_attempt.mutable_chunks(0)->set_attempt(7);
  Complete("honest", wrong_attempt);
  EXPECT_EQ(scheduler_.GetJob(job)->done_items(), 0u);
  Complete("honest", assign);
  EXPECT_EQ(scheduler_.GetJob(job)->done_items(), 1u);
}

TEST_F(SchedulerTest, AutomaticChunksGrowFromOneItemWithMeasuredTime) {
  Register("a", 1);
  Credit("a", 1000);
  uint64_t job = SubmitRange(10'000'000, 0);
  scheduler_.Dispatch(now_);
  v1::Assign first = outbox_.Take("a").assign();
  ASSERT_EQ(first.chunks_size(), 1);
  EXPECT_EQ(first.chunks(0).range().end() - first.chunks(0).range().start(), 1);
  Complete("a", first, absl::Microseconds(10));  // 10 us per item
  scheduler_.Dispatch(now_);
  v1::Assign next = outbox_.Take("a").assign();
  ASSERT_EQ(next.chunks_size(), 1);  // 25 ms chunks: no reserve
  EXPECT_EQ(next.chunks(0).range().end() - next.chunks(0).range().start(), 2500);
  Complete("a", next, absl::Milliseconds(25));
  EXPECT_EQ(scheduler_.GetJob(job)->done_items(), 2501u);
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// gRPC jobs: their own credit (calls), a concurrency cap per worker, pacing.
class SchedulerGrpcTest : public SchedulerTest {
 protected:
  void RegisterWithIo(const std::string& peer, uint32_t slots, uint32_t io_capacity) {
    v1::WorkerMessage message;
    message.mutable_hello()->set_name(peer);
    message.mutable_hello()->set_slots(slots);
    message.mutable_hello()->add_kernels("echo");
    message.mutable_hello()->set_io_capacity(io_capacity);
    scheduler_.OnWorkerMessage(peer, message, now_);
    ASSERT_TRUE(outbox_.Take(peer).has_welcome());
  }
  void IoCredit(const std::string& peer, uint32_t credit) {
    v1::WorkerMessage message;
    message.mutable_ready()->set_io_credit(credit);
    scheduler_.OnWorkerMessage(peer, message, now_);
  }
  uint64_t SubmitCalls(int items, uint32_t concurrency, double rate = 0, uint64_t max_response = 0) {
    v1::JobSpec spec;
    spec.mutable_grpc()->set_max_response_bytes(max_response);
    spec.mutable_grpc()->set_target("127.0.0.1:1");
    spec.mutable_grpc()->set_method("/p.S/M");
    spec.mutable_grpc()->set_descriptor_set("descriptors");
    spec.mutable_grpc()->set_concurrency(concurrency);
    spec.mutable_grpc()->set_rate(rate);
    for (int i = 0; i < items; ++i) spec.mutable_items()->mutable_inline_()->add_items("{}");
    absl::StatusOr<uint64_t> id = scheduler_.Submit(spec, now_);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }
  // Reports every call of `chunk` as done, each with `output`.
  void Complete(const std::string& peer, const v1::Chunk& chunk, const std::string& output = "") {
    v1::WorkerMessage done;
    v1::ChunkResult* result = done.mutable_ready()->add_results();
    result->set_job_id(chunk.job_id());
    result->set_chunk_index(chunk.chunk_index());
    result->set_attempt(chunk.attempt());
    result->set_coordinator_instance(chunk.coordinator_instance());
    const uint32_t count = ChunkItems(chunk).count();
    result->mutable_outputs()->set_first_index(chunk.first_index());
    result->mutable_outputs()->set_item_count(count);
    for (uint32_t i = 0; i < count; ++i) {
      result->mutable_outputs()->mutable_outputs()->append(output);
      result->mutable_outputs()->add_output_sizes(static_cast<uint32_t>(output.size()));
    }
    scheduler_.OnWorkerMessage(peer, done, now_);
  }
  static int Grpc(const v1::Assign& assign) {
    int n = 0;
    for (const v1::Chunk& chunk : assign.chunks()) n += chunk.has_grpc() ? 1 : 0;
    return n;
  }
};

TEST_F(SchedulerGrpcTest, CallsUseTheIoCreditWithinTheJobsConcurrency) {
  RegisterWithIo("a", 2, 100);
  SubmitRange(100, 1);
  SubmitCalls(50, /*concurrency=*/8);
  Credit("a", 2);
  IoCredit("a", 100);
  scheduler_.Dispatch(now_);
  v1::Assign assign = outbox_.Take("a").assign();
  EXPECT_EQ(assign.chunks_size() - Grpc(assign), 2);  // CPU chunks: the CPU credit
  ASSERT_EQ(Grpc(assign), 8);                          // calls: the job's concurrency, not the io credit
  // Descriptors go with the first chunk of the job to this worker only.
  EXPECT_EQ(assign.chunks(2).grpc().descriptor_set(), "descriptors");
  EXPECT_TRUE(assign.chunks(3).grpc().descriptor_set().empty());
  // One call finishing makes room for exactly one more.
  Complete("a", assign.chunks(2));
  scheduler_.Dispatch(now_);
  v1::Assign more = outbox_.Take("a").assign();
  EXPECT_EQ(Grpc(more), 1);
}

TEST_F(SchedulerGrpcTest, LargeResultsBoundTheCallsInFlight) {
  RegisterWithIo("a", 1, 10000);
  SubmitCalls(1000, /*concurrency=*/64, /*rate=*/0, /*max_response=*/1 << 20);
  IoCredit("a", 10000);
  scheduler_.Dispatch(now_);
  v1::Assign first = outbox_.Take("a").assign();
  ASSERT_EQ(Grpc(first), 64);  // the first wave: 256 MiB at 1 MiB a call, so the concurrency bounds
  for (int i = 0; i < 4; ++i) Complete("a", first.chunks(i), std::string(i == 0 ? 64 << 20 : 0, 'x'));
  scheduler_.Dispatch(now_);
  // 16 MiB a call so far: 256 MiB of results is 16 calls, and 60 are out.
  EXPECT_TRUE(outbox_.empty());
  for (int i = 4; i < 54; ++i) Complete("a", first.chunks(i));
  scheduler_.Dispatch(now_);
  // 64 MiB over 54 calls: the concurrency bounds again; 10 are out, 54 more go.
  EXPECT_EQ(Grpc(outbox_.Take("a").assign()), 54);
}

TEST_F(SchedulerGrpcTest, TheFirstWaveIsBoundedByTheLargestResponseAllowed) {
  RegisterWithIo("a", 1, 10000);
  SubmitCalls(1000, /*concurrency=*/256);
  IoCredit("a", 10000);
  scheduler_.Dispatch(now_);
  v1::Assign first = outbox_.Take("a").assign();
  ASSERT_EQ(Grpc(first), 16);  // 256 MiB at 16 MiB (the default --max-response) a call
  Complete("a", first.chunks(0));  // results are small: the job's concurrency bounds from now on
  scheduler_.Dispatch(now_);
  int more = 0;
  const v1::CoordinatorMessage second = outbox_.Take("a");
  for (const v1::Chunk& chunk : second.assign().chunks()) more += ChunkItems(chunk).count();
  EXPECT_EQ(more, 256 - 15);
}

TEST_F(SchedulerGrpcTest, ARateIsSplitOverTheWorkersAbleToRunTheJob) {
  RegisterWithIo("a", 1, 1000);
  RegisterWithIo("b", 1, 1000);
  Register("cpu-only", 1);
  SubmitCalls(1000, /*concurrency=*/100, /*rate=*/10);
  IoCredit("a", 1000);
  IoCredit("b", 1000);
  scheduler_.Dispatch(now_);
  v1::Assign a = outbox_.Take("a").assign();
  // A worker holds about 2 s of its share, not its whole concurrency.
  ASSERT_EQ(Grpc(a), 10);
  EXPECT_DOUBLE_EQ(a.chunks(0).grpc().rate(), 5);  // each worker's share: it spaces its calls so
  EXPECT_DOUBLE_EQ(outbox_.Take("b").assign().chunks(0).grpc().rate(), 5);
  Complete("a", a.chunks(0));  // small results: the job's bytes no longer hold it back
  scheduler_.Dispatch(now_);
  ASSERT_EQ(Grpc(outbox_.Take("a").assign()), 1);
  EXPECT_EQ(Grpc(outbox_.Take("b").assign()), 4);  // b had 6 of the first 16: the room is offered to it too
  RegisterWithIo("c", 1, 1000);
  IoCredit("c", 1000);
  scheduler_.Dispatch(now_);
  v1::Assign c = outbox_.Take("c").assign();
  ASSERT_GE(Grpc(c), 1);
  EXPECT_DOUBLE_EQ(c.chunks(0).grpc().rate(), 10.0 / 3);
}

TEST_F(SchedulerGrpcTest, WorkersWithoutAnIoEngineGetNoCalls) {
  Register("cpu-only", 2);
  SubmitCalls(5, 8);
  Credit("cpu-only", 2);
  IoCredit("cpu-only", 100);  // ignored: it announced no io capacity
  scheduler_.Dispatch(now_);
  EXPECT_TRUE(outbox_.empty());
}

}  // namespace
}  // namespace drover
