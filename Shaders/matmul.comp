#version 450
// matmul.comp — batched Y[b, M, N] = act(alpha · A[b, M, K] × B[b, K, N] + beta · C) with both operands in the
// arena (ONNX MatMul of two activations with numpy broadcasting of the batch dims; Gemm whose B is not a
// constant). Lowering: Lowering+MatMul.swift.
//
// Shared-memory tiles with a register tile per invocation: a workgroup of 256 invocations (16 × 16) owns a
// BM × BN tile of Y, BM = 64·TM rows, BN = 64·TN columns, and walks K in steps of BK = 16:
//
//          K ──────►                  BN columns ──────►
//     BM ┌──────────┐           K  ┌──────────────────┐   As[k][m / 4] (vec4 of 4 rows), Bs[k][n / 4]
//   rows │ A tile   │    ×      │  │ B tile           │   invocation (ty, tx): row quads ty + 16·i (i < TM),
//        └──────────┘           ▼  └──────────────────┘   column quads tx + 16·j (j < TN): per k, TM + TN
//                                                          vec4 loads, 16·TM·TN FMAs
//
// groups = (ceil(N / BN), ceil(M / BM), batch). Batch index z is split over up to 4 output batch dims
// (innermost last); each operand has its own element stride per batch dim (0 where it is broadcast).
// A 1-D operand is handled by the lowering as M = 1 / N = 1 with contiguous rows. Within a batch, element
// (m, k) of A is at m · aStrideM + k · aStrideK and (k, n) of B at k · bStrideK + n · bStrideN, from element
// aOffset / bOffset of the first batch, so Gemm's transA / transB, and a transpose or slice copied for this product
// alone (the lowering folds it), are strided reads, not copies. Y is written the same way, element (m, n) of batch
// (b…) at yOffset + Σ b_d · yBatchStride[d] + m · yStrideM + n · yStrideN: row-major [batch…, M, N] unless the
// lowering makes the product write straight into the transpose or concatenation that alone reads it.
//
// C (HAS_C, Gemm only, so one batch): element (m, n) is C[m · cStrideM + n · cStrideN], strides 0 along
// broadcast dims.
//
// Defines: MM_TM, MM_TN (row / column quads per invocation: 1 or 2).
// Spec constants: 0 = ACTIVATION, 1 = HAS_C (0 or 1).
// Bindings: 0 = A, 1 = B, 2 = Y, 3 = C (read only when HAS_C; the lowering binds A there otherwise).

layout(local_size_x = 256) in;
#include "common.glsl"

#ifndef MM_TM
#define MM_TM 1
#endif
#ifndef MM_TN
#define MM_TN 1
#endif
#define BK 16
#define BM (64 * MM_TM)
#define BN (64 * MM_TN)

layout(constant_id = 0) const uint ACTIVATION = ACT_NONE;
layout(constant_id = 1) const uint HAS_C = 0;

