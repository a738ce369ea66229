#version 450
// copy_strided.comp — the data-movement kernel: Y[outOffset + Σ c_d·outStride[d]] = X[inOffset + Σ c_d·inStride[d]]
// for every coordinate c of `shape`. One kernel covers Transpose, Slice (negative steps: negative strides),
// Expand (stride 0), Tile (each tiled dim split in two: repeats with stride 0, then the input dim), Split (one
// dispatch per output, an input offset), Concat (one dispatch per input into a region of the output: out
// offset + the output's strides) and Gather with constant, evenly spaced indices.
// Lowering: Lowering+Movement.swift (CopyPlan decides the strides; coalescing leaves at most MAX_RANK dims).
//
//   i ──► c = (c0 … c[rank-1]) of `shape` (innermost last)
//     ──► src = inOffset + Σ c_d·inStride[d],   dst = outOffset + Σ c_d·outStride[d]
//
// Words are copied as raw 32-bit patterns, so one variant serves fp32 and int32 (int64 / bool) tensors.
// One invocation per element; groups = Lowering.groups1D(count, WG) (x, y grid).
//
// Spec constants: 0 = WG.
// Bindings: 0 = X, 1 = Y.
// Push: count rank inOffset outOffset shape[6] inStride[6] outStride[6] (strides and offsets signed).
// The COPY_ROLE define (transpose, slice, concat, …) does not change the code: it names the kernel after the
// op it serves, so `fmc inspect` can count the copies that remain by their kernel name.

layout(local_size_x_id = 0) in;
#include "common.glsl"

#define MAX_RANK 6

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { uint X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { uint Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint rank;                 // ≤ MAX_RANK
    int inOffset;
    int outOffset;
    uint shape[MAX_RANK];      // innermost at rank-1
    int inStride[MAX_RANK];
    int outStride[MAX_RANK];
} pc;                          // 88 bytes

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    uint rest = i;
    int src = pc.inOffset;
    int dst = pc.outOffset;
    for (int d = int(pc.rank) - 1; d >= 0; --d) {
        uint extent = pc.shape[d];
        uint q = rest / extent;
        int c = int(rest - q * extent);
        rest = q;
        src += c * pc.inStride[d];
        dst += c * pc.outStride[d];
    }
    Y[dst] = X[src];
}
