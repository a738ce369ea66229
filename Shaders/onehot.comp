#version 450
// onehot.comp — ONNX OneHot: Y[o, d, i] = (I[o, i] wrapped by depth == d) ? on : off, for the output viewed as
// [outer, depth, inner] around the inserted axis. An index outside [-depth, depth) matches no d (a row of
// off_value), as onnxruntime and ONNX's reference do. Lowering: Lowering+Scatter.swift.
//
// Words of V and Y are copied raw (any 32-bit value dtype). One invocation per output element;
// groups = Lowering.groups1D(count, WG).
//
// Spec constants: 0 = WG.
// Defines: ONEHOT_FLOAT=1 — float indices (truncated toward zero, as ONNX casts them), else int32.
// Bindings: 0 = I, 1 = V ([off, on]), 2 = Y.
// Push: count depth inner.

layout(local_size_x_id = 0) in;
#include "common.glsl"

#if defined(ONEHOT_FLOAT) && ONEHOT_FLOAT
#define INDEX float
#else
#define INDEX int
#endif

layout(std430, set = 0, binding = 0) readonly buffer IndexBuffer { INDEX I[]; };
layout(std430, set = 0, binding = 1) readonly buffer ValueBuffer { uint V[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { uint Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint depth;
    uint inner;
} pc;

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    const uint inner = i % pc.inner;
    const uint d = (i / pc.inner) % pc.depth;
    const uint outer = i / (pc.inner * pc.depth);
    int idx = int(I[outer * pc.inner + inner]);
    int depth = int(pc.depth);
    if (idx < 0) {
        idx += depth;
    }
    Y[i] = idx == int(d) ? V[1] : V[0];
}
