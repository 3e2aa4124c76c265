// pgolf's quantization library, spec quantize-eval-ttt §3, one concept per file:
//
//   int8.h         the baseline's int8 export (§3.2) and the exported-model
//                  types every format shares: QuantizedEntry (kind, codes,
//                  scale, bits), QuantizedModel (entries, code storage),
//                  dequantize()
//   intn.h         the entries' per-row symmetric int5/int6 quantizer (§3.1,
//                  §3.3): code ranges and fp16 scale floors of #1406 and #461
//   clip_search.h  GPTQ-lite percentile clip search (§3.4): per matrix
//                  (#1406) and per row (#562, #461 GPTQ_LITE)
//   hessian.h      HessianAccumulator: X^T X of a layer's inputs, averaged and
//                  damped as §3.7; Hessians by weight name
//   gptq.h         full Hessian GPTQ (§3.6): #1406 and #562 variants
//   prune.h        magnitude pruning (§3.8) and selective ±1 pruning to a
//                  byte budget (§3.9)
//   scheme.h       each entry's format per tensor (§3.5), quantize_model and
//                  dequantize_model
//   bitpack.h      int5/int6 codes packed at their width, the alternative to
//                  int8 containers (the artifact stores either)
//
// The artifact (artifact/artifact.h) stores any QuantizedModel.
#pragma once

#include "quant/bitpack.h"
#include "quant/clip_search.h"
#include "quant/gptq.h"
#include "quant/hessian.h"
#include "quant/int8.h"
#include "quant/intn.h"
#include "quant/prune.h"
#include "quant/scheme.h"
