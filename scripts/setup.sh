#!/usr/bin/env bash
# Installs what pgolf needs on a fresh Debian 12 machine (package registries
# only) and builds it into ./build. Safe to re-run: it installs only what is
# missing and rebuilds incrementally.
#
#   Debian packages: compiler, CMake, SentencePiece, zstd, liblzma, zlib, brotli,
#                    lrzip (the per-group codec's ZPAQ),
#                    GoogleTest, CLI11, nlohmann-json, fmt, ccache, libcurl
#                    (`pgolf data fetch`), the Python docs (the offline
#                    default training corpus) and Chromium (the test that
#                    renders `pgolf report`'s page headless)
#   LibTorch:        an importable torch >= 2.4 is reused (GPU images ship one);
#                    otherwise the PyTorch pip wheel goes into ./.venv
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(g++ cmake make pkg-config ccache python3 python3-venv python3-pip
  libsentencepiece-dev libzstd-dev liblzma-dev libbrotli-dev lrzip zlib1g-dev libgtest-dev libcli11-dev
  nlohmann-json3-dev libfmt-dev libgloo-dev python3.11-doc libcurl4-openssl-dev chromium)

log() { echo "[setup] $*"; }

install_apt_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

torch_ok() {  # $1: a python; succeeds if it imports torch >= 2.4
  "$1" - <<'PY' 2>/dev/null
import torch
major, minor = (int(x) for x in torch.__version__.split(".")[:2])
raise SystemExit(0 if (major, minor) >= (2, 4) else 1)
PY
}

find_python_with_torch() {
  if [[ -n "${PGOLF_PYTHON:-}" ]] && torch_ok "$PGOLF_PYTHON"; then echo "$PGOLF_PYTHON"; return; fi
  if command -v python3 >/dev/null && torch_ok python3; then command -v python3; return; fi
  if [[ -x .venv/bin/python ]] && torch_ok .venv/bin/python; then echo "$PWD/.venv/bin/python"; return; fi
  log "no importable torch >= 2.4: installing the PyTorch wheel into .venv (a few GB)" >&2
  python3 -m venv .venv >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q "${PGOLF_TORCH_SPEC:-torch>=2.4}" >&2
  echo "$PWD/.venv/bin/python"
}

install_apt_packages
PYTHON=$(find_python_with_torch)
log "LibTorch from $("$PYTHON" -c 'import torch; print(torch.__version__, torch.__file__)')"

export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$PYTHON" >/dev/null
cmake --build build -j"$(nproc)"
log "built ./build/pgolf"
