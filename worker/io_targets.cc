// Implements io_targets.h.
#include "worker/io_targets.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace drover {
namespace {
// Jobs (their codecs) and targets (their channels) remembered; past this many,
// jobs unused for kForgetTargetsAfter are forgotten.
constexpr size_t kMaxCachedTargets = 1024;
constexpr absl::Duration kForgetTargetsAfter = absl::Minutes(30);
}  // namespace

std::shared_ptr<grpc::Channel> IoTargets::ChannelFor(const v1::GrpcSpec& spec) {
  const int max_response = static_cast<int>(MaxResponseBytes(spec));
  const absl::string_view nul("\0", 1);  // between the fields: none of them holds a NUL but ca_pem, last
  std::string key = absl::StrCat(spec.target(), nul, spec.tls() ? "tls" : "", nul, spec.lb_policy(), nul,
                                 max_response, nul, spec.ca_pem());
  {
    absl::MutexLock lock(&mu_);
    auto it = channels_.find(key);
    if (it != channels_.end()) return it->second;
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (spec.tls()) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = spec.ca_pem();
    credentials = grpc::SslCredentials(options);
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(max_response);
  if (!spec.lb_policy().empty()) arguments.SetLoadBalancingPolicyName(spec.lb_policy());
  // drover retries calls itself (with its own counts and backoff); gRPC's
  // retry layer would only add per-call work (measured: see docs/PERFORMANCE.md).
  arguments.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // A connection that died silently is found while calls wait on it. Pings no
  // more often than servers accept by default (gRPC servers refuse pings under
  // 5 minutes apart without data); calls' deadlines bound hung servers sooner.
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 5 * 60 * 1000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  auto channel = grpc::CreateCustomChannel(spec.target(), credentials, arguments);
  absl::MutexLock lock(&mu_);
  if (channels_.size() >= kMaxCachedTargets) {
    // Close channels nothing uses any more (no cached job, no call holds them).
    absl::erase_if(channels_, [](const auto& entry) { return entry.second.use_count() == 1; });
  }
  return channels_.try_emplace(key, channel).first->second;  // another thread's, if it was first
}

std::shared_ptr<CallTarget> IoTargets::Make(const v1::GrpcSpec& spec) {
  auto target = std::make_shared<CallTarget>();
  target->method = spec.method();
  target->channel = ChannelFor(spec);
  if (spec.descriptor_set().empty() && !spec.raw()) {
    target->error = "this worker never received the job's descriptors (a protocol error)";
  } else if (absl::StatusOr<std::shared_ptr<const GrpcCodec>> codec = GrpcCodec::Create(spec); codec.ok()) {
    target->codec = *std::move(codec);
  } else {
    target->error = std::string(codec.status().message());
  }
  for (const std::string& header : spec.metadata()) {
    size_t colon = header.find(':');
    if (colon == std::string::npos) continue;  // the client checked the form
    target->metadata.emplace_back(absl::AsciiStrToLower(absl::StripAsciiWhitespace(header.substr(0, colon))),
                                  std::string(absl::StripAsciiWhitespace(header.substr(colon + 1))));
  }
  if (spec.deadline_ms() > 0) target->deadline = absl::Milliseconds(spec.deadline_ms());
  target->max_response_bytes = MaxResponseBytes(spec);
  target->at_most_once = spec.at_most_once();
  return target;
}

std::shared_ptr<const CallTarget> IoTargets::For(const v1::Chunk& chunk) {
  const v1::GrpcSpec& spec = chunk.grpc();
  const JobKey key{chunk.coordinator_instance(), chunk.job_id()};
  const bool carries_descriptors = !spec.descriptor_set().empty() || spec.raw();
  if (!carries_descriptors) {
    absl::MutexLock lock(&mu_);
    auto it = targets_.find(key);
    if (it != targets_.end()) {
      it->second.last_used = absl::Now();
      return it->second.target;
    }
  }
  std::shared_ptr<const CallTarget> target = Make(spec);  // outside the lock: descriptors may be large
  absl::MutexLock lock(&mu_);
  if (targets_.size() >= kMaxCachedTargets) {
    // Forget jobs unused for a long time (a running job, even a paced one,
    // comes back sooner; the map may grow past the mark otherwise).
    const absl::Time stale = absl::Now() - kForgetTargetsAfter;
    absl::erase_if(targets_, [stale](const auto& entry) { return entry.second.last_used < stale; });
  }
  if (carries_descriptors) targets_[key] = CachedTarget{target, absl::Now()};
  return target;
}

void IoTargets::ForgetJobs() {
  absl::MutexLock lock(&mu_);
  targets_.clear();
}

}  // namespace drover
