// Implements record_file.h.
#include "coordinator/record_file.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"

namespace drover {
namespace {

uint32_t Checksum(absl::string_view data) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

}  // namespace

void AppendRecord(absl::string_view payload, std::string* out) {
  AppendFixed32(static_cast<uint32_t>(payload.size()), out);
  AppendFixed32(Checksum(payload), out);
  out->append(payload.data(), payload.size());
}

void AppendFixed32(uint32_t value, std::string* out) {
  uint8_t bytes[4];
  google::protobuf::io::CodedOutputStream::WriteLittleEndian32ToArray(value, bytes);
  out->append(reinterpret_cast<const char*>(bytes), sizeof(bytes));
}

void AppendFixed64(uint64_t value, std::string* out) {
  uint8_t bytes[8];
  google::protobuf::io::CodedOutputStream::WriteLittleEndian64ToArray(value, bytes);
  out->append(reinterpret_cast<const char*>(bytes), sizeof(bytes));
}

uint32_t ReadFixed32(const char* bytes) {
  uint32_t value = 0;
  google::protobuf::io::CodedInputStream::ReadLittleEndian32FromArray(reinterpret_cast<const uint8_t*>(bytes),
                                                                      &value);
  return value;
}

uint64_t ReadFixed64(const char* bytes) {
  uint64_t value = 0;
  google::protobuf::io::CodedInputStream::ReadLittleEndian64FromArray(reinterpret_cast<const uint8_t*>(bytes),
                                                                      &value);
  return value;
}

RecordHeader DecodeRecordHeader(const char* header) { return {ReadFixed32(header), ReadFixed32(header + 4)}; }

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
