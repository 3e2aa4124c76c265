#include "workflow/http.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string_view>

#include "artifact/artifact.h"
#include "common/error.h"

namespace pgolf {
namespace {

// curl_global_init is not thread-safe and must run once per process.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// What the response headers said. Redirects produce one header block per
// hop; the size headers are taken from the last hop that sent them, the
// X-Linked-* ones from whichever hop carried them (HF sends them with its 302).
struct Headers {
  int64_t content_length = -1;
  int64_t range_total = -1;  // Content-Range: bytes a-b/TOTAL (or */TOTAL)
  std::string linked_etag;
  int64_t linked_size = -1;
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n\"";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

int64_t to_int(const std::string& s) {
  try {
    return std::stoll(s);
  } catch (const std::exception&) {
    return -1;
  }
}

void parse_header(std::string_view line, Headers& h) {
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect)
    h.content_length = -1;
    h.range_total = -1;
    return;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return;
  const std::string name = lower(line.substr(0, colon));
  const std::string value = trim(line.substr(colon + 1));
  if (name == "content-length") h.content_length = to_int(value);
  if (name == "content-range" && value.find('/') != std::string::npos) {
    h.range_total = to_int(value.substr(value.find('/') + 1));
  }
  if (name == "x-linked-etag") h.linked_etag = lower(value);
  if (name == "x-linked-size") h.linked_size = to_int(value);
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  parse_header(std::string_view(data, size * count), *static_cast<Headers*>(user));
  return size * count;
}

// The state of one download_to_part call, shared with the write callback.
struct Transfer {
  CURL* curl = nullptr;
  std::filesystem::path part;
  std::unique_ptr<std::FILE, FileCloser> file;
  int64_t offset = 0;   // bytes kept in the .part (0 once a server ignores Range)
  int64_t written = 0;  // body bytes written by this call
  Headers headers;
  const DownloadOptions* options = nullptr;
  std::string error;  // set by the callback; curl then reports a write error

  int64_t expected_total() const {
    if (headers.range_total >= 0) return headers.range_total;
    if (headers.content_length >= 0) return offset + headers.content_length;
    return -1;
  }
};

// The first body byte says whether the server honoured Range (206: append)
// or sent the whole file (200: start the .part again).
bool open_part(Transfer& t) {
  long code = 0;
  curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &code);
  if (code != 206) t.offset = 0;
  t.file.reset(std::fopen(t.part.c_str(), t.offset > 0 ? "ab" : "wb"));
  if (!t.file) t.error = fmt::format("{}: cannot open for writing", t.part.string());
  return t.file != nullptr;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  if (!t.file && !open_part(t)) return 0;
  const size_t n = size * count;
  if (std::fwrite(data, 1, n, t.file.get()) != n) {
    t.error = fmt::format("{}: write failed (disk full?)", t.part.string());
    return 0;
  }
  t.written += static_cast<int64_t>(n);
  if (t.options->on_progress) t.options->on_progress(t.offset + t.written, t.expected_total());
  return n;
}

// Failures after which the .part is worth resuming.
bool broke_mid_transfer(CURLcode rc) {
  return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
         rc == CURLE_GOT_NOTHING || rc == CURLE_OPERATION_TIMEDOUT;
}

CurlHandle new_handle(const std::string& url, const DownloadOptions& options, char* errbuf) {
  init_curl_once();
  CurlHandle curl(curl_easy_init());
  PGOLF_CHECK(curl != nullptr, "libcurl: cannot create a handle");
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  const std::string agent = fmt::format("pgolf/{}", kPgolfVersion);
  curl_easy_setopt(c, CURLOPT_USERAGENT, agent.c_str());  // copied by libcurl
  return curl;
}

// Turns a failed transfer into one message that says what to do.
[[noreturn]] void fail_transfer(CURL* curl, CURLcode rc, const std::string& url,
                                const char* errbuf) {
  const std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      fail(
          "cannot reach {} ({}). Offline? `pgolf data fetch` needs the network, or --base-url "
          "(PGOLF_FETCH_BASE_URL) pointing at a reachable copy of the export",
          url, detail);
    case CURLE_HTTP_RETURNED_ERROR: {
      long code = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
      fail("{}: HTTP {}{}", url, code,
           code == 404 ? " (not in the export: check --variant, --repo and --base-url)" : "");
    }
    default:
      fail("{}: download failed: {}", url, detail);
  }
}

}  // namespace

DownloadResult download_to_part(const std::string& url, const std::filesystem::path& part,
                                const DownloadOptions& options) {
  char errbuf[CURL_ERROR_SIZE] = {};
  CurlHandle curl = new_handle(url, options, errbuf);
  Transfer t;
  t.curl = curl.get();
  t.part = part;
  t.options = &options;
  std::error_code ec;
  t.offset =
      std::filesystem::exists(part) ? static_cast<int64_t>(std::filesystem::file_size(part)) : 0;
  curl_easy_setopt(t.curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(t.curl, CURLOPT_HEADERDATA, &t.headers);
  curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(t.curl, CURLOPT_WRITEDATA, &t);
  if (t.offset > 0) curl_easy_setopt(t.curl, CURLOPT_RESUME_FROM_LARGE, curl_off_t{t.offset});

  const CURLcode rc = curl_easy_perform(t.curl);
  t.file.reset();  // flush before measuring
  long code = 0;
  curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &code);
  // 416 on a resume: the .part already holds every byte the server has.
  const bool already_complete = rc == CURLE_HTTP_RETURNED_ERROR && code == 416 && t.offset > 0;
  if (!t.error.empty()) fail("{}", t.error);
  const bool broken = broke_mid_transfer(rc);
  if (rc != CURLE_OK && !already_complete && !broken) fail_transfer(t.curl, rc, url, errbuf);
  if (!t.file && rc == CURLE_OK && t.written == 0 && t.offset == 0) {
    std::FILE* empty = std::fopen(part.c_str(), "wb");  // an empty file is still a file
    PGOLF_CHECK(empty != nullptr, "{}: cannot open for writing", part.string());
    std::fclose(empty);
  }
  DownloadResult result;
  result.part_bytes = std::filesystem::exists(part)
                          ? static_cast<int64_t>(std::filesystem::file_size(part, ec))
                          : 0;
  result.resumed_from = t.offset;
  result.total_bytes = already_complete ? t.headers.range_total : t.expected_total();
  const std::string& etag = t.headers.linked_etag;
  const bool is_sha256 =
      etag.size() == 64 && etag.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (is_sha256) result.linked_sha256 = etag;
  result.linked_size = t.headers.linked_size;
  if (broken) result.broken = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  return result;
}

std::string download_to_string(const std::string& url, const DownloadOptions& options) {
  char errbuf[CURL_ERROR_SIZE] = {};
  CurlHandle curl = new_handle(url, options, errbuf);
  std::string body;
  auto append = +[](char* data, size_t size, size_t count, void* user) -> size_t {
    static_cast<std::string*>(user)->append(data, size * count);
    return size * count;
  };
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) fail_transfer(curl.get(), rc, url, errbuf);
  return body;
}

}  // namespace pgolf
