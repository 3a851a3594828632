#include "h5_attributes.hpp"

#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/hdf5_check.hpp"

namespace zs::checkpoint::detail {

namespace {

Hid variable_string_type() {
  Hid type(ZS_H5_CHECK(H5Tcopy(H5T_C_S1)));
  ZS_H5_CHECK(H5Tset_size(type.get(), H5T_VARIABLE));
  ZS_H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8));
  return type;
}

Hid create(hid_t object, const std::string& name, hid_t type, hid_t space) {
  if (H5Aexists(object, name.c_str()) > 0) ZS_H5_CHECK(H5Adelete(object, name.c_str()));
  return Hid(ZS_H5_CHECK(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT)));
}

Hid vector_space(std::size_t n) {
  const hsize_t dims[1] = {n};
  return Hid(ZS_H5_CHECK(H5Screate_simple(1, dims, nullptr)));
}

// The attribute's element count, bounded: a corrupt dataspace must not become a huge
// allocation or a loop over 2^40 elements in HDF5's conversion.
constexpr std::int64_t kMaxAttributeElements = std::int64_t{1} << 24;

std::int64_t element_count(hid_t attribute, const std::string& name) {
  Hid space(ZS_H5_CHECK(H5Aget_space(attribute)));
  const std::int64_t count = ZS_H5_CHECK(H5Sget_simple_extent_npoints(space.get()));
  if (count < 0 || count > kMaxAttributeElements)
    throw CheckpointError(field_problem(name, std::to_string(count) + " elements", "at most 2^24 (corrupt attribute?)"));
  return count;
}

// Refuses an attribute whose stored type is not of `kind` before HDF5 converts it (a corrupt
// or edited type would otherwise be read as something else).
void require_class(hid_t attribute, const std::string& name, H5T_class_t kind, const char* expected) {
  Hid type(ZS_H5_CHECK(H5Aget_type(attribute)));
  if (ZS_H5_CHECK(H5Tget_class(type.get())) != kind)
    throw CheckpointError(field_problem(name, "an attribute of another type", expected));
}

}  // namespace

void write_attribute(hid_t object, const std::string& name, std::int64_t value) {
  Hid space(ZS_H5_CHECK(H5Screate(H5S_SCALAR)));
  Hid attribute = create(object, name, H5T_STD_I64LE, space.get());
  ZS_H5_CHECK(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value));
}

void write_attribute(hid_t object, const std::string& name, const std::string& value) {
  Hid type = variable_string_type();
  Hid space(ZS_H5_CHECK(H5Screate(H5S_SCALAR)));
  Hid attribute = create(object, name, type.get(), space.get());
  const char* text = value.c_str();
  ZS_H5_CHECK(H5Awrite(attribute.get(), type.get(), &text));
}

void write_attribute(hid_t object, const std::string& name, const std::vector<std::string>& values) {
  Hid type = variable_string_type();
  Hid space = vector_space(values.size());
  Hid attribute = create(object, name, type.get(), space.get());
  std::vector<const char*> texts;
  for (const std::string& v : values) texts.push_back(v.c_str());
  ZS_H5_CHECK(H5Awrite(attribute.get(), type.get(), texts.data()));
}

void write_attribute(hid_t object, const std::string& name, const std::vector<std::uint32_t>& values) {
  Hid space = vector_space(values.size());
  Hid attribute = create(object, name, H5T_STD_U32LE, space.get());
  ZS_H5_CHECK(H5Awrite(attribute.get(), H5T_NATIVE_UINT32, values.data()));
}

bool has_attribute(hid_t object, const std::string& name) { return ZS_H5_CHECK(H5Aexists(object, name.c_str())) > 0; }

std::int64_t read_int_attribute(hid_t object, const std::string& name) {
  Hid attribute(ZS_H5_CHECK(H5Aopen(object, name.c_str(), H5P_DEFAULT)));
  require_class(attribute.get(), name, H5T_INTEGER, "an integer");
  if (element_count(attribute.get(), name) != 1)
    throw CheckpointError(field_problem(name, "several values", "one integer"));
  std::int64_t value = 0;
  ZS_H5_CHECK(H5Aread(attribute.get(), H5T_NATIVE_INT64, &value));
  return value;
}

std::string field_problem(const std::string& name, const std::string& value, const std::string& expected) {
  return "field `" + name + "` = " + value + ", expected " + expected;
}

std::int64_t read_int_in_range(hid_t object, const std::string& name, std::int64_t min, std::int64_t max,
                               const std::string& expected) {
  const std::int64_t value = read_int_attribute(object, name);
  if (value < min || value > max) throw CheckpointError(field_problem(name, std::to_string(value), expected));
  return value;
}

std::vector<std::string> read_strings_attribute(hid_t object, const std::string& name) {
  Hid attribute(ZS_H5_CHECK(H5Aopen(object, name.c_str(), H5P_DEFAULT)));
  require_class(attribute.get(), name, H5T_STRING, "text");
  Hid type = variable_string_type();
  std::vector<char*> texts(element_count(attribute.get(), name), nullptr);
  ZS_H5_CHECK(H5Aread(attribute.get(), type.get(), texts.data()));
  std::vector<std::string> values;
  for (char* t : texts) values.emplace_back(t ? t : "");
  Hid space(ZS_H5_CHECK(H5Aget_space(attribute.get())));
  H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, texts.data());
  return values;
}

std::string read_string_attribute(hid_t object, const std::string& name) {
  auto values = read_strings_attribute(object, name);
  if (values.size() != 1) throw CheckpointError(field_problem(name, std::to_string(values.size()) + " texts", "one"));
  return values.front();
}

std::vector<std::uint32_t> read_uint32s_attribute(hid_t object, const std::string& name) {
  Hid attribute(ZS_H5_CHECK(H5Aopen(object, name.c_str(), H5P_DEFAULT)));
  require_class(attribute.get(), name, H5T_INTEGER, "unsigned 32-bit integers");
  std::vector<std::uint32_t> values(element_count(attribute.get(), name));
  ZS_H5_CHECK(H5Aread(attribute.get(), H5T_NATIVE_UINT32, values.data()));
  return values;
}

std::vector<std::string> attribute_names(hid_t object) {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5A_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->emplace_back(name);
    return 0;
  };
  ZS_H5_CHECK(H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names));
  return names;
}

}  // namespace zs::checkpoint::detail
