// The public header for writing drover kernels in your own shared library.
//
// A kernel is a named function that turns one input item (bytes) into one
// output (bytes) or an error. Build a shared library that includes this header
// and registers its kernels, then start workers with `--plugin path/to/lib.so`:
//
//   #include <drover/kernel.h>
//
//   absl::Status Reverse(std::string_view input, std::string* output) {
//     output->assign(input.rbegin(), input.rend());
//     return absl::OkStatus();
//   }
//
//   DROVER_PLUGIN(registrar) {
//     registrar->Add("reverse", &Reverse, "the item's bytes in reverse order");
//   }
//
// Contract for a kernel:
// - It is called concurrently from several worker threads: it must be thread-safe.
// - It appends its output to `*output` (which it may find non-empty: append,
//   do not assign over earlier bytes unless the string was empty on entry).
//   Returning a non-OK status fails this one item; the status message is what
//   users see, and the output it appended is discarded.
// - A thrown exception is caught by the worker and also fails the item, but
//   prefer returning a status.
#ifndef DROVER_KERNEL_H_
#define DROVER_KERNEL_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace drover {

using KernelFn = absl::Status (*)(std::string_view input, std::string* output);

// Receives a plugin's kernels. Only valid during the registration call.
class KernelRegistrar {
 public:
  virtual ~KernelRegistrar() = default;
  // `name` must be unique across built-ins and plugins; a duplicate is refused
  // with a logged error. `help` is one line shown by `drover-worker --list-kernels`.
  virtual void Add(std::string_view name, KernelFn fn, std::string_view help) = 0;
};

}  // namespace drover

// Bumped when KernelFn or KernelRegistrar change incompatibly.
#define DROVER_PLUGIN_ABI_VERSION 1

// Defines the plugin's registration function; the body receives
// `::drover::KernelRegistrar* registrar_name`. Use once per shared library.
#define DROVER_PLUGIN(registrar_name)                                             \
  extern "C" int drover_plugin_abi_version() { return DROVER_PLUGIN_ABI_VERSION; } \
  extern "C" void drover_plugin_register(::drover::KernelRegistrar* registrar_name)

#endif  // DROVER_KERNEL_H_
