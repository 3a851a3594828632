#include "zeroshard/runtime/json.hpp"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "zeroshard/error.hpp"

namespace zs::runtime {

std::string type_name(JsonValue::Type type) {
  switch (type) {
    case JsonValue::Type::null: return "null";
    case JsonValue::Type::boolean: return "a boolean";
    case JsonValue::Type::number: return "a number";
    case JsonValue::Type::string: return "a string";
    case JsonValue::Type::array: return "an array";
    case JsonValue::Type::object: return "an object";
  }
  return "?";
}

namespace {

class Parser {
 public:
  Parser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  JsonValue document() {
    JsonValue v = value();
    skip_space();
    if (at_ < text_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < at_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') ++line, column = 1;
      else ++column;
    }
    throw InvalidArgument(source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what);
  }
  void skip_space() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }
  char peek() {
    skip_space();
    if (at_ >= text_.size()) fail("unexpected end of file");
    return text_[at_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  bool consume_word(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  // Nesting is counted on the way into an array or object: past kMaxJsonDepth the file is
  // refused before the recursion can exhaust the stack.
  struct Nesting {
    Parser& parser;
    explicit Nesting(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxJsonDepth)
        parser.fail("arrays and objects nested deeper than " + std::to_string(kMaxJsonDepth) +
                    " levels (a configuration needs 3)");
    }
    ~Nesting() { --parser.depth_; }
  };

  // Four hex digits of a \u escape.
  unsigned hex4() {
    if (at_ + 4 > text_.size()) fail("unterminated \\u escape");
    unsigned code = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[at_++];
      code <<= 4;
      if (h >= '0' && h <= '9') code |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f') code |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') code |= static_cast<unsigned>(h - 'A' + 10);
      else fail(std::string("malformed \\u escape: '") + h + "' is not a hex digit");
    }
    return code;
  }

  // A \u escape (the "\u" consumed) as UTF-8; a surrogate pair is one code point.
  void unicode_escape(std::string& out) {
    unsigned code = hex4();
    if (code >= 0xDC00 && code <= 0xDFFF) fail("\\u escape: a low surrogate without a high one before it");
    if (code >= 0xD800 && code <= 0xDBFF) {
      if (text_.substr(at_, 2) != "\\u") fail("\\u escape: a high surrogate not followed by a low one");
      at_ += 2;
      const unsigned low = hex4();
      if (low < 0xDC00 || low > 0xDFFF) fail("\\u escape: a high surrogate not followed by a low one");
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  JsonValue value() {
    const char c = peek();
    JsonValue v;
    if (c == '{') return object();
    if (c == '[') return array();
    if (c == '"') {
      v.type = JsonValue::Type::string;
      v.string = string();
      return v;
    }
    for (const bool word : {true, false})
      if (consume_word(word ? "true" : "false")) {
        v.type = JsonValue::Type::boolean;
        v.boolean = word;
        return v;
      }
    if (consume_word("null")) return v;
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return number();
    fail(std::string("unexpected character '") + c + "'");
  }

  JsonValue number() {
    const std::size_t start = at_;
    if (text_[at_] == '-') ++at_;
    bool integral = true;
    while (at_ < text_.size()) {
      const char c = text_[at_];
      if (std::isdigit(static_cast<unsigned char>(c))) ++at_;
      else if (c == '.' || c == 'e' || c == 'E' || ((c == '+' || c == '-') && (text_[at_ - 1] == 'e' || text_[at_ - 1] == 'E')))
        integral = false, ++at_;
      else break;
    }
    const std::string digits(text_.substr(start, at_ - start));
    char* end = nullptr;
    JsonValue v;
    v.type = JsonValue::Type::number;
    v.number = std::strtod(digits.c_str(), &end);
    v.integral = integral;
    if (end != digits.c_str() + digits.size()) fail("malformed number '" + digits + "'");
    return v;
  }

  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (at_ >= text_.size()) fail("unterminated string");
      const char c = text_[at_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) fail("unterminated escape");
      const char e = text_[at_++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': unicode_escape(out); break;
        default: fail(std::string("unsupported escape '\\") + e + "'");
      }
    }
  }

