#version 450
// attention.comp — fused attention Y = softmax(mask(scale · Q × Kᵀ)) × V, the [Lq, Lk] score matrix never written
// to memory: LoweringPasses.fuseAttention turns MatMul(Q, Kᵀ) → Mul/Div by constant scalars → an additive mask
// and/or a Where(constant bool, scores, constant) select, in either order → Softmax over the last axis →
// MatMul(·, V) into one FusedAttention node. Lowering: Lowering+Attention.swift.
//
// Logical operands over two batch dims (b0 outer, b1 inner; the lowering coalesces the products' batch dims):
//   Q [b0, b1, Lq, D], K [b0, b1, Lk, D], V [b0, b1, Lk, Dv], Y [b0, b1, Lq, Dv], each element at
//   b0·s0 + b1·s1 + row·sRow + col·sCol of its buffer (so K given as Kᵀ [.., D, Lk] and transposes are strided
//   reads / writes); the masks [b0, b1, Lq, Lk] with stride 0 along the dims they are broadcast over.
//
// One workgroup of 64 invocations per (block of BR = 16 query rows, batch): groups = (ceil(Lq / 16), b0 · b1).
// Four invocations share a query row; each owns the output columns t, t + 4, … of it. The keys are walked in
// tiles of BC (32, or 16 when ATT_DMAX = 128): the K and V tile go through shared memory, each invocation
// scores BC / 4 keys of its row (their max into PM), writes their e^(s − m') into S once the row's new max m' is
// known, then every invocation of the row folds the tile into its running softmax (online softmax, fp32): m' = max(m, max_j s_j), l' = l·e^(m − m') + Σ_j e^(s_j − m'),
// acc' = acc·e^(m − m') + Σ_j e^(s_j − m')·V_j; at the end Y = acc / l.
//
//   score s = scale · (Q_i · K_j), then (MASK_ORDER 0) + MASK_ADD[i, j] and the select, or (1) the select and
//   + MASK_ADD; the select keeps s where COND[i, j] ≠ 0 (SELECT 1) or = 0 (SELECT 2), else it is `fill`.
//
// Defines: ATT_DMAX (64 or 128: the largest D and Dv; shared tiles are sized by it).
// Spec constants: 0 = HAS_ADD (0/1), 1 = SELECT (0 none, 1 keep where true, 2 keep where false), 2 = MASK_ORDER,
// 3 = HEAD_D, 4 = HEAD_DV (the push constants D and Dv again, as loop bounds the driver can unroll).
// Bindings: 0 = Q, 1 = K, 2 = V, 3 = Y, 4 = MASK_ADD (fp32), 5 = COND (int32; bool in the arena); an absent mask
// binding is given Q.

layout(local_size_x = 64) in;
#include "common.glsl"

#ifndef ATT_DMAX
#define ATT_DMAX 64
#endif
#define BR 16u
#define TPR 4u                       // invocations per query row
#if ATT_DMAX > 64
#define BC 16u
#else
#define BC 32u
#endif
#define DS (ATT_DMAX + 1)            // padded row stride of the shared Q / K / V tiles
#define DPT (ATT_DMAX / 4)           // output columns per invocation

layout(constant_id = 0) const uint HAS_ADD = 0;
layout(constant_id = 1) const uint SELECT = 0;
layout(constant_id = 2) const uint MASK_ORDER = 0;
layout(constant_id = 3) const uint HEAD_D = 64;   // D and Dv (≤ ATT_DMAX): loop bounds known to the driver
layout(constant_id = 4) const uint HEAD_DV = 64;
#define DPT_USED ((HEAD_DV + TPR - 1u) / TPR)

layout(std430, set = 0, binding = 0) readonly buffer QBuffer { float Q[]; };
layout(std430, set = 0, binding = 1) readonly buffer KBuffer { float K[]; };
layout(std430, set = 0, binding = 2) readonly buffer VBuffer { float V[]; };
layout(std430, set = 0, binding = 3) writeonly buffer OutputBuffer { float Y[]; };
layout(std430, set = 0, binding = 4) readonly buffer MaskBuffer { float MASK_ADD[]; };
layout(std430, set = 0, binding = 5) readonly buffer CondBuffer { int COND[]; };

layout(push_constant) uniform PushConstants {
    uint Lq, Lk, D, Dv;
    uint b1Count;                       // inner batch dim size
    uint q0, q1, qRow, qCol;            // element strides: batch 0, batch 1, row, column
    uint k0, k1, kRow, kCol;            // K as [Lk, D]: row = key, column = depth
    uint v0, v1, vRow, vCol;
    uint y0, y1, yRow, yCol;
    uint a0, a1, aRow, aCol;            // MASK_ADD
    uint c0, c1, cRow, cCol;            // COND
    float scale, fill;
} pc;                                   // 124 bytes

shared float Qs[BR * DS];
shared float Ks[BC * DS];
shared float Vs[BC * DS];
shared float S[BR * BC];       // scores' exponentials e^(s − m') of the tile
shared float PM[BR * TPR];     // each invocation's max over its keys of the tile

