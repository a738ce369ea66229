#version 450
// matmul_cm.comp — batched Y[b, M, N] = act(alpha · A[b, M, K] × B[b, K, N] + beta · C) with both operands in the
// arena, on the tensor cores through cooperative matrices (VK_NV_cooperative_matrix: fp16 × fp16 → fp32,
// 16 × 16 × 16, subgroup scope, subgroups of 32). The same interface as matmul.comp (bindings, push constants,
// batch dims, strided operands, C, alpha); the lowering picks it for fp16 bundles whose device has the units
// (Lowering+MatMul.swift, `emitMatMul`): the products of two activations, e.g. an unfused attention's Q × Kᵀ and
// P × V. A and B are rounded to fp16 as they are staged into shared memory; products accumulate in fp32.
//
// Work split — a workgroup of 2 × 2 subgroups owns a 64 × 64 tile of one batch's Y and walks K in slabs of
// BK = 32; subgroup (wm, wn) owns a 32 × 32 sub-tile held as 2 × 2 fp32 accumulators:
//
//        As[64][BK + 8]  fp16, row-major   ← A, staged with neighbouring invocations along k
//        Bs[BK][64 + 8]  fp16, row-major   ← B, staged along n, or along k when B's k stride is 1 and its n
//                                            stride is not (Kᵀ read in place): the coalesced direction either way
//   per 16-deep k step a subgroup loads 2 A and 2 B fragments and does 4 coopMatMulAdd.
//
// The next slab is read from memory into registers while the current one is multiplied, then staged after a
// barrier. Rows of 8 extra halves keep every fragment 16-byte aligned. Edges (M, N, K not multiples of the tile)
// are zero-filled when staged and masked when stored.
//
// Epilogue: each accumulator goes through a per-subgroup 16 × 16 fp32 staging area in shared memory; lane l then
// owns column l % 16 of rows l / 16 + 2t and writes act(alpha · v + beta · C) (C when HAS_C) to Y.
//
// groups = (ceil(N / 64), ceil(M / 64), batch). Spec constants: 0 = ACTIVATION, 1 = HAS_C (0 or 1).
// Bindings: 0 = A, 1 = B, 2 = Y, 3 = C (read only when HAS_C; the lowering binds A there otherwise).

#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require

#define BM 64u
#define BN 64u
#define BK 32u
#define WG 128u                      // 4 subgroups of 32
#define SUBGROUPS 4u
#define WT 32u                       // a subgroup's sub-tile is WT × WT
#define F 2u                         // accumulators per subgroup along M and along N
#define AS_STRIDE (BK + 8u)          // halves per staged A row
#define BS_STRIDE (BN + 8u)          // halves per staged B row
#define PER (BM * BK / WG)           // values of A (and of B) each invocation stages per slab: 16

layout(local_size_x = 128) in;
#include "common.glsl"

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
} pc;                         // 128 bytes (the same block as matmul.comp)

shared float16_t As[BM * AS_STRIDE];
shared float16_t Bs[BK * BS_STRIDE];
shared float Cs[SUBGROUPS * 256u];

#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

float aStage[PER];
float bStage[PER];

// Where value i of this invocation's share of a slab sits: A (row r, depth kk); B (depth kb, column c).
uvec2 aSlot(uint i) {
    uint idx = gl_LocalInvocationID.x + WG * i;
    return uvec2(idx / BK, idx % BK);
}

uvec2 bSlot(uint i, bool alongK) {
    uint idx = gl_LocalInvocationID.x + WG * i;
    return alongK ? uvec2(idx % BK, idx / BK) : uvec2(idx / BN, idx % BN);
}

