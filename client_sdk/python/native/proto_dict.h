// Protobuf messages as plain Python values, by reflection: a dict per
// message with every field (proto3 defaults included), enums by name,
// 64-bit integers as ints (JSON would make them strings), maps as dicts,
// unset message fields as None. Call with the GIL held.
#ifndef TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_PROTO_DICT_H_
#define TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_PROTO_DICT_H_

#include <google/protobuf/message.h>
#include <pybind11/pybind11.h>

namespace tensorpager::python {

pybind11::dict MessageToDict(const google::protobuf::Message& message);

}  // namespace tensorpager::python

#endif  // TENSORPAGER_CLIENT_SDK_PYTHON_NATIVE_PROTO_DICT_H_
