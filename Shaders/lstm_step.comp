#version 450
// lstm_step.comp — one time step of an ONNX LSTM, every direction and batch row at once. The input projection
// X·Wᵀ + Wb + Rb of all time steps is one gemm before the first step (G below); this kernel adds the
// recurrent product H_{t-1}·Rᵀ, the peepholes, and applies the gates. Lowering: Lowering+Recurrent.swift.
//
//   i = σ(G_i + H_{t-1}·R_iᵀ + P_i ⊙ C_{t-1})        (each pre-activation clipped to ±clip when clip > 0)
//   f = σ(G_f + H_{t-1}·R_fᵀ + P_f ⊙ C_{t-1})        (f = 1 − i with input_forget)
//   c = tanh(G_c + H_{t-1}·R_cᵀ)
//   C_t = f ⊙ C_{t-1} + i ⊙ c
//   o = σ(G_o + H_{t-1}·R_oᵀ + P_o ⊙ C_t)
//   H_t = o ⊙ tanh(C_t)
//
// Weight image (WEIGHT_FORMAT), in the order this kernel reads it — one texel per (direction d, k, unit j),
// the four gates of unit j in ONNX order as lanes:
//
//   texel index           holds
//   ───────────────────── ──────────────────────────────────────────────────────
//   (d · H + k) · H + j   (R_i[j, k], R_o[j, k], R_f[j, k], R_c[j, k]) of direction d
//
// so the invocations of a workgroup (consecutive j) read consecutive texels at every k.
//
// Work split — invocation (gx·WG + lx, row) owns hidden unit j = gx·WG + lx of direction d = row / batch and
// batch row b = row % batch; groups = (ceil(H / WG), dirs · batch, 1). The workgroup stages H_{t-1}[d, b, :]
// in shared memory WG values at a time.
//
// State lives in the outputs: H_{t-1} is read back from Y at the previous time step (or from H0 on the
// direction's first step), C is updated in place in YC (read from C0 on the first step); only the invocation
// owning (d, b, j) touches YC[d, b, j], so no step races with itself. YH is written on the last valid step.
// A reverse direction (bit d of reverseMask) runs t = seq − 1 − step. Batch row b covers t < lens[b]
// (sequence_lens, clamped to [0, seq]): later steps write zeros into Y and leave the state alone; a row of
// length 0 gets zero YH and YC.
//
// Spec constants: 0 = WG.
// Bindings: 0 = G [rows][dirs·4H] (the input projection, row t·gRowT + b·gRowB), 1 = weights (R),
//           2 = P [dirs][3H] (i, o, f peepholes), 3 = lens [batch] (int32), 4 = H0, 5 = C0, 6 = Y, 7 = YH,
//           8 = YC. H0 / C0 / YH / YC are indexed d·sD + b·sB + j, Y is indexed t·yT + d·yD + b·yB + j.

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(std430, set = 0, binding = 0) readonly buffer GatesBuffer { float G[]; };
layout(set = 0, binding = 1, WEIGHT_FORMAT) readonly uniform image2DArray weights;
layout(std430, set = 0, binding = 2) readonly buffer PeepholeBuffer { float P[]; };
layout(std430, set = 0, binding = 3) readonly buffer LengthBuffer { int lens[]; };
layout(std430, set = 0, binding = 4) readonly buffer H0Buffer { float H0[]; };
layout(std430, set = 0, binding = 5) readonly buffer C0Buffer { float C0[]; };
layout(std430, set = 0, binding = 6) buffer YBuffer { float Y[]; };
layout(std430, set = 0, binding = 7) writeonly buffer YHBuffer { float YH[]; };
layout(std430, set = 0, binding = 8) buffer YCBuffer { float YC[]; };

