#!/usr/bin/env python3
"""Run record #1855's own export functions on the CPU: GPTQ/LQER quantisation, dequantisation
and the per-group (lrzip) and brotli serialisations, for parity tests of pgolf's export.

The record's script (`train_gpt.py` of openai/parameter-golf at the commit in README.md) is
imported from --script behind entry_model.py's CPU shims (FlashAttention-3 / Triton stand-ins,
the as-run environment of ENTRIES["pr1855"]); none of its code is copied here. The functions
called are the script's: gptq_mixed_quantize(state_dict, hessians, h) (GPTQ with SDClip,
int8-per-row gates, fp16 passthrough, LQER), dequantize_mixed(result, meta, template),
_serialize_pergroup / _deserialize_pergroup / _unpack_streams, _compress and _unbank_state_dict.
`h` is the script's own Hyperparameters(): the quantisation settings of the record's
train_seed42.log (QUANT_ENV below) are put into the environment before the import, under the
--set overrides.

Inputs: --weights, an *unbanked* state dict (the names of the script's _unbank_state_dict:
tok_emb.weight, blocks.{i}.attn.c_q.weight, ..., blocks.{i}.mlp.proj.weight and the control
tensors) with the dtypes to quantise (the record's tok_emb.weight is bf16, the rest fp32), in
the order of the tensors' data in the file, which is the order pgolf's write_safetensors and
write_safetensors_ordered write (the `safetensors` package lays data out in its own order: do
not use it to write inputs); --hessians, fp32 [cols, cols] per weight name (any order).
--make-example DIR writes a small example of both (see make_example) and uses it.

Outputs: the quantised result dict as returned, same order and dtypes (--out-quant), the meta
dict with the result keys in order, the LQER choice and the settings (--out-meta), the
dequantised weights for two templates (--out-dequant, --out-dequant-bf16-emb), the record's
artifact blob (--pergroup, needs the `lrzip` program) and the size of the brotli artifact
(--brotli-size). A summary (route and max |W - dequant| per tensor, the LQER ranking) goes to
stdout; the script's own log lines go to stderr.

  python3 bench/reference/pr1855_quant.py --script train_gpt.py --make-example ex \
      --out-quant q.safetensors --out-meta m.json --out-dequant d.safetensors \
      --out-dequant-bf16-emb d16.safetensors --pergroup artifact.pgrp --brotli-size
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import entry_model as em  # noqa: E402  (same folder)

# The quantisation settings of the record's run: the `Hyperparameters:` block of
# train_seed42.log (identical to the script's defaults except EMBED_BITS 8 -> 7,
# EMBED_CLIP_SIGMAS 20 -> 14, MLP_CLIP_SIGMAS 10 -> 11.5, GATED_ATTN_QUANT_GATE 0 -> 1).
QUANT_ENV = {
    "MATRIX_BITS": "6", "EMBED_BITS": "7", "MATRIX_CLIP_SIGMAS": "12.85",
    "MLP_CLIP_SIGMAS": "11.5", "ATTN_CLIP_SIGMAS": "13.0", "EMBED_CLIP_SIGMAS": "14.0",
    "GATED_ATTN_QUANT_GATE": "1", "LQER_ENABLED": "1", "LQER_RANK": "4", "LQER_TOP_K": "3",
    "LQER_FACTOR_BITS": "4", "LQER_ASYM_ENABLED": "1", "LQER_ASYM_GROUP": "64",
}

# The Hyperparameters fields gptq_mixed_quantize reads (reported and stored in --out-meta).
QUANT_FIELDS = ("matrix_bits", "embed_bits", "matrix_clip_sigmas", "mlp_clip_sigmas",
                "attn_clip_sigmas", "embed_clip_sigmas", "gated_attn_quant_gate", "lqer_enabled",
                "lqer_rank", "lqer_top_k", "lqer_factor_bits", "lqer_asym_enabled",
                "lqer_asym_group")

# --make-example's model: the record's stack shrunk to 2 blocks (under the --set overrides).
# Shapes and routes (GPTQ: numel > 65,536):
#   tok_emb.weight 512x512 (bf16)                     GPTQ int7, clip 14.0
#   attn.c_q / attn.proj 512x512                      GPTQ int6, clip 13.0
#   attn.c_k / attn.c_v 128x512 = 65,536 exactly      fp16 passthrough (the boundary)
#   mlp.fc 384x512, mlp.proj 512x384                  GPTQ int6, clip 11.5
#   attn.attn_gate_w 8x12                             int8 per row
#   other control tensors                             fp16 passthrough
# 9 GPTQ tensors are LQER candidates; the top 3 get asymmetric factors (4*cols % 64 == 0).
# TIED_EMBED_INIT_STD 0.1 (record: 0.005) makes tok_emb one of them, as in the record's run.
EXAMPLE_ENV = {
    "VOCAB_SIZE": "512", "NUM_LAYERS": "2", "MODEL_DIM": "512", "NUM_HEADS": "8",
    "NUM_KV_HEADS": "2", "MLP_MULT": "0.75", "XSA_LAST_N": "2", "LOOP_START": "0",
    "LOOP_END": "1", "PARALLEL_START_LAYER": "1", "TIED_EMBED_INIT_STD": "0.1",
}

# The record's deserialize() template: GPT(h).bfloat16() then restore_fp32_params, which
# leaves only the tied embedding in bf16 (entry_model.py --keys-json lists the dtypes).
RECORD_BF16_TENSORS = ("tok_emb.weight",)

# Names of the PGRP container's streams: the script's 7 lrzip groups, then its two brotli streams.
REMAINDER_STREAMS = ("remainder", "permutations")


def log(msg: str) -> None:
    print(msg, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# The example inputs
# ---------------------------------------------------------------------------------------------

def example_hessian(cols: int, g: torch.Generator, dead: int) -> torch.Tensor:
    """X^T X / n (fp64, stored fp32) of n = 2*cols correlated Gaussian rows with log-normal
    column scales (so act-order moves columns around) and `dead` all-zero columns (diag 0).
    The scales put the dead columns' damped diagonal 1 + 0.01*mean(diag) inside the range of
    the live ones, so they sit in the middle of the act-order permutation."""
    mix = torch.eye(cols, dtype=torch.float64)
    mix += 0.5 * torch.randn(cols, cols, generator=g, dtype=torch.float64) / cols ** 0.5
    scale = torch.exp(0.75 * torch.randn(cols, generator=g, dtype=torch.float64))
    x = torch.randn(2 * cols, cols, generator=g, dtype=torch.float64) @ mix * scale
    x[:, torch.randperm(cols, generator=g)[:dead]] = 0
    return (x.T @ x / x.size(0)).float()


def make_example(mod, entry: em.Entry, out_dir: Path, seed: int) -> tuple[Path, Path]:
    """Weights: the script's GPT(h) (seeded as main(), bf16 + restore_fp32_params), every
    tensor + 0.02*randn (entry_model.perturb_, Generator(seed)), unbanked by the script's
    _unbank_state_dict (its order), then outliers: in every 2-D tensor, one entry per 4,096
    (at least one) set to +-30 std of the tensor, beyond every clip (saturates at +-clip_range).
    Hessians: one per layer input as collect_hessians shares them (c_q/c_k/c_v read the same
    input), example_hessian with 4 dead columns, Generator(seed + 1)."""
    model, h = em.build_model(mod, entry)
    em.perturb_(model, 0.02, seed)
    sd = {k: v.clone() for k, v in mod._unbank_state_dict(model.state_dict(), h.num_layers).items()}
    g = torch.Generator().manual_seed(seed)
    for t in sd.values():
        if t.ndim == 2 and t.is_floating_point():
            flat = t.view(-1)
            idx = torch.randperm(flat.numel(), generator=g)[:max(1, flat.numel() // 4096)]
            sign = torch.randint(0, 2, (idx.numel(),), generator=g).float() * 2 - 1
            flat[idx] = (30.0 * float(t.float().std()) * sign).to(t.dtype)
    g = torch.Generator().manual_seed(seed + 1)
    hidden = sd["blocks.0.mlp.fc.weight"].shape[0]
    dim = h.model_dim
    hess = {"tok_emb.weight": example_hessian(dim, g, 4)}
    for i in range(h.num_layers):
        attn_in = example_hessian(dim, g, 4)
        for k in ("c_q", "c_k", "c_v"):
            hess[f"blocks.{i}.attn.{k}.weight"] = attn_in
        hess[f"blocks.{i}.attn.proj.weight"] = example_hessian(dim, g, 4)
        hess[f"blocks.{i}.mlp.fc.weight"] = example_hessian(dim, g, 4)
        hess[f"blocks.{i}.mlp.proj.weight"] = example_hessian(hidden, g, 4)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights, hessians = out_dir / "weights.safetensors", out_dir / "hessians.safetensors"
    meta = {"source": "pr1855_quant.py --make-example", "seed": str(seed)}
    em.write_safetensors_ordered(sd, weights, meta)
    em.write_safetensors_ordered(hess, hessians, meta)
    log(f"example: {len(sd)} tensors -> {weights}, {len(hess)} Hessians -> {hessians}")
    return weights, hessians


# ---------------------------------------------------------------------------------------------
# Quantisation and outputs
# ---------------------------------------------------------------------------------------------

class _Hessians(dict):
    """The Hessian dict handed to gptq_mixed_quantize: a tensor routed to GPTQ without one is
    a clear error instead of the script's KeyError."""

    def __missing__(self, name):
        raise SystemExit(f"error: no Hessian for {name!r} (routed to GPTQ) in --hessians")


