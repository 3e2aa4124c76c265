#!/usr/bin/env python3
"""Time the official train_gpt.py's training step in PyTorch, eager and under torch.compile.

The peer of `pgolf bench --compare`: the script (openai/parameter-golf's train_gpt.py, given by
path; none of its code is in this repository) is imported as a module with the settings put into
the environment first (bench/reference/entry_model.py's machinery), its GPT is built as main()
builds it, and one training step is what main()'s loop does with grad_accum_steps = 1: zero the
grads, forward (under bf16 autocast with --dtype bf16), backward, clip (GRAD_CLIP_NORM > 0), set
each group's lr and Muon's momentum, step the optimizers in main()'s order, zero the grads.
--entry baseline: Adam fused=True for the tables and scalars, the script's Muon for the matrices.
--entry pr1406 (#1406's script): its AdamW/Adam split and its banked Muon (batched Newton-Schulz).
--entry pr1855 (the record #1855's script): its own Optimizers (AdamW for tok_emb, the banked Muon
with Polar-Express Newton-Schulz, row normalisation and weight decay, AdamW for the scalars),
stepped by Optimizers.step as its step_fn does; the batch is ONE packed row (1, batch_tokens) with
cu_seqlens from its BOS positions (the script's _build_cu_seqlens, segments cut at TRAIN_SEQ_LEN)
and max_seqlen = TRAIN_SEQ_LEN, as step_fn feeds its DocumentPackingLoader's micro-batches; the
model is looped (looping_active = NUM_LOOPS > 0), as pgolf's benchmarked model is built.

  eager:     the model and the script's zeropower_via_newtonschulz5 as they are
  compiled:  torch.compile(model, dynamic=False, fullgraph=True) and a compiled Newton-Schulz,
             as main() does (on CUDA, only for the script whose main() compiles it: --device)

Each mode has its own model and optimizers (same initial weights). Repeats are interleaved
(eager, compiled, eager, ...; the order rotates) so that load from other processes hits every
mode alike, and the median over repeats is reported.

  python3 bench/peer_step.py --script train_gpt.py --set NUM_LAYERS=6 --set MODEL_DIM=256 \\
      --seq-len 256 --batch-tokens 4096 --ns-dtype fp32 --repeats 5
  -> {"modes": {"eager": {"tokens_per_s": ..., ...}, "compiled": {...}}, ...}

--serve: set up, print one JSON line {"ready": true, ...}, then answer stdin lines
"run MODE STEPS" with one JSON line {"mode", "seconds", "loss"} each, until "quit" or EOF
(pgolf bench --compare interleaves its own step with these).

--eval-seqs B: also time the sliding-window evaluation's work, a forward of B windows of
--seq-len tokens without gradients (torch.inference_mode). The entries' eval_val_sliding
computes the logits of every window position and the per-token cross-entropy, then keeps the
scored tail; the baseline script's forward(x, y) is that computation with a mean at the end.
Served as "eval MODE BATCHES" -> {"mode", "eval": true, "seconds"}.

--ns-dtype: bf16 (default) runs the script's own Newton-Schulz, which casts to bf16 as the
reference does. fp32 swaps in an fp32 Newton-Schulz, the same algorithm in fp32, mirroring pgolf's
MUON_NS_BF16=0 (its `cpu` preset): on CPUs without native bf16 matmul the bf16 one dominates.

--device cuda (or cuda:N; default cpu): the model, the optimizer state and the batches on that
GPU, set up as main() sets up its GPU: TF32 matmuls, and with --dtype bf16 (what main() trains
in) CUDA bf16 autocast and SDPA restricted to its flash backend. Every timed region starts and
ends with torch.cuda.synchronize(), so queued GPU work is counted. Differences from the CPU path,
both to follow main(): the compiled mode compiles Newton-Schulz only where main() does (the
baseline; #1406's main() runs it eagerly), and #1406's attention is FlashAttention 3 only when
flash_attn_interface is installed; otherwise the script's own SDPA branch (HAS_FA3 = False:
causal, enable_gqa=True, the same default scale) stands in for it, a substitution the JSON header
states ("attention"). On CUDA the header also gives "device", "gpu", "attention", "ns_compiled".
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "reference"))
import entry_model  # noqa: E402  (bench/reference/entry_model.py: import + build the script's GPT)

MODES = ("eager", "compiled")
MIN_COMPILED_WARMUP = 3
# Whether the entry's main() compiles zeropower_via_newtonschulz5 (#1406's: "runs eagerly with
# bmm -- do NOT compile"). Followed on CUDA; the CPU path compiles it for both, as it always has.
MAIN_COMPILES_NS = {"baseline": True, "pr1406": False, "pr1855": True}


# ---------------------------------------------------------------------------------------------
# The script's model and optimizers
# ---------------------------------------------------------------------------------------------

def ns5_fp32(G: torch.Tensor, steps: int = 10, eps: float = 1e-7) -> torch.Tensor:
    """Quintic Newton-Schulz in fp32 (pgolf's newton_schulz5 with MUON_NS_BF16=0), of one
    matrix (M, N) or, as #1406's batched version takes them, a bank (B, M, N)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.float()
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + eps)
    transposed = G.size(-2) > G.size(-1)
    if transposed:
        X = X.mT
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + (c * A) @ A
        X = a * X + B @ X
    return X.mT if transposed else X


