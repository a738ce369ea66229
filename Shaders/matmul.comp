#version 450
// matmul.comp — batched Y[b, M, N] = act(A[b, M, K] × B[b, K, N]) with both operands in the arena
// (ONNX MatMul of two activations, numpy broadcasting of the batch dims). Lowering: Lowering+MatMul.swift.
//
// Classic shared-memory tiling, one TILE × TILE output tile per workgroup of TILE × TILE invocations:
//
//          K ──────────►                 N ──────────►
//     M  ┌────┬────┬────┐           K  ┌────┐
//     │  │ As │ ─► │    │   ×       │  │ Bs │   each step loads one TILE × TILE tile of A and of B
//     ▼  └────┴────┴────┘           ▼  │ │  │   into shared memory, then every invocation does TILE FMAs
//                                      │ ▼  │
//                                      └────┘
//
// groups = (ceil(N / TILE), ceil(M / TILE), batch). Batch index z is split over up to 4 output batch dims
// (innermost last); each operand has its own element stride per batch dim (0 where it is broadcast).
// A 1-D operand is handled by the lowering as M = 1 / N = 1 with contiguous rows.
//
// Defines: MATMUL_TILE (default 16; workgroup = TILE × TILE).
// Spec constants: 0 = ACTIVATION.
// Bindings: 0 = A, 1 = B, 2 = Y.

#ifndef MATMUL_TILE
#define MATMUL_TILE 16
#endif
layout(local_size_x = MATMUL_TILE, local_size_y = MATMUL_TILE) in;
#include "common.glsl"

layout(constant_id = 0) const uint ACTIVATION = ACT_NONE;

layout(std430, set = 0, binding = 0) readonly buffer ABuffer { float A[]; };
layout(std430, set = 0, binding = 1) readonly buffer BBuffer { float B[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };

layout(push_constant) uniform PushConstants {
    uint M, N, K;
    uint batchShape[4];   // output batch dims, innermost last; unused dims are 1
    uint aBatchStride[4]; // element strides of A per batch dim (0: broadcast)
    uint bBatchStride[4];
} pc;

shared float As[MATMUL_TILE][MATMUL_TILE];
shared float Bs[MATMUL_TILE][MATMUL_TILE];

void main() {
    const uint tx = gl_LocalInvocationID.x;
    const uint ty = gl_LocalInvocationID.y;
    const uint col = gl_WorkGroupID.x * MATMUL_TILE + tx;
    const uint row = gl_WorkGroupID.y * MATMUL_TILE + ty;

    uint batch = gl_WorkGroupID.z;
    uint aBase = 0;
    uint bBase = 0;
    for (int d = 3; d >= 0; --d) {
        uint i = batch % pc.batchShape[d];
        batch /= pc.batchShape[d];
        aBase += i * pc.aBatchStride[d];
        bBase += i * pc.bBatchStride[d];
    }

    float acc = 0.0;
    for (uint k0 = 0; k0 < pc.K; k0 += MATMUL_TILE) {
        uint ka = k0 + tx;
        uint kb = k0 + ty;
        // Clamped index + select: never an out-of-range load, even if the select is flattened.
        bool aIn = row < pc.M && ka < pc.K;
        bool bIn = kb < pc.K && col < pc.N;
        float a = A[aIn ? aBase + row * pc.K + ka : 0u];
        float b = B[bIn ? bBase + kb * pc.N + col : 0u];
        As[ty][tx] = aIn ? a : 0.0;
        Bs[ty][tx] = bIn ? b : 0.0;
        barrier();
        for (uint k = 0; k < MATMUL_TILE; ++k) {
            acc += As[ty][k] * Bs[k][tx];
        }
        barrier();
    }

    if (row < pc.M && col < pc.N) {
        Y[(gl_WorkGroupID.z * pc.M + row) * pc.N + col] = activate(acc, ACTIVATION);
    }
}
