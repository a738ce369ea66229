#version 450
// conv2d_igemm.comp — 2-D convolution (groups = 1) as an implicit GEMM with shared-memory tiles and an
// optional split over K. Lowering: Lowering+Conv.swift (conv2d.comp handles groups > 1).
//
//   Y[oc, p] = Σ_k W[oc, k] · X̂[k, p]      k = (ic · KH + kh) · KW + kw  (K = IC · KH · KW)
//                                          p = (n · OH + oy) · OW + ox   (batch folded into the pixels)
//   X̂[k, p] = X[n, ic, oy·SH − PT + kh·DH, ox·SW − PL + kw·DW]   (0 in the padding; gathered, never stored)
//
// Weight image: the same texels as conv2d.comp with groups = 1 — texel ocb · K + k holds W[4·ocb + 0..3, k],
// then the bias texels at OCB · K + ocb. So a K range of one block is a run of consecutive texels.
//
// Work split — a workgroup of 256 invocations (16 × 16) owns a BM × BN tile of Y, BM = 64·TM output channels,
// BN = 16·TN pixels; invocation (ty, tx) owns TM texel blocks × TN pixels of it:
//
//                 BN pixels ─────────────────►
//            ┌──────────────────────────────────┐   per step of BK = 16 values of k:
//   BM oc    │ (ty,tx): blocks ty + 16·i (i<TM)  │     Ws[BK][16·TM] vec4 ← texels (one per oc block and k)
//   (16·TM   │          pixels tx·TN … +TN-1     │     Xs[BK][BN]         ← gathered input
//   blocks)  └──────────────────────────────────┘     then TM·TN vec4 FMAs per k from shared memory
//
// groups = (ceil(N·OH·OW / BN), ceil(OCB / (16·TM)), SLICES). Slice z covers k in
// [z·kPerSlice, (z+1)·kPerSlice). With SLICES = 1 the kernel writes Y = act(acc + bias) in NCHW; with more it
// writes raw partial sums (slice 0 adds the bias) to P[z][n][oc][p] and splitk_reduce.comp adds them up
// and applies the activation (the lowering then sets ACTIVATION = none here).
//
// Output-channel pieces (Lowering maxImageBytes): a weight too large for one image is cut into ranges of whole
// texel blocks [ocOffset, ocOffset + OC), each its own image laid out as above for its OC channels and its own
// dispatch; piece p writes channels ocOffset + oc of the full OCtotal-channel output (and of the partial sums
// P[z][n][OCtotal][p], reduced once after the last piece). Unsplit: ocOffset = 0, OCtotal = OC.
//
//   Y[n, :, p]   │◄─ piece 0: OC channels ─►│◄─ piece 1 (ocOffset) ─►│ … │   (OCtotal channels)
//
// Defines: WEIGHT_FORMAT, IG_TM (texel blocks per invocation: 1, 2), IG_TN (pixels per invocation: 4, 8).
// Spec constants: 0 = ACTIVATION.
// Bindings: 0 = X, 1 = weights, 2 = Y (or the partial sums).

layout(local_size_x = 256) in;
#include "common.glsl"

#ifndef IG_TM
#define IG_TM 1
#endif
#ifndef IG_TN
#define IG_TN 4
#endif
#define BK 16
#define BLOCKS (16 * IG_TM)           // texel blocks (of 4 output channels) per tile
#define BN (16 * IG_TN)               // pixels per tile
#define X_LOADS (BK * BN / 256)       // gathered input values per invocation per step
#define W_LOADS (BK * BLOCKS / 256)   // weight texels per invocation per step

layout(constant_id = 0) const uint ACTIVATION = ACT_NONE;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { float X[]; };
layout(set = 0, binding = 1, WEIGHT_FORMAT) readonly uniform image2DArray weights;
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };

layout(push_constant) uniform PushConstants {
    uint N, C, H, W;       // input batch, channels, height, width
    uint OC, OH, OW;       // output channels, height, width
    uint OCB;              // texel blocks: ceil(OC / 4)
    uint KH, KW;
    uint SH, SW;           // strides
    uint PT, PL;           // pads at the top / left
    uint DH, DW;           // dilations
    uint K;                // C · KH · KW
    uint kPerSlice;        // a multiple of BK
    uint slices;
    uint log2W, log2H;     // weight image extent
    uint ocOffset;         // this piece's first output channel (a multiple of 4)
    uint OCtotal;          // channels of Y (OC is this piece's)
} pc;                      // 92 bytes

shared vec4 Ws[BK][BLOCKS];
shared vec4 Xs[BK][BN / 4];  // pixel p of the tile is Xs[k][p / 4][p % 4]

