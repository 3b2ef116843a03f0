// Implements http_driver.h: a libcurl multi handle on one thread, driven
// with curl_multi_socket_action over epoll (only sockets with something to do
// cost a turn, however many requests are in flight). Transfers wait in a
// time-ordered queue to start (paced by --rate, or backing off before a
// retry), run in the multi handle, and end by recording their item; their
// easy handles are kept, still configured for their job, for the next ones.
#include "worker/http_driver.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <mutex>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/backoff.h"
#include "common/grpc_codec.h"
#include "common/items.h"
#include "common/log.h"
#include "common/status_ranges.h"
#include "worker/start_spacing.h"

namespace drover {

// The longest Retry-After honoured; a server asking for more gets this.
constexpr absl::Duration kMaxRetryAfter = absl::Seconds(60);
// The driver looks at its queues at least this often.
constexpr int kMaxPollMs = 200;
// Easy handles kept for reuse once their transfer ends.
constexpr size_t kMaxIdleHandles = 512;

// How the requests of a job's chunks are made (shared by their transfers, and
// by the easy handles configured with it).
struct HttpChunkSetup {
  uint64_t job_id = 0;
  std::string spec;  // the serialized GrpcSpec it was made from
  std::string method;
  std::string url;  // empty: each item is a URL
  curl_slist* headers = nullptr;
  StatusRanges accept;                      // statuses that succeed
  std::string accept_error;                 // set when accept_status does not parse
  bool discard_body = false;                // count the body's bytes, keep none
  int64_t timeout_ms = 0;                   // 0: none
  int64_t connect_timeout_ms = 0;           // 0: curl's default
  uint32_t max_redirects = 0;               // 0: redirects are not followed
  std::string ca_pem;                       // empty: the system's CAs
  ~HttpChunkSetup() { curl_slist_free_all(headers); }
};

struct HttpTransfer {
  std::shared_ptr<IoChunk> chunk;
  std::shared_ptr<const HttpChunkSetup> setup;
  uint32_t offset = 0;
  std::string item;
  CURL* easy = nullptr;
  std::string body;        // empty when the chunk discards bodies
  uint64_t body_bytes = 0;
  uint64_t max_body = 0;
  bool too_large = false;
  uint32_t attempts = 0;
  absl::Time start_at;
  absl::Time first_start = absl::InfinitePast();
  absl::Time attempt_start;
  char error[CURL_ERROR_SIZE] = {0};
  ~HttpTransfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

// The sockets curl has asked to watch, and the epoll set they are in (driver
// thread only).
struct SocketWatch {
  int epoll_fd;
  absl::flat_hash_set<int> watched;  // registered with events; others have none
};

namespace {

CURLM* NewMulti() {
  static std::once_flag initialized;
  std::call_once(initialized, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return curl_multi_init();
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<HttpTransfer*>(user);
  const size_t bytes = size * count;
  if (transfer->body_bytes + bytes > transfer->max_body) {
    transfer->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  transfer->body_bytes += bytes;
  if (!transfer->setup->discard_body) transfer->body.append(data, bytes);
  return bytes;
}

std::shared_ptr<const HttpChunkSetup> MakeSetup(const v1::Chunk& chunk, std::string spec) {
  const v1::HttpRequest& http = chunk.grpc().http();
  auto setup = std::make_shared<HttpChunkSetup>();
  setup->job_id = chunk.job_id();
  setup->spec = std::move(spec);
  setup->timeout_ms = chunk.grpc().deadline_ms();
  setup->connect_timeout_ms = http.connect_timeout_ms();
  setup->max_redirects = http.max_redirects();
  setup->ca_pem = chunk.grpc().ca_pem();
  setup->url = http.url();
  setup->discard_body = http.discard_body();
  setup->method = !http.method().empty() ? http.method() : http.url().empty() ? "GET" : "POST";
  for (const std::string& header : chunk.grpc().metadata()) {
    const size_t colon = header.find(':');
    if (colon == std::string::npos) continue;
    setup->headers = curl_slist_append(
        setup->headers, absl::StrCat(header.substr(0, colon), ": ", absl::StripLeadingAsciiWhitespace(
                                                                        absl::string_view(header).substr(colon + 1)))
                            .c_str());
  }
  if (!setup->url.empty()) setup->headers = curl_slist_append(setup->headers, "Expect:");  // no 100-continue wait
  absl::StatusOr<StatusRanges> accept = ParseStatusRanges(http.accept_status());
  if (accept.ok()) {
    setup->accept = *std::move(accept);
  } else {  // the coordinator refuses such a job; a coordinator of another make may not
    setup->accept_error = absl::StrCat("accept_status: ", accept.status().message());
  }
  return setup;
}

// libcurl's CURLMOPT_SOCKETFUNCTION: watch `socket` for what curl waits on.
// A socket curl stops watching (a kept-alive connection between requests)
// stays registered with no events, so its next request costs one epoll_ctl,
// not two; it leaves the epoll set when curl closes it (OnCloseSocket).
int OnSocket(CURL*, curl_socket_t socket, int what, void* data, void*) {
  auto* watch = static_cast<SocketWatch*>(data);
  epoll_event event{};
  event.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
  event.data.fd = socket;
  if (what == CURL_POLL_REMOVE) {
    watch->watched.erase(socket);
  } else {
    watch->watched.insert(socket);
  }
  if (epoll_ctl(watch->epoll_fd, EPOLL_CTL_MOD, socket, &event) != 0 && errno == ENOENT && event.events != 0) {
    epoll_ctl(watch->epoll_fd, EPOLL_CTL_ADD, socket, &event);
  }
  return 0;
}

// CURLOPT_OPENSOCKETFUNCTION: curl's sockets are close-on-exec (libcurl 7.88
// makes them without), so tasks the worker starts never inherit one.
curl_socket_t OnOpenSocket(void*, curlsocktype, curl_sockaddr* address) {
  const int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

// CURLOPT_CLOSESOCKETFUNCTION: the socket leaves the epoll set before it is
// closed (a registration lives as long as any copy of the socket does).
int OnCloseSocket(void* data, curl_socket_t socket) {
  auto* watch = static_cast<SocketWatch*>(data);
  watch->watched.erase(socket);
  epoll_ctl(watch->epoll_fd, EPOLL_CTL_DEL, socket, nullptr);
  return close(socket);
}

// Sets up `easy` (new, or reset) for the requests of `setup`.
void ConfigureForSetup(CURL* e, const HttpChunkSetup& setup, SocketWatch* watch) {
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, OnOpenSocket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, OnCloseSocket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, watch);
  if (!setup.url.empty()) curl_easy_setopt(e, CURLOPT_URL, setup.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");  // never file:// or the like from an item
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "drover");
  if (setup.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (setup.method != "GET" || !setup.url.empty()) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, setup.method.c_str());
  }
  if (setup.headers != nullptr) curl_easy_setopt(e, CURLOPT_HTTPHEADER, setup.headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
  if (setup.timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(setup.timeout_ms));
  if (setup.connect_timeout_ms > 0) {
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(setup.connect_timeout_ms));
  }
  if (setup.max_redirects > 0) {
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, static_cast<long>(setup.max_redirects));
  }
  if (!setup.ca_pem.empty()) {
    curl_blob blob{const_cast<char*>(setup.ca_pem.data()), setup.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
  }
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);  // wait to multiplex on an HTTP/2 connection being made
}

// Points `e`, configured for t's setup, at the transfer itself.
void ConfigureForTransfer(HttpTransfer* t, CURL* e) {
  t->easy = e;
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  if (t->setup->url.empty()) {
    curl_easy_setopt(e, CURLOPT_URL, t->item.c_str());
  } else {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->item.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->item.data());  // t->item lives as long as the transfer
  }
}

// Failures worth another attempt: no connection, or one that broke.
bool RetryableCurlCode(CURLcode code) {
  return code == CURLE_COULDNT_CONNECT || code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR ||
         code == CURLE_GOT_NOTHING || code == CURLE_PARTIAL_FILE || code == CURLE_HTTP2 ||
         code == CURLE_HTTP2_STREAM;
}

}  // namespace

HttpDriver::HttpDriver(ChunkFinished chunk_finished)
    : chunk_finished_(std::move(chunk_finished)),
      multi_(NewMulti()),
      epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      watch_(std::make_unique<SocketWatch>(SocketWatch{epoll_fd_, {}})) {
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake);
  thread_ = std::thread([this] { Run(); });
}

