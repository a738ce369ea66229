#version 450
// gemm_cm.comp — Y[M, N] = act(A[M, K] × B[K, N] + bias[N] + beta·C) with a constant B in a weight image, on
// the tensor cores through cooperative matrices (VK_NV_cooperative_matrix: fp16 × fp16 → fp32, 16 × 16 × 16,
// subgroup scope, subgroups of 32). The same interface as gemm_tiled.comp (bindings, push constants, split
// over K, column pieces, C); the lowering picks it only for bundles whose device has the units
// (Lowering+MatMul.swift, `Lowering.coopmatTile`), and the bundle then declares the requirement.
//
// GL_NV_cooperative_matrix, not GL_KHR_cooperative_matrix: the shader toolchain fmc links (Debian 12's shaderc
// 2023.2 / glslang 12) knows only the NV extension. The H200's driver offers both; the KHR path is a
// follow-up once the toolchain has it (the kernel body maps one to one: coopmat<…, gl_MatrixUseA/B/Accumulator>).
//
// A (fp32 activations) is rounded to fp16 as it is staged into shared memory (with CM_HALF_A it comes as rows of
// halves already, from to_half.comp, and is staged as it is); B is already fp16, in an rgba32ui
// image whose texels hold 8 halves each (ImageFormat.half8: row k of B is NB8 = ceil(NB / 2) texels, texel
// k · NB8 + j holding B[k, 8j .. 8j + 7], zero past N; the bias row follows at K · NB8) and is staged as the raw
// bits; products accumulate in fp32. (The same halves read as rgba16f texels and converted kept the staged kernel
// at 102 TFLOP/s against 175–186 on an H100: results/h100-gemm-lab-formats-2026-12-07.txt.)
//
// Work split — a workgroup of CM_WM × CM_WN subgroups owns a BM × BN tile of Y and walks K in slabs of BK;
// subgroup (wm, wn) owns a WTM × WTN sub-tile (WTM = BM / CM_WM, WTN = BN / CM_WN) held as FM × FN 16 × 16
// fp32 accumulators:
//
//             BN columns (BN / 4 texel blocks) ──────►
//           ┌───────────────┬───────────────┬──────
//    BM     │ subgroup 0,0  │ subgroup 0,1  │ …      As[BM][BK + 8]  fp16 rows of uvec4 ← A, 8 k per run
//    rows   │ FM × FN frags │               │        Bs[BK][BN + 8]  fp16 rows of uvec4 ← image, 1 texel per run
//           ├───────────────┼───────────────┤        per 16-deep k step a subgroup loads FM A and FN B
//           │ subgroup 1,0  │ …             │        fragments and does FM·FN coopMatMulAdd
//           └───────────────┴───────────────┘
//
// Staging moves runs of 8 halves: each invocation reads 8 consecutive k of one row of A (two vec4, converted to
// fp16) or one texel of one row of B and stores them as one uvec4 — one 16-byte shared store per run. (Runs of 4 stored as 4 halves or one uvec2 kept the kernel at 32–41 TFLOP/s on the H200 and
// H100; these runs, measured by Benchmarks/coopmat/gemm-lab on an H100, 98–101 TFLOP/s for 4096³ with the same
// fp32 A and image B: results/h100-gemm-lab-2026-12-07.txt.) Rows of BK + 8 (BN + 8) halves keep every run and
// fragment 16-byte aligned and spread rows over the shared-memory banks.
//
// The next slab is read from memory into registers while the current one is multiplied; with CM_DB it is then
// staged into the other of two shared buffers (one barrier per slab), else into the one buffer (two barriers).
// Edges (M, N, K not multiples of the tile) are zero-filled when staged and masked when stored.
//
// Epilogue: the bias (slice 0), C (slice 0, HAS_C) and the activation (unsplit), then Y[m · ldY + n0 + col] (or
// slice z's partial sums P[z][M][ldY]). A tile inside Y with 16-byte aligned rows (CM_DIRECT) stores each
// accumulator with one cooperative store, bias and C applied to the fragments; an edge tile sends each accumulator
// through a per-subgroup 16 × 16 fp32 staging area in shared memory, where lane l owns column l % 16 of rows
// l / 16 + 2t and writes only what is inside Y. The staging areas reuse As or Bs (CM_ALIAS_C), which the main
// loop no longer reads after its last barrier.
//
// groups = (ceil(NB / (BN / 4)), ceil(M / BM), SLICES). kPerSlice is a multiple of BK.
//
// Defines: WEIGHT_FORMAT (rgba32ui), CM_BM, CM_BN (tile), CM_WM, CM_WN (subgroup grid; the workgroup has 32 · CM_WM · CM_WN
// invocations), CM_BK (K per slab: 32 or 64), CM_DB (0/1: two shared buffers), CM_VECTOR_A (1: A is read as
// vec4 — strideK = 1 and strideM, K multiples of 4 —, 0: value by value through the strides), CM_HALF_A (1: A is
// rows of strideM halves, a multiple of 8, zero past K — to_half.comp's output —, read one uvec4 per run), CM_DIRECT
// and CM_ALIAS_C (the epilogue's paths above; CM_DIRECT 0 by default, the lowering sets it per tile
// (`CoopmatTile.directStores`); CM_ALIAS_C 1), CM_SWIZZLE (> 1: tiles are taken in groups of that many tile rows,
// column by column within a group, instead of row by row; 0 by default: ±0.4% on an H100,
// results/h100-gemm-lab-swizzle-2026-12-07.txt). The lowering checks that a slab splits into whole runs per
// invocation and that the tile fits shared memory (`CoopmatTile.invalidReason`). Spec constants: 0 = ACTIVATION,
// 1 = HAS_C.
// Bindings: 0 = A, 1 = weights (B, then bias), 2 = Y (or the partial sums), 3 = C (read only when HAS_C; the
// lowering binds A there otherwise).

