#version 450
// gemm_cm_lab.comp — a copy of Shaders/gemm_cm.comp for gemm-lab, with switches: LAB_B_BUFFER (B texels from a
// storage buffer of uvec2 instead of the image), LAB_A_HALF (A as packed fp16, 4 per uvec2), LAB_NO_LOADS (no global
// reads in the K loop: the staging registers keep constants; the result is then wrong), LAB_NO_MMA (one coopMatMulAdd per 16-deep
// step instead of FM · FN).
// Original header:
// Y[M, N] = act(A[M, K] × B[K, N] + bias[N] + beta·C) with a constant B in a weight image, on
// the tensor cores through cooperative matrices (VK_NV_cooperative_matrix: fp16 × fp16 → fp32, 16 × 16 × 16,
// subgroup scope, subgroups of 32). The same interface as gemm_tiled.comp (bindings, push constants, split
// over K, column pieces, C); the lowering picks it only for bundles whose device has the units
// (Lowering+MatMul.swift, `Lowering.coopmatTile`), and the bundle then declares the requirement.
//
// GL_NV_cooperative_matrix, not GL_KHR_cooperative_matrix: the shader toolchain fmc links (Debian 12's shaderc
// 2023.2 / glslang 12) knows only the NV extension. The H200's driver offers both; the KHR path is a
// follow-up once the toolchain has it (the kernel body maps one to one: coopmat<…, gl_MatrixUseA/B/Accumulator>).
//
// A (fp32 activations) and B (weight texels, fp16 or fp32) are rounded to fp16 as they are staged into shared
// memory; products accumulate in fp32.
//
// Work split — a workgroup of CM_WM × CM_WN subgroups owns a BM × BN tile of Y and walks K in steps of BK = 32;
// subgroup (wm, wn) owns a WTM × WTN sub-tile (WTM = BM / CM_WM, WTN = BN / CM_WN) held as FM × FN 16 × 16
// fp32 accumulators:
//
//             BN columns (BN / 4 texel blocks) ──────►
//           ┌───────────────┬───────────────┬──────
//    BM     │ subgroup 0,0  │ subgroup 0,1  │ …      As[BM][BK + 8]  fp16, row-major  ← A, coalesced along k
//    rows   │ FM × FN frags │               │        Bs[BK][BN + 8]  fp16, row-major  ← image, coalesced
//           ├───────────────┼───────────────┤        per 16-deep k step a subgroup loads FM A and FN B
//           │ subgroup 1,0  │ …             │        fragments and does FM·FN coopMatMulAdd
//           └───────────────┴───────────────┘
//
// The next BK slab is read from memory into registers while the current one is multiplied; with CM_DB it is then
// staged into the other of two shared buffers (one barrier per slab), else into the one buffer (two barriers).
// With CM_PACKED the shared tiles are arrays of uvec2 (4 halves): one 8-byte store per staged run of 4 instead
// of four 2-byte ones; the fragments are loaded from them with offsets and strides in uvec2 units. Row strides
// of 8 extra halves keep every fragment 16-byte aligned and spread rows over the shared-memory banks. Edges
// (M, N, K not multiples of the tile) are zero-filled when staged and masked when stored.
//
// Epilogue: each accumulator goes through a per-subgroup 16 × 16 fp32 staging area in shared memory; lane l
// then owns column l % 16 of rows l / 16 + 2t, adds the bias (slice 0), C (slice 0, HAS_C), applies the
// activation (unsplit) and writes Y[m · ldY + n0 + col] (or slice z's partial sums P[z][M][ldY]).
//
// groups = (ceil(NB / (BN / 4)), ceil(M / BM), SLICES). kPerSlice is a multiple of BK.
//
// Defines: WEIGHT_FORMAT, CM_BM, CM_BN (tile), CM_WM, CM_WN (subgroup grid; the workgroup has 32 · CM_WM · CM_WN
// invocations), CM_BK (K per slab: 32 or 64), CM_DB (0/1: two shared buffers), CM_PACKED (0/1: uvec2 tiles). Spec constants: 0 = ACTIVATION, 1 = HAS_C (0 or 1).
// Bindings: 0 = A, 1 = weights (B, then bias), 2 = Y (or the partial sums), 3 = C (read only when HAS_C; the
// lowering binds A there otherwise).