  JsonValue array() {
    const Nesting nesting(*this);
    expect('[');
    JsonValue v;
    v.type = JsonValue::Type::array;
    if (peek() == ']') return ++at_, v;
    while (true) {
      v.array.push_back(value());
      if (peek() == ']') return ++at_, v;
      expect(',');
    }
  }

  JsonValue object() {
    const Nesting nesting(*this);
    expect('{');
    JsonValue v;
    v.type = JsonValue::Type::object;
    if (peek() == '}') return ++at_, v;
    while (true) {
      if (peek() != '"') fail("expected a quoted key");
      std::string key = string();
      for (const auto& [existing, _] : v.object)
        if (existing == key) fail("key \"" + key + "\" appears twice");
      expect(':');
      v.object.emplace_back(std::move(key), value());
      if (peek() == '}') return ++at_, v;
      expect(',');
    }
  }

  std::string_view text_;
  const std::string& source_;
  std::size_t at_ = 0;
  int depth_ = 0;  // arrays and objects open around the current position
};

}  // namespace

JsonValue parse_json(std::string_view text, const std::string& source) { return Parser(text, source).document(); }

namespace {

void write_string(std::string_view text, std::string& out) {
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escaped;
        } else {
          out += c;  // UTF-8 passes through as it is
        }
    }
  }
  out += '"';
}

void write_number(double number, bool integral, std::string& out) {
  if (!std::isfinite(number)) {
    out += "null";  // JSON has no NaN or infinity
    return;
  }
  char text[32];
  if (integral && std::abs(number) < 9.007199254740992e15) std::snprintf(text, sizeof text, "%.0f", number);
  else std::snprintf(text, sizeof text, "%.17g", number);
  out += text;
}

}  // namespace

void write_json(const JsonValue& value, std::string& out) {
  switch (value.type) {
    case JsonValue::Type::null: out += "null"; break;
    case JsonValue::Type::boolean: out += value.boolean ? "true" : "false"; break;
    case JsonValue::Type::number: write_number(value.number, value.integral, out); break;
    case JsonValue::Type::string: write_string(value.string, out); break;
    case JsonValue::Type::array:
      out += '[';
      for (std::size_t i = 0; i < value.array.size(); ++i) {
        if (i) out += ',';
        write_json(value.array[i], out);
      }
      out += ']';
      break;
    case JsonValue::Type::object:
      out += '{';
      for (std::size_t i = 0; i < value.object.size(); ++i) {
        if (i) out += ',';
        write_string(value.object[i].first, out);
        out += ':';
        write_json(value.object[i].second, out);
      }
      out += '}';
      break;
  }
}

std::string write_json(const JsonValue& value) {
  std::string out;
  write_json(value, out);
  return out;
}

JsonValue JsonValue::of(std::string_view text) {
  JsonValue v;
  v.type = Type::string;
  v.string = text;
  return v;
}

JsonValue JsonValue::of(double number) {
  JsonValue v;
  v.type = Type::number;
  v.number = number;
  v.integral = std::isfinite(number) && number == std::floor(number);
  return v;
}

JsonValue JsonValue::of(bool flag) {
  JsonValue v;
  v.type = Type::boolean;
  v.boolean = flag;
  return v;
}

JsonValue JsonValue::array_of(std::vector<JsonValue> items) {
  JsonValue v;
  v.type = Type::array;
  v.array = std::move(items);
  return v;
}

JsonValue JsonValue::object_of(std::vector<std::pair<std::string, JsonValue>> members) {
  JsonValue v;
  v.type = Type::object;
  v.object = std::move(members);
  return v;
}

}  // namespace zs::runtime
