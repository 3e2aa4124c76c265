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
    gpt_kwargs: Callable[[object], dict]
    banks: tuple[str, ...] = field(default=())  # weight banks main() puts back to fp32


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
}

# Modules the scripts import at top level *without* a fallback but never use for the model.
# Only if one is not installed is a placeholder put into sys.modules (numpy is needed here anyway).
# flash_attn_interface (pr1406) and zstandard are NOT stubbed: the scripts catch ImportError.
_STUB_IF_MISSING = ("sentencepiece",)


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
    os.environ.update(env)
    return env


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
    spec.loader.exec_module(mod)  # __name__ != "__main__": main() does not run
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
              torch.float64: "F64", torch.int64: "I64", torch.int32: "I32"}
_ST_DTYPES_INV = {v: k for k, v in _ST_DTYPES.items()}


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    try:
        from safetensors.torch import save_file
    except ImportError:
        save_file = None
    if save_file is not None:
        save_file(tensors, str(path), metadata=metadata)
        return
    # Hand-written writer (format: u64 LE header size, JSON header, raw little-endian data).
    header: dict[str, object] = {"__metadata__": metadata}
    blobs, off = [], 0
    for k, v in tensors.items():
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


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        load_file = None
    if load_file is not None:
        return load_file(str(path))
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for k, info in header.items():
        if k == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = torch.frombuffer(bytearray(data[8 + n + a:8 + n + b]), dtype=torch.uint8)
        out[k] = raw.view(_ST_DTYPES_INV[info["dtype"]]).reshape(info["shape"]).clone()
    return out


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
    opt = ap.parse_args()

    if opt.token_losses and not opt.tokens:
        ap.error("--token-losses needs --tokens")
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    entry = ENTRIES[opt.entry]
    overrides = {}
    for s in opt.set:
        k, sep, v = s.partition("=")
        if not sep:
            ap.error(f"--set wants NAME=VALUE, got {s!r}")
        overrides[k] = v

    data = opt.script.read_bytes()
    blob = git_blob_id(data)
    if blob != entry.git_blob:
        log(f"warning: {opt.script} is git blob {blob}, expected {entry.git_blob} "
            f"({entry.commit}:{entry.script_path})")
    env = prepare_env(data.decode("utf-8"), entry, opt.seed, overrides)
    mod = import_script(opt.script.resolve(), entry)
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
        restore_fp32_rope_buffers(mod, entry, model)
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
    if opt.tokens:
        n, t = opt.num_seqs, opt.seq_len
        tok = read_tokens(opt.tokens, n * t + 1)
        x, y = tok[:-1].reshape(n, t), tok[1:].reshape(n, t)
        per, fwd = token_losses(mod, model, x, y, opt.dtype == "bf16")
        mean = float(per.double().mean())
        tol = 1e-5 if opt.dtype == "fp32" else 2e-3
        if not math.isfinite(mean) or abs(mean - fwd) > tol * max(1.0, abs(fwd)):
            raise SystemExit(f"per-position mean {mean!r} != script forward(x, y) {fwd!r}")
        if opt.token_losses:
            per.numpy().astype("<f4").tofile(opt.token_losses)
        line += f" tokens:{n}x{t} mean_loss:{mean:.8f} forward_loss:{fwd:.8f}"
    print(line)


if __name__ == "__main__":
    main()