#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require

#ifndef LAB_B_BUFFER
#define LAB_B_BUFFER 0
#endif
#ifndef LAB_A_HALF
#define LAB_A_HALF 0
#endif
#ifndef LAB_NO_LOADS
#define LAB_NO_LOADS 0
#endif
#ifndef LAB_NO_MMA
#define LAB_NO_MMA 0
#endif
#ifndef CM_BM
#define CM_BM 128
#endif
#ifndef CM_BN
#define CM_BN 128
#endif
#ifndef CM_WM
#define CM_WM 2
#endif
#ifndef CM_WN
#define CM_WN 4
#endif

#ifndef CM_BK
#define CM_BK 32
#endif
#ifndef CM_DB
#define CM_DB 0
#endif
#ifndef CM_PACKED
#define CM_PACKED 0
#endif

#define SUBGROUPS (CM_WM * CM_WN)
#define WG (32 * SUBGROUPS)
#define WTM (CM_BM / CM_WM)        // rows of a subgroup's sub-tile
#define WTN (CM_BN / CM_WN)        // columns of a subgroup's sub-tile
#define FM (WTM / 16)              // accumulators along M per subgroup
#define FN (WTN / 16)              // accumulators along N per subgroup
#define BK CM_BK
#define AS_STRIDE (BK + 8)         // halves per staged A row (80 bytes)
#define BS_STRIDE (CM_BN + 8)      // halves per staged B row
#define BNB (CM_BN / 4)            // texel blocks per tile
#define A_QUADS (CM_BM * BK / 4 / WG)  // 4-value runs of A each invocation stages per slab
#define B_TEXELS (BK * BNB / WG)       // texels of B each invocation stages per slab

layout(local_size_x = WG) in;
#include "common.glsl"

layout(constant_id = 0) const uint ACTIVATION = ACT_NONE;
layout(constant_id = 1) const uint HAS_C = 0;

layout(std430, set = 0, binding = 0) readonly buffer ABuffer { float A[]; };
// The same buffer read 4 values at a time (arena offsets are multiples of 256 bytes).
layout(std430, set = 0, binding = 0) readonly buffer A4Buffer { vec4 A4[]; };
#if LAB_B_BUFFER
layout(std430, set = 0, binding = 1) readonly buffer BBuffer { uvec2 Bt[]; };
#define LAB_B(t) vec4(unpackHalf2x16(Bt[t].x), unpackHalf2x16(Bt[t].y))
#else
layout(set = 0, binding = 1, WEIGHT_FORMAT) readonly uniform image2DArray weights;
#define LAB_B(t) WEIGHT_AT(weights, t, pc.log2W, pc.log2H)
#endif
#if LAB_A_HALF
layout(std430, set = 0, binding = 0) readonly buffer AHalf { uvec2 AH[]; };
#endif
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
} pc;                         // 60 bytes (the same block as gemm.comp and gemm_tiled.comp)

#define AS_SIZE (CM_BM * AS_STRIDE)  // halves per A buffer
#define BS_SIZE (BK * BS_STRIDE)      // halves per B buffer
#if CM_DB
#define BUFFERS 2
#else
#define BUFFERS 1
#endif
#if CM_PACKED
#define UNIT 4u                        // halves per shared element
shared uvec2 As[BUFFERS * AS_SIZE / 4];
shared uvec2 Bs[BUFFERS * BS_SIZE / 4];
#else
#define UNIT 1u
shared float16_t As[BUFFERS * AS_SIZE];
shared float16_t Bs[BUFFERS * BS_SIZE];
#endif
shared float Cs[SUBGROUPS * 256];