def baseline_optimizers(mod, model: torch.nn.Module, args) -> tuple[list[torch.optim.Optimizer], object]:
    """The baseline main()'s optimizer split: Adam (tok_emb), [Adam head], Muon, Adam scalars;
    and the Muon (its momentum is set every step)."""
    named = list(model.blocks.named_parameters())
    patterns = mod.CONTROL_TENSOR_NAME_PATTERNS
    matrix = [p for n, p in named if p.ndim == 2 and not any(s in n for s in patterns)]
    scalar = [p for n, p in named if p.ndim < 2 or any(s in n for s in patterns)]
    if model.skip_weights.numel() > 0:
        scalar.append(model.skip_weights)
    betas, eps = (args.beta1, args.beta2), args.adam_eps

    def adam(params, lr):
        return torch.optim.Adam([{"params": params, "lr": lr, "base_lr": lr}], betas=betas, eps=eps,
                                fused=True)

    token_lr = args.tied_embed_lr if args.tie_embeddings else args.embed_lr
    muon = mod.Muon(matrix, lr=args.matrix_lr, momentum=args.muon_momentum,
                    backend_steps=args.muon_backend_steps)
    for group in muon.param_groups:
        group["base_lr"] = args.matrix_lr
    opts = [adam([model.tok_emb.weight], token_lr), muon, adam(scalar, args.scalar_lr)]
    if model.lm_head is not None:
        opts.insert(1, adam([model.lm_head.weight], args.head_lr))
    return opts, muon


def pr1406_optimizers(mod, model: torch.nn.Module, args) -> tuple[list[torch.optim.Optimizer], object]:
    """#1406 main()'s split: AdamW (token tables), the banked Muon (qo/kv/mlp banks), AdamW
    (block scalars and control tensors, skip weights, smear gate, bigram scale and projection,
    VE projection and scales), [Adam head]; in its step order: the Adams, then Muon."""
    scalar = [p for n, p in model.blocks.named_parameters()
              if p.ndim < 2 or any(s in n for s in mod.CONTROL_TENSOR_NAME_PATTERNS)]
    if model.skip_weights.numel() > 0:
        scalar.append(model.skip_weights)
    scalar.append(model.smear.gate)
    token_lr = args.tied_embed_lr if args.tie_embeddings else args.embed_lr
    tok = [{"params": [model.tok_emb.weight], "lr": token_lr, "base_lr": token_lr}]
    if model.bigram is not None:
        scalar.append(model.bigram.scale)
        tok.append({"params": [model.bigram.embed.weight], "lr": token_lr, "base_lr": token_lr})
        if model.bigram.proj is not None:
            scalar.append(model.bigram.proj.weight)
    if model.ve_shared is not None:
        tok.append({"params": [model.ve_shared.embed.weight], "lr": token_lr, "base_lr": token_lr})
        if model.ve_shared.proj is not None:
            scalar.append(model.ve_shared.proj.weight)
        scalar.append(model.ve_shared.scale)
        scalar.extend(model.ve_layer_scales)
    betas, eps = (args.beta1, args.beta2), args.adam_eps
    opts = [torch.optim.AdamW(tok, betas=betas, eps=eps, weight_decay=args.adam_wd, fused=True),
            torch.optim.AdamW([{"params": scalar, "lr": args.scalar_lr, "base_lr": args.scalar_lr}],
                              betas=betas, eps=eps, weight_decay=args.adam_wd, fused=True)]
    if model.lm_head is not None:
        opts.append(torch.optim.Adam(
            [{"params": [model.lm_head.weight], "lr": args.head_lr, "base_lr": args.head_lr}],
            betas=betas, eps=eps, fused=True))
    muon = mod.Muon([model.qo_bank, model.kv_bank, model.mlp_up_bank, model.mlp_down_bank],
                    lr=args.matrix_lr, momentum=args.muon_momentum,
                    backend_steps=args.muon_backend_steps, weight_decay=args.muon_wd)
    for group in muon.param_groups:
        group["base_lr"] = args.matrix_lr
    return opts + [muon], muon


