#include "client_sdk/python/native/proto_dict.h"

#include <google/protobuf/descriptor.h>

#include <string>

namespace tensorpager::python {
namespace py = pybind11;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

namespace {

py::object EnumName(const FieldDescriptor* field, int number) {
  const google::protobuf::EnumValueDescriptor* value =
      field->enum_type()->FindValueByNumber(number);
  // A number this build does not know (a newer server): keep the number.
  if (value == nullptr) return py::int_(number);
  return py::str(value->name());
}

py::object Singular(const Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return py::int_(r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return py::int_(r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return py::int_(r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return py::int_(r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return py::float_(r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return py::float_(r->GetFloat(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return py::bool_(r->GetBool(m, f));
    case FieldDescriptor::CPPTYPE_ENUM:
      return EnumName(f, r->GetEnumValue(m, f));
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = r->GetStringReference(m, f, &scratch);
      if (f->type() == FieldDescriptor::TYPE_BYTES) return py::bytes(s);
      return py::str(s);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (!r->HasField(m, f)) return py::none();
      return MessageToDict(r->GetMessage(m, f));
  }
  return py::none();
}

py::object Repeated(const Message& m, const FieldDescriptor* f, int i) {
  const Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return py::int_(r->GetRepeatedInt32(m, f, i));
    case FieldDescriptor::CPPTYPE_INT64:
      return py::int_(r->GetRepeatedInt64(m, f, i));
    case FieldDescriptor::CPPTYPE_UINT32:
      return py::int_(r->GetRepeatedUInt32(m, f, i));
    case FieldDescriptor::CPPTYPE_UINT64:
      return py::int_(r->GetRepeatedUInt64(m, f, i));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return py::float_(r->GetRepeatedDouble(m, f, i));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return py::float_(r->GetRepeatedFloat(m, f, i));
    case FieldDescriptor::CPPTYPE_BOOL:
      return py::bool_(r->GetRepeatedBool(m, f, i));
    case FieldDescriptor::CPPTYPE_ENUM:
      return EnumName(f, r->GetRepeatedEnumValue(m, f, i));
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = r->GetRepeatedStringReference(m, f, i, &scratch);
      if (f->type() == FieldDescriptor::TYPE_BYTES) return py::bytes(s);
      return py::str(s);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageToDict(r->GetRepeatedMessage(m, f, i));
  }
  return py::none();
}

}  // namespace

py::dict MessageToDict(const Message& message) {
  py::dict out;
  const google::protobuf::Descriptor* d = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->real_containing_oneof() != nullptr && !r->HasField(message, f)) {
      continue;  // only the member of a oneof that is set
    }
    if (f->is_map()) {
      py::dict map;
      const FieldDescriptor* key = f->message_type()->map_key();
      const FieldDescriptor* value = f->message_type()->map_value();
      for (int j = 0; j < r->FieldSize(message, f); ++j) {
        const Message& entry = r->GetRepeatedMessage(message, f, j);
        map[Singular(entry, key)] = Singular(entry, value);
      }
      out[py::str(f->name())] = std::move(map);
    } else if (f->is_repeated()) {
      py::list list;
      for (int j = 0; j < r->FieldSize(message, f); ++j) {
        list.append(Repeated(message, f, j));
      }
      out[py::str(f->name())] = std::move(list);
    } else {
      out[py::str(f->name())] = Singular(message, f);
    }
  }
  return out;
}

}  // namespace tensorpager::python
