// Tests client/results_printer.h: text and JSON lines, failures on stderr.
#include "client/results_printer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace drover {
namespace {

// Captures what is written to a FILE*.
class Capture {
 public:
  Capture() : file_(tmpfile()) {}
  ~Capture() { fclose(file_); }
  FILE* file() { return file_; }
  std::string Text() {
    fflush(file_);
    rewind(file_);
    std::string text;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), file_)) > 0) text.append(buffer, n);
    return text;
  }

 private:
  FILE* file_;
};

v1::ChunkOutputs Chunk() {
  v1::ChunkOutputs chunk;
  chunk.set_first_index(10);
  chunk.set_item_count(3);
  chunk.set_outputs(std::string("ab\xff", 3));
  chunk.add_output_sizes(2);
  chunk.add_output_sizes(0);
  chunk.add_output_sizes(1);
  v1::ItemError* error = chunk.add_errors();
  error->set_offset(1);
  error->set_message("bad item");
  return chunk;
}

TEST(ResultsPrinter, TextPrintsOutputsAndReportsFailures) {
  Capture out, err;
  ResultsPrinter printer(ResultsPrinter::Format::kText, out.file(), err.file());
  printer.Print(Chunk());
  printer.Finish();
  EXPECT_EQ(out.Text(), std::string("ab\n\xff\n", 5));
  EXPECT_EQ(err.Text(), "drover: task 12 failed: bad item\n");
  EXPECT_EQ(printer.failed(), 1u);
}

TEST(ResultsPrinter, AFailedTaskShowsItsItemAndTheEndOfItsStderr) {
  v1::ChunkOutputs chunk;
  chunk.set_first_index(1);
  chunk.set_item_count(1);
  chunk.add_output_sizes(0);
  chunk.add_errors()->set_message("exit status 1");
  v1::TaskInfo* task = chunk.add_tasks();
  task->set_item("file002.txt");
  task->set_stderr("one\ntwo\nthree\nfour\nfive\nsix\ngzip: file002.txt: No such file or directory\n");
  Capture out, err;
  ResultsPrinter printer(ResultsPrinter::Format::kText, out.file(), err.file());
  printer.Print(chunk);
  printer.Finish();
  EXPECT_EQ(err.Text(),
            "drover: task 2 (file002.txt) failed: exit status 1\n"
            "  | ... (2 earlier lines of its stderr: see `drover logs`)\n"
            "  | three\n  | four\n  | five\n  | six\n"
            "  | gzip: file002.txt: No such file or directory\n");
}

TEST(ResultsPrinter, OutputCutAtMaxOutputIsAWarningAndInTheSummary) {
  v1::ChunkOutputs chunk;
  chunk.set_item_count(2);
  chunk.set_outputs("xy");
  chunk.add_output_sizes(1);
  chunk.add_output_sizes(1);
  chunk.add_tasks()->set_stdout_truncated(true);
  chunk.add_tasks();
  Capture out, err;
  ResultsPrinter printer(ResultsPrinter::Format::kText, out.file(), err.file());
  printer.Print(chunk);
  printer.Finish();
  EXPECT_EQ(out.Text(), "xy");
  EXPECT_EQ(err.Text(),
            "drover: warning: task 1's stdout passed --max-output and was cut\n"
            "drover: warning: 1 task(s) had output cut at --max-output (raise it, or write large output to "
            "files)\n");
}

TEST(ResultsPrinter, JsonHasOneRecordPerTaskAndKeepsBytes) {
  Capture out, err;
  ResultsPrinter printer(ResultsPrinter::Format::kJson, out.file(), err.file());
  printer.Print(Chunk());
  printer.Finish();
  std::vector<std::string> lines;
  std::string text = out.Text();
  for (size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) {
    lines.push_back(text.substr(at, nl - at));
  }
  ASSERT_EQ(lines.size(), 3u) << text;
  EXPECT_EQ(lines[0].rfind(R"({"index":10,"ok":true,"output":"ab","outputBytes":"","error":"")", 0), 0u)
      << lines[0];
  EXPECT_NE(lines[1].find(R"("index":11,"ok":false)"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find(R"("error":"bad item")"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find(R"("output":"","outputBytes":"/w==")"), std::string::npos) << lines[2];
  EXPECT_EQ(err.Text(), "");
}

TEST(Utf8, ValidatesSequences) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));  // surrogate
}

}  // namespace
}  // namespace drover
