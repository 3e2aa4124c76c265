// The CaseOps transform on UTF-8 bytes. Only ASCII letters change case and the
// operators are 3-byte sequences, so the forward pass copies everything else
// byte for byte once it has checked that it is well-formed UTF-8.
#include "data/caseops.h"

#include "common/error.h"
#include "data/utf8.h"

namespace pgolf {
namespace {

bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_letter(char c) { return is_upper(c) || is_lower(c); }
bool is_letter(char32_t c) { return c < 0x80 && is_letter(static_cast<char>(c)); }
char to_lower(char c) { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }
char to_upper(char c) { return is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c; }
bool is_operator(char32_t c) { return c >= kCaseOpsTitle && c <= kCaseOpsEsc; }

// U+E001..U+E004 in UTF-8: EE 80 81..84.
void append_operator(std::string& out, char32_t op) {
  out += '\xEE';
  out += '\x80';
  out += static_cast<char>(0x80 | (op & 0x3F));
}

// The code point at s[pos]; fails, naming `what` and the offset, if it is not UTF-8.
std::pair<char32_t, size_t> next_char(std::string_view s, size_t pos, const char* what) {
  const auto [cp, len] = decode_utf8(s, pos);
  PGOLF_CHECK(len != 0, "{}: invalid UTF-8 at byte {} (0x{:02X})", what, pos,
              static_cast<unsigned char>(s[pos]));
  return {cp, len};
}

void encode_word(std::string_view word, std::string& out) {
  size_t upper = 0;
  for (const char c : word) upper += is_upper(c) ? 1 : 0;
  if (upper == 0) {
    out += word;
    return;
  }
  const bool first_upper = is_upper(word[0]);
  if (word.size() >= 2 && upper == word.size()) {
    append_operator(out, kCaseOpsAllCaps);
  } else if (first_upper) {
    append_operator(out, kCaseOpsTitle);
  }
  out += to_lower(word[0]);
  for (size_t i = 1; i < word.size(); ++i) {
    // In a mixed word (not all uppercase), each later capital gets CAPNEXT.
    if (is_upper(word[i]) && upper != word.size()) append_operator(out, kCaseOpsCapNext);
    out += to_lower(word[i]);
  }
}

// What the decoder does with one character of a transformed text.
enum class Action { kDrop, kCopy, kUpper };

// One step of the reference's decoder (decode_lossless_caps_v2): operators set
// up a mode for the next word or letter, letters consume it. Returns what is
// wrong when no forward transform produces this sequence, else nullptr.
const char* step(CaseOpsByteCounter::State& s, char32_t c, Action& action) {
  const bool letter = is_letter(c);
  action = Action::kDrop;
  if (s.pending_escape) {
    if (s.pending_mode != 0 && !letter)
      return "an escaped character cannot take a pending TITLE/ALLCAPS";
    s.pending_escape = false;
    s.in_word = letter;
    if (!letter) s.active_allcaps = false;
    action = Action::kCopy;
    return nullptr;
  }
  if (c == kCaseOpsEsc) {
    s.pending_escape = true;
    return nullptr;
  }
  if (c == kCaseOpsTitle || c == kCaseOpsAllCaps) {
    if (s.pending_mode != 0 || s.in_word || s.pending_capnext) {
      return "TITLE or ALLCAPS inside a word or after another case operator";
    }
    s.pending_mode = c;
    return nullptr;
  }
  if (c == kCaseOpsCapNext) {
    if (s.pending_capnext) return "two CAPNEXT in a row";
    s.pending_capnext = true;
    return nullptr;
  }
  if (letter) {
    bool upper = false;
    if (!s.in_word) {
      upper = s.pending_mode != 0 || s.pending_capnext;
      s.active_allcaps = s.pending_mode == kCaseOpsAllCaps;
      s.pending_mode = 0;
      s.in_word = true;
    } else {
      if (s.pending_mode != 0) return "TITLE or ALLCAPS in the middle of a word";
      upper = s.active_allcaps || s.pending_capnext;
    }
    s.pending_capnext = false;
    action = upper ? Action::kUpper : Action::kCopy;
    return nullptr;
  }
  if (s.pending_mode != 0 || s.pending_capnext) return "a case operator not followed by a letter";
  s.in_word = false;
  s.active_allcaps = false;
  action = Action::kCopy;
  return nullptr;
}

// What is wrong when a transformed text ends in state `s`, else nullptr.
const char* unfinished(const CaseOpsByteCounter::State& s) {
  if (s.pending_escape) return "the text ends with ESC";
  if (s.pending_mode != 0 || s.pending_capnext) return "the text ends with a case operator";
  return nullptr;
}

}  // namespace

std::string caseops_encode(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (size_t pos = 0; pos < text.size();) {
    const char c = text[pos];
    if (is_letter(c)) {
      size_t end = pos + 1;
      while (end < text.size() && is_letter(text[end])) ++end;
      encode_word(text.substr(pos, end - pos), out);
      pos = end;
    } else if (static_cast<unsigned char>(c) < 0x80) {
      out += c;
      ++pos;
    } else {
      const auto [cp, len] = next_char(text, pos, "CaseOps encode");
      if (is_operator(cp)) append_operator(out, kCaseOpsEsc);
      out.append(text.substr(pos, len));
      pos += len;
    }
  }
  return out;
}

std::string caseops_decode(std::string_view transformed) {
  std::string out;
  out.reserve(transformed.size());
  CaseOpsByteCounter::State state;
  Action action;
  for (size_t pos = 0; pos < transformed.size();) {
    const auto [cp, len] = next_char(transformed, pos, "CaseOps decode");
    if (const char* wrong = step(state, cp, action))
      fail("CaseOps decode: {} (byte {})", wrong, pos);
    if (action == Action::kUpper) {
      out += to_upper(transformed[pos]);
    } else if (action == Action::kCopy) {
      out.append(transformed.substr(pos, len));
    }
    pos += len;
  }
  if (const char* wrong = unfinished(state)) fail("CaseOps decode: {}", wrong);
  return out;
}

int64_t CaseOpsByteCounter::count(std::string_view piece) {
  int64_t bytes = 0;
  Action action;
  for (size_t pos = 0; pos < piece.size();) {
    const auto [cp, len] = decode_utf8(piece, pos);
    PGOLF_CHECK(len != 0, "CaseOps byte count: piece {} is not UTF-8 (byte {})", pieces_, pos);
    if (const char* wrong = step(state_, cp, action)) {
      fail("CaseOps byte count: {} (piece {}, byte {})", wrong, pieces_, pos);
    }
    if (action != Action::kDrop) bytes += static_cast<int64_t>(len);
    pos += len;
  }
  ++pieces_;
  return bytes;
}

void CaseOpsByteCounter::finish() const {
  if (const char* wrong = unfinished(state_)) {
    fail("CaseOps byte count: {} (after {} pieces)", wrong, pieces_);
  }
}

}  // namespace pgolf
