#!/usr/bin/env bash
# Installs what FlashMem needs on Debian 12: the system libraries, Mesa's lavapipe (CPU Vulkan) and a
# Python venv with onnx/onnxruntime/torch for the test models and their references.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
packages=(libvulkan-dev libshaderc-dev glslang-dev spirv-tools libprotobuf-c-dev protobuf-c-compiler
          libzstd-dev mesa-vulkan-drivers python3-venv libglpk-dev libltdl-dev zlib1g-dev
          vulkan-validationlayers)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install: apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The corpus generator's exact environment (torch CPU wheel from pip's configured find-links). The pins live
# with the generator in ../shared/corpus (the project's shared folder, next to this checkout: README "Set up").
requirements=../shared/corpus/requirements.txt
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import onnxruntime, torch, torchvision" 2>/dev/null; then
    if [ ! -f "$requirements" ]; then
        echo "install: $requirements is missing: the Python venv is pinned by the corpus generator in the" \
             "project's shared folder, which must sit next to this checkout as ../shared (README, 'Set up'); no .venv made" >&2
        exit 1
    fi
    echo "install: python venv (.venv) from $requirements"
    # A venv that failed or was interrupted half-way is removed, so the next run starts clean.
    trap 'echo "install: venv not complete; removing .venv" >&2; rm -rf .venv' ERR INT TERM
    python3 -m venv .venv
    .venv/bin/pip install -q -r "$requirements"
    trap - ERR INT TERM
fi
