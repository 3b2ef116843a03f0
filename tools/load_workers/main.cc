// drover-load-workers: plays N workers against a coordinator from one process
// and one thread, over real ZeroMQ DEALER sockets, speaking the documented
// protocol (docs/PROTOCOL.md). Each "worker" offers the noop and echo kernels
// and answers every chunk at once (noop: empty outputs), so what is measured
// is the coordinator's dispatch, not task work. Used by bench/sched_bench.py to
// see how dispatch throughput holds up with thousands of connected workers.
//
//   drover-load-workers --coordinator tcp://127.0.0.1:7341 --workers 1000
//
// Runs until SIGINT/SIGTERM; prints how many registered and chunks answered.
// The sockets are watched with epoll on their ZMQ_FD (not zmq_poll over all of
// them), so the tool's own cost follows the sockets that have traffic, not N.
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/items.h"
#include "common/wire.h"

namespace {

volatile sig_atomic_t g_stop = 0;
uint64_t g_assigns = 0;  // Assign messages answered
void OnSignal(int) { g_stop = 1; }

constexpr uint32_t kCreditPerSlot = 1025;  // what drover-worker grants (slots x 1025)

struct FakeWorker {
  zmq::socket_t socket;
  bool registered = false;
  absl::Time last_sent = absl::InfinitePast();
  absl::Time last_hello = absl::InfinitePast();
  uint64_t received = 0;
};

void Send(FakeWorker& worker, drover::v1::WorkerMessage& message, absl::Time now) {
  try {
    worker.socket.send(drover::EncodeFrame(message), zmq::send_flags::dontwait);
    worker.last_sent = now;
  } catch (const zmq::error_t&) {
    // The coordinator is gone or busy: the next heartbeat tries again.
  }
}

void SendHello(FakeWorker& worker, int index, uint32_t slots, absl::Time now) {
  drover::v1::WorkerMessage message;
  drover::v1::Hello* hello = message.mutable_hello();
  hello->set_name(absl::StrCat("load-", index));
  hello->set_host("load");
  hello->set_pid(static_cast<uint32_t>(getpid()));
  hello->set_slots(slots);
  hello->add_kernels("noop");
  hello->add_kernels("echo");
  worker.last_hello = now;
  Send(worker, message, now);
}

// Answers an Assign with one Ready holding every chunk's result and the credit back.
void Answer(FakeWorker& worker, const drover::v1::Assign& assign, absl::Time now, uint64_t* answered) {
  drover::v1::WorkerMessage message;
  drover::v1::Ready* ready = message.mutable_ready();
  worker.received += static_cast<uint64_t>(assign.chunks_size());
  for (const drover::v1::Chunk& chunk : assign.chunks()) {
    drover::v1::ChunkResult* result = ready->add_results();
    result->set_job_id(chunk.job_id());
    result->set_chunk_index(chunk.chunk_index());
    result->set_attempt(chunk.attempt());
    result->set_coordinator_instance(chunk.coordinator_instance());
    result->set_run_ns(1000);
    drover::ChunkItems items(chunk);
    result->mutable_outputs()->set_first_index(chunk.first_index());
    result->mutable_outputs()->set_item_count(items.count());
    if (chunk.kernel() == "echo") {
      for (uint32_t i = 0; i < items.count(); ++i) {
        absl::string_view item = items.Get(i);
        result->mutable_outputs()->mutable_outputs()->append(item.data(), item.size());
        result->mutable_outputs()->add_output_sizes(static_cast<uint32_t>(item.size()));
      }
    }
  }
  ready->set_credit(static_cast<uint32_t>(assign.chunks_size()));
  ready->set_chunks_received(worker.received);
  *answered += static_cast<uint64_t>(assign.chunks_size());
  ++g_assigns;
  Send(worker, message, now);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"drover-load-workers: plays N workers from one process (a load tool for the coordinator)"};
  std::string coordinator = "tcp://127.0.0.1:7341";
  int count = 100;
  uint32_t slots = 1;
  app.add_option("--coordinator", coordinator, "the coordinator's worker endpoint")->capture_default_str();
  app.add_option("--workers", count, "workers to play")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--slots", slots, "slots each worker announces")->check(CLI::Range(1u, 1024u))->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);

