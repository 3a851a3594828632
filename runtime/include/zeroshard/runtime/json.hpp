#pragma once
// A small JSON reader for configuration files (Debian 12's Boost 1.74 has no Boost.JSON).
// Keeps object keys in file order and reports errors with line and column.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zs::runtime {

struct JsonValue {
  enum class Type { null, boolean, number, string, array, object };
  Type type = Type::null;
  bool boolean = false;
  double number = 0;
  bool integral = false;  // the number was written without fraction or exponent
  std::string string;
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;
};

std::string type_name(JsonValue::Type type);

/// How deep arrays and objects may nest: configurations are 3 levels deep; a limit keeps a
/// hostile file (30,000 nested '[') from overflowing the stack of this recursive reader.
inline constexpr int kMaxJsonDepth = 64;

/// Parses `text` (RFC 8259: every escape, \uXXXX with surrogate pairs decoded to UTF-8;
/// nesting up to kMaxJsonDepth); throws InvalidArgument "SOURCE:LINE:COLUMN: what is wrong".
JsonValue parse_json(std::string_view text, const std::string& source);

}  // namespace zs::runtime
