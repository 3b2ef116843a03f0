// Tests common/log.h: rate-limited lines per key, and protobuf's own log
// lines routed through it.
#include "common/log.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "drover/v1/control.pb.h"

namespace drover {
namespace {

// Captures what is written to stderr (file descriptor 2) while it lives.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    saved_ = dup(2);
    file_ = std::tmpfile();
    dup2(fileno(file_), 2);
  }
  std::string Take() {
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    std::rewind(file_);
    std::string text;
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), file_)) > 0) text.append(buffer, n);
    std::fclose(file_);
    return text;
  }

 private:
  int saved_ = -1;
  FILE* file_ = nullptr;
};

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(LogRateLimited, APeerCannotFloodTheLog) {
  StderrCapture capture;
  for (int i = 0; i < 100; ++i) LogRateLimited(LogLevel::kWarning, "malformed:peer-a", "dropped a message");
  LogRateLimited(LogLevel::kWarning, "malformed:peer-b", "dropped a message from b");
  std::string text = capture.Take();
  EXPECT_EQ(Count(text, "dropped a message\n"), kRateLimitBurst);
  EXPECT_EQ(Count(text, "dropped a message from b"), 1);  // another key has its own budget
}

TEST(LogRateLimited, ProtobufsOwnErrorsAreRoutedAndLimited) {
  RouteProtobufLogs();
  v1::Hello hello;
  hello.set_name(std::string("bad \xff\xfe utf-8"));
  std::string bytes = hello.SerializeAsString();
  StderrCapture capture;
  for (int i = 0; i < 50; ++i) {
    v1::Hello parsed;
    (void)parsed.ParseFromString(bytes);  // protobuf logs invalid UTF-8 in a string field
  }
  std::string text = capture.Take();
  EXPECT_GE(Count(text, "protobuf: "), 1) << text;
  EXPECT_LE(Count(text, "protobuf: "), kRateLimitBurst) << text;
}

}  // namespace
}  // namespace drover
