#!/usr/bin/env bash
# Builds the GPU bundle: pgolf and its test binary compiled against exactly
# the torch a GPU machine ships (default 2.11.0, the device image's), with the
# Debian shared libraries they need beside them, so that a machine with that
# torch but no compiler, no Debian packages and no network can run them.
#
#   scripts/gpu/bundle.sh            -> gpu-bundle/ (ignored by git)
#
#   gpu-bundle/bin/      pgolf, pgolf_tests (stripped; RPATH: ../lib, then the
#                        machine's torch through the link ../site, made by
#                        gpu-bundle/activate.sh from its python3)
#   gpu-bundle/lib/      the Debian libraries (SentencePiece, protobuf, zstd...)
#   gpu-bundle/shared/   a small ../shared: the sp1024 tokenizer, a cut train
#                        shard, the val shard, the golden fixtures
#   gpu-bundle/peers/    the official train_gpt.py and #1406's script, from a
#                        local clone of openai/parameter-golf (PGOLF_OFFICIAL_REPO)
#   gpu-bundle/MANIFEST  what is inside, with sizes and the torch it needs
#
# Environment: PGOLF_GPU_TORCH (torch version, default 2.11.0),
# PGOLF_GPU_VENV (its environment, default .venv-torch211 for 2.11.x),
# PGOLF_SHARED (default ../shared), PGOLF_OFFICIAL_REPO (a git dir; optional).
set -euo pipefail
cd "$(dirname "$0")/../.."

