// The Scheduler's admission: what a job may ask for. A spec must be valid,
// within this coordinator's limits, and (when workers are connected) runnable
// by one of them: its kernel offered, its labels present, its --cpus within a
// worker's slots.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/scheduler.h"

namespace drover {
namespace {
// Descriptor sets larger than this are refused (they travel to every worker).
constexpr uint64_t kMaxGrpcSpecBytes = 8 << 20;
}  // namespace

absl::Status Scheduler::CheckLimits(const v1::JobSpec& spec) const {
  // At admission only: a job journaled before the bound still restores.
  if (spec.retries() > kMaxRetries) {
    return absl::InvalidArgumentError(
        absl::StrCat("retries ", spec.retries(), " is too many: a task is run at most ", kMaxRetries + 1, " times"));
  }
  if (spec.items().has_inline_()) {
    const auto& items = spec.items().inline_().items();
    const ItemLimits& limits = options_.item_limits;
    if (static_cast<uint64_t>(items.size()) > limits.max_items) {
      return TooManyItemsError(items.size(), limits.max_items);
    }
    for (int i = 0; i < items.size(); ++i) {
      if (items[i].size() > limits.max_item_bytes) {
        return ItemTooLargeError(i + 1, items[i].size(), limits.max_item_bytes);
      }
    }
  }
  if (spec.has_grpc() && spec.grpc().ByteSizeLong() > kMaxGrpcSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the gRPC call's descriptors and options take ",
                                                   spec.grpc().ByteSizeLong(), " bytes; the limit is ",
                                                   kMaxGrpcSpecBytes));
  }
  if (spec.has_command()) {
    uint64_t bytes = 0;
    for (const std::string& arg : spec.command().argv()) bytes += arg.size() + 1;
    for (const std::string& env : spec.command().env()) bytes += env.size() + 1;
    if (bytes > options_.max_command_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("the command line and environment take ", bytes,
                                                     " bytes; the limit is ", options_.max_command_bytes,
                                                     " (--max-command-bytes)"));
    }
  }
  return absl::OkStatus();
}

absl::Status Scheduler::CheckAdmission(const v1::JobSpec& spec) const {
  if (absl::Status valid = ValidateJobSpec(spec); !valid.ok()) return valid;
  if (absl::Status within = CheckLimits(spec); !within.ok()) return within;
  if (workers_.empty()) return absl::OkStatus();  // workers may join later: the job waits
  if (!spec.kernel().empty()) {
    std::set<std::string> offered;
    for (const auto& [peer, worker] : workers_) offered.insert(worker.kernels.begin(), worker.kernels.end());
    if (!offered.contains(spec.kernel())) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown kernel '", spec.kernel(), "': no connected worker offers it (they offer: ",
                       absl::StrJoin(offered, ", "), ")"));
    }
  }
  if (spec.has_python() &&
      std::none_of(workers_.begin(), workers_.end(), [](const auto& w) { return w.second.hello.python(); })) {
    return absl::InvalidArgumentError(
        "no connected worker runs Python calls (a worker offers them when it finds python3 with cloudpickle, "
        "Debian's python3-cloudpickle; see drover-worker --python)");
  }
  if (spec.require_size() > 0 &&
      std::none_of(workers_.begin(), workers_.end(), [&](const auto& w) { return CanRun(w.second, spec); })) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no connected worker has the labels ", absl::StrJoin(spec.require(), ", "),
        " (a worker has the labels it was started with: drover-worker --label)"));
  }
  if (spec.has_command() && spec.command().cpus() > 1) {
    uint32_t most = 0;
    for (const auto& [peer, worker] : workers_) most = std::max(most, worker.hello.slots());
    if (spec.command().cpus() > most) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cpus ", spec.command().cpus(), " is more than any connected worker has: the largest has ", most,
          " slot(s) (start workers with more --slots, or ask for fewer cpus)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace drover
