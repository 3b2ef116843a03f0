// Integration: HTTP jobs (`drover run --http`) through the real coordinator,
// worker and CLI, against a real nginx started from a generated config (with
// Debian's echo module for slow answers and echoed bodies) and a test CA.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/harness.h"

namespace drover::testing {
namespace {

constexpr char kNginx[] = "/usr/sbin/nginx";
constexpr char kEchoModule[] = "/usr/lib/nginx/modules/ngx_http_echo_module.so";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Sends `request` to 127.0.0.1:port and returns the whole answer ("" if none).
std::string Ask(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) answer.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return answer;
}

// nginx on two free loopback ports (plain HTTP, and TLS with HTTP/2) serving
// files and the endpoints the tests need. Its access log has a line per
// request: "METHOD URI STATUS CONNECTION PROTOCOL X-Drover-Test".
class Nginx {
 public:
  Nginx() {
    char dir[] = "/tmp/drover-nginx-XXXXXX";
    dir_ = mkdtemp(dir);
    http_port_ = FreePort();
    https_port_ = FreePort();
    std::filesystem::create_directories(dir_ + "/www/files");
    std::filesystem::create_directories(dir_ + "/tmp");
    std::mt19937 random(7);
    for (int i = 0; i < 20; ++i) {  // binary files of differing sizes, for --output-dir
      std::string bytes(static_cast<size_t>(1 + i * 997), '\0');
      for (char& c : bytes) c = static_cast<char>(random());
      WriteFile(absl::StrCat(dir_, "/www/files/", i, ".bin"), bytes);
    }
    WriteFile(dir_ + "/www/small.txt", "hello\n");
    WriteFile(dir_ + "/www/big.bin", std::string(100000, 'b'));
    WriteFile(dir_ + "/www/slow.bin", std::string(4000, 's'));
    CommandResult certificates = RunProgram(
        {"/bin/sh", "-c",
         absl::StrCat("set -e; cd ", dir_, "; S='-days 2 -nodes -newkey rsa:2048';",
                      "openssl req -x509 $S -keyout ca.key -out ca.pem -subj /CN=drover-test-ca 2>/dev/null;",
                      "openssl req -x509 $S -keyout other.key -out other.pem -subj /CN=other-ca 2>/dev/null;",
                      "openssl req $S -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null;",
                      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san;",
                      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem "
                      "-days 2 -extfile san 2>/dev/null")});
    EXPECT_EQ(certificates.exit_code, 0) << certificates.err;
    WriteFile(dir_ + "/nginx.conf", Config());
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{kNginx, "-p", dir_, "-c", dir_ + "/nginx.conf", "-e", dir_ + "/error.log"});
    ready_ = WaitUntil([&] { return ActiveConnections() > 0; }, absl::Seconds(20));
    EXPECT_TRUE(ready_) << "nginx did not start: " << process_->Log() << ReadFile(dir_ + "/error.log");
  }
  ~Nginx() {
    process_.reset();
    std::filesystem::remove_all(dir_);
  }

