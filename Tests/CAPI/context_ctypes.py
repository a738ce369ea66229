"""The C API's contexts (fm_context_create, fm_session_create_in_context, fm_context_memory) through ctypes:
two sessions of the CNN fixture under an unlimited budget and under a budget with room for one of them, runs
matching onnxruntime's reference, the peak within the budget, and a budget too small for one session failing
with FM_ERROR_OUT_OF_MEMORY naming the bytes it needs.

    python3 Tests/CAPI/context_ctypes.py .build/release/libflashmem.so .build/release/fmc
"""
import ctypes as C
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "Examples", "c-api"))
from flashmem_ctypes import FM_FLOAT32, FM_OK, check, load  # noqa: E402

FM_ERROR_OUT_OF_MEMORY = 4
MODELS = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "models")


def main(lib_path, fmc):
    lib = load(lib_path)
    p, u64 = C.c_void_p, C.c_uint64
    for name, restype, argtypes in [
        ("fm_context_create", C.c_int, [p, u64, C.POINTER(p)]),
        ("fm_context_destroy", None, [p]),
        ("fm_context_memory", C.c_int, [p, C.POINTER(u64), C.POINTER(u64)]),
        ("fm_session_create_in_context", C.c_int, [p, p, C.c_int, C.POINTER(p)]),
    ]:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes

    with tempfile.TemporaryDirectory() as out:
        bundle_path = os.path.join(out, "cnn.fmb")
        subprocess.run([fmc, "compile", os.path.join(MODELS, "cnn.onnx"), "-o", bundle_path], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        x = np.load(os.path.join(MODELS, "cnn.input.npy")).astype("<f4")
        reference = np.load(os.path.join(MODELS, "cnn.ref.npy")).astype("<f4").ravel()

        bundle, device = p(), p()
        check(lib, lib.fm_bundle_open(bundle_path.encode(), C.byref(bundle)), "fm_bundle_open")
        check(lib, lib.fm_device_create(-1, C.byref(device)), "fm_device_create")
        shape = (C.c_int64 * x.ndim)(*x.shape)

        def run(session):
            check(lib, lib.fm_session_set_input(session, b"x", FM_FLOAT32, shape, x.ndim, x.ctypes.data, x.nbytes),
                  "fm_session_set_input")
            check(lib, lib.fm_session_run(session), "fm_session_run")
            data, nbytes = p(), C.c_size_t()
            check(lib, lib.fm_session_output(session, 0, C.byref(data), C.byref(nbytes), None, None), "fm_session_output")
            y = np.frombuffer((C.c_float * (nbytes.value // 4)).from_address(data.value), dtype="<f4").copy()
            error = np.linalg.norm(y - reference) / np.linalg.norm(reference)
            assert error <= 1e-4, f"output differs from the reference: {error:.2e}"

        def memory(context):
            used, peak = u64(), u64()
            check(lib, lib.fm_context_memory(context, C.byref(used), C.byref(peak)), "fm_context_memory")
            return used.value, peak.value

        # No budget: both sessions keep their memory after their runs.
        context = p()
        check(lib, lib.fm_context_create(device, 0, C.byref(context)), "fm_context_create")
        sessions = [p(), p()]
        for s in sessions:
            check(lib, lib.fm_session_create_in_context(bundle, context, 0, C.byref(s)), "fm_session_create_in_context")
        for s in sessions:
            run(s)
        used, peak = memory(context)
        assert used == peak and used > 0 and used % 2 == 0, (used, peak)
        footprint = used // 2
        for s in sessions:
            lib.fm_session_destroy(s)
        assert memory(context)[0] == 0, "destroyed sessions give their memory back"
        lib.fm_context_destroy(context)
        print(f"no budget: both sessions resident, {used} bytes")

        # Room for one: they take turns, the peak stays within the budget.
        check(lib, lib.fm_context_create(device, footprint, C.byref(context)), "fm_context_create")
        for s in sessions:
            check(lib, lib.fm_session_create_in_context(bundle, context, 0, C.byref(s)), "fm_session_create_in_context")
        for _ in range(2):
            for s in sessions:
                run(s)
        used, peak = memory(context)
        assert peak <= footprint and used == footprint, (used, peak, footprint)
        for s in sessions:
            lib.fm_session_destroy(s)
        lib.fm_context_destroy(context)
        print(f"budget {footprint}: 2 sessions x 2 runs match the reference, peak {peak}")

        # Too small for one session.
        check(lib, lib.fm_context_create(device, footprint - 1, C.byref(context)), "fm_context_create")
        s = p()
        status = lib.fm_session_create_in_context(bundle, context, 0, C.byref(s))
        message = lib.fm_last_error().decode()
        assert status == FM_ERROR_OUT_OF_MEMORY and f"needs {footprint} bytes" in message and not s.value, (status, message)
        lib.fm_context_destroy(context)
        print(f"budget {footprint - 1}: FM_ERROR_OUT_OF_MEMORY: {message.splitlines()[0]}")
        lib.fm_device_destroy(device)
        lib.fm_bundle_close(bundle)
    print("C API contexts passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