HttpDriver::~HttpDriver() {
  Shutdown();
  for (const auto& [easy, setup] : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(easy));
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
  close(wake_fd_);
  close(epoll_fd_);
}

void HttpDriver::Wake() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void HttpDriver::Start(std::shared_ptr<IoChunk> chunk, const std::vector<absl::Time>& starts) {
  std::shared_ptr<const HttpChunkSetup> setup = SetupFor(chunk->chunk());
  if (setup == nullptr) return;  // shutting down
  ChunkItems items(chunk->chunk());
  const absl::Time now = absl::Now();
  std::vector<HttpTransfer*> made;
  for (uint32_t i = 0; i < chunk->item_count(); ++i) {
    auto* t = new HttpTransfer();
    t->chunk = chunk;
    t->setup = setup;
    t->offset = i;
    t->item = std::string(items.Get(i));
    t->max_body = MaxResponseBytes(chunk->chunk().grpc());
    t->start_at = i < starts.size() ? starts[i] : now;
    made.push_back(t);
  }
  {
    absl::MutexLock lock(&mu_);
    in_flight_ += static_cast<int64_t>(made.size());
    incoming_.insert(incoming_.end(), made.begin(), made.end());
  }
  Wake();
}

std::shared_ptr<const HttpChunkSetup> HttpDriver::SetupFor(const v1::Chunk& chunk) {
  std::string spec = chunk.grpc().SerializeAsString();
  absl::MutexLock lock(&mu_);
  if (stopping_) return nullptr;
  // A job's chunks come with the same spec: one setup for all of them lets
  // its easy handles be reused as they are configured.
  if (last_setup_ == nullptr || last_setup_->job_id != chunk.job_id() || last_setup_->spec != spec) {
    last_setup_ = MakeSetup(chunk, std::move(spec));
  }
  return last_setup_;
}