  bool ready() const { return ready_; }
  std::string Url(const std::string& path) const { return absl::StrCat("http://127.0.0.1:", http_port_, path); }
  std::string TlsUrl(const std::string& path) const {
    return absl::StrCat("https://127.0.0.1:", https_port_, path);
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::vector<std::string> AccessLog() const { return Lines(ReadFile(dir_ + "/access.log")); }
  // Connections open now, this one included (nginx's stub_status); 0 if none answer.
  int ActiveConnections() const {
    std::string answer = Ask(http_port_, "GET /stub HTTP/1.0\r\n\r\n");
    size_t at = answer.find("Active connections: ");
    int count = 0;
    if (at == std::string::npos ||
        !absl::SimpleAtoi(absl::string_view(answer).substr(at + 20, answer.find('\n', at) - at - 20), &count)) {
      return 0;
    }
    return count;
  }

 private:
  std::string Config() const {
    const std::string& d = dir_;
    return absl::StrCat(
        "load_module ", kEchoModule, ";\n",
        "daemon off; master_process off; worker_processes 1; pid ", d, "/nginx.pid;\n",
        "error_log ", d, "/error.log; worker_rlimit_nofile 10000;\n",
        "events { worker_connections 8000; }\n",
        "http {\n",
        "  log_format drover '$request_method $uri $status $connection $server_protocol \"$http_x_drover_test\"';\n",
        "  access_log ", d, "/access.log drover;\n",
        "  client_body_temp_path ", d, "/tmp/body; proxy_temp_path ", d, "/tmp/proxy; fastcgi_temp_path ", d,
        "/tmp/fastcgi; uwsgi_temp_path ", d, "/tmp/uwsgi; scgi_temp_path ", d, "/tmp/scgi;\n",
        "  default_type application/octet-stream; keepalive_requests 100000;\n",
        "  server {\n",
        "    listen 127.0.0.1:", http_port_, ";\n",
        "    listen 127.0.0.1:", https_port_, " ssl http2;\n",
        "    ssl_certificate ", d, "/server.pem; ssl_certificate_key ", d, "/server.key;\n",
        "    root ", d, "/www;\n",
        "    location = /stub { stub_status; access_log off; }\n",
        "    location = /status/404 { return 404; }\n",
        "    location = /status/503 { return 503; }\n",
        "    location = /redirect { return 302 /small.txt; }\n",
        "    location = /loop { return 302 /loop; }\n",
        "    location = /slow.bin { limit_rate 1000; }\n",  // 4 s for its 4,000 bytes
        "    location = /hold { echo_sleep 4; echo held; }\n",
        "    location = /echo { echo_read_request_body; echo_request_body; }\n",
        "    location = /busy { try_files /ready @busy; }\n",  // 429 until the file `ready` exists
        "    location @busy { add_header Retry-After 2 always; return 429; }\n",
        "  }\n",
        "}\n");
  }

  std::string dir_;
  int http_port_ = 0;
  int https_port_ = 0;
  bool ready_ = false;
  std::unique_ptr<ChildProcess> process_;
};

// A JSON string field of one `--json` result line ("" if absent).
std::string Field(const std::string& line, const std::string& field) {
  std::string key = absl::StrCat("\"", field, "\":");
  size_t at = line.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  if (line[at] != '"') return line.substr(at, line.find_first_of(",}", at) - at);
  size_t end = line.find('"', at + 1);
  return line.substr(at + 1, end - at - 1);
}

// Result lines of `drover --json run` by item.
std::map<std::string, std::string> ByItem(const std::string& json_lines) {
  std::map<std::string, std::string> results;
  for (const std::string& line : Lines(json_lines)) results[Field(line, "item")] = line;
  return results;
}

class HttpTest : public ::testing::Test {
 protected:
  HttpTest() : cluster_({"--heartbeat", "0.1", "--worker-timeout", "3"}) {}
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kNginx) && std::filesystem::exists(kEchoModule))
        << "nginx and its echo module are needed: scripts/install-deps installs them";
    ASSERT_TRUE(nginx_.ready());
  }
  void AddWorker(int slots = 1, std::vector<std::string> flags = {}) {
    cluster_.AddWorker(slots, std::move(flags));
    ASSERT_TRUE(cluster_.WaitForWorkers(1));
  }
  // `drover --json run --http [more...] ::: items...`
  CommandResult Run(std::vector<std::string> more, const std::vector<std::string>& items) {
    std::vector<std::string> args = {"--json", "run", "--http"};
    args.insert(args.end(), more.begin(), more.end());
    args.push_back(":::");
    args.insert(args.end(), items.begin(), items.end());
    return cluster_.Drover(args);
  }
  // GETs of /small.txt?0 .. ?count-1 at `concurrency` in flight.
  CommandResult FetchSmallFile(int count, int concurrency) {
    std::vector<std::string> urls;
    for (int i = 0; i < count; ++i) urls.push_back(nginx_.Url(absl::StrCat("/small.txt?", i)));
    return Run({"--concurrency", absl::StrCat(concurrency)}, urls);
  }

  Nginx nginx_;
  TestCluster cluster_;
};

