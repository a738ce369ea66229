#version 450
// splitk_reduce.comp — Y[i] = act(Σ_s P[s · count + i]): adds the partial sums of a kernel split over K
// (conv2d_igemm.comp, gemm.comp with slices > 1) and applies the activation they left out.
// Lowering: Lowering+Conv.swift, Lowering+MatMul.swift.
//
//   P = │ slice 0: count values │ slice 1 │ … │ slice S-1 │   ──►   Y = │ count values │
//
// One invocation per output element; groups = Lowering.groups1D(count, WG).
// Spec constants: 0 = WG, 1 = ACTIVATION.
// Bindings: 0 = P (partial sums), 1 = Y.

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint ACTIVATION = ACT_NONE;

layout(std430, set = 0, binding = 0) readonly buffer PartialBuffer { float partial[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { float Y[]; };

layout(push_constant) uniform PushConstants {
    uint count, slices;
} pc;

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    // Four independent sums so the loads of consecutive slices are in flight together (a single chain of
    // dependent adds made this latency-bound at 64 slices).
    vec4 s = vec4(0.0);
    uint z = 0;
    for (; z + 4u <= pc.slices; z += 4u) {
        s += vec4(partial[z * pc.count + i], partial[(z + 1u) * pc.count + i],
                  partial[(z + 2u) * pc.count + i], partial[(z + 3u) * pc.count + i]);
    }
    for (; z < pc.slices; ++z) {
        s.x += partial[z * pc.count + i];
    }
    Y[i] = activate((s.x + s.y) + (s.z + s.w), ACTIVATION);
}
