#pragma once
// The one place HDF5 return codes become exceptions, and RAII ownership of hid_t handles.
// The HDF5 error stack is walked into the exception's message; call
// disable_hdf5_error_printing() once so HDF5 does not also print it to stderr.

#include <hdf5.h>

#include <source_location>
#include <string>
#include <utility>

#include "zeroshard/error.hpp"

namespace zs {

/// An HDF5 call failed. what() = call text, file:line, rank/host, the HDF5 error stack.
class Hdf5Error : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] void throw_hdf5_error(const char* call, const std::source_location& loc);
/// Negative herr_t / hid_t / htri_t means failure in every HDF5 API.
template <class Result>
Result check_hdf5(Result result, const char* call, std::source_location loc = std::source_location::current()) {
  if (result < 0) throw_hdf5_error(call, loc);
  return result;
}
}  // namespace detail

namespace checkpoint {

/// Turns off HDF5's automatic printing of error stacks (ZS_H5_CHECK reports them instead).
void disable_hdf5_error_printing();

/// Owns one HDF5 identifier and closes it with H5Idec_ref. Move-only.
class Hid {
 public:
  Hid() = default;
  explicit Hid(hid_t id) : id_(id) {}
  ~Hid() { reset(); }
  Hid(Hid&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Hid& operator=(Hid&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;

  hid_t get() const noexcept { return id_; }
  explicit operator bool() const noexcept { return id_ >= 0; }
  /// Gives up ownership (for a close whose return code matters, e.g. H5Fclose).
  hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }
  void reset() noexcept {
    if (id_ >= 0) H5Idec_ref(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

}  // namespace checkpoint
}  // namespace zs

#define ZS_H5_CHECK(call) ::zs::detail::check_hdf5((call), #call)
