#version 450
// softmax.comp — Y = exp(X − max) / Σ exp(X − max) along one axis (ONNX Softmax, any axis; opset < 13
// flattening too), or with LOG = 1 Y = X − max − log Σ exp(X − max) (ONNX LogSoftmax).
// Lowering: Lowering+Softmax.swift.
//
// The tensor is viewed as [outer, len, inner]; a row (outer o, inner i) is the len elements
// o·len·inner + i + j·inner. One workgroup per row, three passes with shared-memory reductions:
//
//   pass 1: m = max_j x_j     pass 2: s = Σ_j exp(x_j − m)     pass 3: y_j = exp(x_j − m) / s
//                                                                    (LOG: y_j = x_j − m − log s)
//
// groups = Lowering.groups1D(rows, 1) with rows = outer · inner.
// Spec constants: 0 = WG (a power of two ≤ 1024), 1 = LOG.
// Bindings: 0 = X, 1 = Y; with SOFTMAX_IN_PLACE, 0 = X, overwritten by Y (one read-write binding: every element
// is read by passes 1 and 2 of its row's workgroup, then read and written by one invocation in pass 3).

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint LOG = 0u;

#ifdef SOFTMAX_IN_PLACE
layout(std430, set = 0, binding = 0) buffer InOutBuffer { float X[]; };
#define Y X
#else
layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { float X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { float Y[]; };
#endif

layout(push_constant) uniform PushConstants {
    uint rows, len, inner;
} pc;

shared float scratch[gl_WorkGroupSize.x];

// Tree reduction of `v` over the workgroup (max when isMax, else sum); every invocation gets the result.
float reduceGroup(float v, bool isMax) {
    const uint lx = gl_LocalInvocationID.x;
    scratch[lx] = v;
    barrier();
    for (uint half_ = gl_WorkGroupSize.x / 2u; half_ > 0u; half_ >>= 1u) {
        if (lx < half_) {
            float o = scratch[lx + half_];
            scratch[lx] = isMax ? max(scratch[lx], o) : scratch[lx] + o;
        }
        barrier();
    }
    float r = scratch[0];
    barrier();  // scratch is reused by the next reduction
    return r;
}

void main() {
    const uint row = flatWorkGroup();
    if (row >= pc.rows) {
        return;  // uniform across the workgroup
    }
    const uint lx = gl_LocalInvocationID.x;
    const uint outer = row / pc.inner;
    const uint base = outer * pc.len * pc.inner + (row - outer * pc.inner);
    const uint step = pc.inner;

    float m = uintBitsToFloat(0xff800000u);  // -inf
    for (uint j = lx; j < pc.len; j += gl_WorkGroupSize.x) {
        m = max(m, X[base + j * step]);
    }
    m = reduceGroup(m, true);

    float s = 0.0;
    for (uint j = lx; j < pc.len; j += gl_WorkGroupSize.x) {
        s += exp(X[base + j * step] - m);
    }
    s = reduceGroup(s, false);

    if (LOG != 0u) {
        const float shift = m + log(s);
        for (uint j = lx; j < pc.len; j += gl_WorkGroupSize.x) {
            Y[base + j * step] = X[base + j * step] - shift;
        }
        return;
    }
    const float inv = 1.0 / s;
    for (uint j = lx; j < pc.len; j += gl_WorkGroupSize.x) {
        Y[base + j * step] = exp(X[base + j * step] - m) * inv;
    }
}
