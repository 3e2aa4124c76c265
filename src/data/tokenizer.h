// The SentencePiece tokenizer and the byte-count tables that turn a token
// loss into bits per byte (spec quantize-eval-ttt §1.3-1.4).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace pgolf {

// A loaded SentencePiece model. Copies share the (read-only) processor.
class Tokenizer {
 public:
  static Tokenizer load(const std::filesystem::path& model_file);

  const std::filesystem::path& path() const { return path_; }
  int64_t vocab_size() const;
  int bos_id() const;
  int eos_id() const;

  // Token ids of `text` with no BOS/EOS (sp.encode(text) in Python).
  std::vector<int> encode(std::string_view text) const;
  std::string decode(const std::vector<int>& ids) const;

  // encode(text) with, per token, the span of `text` it stands for
  // (SentencePiece's "surface": EncodeAsImmutableProto in C++,
  // encode_as_immutable_proto in Python). Consecutive surfaces tile the text
  // after normalization; of the byte-fallback pieces of one character, the
  // last carries the whole character and the others are empty.
  struct Pieces {
    std::vector<int> ids;
    std::vector<std::string> surfaces;
  };
  Pieces encode_pieces(std::string_view text) const;

  std::string piece(int id) const;
  int piece_id(std::string_view piece) const;  // the unknown id when absent
  bool is_control(int id) const;
  bool is_unknown(int id) const;
  bool is_unused(int id) const;
  bool is_byte(int id) const;

 private:
  Tokenizer(std::filesystem::path path, std::shared_ptr<sentencepiece::SentencePieceProcessor> sp);

  std::filesystem::path path_;
  std::shared_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

// Fails unless the model's vocabulary has exactly vocab_size pieces.
void check_vocab(const Tokenizer& tokenizer, int64_t vocab_size);

// Per-token byte counts, indexed by token id; table size max(sp vocab, vocab_size).
struct ByteLuts {
  torch::Tensor base_bytes;         // int16: UTF-8 bytes of the piece without its leading "▁"
  torch::Tensor has_leading_space;  // bool: the piece starts with "▁"
  torch::Tensor is_boundary;        // bool: control/unknown/unused (and ids past the model)
  // The validation byte sidecar when the data has one (CaseOps), else undefined:
  // int32, one entry per token of the validation stream it was loaded for, the
  // token's count of original UTF-8 bytes. When defined, val_bpb counts a
  // target at stream position i as sidecar[i] bytes and the tables above are
  // not used (eval/val_bpb.h).
  torch::Tensor sidecar = {};

  ByteLuts to(torch::Device device) const;
};

ByteLuts build_byte_luts(const Tokenizer& tokenizer, int64_t vocab_size);

// Bytes each target stands for: base_bytes[t] + (has_leading_space[t] && !is_boundary[p]),
// int64, shape of target_ids, on the device of the tables and ids.
torch::Tensor target_bytes(const ByteLuts& luts, const torch::Tensor& prev_ids,
                           const torch::Tensor& target_ids);

}  // namespace pgolf
