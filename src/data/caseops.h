// CaseOps (`lossless_caps_caseops_v1`): the reversible case transform of the
// record tokenizer (PR #1729, used by #1855 and the records after it), so that
// "The", "THE" and "the" share the lowercase pieces of one 8,192-piece model.
//
// Forward, scanning the text once:
//   - one of the four operator characters below, met literally: ESC, then it;
//   - a maximal run of ASCII letters (A-Z, a-z) is a word:
//       all lowercase                 -> unchanged
//       2+ letters, all uppercase     -> ALLCAPS + lowercase(word)
//       uppercase, then only lowercase -> TITLE + lowercase(word)
//       any other mix                 -> TITLE if the first letter is uppercase, then the
//                                        lowercase letters with CAPNEXT before each later
//                                        uppercase one
//   - every other character (digits, punctuation, non-ASCII letters) -> unchanged.
// Only ASCII letters are case-folded, as in the reference (lossless_caps.py
// compares characters with "A" <= c <= "Z"): no Unicode case tables are needed.
//
// The inverse runs the reference's decoder state machine and rejects what no
// forward transform produces (an operator left dangling or misplaced). Both
// sides work on UTF-8 and reject input that is not UTF-8 with one pgolf::Error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pgolf {

inline constexpr std::string_view kCaseOpsName = "lossless_caps_caseops_v1";

// The operators: four private-use code points, 3 UTF-8 bytes each.
inline constexpr char32_t kCaseOpsTitle = 0xE001;
inline constexpr char32_t kCaseOpsAllCaps = 0xE002;
inline constexpr char32_t kCaseOpsCapNext = 0xE003;
inline constexpr char32_t kCaseOpsEsc = 0xE004;

std::string caseops_encode(std::string_view text);
std::string caseops_decode(std::string_view transformed);

// How many bytes of the ORIGINAL text each consecutive piece of a transformed
// text stands for (what the record's byte sidecar stores per token): an
// operator counts 0, the character after ESC its own UTF-8 length, an ASCII
// letter 1, any other character its UTF-8 length. The decoder's state carries
// over from one piece to the next, so the pieces must come in order and
// together form one transformed text; finish() after the last piece.
class CaseOpsByteCounter {
 public:
  int64_t count(std::string_view piece);
  void finish() const;  // fails when the text ended inside an operator sequence

  // The decoder's state between two characters (caseops.cpp).
  struct State {
    bool pending_escape = false;
    bool pending_capnext = false;
    bool in_word = false;
    bool active_allcaps = false;
    char32_t pending_mode = 0;  // kCaseOpsTitle, kCaseOpsAllCaps, or 0
  };

 private:
  State state_;
  int64_t pieces_ = 0;
};

}  // namespace pgolf