#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require

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
#define CM_BK 64
#endif
#ifndef CM_DB
#define CM_DB 0
#endif
#ifndef CM_VECTOR_A
#define CM_VECTOR_A 0
#endif
#ifndef CM_HALF_A
#define CM_HALF_A 0
#endif
#ifndef CM_DIRECT
#define CM_DIRECT 0
#endif
#ifndef CM_SWIZZLE
#define CM_SWIZZLE 0
#endif
#ifndef CM_ALIAS_C
#define CM_ALIAS_C 1
#endif

#define SUBGROUPS (CM_WM * CM_WN)
#define WG (32 * SUBGROUPS)
#define WTM (CM_BM / CM_WM)        // rows of a subgroup's sub-tile
#define WTN (CM_BN / CM_WN)        // columns of a subgroup's sub-tile
#define FM (WTM / 16)              // accumulators along M per subgroup
#define FN (WTN / 16)              // accumulators along N per subgroup
#define BK CM_BK
#define ASTR ((BK + 8) / 8)        // uvec4 per staged A row
#define BSTR ((CM_BN + 8) / 8)     // uvec4 per staged B row
#define BNB (CM_BN / 4)            // texel blocks per tile
#define A_RUNS (CM_BM * BK / 8 / WG)   // runs of 8 k of A each invocation stages per slab
#define B_RUNS (BK * CM_BN / 8 / WG)   // texels of B each invocation stages per slab

layout(local_size_x = WG) in;
#include "common.glsl"

layout(constant_id = 0) const uint ACTIVATION = ACT_NONE;
layout(constant_id = 1) const uint HAS_C = 0;

