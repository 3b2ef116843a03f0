// The kernels every worker offers: noop, echo, sleep_ms, sum_squares, count_primes.
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/reduce.h"
#include "drover/kernel.h"

namespace drover {
namespace {

absl::Status ParseInt(std::string_view input_std, int64_t* value) {
  absl::string_view input(input_std.data(), input_std.size());
  if (!absl::SimpleAtoi(input, value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("want an integer item, got '", input.substr(0, 40), "'"));
  }
  return absl::OkStatus();
}

absl::Status Noop(std::string_view, std::string*) { return absl::OkStatus(); }

absl::Status Echo(std::string_view input, std::string* output) {
  output->append(input.data(), input.size());
  return absl::OkStatus();
}

absl::Status SleepMs(std::string_view input, std::string* output) {
  int64_t ms = 0;
  if (absl::Status s = ParseInt(input, &ms); !s.ok()) return s;
  if (ms < 0) return absl::InvalidArgumentError("sleep_ms wants a non-negative number");
  absl::SleepFor(absl::Milliseconds(ms));
  output->append(input.data(), input.size());
  return absl::OkStatus();
}

// sum(i*i for i in range(n)), exactly (it passes 64 bits at n = 10^7).
absl::Status SumSquares(std::string_view input, std::string* output) {
  int64_t n = 0;
  if (absl::Status s = ParseInt(input, &n); !s.ok()) return s;
  if (n < 0) return absl::InvalidArgumentError("sum_squares wants n >= 0");
  if (n > 1'000'000'000'000) return absl::OutOfRangeError("sum_squares supports n <= 10^12");
  unsigned __int128 sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<unsigned __int128>(i) * static_cast<uint64_t>(i);
  output->append(Int128ToString(static_cast<__int128>(sum)));
  return absl::OkStatus();
}

bool IsPrime(int64_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (int64_t d = 3; d <= n / d; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

// Number of primes in [A, B), by trial division (deliberately CPU-bound).
absl::Status CountPrimes(std::string_view input_std, std::string* output) {
  absl::string_view input(input_std.data(), input_std.size());
  size_t colon = input.find(':');
  int64_t a = 0;
  int64_t b = 0;
  if (colon == std::string_view::npos || !absl::SimpleAtoi(input.substr(0, colon), &a) ||
      !absl::SimpleAtoi(input.substr(colon + 1), &b) || a > b) {
    return absl::InvalidArgumentError(
        absl::StrCat("count_primes wants an item A:B with A <= B, got '", input.substr(0, 40), "'"));
  }
  int64_t count = 0;
  for (int64_t n = a; n < b; ++n) count += IsPrime(n) ? 1 : 0;
  absl::StrAppend(output, count);
  return absl::OkStatus();
}

}  // namespace

void RegisterBuiltinKernels(KernelRegistrar* registrar) {
  registrar->Add("noop", &Noop, "does nothing; the output is empty");
  registrar->Add("echo", &Echo, "the output is the item itself");
  registrar->Add("sleep_ms", &SleepMs, "sleeps for the item's milliseconds, outputs the item");
  registrar->Add("sum_squares", &SumSquares, "item n -> sum(i*i for i in range(n)), exact");
  registrar->Add("count_primes", &CountPrimes, "item A:B -> how many primes are in [A, B)");
}

}  // namespace drover