TEST_F(HttpTest, EachRequestEndsWithItsStatusOrWhatWentWrongAndTheJobGoesOn) {
  AddWorker();
  const std::string ok = nginx_.Url("/small.txt"), missing = nginx_.Url("/status/404"),
                    busy = nginx_.Url("/status/503"), moved = nginx_.Url("/redirect"), loop = nginx_.Url("/loop"),
                    refused = absl::StrCat("http://127.0.0.1:", FreePort(), "/"),
                    unknown = "http://no-such-host.invalid/";
  CommandResult run = Run({"--timeout", "20s"}, {ok, missing, busy, moved, loop, refused, unknown});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  std::map<std::string, std::string> results = ByItem(run.out);
  ASSERT_EQ(results.size(), 7u) << run.out;
  EXPECT_EQ(Field(results[ok], "ok"), "true");
  EXPECT_EQ(Field(results[ok], "httpStatus"), "200");
  EXPECT_EQ(Field(results[ok], "output"), "hello\\n");
  EXPECT_EQ(Field(results[ok], "contentType"), "application/octet-stream");
  EXPECT_EQ(Field(results[missing], "ok"), "false");
  EXPECT_EQ(Field(results[missing], "error"), "HTTP 404");
  EXPECT_EQ(Field(results[busy], "error"), "HTTP 503");
  EXPECT_EQ(Field(results[moved], "ok"), "true");  // followed, and the result says where to
  EXPECT_EQ(Field(results[moved], "redirects"), "1");
  EXPECT_EQ(Field(results[moved], "finalUrl"), ok);
  EXPECT_TRUE(absl::StrContains(Field(results[loop], "error"), "redirects")) << results[loop];
  EXPECT_TRUE(absl::StrContains(Field(results[refused], "error"), "onnect")) << results[refused];
  EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(Field(results[unknown], "error")), "resolv"))
      << results[unknown];
  // Without --json, each failure is printed with its reason.
  CommandResult plain = cluster_.Drover({"run", "--http", ":::", missing});
  EXPECT_TRUE(absl::StrContains(plain.err, "failed: HTTP 404")) << plain.err;

  // --max-redirects 0: the redirect itself is the answer; --accept-status widens success.
  CommandResult not_followed = Run({"--max-redirects", "0"}, {moved});
  EXPECT_EQ(Field(not_followed.out, "error"), "HTTP 302") << not_followed.out;
  CommandResult accepted = Run({"--accept-status", "200-299,404"}, {missing});
  EXPECT_EQ(accepted.exit_code, 0) << accepted.err;
  EXPECT_EQ(Field(accepted.out, "httpStatus"), "404");
}

TEST_F(HttpTest, ATrickleTimesOutAndABodyOverMaxBodyFailsTheTask) {
  AddWorker();
  CommandResult slow = Run({"--timeout", "1s"}, {nginx_.Url("/slow.bin")});
  EXPECT_EQ(slow.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(Field(slow.out, "error"), "timed out")) << slow.out;
  CommandResult big = Run({"--max-body", "1000"}, {nginx_.Url("/big.bin"), nginx_.Url("/small.txt")});
  EXPECT_EQ(big.exit_code, 1);
  std::map<std::string, std::string> results = ByItem(big.out);
  EXPECT_TRUE(absl::StrContains(Field(results[nginx_.Url("/big.bin")], "error"), "larger than 1000 bytes"))
      << big.out;
  EXPECT_EQ(Field(results[nginx_.Url("/small.txt")], "ok"), "true");
}

TEST_F(HttpTest, A429IsRetriedAfterItsRetryAfter) {
  AddWorker();
  CommandResult submitted = cluster_.Drover({"submit", "--http", "--retries", "2", ":::", nginx_.Url("/busy")});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job = Lines(submitted.out).at(0);
  ASSERT_TRUE(WaitUntil([&] {
    for (const std::string& line : nginx_.AccessLog()) {
      if (absl::StartsWith(line, "GET /busy 429")) return true;
    }
    return false;
  })) << "no 429 was answered";
  WriteFile(nginx_.Path("www/ready"), "ready now\n");  // the next attempt succeeds
  CommandResult waited = cluster_.Drover({"wait", "--quiet", job});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
  std::string result = cluster_.Drover({"--json", "results", job}).out;
  EXPECT_EQ(Field(result, "output"), "ready now\\n");
  EXPECT_EQ(Field(result, "attempts"), "2");
  // Retry-After: 2 was honoured (the backoff of a first retry is far shorter).
  double total = 0;
  ASSERT_TRUE(absl::SimpleAtod(Field(result, "totalSeconds"), &total)) << result;
  EXPECT_GE(total, 1.9) << result;
}

