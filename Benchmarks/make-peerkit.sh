#!/usr/bin/env bash
# The peer kit that peer-bench.sh carries (.peerkit, git-ignored): ../shared/tools/peers/make_peerkit.sh, run from
# a temporary copy with the two changes GPT-Neo needs — transformers in its build venv (make_corpus.py builds GPT-Neo
# with it) and GPT-Neo imported by the kit's import_onnx_inline_consts.py instead of iree-import-onnx (its mask
# constants must stay inline: the kit's README). The shared script itself is not changed.
#   bash Benchmarks/make-peerkit.sh [KIT_DIR]   (default .peerkit; MODELS as make_peerkit.sh, default the four of
#                                               peer-bench.sh; about 7 minutes on the 2-core development machine)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
peers=$(cd "$repo/../shared/tools/peers" 2>/dev/null && pwd) \
  || { echo "make-peerkit: no ../shared/tools/peers beside the repository" >&2; exit 1; }
kit=$(mkdir -p "${1:-$repo/.peerkit}" && cd "${1:-$repo/.peerkit}" && pwd)
copy=$(mktemp -d)/make_peerkit.sh
trap 'rm -rf "$(dirname "$copy")"' EXIT
python3 - "$peers/make_peerkit.sh" "$copy" "$peers" <<'PY'
import sys
src, dst, here = sys.argv[1:]
text = open(src).read()
changes = [
    ('HERE=$(cd "$(dirname "$0")" && pwd)', f'HERE={here}'),
    ('iree-base-compiler==$IREE_VER iree-base-runtime==$IREE_VER\n',
     'iree-base-compiler==$IREE_VER iree-base-runtime==$IREE_VER transformers==5.23.0\n'),
    ('  "$BVENV/bin/iree-import-onnx" "$WORK/iree/$m.fold.onnx"',
     '  importer=("$BVENV/bin/iree-import-onnx")\n'
     '  case $m in gpt_neo_*) importer=($PYB "$HERE/import_onnx_inline_consts.py");; esac\n'
     '  "${importer[@]}" "$WORK/iree/$m.fold.onnx"'),
]
for old, new in changes:
    if text.count(old) != 1:
        sys.exit(f"make-peerkit: {src} has changed: '{old.strip()}' is not there once; update Benchmarks/make-peerkit.sh")
    text = text.replace(old, new)
open(dst, "w").write(text)
PY
MODELS=${MODELS:-"resnet50 mobilenet_v3_large vit_b_16 gpt_neo_125m"} bash "$copy" "$kit"
