#!/usr/bin/env bash
# The examples that do real work, as a test on lavapipe (part of `make test` through `make examples`): each
# prints its result, and Examples/check_examples.py checks it against onnxruntime (and the HF tokenizer).
#   sentence-similarity  all-MiniLM-L6-v2 (trained): WordPiece in Swift, mean pooling, cosine matrix
#   detect-text          PP-OCRv4 detector on a rendered page: probability map → boxes drawn into a PPM
#   read-text            PP-OCRv4 detector → direction classifier → recognizer in one device context under one
#                        budget, on a rendered page with one line upside down: the lines read, in reading order
#
#     make examples        (or: bash Examples/run-examples.sh .build/release corpus)
# Needs the corpus models minilm_l6_v2 and ppocrv4_det in CORPUS (`make corpus` makes them); read-text's classifier
# and recognizer come out of the same rapidocr-onnxruntime wheel (check_examples.py ocr-files). KEEP=DIR keeps
# the outputs (bundles, the pages, the pages with their boxes, read-text's dump) in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release}
corpus=${2:-corpus}
python=${PYTHON:-.venv/bin/python}
check="$python Examples/check_examples.py"
for f in "$bin/fmc" "$bin/sentence-similarity" "$bin/detect-text" "$bin/read-text" "$corpus/minilm_l6_v2.onnx" \
         "$corpus/ppocrv4_det.onnx"; do
    [ -e "$f" ] || { echo "run-examples.sh: $f is missing; run 'make examples' (it builds them and makes the corpus)" >&2; exit 1; }
done
if [ -n "${KEEP:-}" ]; then
    out=$KEEP
    mkdir -p "$out"
else
    out=$(mktemp -d -t flashmem-examples-XXXXXX)
    trap 'rm -rf "$out"' EXIT
fi

echo "== sentence-similarity (all-MiniLM-L6-v2)"
{ read -r vocab; read -r tokenizer; } < <($check minilm-files)
compile() {  # fmc's report goes to a log, shown only when it fails
    "$bin/fmc" compile "$@" > "$out/fmc.log" 2>&1 || { cat "$out/fmc.log" >&2; exit 1; }
}
compile "$corpus/minilm_l6_v2.onnx" -o "$out/minilm.fmb" --target lavapipe
sentences=("A man is eating food." "A man eats a piece of bread!"
           "The girl is carrying a baby." "A young girl holds an infant in her arms."
           "Stock markets tumbled on Tuesday." "Share prices fell sharply on Tuesday, the café's owner said.")
"$bin/sentence-similarity" "$out/minilm.fmb" "$vocab" "${sentences[@]}" --dump "$out/similarity" | tee "$out/similarity.txt"
$check check-similarity "$corpus/minilm_l6_v2.onnx" "$tokenizer" "$out/similarity" 0-1,2-3,4-5 "${sentences[@]}"
# Text the sentences above do not exercise: accents, CJK, control and odd whitespace, ASCII symbols, long words.
tricky=("Héllo, Wörld! naïve CAFÉ — “quotes”, don't stop" "unbelievably supercalifragilisticexpialidocious"
        "中文字符 and 日本語のテキスト" $'tabs\tand\nnewlines\r  double  spaces\u00a0nbsp'
        "\$5.00 + 3^2 = 14 {braces} [brackets] \`tick\` ~tilde_ <a|b> @#%&*" "Ångström Straße ﬁne résumé Ελληνικά")
"$bin/sentence-similarity" --tokenize "$vocab" "${tricky[@]}" > "$out/tokens.txt"
$check check-tokens "$tokenizer" "$out/tokens.txt" "${tricky[@]}"

echo "== detect-text (PP-OCRv4 detector)"
lines=("FlashMem streams weights" "into Vulkan images" "under one memory budget")
$check render-page "$out/page.ppm" 480 192 "${lines[@]}"
compile "$corpus/ppocrv4_det.onnx" -o "$out/det.fmb" --input-shape x=1,3,192,480 --target lavapipe
"$bin/detect-text" "$out/det.fmb" "$out/page.ppm" "$out/boxes.ppm" | tee "$out/detect.txt"
$check check-detect "$corpus/ppocrv4_det.onnx" "$out/page.ppm" "$out/boxes.ppm" "$out/detect.txt" ${#lines[@]}

echo "== read-text (PP-OCRv4 detector → direction classifier → PP-OCRv4 recognizer, one budget)"
start=$SECONDS
# The detector bundle above (same page size); the classifier and recognizer at PaddleOCR's input sizes; keys.txt is
# the recognizer's dictionary, written from its ONNX metadata (the app reads no ONNX).
files=$($check ocr-files "$out")
{ read -r cls_onnx; read -r rec_onnx; read -r keys; } <<< "$files"
compile "$cls_onnx" -o "$out/cls.fmb" --input-shape x=1,3,48,192 --target lavapipe
compile "$rec_onnx" -o "$out/rec.fmb" --input-shape x=1,3,48,320 --target lavapipe
read_lines=("Three models, one budget" "read this line upside down" "PP-OCRv4 on Vulkan: 48x320")
$check render-page "$out/read-page.ppm" 480 192 --upside-down 1 "${read_lines[@]}"
# 32 MiB holds the classifier beside either of the others (about 21 MiB each) but not all three: the recognizer
# takes the detector's memory back.
"$bin/read-text" "$out/det.fmb" "$out/cls.fmb" "$out/rec.fmb" "$keys" "$out/read-page.ppm" "$out/read-boxes.ppm" \
    --memory-budget 32MiB --dump "$out/read" | tee "$out/read.txt"
$check check-read-text "$corpus/ppocrv4_det.onnx" "$cls_onnx" "$rec_onnx" "$out/read-page.ppm" "$out/read-boxes.ppm" \
    "$out/read.txt" "$out/read" 1 "${read_lines[@]}"
echo "read-text section: $((SECONDS - start)) s"
