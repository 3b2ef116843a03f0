// Tests client/job_options.h: what users type becomes the right JobSpec, and
// mistakes get messages that say what to do.
#include "client/job_options.h"

#include <gtest/gtest.h>

#include <sstream>

namespace drover {
namespace {

TEST(BuildJobSpec, PositionalItemsAreInlineItems) {
  JobOptions options;
  options.kernel = "echo";
  options.items = {"a b", "-x", "ü"};
  options.chunk = "2";
  std::istringstream in;
  absl::StatusOr<v1::JobSpec> spec = BuildJobSpec(options, in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->items().inline_().items_size(), 3);
  EXPECT_EQ(spec->items().inline_().items(1), "-x");
  EXPECT_EQ(spec->chunk_size(), 2u);
}

TEST(BuildJobSpec, EachLineFromStdin) {
  JobOptions options;
  options.kernel = "echo";
  options.each_line = "-";
  std::istringstream in("one\r\ntwo\n\nfour");
  absl::StatusOr<v1::JobSpec> spec = BuildJobSpec(options, in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->items().inline_().items_size(), 4);
  EXPECT_EQ(spec->items().inline_().items(0), "one");
  EXPECT_EQ(spec->items().inline_().items(2), "");
  EXPECT_EQ(spec->items().inline_().items(3), "four");
}

TEST(BuildJobSpec, RangeAndReduce) {
  JobOptions options;
  options.kernel = "sum_squares";
  options.range = "0:1000000000";
  options.reduce = "sum";
  std::istringstream in;
  absl::StatusOr<v1::JobSpec> spec = BuildJobSpec(options, in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->items().range().end(), 1000000000);
  EXPECT_EQ(spec->reduce(), v1::REDUCE_SUM);
}

TEST(BuildJobSpec, MistakesSayWhatToDo) {
  std::istringstream in;
  JobOptions none;
  none.kernel = "echo";
  absl::Status status = BuildJobSpec(none, in).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("--range"), std::string::npos);

  JobOptions two = none;
  two.items = {"a"};
  two.range = "0:3";
  EXPECT_EQ(BuildJobSpec(two, in).status().code(), absl::StatusCode::kInvalidArgument);

  JobOptions backwards = none;
  backwards.range = "5:1";
  EXPECT_EQ(BuildJobSpec(backwards, in).status().code(), absl::StatusCode::kInvalidArgument);

  JobOptions no_kernel;
  no_kernel.items = {"a"};
  EXPECT_NE(BuildJobSpec(no_kernel, in).status().message().find("--kernel"), std::string::npos);

  JobOptions missing_file = none;
  missing_file.each_line = "/nonexistent/items.txt";
  EXPECT_EQ(BuildJobSpec(missing_file, in).status().code(), absl::StatusCode::kNotFound);

