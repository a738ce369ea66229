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
// One workgroup of ATT_WG (64 or 256) invocations per (block of BR = 16 query rows, batch): groups = (ceil(Lq / 16),
// b0 · b1). With 256 the score and value phases below give each invocation a quarter of the work: a short attention
// (GPT-Neo-2.7B: 20 heads of 128 keys, D = 128, 160 workgroups) is latency-bound, each workgroup walking its tiles
// alone on an SM, so finer phases shorten it.
// The keys are walked in tiles of BC (32, or 16 when ATT_DMAX = 128), the K tile stored transposed and the V tile
// as it is in shared memory. Each tile takes three phases, every invocation reading consecutive shared addresses
// along its neighbours' (one vector load on a CPU Vulkan, no bank conflict on a GPU) and the other operand as one
// value for all of them:
//   scores   invocation = (key j, group of BR · BC / 64 rows): s = scale · Q_r · K_j (+ masks) into S;
//   rows     invocations 0..<BR, one row each: m' = max(m, max_j s_j), e^(s_j − m') in place of s_j,
//            l' = l·e^(m − m') + Σ_j e^(s_j − m'), and the row's correction e^(m − m') (online softmax, fp32);
//   values   invocation = (output column d, group of rows): acc' = acc·e^(m − m') + Σ_j e^(s_j − m')·V_j[d].
// At the end Y = acc / l.
//
//   score s = scale · (Q_i · K_j), then (MASK_ORDER 0) + MASK_ADD[i, j] and the select, or (1) the select and
//   + MASK_ADD; the select keeps s where COND[i, j] ≠ 0 (SELECT 1) or = 0 (SELECT 2), else it is `fill`.
//
// Defines: ATT_DMAX (64 or 128: the largest D and Dv; shared tiles are sized by it), ATT_WG (64 or 256 invocations).
// Spec constants: 0 = HAS_ADD (0/1), 1 = SELECT (0 none, 1 keep where true, 2 keep where false), 2 = MASK_ORDER,
// 3 = HEAD_D, 4 = HEAD_DV (the push constants D and Dv again, as loop bounds the driver can unroll).
// Bindings: 0 = Q, 1 = K, 2 = V, 3 = Y, 4 = MASK_ADD (fp32), 5 = COND (int32; bool in the arena); an absent mask
// binding is given Q.

#ifndef ATT_WG
#define ATT_WG 64
#endif
layout(local_size_x = ATT_WG) in;
#include "common.glsl"

#ifndef ATT_DMAX
#define ATT_DMAX 64
#endif
#define BR 16u
#define WG uint(ATT_WG)
#if ATT_DMAX > 64
#define BC 16u
#else
#define BC 32u
#endif
#define KS (BC + 1u)                 // padded row stride of the transposed K tile and of S
#define RPI (BR * BC / WG)           // rows per invocation in the score phase (8 or 4; 2 or 1 with 256)
#define CPI (ATT_DMAX / 64)          // most output columns per invocation in the value phase (1, or 2)

layout(constant_id = 0) const uint HAS_ADD = 0;
layout(constant_id = 1) const uint SELECT = 0;
layout(constant_id = 2) const uint MASK_ORDER = 0;
layout(constant_id = 3) const uint HEAD_D = 64;   // D and Dv (≤ ATT_DMAX): loop bounds known to the driver
layout(constant_id = 4) const uint HEAD_DV = 64;

layout(std430, set = 0, binding = 0) readonly buffer QBuffer { float Q[]; };
layout(std430, set = 0, binding = 1) readonly buffer KBuffer { float K[]; };
layout(std430, set = 0, binding = 2) readonly buffer VBuffer { float V[]; };
layout(std430, set = 0, binding = 3) writeonly buffer OutputBuffer { float Y[]; };
layout(std430, set = 0, binding = 4) readonly buffer MaskBuffer { float MASK_ADD[]; };
layout(std430, set = 0, binding = 5) readonly buffer CondBuffer { int COND[]; };

