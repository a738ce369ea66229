#version 450
// gemm_staged.comp (gemm-lab) — Y[M, N] = A[M, K] × B[K, N] with A and B in fp16 storage buffers (row-major; B is
// the weight texels' order), staged into shared memory 8 halves (one uvec4) per load with no conversion, and
// multiplied by cooperative matrices loaded from there (VK_NV_cooperative_matrix 16 × 16 × 16, fp32 accumulators).
// The next slab is read into registers while the current one is multiplied; LAB_DB = 1 stages it into a second
// shared buffer (one barrier per slab). M, N and K must be multiples of BM, BN and BK (a lab kernel: no edges, no
// bias). Defines: BM, BN, BK, WM, WN (subgroup grid), LAB_DB; LAB_A32 reads A as fp32 (two vec4 per staged
// uvec4, converted), LAB_B_IMAGE = 1 reads B from the rgba16f weight image (two texels per staged uvec4,
// converted), as gemm_cm.comp does; = 2 from the same texels as rg32ui (raw bits, `--b-format rg32ui`), = 3 from
// 16-byte rgba32ui texels of 8 halves each (one load per staged uvec4, `--b-format rgba32ui`).
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require

#ifndef BM
#define BM 128
#endif
#ifndef BN
#define BN 128
#endif
#ifndef BK
#define BK 32
#endif
#ifndef WM
#define WM 2
#endif
#ifndef WN
#define WN 4
#endif
#ifndef LAB_DB
#define LAB_DB 0
#endif
#define WG (32 * WM * WN)
#define WTM (BM / WM)
#define WTN (BN / WN)
#define FM (WTM / 16)
#define FN (WTN / 16)
#define ASTR ((BK + 8) / 8)          // uvec4 per staged A row
#define BSTR ((BN + 8) / 8)          // uvec4 per staged B row
#define A_LOADS (BM * BK / 8 / WG)
#define B_LOADS (BK * BN / 8 / WG)
#define AS_SIZE (BM * ASTR)
#define BS_SIZE (BK * BSTR)
#if LAB_DB
#define BUFFERS 2
#else
#define BUFFERS 1
#endif

layout(local_size_x = WG) in;
layout(push_constant) uniform PushConstants {
    uint M, N, K, NB, strideM, strideK, kPerSlice, slices, log2W, log2H;
    float beta;
    uint cStrideM, cStrideN, n0, ldY;
} pc;
#ifndef LAB_A32
#define LAB_A32 0
#endif
#ifndef LAB_B_IMAGE
#define LAB_B_IMAGE 0
#endif
#if LAB_A32
layout(std430, set = 0, binding = 0) readonly buffer ABuffer { vec4 A4[]; };
#define LOAD_A(i) uvec4(packHalf2x16(A4[2u * (i)].xy), packHalf2x16(A4[2u * (i)].zw), \
                        packHalf2x16(A4[2u * (i) + 1u].xy), packHalf2x16(A4[2u * (i) + 1u].zw))
#else
layout(std430, set = 0, binding = 0) readonly buffer ABuffer { uvec4 A8[]; };
#define LOAD_A(i) A8[i]
#endif
#if LAB_B_IMAGE == 1
#define WEIGHT_FORMAT rgba16f
#include "common.glsl"
layout(set = 0, binding = 1, WEIGHT_FORMAT) readonly uniform image2DArray weights;
uvec4 loadB(uint i) {
    vec4 lo = WEIGHT_AT(weights, 2u * i, pc.log2W, pc.log2H), hi = WEIGHT_AT(weights, 2u * i + 1u, pc.log2W, pc.log2H);
    return uvec4(packHalf2x16(lo.xy), packHalf2x16(lo.zw), packHalf2x16(hi.xy), packHalf2x16(hi.zw));
}
#define LOAD_B(i) loadB(i)
#elif LAB_B_IMAGE == 2
#define WEIGHT_FORMAT rg32ui
#include "common.glsl"
layout(set = 0, binding = 1, WEIGHT_FORMAT) readonly uniform uimage2DArray weights;
uvec4 loadB(uint i) {
    return uvec4(WEIGHT_AT(weights, 2u * i, pc.log2W, pc.log2H).xy, WEIGHT_AT(weights, 2u * i + 1u, pc.log2W, pc.log2H).xy);
}
#define LOAD_B(i) loadB(i)
#elif LAB_B_IMAGE == 3
#define WEIGHT_FORMAT rgba32ui
#include "common.glsl"
layout(set = 0, binding = 1, WEIGHT_FORMAT) readonly uniform uimage2DArray weights;
#define LOAD_B(i) WEIGHT_AT(weights, (i), pc.log2W, pc.log2H)
#else
layout(std430, set = 0, binding = 1) readonly buffer BBuffer { uvec4 B8[]; };
#define LOAD_B(i) B8[i]
#endif
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };

