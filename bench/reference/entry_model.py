#!/usr/bin/env python3
"""Build a Parameter Golf entry's PyTorch GPT from the entry's own official training script.

The script (a `train_gpt.py` of openai/parameter-golf, see README.md for the commits) is
imported as a module from the path given with --script; none of its code is copied here.
The entry's as-run model configuration is put into the environment *before* the import
(the scripts read most settings at import / class-definition time), the GPT is constructed
with the same keyword arguments and seed as the script's main(), and main()'s dtype fix-ups
are applied (model cast to bf16, then CastedLinear / weight banks / low-dim and control
tensors back to fp32). CPU only, eager, no torch.compile, no distributed initialisation.

Outputs: the state_dict key table (--keys-json), initial weights (--save-init), the weights
as evaluated (--save), and per-position cross-entropy on a challenge shard (--token-losses).
pr1855 (a script that needs FlashAttention-3 and Triton at import) is imported behind CPU
shims (see "pr1855" below) and adds depth recurrence (--loop), packed rows with document
boundaries (--doc-boundaries), the layer schedule (--print-schedule) and optimiser steps of
the script's own Optimizers (--steps, --save-steps, --step-losses).

  python3 bench/reference/entry_model.py --script train_gpt.py --entry pr562 \
      --keys-json pr562.keys.json --save-init pr562.init.safetensors \
      --tokens fineweb_val_000000.bin --num-seqs 2 --seq-len 256 --token-losses pr562.bin
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import math
import os
import random
import re
import struct
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_WORDS = 256


# ---------------------------------------------------------------------------------------------
# Entries: as-run environment, expected parameter count, GPT keyword arguments of main()
# ---------------------------------------------------------------------------------------------

def _kw_common(a) -> dict:
    return dict(
        vocab_size=a.vocab_size, num_layers=a.num_layers, model_dim=a.model_dim,
        num_heads=a.num_heads, num_kv_heads=a.num_kv_heads, mlp_mult=a.mlp_mult,
        tie_embeddings=a.tie_embeddings, tied_embed_init_std=a.tied_embed_init_std,
        logit_softcap=a.logit_softcap, rope_base=a.rope_base, qk_gain_init=a.qk_gain_init,
    )


def _kw_pr1406(a) -> dict:
    return dict(
        _kw_common(a),
        mtp_num_heads=a.mtp_num_heads, mtp_loss_weight=a.mtp_loss_weight,
        bigram_vocab_size=a.bigram_vocab_size, bigram_dim=a.bigram_dim,
        xsa_last_n=a.xsa_last_n, rope_dims=a.rope_dims, ln_scale=a.ln_scale,
        dtg=a.dtg_enabled, ve_enabled=a.ve_enabled, ve_dim=a.ve_dim, ve_layers=a.ve_layers,
        gated_attention=a.gated_attention, value_residual=a.value_residual,
        recur_enabled=a.recur_enabled, recur_layers=a.recur_layers,
    )


def _kw_pr461(a) -> dict:
    return dict(
        _kw_common(a),
        bigram_vocab_size=a.bigram_vocab_size, bigram_dim=a.bigram_dim,
        unique_layers=a.unique_layers, xsa_last_n=a.xsa_last_n, mlp_activation=a.mlp_activation,
        rope_dims=a.rope_dims, ln_scale=a.ln_scale,
        ve_enabled=a.ve_enabled, ve_dim=a.ve_dim, ve_layers=a.ve_layers,
    )


def _kw_pr456(a) -> dict:
    return dict(
        _kw_common(a),
        bigram_vocab_size=a.bigram_vocab_size, bigram_dim=a.bigram_dim,
        unique_layers=a.unique_layers, xsa_last_n=a.xsa_last_n, mlp_activation=a.mlp_activation,
    )


def _kw_pr562(a) -> dict:
    return dict(
        _kw_common(a),
        bigram_vocab_size=a.bigram_vocab_size, bigram_dim=a.bigram_dim, rope_dims=a.rope_dims,
        xsa_last_n=a.xsa_last_n, ln_scale=a.ln_scale,
        gated_attention=a.gated_attention, value_residual=a.value_residual,
    )


@dataclass(frozen=True)
class Entry:
    name: str
    script_path: str  # path inside openai/parameter-golf at `commit`
    commit: str
    git_blob: str  # git blob id of the script at that commit (a mismatch only warns)
    env: dict[str, str]  # as-run model settings, set before the import
    params: int  # parameter count of the as-run configuration
    gpt_kwargs: Callable[[object], dict] | None  # None: the script builds GPT(h) from Hyperparameters
    banks: tuple[str, ...] = field(default=())  # weight banks main() puts back to fp32
    # Settings the harness imposes after --set (CPU replacements of CUDA-only paths).
    forced_env: dict[str, str] = field(default_factory=dict)
    # Context manager around the import that installs CPU shims of CUDA-only imports.
    import_shims: Callable[[], contextlib.AbstractContextManager] | None = None


# pr1855's as-run settings: the `Hyperparameters:` block of the record's train_seed42.log.
# Model settings are all listed (defaults included); of the rest only the values that differ
# from the script's defaults (training, quantisation, TTT; paths, run id and world size left out).
_ENV_PR1855 = {
    # model
    "VOCAB_SIZE": "8192", "NUM_LAYERS": "11", "MODEL_DIM": "512", "NUM_HEADS": "8",
    "NUM_KV_HEADS": "4", "MLP_MULT": "4.0", "XSA_LAST_N": "11", "ROPE_DIMS": "16",
    "ROPE_BASE": "10000", "ROPE_YARN": "0", "LN_SCALE": "1", "QK_GAIN_INIT": "5.0",
    "SKIP_GATES_ENABLED": "1", "PARALLEL_START_LAYER": "8", "PARALLEL_FINAL_LANE": "mean",
    "NUM_LOOPS": "2", "LOOP_START": "3", "LOOP_END": "5", "SMEAR_GATE_ENABLED": "1",
    "GATE_WINDOW": "12", "SPARSE_ATTN_GATE_ENABLED": "1", "SPARSE_ATTN_GATE_SCALE": "0.5",
    "SPARSE_ATTN_GATE_INIT_STD": "0.0", "ATTN_OUT_GATE_ENABLED": "0", "GATED_ATTN_ENABLED": "0",
    "TIE_EMBEDDINGS": "1", "TIED_EMBED_INIT_STD": "0.005", "LOGIT_SOFTCAP": "30",
    "TRAIN_SEQ_LEN": "2048", "EVAL_SEQ_LEN": "2048", "SEED": "42",
    # training (non-default values of the run)
    "BETA2": "0.99", "MIN_LR": "0.1", "WARMDOWN_FRAC": "0.85", "GPTQ_RESERVE_SECONDS": "0.5",
    "VAL_LOSS_EVERY": "0",
    # data / quantisation / TTT (non-default values of the run; unused here)
    "CASEOPS_ENABLED": "1", "COMPRESSOR": "pergroup", "EMBED_BITS": "7",
    "EMBED_CLIP_SIGMAS": "14.0", "MLP_CLIP_SIGMAS": "11.5", "GATED_ATTN_QUANT_GATE": "1",
    "PHASED_TTT_NUM_PHASES": "3", "PHASED_TTT_PREFIX_DOCS": "2500", "TTT_BETA2": "0.99",
    "TTT_LORA_RANK": "80", "TTT_WEIGHT_DECAY": "0.5",
}


ENTRIES: dict[str, Entry] = {
    "baseline": Entry(
        "baseline", "train_gpt.py", "48404cd4f8ba0add4f3c4bd2c3a990bb4bec52c7",
        "651beb2b895c3ff8ba4a232914d8b3772baaa868",
        {}, 17_059_912, _kw_common),
    "pr1406": Entry(
        "pr1406",
        "records/track_10min_16mb/2026-04-06_DepthRecurrence_PreQuantTTT_11L_8xH100/train_gpt.py",
        "dd52bdd22704aafd079fc34af03091e122dffc2d", "ae5b7d370884a8b801ed2a856325265ccdd24cb5",
        {"NUM_LAYERS": "11", "MLP_MULT": "3", "QK_GAIN_INIT": "5.0", "ROPE_DIMS": "16",
         "LN_SCALE": "1", "XSA_LAST_N": "4", "BIGRAM_VOCAB_SIZE": "1536", "BIGRAM_DIM": "128",
         "TRIGRAM": "0", "VE_ENABLED": "1", "VE_DIM": "128", "VE_LAYERS": "9,10",
         "RECUR_ENABLED": "1", "RECUR_LAYERS": "4,5", "GATED_ATTENTION": "0",
         "VALUE_RESIDUAL": "0"},
        26_928_220, _kw_pr1406,
        banks=("qo_bank", "kv_bank", "mlp_up_bank", "mlp_down_bank")),
    "pr461": Entry(
        "pr461",
        "records/track_non_record_16mb/2026-03-22_11L_VE128_PartialRoPE_LegalTTT/train_gpt.py",
        "f8ff8039ca8e76b5f057a24d75924f5431a54ace", "ed5922b4c03d98c19b266e7a375a3721aa74811f",
        {"NUM_LAYERS": "11", "UNIQUE_LAYERS": "10", "MLP_MULT": "3", "ROPE_DIMS": "16",
         "LN_SCALE": "1", "XSA_LAST_N": "4", "BIGRAM_VOCAB_SIZE": "2048", "BIGRAM_DIM": "128",
         "VE_ENABLED": "1", "VE_DIM": "128", "VE_LAYERS": "9,10", "MLP_ACTIVATION": "relu_sq",
         "QK_GAIN_INIT": "1.5"},
        24_634_452, _kw_pr461),
    "pr456": Entry(
        "pr456",
        "records/track_non_record_16mb/2026-03-22_DepthRecurrence_AggressiveTTT_10L/train_gpt.py",
        "f5e802ba4cf4f9577d430c84b4e669c84af08330", "a736d4fca8f1019886f31b56a0bfcb3b2137cb0d",
        {"NUM_LAYERS": "10", "UNIQUE_LAYERS": "10", "MLP_MULT": "3", "XSA_LAST_N": "3",
         "BIGRAM_VOCAB_SIZE": "10240", "BIGRAM_DIM": "128", "MLP_ACTIVATION": "relu_sq",
         "QK_GAIN_INIT": "1.5"},
        25_517_137, _kw_pr456),
    "pr562": Entry(
        "pr562",
        "records/track_10min_16mb/2026-03-24_10L_TTT22_LeakyReLU_TrigramHash/train_gpt.py",
        "c7a96b3a375dec39f649192e45af47cb63ff662b", "f3d725310eb638e988078e8cfa1fcdbc053ab47d",
        {"NUM_LAYERS": "10", "MLP_MULT": "3", "XSA_LAST_N": "4", "LN_SCALE": "1",
         "LEAKY_SLOPE": "0.5", "ROPE_DIMS": "16", "BIGRAM_VOCAB_SIZE": "2048", "BIGRAM_DIM": "128",
         "VALUE_RESIDUAL": "1", "GATED_ATTENTION": "1"},
        24_509_621, _kw_pr562),
    "pr1855": Entry(
        "pr1855",
        "records/track_10min_16mb/2026-04-27_SP8192_LQER_SparseGate_BOSSmearFix_9HpStack_1.0611/train_gpt.py",
        "4908dc46f21ed3fdd08d2fdca285deb2194b9599", "9979400ef9f10da2fa908d9e7ce3556b82165b2a",
        _ENV_PR1855, 35_945_671, None,
        # The run used the Triton softcapped-CE kernel (FUSED_CE_ENABLED=1); on the CPU the
        # script's own eager branch of GPT.forward is taken: softcap 30*tanh(z/30), then
        # F.cross_entropy on fp32 logits. Same function: the kernel's 60*sigmoid(z/15) is
        # 30*tanh(z/30) + 30, a constant shift per row that cancels in the log-softmax.
        forced_env={"FUSED_CE_ENABLED": "0"},
        import_shims=lambda: _pr1855_import_shims()),
}

# Modules the scripts import at top level *without* a fallback but never use for the model.
# Only if one is not installed is a placeholder put into sys.modules (numpy is needed here anyway).
# flash_attn_interface (pr1406) and zstandard are NOT stubbed: the scripts catch ImportError.
# pr1855 imports flash_attn_interface and triton without a fallback: see its import shims below.
_STUB_IF_MISSING = ("sentencepiece",)


# ---------------------------------------------------------------------------------------------
# pr1855: CPU shims for the script's CUDA-only imports
# ---------------------------------------------------------------------------------------------
# The script imports FlashAttention-3 (`flash_attn_interface`) and Triton at module level with
# no fallback, decorates Newton-Schulz with @torch.compile, and its Optimizers use CUDA side
# streams. Each stand-in below is installed only where the script needs it; none replaces
# arithmetic of the model except attention, which is computed with PyTorch SDPA.

def _sdpa_causal_gqa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention, (B, H, T, D) queries on (B, Hkv, T, D) keys/values. Query head h
    reads KV head h // (H/Hkv) (repeat_interleave), as FlashAttention's GQA does."""
    group = q.size(1) // k.size(1)
    if group * k.size(1) != q.size(1):
        raise ValueError(f"{q.size(1)} query heads not a multiple of {k.size(1)} KV heads")
    if group > 1:
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=q.size(-1) ** -0.5)


