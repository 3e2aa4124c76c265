// One resumable HTTP(S) download with libcurl. The bytes go to a ".part" file
// beside the destination; a later call continues it with a Range request, so
// an interrupted multi-GB download resumes where it stopped. The caller
// verifies the .part and renames it (data/fetch.h decides what "verified" means).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace pgolf {

struct DownloadOptions {
  // (bytes in the .part so far, expected total or -1 if unknown)
  std::function<void(int64_t, int64_t)> on_progress;
  long connect_timeout_s = 20;
  long stall_timeout_s = 60;  // abort when under 1 byte/s for this long
};

struct DownloadResult {
  int64_t part_bytes = 0;    // size of the .part file afterwards
  int64_t resumed_from = 0;  // bytes kept from an earlier call (0: started afresh)
  int64_t total_bytes = -1;  // the server's full size (Content-Length/Range), -1 if unknown
  // Hugging Face answers LFS files with X-Linked-Etag (the file's SHA-256) and
  // X-Linked-Size; empty / -1 when the server sent none.
  std::string linked_sha256;
  int64_t linked_size = -1;
  // Set when the connection broke mid-transfer (dropped, stalled, truncated):
  // what was received is kept in the .part and another call resumes it.
  std::string broken;
};

// Downloads `url` into `part` (appending if it exists and the server honours
// Range, else from the start). Throws pgolf::Error with the URL and the reason
// when retrying cannot help (unreachable host: "offline?"; an HTTP error status).
DownloadResult download_to_part(const std::string& url, const std::filesystem::path& part,
                                const DownloadOptions& options = {});

// A whole small file (the manifest) into memory.
std::string download_to_string(const std::string& url, const DownloadOptions& options = {});

}  // namespace pgolf