void HttpDriver::CancelJob(uint64_t job_id) {
  {
    absl::MutexLock lock(&mu_);
    cancelled_jobs_.push_back(job_id);
  }
  Wake();
}

void HttpDriver::CancelAll() {
  {
    absl::MutexLock lock(&mu_);
    cancel_all_ = true;
  }
  Wake();
}

uint32_t HttpDriver::in_flight() const {
  absl::MutexLock lock(&mu_);
  return static_cast<uint32_t>(in_flight_);
}

void HttpDriver::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
}

namespace {

// libcurl's CURLMOPT_TIMERFUNCTION: when to tell it that time has passed.
int OnTimer(CURLM*, long timeout_ms, void* deadline) {
  *static_cast<absl::Time*>(deadline) =
      timeout_ms < 0 ? absl::InfiniteFuture() : absl::Now() + absl::Milliseconds(timeout_ms);
  return 0;
}

}  // namespace

void HttpDriver::Run() {
  pthread_setname_np(pthread_self(), "drover-http");
  CURLM* multi = static_cast<CURLM*>(multi_);
  absl::Time curl_deadline = absl::InfiniteFuture();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, OnSocket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, watch_.get());
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, OnTimer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, &curl_deadline);
  std::multimap<absl::Time, HttpTransfer*> waiting;  // to start, by when
  absl::flat_hash_set<HttpTransfer*> running;
  StartSpacing spacing;  // paced jobs' first attempts, as they start
  int still_running = 0;
  // Takes the transfers curl has finished: recorded, or waiting to try again.
  auto take_done = [&] {
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
      if (message->msg != CURLMSG_DONE) continue;
      HttpTransfer* t = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      const CURLcode code = message->data.result;
      curl_multi_remove_handle(multi, message->easy_handle);
      running.erase(t);
      absl::Duration retry_in;
      std::string error;
      if (!ShouldRetry(t, code, &error, &retry_in)) {
        Record(t, std::move(error));
      } else {
        t->start_at = absl::Now() + retry_in;
        waiting.emplace(t->start_at, t);
      }
    }
  };
  std::vector<epoll_event> events(256);
  while (true) {
    std::vector<HttpTransfer*> arrived;
    std::vector<uint64_t> cancelled;
    bool all = false, stopping = false;
    {
      absl::MutexLock lock(&mu_);
      arrived.swap(incoming_);
      cancelled.swap(cancelled_jobs_);
      all = std::exchange(cancel_all_, false);
      stopping = stopping_;
    }
    for (HttpTransfer* t : arrived) waiting.emplace(t->start_at, t);
    if (all || stopping || !cancelled.empty()) {
      auto ends = [&](const HttpTransfer* t) {
        return all || stopping ||
               std::find(cancelled.begin(), cancelled.end(), t->chunk->chunk().job_id()) != cancelled.end();
      };
      for (auto it = waiting.begin(); it != waiting.end();) {
        if (!ends(it->second)) {
          ++it;
          continue;
        }
        Record(it->second, "cancelled");
        it = waiting.erase(it);
      }
      for (auto it = running.begin(); it != running.end();) {
        HttpTransfer* t = *it;
        if (!ends(t)) {
          ++it;
          continue;
        }
        curl_multi_remove_handle(multi, t->easy);
        running.erase(it++);
        Record(t, "cancelled");
      }
    }
    if (stopping) break;
    absl::Time now = absl::Now();
    std::vector<HttpTransfer*> held_back;  // paced starts too close to the job's previous one
    while (!waiting.empty() && waiting.begin()->first <= now) {
      HttpTransfer* t = waiting.begin()->second;
      waiting.erase(waiting.begin());
      if (!t->setup->accept_error.empty()) {
        Record(t, t->setup->accept_error);
        continue;
      }
      const double rate = t->chunk->chunk().grpc().rate();
      if (t->attempts == 0 && rate > 0 && !spacing.MayStart(t->chunk->chunk().job_id(), rate, now, &t->start_at)) {
        held_back.push_back(t);
        continue;
      }
      if (t->easy == nullptr) ConfigureForTransfer(t, TakeIdleHandle(t->setup));
      t->body.clear();
      t->body_bytes = 0;
      t->too_large = false;
      t->error[0] = '\0';
      ++t->attempts;
      t->attempt_start = now;
      if (t->first_start == absl::InfinitePast()) t->first_start = now;
      curl_multi_add_handle(multi, t->easy);  // sets a timer of 0: it starts below
      running.insert(t);
    }
    for (HttpTransfer* t : held_back) waiting.emplace(t->start_at, t);
    now = absl::Now();
    if (curl_deadline <= now) {
      curl_deadline = absl::InfiniteFuture();
      curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &still_running);
      take_done();
    }
    absl::Time wake_at = std::min(curl_deadline, now + absl::Milliseconds(kMaxPollMs));
    if (!waiting.empty()) wake_at = std::min(wake_at, waiting.begin()->first);
    const int64_t wait_ms = absl::ToInt64Milliseconds(absl::Ceil(wake_at - now, absl::Milliseconds(1)));
    const int timeout_ms = static_cast<int>(std::clamp<int64_t>(wait_ms, 0, kMaxPollMs));
    const int ready = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t count;
        (void)!read(wake_fd_, &count, sizeof(count));
        continue;
      }
      if (!watch_->watched.contains(fd)) {
        // An error or hang-up (always reported) on a socket curl is not
        // watching: curl learns of it when it next uses the connection.
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
        continue;
      }
      const uint32_t what = events[i].events;
      const int flags = ((what & EPOLLIN) ? CURL_CSELECT_IN : 0) | ((what & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                        ((what & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(multi, fd, flags, &still_running);
    }
    take_done();
  }
  // The multi handle outlives this frame (the destructor cleans it up).
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, nullptr);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, nullptr);
}

