#version 450
// unary.comp — element-wise Y = f(X) (ONNX Relu; Sigmoid, Tanh come for free).
// Lowering: Lowering+Elementwise.swift.
//
// One invocation per element; groups = Lowering.groups1D(count, WG) (x, y grid).
//
// Spec constants: 0 = WG, 1 = OP (0 relu, 1 sigmoid, 2 tanh).
// Bindings: 0 = X, 1 = Y.

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint OP = 0;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { float X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { float Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
} pc;

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    float x = X[i];
    float y;
    if (OP == 0u) {
        y = max(x, 0.0);
    } else if (OP == 1u) {
        y = 1.0 / (1.0 + exp(-x));
    } else {
        y = tanh(x);
    }
    Y[i] = y;
}