#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

vec4 aStage[A_QUADS];
vec4 bStage[B_TEXELS];

// Reads slab k0 of A and B into registers (zeros outside M, NB and [k0, kEnd)).
void readSlab(uint k0, uint kEnd, uint row0, uint nb0, bool vectorA) {
    const uint lid = gl_LocalInvocationID.x;
    [[unroll]] for (uint i = 0; i < A_QUADS; ++i) {
        uint idx = lid + WG * i;
        uint r = idx / (BK / 4);
        uint k = k0 + 4u * (idx % (BK / 4));
        uint m = row0 + r;
        if (vectorA) {
            // strideK = 1 and K, strideM multiples of 4: a run of 4 is inside or outside as a whole.
            bool inside = m < pc.M && k < kEnd;
#if LAB_NO_LOADS
            vec4 v = vec4(float(idx & 7u) / 8.0);
#elif LAB_A_HALF
            uvec2 hv = AH[inside ? (m * pc.strideM + k) / 4u : 0u];
            vec4 v = vec4(unpackHalf2x16(hv.x), unpackHalf2x16(hv.y));
#else
            vec4 v = A4[inside ? (m * pc.strideM + k) / 4u : 0u];
#endif
            aStage[i] = inside ? v : vec4(0.0);
        } else {
            vec4 v;
            for (uint j = 0; j < 4u; ++j) {
                bool inside = m < pc.M && k + j < kEnd;
                float a = A[inside ? m * pc.strideM + (k + j) * pc.strideK : 0u];
                v[j] = inside ? a : 0.0;
            }
            aStage[i] = v;
        }
    }
    [[unroll]] for (uint j = 0; j < B_TEXELS; ++j) {
        uint idx = lid + WG * j;
        uint b = idx % BNB;
        uint k = k0 + idx / BNB;
        bool inside = nb0 + b < pc.NB && k < kEnd;
#if LAB_NO_LOADS
        vec4 w = vec4(float(idx & 3u) / 4.0);
#else
        vec4 w = LAB_B(inside ? k * pc.NB + nb0 + b : 0u);
#endif
        bStage[j] = inside ? w : vec4(0.0);
    }
}

// Writes the registers of readSlab into buffer `buf` of As and Bs as fp16.
void stageSlab(uint buf) {
    const uint lid = gl_LocalInvocationID.x;
    [[unroll]] for (uint i = 0; i < A_QUADS; ++i) {
        uint idx = lid + WG * i;
        uint base = buf * AS_SIZE + (idx / (BK / 4)) * AS_STRIDE + 4u * (idx % (BK / 4));
#if CM_PACKED
        As[base / 4u] = uvec2(packHalf2x16(aStage[i].xy), packHalf2x16(aStage[i].zw));
#else
        f16vec4 h = f16vec4(aStage[i]);
        As[base] = h.x;
        As[base + 1u] = h.y;
        As[base + 2u] = h.z;
        As[base + 3u] = h.w;
#endif
    }
    [[unroll]] for (uint j = 0; j < B_TEXELS; ++j) {
        uint idx = lid + WG * j;
        uint base = buf * BS_SIZE + (idx / BNB) * BS_STRIDE + 4u * (idx % BNB);
#if CM_PACKED
        Bs[base / 4u] = uvec2(packHalf2x16(bStage[j].xy), packHalf2x16(bStage[j].zw));
#else
        f16vec4 h = f16vec4(bStage[j]);
        Bs[base] = h.x;
        Bs[base + 1u] = h.y;
        Bs[base + 2u] = h.z;
        Bs[base + 3u] = h.w;
#endif
    }
}