def polar_express_ns_fp32(mod):
    """#1855's Newton-Schulz (Polar Express: one coefficient triple per iteration, the script's
    _PE_COEFFS; more than five steps still run five, as the script slices the list) in fp32: what
    pgolf's newton_schulz5 does with MUON_NS_COEFFICIENTS=polar_express and MUON_NS_BF16=0."""
    table = tuple(tuple(float(c) for c in t) for t in mod._PE_COEFFS)

    def ns(G: torch.Tensor, steps: int = 10, eps: float = 1e-7) -> torch.Tensor:
        X = G.float()
        transposed = G.size(-2) > G.size(-1)
        if transposed:
            X = X.mT
        X = X / (X.norm(dim=(-2, -1), keepdim=True) + eps)
        for a, b, c in (table[:steps] if steps <= len(table) else table):
            A = X @ X.mT
            B = b * A + c * (A @ A)
            X = a * X + B @ X
        return X.mT if transposed else X

    return ns


# The fp32 Newton-Schulz of each entry (--ns-dtype fp32), given the imported script.
NS_FP32 = {"baseline": lambda mod: ns5_fp32, "pr1406": lambda mod: ns5_fp32,
           "pr1855": polar_express_ns_fp32}


def pr1855_optimizers(mod, model: torch.nn.Module, args):
    """#1855's own Optimizers(h, base_model): AdamW (tok_emb, EMBED_WD), the banked Muon (qo, kv,
    mlp up and down banks: Polar-Express Newton-Schulz, MUON_ROW_NORMALIZE, MUON_WD) and AdamW
    (block scalars and control tensors, skip weights and gates, lane lambdas, the smear gate;
    ADAM_WD). Stepped by its own step(distributed=False): tok and scalar AdamW, then Muon, then
    zero_grad. Its CUDA side stream becomes a no-op on the CPU (entry_model._cpu_streams)."""
    with _streams(model):
        opts = mod.Optimizers(args, model)
    return opts, opts.optimizer_muon


def _streams(model: torch.nn.Module):
    """The Optimizers' CUDA streams: real on a GPU, no-ops on the CPU."""
    on_cuda = next(model.parameters()).is_cuda
    return contextlib.nullcontext() if on_cuda else entry_model._cpu_streams()


OPTIMIZER_BUILDERS = {"baseline": baseline_optimizers, "pr1406": pr1406_optimizers,
                      "pr1855": pr1855_optimizers}


# ---------------------------------------------------------------------------------------------
# #1855's varlen attention on the CPU, as one opaque operator
# ---------------------------------------------------------------------------------------------
# The script calls FlashAttention 3's flash_attn_varlen_func on a packed row; FA3 is a custom
# operator that torch.compile(fullgraph=True) does not trace into. entry_model's CPU shim of it
# loops over the segments in Python (cu_seqlens.tolist()), which fullgraph compilation cannot
# trace. Here the same computation is a torch.library custom operator: per segment, PyTorch's CPU
# flash-attention kernel (the one F.scaled_dot_product_attention runs for these inputs, causal,
# scale 1/sqrt(D), GQA by repeating KV heads as the shim does) forward, and its backward kernel
# with the saved logsumexp: no recomputation. Eager and compiled modes both call it.