#if CM_HALF_A
layout(std430, set = 0, binding = 0) readonly buffer AHalfBuffer { uvec4 A8[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer ABuffer { float A[]; };
// The same buffer read 4 values at a time (arena offsets are multiples of 256 bytes).
layout(std430, set = 0, binding = 0) readonly buffer A4Buffer { vec4 A4[]; };
#endif
layout(set = 0, binding = 1, WEIGHT_FORMAT) readonly uniform uimage2DArray weights;
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

#define AS_SIZE (CM_BM * ASTR)  // uvec4 per A buffer
#define BS_SIZE (BK * BSTR)      // uvec4 per B buffer
#if CM_DB
#define BUFFERS 2
#else
#define BUFFERS 1
#endif
shared uvec4 As[BUFFERS * AS_SIZE];
shared uvec4 Bs[BUFFERS * BS_SIZE];
// The epilogue's staging areas (16 × 16 fp32 per subgroup): with CM_ALIAS_C in the larger of As and Bs, which
// no subgroup reads after the main loop's last barrier, where it fits; else an array of their own.
#if CM_ALIAS_C && SUBGROUPS * 64 <= BUFFERS * BS_SIZE
#define CS_LOAD(i) uintBitsToFloat(Bs[(i) / 4u][(i) % 4u])
#define CS_STORE(acc, at) coopMatStoreNV(acc, Bs, (at) / 4u, 4u, false)
#define CS_STORE_FLOAT(i, v) Bs[(i) / 4u][(i) % 4u] = floatBitsToUint(v)
#define CS_LOAD_FRAGMENT(f, at) coopMatLoadNV(f, Bs, (at) / 4u, 4u, false)
#elif CM_ALIAS_C && SUBGROUPS * 64 <= BUFFERS * AS_SIZE
#define CS_LOAD(i) uintBitsToFloat(As[(i) / 4u][(i) % 4u])
#define CS_STORE(acc, at) coopMatStoreNV(acc, As, (at) / 4u, 4u, false)
#define CS_STORE_FLOAT(i, v) As[(i) / 4u][(i) % 4u] = floatBitsToUint(v)
#define CS_LOAD_FRAGMENT(f, at) coopMatLoadNV(f, As, (at) / 4u, 4u, false)
#else
shared float Cs[SUBGROUPS * 256];
#define CS_LOAD(i) Cs[i]
#define CS_STORE(acc, at) coopMatStoreNV(acc, Cs, at, 16u, false)
#define CS_STORE_FLOAT(i, v) Cs[i] = v
#define CS_LOAD_FRAGMENT(f, at) coopMatLoadNV(f, Cs, at, 16u, false)
#endif

#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

uvec4 aStage[A_RUNS];
uvec4 bStage[B_RUNS];

uvec2 packHalf4(vec4 v) {
    return uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw));
}

// Values k .. k + 7 of row m of A as fp16; `guarded`: zeros outside M and [k, kEnd), else the run is inside.
uvec4 readA(uint m, uint k, uint kEnd, bool guarded) {
#if CM_HALF_A
    // k is a multiple of 8 and the row is zero past K, so a run is inside or outside as a whole.
    bool inside = !guarded || (m < pc.M && k < kEnd);
    return inside ? A8[(m * pc.strideM + k) / 8u] : uvec4(0u);
#elif CM_VECTOR_A
    // strideK = 1 and K, strideM, kEnd multiples of 4: each half of the run is inside or outside as a whole.
    bool lo = !guarded || (m < pc.M && k < kEnd), hi = !guarded || (m < pc.M && k + 4u < kEnd);
    uint base = (m * pc.strideM + k) / 4u;
    vec4 a = A4[lo ? base : 0u], b = A4[hi ? base + 1u : 0u];
    return uvec4(packHalf4(lo ? a : vec4(0.0)), packHalf4(hi ? b : vec4(0.0)));
#else
    float v[8];
    [[unroll]] for (uint j = 0; j < 8u; ++j) {
        bool inside = !guarded || (m < pc.M && k + j < kEnd);
        float a = A[inside ? m * pc.strideM + (k + j) * pc.strideK : 0u];
        v[j] = inside ? a : 0.0;
    }
    return uvec4(packHalf2x16(vec2(v[0], v[1])), packHalf2x16(vec2(v[2], v[3])),
                 packHalf2x16(vec2(v[4], v[5])), packHalf2x16(vec2(v[6], v[7])));
#endif
}

// Columns 4nb .. 4nb + 7 of row k of B (nb even: one texel); `guarded`: zeros outside NB and [.., kEnd), else
// inside. Columns past N in the texel are zeros already.
uvec4 readB(uint k, uint nb, uint kEnd, bool guarded) {
    const uint nb8 = (pc.NB + 1u) / 2u;
    bool inside = !guarded || (k < kEnd && nb < pc.NB);
    uvec4 w = WEIGHT_AT(weights, inside ? k * nb8 + nb / 2u : 0u, pc.log2W, pc.log2H);
    return inside ? w : uvec4(0u);
}

