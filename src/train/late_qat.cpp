#include "train/late_qat.h"

#include "quant/fake_quant.h"

namespace pgolf {

bool LateQat::maybe_enable(double lr_scale) {
  if (!config_.late_qat || on_ || lr_scale >= config_.qat_threshold) return false;
  set(true);
  return true;
}

void LateQat::set(bool on) {
  on_ = on;
  if (on) {
    model_->set_qat(FakeQuantSpec{config_.qat_bits == 5 ? 15 : 31, config_.qat_match_export},
                    config_.qat_all_matrices);
  } else {
    model_->set_qat(FakeQuantSpec{}, false);
  }
}

}  // namespace pgolf
