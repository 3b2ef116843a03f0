// Implements plain_json.h: fields by protobuf reflection, in their declared order;
// strings and doubles are printed by protobuf's own JSON printer.
#include "common/plain_json.h"

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace drover {
namespace {

using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// A string or a double as protobuf's JSON printer writes it (escapes, NaN...).
void AppendValue(const google::protobuf::Value& value, std::string* out) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(value, &json);
  out->append(json);
}

void AppendString(std::string text, std::string* out) {
  google::protobuf::Value value;
  value.set_string_value(std::move(text));
  AppendValue(value, out);
}

void AppendDouble(double number, std::string* out) {
  google::protobuf::Value value;
  value.set_number_value(number);
  AppendValue(value, out);
}

// JOB_STATE_SUCCEEDED of enum JobState -> "succeeded": the value's name
// without the enum's UPPER_SNAKE prefix, lowercased.
std::string ShortName(const EnumValueDescriptor& value) {
  std::string prefix;
  for (char c : value.type()->name()) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c)) && !prefix.empty()) prefix.push_back('_');
    prefix.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  prefix.push_back('_');
  absl::string_view name = value.name();
  if (absl::StartsWith(name, prefix) && name.size() > prefix.size()) name.remove_prefix(prefix.size());
  return absl::AsciiStrToLower(name);
}

void AppendMessage(const Message& message, std::string* out);

// One value of `field`: element `index` of a repeated field, or (index -1)
// the field itself.
void AppendField(const Message& message, const FieldDescriptor& field, int index, std::string* out) {
  const Reflection& r = *message.GetReflection();
  const bool repeated = index >= 0;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(out, repeated ? r.GetRepeatedInt32(message, &field, index) : r.GetInt32(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(out, repeated ? r.GetRepeatedUInt32(message, &field, index) : r.GetUInt32(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(out, repeated ? r.GetRepeatedInt64(message, &field, index) : r.GetInt64(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(out, repeated ? r.GetRepeatedUInt64(message, &field, index) : r.GetUInt64(message, &field));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      AppendDouble(repeated ? r.GetRepeatedDouble(message, &field, index) : r.GetDouble(message, &field), out);
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      AppendDouble(repeated ? r.GetRepeatedFloat(message, &field, index) : r.GetFloat(message, &field), out);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append((repeated ? r.GetRepeatedBool(message, &field, index) : r.GetBool(message, &field)) ? "true"
                                                                                                      : "false");
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      AppendString(ShortName(*(repeated ? r.GetRepeatedEnum(message, &field, index) : r.GetEnum(message, &field))),
                   out);
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string text = repeated ? r.GetRepeatedString(message, &field, index) : r.GetString(message, &field);
      AppendString(field.type() == FieldDescriptor::TYPE_BYTES ? absl::Base64Escape(text) : std::move(text), out);
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      AppendMessage(repeated ? r.GetRepeatedMessage(message, &field, index) : r.GetMessage(message, &field), out);
      break;
  }
}

void AppendMessage(const Message& message, std::string* out) {
  const google::protobuf::Descriptor& descriptor = *message.GetDescriptor();
  const Reflection& r = *message.GetReflection();
  out->push_back('{');
  bool first = true;
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const FieldDescriptor& field = *descriptor.field(i);
    const bool may_be_unset = field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE || field.containing_oneof();
    if (!field.is_repeated() && may_be_unset && !r.HasField(message, &field)) continue;
    if (!first) out->push_back(',');
    first = false;
    AppendString(field.json_name(), out);
    out->push_back(':');
    if (!field.is_repeated()) {
      AppendField(message, field, -1, out);
      continue;
    }
    out->push_back('[');
    for (int j = 0; j < r.FieldSize(message, &field); ++j) {
      if (j > 0) out->push_back(',');
      AppendField(message, field, j, out);
    }
    out->push_back(']');
  }
  out->push_back('}');
}

}  // namespace

std::string PlainJson(const Message& message) {
  std::string json;
  AppendMessage(message, &json);
  return json;
}

}  // namespace drover