  zmq::context_t context(1);
  context.set(zmq::ctxopt::max_sockets, count + 16);
  std::vector<FakeWorker> workers;
  workers.reserve(static_cast<size_t>(count));
  const absl::Time start = absl::Now();
  for (int i = 0; i < count; ++i) {
    FakeWorker& worker = workers.emplace_back(FakeWorker{zmq::socket_t(context, zmq::socket_type::dealer)});
    worker.socket.set(zmq::sockopt::routing_id, absl::StrCat("load-", i, "/", getpid()));
    worker.socket.set(zmq::sockopt::linger, 0);
    worker.socket.set(zmq::sockopt::sndhwm, 0);
    worker.socket.set(zmq::sockopt::rcvhwm, 0);
    worker.socket.connect(coordinator);
    SendHello(worker, i, slots, start);
  }
  int epoll = epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < workers.size(); ++i) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = i;
    epoll_ctl(epoll, EPOLL_CTL_ADD, workers[i].socket.get(zmq::sockopt::fd), &event);
  }

  absl::Duration heartbeat = absl::Seconds(1);
  uint64_t answered = 0;
  int registered = 0;
  // Reads everything waiting on worker i (ZMQ_FD only says "look at ZMQ_EVENTS").
  auto drain = [&](size_t i, absl::Time now) {
    FakeWorker& worker = workers[i];
    while (worker.socket.get(zmq::sockopt::events) & ZMQ_POLLIN) {
      zmq::message_t frame;
      if (!worker.socket.recv(frame, zmq::recv_flags::dontwait)) break;
      drover::v1::CoordinatorMessage message;
      if (!drover::DecodeFrame(frame, &message).ok()) continue;
      if (message.has_welcome() && !worker.registered) {
        worker.registered = true;
        ++registered;
        if (message.welcome().heartbeat_interval_ms() > 0) {
          heartbeat = absl::Milliseconds(message.welcome().heartbeat_interval_ms());
        }
        drover::v1::WorkerMessage ready;
        ready.mutable_ready()->set_credit(slots * kCreditPerSlot);
        Send(worker, ready, now);
      } else if (message.has_assign()) {
        Answer(worker, message.assign(), now, &answered);
      } else if (message.has_steal()) {
        drover::v1::WorkerMessage ready;  // nothing is ever queued here: nothing to give back
        ready.mutable_ready()->set_answered_steal(message.steal().steal_id());
        ready.mutable_ready()->set_chunks_received(worker.received);
        Send(worker, ready, now);
      } else if (message.has_reregister()) {
        if (worker.registered) --registered;
        worker.registered = false;
        worker.received = 0;
        SendHello(worker, static_cast<int>(i), slots, now);
      } else if (message.has_shutdown() || message.has_refusal()) {
        g_stop = 1;
      }
    }
  };
  std::vector<epoll_event> ready(1024);
  absl::Time next_housekeeping = absl::Now();
  while (!g_stop) {
    int n = epoll_wait(epoll, ready.data(), static_cast<int>(ready.size()), 100);
    absl::Time now = absl::Now();
    for (int k = 0; k < n; ++k) drain(ready[static_cast<size_t>(k)].data.u64, now);
    if (now < next_housekeeping) continue;
    next_housekeeping = now + absl::Milliseconds(100);
    for (size_t i = 0; i < workers.size(); ++i) {
      FakeWorker& worker = workers[i];
      if (!worker.registered) {
        if (now - worker.last_hello > absl::Seconds(2)) SendHello(worker, static_cast<int>(i), slots, now);
      } else if (now - worker.last_sent >= heartbeat) {
        drover::v1::WorkerMessage beat;
        beat.mutable_heartbeat()->set_chunks_received(worker.received);
        Send(worker, beat, now);
      }
      drain(i, now);  // a send may have taken the socket's wake-up for pending input
    }
  }
  close(epoll);
  std::fprintf(stderr, "drover-load-workers: %d of %d registered at the end; %llu chunks answered in %llu Assigns\n",
               registered, count, static_cast<unsigned long long>(answered),
               static_cast<unsigned long long>(g_assigns));
  return 0;
}