void main() {
    const uint subgroup = gl_SubgroupID;
    const uint lane = gl_SubgroupInvocationID;
    const uint wm = subgroup / CM_WN;
    const uint wn = subgroup % CM_WN;
    const uint row0 = gl_WorkGroupID.y * CM_BM;
    const uint nb0 = gl_WorkGroupID.x * BNB;
    const uint slice = gl_WorkGroupID.z;
    const uint kBegin = slice * pc.kPerSlice;
    const uint kEnd = min(pc.K, kBegin + pc.kPerSlice);
    const bool vectorA = pc.strideK == 1u && (pc.strideM & 3u) == 0u && (pc.K & 3u) == 0u;

    ACC acc[FM][FN];
    [[unroll]] for (uint i = 0; i < FM; ++i) {
        [[unroll]] for (uint j = 0; j < FN; ++j) {
            acc[i][j] = ACC(0.0);
        }
    }

    readSlab(kBegin, kEnd, row0, nb0, vectorA);
    stageSlab(0u);
    barrier();
    uint buf = 0u;
    for (uint k0 = kBegin; k0 < kEnd; k0 += BK) {
        const bool more = k0 + BK < kEnd;  // the same in every invocation: barriers stay in uniform control flow
        if (more) {
            readSlab(k0 + BK, kEnd, row0, nb0, vectorA);
        }
        [[unroll]] for (uint kk = 0; kk < BK; kk += 16u) {
            HALF a[FM];
            HALF b[FN];
            [[unroll]] for (uint i = 0; i < FM; ++i) {
                coopMatLoadNV(a[i], As, (buf * AS_SIZE + (wm * WTM + 16u * i) * AS_STRIDE + kk) / UNIT,
                              AS_STRIDE / UNIT, false);
            }
            [[unroll]] for (uint j = 0; j < FN; ++j) {
                coopMatLoadNV(b[j], Bs, (buf * BS_SIZE + kk * BS_STRIDE + wn * WTN + 16u * j) / UNIT,
                              BS_STRIDE / UNIT, false);
            }
            [[unroll]] for (uint i = 0; i < FM; ++i) {
                [[unroll]] for (uint j = 0; j < FN; ++j) {
#if LAB_NO_MMA
                    if (i == 0 && j == 0) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
#else
                    acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
#endif
                }
            }
        }
#if CM_DB
        // The other buffer was last read before the previous barrier: fill it, then one barrier.
        if (more) {
            stageSlab(buf ^ 1u);
        }
        barrier();
        buf ^= 1u;
#else
        barrier();
        if (more) {
            stageSlab(0u);
            barrier();
        }
#endif
    }

    const uint outBase = pc.slices > 1u ? slice * pc.M * pc.ldY : 0u;
    const bool first = slice == 0u;
    const bool addC = HAS_C != 0u && first;
    const uint staging = subgroup * 256u;
    const uint column = lane % 16u;
    [[unroll]] for (uint j = 0; j < FN; ++j) {
        const uint col = 4u * nb0 + wn * WTN + 16u * j + column;  // within this piece
        float bias = 0.0;
        if (first && col < pc.N) {
            bias = LAB_B(pc.K * pc.NB + col / 4u)[col % 4u];
        }
        [[unroll]] for (uint i = 0; i < FM; ++i) {
            coopMatStoreNV(acc[i][j], Cs, staging, 16u, false);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            const uint mBase = row0 + wm * WTM + 16u * i;
            for (uint r = lane / 16u; r < 16u; r += 2u) {
                uint m = mBase + r;
                if (m < pc.M && col < pc.N) {
                    float v = Cs[staging + r * 16u + column] + bias;
                    if (addC) {
                        v += pc.beta * C[m * pc.cStrideM + (pc.n0 + col) * pc.cStrideN];
                    }
                    Y[outBase + m * pc.ldY + pc.n0 + col] = activate(v, ACTIVATION);
                }
            }
            subgroupMemoryBarrierShared();
            subgroupBarrier();
        }
    }
}
