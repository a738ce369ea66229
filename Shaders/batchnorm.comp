#version 450
// batchnorm.comp — Y = act(X · scale[c] + shift[c]) over [N, C, inner] (ONNX BatchNormalization in
// inference mode when it could not be folded into a preceding Conv). Lowering: Lowering+BatchNorm.swift.
//
// The lowering folds mean, variance, epsilon, gamma and beta into one resident constant tensor:
//
//   params = │ scale[0] … scale[C-1] │ shift[0] … shift[C-1] │     scale = γ / √(var + ε)
//                                                                 shift = β − mean · scale
//
// One invocation per element; groups = Lowering.groups1D(count, WG).
// Spec constants: 0 = WG, 1 = ACTIVATION.
// Bindings: 0 = X, 1 = params, 2 = Y.

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint ACTIVATION = ACT_NONE;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { float X[]; };
layout(std430, set = 0, binding = 1) readonly buffer ParamBuffer { float params[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };

layout(push_constant) uniform PushConstants {
    uint count, C, inner;
} pc;

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    const uint c = (i / pc.inner) % pc.C;
    Y[i] = activate(X[i] * params[c] + params[pc.C + c], ACTIVATION);
}
