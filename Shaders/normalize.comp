#version 450
// normalize.comp — Y = (X − mean) / √(var + ε) · scale + bias per row: ONNX LayerNormalization,
// GroupNormalization and InstanceNormalization. Lowering: Lowering+Normalization.swift.
//
// The tensor is `rows` contiguous rows of `len` elements; the three ops differ only in what a row is and which
// scale / bias entry element j of row r takes, p = ((r mod paramRowMod) · len + j) / paramDiv:
//
//   op                    row                    paramRowMod   paramDiv         p
//   LayerNormalization    X[..axis), X[axis..)   1             1                j
//   InstanceNormalization (n, c), spatial        C             spatial          c
//   GroupNormalization    (n, g), C/G · spatial  G             spatial          channel (opset 21: scale [C])
//                                                G             C/G · spatial    group   (opset 18: scale [G])
//
// One workgroup per row, three passes over it with shared-memory reductions (two-pass variance, which stays
// accurate when |mean| ≫ σ, unlike E[x²] − E[x]²):
//
//   pass 1: mean = Σ x / len     pass 2: var = Σ (x − mean)² / len     pass 3: y = (x − mean) · rstd · scale[p] + bias[p]
//
// groups = Lowering.groups1D(rows, 1).
// Spec constants: 0 = WG (a power of two ≤ 1024), 1 = HAS_BIAS, 2 = WRITE_STATS.
// Defines: NORM_HALF_OUT (1: Y as rows of halves for gemm_cm.comp's CM_HALF_A, see below).
// Bindings: 0 = X, 1 = scale, 2 = bias (scale again when HAS_BIAS = 0; never read), 3 = Y,
//           4 = Mean [rows], 5 = InvStdDev [rows] (LayerNormalization's optional outputs; Y again when
//           WRITE_STATS = 0, never written).

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint HAS_BIAS = 1u;
layout(constant_id = 2) const uint WRITE_STATS = 0u;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { float X[]; };
layout(std430, set = 0, binding = 1) readonly buffer ScaleBuffer { float scale[]; };
layout(std430, set = 0, binding = 2) readonly buffer BiasBuffer { float bias[]; };
#ifndef NORM_HALF_OUT
#define NORM_HALF_OUT 0
#endif
#if NORM_HALF_OUT
// Y as rows of ceil(len / 8) · 8 halves, zero past len: to_half.comp's output, written here instead of fp32 rows
// that only a to_half step would read (the lowering's fuseHalfOutputs).
layout(std430, set = 0, binding = 3) writeonly buffer OutputBuffer { uint Yh[]; };
#else
layout(std430, set = 0, binding = 3) writeonly buffer OutputBuffer { float Y[]; };
#endif
layout(std430, set = 0, binding = 4) writeonly buffer MeanBuffer { float meanOut[]; };
layout(std430, set = 0, binding = 5) writeonly buffer InvStdDevBuffer { float invStdDevOut[]; };

layout(push_constant) uniform PushConstants {
    uint rows, len, paramRowMod, paramDiv;
    float epsilon;
} pc;

shared float scratch[gl_WorkGroupSize.x];

// Tree sum over the workgroup; every invocation gets the result.
float sumGroup(float v) {
    const uint lx = gl_LocalInvocationID.x;
    scratch[lx] = v;
    barrier();
    for (uint half_ = gl_WorkGroupSize.x / 2u; half_ > 0u; half_ >>= 1u) {
        if (lx < half_) {
            scratch[lx] += scratch[lx + half_];
        }
        barrier();
    }
    float r = scratch[0];
    barrier();  // scratch is reused by the next reduction
    return r;
}

// Element j of the row at `base`: (x − mean) · rstd · scale[p] + bias[p]. One expression for both outputs, so the
// halves are exactly the fp32 values rounded.
float normalized(uint base, uint j, uint paramBase, float mean, float rstd) {
    const uint p = (paramBase + j) / pc.paramDiv;
    const float y = (X[base + j] - mean) * rstd * scale[p];
    return HAS_BIAS != 0u ? y + bias[p] : y;
}

void main() {
    const uint row = flatWorkGroup();
    if (row >= pc.rows) {
        return;  // uniform across the workgroup
    }
    const uint lx = gl_LocalInvocationID.x;
    const uint base = row * pc.len;
    const float n = float(pc.len);

    float s = 0.0;
    for (uint j = lx; j < pc.len; j += gl_WorkGroupSize.x) {
        s += X[base + j];
    }
    const float mean = sumGroup(s) / n;

    float q = 0.0;
    for (uint j = lx; j < pc.len; j += gl_WorkGroupSize.x) {
        const float d = X[base + j] - mean;
        q += d * d;
    }
    const float rstd = 1.0 / sqrt(sumGroup(q) / n + pc.epsilon);

    const uint paramBase = (row % pc.paramRowMod) * pc.len;
#if NORM_HALF_OUT
    const uint words = (pc.len + 7u) / 8u * 4u;  // pairs of halves per row of Yh
    for (uint w = lx; w < words; w += gl_WorkGroupSize.x) {
        vec2 pair = vec2(0.0);
        for (uint h = 0u; h < 2u; ++h) {
            const uint j = 2u * w + h;
            if (j < pc.len) {
                pair[h] = normalized(base, j, paramBase, mean, rstd);
            }
        }
        Yh[row * words + w] = packHalf2x16(pair);
    }
#else
    for (uint j = lx; j < pc.len; j += gl_WorkGroupSize.x) {
        Y[base + j] = normalized(base, j, paramBase, mean, rstd);
    }
#endif
    if (WRITE_STATS != 0u && lx == 0u) {
        meanOut[row] = mean;
        invStdDevOut[row] = rstd;
    }
}