void* HttpDriver::TakeIdleHandle(const std::shared_ptr<const HttpChunkSetup>& setup) {
  // A handle configured for this setup is ready as it is; look among the most
  // recently kept (with one job at a time, the last one).
  constexpr size_t kLookBack = 8;
  for (size_t i = idle_handles_.size(); i > 0 && i + kLookBack > idle_handles_.size(); --i) {
    if (idle_handles_[i - 1].second != setup) continue;
    void* easy = idle_handles_[i - 1].first;
    idle_handles_.erase(idle_handles_.begin() + static_cast<ptrdiff_t>(i - 1));
    return easy;
  }
  CURL* easy;
  if (idle_handles_.empty()) {
    easy = curl_easy_init();
  } else {
    easy = static_cast<CURL*>(idle_handles_.back().first);
    idle_handles_.pop_back();
    curl_easy_reset(easy);
  }
  ConfigureForSetup(easy, *setup, watch_.get());
  return easy;
}

bool HttpDriver::ShouldRetry(HttpTransfer* t, int curl_code, std::string* error, absl::Duration* retry_in) {
  const CURLcode code = static_cast<CURLcode>(curl_code);
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  bool retryable = false;
  if (code == CURLE_OK) {
    if (InRanges(t->setup->accept, static_cast<int>(status))) return false;  // success: *error stays empty
    *error = absl::StrCat("HTTP ", status);
    retryable = status == 429 || status >= 500;
  } else if (t->too_large) {
    *error = absl::StrCat("the body is larger than ", t->max_body, " bytes (--max-body)");
  } else {
    *error = t->error[0] != '\0' ? t->error : curl_easy_strerror(code);
    retryable = RetryableCurlCode(code);
  }
  const uint32_t retries = t->chunk->chunk().grpc().at_most_once() ? 0 : t->chunk->chunk().retries();
  if (retryable && t->attempts <= retries && !t->chunk->cancelled()) {
    curl_off_t after = -1;
    curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &after);
    *retry_in = after > 0 ? std::min(absl::Seconds(after), kMaxRetryAfter) : RetryBackoff(t->attempts);
    return true;
  }
  if (t->attempts > 1) absl::StrAppend(error, " (after ", t->attempts, " attempts)");
  return false;
}

