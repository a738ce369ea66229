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

# The corpus generator's exact environment (torch CPU wheel from pip's configured find-links).
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import onnxruntime, torch, torchvision" 2>/dev/null; then
    echo "install: python venv (.venv) from ../shared/corpus/requirements.txt"
    python3 -m venv .venv
    .venv/bin/pip install -q -r ../shared/corpus/requirements.txt
fi
