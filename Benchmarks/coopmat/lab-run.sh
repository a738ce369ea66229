#!/usr/bin/env bash
# Runs gemm-lab over the kernel variants of Benchmarks/coopmat/lab on the device machine (one line each) and
# coopmat-peak beside them: where gemm_cm.comp's time goes (B from the image or a buffer, A in fp32 or fp16, loads
# or MMAs switched off) and what other structures give (fp16 buffers staged with no conversion; fragments loaded
# straight from global memory). Carry .gl and .device (bin/gemm-lab, bin/coopmat-peak; build-lab.sh, build-peak.sh).
#   bash Benchmarks/coopmat/lab-run.sh [SHAPES...]   (default "4096x4096x4096"; MxNxK)
# VARIANTS=production runs only Shaders/gemm_cm.comp itself with the tiles in TILES (BMxBN/WMxWN/BK[/db]),
# its weights in an image of PRODUCTION_FORMAT (default rgba32ui, fmc's half8) and a random bias row, under each
# set of defines in EPILOGUES (HALF_ONLY=1: only with A in halves);
# VARIANTS=formats runs the staged kernel with B from an fp16 buffer and from images of three texel formats.
# Results: $OUT/lab.txt.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
source "$repo/Benchmarks/unpack-bins.sh"; unpack_bins "$repo/.device/bin"
lab=$repo/.device/bin/gemm-lab; dir=$repo/Benchmarks/coopmat/lab; inc=$repo/Shaders
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/lab.txt") 2>&1
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json  # where the device machine keeps NVIDIA's driver manifest
[ -z "${VK_DRIVER_FILES:-}" ] && [ -f $icd ] && export VK_DRIVER_FILES=$icd
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv,noheader
"$repo/.device/bin/coopmat-peak" --repeats 5
SHAPES=${*:-4096x4096x4096}
wf=${PRODUCTION_FORMAT:-rgba32ui}  # gemm_cm's weight image format (rgba16f for kernels before format 1.5's half8)
REPEATS=${REPEATS:-10}
run() {  # run LABEL BM BN SHADER [gemm-lab args...]
  local label=$1 bm=$2 bn=$3 shader=$4; shift 4
  "$lab" --shader "$dir/$shader" --include "$inc" --M $M --N $N --K $K --bm $bm --bn $bn --repeats $REPEATS \
    --label "$label" "$@" || echo "$label: exit $?"
}
for s in $SHAPES; do
  IFS=x read -r M N K <<< "$s"
  echo "=== $s"
  for t in ${TILES:-128x128/2x4/64 64x64/2x2/32}; do
    IFS=/ read -r bmbn wmwn bk db <<< "$t"; IFS=x read -r bm bn <<< "$bmbn"; IFS=x read -r wm wn <<< "$wmwn"
    tile="-D WEIGHT_FORMAT=$wf --b-format $wf -D CM_BM=$bm -D CM_BN=$bn -D CM_WM=$wm -D CM_WN=$wn -D CM_BK=$bk
      -D CM_DB=$([ "$db" = db ] && echo 1 || echo 0) --bias"
    # EPILOGUES: ';'-separated sets of gemm_cm defines, each a line of its own (e.g. "CM_DIRECT=1;CM_DIRECT=1
    # CM_ALIAS_C=1"); the first, empty, is the kernel as fmc builds it.
    IFS=';' read -r -a sets <<< "${EPILOGUES:-}"; [ ${#sets[@]} = 0 ] && sets=("")
    for set in "${sets[@]}"; do
      defs=$(for d in $set; do echo -n " -D $d"; done); suffix=$(for d in $set; do echo -n ".${d%=1}"; done)
      [ "${HALF_ONLY:-0}" = 1 ] || run "gemm_cm.$t$suffix" $bm $bn ../../../Shaders/gemm_cm.comp $tile $defs -D CM_VECTOR_A=1
      # A as rows of halves (fmc's to_half.comp ahead of the product, CM_HALF_A), where K is a multiple of 8
      [ $((K % 8)) = 0 ] && [ "$wf" = rgba32ui ] && run "gemm_cm.$t.halfA$suffix" $bm $bn ../../../Shaders/gemm_cm.comp \
        $tile $defs -D CM_HALF_A=1 --a-half
    done
  done
  [ "${VARIANTS:-all}" = production ] && continue
  if [ "${VARIANTS:-all}" = formats ]; then  # the weight image's texel format: rgba16f converted, raw bits 8 or 16 bytes
    for v in "128 128 64 2 4 0" "128 256 32 2 4 0" "64 128 32 2 2 0"; do
      read -r bm bn bk wm wn db <<< "$v"
      d="-D BM=$bm -D BN=$bn -D BK=$bk -D WM=$wm -D WN=$wn -D LAB_DB=$db"
      run "staged.buffer.${bm}x${bn}.bk$bk.a16" $bm $bn gemm_staged.comp $d --b-buffer --a-half
      for a in a16 a32; do
        af=$([ $a = a16 ] && echo --a-half || echo "-D LAB_A32=1")
        run "staged.rgba16f.${bm}x${bn}.bk$bk.$a" $bm $bn gemm_staged.comp $d $af -D LAB_B_IMAGE=1
        run "staged.rg32ui.${bm}x${bn}.bk$bk.$a" $bm $bn gemm_staged.comp $d $af -D LAB_B_IMAGE=2 --b-format rg32ui
        run "staged.rgba32ui.${bm}x${bn}.bk$bk.$a" $bm $bn gemm_staged.comp $d $af -D LAB_B_IMAGE=3 --b-format rgba32ui
      done
    done
    continue
  fi
  cm="gemm_cm_lab.comp -D WEIGHT_FORMAT=rgba16f -D CM_PACKED=1"
  run cm.image.a32 128 128 $cm
  run cm.buffer.a32 128 128 $cm -D LAB_B_BUFFER=1 --b-buffer
  run cm.buffer.a16 128 128 $cm -D LAB_B_BUFFER=1 -D LAB_A_HALF=1 --b-buffer --a-half
  run cm.image.a32.noloads 128 128 $cm -D LAB_NO_LOADS=1
  run cm.image.a32.onemma 128 128 $cm -D LAB_NO_MMA=1
  run cm.noloads.onemma 128 128 $cm -D LAB_NO_LOADS=1 -D LAB_NO_MMA=1
  run cm.image.a32.128x256 128 256 $cm -D CM_BN=256
  run tiled.fp32fma.2x2 128 128 ../../../Shaders/gemm_tiled.comp -D WEIGHT_FORMAT=rgba16f -D GT_TM=2 -D GT_TN=2
  for v in "128 128 32 2 4 0" "128 128 32 2 4 1" "128 128 64 2 4 0" "128 256 32 2 4 0" "128 256 32 2 4 1" \
           "256 128 32 4 2 0" "128 128 32 2 2 0" "64 128 32 2 2 0"; do
    read -r bm bn bk wm wn db <<< "$v"
    run "staged.${bm}x${bn}.bk$bk.${wm}x$wn.db$db" $bm $bn gemm_staged.comp -D BM=$bm -D BN=$bn -D BK=$bk -D WM=$wm \
      -D WN=$wn -D LAB_DB=$db --b-buffer --a-half
  done
  for v in "128 128 32 2 4 0" "128 128 64 2 4 0" "128 256 32 2 4 0" "128 256 32 2 4 1"; do
    read -r bm bn bk wm wn db <<< "$v"
    d="-D BM=$bm -D BN=$bn -D BK=$bk -D WM=$wm -D WN=$wn -D LAB_DB=$db"
    run "staged.a32.${bm}x${bn}.bk$bk.${wm}x$wn.db$db" $bm $bn gemm_staged.comp $d -D LAB_A32=1 --b-buffer
    run "staged.image.${bm}x${bn}.bk$bk.${wm}x$wn.db$db" $bm $bn gemm_staged.comp $d -D LAB_B_IMAGE=1 --a-half
    run "staged.a32.image.${bm}x${bn}.bk$bk.${wm}x$wn.db$db" $bm $bn gemm_staged.comp $d -D LAB_A32=1 -D LAB_B_IMAGE=1
  done
  for v in "4 2 2 4" "2 2 2 2" "4 4 2 2" "2 4 4 2" "4 2 1 4"; do
    read -r fm fn wm wn <<< "$v"
    run "direct.f${fm}x$fn.w${wm}x$wn" $((16*fm*wm)) $((16*fn*wn)) gemm_direct.comp -D FM=$fm -D FN=$fn -D WM=$wm \
      -D WN=$wn --b-buffer --a-half
  done
done
