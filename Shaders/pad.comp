#version 450
// pad.comp — ONNX Pad: Y[c] = X[c - padBegin] where that lies inside X; elsewhere, by MODE, the constant value
// (0), the mirror image without repeating the edge (1, reflect), the edge element (2, edge) or the opposite
// side (3, wrap). Negative pads crop (padBegin < 0 reads further in). Lowering: Lowering+MovementKernels.swift,
// which merges neighbouring unpadded dims so that at most MAX_RANK remain.
//
// Words are copied as raw 32-bit patterns (fp32 or int32 data); the constant is given as its 32-bit pattern in
// the tensor's arena type, or read from V[0] when it is computed at run time (VALUE_FROM_BUFFER).
// One invocation per output element; groups = Lowering.groups1D(count, WG).
//
// Spec constants: 0 = WG, 1 = MODE, 2 = VALUE_FROM_BUFFER.
// Bindings: 0 = X, 1 = V (the constant_value tensor; any buffer when unused), 2 = Y.
// Push: count rank value outShape[6] inShape[6] padBegin[6] (padBegin signed).

layout(local_size_x_id = 0) in;
#include "common.glsl"

#define MAX_RANK 6
#define MODE_CONSTANT 0u
#define MODE_REFLECT 1u
#define MODE_EDGE 2u
#define MODE_WRAP 3u

layout(constant_id = 1) const uint MODE = MODE_CONSTANT;
layout(constant_id = 2) const uint VALUE_FROM_BUFFER = 0u;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { uint X[]; };
layout(std430, set = 0, binding = 1) readonly buffer ValueBuffer { uint V[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { uint Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint rank;
    uint value;
    uint outShape[MAX_RANK];
    uint inShape[MAX_RANK];
    int padBegin[MAX_RANK];
} pc;                          // 84 bytes

// Maps a coordinate outside [0, n) back inside it, by MODE (not MODE_CONSTANT). GLSL leaves % of negative
// operands undefined (NVIDIA and llvmpipe differ), so only non-negative values meet a %.
int fold(int c, int n) {
    if (MODE == MODE_EDGE) {
        return clamp(c, 0, n - 1);
    }
    if (MODE == MODE_WRAP) {
        return c >= 0 ? c % n : (n - 1) - (-c - 1) % n;
    }
    // Reflect: numpy's "reflect" (edge not repeated), also for pads wider than the input: even in c, with
    // period 2(n - 1).
    if (n == 1) {
        return 0;
    }
    int period = 2 * (n - 1);
    int m = abs(c) % period;
    return m < n ? m : period - m;
}

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    uint rest = i;
    uint src = 0u;
    uint run = 1u;
    bool inside = true;
    for (int d = int(pc.rank) - 1; d >= 0; --d) {
        uint extent = pc.outShape[d];
        uint q = rest / extent;
        int c = int(rest - q * extent) - pc.padBegin[d];
        rest = q;
        int n = int(pc.inShape[d]);
        if (c < 0 || c >= n) {
            if (MODE == MODE_CONSTANT) {
                inside = false;
            } else {
                c = fold(c, n);
            }
        }
        src += uint(c) * run;
        run *= uint(n);
    }
    if (inside) {
        Y[i] = X[src];
    } else {
        Y[i] = VALUE_FROM_BUFFER != 0u ? V[0] : pc.value;
    }
}
