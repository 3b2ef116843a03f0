// The worker's I/O engine: runs the calls of gRPC jobs on gRPC's asynchronous
// completion-queue API, with a fixed number of threads however many calls are
// in flight. It sits beside the CPU slots (SlotPool) and never occupies them.
#ifndef DROVER_WORKER_IO_ENGINE_H_
#define DROVER_WORKER_IO_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/wakeup.h"
#include "drover/v1/control.pb.h"

namespace drover {

// Thread-safe. In the worker, Push/CancelJob/DropAll/TakeFinished are called
// by the I/O thread; the engine's own threads drive the calls. `on_finished`
// is notified whenever finished chunks are waiting to be taken.
//
// Each item of a chunk is one call (chunk.grpc says to what): the item is
// encoded (JSON or raw), sent, and the call's outcome becomes the item's
// output or error plus a TaskInfo (gRPC code and message, latency, attempts).
// Calls failing with UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED are
// tried again up to chunk.retries times after a jittered exponential backoff
// (100 ms doubling to 5 s). Channels are shared by every call to a target.
class IoEngine {
 public:
  // `threads` >= 1 poll the completion queue; `on_finished` must outlive the engine.
  IoEngine(int threads, std::string worker_name, Wakeup* on_finished);
  ~IoEngine();  // Shutdown() if not done yet
  IoEngine(const IoEngine&) = delete;
  IoEngine& operator=(const IoEngine&) = delete;

  // Starts every call of these chunks (which must have `grpc` set).
  void Push(std::vector<v1::Chunk> chunks);

  // Cancels the job's calls; its chunks still count as finished but their
  // results are never reported.
  void CancelJob(uint64_t job_id);
  // CancelJob for every job (used when the coordinator is lost).
  void DropAll();

  // Moves out the results finished since the last call; `*chunks` and
  // `*items` get how many chunks and items finished or were dropped since then.
  std::vector<v1::ChunkResult> TakeFinished(uint64_t* chunks, uint64_t* items);

  // Calls started and not yet finished (including those waiting to retry).
  uint32_t calls_in_flight() const;
  int threads() const;

  // Cancels everything, waits for the calls to end and joins the threads.
  void Shutdown();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Items (gRPC calls) in a chunk.
uint32_t ChunkItemCount(const v1::Chunk& chunk);

}  // namespace drover

#endif  // DROVER_WORKER_IO_ENGINE_H_
