// The worker's table of kernels: built-ins plus those loaded from plugins.
#ifndef DROVER_WORKER_KERNEL_REGISTRY_H_
#define DROVER_WORKER_KERNEL_REGISTRY_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "drover/kernel.h"

namespace drover {

// Filled on one thread at start-up; read-only (and then safe to share between
// threads) once the worker runs.
class KernelRegistry : public KernelRegistrar {
 public:
  struct Kernel {
    KernelFn fn = nullptr;
    std::string help;
  };

  // A registry holding the built-in kernels (noop, echo, sleep_ms, sum_squares,
  // count_primes).
  static KernelRegistry WithBuiltins();

  void Add(std::string_view name, KernelFn fn, std::string_view help) override;

  // Loads a plugin shared library and registers its kernels.
  // Errors: kNotFound (cannot open the file), kInvalidArgument (not a drover
  // plugin, or built for another plugin ABI version), kAlreadyExists (a
  // kernel name it registers is taken).
  absl::Status LoadPlugin(const std::string& path);

  // nullptr when there is no such kernel.
  const Kernel* Find(absl::string_view name) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, Kernel, std::less<>> kernels_;
  std::string duplicate_;  // first duplicate name seen by Add(), reported by LoadPlugin()
};

}  // namespace drover

#endif  // DROVER_WORKER_KERNEL_REGISTRY_H_