def _fa3_flash_attn_func(q, k, v, causal=True, **kw):
    """flash_attn_interface.flash_attn_func(q, k, v, causal=True) on the CPU: layout (B, T, H, D),
    output (B, T, H, D) in the input dtype. Same function as FA3: softmax(q k^T / sqrt(D)) v with
    the lower-triangular mask (T_q == T_k, so FA's bottom-right alignment is the plain causal mask);
    FA3 accumulates in fp32 like PyTorch's CPU SDPA, so fp32 inputs give the same result up to
    summation order. Only the arguments the script passes are accepted."""
    if not causal or kw:
        raise NotImplementedError(f"flash_attn_func shim: causal={causal} {sorted(kw)}")
    y = _sdpa_causal_gqa(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return y.transpose(1, 2)


def _fa3_flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                                causal=True, window_size=(-1, -1), **kw):
    """flash_attn_interface.flash_attn_varlen_func on the CPU: layout (total, H, D), causal
    attention inside each segment [cu[i], cu[i+1]) and never across segments (as FA3 varlen).
    Trailing padding entries equal to `total` (the script's bucketed cu_seqlens) give empty
    segments, which FA3 skips. max_seqlen only sizes FA3's launch grid; a segment longer than it
    would be undefined in FA3, so it is an error here."""
    if not causal or tuple(window_size) != (-1, -1) or kw:
        raise NotImplementedError(f"flash_attn_varlen_func shim: causal={causal} "
                                  f"window_size={window_size} {sorted(kw)}")
    if not torch.equal(cu_seqlens_q, cu_seqlens_k) or max_seqlen_q != max_seqlen_k:
        raise NotImplementedError("flash_attn_varlen_func shim: different q/k segments")
    cu = [int(c) for c in cu_seqlens_q.tolist()]
    total = q.size(0)
    if cu[0] != 0 or cu[-1] != total or any(b < a for a, b in zip(cu, cu[1:])):
        raise ValueError(f"cu_seqlens {cu} do not cover 0..{total} in order")
    outs = []
    for a, b in zip(cu, cu[1:]):
        if b == a:
            continue
        if b - a > max_seqlen_q:
            raise ValueError(f"segment [{a},{b}) longer than max_seqlen {max_seqlen_q}")
        seg = [t[a:b].transpose(0, 1)[None] for t in (q, k, v)]  # (1, H, len, D)
        outs.append(_sdpa_causal_gqa(*seg)[0].transpose(0, 1))
    return torch.cat(outs, dim=0)


