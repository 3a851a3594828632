#include "in_memory_file.hpp"

namespace zs::checkpoint::detail {

Hid create_in_memory_file(std::int64_t data_bytes, ImageArena& arena) {
  Hid access(ZS_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS)));
  // Grow in steps of the expected size (+1 MiB of metadata): one allocation, no re-copying.
  const std::size_t increment = static_cast<std::size_t>(data_bytes) + (std::size_t{1} << 20);
  ZS_H5_CHECK(H5Pset_fapl_core(access.get(), increment, /*backing_store=*/0));
  arena.attach(access.get());
  return Hid(ZS_H5_CHECK(H5Fcreate("zeroshard-in-memory.h5", H5F_ACC_TRUNC, H5P_DEFAULT, access.get())));
}

std::span<const char> file_image(hid_t file, const ImageArena& arena) {
  ZS_H5_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL));
  // The image is the file's allocated address space (EOA); the core driver's memory beyond
  // it (growth slack) is not part of the file.
  const ssize_t size = ZS_H5_CHECK(H5Fget_file_image(file, nullptr, 0));
  return arena.bytes(static_cast<std::size_t>(size));
}

}  // namespace zs::checkpoint::detail
