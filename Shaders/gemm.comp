#version 450
// gemm.comp — Y[M, N] = act(A[M, K] × B[K, N] + bias[N] + beta·C) with a constant B in a weight image, for
// few rows (M < 64: GEMV-like, e.g. a CNN's classifier; gemm_tiled.comp serves more). ONNX Gemm with constant
// B, and MatMul with a constant 2-D B (leading dims of A flattened into M). Lowering: Lowering+MatMul.swift.
//
// Weight image (WEIGHT_FORMAT), in the order this kernel reads it, NB = ceil(N / 4):
//
//   texel index          holds (4 lanes = 4 consecutive output columns)
//   ──────────────────── ────────────────────────────────────────────────────────────
//   k · NB + nb          alpha · B'[k, 4nb + 0..3]     (B' = B or Bᵀ per transB; lanes ≥ N are 0)
//   K · NB + nb          beta · C[4nb + 0..3]          (zeros when there is no per-column bias)
//
// k-major ([k][nBlock]) so that the WG invocations of a group, which own consecutive nb, read
// consecutive texels at every k (coalesced), and so that a row range of the image is a K range
// (a matmul split along K can start on the first rows that landed).
//
// Column pieces (Lowering maxImageBytes): a B' too large for one image is cut along N into pieces of whole
// texel blocks, each its own image laid out as above for its own N (= Np) and its own dispatch:
//
//        Y [M, ldY]  columns ──────────────────────────────────────────►
//        │◄── piece 0: n0 = 0, Np ──►│◄── piece 1: n0, Np ──►│◄── piece 2 ──►│
//        image B'[:, 0..Np) + bias    image B'[:, n0..n0+Np)   …
//
// piece p writes Y[m · ldY + n0 + col] for col < Np and reads C at column n0 + col. Unsplit: n0 = 0, ldY = N.
//
// Work split — invocation (gx·WG + lx, row group r) owns columns 4nb..4nb+3 of rows r·TM .. r·TM+TM-1:
//
//            nb ─────────────────────────────►
//     rows  ┌──────────┬──────────┬─────
//     r·TM  │ group gx │ gx+1     │            A[m, k] is the same for the whole group (broadcast load),
//     +TM   │ WG × 4   │          │            B texels differ per invocation (coalesced load).
//           └──────────┴──────────┴─────
//
// groups = (ceil(NB / WG), ceil(M / TM), SLICES). A is read with strides (strideM, strideK), so transA needs
// no copy. Few output texels (a GEMV: M = 1, the classifier of a CNN) would leave most of the GPU idle and
// each invocation walking all of K, so the lowering splits K: slice z covers [z·kPerSlice, (z+1)·kPerSlice)
// and writes raw partial sums (slice 0 adds the bias and C) to P[z][M][ldY] (every piece into the same
// buffer, at its columns); splitk_reduce.comp adds them once after the last piece and applies the activation
// (ACTIVATION is then none here).
//
// C (HAS_C): a Gemm's C that is not a constant per-column vector (an activation, or a constant varying along
// M) is read in the epilogue as C[m · cStrideM + n · cStrideN], strides 0 along broadcast dims.
//
// Defines: WEIGHT_FORMAT, GEMM_TM (rows per invocation).
// Spec constants: 0 = WG, 1 = ACTIVATION, 2 = HAS_C (0 or 1).
// Bindings: 0 = A, 1 = weights (B, then bias), 2 = Y (or the partial sums), 3 = C (read only when HAS_C; the
// lowering binds A there otherwise).

layout(local_size_x_id = 0) in;
#include "common.glsl"

#ifndef GEMM_TM
#define GEMM_TM 4
#endif

layout(constant_id = 1) const uint ACTIVATION = ACT_NONE;
layout(constant_id = 2) const uint HAS_C = 0;

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
} pc;                         // 60 bytes

void main() {
    const uint nb = gl_GlobalInvocationID.x;
    const uint m0 = gl_WorkGroupID.y * GEMM_TM;
    const uint slice = gl_WorkGroupID.z;
    const uint kBegin = slice * pc.kPerSlice;
    const uint kEnd = min(pc.K, kBegin + pc.kPerSlice);
    if (m0 >= pc.M) {
        return;
    }
    const uint nbRead = min(nb, pc.NB - 1u);

    uint aRow[GEMM_TM];
    for (uint r = 0; r < GEMM_TM; ++r) {
        aRow[r] = min(m0 + r, pc.M - 1u) * pc.strideM;
    }

    vec4 bias = slice == 0u ? WEIGHT_AT(weights, pc.K * pc.NB + nbRead, pc.log2W, pc.log2H) : vec4(0.0);
    vec4 acc[GEMM_TM];
    for (uint r = 0; r < GEMM_TM; ++r) {
        acc[r] = bias;
    }

    uint t = kBegin * pc.NB + nbRead;
    uint ak = kBegin * pc.strideK;
    for (uint k = kBegin; k < kEnd; ++k, t += pc.NB, ak += pc.strideK) {
        vec4 b = WEIGHT_AT(weights, t, pc.log2W, pc.log2H);
        for (uint r = 0; r < GEMM_TM; ++r) {
            acc[r] += A[aRow[r] + ak] * b;
        }
    }

    if (nb >= pc.NB) {
        return;
    }
    const uint outBase = pc.slices > 1u ? slice * pc.M * pc.ldY : 0u;
    const bool addC = HAS_C != 0u && slice == 0u;
    for (uint r = 0; r < GEMM_TM; ++r) {
        uint m = m0 + r;
        if (m >= pc.M) {
            break;
        }
        for (uint lane = 0; lane < 4; ++lane) {
            uint col = 4u * nb + lane;
            if (col < pc.N) {
                float y = acc[r][lane];
                if (addC) {
                    y += pc.beta * C[m * pc.cStrideM + (pc.n0 + col) * pc.cStrideN];
                }
                Y[outBase + m * pc.ldY + pc.n0 + col] = activate(y, ACTIVATION);
            }
        }
    }
}
