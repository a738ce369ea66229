#version 450
// to_half.comp — H = fp16(A): the rows of an fp32 matrix A[M, K] (element (m, k) at A[m · strideM + k]) as rows
// of K8 = ceil(K / 8) · 8 IEEE halves (round to nearest even, as packHalf2x16), zero past K. gemm_cm.comp with
// CM_HALF_A stages these runs of 8 as they are, instead of converting A in every workgroup that reads it (a
// product of N / BN column tiles converts each value of A that many times).
// Lowering: Lowering+MatMul.swift (emitGemm).
//
//   A row m: │ a0 … a7 │ a8 … a15 │ … │ … a(K-1) │            H row m: │ uvec4 │ uvec4 │ … │ uvec4 (zero tail) │
//
// One invocation per run of 8 halves (one uvec4 of H); groups = Lowering.groups1D(M · K8 / 8, WG).
// Spec constants: 0 = WG. Bindings: 0 = A, 1 = H. Push: M, K, strideM, runs per row (K8 / 8).

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(std430, set = 0, binding = 0) readonly buffer ABuffer { float A[]; };
layout(std430, set = 0, binding = 1) writeonly buffer HalfBuffer { uvec4 H[]; };

layout(push_constant) uniform PushConstants {
    uint M, K, strideM, runsPerRow;
} pc;

void main() {
    const uint run = flatInvocation();
    if (run >= pc.M * pc.runsPerRow) {
        return;
    }
    const uint m = run / pc.runsPerRow;
    const uint k = 8u * (run % pc.runsPerRow);
    float v[8];
    for (uint j = 0; j < 8u; ++j) {
        v[j] = k + j < pc.K ? A[m * pc.strideM + k + j] : 0.0;
    }
    H[run] = uvec4(packHalf2x16(vec2(v[0], v[1])), packHalf2x16(vec2(v[2], v[3])),
                   packHalf2x16(vec2(v[4], v[5])), packHalf2x16(vec2(v[6], v[7])));
}
