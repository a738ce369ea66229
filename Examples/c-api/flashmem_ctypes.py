#!/usr/bin/env python3
"""The FlashMem C API from Python through ctypes (no numpy needed): the same run and check as classify.c.

    flashmem_ctypes.py path/to/libflashmem.so model.fmb input.bin reference.bin [--preload]

input.bin and reference.bin are raw little-endian float32 arrays. Exits 1 when the relative error
||output - reference|| / ||reference|| exceeds 1e-4.
"""
import array
import ctypes as C
import math
import sys

FM_OK, FM_FLOAT32 = 0, 1


class FlashMemError(RuntimeError):
    pass


def load(path):
    """libflashmem with the prototypes of flashmem.h that this example uses."""
    lib = C.CDLL(path)
    p, i, i64p = C.c_void_p, C.c_int, C.POINTER(C.c_int64)
    protos = {
        "fm_last_error": (C.c_char_p, []),
        "fm_status_string": (C.c_char_p, [i]),
        "fm_bundle_open": (i, [C.c_char_p, C.POINTER(p)]),
        "fm_bundle_close": (None, [p]),
        "fm_bundle_input_count": (i, [p]),
        "fm_bundle_output_count": (i, [p]),
        "fm_bundle_input_name": (C.c_char_p, [p, i]),
        "fm_bundle_input_dtype": (i, [p, i]),
        "fm_bundle_input_shape": (i, [p, i, C.POINTER(i64p)]),
        "fm_device_create": (i, [i, C.POINTER(p)]),
        "fm_device_destroy": (None, [p]),
        "fm_session_create": (i, [p, p, i, C.POINTER(p)]),
        "fm_session_destroy": (None, [p]),
        "fm_session_set_input": (i, [p, C.c_char_p, i, i64p, i, p, C.c_size_t]),
        "fm_session_run": (i, [p]),
        "fm_session_output": (i, [p, i, C.POINTER(p), C.POINTER(C.c_size_t), C.POINTER(i64p), C.POINTER(i)]),
    }
    for name, (restype, argtypes) in protos.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def check(lib, status, what):
    if status != FM_OK:
        raise FlashMemError(f"{what}: {lib.fm_status_string(status).decode()}\n{lib.fm_last_error().decode()}")


def read_floats(path):
    values = array.array("f")
    with open(path, "rb") as f:
        values.frombytes(f.read())
    return values


def main(argv):
    if len(argv) not in (5, 6) or (len(argv) == 6 and argv[5] != "--preload"):
        print(__doc__, file=sys.stderr)
        return 2
    lib = load(argv[1])
    preload = len(argv) == 6

    bundle, device, session = C.c_void_p(), C.c_void_p(), C.c_void_p()
    check(lib, lib.fm_bundle_open(argv[2].encode(), C.byref(bundle)), "fm_bundle_open")
    try:
        if (lib.fm_bundle_input_count(bundle), lib.fm_bundle_output_count(bundle)) != (1, 1) \
                or lib.fm_bundle_input_dtype(bundle, 0) != FM_FLOAT32:
            raise FlashMemError(f"{argv[2]} is not a classifier with one float32 input and one output")
        name = lib.fm_bundle_input_name(bundle, 0)
        shape = C.POINTER(C.c_int64)()
        rank = lib.fm_bundle_input_shape(bundle, 0, C.byref(shape))

        check(lib, lib.fm_device_create(-1, C.byref(device)), "fm_device_create")
        check(lib, lib.fm_session_create(bundle, device, int(preload), C.byref(session)), "fm_session_create")

        image = read_floats(argv[3])
        buffer = (C.c_float * len(image)).from_buffer(image)
        check(lib, lib.fm_session_set_input(session, name, FM_FLOAT32, shape, rank, C.cast(buffer, C.c_void_p),
                                            len(image) * 4), "fm_session_set_input")
        check(lib, lib.fm_session_run(session), "fm_session_run")

        data, nbytes = C.c_void_p(), C.c_size_t()
        out_shape, out_rank = C.POINTER(C.c_int64)(), C.c_int()
        check(lib, lib.fm_session_output(session, 0, C.byref(data), C.byref(nbytes), C.byref(out_shape),
                                         C.byref(out_rank)), "fm_session_output")
        # Copy out: the pointer is valid only until the next run or destroy.
        scores = list((C.c_float * (nbytes.value // 4)).from_address(data.value))
        dims = [out_shape[d] for d in range(out_rank.value)]
    finally:
        lib.fm_session_destroy(session)
        lib.fm_device_destroy(device)
        lib.fm_bundle_close(bundle)

    reference = read_floats(argv[4])
    if len(reference) != len(scores):
        raise FlashMemError(f"output has {len(scores)} elements, reference {len(reference)}")
    top = max(range(len(scores)), key=scores.__getitem__)
    error = math.sqrt(sum((s - r) ** 2 for s, r in zip(scores, reference))) / math.sqrt(sum(r * r for r in reference))
    print(f"output {dims} ({'preload' if preload else 'streaming'})")
    print(f"top class {top} score {scores[top]:.5f}")
    print(f"rel error vs reference {error:.2e}")
    if not error <= 1e-4:
        print("flashmem_ctypes: output does not match the reference", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except FlashMemError as error:
        print(f"flashmem_ctypes: {error}", file=sys.stderr)
        sys.exit(1)
