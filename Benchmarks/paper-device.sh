#!/usr/bin/env bash
# One device call for the paper table: the Vulkan loaders, vkprobe (PROBE=0: not), the driver's sizes of weight-image
# extents (.device/imgsize, built here from Benchmarks/imgsize/imgsize.c), then paper-bench.sh with the caller's
# environment. Carry .gl, .device (with vkprobe and imgsize) and .whl.
set -u
repo=$(pwd)
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
OUT=${OUT:-/tmp/out}; export OUT
cd .device && chmod +x vkprobe imgsize
if ! ./imgsize rgba16f:1x1x1 > /dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
if [ "${PROBE:-1}" = 1 ]; then timeout 120 ./vkprobe > "$OUT/vkprobe.txt" 2>&1; fi
./imgsize $(for h in 1 7 8 9 16 37 40 64 100 128 145 152 160 256 300 320 640 1000; do echo rgba16f:1024x${h}x1; done) \
  rgba16f:1024x8x5 rgba16f:1024x8x19 rgba16f:1024x8x128 rgba16f:1024x8x256 rgba16f:1024x16x10 rgba16f:1024x32x5 \
  rgba16f:1024x64x5 rgba16f:1024x128x17 rgba16f:1024x512x13 rgba32f:1024x37x1 rgba32f:1024x8x5 rgba32f:1024x64x5 \
  > "$OUT/imgsize.txt" 2>&1
cat "$OUT/imgsize.txt"
cd "$repo" && bash Benchmarks/paper-bench.sh
