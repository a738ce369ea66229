#version 450
// splitk_reduce.comp — Y[i] = act(Σ_s P[s · count + i]): adds the partial sums of a kernel split over K
// (conv2d_igemm.comp, gemm.comp with slices > 1) and applies the activation they left out. (gemm_tiled.comp and
// gemm_cm.comp finish their own splits: splitk_finish.glsl, the same sum in the same order.)
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
    float sum;
    SUM_SLICES(partial, i, pc.count, pc.slices, sum)
    Y[i] = activate(sum, ACTIVATION);
}