void main() {
    const uint lx = gl_LocalInvocationID.x;
    const uint r = lx / TPR;             // query row within the block
    const uint t = lx % TPR;
    const uint row = gl_WorkGroupID.x * BR + r;
    const uint batch = gl_WorkGroupID.y;
    const uint b0 = batch / pc.b1Count, b1 = batch - b0 * pc.b1Count;
    const uint qBase = b0 * pc.q0 + b1 * pc.q1;
    const uint kBase = b0 * pc.k0 + b1 * pc.k1;
    const uint vBase = b0 * pc.v0 + b1 * pc.v1;
    const uint aBase = b0 * pc.a0 + b1 * pc.a1 + row * pc.aRow;
    const uint cBase = b0 * pc.c0 + b1 * pc.c1 + row * pc.cRow;
    const float negInf = uintBitsToFloat(0xff800000u);
    const bool rowValid = row < pc.Lq;

    for (uint i = lx; i < BR * HEAD_D; i += gl_WorkGroupSize.x) {
        const uint rr = i / HEAD_D, d = i - rr * HEAD_D;
        const uint qr = gl_WorkGroupID.x * BR + rr;
        Qs[rr * DS + d] = qr < pc.Lq ? Q[qBase + qr * pc.qRow + d * pc.qCol] : 0.0;
    }

    float m = negInf, l = 0.0;
    float acc[DPT];
    for (uint c = 0; c < DPT; ++c) {
        acc[c] = 0.0;
    }

    for (uint j0 = 0; j0 < pc.Lk; j0 += BC) {
        barrier();  // the previous tile's K, V and S are no longer read (and Qs is written, first time)
        for (uint i = lx; i < BC * HEAD_D; i += gl_WorkGroupSize.x) {
            const uint j = i / HEAD_D, d = i - j * HEAD_D;
            Ks[j * DS + d] = j0 + j < pc.Lk ? K[kBase + (j0 + j) * pc.kRow + d * pc.kCol] : 0.0;
        }
        for (uint i = lx; i < BC * HEAD_DV; i += gl_WorkGroupSize.x) {
            const uint j = i / HEAD_DV, d = i - j * HEAD_DV;
            Vs[j * DS + d] = j0 + j < pc.Lk ? V[vBase + (j0 + j) * pc.vRow + d * pc.vCol] : 0.0;
        }
        barrier();

        // This invocation's keys t, t + 4, …: scores and their max.
        float sv[BC / TPR];
        float partMax = negInf;
        for (uint u = 0; u < BC / TPR; ++u) {
            const uint j = t + u * TPR;
            const uint key = j0 + j;
            float s = negInf;
            if (rowValid && key < pc.Lk) {
                float dot = 0.0;
                for (uint d = 0; d < HEAD_D; ++d) {
                    dot += Qs[r * DS + d] * Ks[j * DS + d];
                }
                s = pc.scale * dot;
                if (MASK_ORDER == 0u && HAS_ADD != 0u) {
                    s += MASK_ADD[aBase + key * pc.aCol];
                }
                if (SELECT != 0u) {
                    const bool keep = (COND[cBase + key * pc.cCol] != 0) == (SELECT == 1u);
                    s = keep ? s : pc.fill;
                }
                if (MASK_ORDER == 1u && HAS_ADD != 0u) {
                    s += MASK_ADD[aBase + key * pc.aCol];
                }
            }
            sv[u] = s;
            partMax = max(partMax, s);
        }
        PM[lx] = partMax;
        barrier();

        // The row's new running max; each invocation writes e^(s − m') of its own keys.
        const float mNew = max(m, max(max(PM[r * TPR], PM[r * TPR + 1u]), max(PM[r * TPR + 2u], PM[r * TPR + 3u])));
        const bool live = mNew != negInf;  // else every score so far is -inf (or the row is padding)
        for (uint u = 0; u < BC / TPR; ++u) {
            S[r * BC + t + u * TPR] = live ? exp(sv[u] - mNew) : 0.0;
        }
        barrier();

        if (live) {
            const float correction = exp(m - mNew);  // m = -inf: 0
            l *= correction;
            for (uint c = 0; c < DPT_USED; ++c) {
                acc[c] *= correction;
            }
            for (uint j = 0; j < BC; ++j) {
                const float p = S[r * BC + j];
                l += p;
                for (uint c = 0; c < DPT_USED; ++c) {
                    const uint d = t + c * TPR;
                    if (d < HEAD_DV) {
                        acc[c] += p * Vs[j * DS + d];
                    }
                }
            }
            m = mNew;
        }
    }

    if (!rowValid) {
        return;
    }
    const float inv = 1.0 / l;
    const uint yBase = b0 * pc.y0 + b1 * pc.y1 + row * pc.yRow;
    for (uint c = 0; c < DPT_USED; ++c) {
        const uint d = t + c * TPR;
        if (d < HEAD_DV) {
            Y[yBase + d * pc.yCol] = acc[c] * inv;
        }
    }
}