  EXPECT_EQ(ParseReduce("avg").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BuildJobSpec, GrpcCalls) {
  JobOptions options;
  options.grpc_target = "localhost:7400";
  options.method = "/drover.echo.v1.Echo/Say";
  options.items = {R"({"message":"a"})"};
  options.deadline = "250ms";
  options.concurrency = 64;
  options.rate = 100;
  options.headers = {"x-team: drover"};
  options.retries = 2;
  std::istringstream in;
  absl::StatusOr<v1::JobSpec> spec = BuildJobSpec(options, in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_TRUE(spec->has_grpc());
  EXPECT_EQ(spec->grpc().target(), "localhost:7400");
  EXPECT_EQ(spec->grpc().deadline_ms(), 250u);
  EXPECT_EQ(spec->grpc().concurrency(), 64u);
  EXPECT_EQ(spec->grpc().rate(), 100);
  EXPECT_EQ(spec->grpc().metadata(0), "x-team: drover");
  EXPECT_EQ(spec->retries(), 2u);
  EXPECT_TRUE(spec->kernel().empty());
  // No --deadline: a call that is never answered still ends (60 s); "none" removes it.
  options.deadline.clear();
  EXPECT_EQ(BuildJobSpec(options, in)->grpc().deadline_ms(), 60000u);
  options.deadline = "none";
  EXPECT_EQ(BuildJobSpec(options, in)->grpc().deadline_ms(), 0u);
}

TEST(ParseTimeout, TakesSecondsUnitsAndDaysAndRefusesTheRest) {
  EXPECT_EQ(*ParseTimeout("1.5"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseTimeout("2m"), absl::Minutes(2));
  EXPECT_EQ(*ParseTimeout("7d", "--finished-older-than"), absl::Hours(24 * 7));
  for (const char* bad : {"nan", "inf", "0", "-1s", "bogus", "d"}) EXPECT_FALSE(ParseTimeout(bad).ok()) << bad;
}

TEST(BuildJobSpec, GrpcMistakesSayWhatToDo) {
  auto error = [](JobOptions options) {
    if (options.items.empty()) options.items = {"{}"};
    std::istringstream in;
    return std::string(BuildJobSpec(options, in).status().message());
  };
  JobOptions no_method;
  no_method.grpc_target = "h:1";
  EXPECT_NE(error(no_method).find("--grpc needs --method"), std::string::npos);
  JobOptions bad_method = no_method;
  bad_method.method = "Say";
  EXPECT_NE(error(bad_method).find("want /package.Service/Method"), std::string::npos);
  JobOptions stray;
  stray.kernel = "echo";
  stray.deadline = "1s";
  EXPECT_NE(error(stray).find("go with --grpc TARGET"), std::string::npos);
  JobOptions both = bad_method;
  both.method = "/a.B/C";
  both.kernel = "echo";
  EXPECT_NE(error(both).find("give one of"), std::string::npos);
  JobOptions header = both;
  header.kernel.clear();
  header.headers = {"no-colon"};
  EXPECT_NE(error(header).find("-H: want key:value"), std::string::npos);
  JobOptions timeout = both;
  timeout.kernel.clear();
  timeout.timeout = "1s";
  EXPECT_NE(error(timeout).find("--deadline"), std::string::npos);
  JobOptions missing_file = both;
  missing_file.kernel.clear();
  missing_file.proto_set = "/nonexistent.pb";
  EXPECT_NE(error(missing_file).find("--proto-set: cannot open /nonexistent.pb"), std::string::npos);
}

TEST(BuildJobSpec, HttpRequests) {
  JobOptions options;
  options.http = true;
  options.items = {"https://example.org/"};
  options.headers = {"Accept: text/html"};
  options.timeout = "5s";
  options.accept_status = "200-299,404";
  std::istringstream in;
  absl::StatusOr<v1::JobSpec> spec = BuildJobSpec(options, in);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_TRUE(spec->grpc().has_http());
  EXPECT_EQ(spec->grpc().deadline_ms(), 5000u);  // --timeout is the whole request's
  EXPECT_EQ(spec->grpc().max_response_bytes(), 1u << 20);  // as --max-output by default
  EXPECT_EQ(spec->grpc().http().accept_status(), "200-299,404");
  EXPECT_EQ(spec->grpc().http().max_redirects(), 10u);
  EXPECT_EQ(spec->grpc().metadata(0), "Accept: text/html");
  options.max_body = "64K";
  EXPECT_EQ(BuildJobSpec(options, in)->grpc().max_response_bytes(), 64u << 10);
}

TEST(BuildJobSpec, HttpMistakesSayWhatToDo) {
  auto error = [](JobOptions options) {
    options.items = {"http://h/"};
    std::istringstream in;
    return std::string(BuildJobSpec(options, in).status().message());
  };
  JobOptions stray;
  stray.command = {"true"};
  stray.http_method = "POST";
  EXPECT_NE(error(stray).find("go with --http"), std::string::npos);
  JobOptions grpc_flag;
  grpc_flag.http = true;
  grpc_flag.deadline = "1s";
  EXPECT_NE(error(grpc_flag).find("HTTP jobs take"), std::string::npos);
  JobOptions statuses;
  statuses.http = true;
  statuses.accept_status = "2xx";
  EXPECT_NE(error(statuses).find("--accept-status"), std::string::npos);
  JobOptions huge;
  huge.http = true;
  huge.max_body = "2G";
  EXPECT_NE(error(huge).find("--max-body: at most"), std::string::npos);
}

}  // namespace
}  // namespace drover
