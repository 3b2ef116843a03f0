// The one way the scheduler speaks to workers. The coordinator's ZeroMQ
// adapter implements it; tests use a recording fake.
#ifndef DROVER_COORDINATOR_WORKER_OUTBOX_H_
#define DROVER_COORDINATOR_WORKER_OUTBOX_H_

#include <string>

#include "drover/v1/control.pb.h"

namespace drover {

class WorkerOutbox {
 public:
  virtual ~WorkerOutbox() = default;
  // Sends `message` to the worker whose ZeroMQ routing id is `peer`. Called on
  // the loop thread; must not block or call back into the scheduler. A message
  // to a peer that is gone is dropped (the scheduler finds out by its silence).
  virtual void Send(const std::string& peer, v1::CoordinatorMessage& message) = 0;
};

}  // namespace drover

#endif  // DROVER_COORDINATOR_WORKER_OUTBOX_H_