void main() {
    const uint lid = gl_LocalInvocationID.x;
    const uint ty = lid / 16u;
    const uint tx = lid % 16u;
    const uint P = pc.OH * pc.OW;
    const uint NP = pc.N * P;
    const uint pTile = gl_WorkGroupID.x * BN;
    const uint ocbTile = gl_WorkGroupID.y * BLOCKS;
    const uint slice = gl_WorkGroupID.z;
    const uint kBegin = slice * pc.kPerSlice;
    const uint kEnd = min(pc.K, kBegin + pc.kPerSlice);
    const uint taps = pc.KH * pc.KW;
    const uint plane = pc.H * pc.W;

    // The pixel this invocation gathers for (fixed for the whole K loop) and the rows it fills.
    const uint gx = lid % BN;
    const uint gRow = lid / BN;
    const uint gp = pTile + gx;
    const bool gValid = gp < NP;
    const uint gn = min(gp, NP - 1u) / P;
    const uint gpix = min(gp, NP - 1u) - gn * P;
    const uint goy = gpix / pc.OW;
    const uint gox = gpix - goy * pc.OW;
    const int giy0 = int(goy * pc.SH) - int(pc.PT);
    const int gix0 = int(gox * pc.SW) - int(pc.PL);
    const uint gBase = gn * pc.C * plane;

    // The weight texels this invocation loads: block wb, k offset wk (+ 256 / BK·i blocks for i < W_LOADS).
    const uint wk = lid % BK;
    const uint wb = lid / BK;

    vec4 acc[IG_TM][IG_TN];
    for (uint i = 0; i < IG_TM; ++i) {
        for (uint j = 0; j < IG_TN; ++j) {
            acc[i][j] = vec4(0.0);
        }
    }

    for (uint k0 = kBegin; k0 < kEnd; k0 += BK) {
        for (uint i = 0; i < W_LOADS; ++i) {
            uint b = wb + i * (256u / BK);
            uint ocb = ocbTile + b;
            uint k = k0 + wk;
            bool inside = ocb < pc.OCB && k < kEnd;
            vec4 w = WEIGHT_AT(weights, inside ? ocb * pc.K + k : 0u, pc.log2W, pc.log2H);
            Ws[wk][b] = inside ? w : vec4(0.0);
        }
        for (uint i = 0; i < X_LOADS; ++i) {
            uint kk = gRow + i * (256u / BN);
            uint k = k0 + kk;
            uint ic = k / taps;
            uint r = k - ic * taps;
            uint kh = r / pc.KW;
            uint kw = r - kh * pc.KW;
            int iy = giy0 + int(kh * pc.DH);
            int ix = gix0 + int(kw * pc.DW);
            bool inside = gValid && k < kEnd && iy >= 0 && iy < int(pc.H) && ix >= 0 && ix < int(pc.W);
            // Clamped index + select: never an out-of-range load.
            float v = X[inside ? gBase + ic * plane + uint(iy) * pc.W + uint(ix) : 0u];
            Xs[kk][gx / 4u][gx % 4u] = inside ? v : 0.0;
        }
        barrier();
        for (uint kk = 0; kk < BK; ++kk) {
            vec4 w[IG_TM];
            for (uint i = 0; i < IG_TM; ++i) {
                w[i] = Ws[kk][ty + 16u * i];
            }
            for (uint q = 0; q < IG_TN / 4; ++q) {
                vec4 x = Xs[kk][tx * (IG_TN / 4) + q];
                for (uint i = 0; i < IG_TM; ++i) {
                    acc[i][4 * q + 0] += w[i] * x.x;
                    acc[i][4 * q + 1] += w[i] * x.y;
                    acc[i][4 * q + 2] += w[i] * x.z;
                    acc[i][4 * q + 3] += w[i] * x.w;
                }
            }
        }
        barrier();
    }

    const uint count = NP * pc.OCtotal;
    const uint outBase = pc.slices > 1u ? slice * count : 0u;
    for (uint i = 0; i < IG_TM; ++i) {
        uint ocb = ocbTile + ty + 16u * i;
        if (ocb >= pc.OCB) {
            break;
        }
        vec4 bias = slice == 0u ? WEIGHT_AT(weights, pc.OCB * pc.K + ocb, pc.log2W, pc.log2H) : vec4(0.0);
        for (uint j = 0; j < IG_TN; ++j) {
            uint p = pTile + tx * IG_TN + j;
            if (p >= NP) {
                break;
            }
            uint n = p / P;
            uint pix = p - n * P;
            vec4 y = activate(acc[i][j] + bias, ACTIVATION);
            for (uint lane = 0; lane < 4; ++lane) {
                uint oc = 4u * ocb + lane;
                if (oc < pc.OC) {
                    Y[outBase + (n * pc.OCtotal + pc.ocOffset + oc) * P + pix] = y[lane];
                }
            }
        }
    }
}
