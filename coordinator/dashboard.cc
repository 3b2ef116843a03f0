// Implements dashboard.h: one civetweb handler routes the page, its script
// and the JSON API; answers are built from the scheduler through the loop.
#include "coordinator/dashboard.h"

#include <CivetServer.h>

#include <optional>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/plain_json.h"
#include "coordinator/coordinator_loop.h"
#include "coordinator/dashboard_assets.h"
#include "coordinator/scheduler.h"

namespace drover {
namespace {

constexpr uint32_t kFailedTasksShown = 50;

// A page may run scripts and styles from this server only (its own inline
// styles too), and no other site may frame it.
constexpr char kSecurityHeaders[] =
    "Content-Security-Policy: default-src 'self'; style-src 'self' 'unsafe-inline'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n";

void Respond(mg_connection* conn, int status, absl::string_view status_text, absl::string_view content_type,
             absl::string_view body, absl::string_view extra_headers = "") {
  const std::string head =
      absl::StrCat("HTTP/1.1 ", status, " ", status_text, "\r\nContent-Type: ", content_type,
                   "\r\nContent-Length: ", body.size(), "\r\nCache-Control: no-store\r\n", kSecurityHeaders,
                   extra_headers, "\r\n");
  mg_write(conn, head.data(), head.size());
  mg_write(conn, body.data(), body.size());
}

template <typename Message>
void AppendArray(const std::vector<Message>& messages, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->append(PlainJson(messages[i]));
  }
  out->push_back(']');
}

}  // namespace

class DashboardHandler : public CivetHandler {
 public:
  DashboardHandler(CoordinatorLoop* loop, std::string token) : loop_(loop), token_(std::move(token)) {}

  bool handleGet(CivetServer* /*server*/, mg_connection* conn) override {
    const mg_request_info* request = mg_get_request_info(conn);
    if (!Authorized(conn)) {
      Respond(conn, 401, "Unauthorized", "text/plain; charset=utf-8",
              "this coordinator's dashboard needs its token as the password\n",
              "WWW-Authenticate: Basic realm=\"drover\", charset=\"UTF-8\"\r\n");
      return true;
    }
    absl::string_view path = request->local_uri != nullptr ? request->local_uri : "/";
    if (path == "/" || path == "/index.html") {
      Respond(conn, 200, "OK", "text/html; charset=utf-8", kDashboardHtml);
    } else if (path == "/app.js") {
      Respond(conn, 200, "OK", "text/javascript; charset=utf-8", kDashboardJs);
    } else if (path == "/favicon.ico") {
      Respond(conn, 204, "No Content", "image/x-icon", "");  // none, and no 404 in the browser's console
    } else if (path == "/api/state") {
      State(conn);
    } else if (absl::ConsumePrefix(&path, "/api/jobs/") && absl::ConsumeSuffix(&path, "/failed")) {
      uint64_t job_id = 0;
      if (!absl::SimpleAtoi(path, &job_id)) {
        Respond(conn, 400, "Bad Request", "text/plain; charset=utf-8", "not a job id\n");
      } else {
        FailedTasks(conn, job_id);
      }
    } else {
      Respond(conn, 404, "Not Found", "text/plain; charset=utf-8", "no such page\n");
    }
    return true;
  }

 private:
  // The token as the Basic password, compared in time independent of where
  // they differ.
  bool Authorized(mg_connection* conn) const {
    if (token_.empty()) return true;
    const char* header = mg_get_header(conn, "Authorization");
    absl::string_view credentials = header != nullptr ? header : "";
    if (!absl::ConsumePrefix(&credentials, "Basic ")) return false;
    std::string decoded;
    if (!absl::Base64Unescape(credentials, &decoded)) return false;
    const size_t colon = decoded.find(':');
    if (colon == std::string::npos) return false;
    const absl::string_view password = absl::string_view(decoded).substr(colon + 1);
    if (password.size() != token_.size()) return false;
    unsigned char differ = 0;
    for (size_t i = 0; i < token_.size(); ++i) differ |= static_cast<unsigned char>(password[i] ^ token_[i]);
    return differ == 0;
  }

  void State(mg_connection* conn) {
    struct Snapshot {
      std::vector<v1::WorkerInfo> workers;
      std::vector<v1::JobStatus> jobs;
    };
    std::optional<Snapshot> snapshot =
        loop_->Call<Snapshot>([](Scheduler& s) { return Snapshot{s.ListWorkers(), s.ListJobs()}; });
    if (!snapshot) {
      Respond(conn, 503, "Service Unavailable", "text/plain; charset=utf-8", "the coordinator is stopping\n");
      return;
    }
    std::string body = absl::StrCat("{\"nowUnixMs\":", absl::ToUnixMillis(absl::Now()), ",\"workers\":");
    AppendArray(snapshot->workers, &body);
    body.append(",\"jobs\":");
    AppendArray(snapshot->jobs, &body);
    body.push_back('}');
    Respond(conn, 200, "OK", "application/json", body);
  }

  void FailedTasks(mg_connection* conn, uint64_t job_id) {
    v1::ListTasksRequest request;
    request.set_job_id(job_id);
    request.set_state(v1::TASK_STATE_FAILED);
    request.set_limit(kFailedTasksShown);
    std::optional<absl::StatusOr<v1::ListTasksReply>> reply =
        loop_->Call<absl::StatusOr<v1::ListTasksReply>>([&](Scheduler& s) { return s.ListTasks(request); });
    if (!reply || !reply->ok()) {
      Respond(conn, 404, "Not Found", "text/plain; charset=utf-8", absl::StrCat("no job ", job_id, "\n"));
      return;
    }
    Respond(conn, 200, "OK", "application/json", PlainJson(**reply));
  }

  CoordinatorLoop* const loop_;
  const std::string token_;
};

absl::StatusOr<std::unique_ptr<DashboardServer>> DashboardServer::Start(const std::string& address,
                                                                        CoordinatorLoop* loop,
                                                                        const std::string& token) {
  std::unique_ptr<DashboardServer> server(new DashboardServer());
  server->handler_ = std::make_unique<DashboardHandler>(loop, token);
  try {  // civetweb reports a port it cannot bind by throwing
    server->server_ = std::make_unique<CivetServer>(
        std::vector<std::string>{"listening_ports", address, "num_threads", "4"});
  } catch (const std::exception& error) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve the dashboard on ", address, " (address in use or not valid): ", error.what()));
  }
  server->server_->addHandler("/", server->handler_.get());
  std::vector<int> ports = server->server_->getListeningPorts();
  const std::string host = address.substr(0, address.rfind(':'));
  server->address_ = ports.empty() ? address : absl::StrCat(host, ":", ports.front());
  return server;
}

DashboardServer::~DashboardServer() {
  if (server_) server_->close();  // no request runs once the handler goes
}

}  // namespace drover
