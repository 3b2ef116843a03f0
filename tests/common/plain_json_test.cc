// Tests common/plain_json.h (the CLI's --json and the dashboard's API).
#include "common/plain_json.h"

#include <gtest/gtest.h>

#include "drover/v1/service.pb.h"

namespace drover {
namespace {

TEST(PlainJson, SixtyFourBitIntegersArePlainNumbersAndEnumsShortLowercaseNames) {
  v1::JobStatus status;
  status.set_job_id(42);
  status.set_state(v1::JOB_STATE_SUCCEEDED);
  status.set_total_items(100000);
  status.set_reduce(v1::REDUCE_SUM);
  status.set_finished_unix_ms(1796000000123);  // a time in milliseconds stays exact
  const std::string json = PlainJson(status);
  EXPECT_NE(json.find("\"jobId\":42"), std::string::npos) << json;
  EXPECT_NE(json.find("\"state\":\"succeeded\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"totalItems\":100000"), std::string::npos) << json;
  EXPECT_NE(json.find("\"reduce\":\"sum\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"finishedUnixMs\":1796000000123"), std::string::npos) << json;
  EXPECT_NE(json.find("\"failedItems\":0"), std::string::npos) << json;  // unset scalars are printed
  EXPECT_EQ(json.find("\"reduction\""), std::string::npos) << json;      // unset messages are not
}

// workers_able is `optional`: a job listing leaves it out rather than say 0.
TEST(PlainJson, AnOptionalFieldIsPrintedOnlyWhenSetEvenToZero) {
  v1::JobStatus status;
  EXPECT_EQ(PlainJson(status).find("workersAble"), std::string::npos) << PlainJson(status);
  status.set_workers_able(0);
  EXPECT_NE(PlainJson(status).find("\"workersAble\":0"), std::string::npos) << PlainJson(status);
}

TEST(PlainJson, FieldsComeInTheirDeclaredOrderAndBytesAsBase64) {
  v1::TaskRecord record;
  record.set_index(7);
  record.set_output_bytes(std::string("\xff\x00", 2));
  const std::string json = PlainJson(record);
  EXPECT_EQ(json.find("\"index\":7"), 1u) << json;
  EXPECT_NE(json.find("\"outputBytes\":\"/wA=\""), std::string::npos) << json;
}

}  // namespace
}  // namespace drover