// Reads slab k0 of A and B into registers (zeros outside M, N and K).
void readSlab(uint k0, uint row0, uint col0, uint aBase, uint bBase, bool alongK) {
    [[unroll]] for (uint i = 0; i < PER; ++i) {
        uvec2 s = aSlot(i);
        bool inside = row0 + s.x < pc.M && k0 + s.y < pc.K;
        float a = A[inside ? aBase + (row0 + s.x) * pc.aStrideM + (k0 + s.y) * pc.aStrideK : 0u];
        aStage[i] = inside ? a : 0.0;
    }
    [[unroll]] for (uint i = 0; i < PER; ++i) {
        uvec2 s = bSlot(i, alongK);
        bool inside = k0 + s.x < pc.K && col0 + s.y < pc.N;
        float b = B[inside ? bBase + (k0 + s.x) * pc.bStrideK + (col0 + s.y) * pc.bStrideN : 0u];
        bStage[i] = inside ? b : 0.0;
    }
}

// Writes the registers of readSlab into As and Bs as fp16.
void stageSlab(bool alongK) {
    [[unroll]] for (uint i = 0; i < PER; ++i) {
        uvec2 s = aSlot(i);
        As[s.x * AS_STRIDE + s.y] = float16_t(aStage[i]);
    }
    [[unroll]] for (uint i = 0; i < PER; ++i) {
        uvec2 s = bSlot(i, alongK);
        Bs[s.x * BS_STRIDE + s.y] = float16_t(bStage[i]);
    }
}

void main() {
    const uint subgroup = gl_SubgroupID;
    const uint lane = gl_SubgroupInvocationID;
    const uint wm = subgroup / 2u;
    const uint wn = subgroup % 2u;
    const uint row0 = gl_WorkGroupID.y * BM;
    const uint col0 = gl_WorkGroupID.x * BN;
    const bool alongK = pc.bStrideK == 1u && pc.bStrideN != 1u;  // uniform: the same in every invocation

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

    ACC acc[F][F];
    [[unroll]] for (uint i = 0; i < F; ++i) {
        [[unroll]] for (uint j = 0; j < F; ++j) {
            acc[i][j] = ACC(0.0);
        }
    }

    readSlab(0u, row0, col0, aBase, bBase, alongK);
    stageSlab(alongK);
    barrier();
    for (uint k0 = 0; k0 < pc.K; k0 += BK) {
        const bool more = k0 + BK < pc.K;  // uniform: barriers stay in uniform control flow
        if (more) {
            readSlab(k0 + BK, row0, col0, aBase, bBase, alongK);
        }
        [[unroll]] for (uint kk = 0; kk < BK; kk += 16u) {
            HALF a[F];
            HALF b[F];
            [[unroll]] for (uint i = 0; i < F; ++i) {
                coopMatLoadNV(a[i], As, (wm * WT + 16u * i) * AS_STRIDE + kk, AS_STRIDE, false);
            }
            [[unroll]] for (uint j = 0; j < F; ++j) {
                coopMatLoadNV(b[j], Bs, kk * BS_STRIDE + wn * WT + 16u * j, BS_STRIDE, false);
            }
            [[unroll]] for (uint i = 0; i < F; ++i) {
                [[unroll]] for (uint j = 0; j < F; ++j) {
                    acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
                }
            }
        }
        barrier();
        if (more) {
            stageSlab(alongK);
            barrier();
        }
    }

    const uint staging = subgroup * 256u;
    const uint column = lane % 16u;
    [[unroll]] for (uint j = 0; j < F; ++j) {
        const uint col = col0 + wn * WT + 16u * j + column;
        [[unroll]] for (uint i = 0; i < F; ++i) {
            coopMatStoreNV(acc[i][j], Cs, staging, 16u, false);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            const uint mBase = row0 + wm * WT + 16u * i;
            for (uint r = lane / 16u; r < 16u; r += 2u) {
                uint m = mBase + r;
                if (m < pc.M && col < pc.N) {
                    float v = pc.alpha * Cs[staging + r * 16u + column];
                    if (HAS_C != 0u) {
                        v += pc.beta * C[m * pc.cStrideM + col * pc.cStrideN];
                    }
                    Y[yBase + m * pc.yStrideM + col * pc.yStrideN] = activate(v, ACTIVATION);
                }
            }
            subgroupMemoryBarrierShared();
            subgroupBarrier();
        }
    }
}
