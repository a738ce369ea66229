#version 450
// gemm_tiled.comp — Y[M, N] = act(A[M, K] × B[K, N] + bias[N] + beta·C) with a constant B in a weight image,
// for many rows (M ≥ 64): shared-memory tiles and a register tile per invocation. gemm.comp serves few rows.
// Lowering: Lowering+MatMul.swift.
//
// Weight image: the same texels as gemm.comp — texel k · NB + nb holds alpha · B'[k, 4nb + 0..3], then the
// bias texels at K · NB + nb — so the B tile of one k step is BK runs of consecutive texels. A B' cut into
// column pieces (see gemm.comp) has one image and one dispatch per piece; N and NB are then the piece's,
// n0 its first output column and ldY the full N (the lowering cuts at multiples of BN where it can, so
// pieces keep whole tiles).
//
// Work split — a workgroup of 256 invocations (16 × 16) owns a BM × BN tile of Y, BM = 64·TM rows,
// BN = 64·TN columns (16·TN texel blocks), and walks K in steps of BK = 16:
//
//            BN columns ──────────────────►
//          ┌────────────────────────────────┐   As[k][row / 4]   (vec4 of 4 rows)  ← A, coalesced along k
//   BM     │ (ty, tx): row quads ty + 16·i  │   Bs[k][block]     (one texel)        ← image, coalesced
//   rows   │   (i < TM), blocks tx + 16·j   │   per k: TM + TN vec4 loads, 16·TM·TN FMAs
//          │   (j < TN)                     │
//          └────────────────────────────────┘
//
// groups = (ceil(NB / (16·TN)), ceil(M / BM), SLICES); split over K as gemm.comp (slice z writes raw partial
// sums to P[z][M][ldY], slice 0 adds the bias and C; splitk_reduce.comp finishes). C as in gemm.comp.
//
// Defines: WEIGHT_FORMAT, GT_TM (row quads per invocation: 1, 2), GT_TN (texel blocks per invocation: 1, 2).
// Spec constants: 0 = ACTIVATION, 1 = HAS_C (0 or 1).
// Bindings: 0 = A, 1 = weights (B, then bias), 2 = Y (or the partial sums), 3 = C (read only when HAS_C; the
// lowering binds A there otherwise).

layout(local_size_x = 256) in;
#include "common.glsl"

#ifndef GT_TM
#define GT_TM 1
#endif
#ifndef GT_TN
#define GT_TN 1
#endif
#define BK 16
#define QUADS (16 * GT_TM)     // row quads per tile
#define BLOCKS (16 * GT_TN)    // texel blocks per tile
#define BM (4 * QUADS)

layout(constant_id = 0) const uint ACTIVATION = ACT_NONE;
layout(constant_id = 1) const uint HAS_C = 0;

layout(std430, set = 0, binding = 0) readonly buffer ABuffer { float A[]; };
layout(set = 0, binding = 1, WEIGHT_FORMAT) readonly uniform image2DArray weights;
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };
layout(std430, set = 0, binding = 3) readonly buffer CBuffer { float C[]; };

layout(push_constant) uniform PushConstants {
    uint M, N, K, NB;
    uint strideM, strideK;  // element (m, k) of A is A[m · strideM + k · strideK]
    uint kPerSlice, slices;
    uint log2W, log2H;      // weight image extent
    float beta;
    uint cStrideM, cStrideN;  // element (m, n) of C is C[m · cStrideM + n · cStrideN]
    uint n0, ldY;             // this piece's first output column, the row stride of Y (the full N)
} pc;                         // 60 bytes (the same block as gemm.comp)

shared vec4 As[BK][QUADS];
shared vec4 Bs[BK][BLOCKS];

void main() {
    const uint lid = gl_LocalInvocationID.x;
    const uint ty = lid / 16u;
    const uint tx = lid % 16u;
    const uint row0 = gl_WorkGroupID.y * BM;
    const uint nb0 = gl_WorkGroupID.x * BLOCKS;
    const uint slice = gl_WorkGroupID.z;
    const uint kBegin = slice * pc.kPerSlice;
    const uint kEnd = min(pc.K, kBegin + pc.kPerSlice);

    vec4 acc[GT_TM][4][GT_TN];
    for (uint i = 0; i < GT_TM; ++i) {
        for (uint r = 0; r < 4u; ++r) {
            for (uint j = 0; j < GT_TN; ++j) {
                acc[i][r][j] = vec4(0.0);
            }
        }
    }

    for (uint k0 = kBegin; k0 < kEnd; k0 += BK) {
        for (uint i = 0; i < 4u * GT_TM; ++i) {
            uint idx = lid + 256u * i;
            uint r = idx / BK;
            uint kk = idx % BK;
            bool inside = row0 + r < pc.M && k0 + kk < kEnd;
            float a = A[inside ? (row0 + r) * pc.strideM + (k0 + kk) * pc.strideK : 0u];  // clamped + select
            As[kk][r / 4u][r % 4u] = inside ? a : 0.0;
        }
        for (uint j = 0; j < GT_TN; ++j) {
            uint idx = lid + 256u * j;
            uint b = idx % BLOCKS;
            uint kk = idx / BLOCKS;
            bool inside = nb0 + b < pc.NB && k0 + kk < kEnd;
            vec4 w = WEIGHT_AT(weights, inside ? (k0 + kk) * pc.NB + nb0 + b : 0u, pc.log2W, pc.log2H);
            Bs[kk][b] = inside ? w : vec4(0.0);
        }
        barrier();
        for (uint kk = 0; kk < BK; ++kk) {
            vec4 b[GT_TN];
            for (uint j = 0; j < GT_TN; ++j) {
                b[j] = Bs[kk][tx + 16u * j];
            }
            for (uint i = 0; i < GT_TM; ++i) {
                vec4 a = As[kk][ty + 16u * i];
                for (uint j = 0; j < GT_TN; ++j) {
                    acc[i][0][j] += a.x * b[j];
                    acc[i][1][j] += a.y * b[j];
                    acc[i][2][j] += a.z * b[j];
                    acc[i][3][j] += a.w * b[j];
                }
            }
        }
        barrier();
    }

    const uint outBase = pc.slices > 1u ? slice * pc.M * pc.ldY : 0u;
    const bool addC = HAS_C != 0u && slice == 0u;
    for (uint j = 0; j < GT_TN; ++j) {
        uint nb = nb0 + tx + 16u * j;
        if (nb >= pc.NB) {
            break;
        }
        vec4 bias = slice == 0u ? WEIGHT_AT(weights, pc.K * pc.NB + nb, pc.log2W, pc.log2H) : vec4(0.0);
        for (uint i = 0; i < GT_TM; ++i) {
            for (uint r = 0; r < 4u; ++r) {
                uint m = row0 + 4u * (ty + 16u * i) + r;
                if (m >= pc.M) {
                    break;
                }
                vec4 y = acc[i][r][j] + bias;
                for (uint lane = 0; lane < 4u; ++lane) {
                    uint col = 4u * nb + lane;
                    if (col < pc.N) {
                        float v = y[lane];
                        if (addC) {
                            v += pc.beta * C[m * pc.cStrideM + (pc.n0 + col) * pc.cStrideN];
                        }
                        Y[outBase + m * pc.ldY + pc.n0 + col] = activate(v, ACTIVATION);
                    }
                }
            }
        }
    }
}
