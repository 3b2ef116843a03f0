// The framing shared by the coordinator's files of records (the journal and the
// result store): each record is [u32 length][u32 crc32 of the payload][payload],
// little-endian, so a torn or corrupt tail is found and cut back.
#ifndef DROVER_COORDINATOR_RECORD_FILE_H_
#define DROVER_COORDINATOR_RECORD_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace drover {

constexpr size_t kRecordHeaderBytes = 8;
constexpr uint32_t kMaxRecordBytes = 1u << 30;

// Little-endian fixed-width integers, as the framing and the items index use them.
void AppendFixed32(uint32_t value, std::string* out);
void AppendFixed64(uint64_t value, std::string* out);
uint32_t ReadFixed32(const char* bytes);  // reads 4 bytes
uint64_t ReadFixed64(const char* bytes);  // reads 8 bytes

// Appends `payload` (at most kMaxRecordBytes), framed, to `*out`.
void AppendRecord(absl::string_view payload, std::string* out);

struct RecordHeader {
  uint32_t length = 0;
  uint32_t checksum = 0;
};
// Reads the kRecordHeaderBytes bytes at `header`.
RecordHeader DecodeRecordHeader(const char* header);
// True when `payload` is what `header` describes.
bool RecordIntact(const RecordHeader& header, absl::string_view payload);

// The record starting at `*at` in `data`: on success sets `*payload` and moves
// `*at` past it. Otherwise returns what is wrong ("a torn record header", "a
// torn record", "a record with a bad checksum") and leaves `*at`.
std::string NextRecord(absl::string_view data, size_t* at, absl::string_view* payload);

// An I/O failure from errno: kPermissionDenied (EACCES, EPERM, EROFS),
// kResourceExhausted (ENOSPC, EDQUOT) or kUnavailable, saying what failed where.
absl::Status IoError(absl::string_view what, const std::string& path);

}  // namespace drover

#endif  // DROVER_COORDINATOR_RECORD_FILE_H_
