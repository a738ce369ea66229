#version 450
// binary.comp — element-wise Y = act(A op B) with numpy broadcasting (ONNX Add, Sub, Mul, Div).
// Lowering: Lowering+Elementwise.swift.
//
// The lowering right-aligns both operands to the output's rank, gives a broadcast dim stride 0, then
// drops size-1 dims and merges neighbouring dims that are contiguous in both operands, so the common
// cases (same shape; per-channel bias; scalar) reach this kernel with rank 1 or 2:
//
//   out index i ──► coordinates (c0 … c[rank-1]) of `shape` (innermost last)
//               ──► a = Σ c_d · aStride[d],  b = Σ c_d · bStride[d]
//
// One invocation per output element; groups = Lowering.groups1D(count, WG) (x, y grid).
//
// Spec constants: 0 = WG, 1 = OP (0 add, 1 sub, 2 mul, 3 div), 2 = ACTIVATION.
// Bindings: 0 = A, 1 = B, 2 = Y.

layout(local_size_x_id = 0) in;
#include "common.glsl"

#define MAX_RANK 6

layout(constant_id = 1) const uint OP = 0;
layout(constant_id = 2) const uint ACTIVATION = ACT_NONE;

layout(std430, set = 0, binding = 0) readonly buffer ABuffer { float A[]; };
layout(std430, set = 0, binding = 1) readonly buffer BBuffer { float B[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint rank;                 // ≤ MAX_RANK
    uint shape[MAX_RANK];      // output dims, innermost at rank-1
    uint aStride[MAX_RANK];    // element strides (0 where broadcast)
    uint bStride[MAX_RANK];
} pc;                          // 80 bytes

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    uint rest = i;
    uint a = 0;
    uint b = 0;
    for (int d = int(pc.rank) - 1; d >= 0; --d) {
        uint extent = pc.shape[d];
        uint q = rest / extent;
        uint c = rest - q * extent;
        rest = q;
        a += c * pc.aStride[d];
        b += c * pc.bStride[d];
    }
    float x = A[a];
    float y = B[b];
    float r;
    if (OP == 0u) {
        r = x + y;
    } else if (OP == 1u) {
        r = x - y;
    } else if (OP == 2u) {
        r = x * y;
    } else {
        r = x / y;
    }
    Y[i] = activate(r, ACTIVATION);
}
