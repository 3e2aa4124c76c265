#!/usr/bin/env python3
"""Run record #1855's own phased test-time-training evaluation (`eval_val_ttt_phased`) on the
CPU and write per-document scores, for parity tests of pgolf's implementation.

The record's script (`train_gpt.py` of openai/parameter-golf at the commit in README.md) is
imported from --script behind entry_model.py's CPU shims (FlashAttention-3 / Triton stand-ins,
the as-run environment of ENTRIES["pr1855"]); none of its code is copied here. The function
called is the script's, unmodified:

    eval_val_ttt_phased(h, model, torch.device("cpu"), val_data, forward_ttt_train=model.forward_ttt)

`h` is the script's own Hyperparameters(): the TTT settings of the record's train_seed42.log
(TTT_ENV below; TTT_LORA_ALPHA and TTT_WARM_START_A are class attributes of BatchedLinearLoRA,
read at import, so they are set before it) are put into the environment before the import,
under the --set overrides (model shape, TTT sizes, ...). The model is the script's GPT(h) built
by entry_model.build_model, everything fp32 (entry_model --dtype fp32: model.float() and the
exact fp32 RoPE inv_freq unless --rope-bf16), with --weights loaded strictly (the script's
banked state dict, as `entry_model.py --save` writes it). As the record's pipeline does before
TTT: looping_active = True when NUM_LOOPS > 0, every parameter frozen, RoPE caches rebuilt.
No autocast: the script's torch.autocast(device_type="cuda") is inert on the CPU (its warning
is silenced). One process (world size 1), so batches are processed in queue order.

Validation data: the first --num-tokens tokens of --val-tokens (challenge shard: 256 int32
header words [20240520, 1, n, ...] then n uint16 tokens, BOS id 1 before each document) and
of --val-bytes (same layout, one uint16 per token: its UTF-8 byte count), in a ValidationData
of the script (uint16 val_tokens, int32 val_bytes, caseops_enabled=True, no LUTs), as its
ValidationData/load_validation_byte_sidecar give them. (The record's loader also cuts the
whole shard to a multiple of EVAL_SEQ_LEN plus one token; pass such an N to mimic it.)
The last document must keep >= 2 tokens (the script asserts it).

Per-document scores come from wrappers put on the module around the script's own helpers
(each calls the original and changes nothing): _build_ttt_global_batches (the queue),
_claim_next_batch (which queue entry is processed), _accumulate_bpb (each row's masked loss
sum in float64, byte sum and token count, attributed to the row's document),
train_val_ttt_global_sgd_distributed (the phases: documents and tokens of the global-SGD
stream) and log (the script's lines, sent to stderr). torch.manual_seed(--lora-seed) is called
right before eval_val_ttt_phased: the LoRA A matrices are drawn from the CPU generator inside.

--out FILE.json:
  {"val_loss", "val_bpb",                       (as returned by the script)
   "loss_sum", "byte_sum", "token_count",       (the script's float64 accumulators)
   "docs": [{"index", "start", "len", "loss_sum", "byte_sum", "tokens"
             [, "chunk_loss_sums": [...] with --chunks]}, ...]   (doc-index order)
   "queue": [[orig_batch_idx, [doc indices]], ...]                (processing order)
   "phases": [{"docs", "stream_tokens", "after_batches", "doc_indices"}, ...],
   "settings": {...}, "num_tokens", "num_docs", "lora_seed", "threads", "seconds"}
--save-phases W.safetensors: the model's weights after each phase's global SGD (fp32,
keys "phase{p}.{name}", p = 1..). stdout: a short summary.

  python3 bench/reference/pr1855_ttt.py --script train_gpt.py --weights pert.safetensors \
      --set NUM_LAYERS=5 --set MODEL_DIM=64 ... --set TTT_LORA_RANK=4 ... \
      --val-tokens fineweb_val_000000.bin --val-bytes fineweb_val_bytes_000000.bin \
      --num-tokens 12000 --lora-seed 0 --out ttt.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import entry_model as em  # noqa: E402  (same folder)

# The TTT settings of the record's run: the `Hyperparameters:` block of train_seed42.log
# (TTT_LORA_RANK 96 -> 80, TTT_WEIGHT_DECAY 1.0 -> 0.5, TTT_BETA2 0.999 -> 0.99,
# PHASED_TTT_PREFIX_DOCS 2000 -> 2500, PHASED_TTT_NUM_PHASES 1 -> 3 differ from the script's
# defaults) plus the BatchedLinearLoRA class attributes (not logged; the script's defaults).
TTT_ENV = {
    "TTT_ENABLED": "1", "TTT_LORA_RANK": "80", "TTT_LORA_ALPHA": "144", "TTT_WARM_START_A": "1",
    "TTT_LORA_LR": "0.0001", "TTT_BETA1": "0", "TTT_BETA2": "0.99", "TTT_WEIGHT_DECAY": "0.5",
    "TTT_CHUNK_SIZE": "48", "TTT_EVAL_SEQ_LEN": "2048", "TTT_BATCH_SIZE": "64",
    "TTT_GRAD_STEPS": "1", "TTT_K_LORA": "1", "TTT_MLP_LORA": "1", "TTT_O_LORA": "1",
    "TTT_OPTIMIZER": "adam", "TTT_EVAL_BATCHES": "", "VAL_DOC_FRACTION": "1.0",
    "PHASED_TTT_PREFIX_DOCS": "2500", "PHASED_TTT_NUM_PHASES": "3",
    "GLOBAL_TTT_LR": "0.001", "GLOBAL_TTT_MOMENTUM": "0.9", "GLOBAL_TTT_EPOCHS": "1",
    "GLOBAL_TTT_CHUNK_TOKENS": "32768", "GLOBAL_TTT_BATCH_SEQS": "32",
    "GLOBAL_TTT_WARMUP_START_LR": "0.0", "GLOBAL_TTT_WARMUP_CHUNKS": "0",
    "GLOBAL_TTT_GRAD_CLIP": "1.0", "GLOBAL_TTT_RESPECT_DOC_BOUNDARIES": "1",
}

# Hyperparameters fields eval_val_ttt_phased and the global SGD read (reported and stored).
TTT_FIELDS = (
    "ttt_lora_rank", "ttt_lora_lr", "ttt_chunk_size", "ttt_eval_seq_len", "ttt_batch_size",
    "ttt_grad_steps", "ttt_weight_decay", "ttt_beta1", "ttt_beta2", "ttt_k_lora",
    "ttt_mlp_lora", "ttt_o_lora", "ttt_optimizer", "ttt_eval_batches", "val_doc_fraction",
    "phased_ttt_prefix_docs", "phased_ttt_num_phases", "global_ttt_lr", "global_ttt_momentum",
    "global_ttt_epochs", "global_ttt_chunk_tokens", "global_ttt_batch_seqs",
    "global_ttt_warmup_start_lr", "global_ttt_warmup_chunks", "global_ttt_grad_clip",
    "global_ttt_respect_doc_boundaries", "eval_seq_len", "num_loops", "seed",
)

_WRAPPED = ("_build_ttt_global_batches", "_claim_next_batch", "_accumulate_bpb",
            "train_val_ttt_global_sgd_distributed", "log")


def log(msg: str) -> None:
    print(msg, file=sys.stderr)


def read_shard_prefix(path: Path, count: int) -> np.ndarray:
    """First `count` uint16 entries of a challenge shard (header checked, as the script's
    load_data_shard)."""
    header = np.fromfile(path, dtype="<i4", count=em.SHARD_HEADER_WORDS)
    if (header.size != em.SHARD_HEADER_WORDS or int(header[0]) != em.SHARD_MAGIC
            or int(header[1]) != em.SHARD_VERSION):
        raise SystemExit(f"error: {path}: not a challenge shard (magic/version)")
    if int(header[2]) < count:
        raise SystemExit(f"error: {path}: holds {int(header[2])} tokens, {count} needed")
    return np.fromfile(path, dtype="<u2", count=count, offset=em.SHARD_HEADER_WORDS * 4)


class Recorder:
    """The wrappers put on the script's module while eval_val_ttt_phased runs."""

    def __init__(self, mod, model, val_tokens: torch.Tensor, docs, save_phases: bool,
                 chunks: bool):
        self.mod, self.model, self.val_tokens, self.docs = mod, model, val_tokens, docs
        self.save_phases, self.chunks = save_phases, chunks
        self.queue = None           # [(orig_batch_idx, [(doc_index, (start, len)), ...]), ...]
        self.processed: list[int] = []  # queue indices in claim order (the last one: current)
        self.per_doc: dict[int, list] = {}  # doc index -> [loss f64, bytes f64, tokens, chunks]
        self.accumulators = None    # the script's (loss_sum, byte_sum, token_count) tensors
        self.phases: list[dict] = []
        self.phase_weights: list[dict[str, torch.Tensor]] = []
        self.log_lines: list[str] = []
        self.orig = {}

    @contextlib.contextmanager
    def installed(self):
        self.orig = {n: getattr(self.mod, n) for n in _WRAPPED}
        wrappers = {n: getattr(self, "_w" + n if n.startswith("_") else "_w_" + n)
                    for n in _WRAPPED}
        for n, w in wrappers.items():
            setattr(self.mod, n, w)
        try:
            yield
        finally:
            for n, f in self.orig.items():
                setattr(self.mod, n, f)

    # -- wrappers (same signatures as the script's functions) --------------------------------

    def _w_build_ttt_global_batches(self, doc_entries, h, ascending=False):
        out = self.orig["_build_ttt_global_batches"](doc_entries, h, ascending=ascending)
        if self.queue is not None:
            raise RuntimeError("_build_ttt_global_batches called twice")
        self.queue = [(int(bi), [(int(di), (int(s), int(n))) for di, (s, n) in entries])
                      for bi, entries in out]
        return out

    def _w_claim_next_batch(self, counter_path, queue_len):
        idx = self.orig["_claim_next_batch"](counter_path, queue_len)
        if idx < queue_len:
            self.processed.append(int(idx))
        return idx

    def _w_accumulate_bpb(self, ptl, x, y, chunk_offsets, chunk_lens, pos_idx, base_bytes_lut,
                          has_leading_space_lut, is_boundary_token_lut, loss_sum, byte_sum,
                          token_count, y_bytes=None):
        if y_bytes is None:
            raise RuntimeError("_accumulate_bpb without the byte sidecar (caseops) is not recorded")
        # The script's mask, per row instead of summed over the batch.
        with torch.no_grad():
            pos = pos_idx[: x.size(1)].unsqueeze(0)
            mask = ((chunk_lens.unsqueeze(1) > 0)
                    & (pos >= chunk_offsets.unsqueeze(1))
                    & (pos < (chunk_offsets + chunk_lens).unsqueeze(1))).to(torch.float64)
            row_loss = (ptl.detach().to(torch.float64) * mask).sum(dim=1).tolist()
            row_bytes = (y_bytes.to(torch.float64) * mask).sum(dim=1).tolist()
            row_tokens = chunk_lens.tolist()
        entries = self.queue[self.processed[-1]][1]
        if len(entries) != ptl.size(0):
            raise RuntimeError(f"{ptl.size(0)} rows for a batch of {len(entries)} documents")
        for b, (doc_index, _) in enumerate(entries):
            if row_tokens[b] == 0:
                continue
            rec = self.per_doc.setdefault(doc_index, [0.0, 0.0, 0, []])
            rec[0] += row_loss[b]
            rec[1] += row_bytes[b]
            rec[2] += int(row_tokens[b])
            if self.chunks:
                rec[3].append(row_loss[b])
        if self.accumulators is None:
            self.accumulators = (loss_sum, byte_sum, token_count)
        elif any(a is not b for a, b in zip(self.accumulators, (loss_sum, byte_sum, token_count))):
            raise RuntimeError("_accumulate_bpb called with other accumulators")
        return self.orig["_accumulate_bpb"](
            ptl, x, y, chunk_offsets, chunk_lens, pos_idx, base_bytes_lut, has_leading_space_lut,
            is_boundary_token_lut, loss_sum, byte_sum, token_count, y_bytes=y_bytes)

    def _w_train_val_ttt_global_sgd_distributed(self, h, device, val_data, base_model,
                                                val_tokens, batch_seqs=None):
        # The scored prefix documents, as eval_val_ttt_phased orders them: by (orig batch
        # index, position in the batch), cut to the number its `ttpp:` line reports.
        m = re.search(r"\bgd:(\d+)", next((s for s in reversed(self.log_lines)
                                           if s.startswith("ttpp:")), ""))
        if m is None:
            raise RuntimeError("no ttpp: line before the global SGD")
        scored = sorted((self.queue[q][0], pos, di) for q in self.processed
                        for pos, (di, _) in enumerate(self.queue[q][1]))
        doc_indices = [di for _, _, di in scored[: int(m.group(1))]]
        expect = (torch.cat([self.val_tokens[s:s + n] for s, n in (self.docs[d] for d in doc_indices)])
                  if doc_indices else self.val_tokens[:0])
        if not torch.equal(expect, val_tokens):
            raise RuntimeError("global-SGD stream is not the scored documents' tokens")
        self.phases.append({"docs": len(doc_indices), "stream_tokens": int(val_tokens.numel()),
                            "after_batches": len(self.processed), "doc_indices": doc_indices})
        out = self.orig["train_val_ttt_global_sgd_distributed"](
            h, device, val_data, base_model, val_tokens, batch_seqs=batch_seqs)
        if self.save_phases:
            p = len(self.phases)
            self.phase_weights.append({f"phase{p}.{k}": v.detach().float().clone()
                                       for k, v in base_model.state_dict().items()})
        return out

    def _w_log(self, msg, console=True):
        self.log_lines.append(str(msg))
        return self.orig["log"](msg, console)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--script", required=True, type=Path, help="the record's official train_gpt.py")
    ap.add_argument("--weights", required=True, type=Path,
                    help="the script's (banked) state dict, .safetensors (entry_model.py --save)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a script environment variable (repeatable)")
    ap.add_argument("--val-tokens", required=True, type=Path, help="challenge shard (.bin)")
    ap.add_argument("--val-bytes", required=True, type=Path,
                    help="its byte sidecar (fineweb_val_bytes_*.bin)")
    ap.add_argument("--num-tokens", required=True, type=int, help="use the first N tokens")
    ap.add_argument("--lora-seed", type=int, default=0,
                    help="torch.manual_seed right before eval_val_ttt_phased (default 0)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--rope-bf16", action="store_true",
                    help="keep the bf16-rounded RoPE inv_freq of the run (default: exact fp32)")
    ap.add_argument("--chunks", action="store_true",
                    help="also store each document's loss sum per scored chunk")
    ap.add_argument("--save-phases", type=Path,
                    help="weights after each phase's global SGD (keys 'phase{p}.{name}', fp32)")
    ap.add_argument("--out", type=Path, help="the scores (.json)")
    opt = ap.parse_args()

    t_all = time.perf_counter()
    overrides = dict(TTT_ENV)
    for s in opt.set:
        k, sep, v = s.partition("=")
        if not sep:
            ap.error(f"--set wants NAME=VALUE, got {s!r}")
        overrides[k] = v
    # The script keeps its batch counters in /tmp/ttt_{counter,prefix_counter,pause_flag}_{RUN_ID}.
    run_id = overrides.setdefault("RUN_ID", f"pgolf_pr1855_ttt_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    tmp_files = [Path(f"/tmp/ttt_{n}_{run_id}") for n in ("counter", "prefix_counter", "pause_flag")]

    entry = em.ENTRIES["pr1855"]
    mod, _, blob_id = em.load_script(opt.script, entry, None, overrides)
    torch.set_num_threads(opt.threads)

    # The model: GPT(h) as main() builds it, then everything fp32 (entry_model --dtype fp32).
    model, h = em.build_model(mod, entry)
    model.float()
    if not opt.rope_bf16:
        em.restore_fp32_rope_buffers(mod, entry, model)
    w = em.load_safetensors(opt.weights)
    cur = model.state_dict()
    missing, extra = [k for k in cur if k not in w], [k for k in w if k not in cur]
    if missing or extra:
        raise SystemExit(f"error: {opt.weights}: missing keys {missing}, unexpected keys {extra}")
    bad = [k for k in cur if tuple(w[k].shape) != tuple(cur[k].shape)]
    if bad:
        raise SystemExit(f"error: {opt.weights}: shapes differ for {bad} (check --set)")
    model.load_state_dict({k: w[k].to(cur[k].dtype) for k in cur}, strict=True)
    # train_and_eval before eval_val_ttt_phased: looping on, parameters frozen, RoPE caches
    # rebuilt for TTT_EVAL_SEQ_LEN (the cached values do not depend on the length).
    if h.num_loops > 0:
        model.looping_active = True
    for p in model.parameters():
        p.requires_grad_(False)
    for block in model.blocks:
        rot = block.attn.rotary
        rot._cos_cached = rot._sin_cached = None
        rot._seq_len_cached = 0
        rot(h.ttt_eval_seq_len, torch.device("cpu"), torch.float32)

    # Validation data, with the script's ValidationData dtypes (uint16 tokens, int32 bytes).
    n = opt.num_tokens
    tok = torch.from_numpy(read_shard_prefix(opt.val_tokens, n).astype(np.uint16))
    byt = torch.from_numpy(read_shard_prefix(opt.val_bytes, n).astype(np.int32))
    bos = (tok == mod.BOS_ID).nonzero(as_tuple=True)[0].tolist()
    if not bos:
        raise SystemExit(f"error: no BOS ({mod.BOS_ID}) in the first {n} tokens")
    if n - bos[-1] < 2:
        raise SystemExit(f"error: --num-tokens {n} leaves the last document (BOS at {bos[-1]}) "
                         f"with {n - bos[-1]} token(s); the script needs >= 2 "
                         f"(e.g. --num-tokens {bos[-1] + 2} or {bos[-1] - 1})")
    if bos[0] != 0:
        log(f"note: the first {bos[0]} tokens precede the first BOS; the script skips them")
    val_data = mod.ValidationData.__new__(mod.ValidationData)  # attributes only, no tokenizer
    val_data.sp = None
    val_data.val_tokens = tok
    val_data.caseops_enabled = True
    val_data.base_bytes_lut = val_data.has_leading_space_lut = val_data.is_boundary_token_lut = None
    val_data.val_bytes = byt
    docs = mod._find_docs(tok)

    settings = {f: getattr(h, f) for f in TTT_FIELDS}
    settings["ttt_lora_alpha"] = mod.BatchedLinearLoRA._ALPHA
    settings["ttt_warm_start_a"] = mod.BatchedLinearLoRA._WARM_START_A
    settings["looping_active"] = bool(getattr(model, "looping_active", False))

    rec = Recorder(mod, model, tok, docs, opt.save_phases is not None, opt.chunks)
    t0 = time.perf_counter()
    try:
        with rec.installed(), contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            # torch.autocast(device_type="cuda") without CUDA: "... CUDA is not available.
            # Disabling" (the context is inert, as intended here).
            warnings.filterwarnings("ignore", message=".*CUDA is not available.*")
            torch.manual_seed(opt.lora_seed)
            val_loss, val_bpb = mod.eval_val_ttt_phased(
                h, model, torch.device("cpu"), val_data, forward_ttt_train=model.forward_ttt)
    finally:
        for f in tmp_files:
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
    eval_s = time.perf_counter() - t0

    loss_sum, byte_sum, token_count = (float(a.item()) for a in rec.accumulators)
    doc_rows = []
    for i, (start, length) in enumerate(docs):
        r = rec.per_doc.get(i, [0.0, 0.0, 0, []])
        if r[2] != length - 1:
            raise SystemExit(f"error: document {i}: {r[2]} tokens scored, {length - 1} expected")
        row = {"index": i, "start": start, "len": length, "loss_sum": r[0], "byte_sum": r[1],
               "tokens": r[2]}
        if opt.chunks:
            row["chunk_loss_sums"] = r[3]
        doc_rows.append(row)
    # Checks: per-document sums add up to the script's accumulators, and its result.
    sl, sb, st = (math.fsum(d[k] for d in doc_rows) for k in ("loss_sum", "byte_sum", "tokens"))
    if (abs(sl - loss_sum) > 1e-9 * max(1.0, abs(loss_sum)) or sb != byte_sum
            or st != token_count):
        raise SystemExit(f"error: per-document sums {sl!r} {sb!r} {st!r} != script's "
                         f"{loss_sum!r} {byte_sum!r} {token_count!r}")
    bpb = loss_sum / token_count / math.log(2.0) * (token_count / byte_sum)
    if abs(val_loss - loss_sum / token_count) > 1e-12 or abs(val_bpb - bpb) > 1e-12:
        raise SystemExit(f"error: returned ({val_loss!r}, {val_bpb!r}) != sums' "
                         f"({loss_sum / token_count!r}, {bpb!r})")

    queue = [[rec.queue[q][0], [di for di, _ in rec.queue[q][1]]] for q in rec.processed]
    seconds = time.perf_counter() - t_all
    doc = {"val_loss": val_loss, "val_bpb": val_bpb, "loss_sum": loss_sum, "byte_sum": byte_sum,
           "token_count": token_count, "docs": doc_rows, "queue": queue, "phases": rec.phases,
           "settings": settings, "num_tokens": n, "num_docs": len(docs),
           "lora_seed": opt.lora_seed, "threads": opt.threads, "script_git_blob": blob_id,
           "eval_seconds": eval_s, "seconds": seconds}
    if opt.out:
        opt.out.write_text(json.dumps(doc, indent=1) + "\n")
    if opt.save_phases:
        out = {}
        for d in rec.phase_weights:
            out.update(d)
        em.write_safetensors_ordered(out, opt.save_phases,
                                     {"script_git_blob": blob_id, "phases": str(len(rec.phases))})

    print(f"settings: {' '.join(f'{k}={v}' for k, v in settings.items())}")
    print(f"tokens:{n} docs:{len(docs)} batches:{len(queue)} lora_seed:{opt.lora_seed} "
          f"threads:{opt.threads}")
    for i, p in enumerate(rec.phases):
        print(f"phase {i + 1}: docs:{p['docs']} stream_tokens:{p['stream_tokens']} "
              f"after_batches:{p['after_batches']}")
    print(f"val_loss:{val_loss:.10f} val_bpb:{val_bpb:.10f} loss_sum:{loss_sum:.10f} "
          f"byte_sum:{byte_sum:.0f} token_count:{token_count:.0f} "
          f"eval:{eval_s:.2f}s total:{seconds:.2f}s")


if __name__ == "__main__":
    main()