shared uvec4 As[BUFFERS * AS_SIZE];
shared uvec4 Bs[BUFFERS * BS_SIZE];

#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

void main() {
    const uint lid = gl_LocalInvocationID.x;
    const uint wm = gl_SubgroupID / WN;
    const uint wn = gl_SubgroupID % WN;
    const uint row0 = gl_WorkGroupID.y * BM;
    const uint col0 = gl_WorkGroupID.x * BN;
    const uint K8 = pc.K / 8u, N8 = pc.N / 8u;

    ACC acc[FM][FN];
    [[unroll]] for (uint i = 0; i < FM; ++i) {
        [[unroll]] for (uint j = 0; j < FN; ++j) {
            acc[i][j] = ACC(0.0);
        }
    }
    uvec4 aReg[A_LOADS];
    uvec4 bReg[B_LOADS];
    [[unroll]] for (uint i = 0; i < A_LOADS; ++i) {
        uint idx = lid + WG * i;
        aReg[i] = LOAD_A((row0 + idx / (BK / 8)) * K8 + idx % (BK / 8));
    }
    [[unroll]] for (uint j = 0; j < B_LOADS; ++j) {
        uint idx = lid + WG * j;
        bReg[j] = LOAD_B((idx / (BN / 8)) * N8 + col0 / 8u + idx % (BN / 8));
    }
    [[unroll]] for (uint i = 0; i < A_LOADS; ++i) {
        uint idx = lid + WG * i;
        As[(idx / (BK / 8)) * ASTR + idx % (BK / 8)] = aReg[i];
    }
    [[unroll]] for (uint j = 0; j < B_LOADS; ++j) {
        uint idx = lid + WG * j;
        Bs[(idx / (BN / 8)) * BSTR + idx % (BN / 8)] = bReg[j];
    }
    barrier();
    uint buf = 0u;
    for (uint k0 = 0u; k0 < pc.K; k0 += BK) {
        const bool more = k0 + BK < pc.K;
        if (more) {
            [[unroll]] for (uint i = 0; i < A_LOADS; ++i) {
                uint idx = lid + WG * i;
                aReg[i] = LOAD_A((row0 + idx / (BK / 8)) * K8 + (k0 + BK) / 8u + idx % (BK / 8));
            }
            [[unroll]] for (uint j = 0; j < B_LOADS; ++j) {
                uint idx = lid + WG * j;
                bReg[j] = LOAD_B((k0 + BK + idx / (BN / 8)) * N8 + col0 / 8u + idx % (BN / 8));
            }
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
#if LAB_DB
        const uint next = buf ^ 1u;
#else
        const uint next = 0u;
        barrier();
#endif
        if (more) {
            [[unroll]] for (uint i = 0; i < A_LOADS; ++i) {
                uint idx = lid + WG * i;
                As[next * AS_SIZE + (idx / (BK / 8)) * ASTR + idx % (BK / 8)] = aReg[i];
            }
            [[unroll]] for (uint j = 0; j < B_LOADS; ++j) {
                uint idx = lid + WG * j;
                Bs[next * BS_SIZE + (idx / (BN / 8)) * BSTR + idx % (BN / 8)] = bReg[j];
            }
        }
        barrier();
        buf = next;
    }
    [[unroll]] for (uint i = 0; i < FM; ++i) {
        [[unroll]] for (uint j = 0; j < FN; ++j) {
            coopMatStoreNV(acc[i][j], Y, (row0 + wm * WTM + 16u * i) * pc.N + col0 + wn * WTN + 16u * j, pc.N, false);
        }
    }
}