def _segments(cu_seqlens: torch.Tensor, total: int, max_seqlen: int) -> list[tuple[int, int]]:
    cu = [int(c) for c in cu_seqlens.tolist()]
    if cu[0] != 0 or cu[-1] != total or any(b < a for a, b in zip(cu, cu[1:])):
        raise ValueError(f"cu_seqlens {cu} do not cover 0..{total} in order")
    out = []
    for a, b in zip(cu, cu[1:]):
        if b - a > max_seqlen:
            raise ValueError(f"segment [{a},{b}) longer than max_seqlen {max_seqlen}")
        if b > a:  # the trailing bucket padding (entries equal to total) is empty
            out.append((a, b))
    return out


def _heads_first(t: torch.Tensor, a: int, b: int, group: int = 1) -> torch.Tensor:
    """(total, H, D)[a:b] as (1, H * group, len, D), KV heads repeated for GQA."""
    t = t[a:b].transpose(0, 1)[None]
    return t.repeat_interleave(group, dim=1) if group > 1 else t


@torch.library.custom_op("pgolf_peer::varlen_attention", mutates_args=())
def varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                     max_seqlen: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal attention inside each segment of a packed row: q (total, H, D), k/v (total, Hkv, D)
    -> out (total, H, D), logsumexp (H, total) fp32."""
    group, scale = q.size(1) // k.size(1), q.size(-1) ** -0.5
    out = torch.empty_like(q)
    lse = q.new_empty((q.size(1), q.size(0)), dtype=torch.float32)
    for a, b in _segments(cu_seqlens, q.size(0), max_seqlen):
        o, l = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            _heads_first(q, a, b), _heads_first(k, a, b, group), _heads_first(v, a, b, group),
            0.0, True, scale=scale)
        out[a:b] = o[0].transpose(0, 1)
        lse[:, a:b] = l[0]
    return out, lse


@varlen_attention.register_fake
def _(q, k, v, cu_seqlens, max_seqlen):
    return torch.empty_like(q), q.new_empty((q.size(1), q.size(0)), dtype=torch.float32)


@torch.library.custom_op("pgolf_peer::varlen_attention_backward", mutates_args=())
def varlen_attention_backward(grad: torch.Tensor, q: torch.Tensor, k: torch.Tensor,
                              v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
                              cu_seqlens: torch.Tensor, max_seqlen: int
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    hkv, group, scale = k.size(1), q.size(1) // k.size(1), q.size(-1) ** -0.5
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    for a, b in _segments(cu_seqlens, q.size(0), max_seqlen):
        gq, gk, gv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            _heads_first(grad, a, b), _heads_first(q, a, b), _heads_first(k, a, b, group),
            _heads_first(v, a, b, group), _heads_first(out, a, b), lse[None, :, a:b],
            0.0, True, scale=scale)
        dq[a:b] = gq[0].transpose(0, 1)
        # the repeated KV heads' gradients sum into their KV head
        dk[a:b] = gk[0].unflatten(0, (hkv, group)).sum(1).transpose(0, 1)
        dv[a:b] = gv[0].unflatten(0, (hkv, group)).sum(1).transpose(0, 1)
    return dq, dk, dv


@varlen_attention_backward.register_fake
def _(grad, q, k, v, out, lse, cu_seqlens, max_seqlen):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _varlen_setup(ctx, inputs, output):
    q, k, v, cu_seqlens, max_seqlen = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse, cu_seqlens)
    ctx.max_seqlen = max_seqlen


def _varlen_backward(ctx, grad_out, grad_lse):
    q, k, v, out, lse, cu_seqlens = ctx.saved_tensors
    dq, dk, dv = varlen_attention_backward(grad_out.contiguous(), q, k, v, out, lse, cu_seqlens,
                                           ctx.max_seqlen)
    return dq, dk, dv, None, None


varlen_attention.register_autograd(_varlen_backward, setup_context=_varlen_setup)


def flash_attn_varlen_cpu(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                          causal=True, window_size=(-1, -1)):
    """flash_attn_interface.flash_attn_varlen_func for the CPU, with the arguments the script
    passes (one cu_seqlens for queries and keys, causal, no window)."""
    if (cu_seqlens_q is not cu_seqlens_k or max_seqlen_q != max_seqlen_k or not causal
            or tuple(window_size) != (-1, -1)):
        raise NotImplementedError("flash_attn_varlen_func stand-in: the script's call only "
                                  "(same q/k segments, causal, no window)")
    return varlen_attention(q, k, v, cu_seqlens_q, max_seqlen_q)[0]


def pr1855_attention(mod, place: "Placement") -> str:
    """#1855's attention calls. CPU: the varlen operator above (the dense call for evaluation
    windows keeps entry_model's SDPA stand-in, pure PyTorch and traceable). CUDA: the real
    FlashAttention 3 when flash_attn_interface imports; without it there is no stand-in here."""
    if not place.cuda:
        mod.flash_attn_varlen_func = flash_attn_varlen_cpu
        return "cpu flash-attention kernel per segment (stand-in for flash_attn_3 varlen)"
    try:
        import flash_attn_interface as fa3
    except ImportError:
        raise SystemExit("peer_step: --entry pr1855 on CUDA needs flash_attn_interface "
                         "(FlashAttention 3), which the script calls; it is not installed")
    mod.flash_attn_3_func = fa3.flash_attn_func
    mod.flash_attn_varlen_func = fa3.flash_attn_varlen_func
    return "flash_attn_3"


class Placement:
    """Where the peer computes: the CPU, or a GPU set up as the scripts' main() sets it up."""

    def __init__(self, name: str, dtype: str):
        self.device = torch.device(name)
        self.cuda = self.device.type == "cuda"
        self.bf16 = dtype == "bf16"
        if not self.cuda:
            return
        if self.device.index is not None:
            torch.cuda.set_device(self.device)
        # main()'s fast-math knobs. Its SDPA is flash-only; the flash kernel takes no fp32, so an
        # fp32 comparison (--dtype fp32, not what main() runs) keeps PyTorch's backend choice.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        if self.bf16:
            torch.backends.cuda.enable_cudnn_sdp(False)
            torch.backends.cuda.enable_flash_sdp(True)
            torch.backends.cuda.enable_mem_efficient_sdp(False)
            torch.backends.cuda.enable_math_sdp(False)

    def autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def sync(self) -> None:
        """Waits for queued GPU work, so that wall-clock time counts it (no-op on the CPU)."""
        if self.cuda:
            torch.cuda.synchronize(self.device)