// Reads slab k0 of A and B into registers. A slab inside M, NB and [.., kEnd) (the same answer in every
// invocation) is read without per-run guards.
void readSlab(uint k0, uint kEnd, uint row0, uint nb0) {
    const uint lid = gl_LocalInvocationID.x;
    if (row0 + CM_BM <= pc.M && nb0 + BNB <= pc.NB && k0 + BK <= kEnd) {
        [[unroll]] for (uint i = 0; i < A_RUNS; ++i) {
            uint idx = lid + WG * i;
            aStage[i] = readA(row0 + idx / (BK / 8), k0 + 8u * (idx % (BK / 8)), kEnd, false);
        }
        [[unroll]] for (uint j = 0; j < B_RUNS; ++j) {
            uint idx = lid + WG * j;
            bStage[j] = readB(k0 + idx / (CM_BN / 8), nb0 + 2u * (idx % (CM_BN / 8)), kEnd, false);
        }
    } else {
        [[unroll]] for (uint i = 0; i < A_RUNS; ++i) {
            uint idx = lid + WG * i;
            aStage[i] = readA(row0 + idx / (BK / 8), k0 + 8u * (idx % (BK / 8)), kEnd, true);
        }
        [[unroll]] for (uint j = 0; j < B_RUNS; ++j) {
            uint idx = lid + WG * j;
            bStage[j] = readB(k0 + idx / (CM_BN / 8), nb0 + 2u * (idx % (CM_BN / 8)), kEnd, true);
        }
    }
}

// Writes the registers of readSlab into buffer `buf` of As and Bs.
void stageSlab(uint buf) {
    const uint lid = gl_LocalInvocationID.x;
    [[unroll]] for (uint i = 0; i < A_RUNS; ++i) {
        uint idx = lid + WG * i;
        As[buf * AS_SIZE + (idx / (BK / 8)) * ASTR + idx % (BK / 8)] = aStage[i];
    }
    [[unroll]] for (uint j = 0; j < B_RUNS; ++j) {
        uint idx = lid + WG * j;
        Bs[buf * BS_SIZE + (idx / (CM_BN / 8)) * BSTR + idx % (CM_BN / 8)] = bStage[j];
    }
}