class _TritonKernelStub:
    """Stands in for a @triton.jit kernel: never launched (FUSED_CE_ENABLED=0, MLP.use_fused
    False), so launching one is an error."""

    def __init__(self, fn):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")

    def __getitem__(self, grid):
        raise RuntimeError(f"Triton kernel {self.__name__} launched on the CPU reference path")

    def __call__(self, *a, **kw):
        raise RuntimeError(f"Triton kernel {self.__name__} called on the CPU reference path")


class _TritonName:
    """Any `tl.<name>` (tl.constexpr in kernel signatures is evaluated at definition time)."""

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"<triton.language.{self._name} stub>"


def _triton_language_attr(name: str) -> _TritonName:
    if name.startswith("__"):  # __file__, __path__, ...: absent, as inspect/importlib expect
        raise AttributeError(name)
    return _TritonName(name)


class _TensorDescriptorStub:
    @staticmethod
    def from_tensor(*a, **kw):
        raise RuntimeError("TensorDescriptor used on the CPU reference path")


def _triton_stub_modules() -> dict[str, types.ModuleType]:
    """Placeholder `triton`, `triton.language`, `triton.tools.tensor_descriptor` (used only when
    Triton is not installed: the script defines kernels at import, the CPU path never runs them)."""
    triton = types.ModuleType("triton")
    triton.jit = lambda fn=None, **kw: _TritonKernelStub(fn) if fn is not None else _TritonKernelStub
    triton.cdiv = lambda a, b: -(-a // b)
    language = types.ModuleType("triton.language")
    language.__getattr__ = _triton_language_attr  # module-level __getattr__ (PEP 562)
    tools = types.ModuleType("triton.tools")
    desc = types.ModuleType("triton.tools.tensor_descriptor")
    desc.TensorDescriptor = _TensorDescriptorStub
    triton.language, triton.tools, tools.tensor_descriptor = language, tools, desc
    return {"triton": triton, "triton.language": language, "triton.tools": tools,
            "triton.tools.tensor_descriptor": desc}


def _no_compile(fn=None, **kw):
    """torch.compile while the script is imported: identity, so the @torch.compile-decorated
    zeropower_via_newtonschulz5 (Muon's Polar-Express Newton-Schulz) runs eagerly — the same
    operations in the same dtype (bf16), without Inductor's kernel fusion."""
    return fn if fn is not None else (lambda f: f)


@contextlib.contextmanager
def _pr1855_import_shims():
    fa = types.ModuleType("flash_attn_interface")
    fa.flash_attn_func = _fa3_flash_attn_func
    fa.flash_attn_varlen_func = _fa3_flash_attn_varlen_func
    shims = {"flash_attn_interface": fa}
    if importlib.util.find_spec("triton") is None:
        # An installed Triton is imported for real: defining kernels needs no GPU.
        log("note: module 'triton' missing; installing placeholder modules (kernels never run)")
        shims.update(_triton_stub_modules())
    absent = object()
    saved_modules = {n: sys.modules.get(n, absent) for n in shims}
    saved_compile = torch.compile
    sys.modules.update(shims)
    torch.compile = _no_compile
    try:
        yield
    finally:
        # The script bound the names at import time; the shims leave sys.modules again.
        torch.compile = saved_compile
        for n, m in saved_modules.items():
            if m is absent:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


class _NoStream:
    def wait_stream(self, other):
        pass


@contextlib.contextmanager
def _cpu_streams():
    """pr1855 Optimizers: torch.cuda.Stream() (constructor), torch.cuda.stream(s) and
    torch.cuda.current_stream() (step) become no-ops. On one device the side stream only lets
    the two AdamW steps overlap Muon's; they update disjoint parameters, so running them in
    program order (tok AdamW, scalar AdamW, Muon) gives the same values."""
    saved = (torch.cuda.Stream, torch.cuda.stream, torch.cuda.current_stream)
    torch.cuda.Stream = _NoStream
    torch.cuda.stream = lambda stream=None: contextlib.nullcontext()
    torch.cuda.current_stream = lambda device=None: _NoStream()
    try:
        yield
    finally:
        torch.cuda.Stream, torch.cuda.stream, torch.cuda.current_stream = saved


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def log(msg: str) -> None:
    print(msg, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Importing the script and building the model
# ---------------------------------------------------------------------------------------------

def prepare_env(script_text: str, entry: Entry, seed: int | None, overrides: dict[str, str]) -> dict[str, str]:
    """Environment for the import: every variable the script reads is cleared (code defaults),
    then the entry's as-run values, SEED and --set overrides are applied."""
    names = set(re.findall(r"os\.environ\.get\(\s*[\"']([A-Za-z0-9_]+)[\"']", script_text))
    names |= set(re.findall(r"os\.environ\[\s*[\"']([A-Za-z0-9_]+)[\"']\s*\]", script_text))
    dropped = sorted(n for n in names if n in os.environ and n not in entry.env and n not in overrides)
    if dropped:
        log(f"note: ignoring inherited environment variables read by the script: {', '.join(dropped)}")
    for n in names:
        os.environ.pop(n, None)
    env = dict(entry.env)
    if seed is not None:
        env["SEED"] = str(seed)
    env.update(overrides)
    for k, v in entry.forced_env.items():
        if env.get(k, v) != v:
            log(f"note: {k}={env[k]} replaced by {v} (CPU path; see the entry's forced_env)")
        env[k] = v
    os.environ.update(env)
    return env


def load_script(path: Path, entry: Entry, seed: int | None,
                overrides: dict[str, str]) -> tuple[types.ModuleType, dict[str, str], str]:
    """Reads the script, warns if its git blob id is not the entry's, sets the as-run environment
    under `overrides` (prepare_env) and imports it: (module, environment, blob id)."""
    data = path.read_bytes()
    blob = git_blob_id(data)
    if blob != entry.git_blob:
        log(f"warning: {path} is git blob {blob}, expected {entry.git_blob} "
            f"({entry.commit}:{entry.script_path})")
    env = prepare_env(data.decode("utf-8"), entry, seed, overrides)
    return import_script(path.resolve(), entry), env, blob


def import_script(path: Path, entry: Entry) -> types.ModuleType:
    for name in _STUB_IF_MISSING:
        if importlib.util.find_spec(name) is None:
            log(f"note: module {name!r} missing; installing an empty stub (not used by the model)")
            sys.modules[name] = types.ModuleType(name)
    mod_name = f"pgolf_reference_{entry.name}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    shims = entry.import_shims() if entry.import_shims else contextlib.nullcontext()
    with shims:
        spec.loader.exec_module(mod)  # __name__ != "__main__": main() does not run
    # pr1855: the SmearGate BOS mask reads the module global BOS_ID, which the script's
    # DocumentPackingLoader and eval entry points set to 1 before the first forward.
    if getattr(mod, "BOS_ID", 0) is None:
        mod.BOS_ID = 1
    # pr1406: FlashAttention-3 is CUDA-only; on CPU the script's own SDPA fallback must be taken.
    if hasattr(mod, "HAS_FA3"):
        mod.HAS_FA3 = False
    # pr461/pr456 pick their half dtype and GQA code path from the GPU they run on; the logged
    # runs were on A100 (Ampere): bf16 and SDPA(enable_gqa=True), which CPU SDPA also provides.
    if hasattr(mod, "_IS_AMPERE_PLUS"):
        mod._IS_AMPERE_PLUS = True
        mod._HALF_DTYPE = torch.bfloat16
    return mod


def build_model(mod: types.ModuleType, entry: Entry) -> tuple[torch.nn.Module, object]:
    """GPT(...) exactly as main() builds it, then main()'s dtype fix-ups."""
    args = mod.Hyperparameters()
    # main(): seeds are set before the model is constructed (on the CPU generator: GPT(...) is
    # built on the CPU and moved to the GPU afterwards, so the initial weights are reproducible).
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if hasattr(args, "qat_enabled"):  # pr1406: set before GPT(...) in main()
        mod.CastedLinear._qat_enabled = args.qat_enabled
    if entry.gpt_kwargs is None:
        # pr1855 (train_and_eval + train_model): GPT(h) on the CPU, .bfloat16(), then the
        # script's restore_fp32_params (CastedLinear, ndim<2 and control-pattern parameters and
        # the four banks back to fp32; tok_emb.weight stays bf16).
        model = mod.GPT(args).bfloat16()
        mod.restore_fp32_params(model)
        # The training-mode MLP would run the Triton fused LeakyReLU^2 kernel; the eager branch
        # (the one eval and TTT use) is the same function: leaky_relu(x W_up^T, 0.5)^2 W_down^T.
        for m in model.modules():
            if isinstance(m, mod.MLP):
                m.use_fused = False
        return model, args
    model = mod.GPT(**entry.gpt_kwargs(args))
    model = model.to(getattr(mod, "_HALF_DTYPE", torch.bfloat16))
    for bank in entry.banks:  # pr1406: "Banks stay FP32 (like CastedLinear weights)"
        p = getattr(model, bank)
        p.data = p.data.float()
    for m in model.modules():
        if isinstance(m, mod.CastedLinear):
            m.float()
    mod.restore_low_dim_params_to_fp32(model)
    return model, args


def restore_fp32_rope_buffers(mod: types.ModuleType, entry: Entry, model: torch.nn.Module) -> None:
    """model.float() after main()'s bf16 cast leaves every RoPE inv_freq buffer holding
    bf16-rounded values. For an all-fp32 comparison, copy the buffers of a freshly built
    (never cast) model and drop the cos/sin caches."""
    if entry.gpt_kwargs is None:  # pr1855: a fresh Rotary (the script's class) per block
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, mod.Rotary):
                    fresh = mod.Rotary(m.dim, base=m.base, train_seq_len=m.train_seq_len,
                                       rope_dims=m.rope_dims, yarn=m.yarn)
                    m.inv_freq.copy_(fresh.inv_freq)
                    m._cos_cached = m._sin_cached = None
                    m._seq_len_cached = 0
        return
    args = mod.Hyperparameters()
    fresh = dict(mod.GPT(**entry.gpt_kwargs(args)).named_buffers())
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("inv_freq"):
                buf.copy_(fresh[name])
    for m in model.modules():
        if hasattr(m, "_cos_cached"):
            m._cos_cached = m._sin_cached = None
            m._seq_len_cached = 0


# ---------------------------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------------------------

_ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16",
              torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
              torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
_ST_DTYPES_INV = {v: k for k, v in _ST_DTYPES.items()}


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """With the `safetensors` package if installed (which lays the data out in its own order),
    else write_safetensors_ordered."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        save_file = None
    if save_file is not None:
        tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        save_file(tensors, str(path), metadata=metadata)
        return
    write_safetensors_ordered(tensors, path, metadata)


def write_safetensors_ordered(tensors: dict[str, torch.Tensor], path: Path,
                              metadata: dict[str, str] | None = None) -> None:
    """Hand-written writer (u64 LE header size, JSON header padded with spaces to a multiple
    of 8, raw little-endian data) that keeps the dict's order in the header and in the data,
    as pgolf's write_safetensors does."""
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    blobs, off = [], 0
    for k, v in tensors.items():
        v = v.detach().contiguous().cpu()
        b = v.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[k] = {"dtype": _ST_DTYPES[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def read_safetensors_ordered(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor in the order of its data in the file (the written order, as pgolf's
    read_safetensors), and the __metadata__ strings."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", None) or {}
    out = {}
    for k, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = info["data_offsets"]
        dtype, shape = _ST_DTYPES_INV[info["dtype"]], info["shape"]
        if a == b:
            out[k] = torch.empty(shape, dtype=dtype)
            continue
        raw = torch.frombuffer(bytearray(data[8 + n + a:8 + n + b]), dtype=torch.uint8)
        out[k] = raw.view(dtype).reshape(shape).clone()
    return out, metadata


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        load_file = None
    if load_file is not None:
        return load_file(str(path))
    return read_safetensors_ordered(path)[0]


# ---------------------------------------------------------------------------------------------
# Tokens and losses
# ---------------------------------------------------------------------------------------------

def read_tokens(path: Path, count: int) -> torch.Tensor:
    """First `count` tokens of a challenge shard (256 int32 header words, then uint16 tokens)."""
    header = np.fromfile(path, dtype="<i4", count=SHARD_HEADER_WORDS)
    if header.size != SHARD_HEADER_WORDS or int(header[0]) != SHARD_MAGIC or int(header[1]) != SHARD_VERSION:
        raise SystemExit(f"{path}: not a challenge shard (magic/version)")
    if int(header[2]) < count:
        raise SystemExit(f"{path}: holds {int(header[2])} tokens, {count} needed")
    tok = np.fromfile(path, dtype="<u2", count=count, offset=SHARD_HEADER_WORDS * 4)
    return torch.from_numpy(tok.astype(np.int64))


class _CaptureCE:
    """Stands in for the script's module-global `F` during forward(x, y) so that the
    per-position losses of the script's own loss call can be kept (baseline has no
    forward_logits)."""

    def __init__(self):
        self.losses: torch.Tensor | None = None

    def __getattr__(self, name):
        return getattr(F, name)

    def cross_entropy(self, logits, targets, reduction="mean", **kw):
        per = F.cross_entropy(logits, targets, reduction="none", **kw)
        self.losses = per
        return F.cross_entropy(logits, targets, reduction=reduction, **kw)


def token_losses(mod, model, x: torch.Tensor, y: torch.Tensor, bf16: bool) -> tuple[torch.Tensor, float]:
    """Per-position cross-entropy (N, T) via the script's forward path, and forward(x, y)."""
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.no_grad(), ctx:
        if hasattr(model, "forward_logits"):
            # The scripts' evaluation path (sliding-window eval): logits, then CE in fp32.
            logits = model.forward_logits(x)
            per = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
            fwd = float(model(x, y))
        else:
            cap = _CaptureCE()
            saved, mod.F = mod.F, cap
            try:
                fwd = float(model(x, y))
            finally:
                mod.F = saved
            per = cap.losses
    return per.float().reshape(y.shape), fwd


def perturb_(model: torch.nn.Module, std: float, seed: int) -> None:
    """Every floating tensor of the state_dict (in its order) += std * randn (fp32 generator)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, t in model.state_dict(keep_vars=True).items():
            if t.is_floating_point():
                noise = torch.randn(t.shape, generator=g, dtype=torch.float32)
                t.copy_((t.float() + std * noise).to(t.dtype))


# ---------------------------------------------------------------------------------------------
# pr1855: packed rows with document boundaries, optimiser steps
# ---------------------------------------------------------------------------------------------

def doc_cu_seqlens(mod, row: torch.Tensor, max_doc_len: int) -> tuple[torch.Tensor, int]:
    """cu_seqlens of one packed row, as the script's DocumentPackingLoader / eval_val build them:
    the BOS positions of the row's inputs into the script's own _build_cu_seqlens (segments cut
    at max_doc_len, padded to a multiple of 64 entries with the row length)."""
    bos = (row == mod.BOS_ID).nonzero(as_tuple=True)[0].tolist()
    return mod._build_cu_seqlens(bos, row.numel(), row.device, max_doc_len, 64)


def token_losses_packed(mod, model, x: torch.Tensor, y: torch.Tensor, bf16: bool,
                        max_doc_len: int) -> tuple[torch.Tensor, float]:
    """eval_val's feed: each row is one packed (1, T) batch with its cu_seqlens and the computed
    max_seqlen; forward_logits, then fp32 cross-entropy per position. Also the mean of the
    script's forward(x, y, cu_seqlens, max_seqlen) over the rows (rows have equal length)."""
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    per, fwd = [], 0.0
    with torch.no_grad(), ctx:
        for r in range(x.size(0)):
            cu, max_seqlen = doc_cu_seqlens(mod, x[r], max_doc_len)
            logits = model.forward_logits(x[r:r + 1], cu_seqlens=cu, max_seqlen=max_seqlen)
            per.append(F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y[r],
                                       reduction="none"))
            fwd += float(model(x[r:r + 1], y[r:r + 1], cu_seqlens=cu, max_seqlen=max_seqlen))
    return torch.stack(per).float(), fwd / x.size(0)


def train_steps(mod, h, model, tok: torch.Tensor, n: int, t: int, steps: int, packed: bool,
                bf16: bool) -> tuple[list[float], list[dict[str, torch.Tensor]],
                                     list[dict[str, torch.Tensor]]]:
    """`steps` optimiser steps of the script's training step (train_model's step_fn, a closure
    that cannot be called from outside, so its sequence is restated here) with the script's
    Optimizers: forward/backward of the step's batch, Muon momentum warm-up for step s
    (linear MUON_MOMENTUM_WARMUP_START -> MUON_MOMENTUM over MUON_MOMENTUM_WARMUP_STEPS), every
    group's lr = base_lr * 1.0 (the schedule's flat part; the wall-clock warm-down is not
    modelled), clip_grad_norm_(GRAD_CLIP_NORM), Optimizers.step(distributed=False) (which
    zeroes the grads). Single process, world size 1. No EMA (the weights returned are the live
    ones). Step s reads tokens [s*n*t, (s+1)*n*t + 1) as n rows of t.

    Dense (packed=False): one forward of the (n, t) batch, cu_seqlens=None. Packed: each row is
    one packed (1, t) micro-batch with its cu_seqlens (cap TRAIN_SEQ_LEN, as the loader) and
    max_seqlen=TRAIN_SEQ_LEN (as step_fn passes it); loss/n per row, as the script's grad
    accumulation. The loss of a step is the mean over its rows (float64)."""
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    model.train()
    with _cpu_streams():
        optimizers = mod.Optimizers(h, model)
    clip_params = [p for p in model.parameters() if p.requires_grad]
    losses, snapshots, grads = [], [], []
    for step in range(steps):
        seg = tok[step * n * t: (step + 1) * n * t + 1]
        x, y = seg[:-1].reshape(n, t), seg[1:].reshape(n, t)
        if packed:
            micro = [(x[r:r + 1], y[r:r + 1], doc_cu_seqlens(mod, x[r], h.train_seq_len)[0],
                      h.train_seq_len) for r in range(n)]
        else:
            micro = [(x, y, None, 0)]
        step_loss = 0.0
        for xb, yb, cu, max_seqlen in micro:
            with ctx:
                loss = model(xb, yb, cu_seqlens=cu, max_seqlen=max_seqlen)
            step_loss += float(loss.detach()) / len(micro)
            (loss / len(micro)).backward()
        if step <= h.muon_momentum_warmup_steps:
            frac = min(step / h.muon_momentum_warmup_steps, 1.0) if h.muon_momentum_warmup_steps > 0 else 1.0
            momentum = (1 - frac) * h.muon_momentum_warmup_start + frac * h.muon_momentum
            for group in optimizers.optimizer_muon.param_groups:
                group["momentum"] = momentum
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * 1.0
        if h.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(clip_params, h.grad_clip_norm)
        # The gradients the optimisers see (after the clip), so that an optimiser can be
        # compared on identical inputs (--save-grads).
        grads.append({k: p.grad.detach().clone() for k, p in model.named_parameters()
                      if p.grad is not None})
        with _cpu_streams():
            optimizers.step(distributed=False)
        if not math.isfinite(step_loss):
            raise SystemExit(f"step {step}: loss {step_loss!r}")
        losses.append(step_loss)
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    model.eval()
    return losses, snapshots, grads


# ---------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--script", required=True, type=Path, help="the entry's official train_gpt.py")
    ap.add_argument("--entry", required=True, choices=sorted(ENTRIES))
    ap.add_argument("--seed", type=int, help="SEED (default: the script's default = the seed run)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override/add a script environment variable (repeatable)")
    ap.add_argument("--keys-json", type=Path, help="state_dict keys, shapes, dtypes, total_params")
    ap.add_argument("--save-init", type=Path, help="the freshly initialised weights (.safetensors)")
    ap.add_argument("--keep-dtypes", action="store_true",
                    help="save with the script's dtypes (bf16 tables) instead of all fp32")
    ap.add_argument("--load", type=Path, help="weights to load (strict key match; dtypes converted)")
    ap.add_argument("--perturb", type=float, default=0.0, metavar="STD",
                    help="add STD*randn to every floating tensor (after --load)")
    ap.add_argument("--perturb-seed", type=int, default=1)
    ap.add_argument("--save", type=Path, help="the weights as evaluated (after --load/--perturb)")
    ap.add_argument("--tokens", type=Path, help="challenge shard (.bin)")
    ap.add_argument("--num-seqs", type=int, default=1)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--token-losses", type=Path, help="per-position CE, float32 LE, row-major (N, T)")
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                    help="fp32: everything fp32, no autocast; bf16: script dtypes + CPU bf16 autocast")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    g = ap.add_argument_group("pr1855 only")
    g.add_argument("--loop", choices=("on", "off"), default="off",
                   help="model.looping_active (depth recurrence; the script turns it on at 35%% "
                        "of training and for every evaluation)")
    g.add_argument("--doc-boundaries", action="store_true",
                   help="one packed (1, T) row per forward with cu_seqlens from its BOS tokens "
                        "(eval: cap EVAL_SEQ_LEN, computed max_seqlen; steps: cap and max_seqlen "
                        "TRAIN_SEQ_LEN); without it rows take the dense causal path")
    g.add_argument("--print-schedule", action="store_true",
                   help="print the encoder/decoder block lists (looping off and on)")
    g.add_argument("--rope-bf16", action="store_true",
                   help="with --dtype fp32, keep the bf16-rounded RoPE inv_freq of the run")
    g.add_argument("--steps", type=int, default=0,
                   help="optimiser steps of the script's training step on --tokens (after the evaluation)")
    g.add_argument("--save-steps", type=Path,
                   help="weights after each step: one .safetensors, keys 'step{s}.{name}'")
    g.add_argument("--save-grads", type=Path,
                   help="the clipped gradients each step's optimisers saw: keys 'step{s}.{name}'")
    g.add_argument("--step-losses", type=Path,
                   help="loss of each step (before its update), one float64 per line")
    opt = ap.parse_args()

    if opt.token_losses and not opt.tokens:
        ap.error("--token-losses needs --tokens")
    if opt.steps and not opt.tokens:
        ap.error("--steps needs --tokens")
    if (opt.save_steps or opt.step_losses or opt.save_grads) and not opt.steps:
        ap.error("--save-steps/--step-losses/--save-grads need --steps")
    pr1855_flags = (opt.loop == "on" or opt.doc_boundaries or opt.print_schedule or opt.rope_bf16
                    or opt.steps)
    if pr1855_flags and ENTRIES[opt.entry].gpt_kwargs is not None:
        ap.error("--loop/--doc-boundaries/--print-schedule/--rope-bf16/--steps: pr1855 only")
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    entry = ENTRIES[opt.entry]
    overrides = {}
    for s in opt.set:
        k, sep, v = s.partition("=")
        if not sep:
            ap.error(f"--set wants NAME=VALUE, got {s!r}")
        overrides[k] = v

    mod, env, blob = load_script(opt.script, entry, opt.seed, overrides)
    model, args = build_model(mod, entry)
    model.eval()

    sd = model.state_dict()
    script_dtypes = {k: v.dtype for k, v in sd.items()}
    total = sum(p.numel() for p in model.parameters())
    if total != sum(v.numel() for v in sd.values()):
        raise SystemExit("parameters and state_dict disagree (shared or buffer tensors)")
    if total != entry.params:
        msg = f"{entry.name}: {total:,} parameters, the as-run configuration has {entry.params:,}"
        if not overrides:
            raise SystemExit("error: " + msg)
        log("note: " + msg)
    meta = {"entry": entry.name, "seed": str(args.seed), "script_git_blob": blob}

    if opt.keys_json:
        keys = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch."),
                 "numel": v.numel()} for k, v in sd.items()]
        doc = {"entry": entry.name, "script": entry.script_path, "commit": entry.commit,
               "script_git_blob": blob, "env": env, "seed": args.seed,
               "total_params": total, "num_keys": len(keys), "keys": keys}
        opt.keys_json.write_text(json.dumps(doc, indent=1) + "\n")

    def export(path: Path) -> None:
        cur = model.state_dict()
        out = {k: v.to(script_dtypes[k] if opt.keep_dtypes else torch.float32) for k, v in cur.items()}
        save_safetensors(out, path, meta)

    if opt.save_init:
        export(opt.save_init)

    if opt.dtype == "fp32":
        model.float()
        if not opt.rope_bf16:
            restore_fp32_rope_buffers(mod, entry, model)
    if hasattr(model, "looping_active"):
        model.looping_active = opt.loop == "on"
    if opt.print_schedule:
        enc_off = list(range(model.num_encoder_layers))
        dec_off = list(range(model.num_encoder_layers, model.num_layers))
        for name, enc, dec in (("off", enc_off, dec_off),
                               ("on", model.encoder_indices, model.decoder_indices)):
            print(f"schedule loop:{name} encoder:{','.join(map(str, enc))} "
                  f"decoder:{','.join(map(str, dec))}")
        print(f"skip_weights:{model.num_skip_weights} parallel_start_layer:{model.parallel_start_layer}")
    if opt.load:
        w = load_safetensors(opt.load)
        missing = [k for k in sd if k not in w]
        extra = [k for k in w if k not in sd]
        if missing or extra:
            raise SystemExit(f"{opt.load}: missing keys {missing}, unexpected keys {extra}")
        cur = model.state_dict()
        model.load_state_dict({k: w[k].to(cur[k].dtype) for k in cur}, strict=True)
    if opt.perturb:
        perturb_(model, opt.perturb, opt.perturb_seed)
    if opt.save:
        export(opt.save)

    line = f"entry:{entry.name} params:{total} dtype:{opt.dtype}"
    if hasattr(model, "looping_active"):
        line += f" loop:{opt.loop} doc_boundaries:{int(opt.doc_boundaries)}"
    if opt.tokens:
        n, t = opt.num_seqs, opt.seq_len
        tok = read_tokens(opt.tokens, n * t * max(1, opt.steps) + 1)
        x, y = tok[:n * t].reshape(n, t), tok[1:n * t + 1].reshape(n, t)
        if opt.doc_boundaries:
            per, fwd = token_losses_packed(mod, model, x, y, opt.dtype == "bf16", args.eval_seq_len)
            line += f" max_doc_len:{args.eval_seq_len} bos_in_rows:{int((x[:, 1:] == mod.BOS_ID).sum())}"
        else:
            per, fwd = token_losses(mod, model, x, y, opt.dtype == "bf16")
        mean = float(per.double().mean())
        tol = 1e-5 if opt.dtype == "fp32" else 2e-3
        if not math.isfinite(mean) or abs(mean - fwd) > tol * max(1.0, abs(fwd)):
            raise SystemExit(f"per-position mean {mean!r} != script forward(x, y) {fwd!r}")
        if opt.token_losses:
            per.numpy().astype("<f4").tofile(opt.token_losses)
        line += f" tokens:{n}x{t} mean_loss:{mean:.8f} forward_loss:{fwd:.8f}"
    if opt.steps:
        losses, snaps, step_grads = train_steps(mod, args, model, tok, n, t, opt.steps,
                                                opt.doc_boundaries, opt.dtype == "bf16")
        if opt.save_grads:
            out = {f"step{s}.{k}": v.float() for s, gs in enumerate(step_grads) for k, v in gs.items()}
            save_safetensors(out, opt.save_grads, dict(meta, steps=str(opt.steps)))
        if opt.step_losses:
            opt.step_losses.write_text("".join(f"{v!r}\n" for v in losses))
        if opt.save_steps:
            out = {f"step{s}.{k}": v.to(script_dtypes[k] if opt.keep_dtypes else torch.float32)
                   for s, snap in enumerate(snaps) for k, v in snap.items()}
            save_safetensors(out, opt.save_steps, dict(meta, steps=str(opt.steps)))
        line += f" steps:{opt.steps} step_losses:{','.join(f'{v:.8f}' for v in losses)}"
    print(line)


if __name__ == "__main__":
    main()
