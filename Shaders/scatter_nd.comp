#version 450
// scatter_nd.comp — ONNX ScatterND: Y = X, then for every index tuple u in order, the slice of Y it addresses
// combined with updates[u] (REDUCTION: 0 none = replace, 1 add, 2 mul, 3 max, 4 min). Lowering:
// Lowering+Scatter.swift.
//
// Y viewed as [slices, sliceSize]; index tuple u (k int32 values, negative ones counted from the end) picks
// slice s(u) = Σ_j idx_j · stride_j over data's first k dimensions:
//
//   Y[s, e] = X[s, e] ⊕ U[u0, e] ⊕ U[u1, e] ⊕ …   for every u with s(u) = s, in the order of u
//
// One invocation per element of Y, each walking all index tuples: no write races and the order of duplicate
// indices is the one ONNX's reference applies, at a cost of count × updates × k reads (index tuples are few
// where models use ScatterND: masks and cache rows). groups = Lowering.groups1D(count, WG).
//
// Spec constants: 0 = WG, 1 = REDUCTION.
// Defines: SCATTER_INT=1 — int32 tensors (replace is a raw copy either way).
// Bindings: 0 = X, 1 = I (int32 [updates, k]), 2 = U, 3 = Y.
// Push: count sliceSize updates k dims[8] (data's first k dimensions).

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint REDUCTION = 0u;

#if defined(SCATTER_INT) && SCATTER_INT
#define VALUE int
#else
#define VALUE float
#endif

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { VALUE X[]; };
layout(std430, set = 0, binding = 1) readonly buffer IndexBuffer { int I[]; };
layout(std430, set = 0, binding = 2) readonly buffer UpdateBuffer { VALUE U[]; };
layout(std430, set = 0, binding = 3) writeonly buffer OutputBuffer { VALUE Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint sliceSize;
    uint updates;
    uint k;
    uint dims[8];
} pc;

VALUE combine(VALUE a, VALUE b) {
    switch (REDUCTION) {
    case 1u: return a + b;
    case 2u: return a * b;
    case 3u: return max(a, b);
    case 4u: return min(a, b);
    default: return b;
    }
}

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    const uint slice = i / pc.sliceSize;
    const uint element = i - slice * pc.sliceSize;
    VALUE v = X[i];
    for (uint u = 0u; u < pc.updates; ++u) {
        uint s = 0u;
        for (uint j = 0u; j < pc.k; ++j) {
            int idx = I[u * pc.k + j];
            int dim = int(pc.dims[j]);
            s = s * pc.dims[j] + uint(idx < 0 ? idx + dim : idx);
        }
        if (s == slice) {
            v = combine(v, U[u * pc.sliceSize + element]);
        }
    }
    Y[i] = v;
}