layout(push_constant) uniform PushConstants {
    uint Lq, Lk;
    uint b1Count;                       // inner batch dim size
    uint qOff, kOff, vOff;              // first element of Q, K, V in their buffers (views of a larger tensor)
    uint q0, q1, qRow, qCol;            // element strides: batch 0, batch 1, row, column
    uint k0, k1, kRow, kCol;            // K as [Lk, D]: row = key, column = depth
    uint v0, v1, vRow, vCol;
    uint y0, y1, yRow, yCol;
    uint a0, a1, aRow, aCol;            // MASK_ADD
    uint c0, c1, cRow, cCol;            // COND
    float scale, fill;
} pc;                                   // 128 bytes

shared float Qs[BR * ATT_DMAX];        // [row][d]
shared float KsT[ATT_DMAX * KS];       // [d][key]
shared float Vs[BC * ATT_DMAX];        // [key][d]
shared float S[BR * KS];               // the tile's scores, then e^(s − m')
shared float rowM[BR];                 // running max of each row
shared float rowL[BR];                 // running Σ e^(s − m)
shared float rowC[BR];                 // this tile's correction e^(m − m')

void main() {
    const uint lx = gl_LocalInvocationID.x;
    const uint rowBase = gl_WorkGroupID.x * BR;
    const uint batch = gl_WorkGroupID.y;
    const uint b0 = batch / pc.b1Count, b1 = batch - b0 * pc.b1Count;
    const uint qBase = pc.qOff + b0 * pc.q0 + b1 * pc.q1;
    const uint kBase = pc.kOff + b0 * pc.k0 + b1 * pc.k1;
    const uint vBase = pc.vOff + b0 * pc.v0 + b1 * pc.v1;
    const float negInf = uintBitsToFloat(0xff800000u);

    // Score phase: key j of the tile, rows sg·RPI … sg·RPI + RPI − 1 of the block.
    const uint sj = lx % BC, sg = lx / BC;
    // Value phase: output column vd (+ PV_COLS · c), rows vg·pvRows …; PV_COLS = HEAD_DV rounded up to a power of
    // two (at most 64), so that no invocation idles for D = 32.
    const uint pvCols = HEAD_DV > 32u ? 64u : HEAD_DV > 16u ? 32u : HEAD_DV > 8u ? 16u : HEAD_DV > 4u ? 8u : 4u;
    const uint pvGroups = min(WG / pvCols, BR);
    const uint pvRows = BR / pvGroups;
    const uint pvCpi = (HEAD_DV + pvCols - 1u) / pvCols;
    const uint vd = lx % pvCols, vg = lx / pvCols;
    const bool valueLane = vg < pvGroups;

    for (uint i = lx; i < BR * HEAD_D; i += WG) {
        const uint rr = i / HEAD_D, d = i - rr * HEAD_D;
        const uint qr = rowBase + rr;
        Qs[rr * ATT_DMAX + d] = qr < pc.Lq ? Q[qBase + qr * pc.qRow + d * pc.qCol] : 0.0;
    }
    if (lx < BR) {
        rowM[lx] = negInf;
        rowL[lx] = 0.0;
    }

    float acc[BR * CPI];
    for (uint c = 0; c < BR * CPI; ++c) {
        acc[c] = 0.0;
    }

    for (uint j0 = 0; j0 < pc.Lk; j0 += BC) {
        barrier();  // the previous tile's K, V and S are no longer read (and Qs and the rows' state are written)
        for (uint i = lx; i < BC * HEAD_D; i += WG) {
            const uint j = i / HEAD_D, d = i - j * HEAD_D;
            KsT[d * KS + j] = j0 + j < pc.Lk ? K[kBase + (j0 + j) * pc.kRow + d * pc.kCol] : 0.0;
        }
        for (uint i = lx; i < BC * HEAD_DV; i += WG) {
            const uint j = i / HEAD_DV, d = i - j * HEAD_DV;
            Vs[j * ATT_DMAX + d] = j0 + j < pc.Lk ? V[vBase + (j0 + j) * pc.vRow + d * pc.vCol] : 0.0;
        }
        barrier();

        // Scores of key sj against this invocation's rows.
        float dot[RPI];
        for (uint k = 0; k < RPI; ++k) {
            dot[k] = 0.0;
        }
        for (uint d = 0; d < HEAD_D; ++d) {
            const float kv = KsT[d * KS + sj];
            for (uint k = 0; k < RPI; ++k) {
                dot[k] += Qs[(sg * RPI + k) * ATT_DMAX + d] * kv;
            }
        }
        const uint key = j0 + sj;
        for (uint k = 0; k < RPI; ++k) {
            const uint r = sg * RPI + k;
            const uint row = rowBase + r;
            float s = negInf;
            if (row < pc.Lq && key < pc.Lk) {
                s = pc.scale * dot[k];
                const uint aAt = b0 * pc.a0 + b1 * pc.a1 + row * pc.aRow + key * pc.aCol;
                if (MASK_ORDER == 0u && HAS_ADD != 0u) {
                    s += MASK_ADD[aAt];
                }
                if (SELECT != 0u) {
                    const bool keep = (COND[b0 * pc.c0 + b1 * pc.c1 + row * pc.cRow + key * pc.cCol] != 0) == (SELECT == 1u);
                    s = keep ? s : pc.fill;
                }
                if (MASK_ORDER == 1u && HAS_ADD != 0u) {
                    s += MASK_ADD[aAt];
                }
            }
            S[r * KS + sj] = s;
        }
        barrier();

        // Each row's new running max, its exponentials, sum and correction.
        if (lx < BR) {
            const float m = rowM[lx];
            float mNew = m;
            for (uint j = 0; j < BC; ++j) {
                mNew = max(mNew, S[lx * KS + j]);
            }
            if (mNew != negInf) {  // else every score so far is -inf (or the row is padding): nothing to add
                float sum = 0.0;
                for (uint j = 0; j < BC; ++j) {
                    const float p = exp(S[lx * KS + j] - mNew);
                    S[lx * KS + j] = p;
                    sum += p;
                }
                const float correction = exp(m - mNew);  // m = -inf: 0
                rowL[lx] = rowL[lx] * correction + sum;
                rowM[lx] = mNew;
                rowC[lx] = correction;
            } else {
                for (uint j = 0; j < BC; ++j) {
                    S[lx * KS + j] = 0.0;
                }
                rowC[lx] = 1.0;
            }
        }
        barrier();

        // Values: this invocation's columns of its rows.
        if (valueLane) {
            for (uint k = 0; k < pvRows; ++k) {
                const float correction = rowC[vg * pvRows + k];
                for (uint c = 0; c < pvCpi; ++c) {
                    acc[k * CPI + c] *= correction;
                }
            }
            for (uint j = 0; j < BC; ++j) {
                for (uint c = 0; c < pvCpi; ++c) {
                    const uint d = vd + c * pvCols;
                    const float v = d < HEAD_DV ? Vs[j * ATT_DMAX + d] : 0.0;
                    for (uint k = 0; k < pvRows; ++k) {
                        acc[k * CPI + c] += S[(vg * pvRows + k) * KS + j] * v;
                    }
                }
            }
        }
    }

    if (!valueLane) {
        return;
    }
    for (uint k = 0; k < pvRows; ++k) {
        const uint r = vg * pvRows + k;
        const uint row = rowBase + r;
        if (row >= pc.Lq) {
            continue;
        }
        const float inv = 1.0 / rowL[r];
        const uint yBase = b0 * pc.y0 + b1 * pc.y1 + row * pc.yRow;
        for (uint c = 0; c < pvCpi; ++c) {
            const uint d = vd + c * pvCols;
            if (d < HEAD_DV) {
                Y[yBase + d * pc.yCol] = acc[k * CPI + c] * inv;
            }
        }
    }
}