TORCH_VERSION=${PGOLF_GPU_TORCH:-2.11.0}
_mm=${TORCH_VERSION%.*}
VENV=${PGOLF_GPU_VENV:-.venv-torch${_mm//./}}  # 2.11.0 -> .venv-torch211
SHARED=${PGOLF_SHARED:-../shared}
BUILD=build-gpu
OUT=gpu-bundle
LIMIT_BYTES=$((48 * 1024 * 1024))  # the device carries 64 MiB with the working tree
TRAIN_TOKENS=2000000               # of the train shard kept (uint16 each)

log() { echo "[gpu-bundle] $*"; }
die() { echo "[gpu-bundle] error: $*" >&2; exit 1; }

# 1. torch ${TORCH_VERSION} in an environment of its own (not the default .venv).
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  log "installing torch==$TORCH_VERSION into $VENV (a few GB)"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION" numpy
fi
SITE=$("$VENV/bin/python" -c "import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))")
log "torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') in $SITE"

# 2. Build (no workflow commands: the device has no network, and libcurl's
#    dependencies would not fit).
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$PWD/$VENV/bin/python" \
  -DPGOLF_WORKFLOW=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target pgolf pgolf_tests

# 3. Binaries, stripped, and the libraries torch's environment does not provide.
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib" "$OUT/shared/data/tokenizers" "$OUT/shared/data/shards" "$OUT/peers"
for b in pgolf pgolf_tests; do
  cp "$BUILD/$b" "$OUT/bin/$b"
  strip --strip-unneeded "$OUT/bin/$b"
done
# glibc, the compiler runtime and the kernel's vdso come with every system;
# torch's and CUDA's libraries come with the machine's torch.
is_system_lib() {
  case "$(basename "$1")" in
    libc.so* | libm.so* | libdl.so* | librt.so* | libpthread.so* | libutil.so* | ld-linux* | \
      libstdc++.so* | libgcc_s.so* | libgomp.so* | linux-vdso*) return 0 ;;
  esac
  return 1
}
SITE=$(realpath "$SITE")
site_dirs=()
while read -r soname path; do
  path=$(realpath "$path")
  if [[ $path == "$SITE"/* ]]; then
    # Inside torch's environment: its folder, relative to the environment.
    rel=$(dirname "${path#"$SITE"/}")
    [[ " ${site_dirs[*]} " == *" $rel "* ]] || site_dirs+=("$rel")
  elif ! is_system_lib "$soname"; then
    cp -L "$path" "$OUT/lib/$soname"  # under the name the loader asks for
  fi
done < <(ldd "$OUT/bin/pgolf" "$OUT/bin/pgolf_tests" | awk '/=> \//{print $1, $3}' | sort -u)
rpath='$ORIGIN/../lib'
for rel in "${site_dirs[@]}"; do rpath+=":\$ORIGIN/../site/$rel"; done
command -v patchelf >/dev/null || die "patchelf is missing (apt-get install patchelf)"
for b in "$OUT"/bin/*; do patchelf --force-rpath --set-rpath "$rpath" "$b"; done
for l in "$OUT"/lib/*; do patchelf --set-rpath '$ORIGIN' "$l"; done

# 4. The data and fixtures the device's checks read (../shared does not travel).
[[ -d $SHARED/golden ]] || die "$SHARED/golden not found (set PGOLF_SHARED)"
cp "$SHARED/data/tokenizers/fineweb_1024_bpe.model" "$OUT/shared/data/tokenizers/"
cp "$SHARED/data/shards/fineweb_val_000000.bin" "$OUT/shared/data/shards/"
cp -r "$SHARED/golden" "$OUT/shared/"
chmod -R u+w "$OUT/shared"
# A train shard cut to TRAIN_TOKENS: the challenge's header (256 int32: magic,
# version, token count) rewritten with the new count.
"$VENV/bin/python" - "$SHARED/data/shards/fineweb_train_000000.bin" \
  "$OUT/shared/data/shards/fineweb_train_000000.bin" "$TRAIN_TOKENS" <<'PY'
import struct, sys
src, dst, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src, "rb") as f:
    header = bytearray(f.read(1024))
    magic, version, count = struct.unpack_from("<3i", header)
    assert magic == 20240520 and version == 1, "not a challenge shard"
    keep = min(keep, count)
    struct.pack_into("<i", header, 8, keep)
    tokens = f.read(2 * keep)
with open(dst, "wb") as f:
    f.write(header)
    f.write(tokens)
PY

# 5. The peers' scripts for the speed comparison (not part of this repository).
if [[ -n ${PGOLF_OFFICIAL_REPO:-} ]]; then
  git --git-dir="$PGOLF_OFFICIAL_REPO" show 48404cd4:train_gpt.py >"$OUT/peers/train_gpt.py"
  git --git-dir="$PGOLF_OFFICIAL_REPO" show \
    "dd52bdd2:records/track_10min_16mb/2026-04-06_DepthRecurrence_PreQuantTTT_11L_8xH100/train_gpt.py" \
    >"$OUT/peers/train_gpt_pr1406.py"
else
  log "PGOLF_OFFICIAL_REPO unset: no peer scripts (the device check skips the comparison)"
fi

# 6. activate.sh: links ../site to the machine's torch and checks the version.
cat >"$OUT/activate.sh" <<SH
# Source this on the GPU machine: links the bundle to python3's torch.
_bundle=\$(cd "\$(dirname "\${BASH_SOURCE[0]}")" && pwd)
_site=\$(\${PGOLF_PYTHON:-python3} -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')
_version=\$(\${PGOLF_PYTHON:-python3} -c 'import torch; print(torch.__version__.split("+")[0])')
[ "\$_version" = "$TORCH_VERSION" ] || echo "[gpu-bundle] warning: built for torch $TORCH_VERSION, this python has \$_version" >&2
ln -sfn "\$_site" "\$_bundle/site"
export PATH="\$_bundle/bin:\$PATH" PGOLF_SHARED="\$_bundle/shared"
SH

# 7. Size and manifest.
bytes=$(du -sb "$OUT" | cut -f1)
{
  echo "torch $TORCH_VERSION ($("$VENV/bin/python" -c 'import torch; print(torch.__version__)'))"
  echo "rpath $rpath"
  (cd "$OUT" && find . -type f -printf '%s %p\n' | sort -k2)
  echo "total $bytes"
} >"$OUT/MANIFEST"
((bytes <= LIMIT_BYTES)) || die "bundle is $bytes bytes, over its $LIMIT_BYTES-byte budget"
log "$OUT: $((bytes / 1024 / 1024)) MiB ($bytes bytes, budget $LIMIT_BYTES)"
