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
MAIN_COMPILES_NS = {"baseline": True, "pr1406": False}


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


OPTIMIZER_BUILDERS = {"baseline": baseline_optimizers, "pr1406": pr1406_optimizers}


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
        self.base_model = model
        self.optimizers, self.muon = OPTIMIZER_BUILDERS[entry.name](mod, model, self.args)
        self.model = model

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """main()'s loop body for one step, grad_accum_steps = 1, lr scale 1: forward, backward,
        clipping (GRAD_CLIP_NORM > 0), the optimizers in main()'s order. Weight averaging
        (#1406's EMA) is not part of it, as it is not of pgolf's benchmarked step."""
        self.mod.zeropower_via_newtonschulz5 = self.ns_fn  # Muon.step reads the module global
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)
        with self.place.autocast():
            loss = self.model(x, y)
        loss.backward()
        if getattr(self.args, "grad_clip_norm", 0.0) > 0:
            torch.nn.utils.clip_grad_norm_(self.base_model.parameters(), self.args.grad_clip_norm)
        for group in self.muon.param_groups:
            group["momentum"] = self.args.muon_momentum
        for o in self.optimizers:
            for group in o.param_groups:
                group["lr"] = group["base_lr"]
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
        self.attention = attention_on_cuda(mod, entry) if self.place.cuda else None
        weights = entry_model.load_safetensors(opt.load) if opt.load else None
        script_ns = mod.zeropower_via_newtonschulz5
        ns = script_ns if opt.ns_dtype == "bf16" else ns5_fp32
        # main() compiles Newton-Schulz or not per entry; the CPU path always has (kept as it was).
        self.ns_compiled = MAIN_COMPILES_NS[entry.name] or not self.place.cuda
        self.runners: dict[str, Runner] = {}
        self.compile_s = 0.0
        if opt.batch_tokens % opt.seq_len:
            raise SystemExit(f"--batch-tokens={opt.batch_tokens} is not a multiple of --seq-len={opt.seq_len}")
        gen = torch.Generator().manual_seed(opt.seed if opt.seed is not None else 1337)
        vocab = int(mod.Hyperparameters().vocab_size)
        tok = torch.randint(vocab, (opt.batch_tokens + 1,), generator=gen)
        # Drawn on the CPU generator whatever the device: the same tokens on the CPU and a GPU.
        dev = self.place.device
        self.x = tok[:-1].view(-1, opt.seq_len).to(dev)
        self.y = tok[1:].view(-1, opt.seq_len).to(dev)
        self.xw = torch.randint(vocab, (opt.eval_seqs, opt.seq_len), generator=gen).to(dev)
        self.yw = torch.randint(vocab, (opt.eval_seqs, opt.seq_len), generator=gen).to(dev)
        for mode in opt.modes:
            if mode == "eager":
                r = Runner(mod, entry, opt, weights, ns, self.place)
            else:
                r = Runner(mod, entry, opt, weights, torch.compile(ns) if self.ns_compiled else ns,
                           self.place)
                r.model = torch.compile(r.base_model, dynamic=False, fullgraph=True)
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
