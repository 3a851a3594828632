#pragma once

#include "zeroshard/error.hpp"

namespace zs::checkpoint {

/// A checkpoint could not be written or read: missing or corrupt files, a different model,
/// a full disk. what() names the file (and tensor where one is involved) and the fix. Raised
/// on every rank of a collective save or load, never on one rank only.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

}  // namespace zs::checkpoint
