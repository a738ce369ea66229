#!/usr/bin/env bash
# The C API examples, as a test: compile the CNN fixture with fmc, build classify.c against flashmem.h
# and libflashmem.so, run it and the ctypes example (streaming and preloaded), each checking its output
# against onnxruntime's reference (relative error <= 1e-4), then check the error codes of a few misuses.
#
#     swift build -c release --product fmc && swift build -c release --product flashmem
#     bash Examples/c-api/run-examples.sh .build/release
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-.build/release}
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
cc=${CC:-gcc}
models=Tests/Fixtures/models
lib="$bin/libflashmem.so"
for f in "$bin/fmc" "$lib"; do
    [ -e "$f" ] || { echo "run-examples.sh: $f is missing; build the fmc and flashmem products first" >&2; exit 1; }
done
out=$(mktemp -d -t flashmem-capi-XXXXXX)
trap 'rm -rf "$out"' EXIT

echo "== fmc compile $models/cnn.onnx"
"$bin/fmc" compile "$models/cnn.onnx" -o "$out/cnn.fmb" > "$out/fmc.log"

# Raw float32 copies of the fixture's .npy input and reference, which the examples read.
"$python" - "$models" "$out" <<'PY'
import sys
import numpy as np
models, out = sys.argv[1], sys.argv[2]
for name, dst in (("cnn.input.npy", "input.bin"), ("cnn.ref.npy", "ref.bin")):
    np.load(f"{models}/{name}").astype("<f4").tofile(f"{out}/{dst}")
print("top class", int(np.argmax(np.load(f"{models}/cnn.ref.npy"))), file=open(f"{out}/expected.txt", "w"))
PY

echo "== $cc classify.c"
"$cc" -std=c11 -Wall -Wextra -Werror -IRuntime/FlashMemC/include Examples/c-api/classify.c \
    -o "$out/classify" -L"$bin" -lflashmem -Wl,-rpath,"$(cd "$bin" && pwd)" -lm

expected=$(cat "$out/expected.txt")
for mode in streaming preload; do
    flag=""
    [ "$mode" = preload ] && flag="--preload"
    echo "== classify ($mode)"
    "$out/classify" "$out/cnn.fmb" "$out/input.bin" "$out/ref.bin" $flag | tee "$out/c.$mode.txt"
    echo "== flashmem_ctypes.py ($mode)"
    "$python" Examples/c-api/flashmem_ctypes.py "$lib" "$out/cnn.fmb" "$out/input.bin" "$out/ref.bin" $flag \
        | tee "$out/py.$mode.txt"
    for f in "$out/c.$mode.txt" "$out/py.$mode.txt"; do
        grep -q "^$expected " "$f" || { echo "run-examples.sh: $f does not say '$expected'" >&2; exit 1; }
    done
done

echo "== error codes"
"$python" - "$lib" "$out/cnn.fmb" <<'PY'
import ctypes as C, sys
sys.path.insert(0, "Examples/c-api")
from flashmem_ctypes import load
lib = load(sys.argv[1])
OK, INVALID, BUNDLE, MISMATCH = 0, 1, 2, 5
def expect(status, want, what):
    name = lib.fm_status_string(status).decode()
    assert status == want, f"{what}: got {name}, want {lib.fm_status_string(want).decode()}"
    print(f"  {what}: {name}: {lib.fm_last_error().decode().splitlines()[0] if status else ''}")
b, d, s = C.c_void_p(), C.c_void_p(), C.c_void_p()
expect(lib.fm_bundle_open(b"/nonexistent.fmb", C.byref(b)), BUNDLE, "missing file")
assert b"/nonexistent.fmb" in lib.fm_last_error()
expect(lib.fm_bundle_open(b"Tests/Fixtures/models/cnn.onnx", C.byref(b)), BUNDLE, "not a bundle")
expect(lib.fm_bundle_open(None, C.byref(b)), INVALID, "NULL path")
expect(lib.fm_bundle_open(sys.argv[2].encode(), C.byref(b)), OK, "open")
assert lib.fm_bundle_input_name(b, 5) is None and lib.fm_bundle_input_count(None) == -1
expect(lib.fm_device_create(99, C.byref(d)), 3, "device index out of range")
expect(lib.fm_device_create(-1, C.byref(d)), OK, "device")
expect(lib.fm_session_create(b, d, 0, C.byref(s)), OK, "session")
expect(lib.fm_session_run(s), MISMATCH, "run without inputs")
shape = (C.c_int64 * 4)(1, 3, 33, 29)
data = (C.c_float * (3 * 33 * 29))()
expect(lib.fm_session_set_input(s, b"nope", 1, shape, 4, data, C.sizeof(data)), MISMATCH, "unknown input")
expect(lib.fm_session_set_input(s, b"x", 1, shape, 4, data, 12), INVALID, "wrong byte count")
huge = (C.c_int64 * 4)(1 << 40, 1 << 40, 1, 1)
expect(lib.fm_session_set_input(s, b"x", 1, huge, 4, data, 12), INVALID, "overflowing shape")
expect(lib.fm_session_set_input(s, b"x", 7, shape, 4, data, C.sizeof(data)), INVALID, "unknown dtype")
wrong = (C.c_int64 * 4)(1, 3, 29, 33)
expect(lib.fm_session_set_input(s, b"x", 1, wrong, 4, data, C.sizeof(data)), OK, "set transposed shape")
expect(lib.fm_session_run(s), MISMATCH, "run with a wrong shape")
expect(lib.fm_session_output(s, 0, None, None, None, None), INVALID, "output before a successful run")
lib.fm_session_destroy(s); lib.fm_device_destroy(d); lib.fm_bundle_close(b)
PY

echo "== threads: 4 sessions on one device, each run 10 times from its own thread"
"$python" - "$lib" "$out/cnn.fmb" "$out/input.bin" "$out/ref.bin" <<'PY'
import array, ctypes as C, sys, threading
sys.path.insert(0, "Examples/c-api")
from flashmem_ctypes import load
lib = load(sys.argv[1])
def floats(path):
    a = array.array("f"); a.frombytes(open(path, "rb").read()); return a
image, ref = floats(sys.argv[3]), floats(sys.argv[4])
b, d = C.c_void_p(), C.c_void_p()
assert lib.fm_bundle_open(sys.argv[2].encode(), C.byref(b)) == 0 and lib.fm_device_create(-1, C.byref(d)) == 0
shape = C.POINTER(C.c_int64)(); rank = lib.fm_bundle_input_shape(b, 0, C.byref(shape))
data = (C.c_float * len(image)).from_buffer(image)
failures = []
def worker(k):
    s = C.c_void_p()
    if lib.fm_session_create(b, d, k % 2, C.byref(s)) != 0: failures.append(lib.fm_last_error()); return
    for _ in range(10):
        ptr, n = C.c_void_p(), C.c_size_t()
        if lib.fm_session_set_input(s, b"x", 1, shape, rank, C.cast(data, C.c_void_p), len(image) * 4) \
                or lib.fm_session_run(s) or lib.fm_session_output(s, 0, C.byref(ptr), C.byref(n), None, None):
            failures.append(lib.fm_last_error()); break
        got = list((C.c_float * (n.value // 4)).from_address(ptr.value))
        if max(abs(g - r) for g, r in zip(got, ref)) > 1e-4 * max(abs(r) for r in ref): failures.append(f"thread {k}: wrong output")
    lib.fm_session_destroy(s)
threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
lib.fm_device_destroy(d); lib.fm_bundle_close(b)
assert not failures, failures
print("  40 runs, all match the reference")
PY
echo "C API examples passed"
