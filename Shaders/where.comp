#version 450
// where.comp — ONNX Where: Y = C ? X : Z with numpy broadcasting of all three operands.
// Lowering: Lowering+Elementwise.swift.
//
// Indexing as binary.comp (the lowering coalesces the three operands' strides the same way):
//
//   out index i ──► coordinates (c0 … c[rank-1]) of `shape` (innermost last)
//               ──► c = Σ c_d · cStride[d],  x = Σ c_d · xStride[d],  z = Σ c_d · zStride[d]
//
// C is a bool tensor (int32 0 / 1 in the arena). X, Z and Y have one dtype, so the kernel moves raw 32-bit
// words and serves float and int tensors alike.
//
// One invocation per output element; groups = Lowering.groups1D(count, WG) (x, y grid).
//
// Spec constants: 0 = WG.
// Bindings: 0 = C, 1 = X, 2 = Z, 3 = Y.

layout(local_size_x_id = 0) in;
#include "common.glsl"

#define MAX_RANK 6

layout(std430, set = 0, binding = 0) readonly buffer ConditionBuffer { int C[]; };
layout(std430, set = 0, binding = 1) readonly buffer XBuffer { uint X[]; };
layout(std430, set = 0, binding = 2) readonly buffer ZBuffer { uint Z[]; };
layout(std430, set = 0, binding = 3) writeonly buffer OutputBuffer { uint Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint rank;                 // ≤ MAX_RANK
    uint shape[MAX_RANK];      // output dims, innermost at rank-1
    uint cStride[MAX_RANK];    // element strides (0 where broadcast)
    uint xStride[MAX_RANK];
    uint zStride[MAX_RANK];
} pc;                          // 104 bytes

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    uint rest = i;
    uint c = 0;
    uint x = 0;
    uint z = 0;
    for (int d = int(pc.rank) - 1; d >= 0; --d) {
        uint extent = pc.shape[d];
        uint q = rest / extent;
        uint k = rest - q * extent;
        rest = q;
        c += k * pc.cStride[d];
        x += k * pc.xStride[d];
        z += k * pc.zStride[d];
    }
    Y[i] = C[c] != 0 ? X[x] : Z[z];
}