def record_template(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The dtypes of the record's deserialize() template: bf16 tied embedding, fp32 rest."""
    return {k: v.to(torch.bfloat16 if k in RECORD_BF16_TENSORS else torch.float32)
            if v.is_floating_point() else v for k, v in weights.items()}


def gptq_errors(weights, result, meta) -> dict[str, float]:
    """||W - q*s||_F of every GPTQ tensor: the key the script ranks LQER candidates by
    (gptq_mixed_quantize's `E = t.float() - q.float() * s.float().view(-1, 1)`)."""
    out = {}
    for name, route in meta.items():
        if route.startswith("gptq"):
            q, s = result[name + ".q"], result[name + ".scale"]
            out[name] = float((weights[name].float() - q.float() * s.float().view(-1, 1)).norm())
    return out


def pergroup(mod, result, meta, num_layers: int, check: bool) -> tuple[bytes, list[int]]:
    """_serialize_pergroup as serialize() calls it (COMPRESSOR=pergroup) and the stream sizes
    (the script's _unpack_streams). With `check`, the script's _deserialize_pergroup must give
    back every result tensor bit for bit and the meta (lrzip decompression is as slow as
    compression). `num_layers`: the weights' block count (only _deserialize_pergroup reads it;
    serialize() passes h.num_layers)."""
    with tempfile.TemporaryDirectory(prefix="pgrp_") as tmp:
        blob = mod._serialize_pergroup(result, meta, num_layers, tmp)
        if check:
            back, back_meta = mod._deserialize_pergroup(blob, num_layers, tmp)
            bad = sorted(set(back) ^ set(result))
            bad += [k for k in result if k in back and (back[k].dtype != result[k].dtype
                                                         or not torch.equal(back[k], result[k]))]
            if bad or back_meta != meta:
                raise SystemExit(f"error: per-group round trip differs: {bad[:8]} "
                                 f"meta equal: {back_meta == meta}")
    return blob, [len(s) for s in mod._unpack_streams(blob)]


def brotli_size(mod, result, meta) -> int:
    """serialize()'s COMPRESSOR=brotli branch: torch.save({"w": result, "m": meta}) compressed
    by the script's _compress(raw, "brotli") (quality 11)."""
    buf = io.BytesIO()
    torch.save({"w": result, "m": meta}, buf)
    return len(mod._compress(buf.getvalue(), "brotli"))


def num_layers_of(names) -> int:
    idx = [int(m.group(1)) for n in names if (m := re.match(r"blocks\.(\d+)\.", n))]
    return max(idx) + 1 if idx else 0


def dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


# ---------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--script", required=True, type=Path, help="the record's official train_gpt.py")
    ap.add_argument("--weights", type=Path,
                    help="unbanked state dict (.safetensors; the order of its data is kept)")
    ap.add_argument("--hessians", type=Path,
                    help="fp32 [cols, cols] per weight name (.safetensors)")
    ap.add_argument("--make-example", type=Path, metavar="DIR",
                    help="write DIR/weights.safetensors and DIR/hessians.safetensors of a shrunk "
                         "model (EXAMPLE_ENV under --set) and use them unless --weights/--hessians")
    ap.add_argument("--example-seed", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a script environment variable (repeatable)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--out-quant", type=Path,
                    help="the result dict (.safetensors, its order and dtypes)")
    ap.add_argument("--out-meta", type=Path, help="meta, result keys in order, LQER choice (.json)")
    ap.add_argument("--out-dequant", type=Path,
                    help="dequantize_mixed with the input dtypes as template, written fp32")
    ap.add_argument("--out-dequant-bf16-emb", type=Path,
                    help="dequantize_mixed with the record's template (bf16 tok_emb), written fp32")
    ap.add_argument("--pergroup", type=Path, metavar="OUT.bin",
                    help="the record's artifact blob (_serialize_pergroup; needs lrzip)")
    ap.add_argument("--pergroup-check", action="store_true",
                    help="also decode the blob with _deserialize_pergroup and compare")
    ap.add_argument("--brotli-size", action="store_true",
                    help="print the size of serialize()'s COMPRESSOR=brotli artifact")
    opt = ap.parse_args()

    if opt.make_example is None and not (opt.weights and opt.hessians):
        ap.error("--weights and --hessians are required (or --make-example DIR)")
    if opt.pergroup_check and not opt.pergroup:
        ap.error("--pergroup-check needs --pergroup")
    if opt.pergroup and shutil.which("lrzip") is None:
        raise SystemExit("error: --pergroup runs the script's _serialize_pergroup, which calls "
                         "the `lrzip` program (lrzip -z -L 9); it is not on PATH "
                         "(Debian/Ubuntu: apt-get install lrzip)")
    if (opt.pergroup or opt.brotli_size) and importlib.util.find_spec("brotli") is None:
        raise SystemExit("error: --pergroup/--brotli-size need the Python module `brotli`")
    overrides = dict(QUANT_ENV, **(EXAMPLE_ENV if opt.make_example else {}))
    for s in opt.set:
        k, sep, v = s.partition("=")
        if not sep:
            ap.error(f"--set wants NAME=VALUE, got {s!r}")
        overrides[k] = v

    entry = em.ENTRIES["pr1855"]
    mod, _, blob_id = em.load_script(opt.script, entry, None, overrides)
    h = mod.Hyperparameters()
    settings = {f: getattr(h, f) for f in QUANT_FIELDS}

    weights_path, hessians_path = opt.weights, opt.hessians
    if opt.make_example:
        # One thread, whatever --threads says: the script's orthogonal init (QR) and the fp64
        # Hessian products give other bits with other thread counts.
        torch.set_num_threads(1)
        ex_w, ex_h = make_example(mod, entry, opt.make_example, opt.example_seed)
        weights_path, hessians_path = weights_path or ex_w, hessians_path or ex_h
    torch.set_num_threads(opt.threads)
    weights, _ = em.read_safetensors_ordered(weights_path)
    hessians = _Hessians(em.read_safetensors_ordered(hessians_path)[0])

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the script's log() prints its category list
        result, meta = mod.gptq_mixed_quantize(weights, hessians, h)
    quant_s = time.perf_counter() - t0
    errors = gptq_errors(weights, result, meta)
    lqer = [n for n, route in meta.items() if "+lqer" in route]
    lqer.sort(key=lambda n: -errors[n])  # the script's choice order: ||E||_F descending
    deq = mod.dequantize_mixed(result, meta, weights)
    run_meta = {"script_git_blob": blob_id, "threads": str(opt.threads),
                "settings": json.dumps(settings)}

    print(f"settings: {' '.join(f'{k}={v}' for k, v in settings.items())}")
    print(f"threads:{opt.threads} tensors:{len(weights)} result_keys:{len(result)} "
          f"gptq_mixed_quantize:{quant_s:.2f}s")
    for name, w in weights.items():
        route = meta.get(name, "(not in meta)")
        err = float((w.float() - deq[name].float()).abs().max()) if name in deq else float("nan")
        fro = f" gptq_err_fro={errors[name]:.6g}" if name in errors else ""
        print(f"tensor {name} {list(w.shape)} {dtype_name(w)} route={route} "
              f"max_abs_dequant_err={err:.6g}{fro}")
    for rank, name in enumerate(lqer):
        print(f"lqer {rank} {name} err_fro={errors[name]:.6g}")

    if opt.out_quant:
        em.write_safetensors_ordered(result, opt.out_quant, run_meta)
    if opt.out_dequant:
        em.write_safetensors_ordered({k: v.float() for k, v in deq.items()}, opt.out_dequant,
                                     dict(run_meta, template="input dtypes"))
    if opt.out_dequant_bf16_emb:
        deq16 = mod.dequantize_mixed(result, meta, record_template(weights))
        em.write_safetensors_ordered({k: v.float() for k, v in deq16.items()},
                                     opt.out_dequant_bf16_emb,
                                     dict(run_meta, template="record (bf16 tok_emb.weight)"))
    doc = {"script_git_blob": blob_id, "threads": opt.threads, "settings": settings,
           "weights_order": list(weights), "meta": meta,
           "result_keys": [{"name": k, "dtype": dtype_name(v), "shape": list(v.shape)}
                           for k, v in result.items()],
           "lqer": [{"name": n, "err_fro": errors[n]} for n in lqer],
           "gptq_err_fro": errors}
    if opt.pergroup:
        t0 = time.perf_counter()
        packed, sizes = pergroup(mod, result, meta, num_layers_of(weights), opt.pergroup_check)
        opt.pergroup.write_bytes(packed)
        names = list(mod._GROUP_ORDER) + list(REMAINDER_STREAMS)
        if len(names) != len(sizes):
            raise SystemExit(f"error: {len(sizes)} streams, expected {len(names)}")
        for name, size in zip(names, sizes):
            print(f"pergroup stream {name} {size}")
        print(f"pergroup total {len(packed)} (header {8 + 4 * len(sizes)}) "
              f"{'round_trip:ok ' if opt.pergroup_check else ''}{time.perf_counter() - t0:.2f}s")
        doc["pergroup"] = {"total": len(packed), "streams": dict(zip(names, sizes))}
    if opt.brotli_size:
        doc["brotli_bytes"] = brotli_size(mod, result, meta)
        print(f"brotli total {doc['brotli_bytes']}")
    if opt.out_meta:
        opt.out_meta.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
