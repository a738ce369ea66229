#!/usr/bin/env bash
# Follows the README's "Quick start: your own model" as a new user would, on a model the corpus does not have:
# the fenced blocks between its <!-- quickstart --> and <!-- quickstart-end --> markers run in order, sh blocks
# with bash -e, python blocks saved under the file name of their first line (# NAME.py). ~/.local becomes a
# temporary prefix; the venv's bin comes first on PATH (its `python` has torch and onnxruntime). The install
# block runs in the repository, the others in an empty working folder. Part of `make test` (`make quickstart`).
#
#     bash Tests/QuickStart/run_quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
venv_bin=$(cd "$(dirname "${PYTHON:-.venv/bin/python}")" && pwd)
tmp=$(mktemp -d -t flashmem-quickstart-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/prefix" "$tmp/work" "$tmp/blocks"
: > "$tmp/exports"

# Cut the section into numbered block files: NN.sh or NN.NAME.py.
awk -v dir="$tmp/blocks" '
    /^<!-- quickstart:/ { on = 1; next }
    /^<!-- quickstart-end -->/ { on = 0 }
    on && /^```(sh|python)$/ { n++; lang = substr($0, 4); file = sprintf("%s/%02d.%s", dir, n, lang); inside = 1; next }
    on && inside && /^```$/ { inside = 0; close(file); next }
    on && inside { print > file }
' README.md
blocks=("$tmp"/blocks/*)
[ ${#blocks[@]} -ge 3 ] || { echo "run_quickstart.sh: found ${#blocks[@]} blocks in README.md's quick start, expected >= 3" >&2; exit 1; }

export PATH="$venv_bin:$PATH"
for block in "${blocks[@]}"; do
    sed -i "s|~/.local|$tmp/prefix|g" "$block"
    case "$block" in
        *.python)
            name=$(head -n 1 "$block" | sed -n 's/^# *\([A-Za-z0-9_.-]*\.py\)$/\1/p')
            [ -n "$name" ] || { echo "run_quickstart.sh: a python block does not start with '# NAME.py'" >&2; exit 1; }
            cp "$block" "$tmp/work/$name"
            echo "== saved $name" ;;
        *.sh)
            if grep -q "make install" "$block"; then dir=$repo; else dir=$tmp/work; fi
            echo "== $(basename "$block") in $dir:"; sed 's/^/   | /' "$block"
            # One shell for each block, the exports of earlier blocks carried over.
            cat "$tmp/exports" "$block" > "$tmp/step.sh"
            (cd "$dir" && bash -euo pipefail "$tmp/step.sh")
            grep '^export ' "$block" >> "$tmp/exports" || true ;;
    esac
done
# What the quick start promises: the binaries came from the prefix, the output exists.
[ -x "$tmp/prefix/bin/fmc" ] && [ -x "$tmp/prefix/bin/fmrun" ] || { echo "run_quickstart.sh: fmc/fmrun not installed into the prefix" >&2; exit 1; }
[ -f "$tmp/work/out/probs.npy" ] || { echo "run_quickstart.sh: fmrun wrote no out/probs.npy" >&2; exit 1; }
echo "quick start: OK (installed, exported, compiled, ran, matched onnxruntime)"
