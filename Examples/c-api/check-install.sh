#!/usr/bin/env bash
# `make install` as a user would use it: install into a temporary prefix, then compile the fixture CNN with the
# installed fmc, run it with the installed fmrun, and build and run the C example against the installed header
# and library found through pkg-config (flashmem.pc).
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
prefix=$(mktemp -d -t flashmem-prefix-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
models=Tests/Fixtures/models

echo "== make install PREFIX=$prefix"
make --no-print-directory install PREFIX="$prefix" > "$prefix/install.log"
for f in bin/fmc bin/fmrun lib/libflashmem.so include/flashmem.h lib/pkgconfig/flashmem.pc; do
    [ -e "$prefix/$f" ] || { echo "check-install.sh: $f was not installed" >&2; exit 1; }
done
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
echo "== pkg-config flashmem: $(pkg-config --modversion flashmem): $(pkg-config --cflags --libs flashmem)"

"$prefix/bin/fmc" compile "$models/cnn.onnx" -o "$prefix/cnn.fmb" > /dev/null
"$prefix/bin/fmrun" "$prefix/cnn.fmb" --input "x=$models/cnn.input.npy" --runs 0 --output-dir "$prefix/out" > /dev/null
"$python" - "$models" "$prefix" <<'PY'
import sys
import numpy as np
models, prefix = sys.argv[1], sys.argv[2]
for name, dst in (("cnn.input.npy", "input.bin"), ("cnn.ref.npy", "ref.bin")):
    np.load(f"{models}/{name}").astype("<f4").tofile(f"{prefix}/{dst}")
PY
# shellcheck disable=SC2046
${CC:-gcc} -std=c11 -Wall -Wextra -Werror Examples/c-api/classify.c -o "$prefix/classify" \
    $(pkg-config --cflags --libs flashmem) -lm
"$prefix/classify" "$prefix/cnn.fmb" "$prefix/input.bin" "$prefix/ref.bin"
echo "installed fmc, fmrun and the C API work"
