#!/usr/bin/env bash
# Issue 10, part 5: this project beside the engines a user of the same GPU would pick, in one run on the device
# machine, on the same models: ncnn (Vulkan, fp16 and fp32), IREE (Vulkan, fp32 and fp16) and torch eager (CUDA,
# fp16 and fp32), run by ../shared/tools/peers/h200_peers.sh from the peer kit, then ours on the very ONNX files
# and onnxruntime references the peers used: fp16, weights resident (`--preload`) and streamed under a 25% budget,
# through paper-bench.sh's rows (cold = process start → first output, bundle in the page cache, pipelines cached;
# warm median; own device memory and the VK_EXT_memory_budget increase; relative error). peer_table.py puts both
# in one table, with each peer's failures and their reasons.
#
# Here (once): the peer kit, `bash Benchmarks/make-peerkit.sh` (.peerkit, git-ignored); fmc and fmrun as for
#   core-bench.sh (.device/bin/fmc.xz, fmrun.xz); cp ../shared/corpus/make_corpus.py ../shared/corpus/ort_runner.py .device/
# There (carry .gl, .device, .peerkit):
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; bash Benchmarks/peer-bench.sh
# Settings: MODELS (default the four above; a model the kit has no IREE module for lists IREE as failed),
# ENGINES (the peers', default all six), BUDGETS (25%), RUNS (20), PEERS=0 skips the peers (ours only, e.g. for a
# second call: the table script takes several result folders), TORCH_EAGER (models also run by torch_eager.py,
# default the GPT-Neo models). Results: $OUT/peers/ (results.jsonl, table.md, logs), $OUT/paper-*.log (ours),
# $OUT/torch/*.json, $OUT/peer-table.md.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
MODELS=${MODELS:-"resnet50 mobilenet_v3_large vit_b_16 gpt_neo_125m"}
export PEER_WORK_DIR=${WORK:-/tmp/peerwork}  # the peers' models and references: ours reads the same files
cd "$repo"
source Benchmarks/unpack-bins.sh; unpack_bins .device/bin
./.device/bin/fmrun --list-devices > /dev/null 2>&1 \
  || export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ "${PEERS:-1}" = 1 ]; then
  [ -f .peerkit/h200_peers.sh ] || { echo "peer-bench: no peer kit in .peerkit (see the header)"; exit 1; }
  MODELS="$MODELS" WORK=$PEER_WORK_DIR CORPUS=$repo/.device bash .peerkit/h200_peers.sh .peerkit "$OUT/peers"
fi
# Ours: paper-bench.sh's rows on the peers' files (it generates a model only where the peers did not).
mkdir -p .device/corpus
for m in $MODELS; do
  for f in "$PEER_WORK_DIR/models/$m".{onnx,ref.npz,json} "$PEER_WORK_DIR/models/$m".onnx.data; do
    [ -f "$f" ] && ln -sf "$f" .device/corpus/
  done
done
MODELS="$MODELS" TORCH=0 FP32_MODELS= SPLIT=0 BUDGETS="${BUDGETS:-25%}" RUNS=${RUNS:-20} COLD_RUNS=${COLD_RUNS:-2} \
  OUT=$OUT bash Benchmarks/paper-bench.sh > /dev/null
# torch eager for the models whose module the kit cannot pickle (GPT-Neo's LM wrapper is a local class; the kit's
# torch rows say "no torch module"): Benchmarks/paper/torch_eager.py saves its weights and rebuilds it, fp16 and fp32.
mkdir -p "$OUT/torch" .device/work
for m in $MODELS; do
  case " ${TORCH_EAGER-gpt_neo_125m gpt_neo_1_3b gpt_neo_2_7b} " in *" $m "*) ;; *) continue ;; esac
  CORPUS_SCRIPTS=$repo/.device python3 Benchmarks/paper/torch_eager.py save $m .device/corpus .device/work/$m.pt 2>&1 | tail -1
  for d in fp16 fp32; do
    CORPUS_SCRIPTS=$repo/.device python3 Benchmarks/paper/torch_eager.py run .device/work/$m.pt --runs "${RUNS:-20}" \
      --dtype $d --json "$OUT/torch/$m.$d.json" --ref .device/corpus/$m.ref.npz 2>&1 | tail -1
  done
  rm -f .device/work/$m.pt
done
python3 Benchmarks/peer_table.py "$OUT" | tee "$OUT/peer-table.md"