class Runner:
    """One mode: its own model, optimizers and step."""

    def __init__(self, mod, entry, opt, weights: dict[str, torch.Tensor] | None, ns_fn,
                 place: Placement):
        self.mod, self.ns_fn, self.place = mod, ns_fn, place
        model, self.args = entry_model.build_model(mod, entry)  # on the CPU, as main() seeds it
        if opt.dtype == "fp32":
            model.float()
            entry_model.restore_fp32_rope_buffers(mod, entry, model)
        if weights is not None:
            cur = model.state_dict()
            model.load_state_dict({k: weights[k].to(cur[k].dtype) for k in cur}, strict=True)
        if place.cuda:
            model.to(place.device)  # before the optimizers, whose state follows the parameters
        model.train()
        if hasattr(model, "looping_active"):
            # #1855: pgolf's benchmarked model is built looped (its trainer switches the loop off
            # until ENABLE_LOOPING_AT, the step bench does not): the same passes here.
            model.looping_active = self.args.num_loops > 0
        self.base_model = model
        self.optimizers, self.muon = OPTIMIZER_BUILDERS[entry.name](mod, model, self.args)
        self.model = model
        self.forward_kwargs: dict = {}  # #1855's packed row: cu_seqlens, max_seqlen

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """main()'s loop body for one step, grad_accum_steps = 1, lr scale 1: forward, backward,
        clipping (GRAD_CLIP_NORM > 0), the optimizers in main()'s order. Weight averaging
        (#1406's EMA) is not part of it, as it is not of pgolf's benchmarked step."""
        self.mod.zeropower_via_newtonschulz5 = self.ns_fn  # Muon.step reads the module global
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)
        with self.place.autocast():
            loss = self.model(x, y, **self.forward_kwargs)
        loss.backward()
        if getattr(self.args, "grad_clip_norm", 0.0) > 0:
            torch.nn.utils.clip_grad_norm_(self.base_model.parameters(), self.args.grad_clip_norm)
        for group in self.muon.param_groups:
            group["momentum"] = self.args.muon_momentum
        for o in self.optimizers:
            for group in o.param_groups:
                group["lr"] = group["base_lr"]
        if hasattr(self.optimizers, "step"):  # #1855's Optimizers: its own step (and zero_grad)
            with _streams(self.base_model):
                self.optimizers.step(distributed=False)
        else:
            for o in self.optimizers:
                o.step()
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)
        return loss.detach()

    def run_eval(self, batches: int, x: torch.Tensor, y: torch.Tensor) -> float:
        """Seconds to score the window batch `batches` times (no gradients)."""
        self.place.sync()
        t0 = time.perf_counter()
        with torch.inference_mode(), self.place.autocast():
            for _ in range(batches):
                loss = self.model(x, y)
            float(loss)
        self.place.sync()
        return time.perf_counter() - t0

    def run(self, steps: int, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Seconds for `steps` steps (ends with a host sync) and the last loss."""
        self.place.sync()
        t0 = time.perf_counter()
        loss = None
        for _ in range(steps):
            loss = self.step(x, y)
        value = float(loss)
        self.place.sync()
        return time.perf_counter() - t0, value


def attention_on_cuda(mod, entry) -> str:
    """What the script's attention runs on a GPU, as main() would pick it. #1406's calls
    FlashAttention 3 (flash_attn_interface, Hopper) when its import succeeded; entry_model turns
    that off for the CPU, so it is turned back on here if the module is there. Without it, the
    script's own HAS_FA3 = False branch substitutes F.scaled_dot_product_attention on the same
    (B, T, H, D) tensors transposed: causal, GQA (enable_gqa=True), default 1/sqrt(D) scale, which
    is FA3's flash_attn_func(q, k, v, causal=True) computed by another kernel."""
    if not hasattr(mod, "HAS_FA3"):
        return "sdpa"  # the baseline calls SDPA itself
    mod.HAS_FA3 = hasattr(mod, "flash_attn_3_func")  # bound only by a successful import
    if mod.HAS_FA3:
        return "flash_attn_3"
    entry_model.log(f"note: {entry.name}: flash_attn_interface (FlashAttention 3) is not installed; "
                    "its attention runs as the script's SDPA branch (causal, GQA), a substitute")
    return "sdpa substitute for flash_attn_3"


class Peer:
    """The script imported once, one Runner per requested mode, fixed synthetic tokens."""

    def __init__(self, opt):
        entry = entry_model.ENTRIES[opt.entry]
        if entry.name not in OPTIMIZER_BUILDERS:
            raise SystemExit(f"peer_step: --entry {entry.name}: its optimizer split is not built here yet")
        text = opt.script.read_text(encoding="utf-8")
        overrides = dict(kv.split("=", 1) for kv in opt.set)
        overrides["TRAIN_SEQ_LEN"] = str(opt.seq_len)
        self.env = entry_model.prepare_env(text, entry, opt.seed, overrides)
        self.place = Placement(opt.device, opt.dtype)
        mod = entry_model.import_script(opt.script.resolve(), entry)
        self.packed = entry.name == "pr1855"
        if self.packed:
            self.attention = pr1855_attention(mod, self.place)
        else:
            self.attention = attention_on_cuda(mod, entry) if self.place.cuda else None
        weights = entry_model.load_safetensors(opt.load) if opt.load else None
        script_ns = mod.zeropower_via_newtonschulz5
        ns = script_ns if opt.ns_dtype == "bf16" else NS_FP32[entry.name](mod)
        # main() compiles Newton-Schulz or not per entry; the CPU path always has (kept as it was).
        self.ns_compiled = MAIN_COMPILES_NS[entry.name] or not self.place.cuda
        self.runners: dict[str, Runner] = {}
        self.compile_s = 0.0
        if opt.batch_tokens % opt.seq_len:
            raise SystemExit(f"--batch-tokens={opt.batch_tokens} is not a multiple of --seq-len={opt.seq_len}")
        gen = torch.Generator().manual_seed(opt.seed if opt.seed is not None else 1337)
        h = mod.Hyperparameters()
        vocab = int(h.vocab_size)
        if opt.tokens:  # pgolf's own batch (pgolf bench --compare writes it)
            tok = entry_model.load_safetensors(opt.tokens)["tokens"].to(torch.int64).reshape(-1)
            if tok.numel() != opt.batch_tokens + 1:
                raise SystemExit(f"--tokens {opt.tokens}: {tok.numel()} tokens, "
                                 f"--batch-tokens + 1 = {opt.batch_tokens + 1} wanted")
        else:
            tok = torch.randint(vocab, (opt.batch_tokens + 1,), generator=gen)
        # Drawn on the CPU generator whatever the device: the same tokens on the CPU and a GPU.
        dev = self.place.device
        rows = 1 if self.packed else -1  # #1855: one packed row per micro-batch
        self.x = tok[:-1].view(rows, -1 if self.packed else opt.seq_len).to(dev)
        self.y = tok[1:].view(rows, -1 if self.packed else opt.seq_len).to(dev)
        self.forward_kwargs: dict = {}
        self.segments = 0
        if self.packed:
            # step_fn: model(x, y, cu_seqlens=..., max_seqlen=h.train_seq_len), cu_seqlens from
            # the row's BOS positions, cut every TRAIN_SEQ_LEN tokens (the loader's cap).
            cu, _ = entry_model.doc_cu_seqlens(mod, tok[:-1], h.train_seq_len)
            self.segments = len(_segments(cu, opt.batch_tokens, h.train_seq_len))
            self.forward_kwargs = dict(cu_seqlens=cu.to(dev), max_seqlen=int(h.train_seq_len))
        self.xw = torch.randint(vocab, (opt.eval_seqs, opt.seq_len), generator=gen).to(dev)
        self.yw = torch.randint(vocab, (opt.eval_seqs, opt.seq_len), generator=gen).to(dev)
        for mode in opt.modes:
            if mode == "eager":
                r = Runner(mod, entry, opt, weights, ns, self.place)
            else:
                r = Runner(mod, entry, opt, weights, torch.compile(ns) if self.ns_compiled else ns,
                           self.place)
                r.model = torch.compile(r.base_model, dynamic=False, fullgraph=True)
            r.forward_kwargs = self.forward_kwargs
            self.place.sync()
            t0 = time.perf_counter()
            # Compiled mode recompiles on its 2nd and 3rd calls (guards on the script's cached
            # rotary tables, automatic dynamic shapes for Newton-Schulz): warm up past that.
            warmup = opt.warmup if mode == "eager" else max(opt.warmup, MIN_COMPILED_WARMUP)
            r.run(warmup, self.x, self.y)  # compiles (compiled mode) and warms the caches
            if opt.eval_seqs > 0:
                r.run_eval(warmup, self.xw, self.yw)  # inference mode compiles its own graph
            if mode == "compiled":
                self.place.sync()
                self.compile_s = time.perf_counter() - t0
            self.runners[mode] = r
        self.params = sum(p.numel() for p in next(iter(self.runners.values())).base_model.parameters())

    def run(self, mode: str, steps: int) -> tuple[float, float]:
        return self.runners[mode].run(steps, self.x, self.y)

    def run_eval(self, mode: str, batches: int) -> float:
        return self.runners[mode].run_eval(batches, self.xw, self.yw)

    def header(self, opt) -> dict:
        out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "entry": opt.entry,
               "params": self.params, "dtype": opt.dtype, "ns_dtype": opt.ns_dtype,
               "seq_len": opt.seq_len, "batch_tokens": opt.batch_tokens, "env": self.env,
               "compile_s": round(self.compile_s, 3)}
        if self.place.cuda:  # the CPU header stays as it was
            out.update(device=str(self.place.device),
                       gpu=torch.cuda.get_device_name(self.place.device),
                       attention=self.attention, ns_compiled=self.ns_compiled)
        if self.packed:
            model = next(iter(self.runners.values())).base_model
            out.update(packed_rows=True, segments=self.segments, attention=self.attention,
                       looping=bool(getattr(model, "looping_active", False)))
        return out