void main() {
    const uint subgroup = gl_SubgroupID;
    const uint lane = gl_SubgroupInvocationID;
    const uint wm = subgroup / CM_WN;
    const uint wn = subgroup % CM_WN;
#if CM_SWIZZLE > 1
    // Tiles in launch order (x fastest) walk groups of CM_SWIZZLE tile rows column by column, so the workgroups
    // resident at once share rows of A and columns of B in the L2 cache.
    const uint tilesN = gl_NumWorkGroups.x, tilesM = gl_NumWorkGroups.y;
    const uint launch = gl_WorkGroupID.y * tilesN + gl_WorkGroupID.x;
    const uint groupFirst = launch / (CM_SWIZZLE * tilesN) * CM_SWIZZLE;
    const uint groupRows = min(tilesM - groupFirst, uint(CM_SWIZZLE));
    const uint inGroup = launch % (CM_SWIZZLE * tilesN);
    const uint row0 = (groupFirst + inGroup % groupRows) * CM_BM;
    const uint nb0 = (inGroup / groupRows) * BNB;
#else
    const uint row0 = gl_WorkGroupID.y * CM_BM;
    const uint nb0 = gl_WorkGroupID.x * BNB;
#endif
    const uint slice = gl_WorkGroupID.z;
    const uint kBegin = slice * pc.kPerSlice;
    const uint kEnd = min(pc.K, kBegin + pc.kPerSlice);

    ACC acc[FM][FN];
    [[unroll]] for (uint i = 0; i < FM; ++i) {
        [[unroll]] for (uint j = 0; j < FN; ++j) {
            acc[i][j] = ACC(0.0);
        }
    }

    readSlab(kBegin, kEnd, row0, nb0);
    stageSlab(0u);
    barrier();
    uint buf = 0u;
    for (uint k0 = kBegin; k0 < kEnd; k0 += BK) {
        const bool more = k0 + BK < kEnd;  // the same in every invocation: barriers stay in uniform control flow
        if (more) {
            readSlab(k0 + BK, kEnd, row0, nb0);
        }
        [[unroll]] for (uint kk = 0; kk < BK; kk += 16u) {
            HALF a[FM];
            HALF b[FN];
            [[unroll]] for (uint i = 0; i < FM; ++i) {
                coopMatLoadNV(a[i], As, buf * AS_SIZE + (wm * WTM + 16u * i) * ASTR + kk / 8u, ASTR, false);
            }
            [[unroll]] for (uint j = 0; j < FN; ++j) {
                coopMatLoadNV(b[j], Bs, buf * BS_SIZE + kk * BSTR + (wn * WTN + 16u * j) / 8u, BSTR, false);
            }
            [[unroll]] for (uint i = 0; i < FM; ++i) {
                [[unroll]] for (uint j = 0; j < FN; ++j) {
                    acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
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
#if CM_DIRECT
    // A tile inside Y whose rows (and C's) start on 16 bytes: each accumulator goes to Y with one cooperative
    // store; C (beta · C, loaded the same way: an fp32 fragment of the same shape holds its elements where the
    // accumulator holds theirs), the bias (a 16 × 16 fragment of the bias row repeated, built in the staging area)
    // and the activation (element by element) are applied to the fragments. The same answer in every invocation.
    const uint colBase = 4u * nb0 + wn * WTN;  // this subgroup's first column, within the piece
    if (row0 + CM_BM <= pc.M && 4u * nb0 + CM_BN <= pc.N && pc.ldY % 4u == 0u && pc.n0 % 4u == 0u
        && (!addC || (pc.cStrideN == 1u && pc.cStrideM % 4u == 0u))) {
        [[unroll]] for (uint j = 0; j < FN; ++j) {
            ACC bias = ACC(0.0);
            if (first) {
                const uint col = colBase + 16u * j + column;
                uint pair = WEIGHT_AT(weights, pc.K * ((pc.NB + 1u) / 2u) + col / 8u, pc.log2W, pc.log2H)[(col % 8u) / 2u];
                const float b = unpackHalf2x16(pair)[col % 2u];
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                for (uint r = lane / 16u; r < 16u; r += 2u) {
                    CS_STORE_FLOAT(staging + r * 16u + column, b);
                }
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                CS_LOAD_FRAGMENT(bias, staging);
            }
            [[unroll]] for (uint i = 0; i < FM; ++i) {
                const uint m = row0 + wm * WTM + 16u * i;
                // Element by element (the same element of two fragments of one type is the same position): glslang
                // 12 fails on a sum of two cooperative matrices.
                ACC v = acc[i][j];
                ACC c;
                if (addC) {
                    coopMatLoadNV(c, C, m * pc.cStrideM + pc.n0 + colBase + 16u * j, pc.cStrideM, false);
                }
                for (int e = 0; e < v.length(); ++e) {
                    float x = v[e] + bias[e];
                    if (addC) {
                        x += pc.beta * c[e];
                    }
                    v[e] = activate(x, ACTIVATION);
                }
                coopMatStoreNV(v, Y, outBase + m * pc.ldY + pc.n0 + colBase + 16u * j, pc.ldY, false);
            }
        }
        return;
    }
#endif
    [[unroll]] for (uint j = 0; j < FN; ++j) {
        const uint col = 4u * nb0 + wn * WTN + 16u * j + column;  // within this piece
        float bias = 0.0;
        if (first && col < pc.N) {
            uint pair = WEIGHT_AT(weights, pc.K * ((pc.NB + 1u) / 2u) + col / 8u, pc.log2W, pc.log2H)[(col % 8u) / 2u];
            bias = unpackHalf2x16(pair)[col % 2u];
        }
        [[unroll]] for (uint i = 0; i < FM; ++i) {
            CS_STORE(acc[i][j], staging);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            const uint mBase = row0 + wm * WTM + 16u * i;
            for (uint r = lane / 16u; r < 16u; r += 2u) {
                uint m = mBase + r;
                if (m < pc.M && col < pc.N) {
                    float v = CS_LOAD(staging + r * 16u + column) + bias;
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
