// Tokenizer wraps sentencepiece::SentencePieceProcessor behind pgolf errors;
// build_byte_luts restates the reference's build_sentencepiece_luts.
#include "data/tokenizer.h"

#include <fmt/format.h>
#include <sentencepiece_processor.h>

#include <algorithm>
#include <system_error>
#include <utility>

#include "common/error.h"
#include "common/format.h"

namespace pgolf {
namespace {

// U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's marker for a preceding space.
constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";

// "[2, 3]". (Not fmt::join: the fmt headers LibTorch ships may not match the fmt library.)

}  // namespace

Tokenizer::Tokenizer(std::filesystem::path path,
                     std::shared_ptr<sentencepiece::SentencePieceProcessor> sp)
    : path_(std::move(path)), sp_(std::move(sp)) {}

Tokenizer Tokenizer::load(const std::filesystem::path& model_file) {
  std::error_code ec;
  PGOLF_CHECK(std::filesystem::is_regular_file(model_file, ec),
              "tokenizer {}: file not found (expected a SentencePiece .model file)",
              model_file.string());
  auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->Load(model_file.string());
  PGOLF_CHECK(status.ok(), "tokenizer {}: not a SentencePiece model ({})", model_file.string(),
              status.ToString());
  return Tokenizer(model_file, std::move(sp));
}

int64_t Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int Tokenizer::bos_id() const { return sp_->bos_id(); }
int Tokenizer::eos_id() const { return sp_->eos_id(); }

std::vector<int> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  PGOLF_CHECK(status.ok(), "tokenizer {}: cannot encode text ({})", path_.string(),
              status.ToString());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string text;
  const auto status = sp_->Decode(ids, &text);
  PGOLF_CHECK(status.ok(), "tokenizer {}: cannot decode ids ({})", path_.string(),
              status.ToString());
  return text;
}

Tokenizer::Pieces Tokenizer::encode_pieces(std::string_view text) const {
  sentencepiece::ImmutableSentencePieceText spt;
  const auto status = sp_->Encode(text, spt.mutable_proto());
  PGOLF_CHECK(status.ok(), "tokenizer {}: cannot encode text ({})", path_.string(),
              status.ToString());
  Pieces out;
  const size_t n = spt.pieces_size();
  out.ids.reserve(n);
  out.surfaces.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto piece = spt.pieces(static_cast<int>(i));
    out.ids.push_back(static_cast<int>(piece.id()));
    out.surfaces.push_back(piece.surface());
  }
  return out;
}

std::string Tokenizer::piece(int id) const { return sp_->IdToPiece(id); }
int Tokenizer::piece_id(std::string_view piece) const { return sp_->PieceToId(piece); }
bool Tokenizer::is_control(int id) const { return sp_->IsControl(id); }
bool Tokenizer::is_unknown(int id) const { return sp_->IsUnknown(id); }
bool Tokenizer::is_unused(int id) const { return sp_->IsUnused(id); }
bool Tokenizer::is_byte(int id) const { return sp_->IsByte(id); }

void check_vocab(const Tokenizer& tokenizer, int64_t vocab_size) {
  PGOLF_CHECK(tokenizer.vocab_size() == vocab_size,
              "VOCAB_SIZE={} does not match tokenizer vocab_size={} ({})", vocab_size,
              tokenizer.vocab_size(), tokenizer.path().string());
}

ByteLuts ByteLuts::to(torch::Device device) const {
  return {base_bytes.to(device), has_leading_space.to(device), is_boundary.to(device),
          sidecar.defined() ? sidecar.to(device) : torch::Tensor()};
}

ByteLuts build_byte_luts(const Tokenizer& tokenizer, int64_t vocab_size) {
  const int64_t sp_size = tokenizer.vocab_size();
  const int64_t size = std::max(sp_size, vocab_size);
  ByteLuts luts{torch::zeros({size}, torch::kInt16), torch::zeros({size}, torch::kBool),
                torch::ones({size}, torch::kBool)};
  auto base = luts.base_bytes.accessor<int16_t, 1>();
  auto space = luts.has_leading_space.accessor<bool, 1>();
  auto boundary = luts.is_boundary.accessor<bool, 1>();
  for (int id = 0; id < sp_size; ++id) {
    // Control/unknown/unused pieces stand for no text: they keep the defaults.
    if (tokenizer.is_control(id) || tokenizer.is_unknown(id) || tokenizer.is_unused(id)) continue;
    boundary[id] = false;
    if (tokenizer.is_byte(id)) {
      base[id] = 1;
      continue;
    }
    const std::string piece = tokenizer.piece(id);
    std::string_view piece_text = piece;
    if (piece_text.starts_with(kSpaceMarker)) {
      space[id] = true;
      piece_text.remove_prefix(kSpaceMarker.size());
    }
    base[id] = static_cast<int16_t>(piece_text.size());
  }
  return luts;
}

torch::Tensor target_bytes(const ByteLuts& luts, const torch::Tensor& prev_ids,
                           const torch::Tensor& target_ids) {
  PGOLF_CHECK(prev_ids.sizes() == target_ids.sizes(),
              "target_bytes: previous ids {} and target ids {} differ in shape",
              shape_string(prev_ids), shape_string(target_ids));
  const torch::Tensor t = target_ids.reshape(-1).to(torch::kInt64);
  const torch::Tensor p = prev_ids.reshape(-1).to(torch::kInt64);
  const torch::Tensor base = luts.base_bytes.index_select(0, t).to(torch::kInt64);
  const torch::Tensor space = luts.has_leading_space.index_select(0, t).logical_and(
      luts.is_boundary.index_select(0, p).logical_not());
  return (base + space.to(torch::kInt64)).view(target_ids.sizes());
}

}  // namespace pgolf
