#version 450
// trilu.comp — ONNX Trilu: keeps the upper (UPPER = 1: col - row ≥ k) or lower (col - row ≤ k) triangle of
// each matrix formed by the last two dims and zeroes the rest. Lowering: Lowering+MovementKernels.swift.
//
// Words are raw 32-bit patterns: 0 is zero in both fp32 and int32.
// One invocation per element; groups = Lowering.groups1D(count, WG).
//
// Spec constants: 0 = WG, 1 = UPPER.
// Bindings: 0 = X, 1 = Y.
// Push: count rows cols k (signed).

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint UPPER = 1u;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { uint X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { uint Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint rows;
    uint cols;
    int k;
} pc;

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    int col = int(i % pc.cols);
    int row = int((i / pc.cols) % pc.rows);
    int diagonal = col - row;
    bool keep = UPPER != 0u ? diagonal >= pc.k : diagonal <= pc.k;
    Y[i] = keep ? X[i] : 0u;
}
