// An example drover plugin with two text kernels. Build it as a shared
// library and start workers with `drover-worker --plugin libdrover_text_kernels.so`
// (or `drover run --local --plugin ...`), then use `--kernel reverse`.
#include <drover/kernel.h>

#include <cctype>
#include <string>

namespace {

// The item's bytes in reverse order.
absl::Status Reverse(std::string_view input, std::string* output) {
  output->append(input.rbegin(), input.rend());
  return absl::OkStatus();
}

// Number of whitespace-separated words in the item; an empty item is an error.
absl::Status WordCount(std::string_view input, std::string* output) {
  if (input.empty()) return absl::InvalidArgumentError("empty item: nothing to count");
  int words = 0;
  bool in_word = false;
  for (char c : input) {
    bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  output->append(std::to_string(words));
  return absl::OkStatus();
}

}  // namespace

DROVER_PLUGIN(registrar) {
  registrar->Add("reverse", &Reverse, "the item's bytes in reverse order");
  registrar->Add("word_count", &WordCount, "number of whitespace-separated words in the item");
}
