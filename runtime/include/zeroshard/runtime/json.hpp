#pragma once
// A small JSON reader and writer: configuration files, and the profiler's Chrome traces
// (Debian 12's Boost 1.74 has no Boost.JSON, and the GPU machine can install nothing, so no
// other JSON library). Keeps object keys in file order and reports errors with line and column.

#include <cstdint>
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

  static JsonValue of(std::string_view text);  ///< a string
  static JsonValue of(const char* text) { return of(std::string_view(text)); }
  static JsonValue of(double number);           ///< a number (integral if it has no fraction)
  static JsonValue of(std::int64_t number) { return of(static_cast<double>(number)); }
  static JsonValue of(int number) { return of(static_cast<double>(number)); }
  static JsonValue of(bool flag);
  static JsonValue array_of(std::vector<JsonValue> items);
  static JsonValue object_of(std::vector<std::pair<std::string, JsonValue>> members);
};

std::string type_name(JsonValue::Type type);

/// How deep arrays and objects may nest: configurations are 3 levels deep; a limit keeps a
/// hostile file (30,000 nested '[') from overflowing the stack of this recursive reader.
inline constexpr int kMaxJsonDepth = 64;

/// Parses `text` (RFC 8259: every escape, \uXXXX with surrogate pairs decoded to UTF-8;
/// nesting up to kMaxJsonDepth); throws InvalidArgument "SOURCE:LINE:COLUMN: what is wrong".
JsonValue parse_json(std::string_view text, const std::string& source);

/// Appends `value` as compact JSON text: strings escaped (quote, backslash, control characters;
/// UTF-8 passes through), integral numbers without a fraction (exact below 2^53), others with
/// 17 significant digits (round-trip), NaN and infinity as null (JSON has neither).
void write_json(const JsonValue& value, std::string& out);
std::string write_json(const JsonValue& value);

}  // namespace zs::runtime
