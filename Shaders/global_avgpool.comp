#version 450
// global_avgpool.comp — Y[n, c] = mean over H·W of X[n, c, :, :] (ONNX GlobalAveragePool).
// Lowering: Lowering+Pool.swift.
//
// One workgroup per (n, c) row of HW contiguous floats: each invocation sums a strided slice, then a
// shared-memory tree reduction:
//
//   X[nc, :]  │ l0 l1 … lWG-1 │ l0 l1 … lWG-1 │ …   ──► partial[l] ──► tree ──► Y[nc] = Σ / HW
//
// groups = Lowering.groups1D(NC, 1) (x, y grid of workgroups).
// Spec constants: 0 = WG (a power of two ≤ 1024).
// Bindings: 0 = X, 1 = Y.

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { float X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { float Y[]; };

layout(push_constant) uniform PushConstants {
    uint NC, HW;
} pc;

shared float partial[gl_WorkGroupSize.x];

void main() {
    const uint row = flatWorkGroup();
    if (row >= pc.NC) {
        return;  // uniform across the workgroup: no barrier is skipped by part of it
    }
    const uint lx = gl_LocalInvocationID.x;
    const uint base = row * pc.HW;
    float s = 0.0;
    for (uint i = lx; i < pc.HW; i += gl_WorkGroupSize.x) {
        s += X[base + i];
    }
    partial[lx] = s;
    barrier();
    for (uint half_ = gl_WorkGroupSize.x / 2u; half_ > 0u; half_ >>= 1u) {
        if (lx < half_) {
            partial[lx] += partial[lx + half_];
        }
        barrier();
    }
    if (lx == 0u) {
        Y[row] = partial[0] / float(pc.HW);
    }
}