TEST_F(HttpTest, WithUrlEachItemIsARequestBodyAndHeadersGoWithIt) {
  AddWorker();
  CommandResult run = Run({"-X", "POST", "--url", nginx_.Url("/echo"), "-H", "X-Drover-Test: yes"},
                          {"alpha", "beta", "gamma"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::map<std::string, std::string> results = ByItem(run.out);
  for (const char* body : {"alpha", "beta", "gamma"}) EXPECT_EQ(Field(results[body], "output"), body);
  int posts = 0;
  for (const std::string& line : nginx_.AccessLog()) {
    if (absl::StartsWith(line, "POST /echo 200") && absl::EndsWith(line, "\"yes\"")) ++posts;
  }
  EXPECT_EQ(posts, 3);
  // The worker keeps its easy handles configured for a job: the next job's
  // requests carry none of this one's method, body or headers.
  CommandResult next = Run({}, {nginx_.Url("/small.txt?after-post")});
  ASSERT_EQ(next.exit_code, 0) << next.err;
  const std::string last = nginx_.AccessLog().back();
  EXPECT_TRUE(absl::StartsWith(last, "GET /small.txt 200 ")) << last;
  EXPECT_FALSE(absl::EndsWith(last, "\"yes\"")) << last;
}

TEST_F(HttpTest, OutputDirFilesAreTheBodiesByteForByte) {
  AddWorker(1, {"--io-threads", "1"});
  std::vector<std::string> urls;
  for (int i = 0; i < 20; ++i) urls.push_back(nginx_.Url(absl::StrCat("/files/", i, ".bin")));
  std::string out_dir = nginx_.Path("pages");
  std::vector<std::string> args = {"run", "--http", "--output-dir", out_dir, ":::"};
  args.insert(args.end(), urls.begin(), urls.end());
  CommandResult run = cluster_.Drover(args);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(ReadFile(absl::StrCat(out_dir, "/", i + 1, ".out")),
              ReadFile(nginx_.Path(absl::StrCat("www/files/", i, ".bin"))))
        << "task " << i + 1;
  }
}

// A plain run prints status lines only, so the bodies stay on the worker
// (discard_body): each line and the joblog still give the body's size, and
// --max-body still holds.
TEST_F(HttpTest, APlainRunGivesEachBodysSizeAndHoldsMaxBody) {
  AddWorker();
  const std::string big = nginx_.Url("/big.bin"), small = nginx_.Url("/small.txt");
  const std::string joblog = nginx_.Path("joblog");
  CommandResult run = cluster_.Drover({"run", "--http", "--joblog", joblog, ":::", big, small});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 2u) << run.out;
  EXPECT_TRUE(absl::StartsWith(lines[0], absl::StrCat("200 ", big, " 100000 bytes "))) << lines[0];
  EXPECT_TRUE(absl::StartsWith(lines[1], absl::StrCat("200 ", small, " 6 bytes "))) << lines[1];
  std::vector<std::string> logged = Lines(ReadFile(joblog));
  ASSERT_EQ(logged.size(), 3u);
  std::vector<std::string> fields = absl::StrSplit(logged[1], '\t');
  ASSERT_GE(fields.size(), 6u) << logged[1];
  EXPECT_EQ(fields[5], "100000") << "Receive";

  CommandResult capped = cluster_.Drover({"run", "--http", "--max-body", "1000", ":::", big});
  EXPECT_EQ(capped.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(capped.err, "larger than 1000 bytes")) << capped.err;
}

TEST_F(HttpTest, TlsTrustsTheGivenCaOnlyAndMultiplexesOverHttp2) {
  AddWorker();
  std::vector<std::string> urls;
  for (int i = 0; i < 50; ++i) urls.push_back(nginx_.TlsUrl(absl::StrCat("/small.txt?", i)));
  CommandResult trusted = Run({"--http-ca", nginx_.Path("ca.pem"), "--concurrency", "50"}, urls);
  EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
  std::set<std::string> connections;
  int http2 = 0;
  for (const std::string& line : nginx_.AccessLog()) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 5 || fields[1] != "/small.txt") continue;
    connections.insert(fields[3]);
    if (fields[4] == "HTTP/2.0") ++http2;
  }
  EXPECT_EQ(http2, 50);
  EXPECT_LE(connections.size(), 2u) << "50 requests over HTTP/2 should share a connection";

  CommandResult system_cas = Run({}, {nginx_.TlsUrl("/small.txt")});
  EXPECT_EQ(system_cas.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(Field(system_cas.out, "error")), "certificate"))
      << system_cas.out;
  CommandResult other_ca = Run({"--http-ca", nginx_.Path("other.pem")}, {nginx_.TlsUrl("/small.txt")});
  EXPECT_EQ(other_ca.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(Field(other_ca.out, "error")), "certificate"))
      << other_ca.out;
}