# ---------------------------------------------------------------------------------------------

def serve(peer: Peer, opt) -> None:
    print(json.dumps({"ready": True, **peer.header(opt)}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] not in ("run", "eval") or len(words) != 3 or words[1] not in peer.runners:
            print(json.dumps({"error": f"bad command {line.strip()!r}"}), flush=True)
            continue
        if words[0] == "eval":
            if opt.eval_seqs <= 0:
                print(json.dumps({"error": "eval needs --eval-seqs"}), flush=True)
                continue
            seconds = peer.run_eval(words[1], int(words[2]))
            print(json.dumps({"mode": words[1], "eval": True, "seconds": seconds}), flush=True)
            continue
        seconds, loss = peer.run(words[1], int(words[2]))
        print(json.dumps({"mode": words[1], "seconds": seconds, "loss": loss}), flush=True)


def measure(peer: Peer, opt) -> dict:
    """Interleaved repeats; each mode's tokens/s is the median over its repeats."""
    per_mode: dict[str, list[float]] = {m: [] for m in opt.modes}
    losses: dict[str, float] = {}
    for r in range(opt.repeats):
        order = opt.modes[r % len(opt.modes):] + opt.modes[:r % len(opt.modes)]
        for mode in order:
            seconds, losses[mode] = peer.run(mode, opt.steps)
            per_mode[mode].append(opt.steps * opt.batch_tokens / seconds)
    out = peer.header(opt)
    out["steps"], out["repeats"] = opt.steps, opt.repeats
    out["modes"] = {m: {"tokens_per_s": statistics.median(v), "repeats": v, "last_loss": losses[m]}
                    for m, v in per_mode.items()}
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--script", required=True, type=Path, help="the official train_gpt.py")
    ap.add_argument("--entry", default="baseline", choices=sorted(entry_model.ENTRIES))
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a script environment variable (model size, lrs, ...); repeatable")
    ap.add_argument("--seed", type=int, default=None, help="SEED (default: the script's)")
    ap.add_argument("--load", type=Path, help="initial weights (pgolf inspect --save-init)")
    ap.add_argument("--tokens", type=Path,
                    help="the step's batch: a .safetensors with 'tokens', --batch-tokens + 1 of "
                         "them (default: random tokens)")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                    help="fp32: all fp32, no autocast; bf16: the script's dtypes + bf16 autocast "
                         "(on the device's type: CPU or CUDA)")
    ap.add_argument("--device", default="cpu",
                    help="cpu, cuda or cuda:N: where the model, optimizer state and batches live")
    ap.add_argument("--ns-dtype", choices=("fp32", "bf16"), default="bf16")
    ap.add_argument("--modes", default="eager,compiled")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU intra-op threads (0: default; on CUDA only the host side's)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per mode (compiles)")
    ap.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--serve", action="store_true",
                    help="answer 'run MODE STEPS' / 'eval MODE BATCHES' lines on stdin")
    ap.add_argument("--eval-seqs", type=int, default=0,
                    help="windows per evaluation batch (0: no evaluation timing)")
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not flush denormals to zero (pgolf flushes them)")
    opt = ap.parse_args(argv)
    opt.modes = [m for m in opt.modes.split(",") if m]
    bad = [m for m in opt.modes if m not in MODES]
    if bad or not opt.modes:
        ap.error(f"--modes: choose from {','.join(MODES)}")
    if any("=" not in kv for kv in opt.set):
        ap.error("--set wants NAME=VALUE")
    if opt.warmup < 1 or opt.steps < 1 or opt.repeats < 1:
        ap.error("--warmup, --steps and --repeats must be >= 1")
    try:
        device = torch.device(opt.device)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda") or (device.type == "cpu" and device.index):
        ap.error(f"--device {opt.device!r}: cpu, cuda or cuda:N")
    return opt


def check_device(name: str) -> None:
    """One clear message, before any work, when the GPU asked for is not there."""
    device = torch.device(name)
    if device.type != "cuda":
        return
    if not torch.cuda.is_available():
        build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise SystemExit(f"peer_step: --device {name}: no CUDA device is available to this "
                         f"PyTorch ({torch.__version__}, {build})")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise SystemExit(f"peer_step: --device {name}: only {count} CUDA device(s) are visible")


def main() -> None:
    opt = parse_args()
    check_device(opt.device)
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    # pgolf flushes denormals to zero on the CPU (common/device.h): training
    # produces them and they make x86 arithmetic ~100x slower. Same machine
    # settings for the peer, or the comparison measures denormals, not code.
    torch.set_flush_denormal(not opt.keep_denormals)
    peer = Peer(opt)
    if opt.serve:
        serve(peer, opt)
    else:
        print(json.dumps(measure(peer, opt), indent=1))


if __name__ == "__main__":
    main()