void HttpDriver::Record(HttpTransfer* t, std::string error) {
  const absl::Time now = absl::Now();
  v1::TaskInfo task;
  task.set_attempts(t->attempts);
  if (t->easy != nullptr && t->attempts > 0) {
    long status = 0, redirects = 0;
    char* content_type = nullptr;
    char* final_url = nullptr;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_COUNT, &redirects);
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &content_type);
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &final_url);
    task.set_http_status(static_cast<uint32_t>(status));
    task.set_body_bytes(t->body_bytes);
    if (content_type != nullptr) task.set_content_type(content_type);
    task.set_redirects(static_cast<uint32_t>(redirects));
    if (redirects > 0 && final_url != nullptr) task.set_final_url(final_url);
    task.set_duration_us(static_cast<uint64_t>(absl::ToInt64Microseconds(now - t->attempt_start)));
    task.set_total_duration_us(static_cast<uint64_t>(absl::ToInt64Microseconds(now - t->first_start)));
    task.set_started_unix_us(absl::ToUnixMicros(t->first_start));
  }
  if (t->easy != nullptr && idle_handles_.size() < kMaxIdleHandles) {
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, nullptr);  // t is deleted below
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, nullptr);
    idle_handles_.emplace_back(std::exchange(t->easy, nullptr), t->setup);
  }
  task.set_item(std::move(t->item));  // no handle refers to it (a POST's body) now
  std::shared_ptr<IoChunk> chunk = std::move(t->chunk);
  const uint32_t offset = t->offset;
  std::string body = std::move(t->body);
  delete t;
  {
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }
  if (chunk->Record(offset, std::move(body), std::move(error), std::move(task))) chunk_finished_(chunk);
}

}  // namespace drover
