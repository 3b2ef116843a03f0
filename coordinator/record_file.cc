// Implements record_file.h.
#include "coordinator/record_file.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace drover {
namespace {

uint32_t Checksum(absl::string_view data) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

}  // namespace

void AppendRecord(absl::string_view payload, std::string* out) {
  PutU32(out, static_cast<uint32_t>(payload.size()));
  PutU32(out, Checksum(payload));
  out->append(payload.data(), payload.size());
}

RecordHeader DecodeRecordHeader(const char* header) { return {GetU32(header), GetU32(header + 4)}; }

bool RecordIntact(const RecordHeader& header, absl::string_view payload) {
  return payload.size() == header.length && Checksum(payload) == header.checksum;
}

std::string NextRecord(absl::string_view data, size_t* at, absl::string_view* payload) {
  if (data.size() - *at < kRecordHeaderBytes) return "a torn record header";
  RecordHeader header = DecodeRecordHeader(data.data() + *at);
  if (header.length > kMaxRecordBytes || data.size() - *at - kRecordHeaderBytes < header.length) {
    return "a torn record";
  }
  absl::string_view body = data.substr(*at + kRecordHeaderBytes, header.length);
  if (!RecordIntact(header, body)) return "a record with a bad checksum";
  *payload = body;
  *at += kRecordHeaderBytes + header.length;
  return "";
}

absl::Status IoError(absl::string_view what, const std::string& path) {
  int err = errno;
  std::string message = absl::StrCat("cannot ", what, " ", path, ": ", strerror(err));
  if (err == EACCES || err == EPERM || err == EROFS) return absl::PermissionDeniedError(message);
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(message);
  return absl::UnavailableError(message);
}

}  // namespace drover