TEST_F(HttpTest, PlainHttpKeepsConnectionsAlive) {
  AddWorker();
  CommandResult run = FetchSmallFile(200, 4);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::set<std::string> connections;
  for (const std::string& line : nginx_.AccessLog()) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() >= 4 && fields[1] == "/small.txt") connections.insert(fields[3]);
  }
  EXPECT_LE(connections.size(), 20u) << "200 requests at --concurrency 4 should reuse their connections";
}

// libcurl 7.88 makes its sockets without close-on-exec: the connections it
// keeps alive must not leak into the tasks the same worker starts.
TEST_F(HttpTest, ATaskInheritsNoConnectionOrOtherDescriptorFromItsWorker) {
  AddWorker();
  CommandResult fetched = FetchSmallFile(20, 4);
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  ASSERT_GE(nginx_.ActiveConnections(), 2) << "the worker's connections should be kept alive";
  CommandResult listed = cluster_.Drover({"run", ":::", "x", "--", "sh", "-c", "ls /proc/$$/fd"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, "0\n1\n2\n");
}

TEST_F(HttpTest, TwoThousandRequestsAreInFlightAtOnceOnAFixedNumberOfThreads) {
  AddWorker(1, {"--io-capacity", "4096"});
  const pid_t worker = cluster_.worker(0).pid();
  // Warm up: the first requests start gRPC's timer threads (the engine's alarms).
  ASSERT_EQ(Run({}, {nginx_.Url("/small.txt"), nginx_.Url("/small.txt?2")}).exit_code, 0);
  const int threads_before = ProcStatusValue(worker, "Threads");
  EXPECT_EQ(ThreadsNamed(worker, "drover-http"), 1);
  std::vector<std::string> args = {"submit", "--http", "--concurrency", "2000", "--max-body", "64K", ":::"};
  for (int i = 0; i < 2000; ++i) args.push_back(nginx_.Url(absl::StrCat("/hold?", i)));
  CommandResult submitted = cluster_.Drover(args);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  int most_connections = 0, most_threads = 0;
  // Each answer takes 4 s: all 2,000 are held open at once (plus the stub's own).
  EXPECT_TRUE(WaitUntil([&] {
    most_connections = std::max(most_connections, nginx_.ActiveConnections());
    most_threads = std::max(most_threads, ProcStatusValue(worker, "Threads"));
    return most_connections >= 2001;
  })) << "at most " << most_connections << " connections at once";
  EXPECT_EQ(ThreadsNamed(worker, "drover-http"), 1);
  EXPECT_LE(most_threads, threads_before + 2) << "threads grew with the requests in flight";
  CommandResult waited = cluster_.Drover({"wait", "--quiet", Lines(submitted.out).at(0)});
  EXPECT_EQ(waited.exit_code, 0) << waited.err;
}

TEST_F(HttpTest, HttpJobsRunBesideBusyCpuSlots) {
  AddWorker(2);
  CommandResult cpu = cluster_.Drover({"submit", "--range", "0:2", "--", "sleep", "60"});
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  const std::string cpu_job = Lines(cpu.out).at(0);
  auto running = [&] { return Lines(cluster_.Drover({"tasks", cpu_job, "--state", "running"}).out).size(); };
  ASSERT_TRUE(WaitUntil([&] { return running() >= 3; })) << "both slots should be busy (a header and 2 tasks)";
  std::vector<std::string> urls;
  for (int i = 0; i < 100; ++i) urls.push_back(nginx_.Url(absl::StrCat("/small.txt?", i)));
  CommandResult http = Run({}, urls);
  EXPECT_EQ(http.exit_code, 0) << http.err;
  EXPECT_EQ(Lines(http.out).size(), 100u);
  EXPECT_EQ(running(), 3u) << "the CPU tasks still run";
  EXPECT_EQ(cluster_.Drover({"cancel", cpu_job}).exit_code, 0);
}

}  // namespace
}  // namespace drover::testing
