// Implements kernel_registry.h: the table and plugin loading with dlopen.
#include "worker/kernel_registry.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace drover {

void RegisterBuiltinKernels(KernelRegistrar* registrar);  // builtin_kernels.cc

KernelRegistry KernelRegistry::WithBuiltins() {
  KernelRegistry registry;
  RegisterBuiltinKernels(&registry);
  return registry;
}

void KernelRegistry::Add(std::string_view name_in, KernelFn fn, std::string_view help) {
  absl::string_view name(name_in.data(), name_in.size());
  if (name.empty() || fn == nullptr) {
    LogError(absl::StrCat("refusing kernel '", name, "': empty name or null function"));
    return;
  }
  auto [it, inserted] = kernels_.try_emplace(std::string(name), Kernel{fn, std::string(help)});
  if (!inserted) {
    LogError(absl::StrCat("refusing kernel '", name, "': the name is already taken"));
    if (duplicate_.empty()) duplicate_ = std::string(name);
  }
}

absl::Status KernelRegistry::LoadPlugin(const std::string& path) {
  // RTLD_LOCAL keeps one plugin's symbols from resolving another's.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return absl::NotFoundError(
        absl::StrCat("cannot load plugin ", path, ": ", why ? why : "unknown error"));
  }
  using VersionFn = int (*)();
  using RegisterFn = void (*)(KernelRegistrar*);
  auto version = reinterpret_cast<VersionFn>(dlsym(handle, "drover_plugin_abi_version"));
  auto register_fn = reinterpret_cast<RegisterFn>(dlsym(handle, "drover_plugin_register"));
  if (version == nullptr || register_fn == nullptr) {
    dlclose(handle);
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is not a drover plugin: it has no DROVER_PLUGIN(...) registration function"));
  }
  if (version() != DROVER_PLUGIN_ABI_VERSION) {
    int got = version();
    dlclose(handle);
    return absl::InvalidArgumentError(absl::StrCat(path, " was built for plugin ABI version ", got,
                                                   "; this worker loads version ",
                                                   DROVER_PLUGIN_ABI_VERSION, ": rebuild it"));
  }
  duplicate_.clear();
  size_t before = kernels_.size();
  register_fn(this);
  // The library stays loaded for the life of the process: its functions are in the table.
  if (!duplicate_.empty()) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, " registers kernel '", duplicate_, "', which already exists"));
  }
  LogInfo(absl::StrCat("loaded plugin ", path, " with ", kernels_.size() - before, " kernel(s)"));
  return absl::OkStatus();
}

const KernelRegistry::Kernel* KernelRegistry::Find(absl::string_view name) const {
  auto it = kernels_.find(name);
  return it == kernels_.end() ? nullptr : &it->second;
}

std::vector<std::string> KernelRegistry::Names() const {
  std::vector<std::string> names;
  names.reserve(kernels_.size());
  for (const auto& [name, kernel] : kernels_) names.push_back(name);
  return names;
}

}  // namespace drover
