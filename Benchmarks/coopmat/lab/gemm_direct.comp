#version 450
// gemm_direct.comp (gemm-lab) — Y[M, N] = A[M, K] × B[K, N], fp16 row-major storage buffers, every fragment
// loaded by coopMatLoadNV straight from global memory (no shared memory: reuse within a workgroup is left to the
// L1 cache). Subgroup (wm, wn) of a WM × WN grid owns FM × FN fragments. M, N, K multiples of the tile.
// Defines: FM, FN, WM, WN.
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require
#ifndef FM
#define FM 4
#endif
#ifndef FN
#define FN 2
#endif
#ifndef WM
#define WM 2
#endif
#ifndef WN
#define WN 4
#endif
#define BM (16 * FM * WM)
#define BN (16 * FN * WN)
layout(local_size_x = 32 * WM * WN) in;
layout(std430, set = 0, binding = 0) readonly buffer ABuffer { float16_t A[]; };
layout(std430, set = 0, binding = 1) readonly buffer BBuffer { float16_t B[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };
layout(push_constant) uniform PushConstants {
    uint M, N, K, NB, strideM, strideK, kPerSlice, slices, log2W, log2H;
    float beta;
    uint cStrideM, cStrideN, n0, ldY;
} pc;
#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>
void main() {
    const uint m0 = gl_WorkGroupID.y * BM + (gl_SubgroupID / WN) * 16u * FM;
    const uint n0 = gl_WorkGroupID.x * BN + (gl_SubgroupID % WN) * 16u * FN;
    ACC acc[FM][FN];
    [[unroll]] for (uint i = 0; i < FM; ++i) {
        [[unroll]] for (uint j = 0; j < FN; ++j) {
            acc[i][j] = ACC(0.0);
        }
    }
    for (uint k = 0u; k < pc.K; k += 16u) {
        HALF a[FM];
        HALF b[FN];
        [[unroll]] for (uint i = 0; i < FM; ++i) {
            coopMatLoadNV(a[i], A, (m0 + 16u * i) * pc.K + k, pc.K, false);
        }
        [[unroll]] for (uint j = 0; j < FN; ++j) {
            coopMatLoadNV(b[j], B, k * pc.N + n0 + 16u * j, pc.N, false);
        }
        [[unroll]] for (uint i = 0; i < FM; ++i) {
            [[unroll]] for (uint j = 0; j < FN; ++j) {
                acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
            }
        }
    }
    [[unroll]] for (uint i = 0; i < FM; ++i) {
        [[unroll]] for (uint j = 0; j < FN; ++j) {
            coopMatStoreNV(acc[i][j], Y, (m0 + 16u * i) * pc.N + n0 + 16u * j, pc.N, false);
        }
    }
}