layout(push_constant) uniform PushConstants {
    uint H, batch, seq, step;
    uint gWidth, gRowT, gRowB;  // G row length (dirs · 4H) and row strides per time step / batch row
    uint yT, yD, yB;            // Y strides
    uint sD, sB;                // H0 / C0 / YH / YC strides
    uint reverseMask;           // bit d: direction d runs backwards
    uint inputForget;           // 1: f = 1 − i
    float clip;                 // ≤ 0: no clipping
    uint log2W, log2H;          // weight image extent
} pc;                           // 68 bytes

shared float hPrev[gl_WorkGroupSize.x];

float sigmoid(float x) {
    return 1.0 / (1.0 + exp(-x));
}

// tanhAccurate: common.glsl's, as unary.comp computes tanh.
float clipped(float x) {
    return pc.clip > 0.0 ? clamp(x, -pc.clip, pc.clip) : x;
}

void main() {
    const uint j = gl_GlobalInvocationID.x;
    const uint lane = gl_LocalInvocationID.x;
    const uint d = gl_WorkGroupID.y / pc.batch;
    const uint b = gl_WorkGroupID.y % pc.batch;
    const bool reverse = ((pc.reverseMask >> d) & 1u) != 0u;
    const uint t = reverse ? pc.seq - 1u - pc.step : pc.step;
    const uint len = uint(clamp(lens[b], 0, int(pc.seq)));
    const uint state = d * pc.sD + b * pc.sB;
    // Uniform over the workgroup, so the barriers below are reached by all or none.
    if (t >= len) {
        if (j < pc.H) {
            Y[t * pc.yT + d * pc.yD + b * pc.yB + j] = 0.0;
            if (len == 0u && pc.step == 0u) {
                YH[state + j] = 0.0;
                YC[state + j] = 0.0;
            }
        }
        return;
    }
    const bool first = reverse ? t + 1u == len : t == 0u;
    const uint previous = reverse ? t + 1u : t - 1u;
    const uint hBase = first ? state : previous * pc.yT + d * pc.yD + b * pc.yB;

    // Recurrent product: acc = (H_{t-1}·R_iᵀ, ·R_oᵀ, ·R_fᵀ, ·R_cᵀ) for unit j.
    vec4 acc = vec4(0.0);
    const uint jRead = min(j, pc.H - 1u);
    for (uint k0 = 0u; k0 < pc.H; k0 += gl_WorkGroupSize.x) {
        uint k = k0 + lane;
        hPrev[lane] = k < pc.H ? (first ? H0[hBase + k] : Y[hBase + k]) : 0.0;
        barrier();
        uint kEnd = min(gl_WorkGroupSize.x, pc.H - k0);
        uint texel = (d * pc.H + k0) * pc.H + jRead;
        for (uint kk = 0u; kk < kEnd; ++kk, texel += pc.H) {
            acc += hPrev[kk] * WEIGHT_AT(weights, texel, pc.log2W, pc.log2H);
        }
        barrier();
    }
    if (j >= pc.H) {
        return;
    }

    const uint g = (t * pc.gRowT + b * pc.gRowB) * pc.gWidth + d * 4u * pc.H + j;
    const uint p = d * 3u * pc.H + j;
    const float cPrev = first ? C0[state + j] : YC[state + j];
    float i = sigmoid(clipped(G[g] + acc.x + P[p] * cPrev));
    float f = pc.inputForget != 0u ? 1.0 - i : sigmoid(clipped(G[g + 2u * pc.H] + acc.z + P[p + 2u * pc.H] * cPrev));
    float c = tanhAccurate(clipped(G[g + 3u * pc.H] + acc.w));
    float cell = f * cPrev + i * c;
    float o = sigmoid(clipped(G[g + pc.H] + acc.y + P[p + pc.H] * cell));
    float h = o * tanhAccurate(cell);

    Y[t * pc.yT + d * pc.yD + b * pc.yB + j] = h;
    YC[state + j] = cell;
    if (reverse ? t == 0u : t + 1u == len) {
        YH[state + j] = h;
    }
}
