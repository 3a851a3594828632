#pragma once
// Typed HDF5 attributes on a file, group or dataset: the few kinds checkpoints use.

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace zs::checkpoint::detail {

void write_attribute(hid_t object, const std::string& name, std::int64_t value);
void write_attribute(hid_t object, const std::string& name, const std::string& value);
void write_attribute(hid_t object, const std::string& name, const std::vector<std::string>& values);
void write_attribute(hid_t object, const std::string& name, const std::vector<std::uint32_t>& values);

bool has_attribute(hid_t object, const std::string& name);
/// Each throws Hdf5Error if the attribute is missing or of another kind.
std::int64_t read_int_attribute(hid_t object, const std::string& name);
std::string read_string_attribute(hid_t object, const std::string& name);
std::vector<std::string> read_strings_attribute(hid_t object, const std::string& name);
std::vector<std::uint32_t> read_uint32s_attribute(hid_t object, const std::string& name);
/// An integer attribute that must lie in [min, max]: throws CheckpointError "field `NAME` = V,
/// expected EXPECTED" otherwise (the caller's catch adds the file). Every integer a reader
/// trusts goes through this: a value cast to int or used in arithmetic is in range first.
std::int64_t read_int_in_range(hid_t object, const std::string& name, std::int64_t min, std::int64_t max,
                               const std::string& expected);
/// "field `NAME` = VALUE, expected EXPECTED": the one wording of a refused saved value.
std::string field_problem(const std::string& name, const std::string& value, const std::string& expected);
/// Every attribute name of an object.
std::vector<std::string> attribute_names(hid_t object);

}  // namespace zs::checkpoint::detail
