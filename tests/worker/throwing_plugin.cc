// A test plugin: `throw_on` echoes its item but throws for the item "boom".
#include <drover/kernel.h>

#include <stdexcept>
#include <string>

namespace {

absl::Status ThrowOn(std::string_view input, std::string* output) {
  if (input == "boom") throw std::runtime_error("boom went the kernel");
  output->append(input);
  return absl::OkStatus();
}

}  // namespace

DROVER_PLUGIN(registrar) { registrar->Add("throw_on", &ThrowOn, "echoes; throws for 'boom'"); }
