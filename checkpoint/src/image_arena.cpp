#include "zeroshard/checkpoint/image_arena.hpp"

#include <algorithm>
#include <cstring>

#include "zeroshard/checkpoint/hdf5_check.hpp"

namespace zs::checkpoint {

void ImageArena::attach(hid_t file_access) {
  H5FD_file_image_callbacks_t callbacks{};
  callbacks.image_malloc = &ImageArena::image_malloc;
  callbacks.image_memcpy = &ImageArena::image_memcpy;
  callbacks.image_realloc = &ImageArena::image_realloc;
  callbacks.image_free = &ImageArena::image_free;
  callbacks.udata_copy = &ImageArena::udata_copy;
  callbacks.udata_free = &ImageArena::udata_free;
  callbacks.udata = this;
  ZS_H5_CHECK(H5Pset_file_image_callbacks(file_access, &callbacks));
}

void ImageArena::release() {
  data_.reset();
  capacity_ = used_ = 0;
}

void* ImageArena::reserve(std::size_t size, std::size_t keep) {
  if (size > capacity_) {
    // Default-initialised (no memset): HDF5 writes what it uses.
    std::unique_ptr<char[]> grown(new char[size]);
    if (keep > 0) std::memcpy(grown.get(), data_.get(), std::min(keep, capacity_));
    data_ = std::move(grown);
    capacity_ = size;
  }
  used_ = size;
  return data_.get();
}

void* ImageArena::image_malloc(std::size_t size, H5FD_file_image_op_t, void* arena) {
  return static_cast<ImageArena*>(arena)->reserve(size, 0);
}

void* ImageArena::image_memcpy(void* dest, const void* src, std::size_t size, H5FD_file_image_op_t, void*) {
  if (dest != src) std::memmove(dest, src, size);
  return dest;
}

void* ImageArena::image_realloc(void* ptr, std::size_t size, H5FD_file_image_op_t, void* arena) {
  auto* self = static_cast<ImageArena*>(arena);
  return self->reserve(size, ptr ? self->used_ : 0);
}

herr_t ImageArena::image_free(void*, H5FD_file_image_op_t, void*) { return 0; }

void* ImageArena::udata_copy(void* arena) { return arena; }

herr_t ImageArena::udata_free(void*) { return 0; }

}  // namespace zs::checkpoint