layout(std430, set = 0, binding = 0) readonly buffer ABuffer { float A[]; };
layout(std430, set = 0, binding = 1) readonly buffer BBuffer { float B[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };
layout(std430, set = 0, binding = 3) readonly buffer CBuffer { float C[]; };

layout(push_constant) uniform PushConstants {
    uint M, N, K;
    uint batchShape[4];   // output batch dims, innermost last; unused dims are 1
    uint aBatchStride[4]; // element strides of A per batch dim (0: broadcast)
    uint bBatchStride[4];
    uint aStrideM, aStrideK;  // matrix strides of A and B (transposes)
    uint bStrideK, bStrideN;
    float alpha, beta;
    uint cStrideM, cStrideN;
    uint aOffset, bOffset;    // element (0, 0) of A and B's first batch (views of a larger tensor)
    uint yBatchStride[4];     // element strides of Y per batch dim
    uint yStrideM, yStrideN;
    uint yOffset;             // element (0, 0) of Y's first batch
} pc;                         // 128 bytes

shared vec4 As[BK][BM / 4];
shared vec4 Bs[BK][BN / 4];

void main() {
    const uint lid = gl_LocalInvocationID.x;
    const uint ty = lid / 16u;
    const uint tx = lid % 16u;
    const uint row0 = gl_WorkGroupID.y * BM;
    const uint col0 = gl_WorkGroupID.x * BN;

    uint batch = gl_WorkGroupID.z;
    uint aBase = pc.aOffset;
    uint bBase = pc.bOffset;
    uint yBase = pc.yOffset;
    for (int d = 3; d >= 0; --d) {
        uint i = batch % pc.batchShape[d];
        batch /= pc.batchShape[d];
        aBase += i * pc.aBatchStride[d];
        bBase += i * pc.bBatchStride[d];
        yBase += i * pc.yBatchStride[d];
    }

    vec4 acc[MM_TM][4][MM_TN];
    for (uint i = 0; i < MM_TM; ++i) {
        for (uint r = 0; r < 4u; ++r) {
            for (uint j = 0; j < MM_TN; ++j) {
                acc[i][r][j] = vec4(0.0);
            }
        }
    }
    for (uint k0 = 0; k0 < pc.K; k0 += BK) {
        for (uint i = 0; i < 4u * MM_TM; ++i) {
            // A: BM rows × 16 k (k fastest, so a row's 16 values are one coalesced run).
            uint idx = lid + 256u * i;
            uint r = idx / BK;
            uint kk = idx % BK;
            bool aIn = row0 + r < pc.M && k0 + kk < pc.K;
            float a = A[aIn ? aBase + (row0 + r) * pc.aStrideM + (k0 + kk) * pc.aStrideK : 0u];  // clamped + select
            As[kk][r / 4u][r % 4u] = aIn ? a : 0.0;
        }
        for (uint j = 0; j < 4u * MM_TN; ++j) {
            // B: 16 k × BN columns (columns fastest).
            uint idx = lid + 256u * j;
            uint kb = idx / BN;
            uint c = idx % BN;
            bool bIn = k0 + kb < pc.K && col0 + c < pc.N;
            float b = B[bIn ? bBase + (k0 + kb) * pc.bStrideK + (col0 + c) * pc.bStrideN : 0u];
            Bs[kb][c / 4u][c % 4u] = bIn ? b : 0.0;
        }
        barrier();
        for (uint kk = 0; kk < BK; ++kk) {
            vec4 b[MM_TN];
            for (uint j = 0; j < MM_TN; ++j) {
                b[j] = Bs[kk][tx + 16u * j];
            }
            for (uint i = 0; i < MM_TM; ++i) {
                vec4 a = As[kk][ty + 16u * i];
                for (uint j = 0; j < MM_TN; ++j) {
                    acc[i][0][j] += a.x * b[j];
                    acc[i][1][j] += a.y * b[j];
                    acc[i][2][j] += a.z * b[j];
                    acc[i][3][j] += a.w * b[j];
                }
            }
        }
        barrier();
    }

    for (uint i = 0; i < MM_TM; ++i) {
        for (uint r = 0; r < 4u; ++r) {
            uint row = row0 + 4u * (ty + 16u * i) + r;
            if (row >= pc.M) {
                break;
            }
            for (uint j = 0; j < MM_TN; ++j) {
                vec4 y = pc.alpha * acc[i][r][j];
                for (uint lane = 0; lane < 4u; ++lane) {
                    uint col = col0 + 4u * (tx + 16u * j) + lane;
                    if (col < pc.N) {
                        float v = y[lane];
                        if (HAS_C != 0u) {
                            v += pc.beta * C[row * pc.cStrideM + col * pc.cStrideN];
                        }
                        Y[yBase + row * pc.yStrideM + col * pc.yStrideN] = activate(v, ACTIVATION);
                    }
                }
            }
        }
    }
}
