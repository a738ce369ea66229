#version 450
#extension GL_EXT_control_flow_attributes : require
// resize.comp — ONNX Resize (nearest, linear, cubic; every coordinate_transformation_mode, antialias) and
// Upsample as a separable N-D resampling driven by tap tables the compiler computes in double precision, exactly
// as the ONNX reference does (Lowering+Resize.swift). For each resized dim d and output coordinate x, the table T
// holds taps[d] (index, weight) pairs at tableOffset[d] + 2·(x·taps[d] + t); the index is an exact float, -1 when
// the coordinate falls outside the input (tf_crop_and_resize: the output is then `extrapolation`). Dims that are
// not resized have taps[d] = 0 and pass their coordinate through. At most three dims are resized.
//
//   Y[c] = Σ_(ta, tb, tc) w_a(ta) · w_b(tb) · w_c(tc) · X[base + idx_a(ta)·sa + idx_b(tb)·sb + idx_c(tc)·sc]
//
// NEAREST = 1 (one tap per dim, weight 1) copies the raw 32-bit word, so it also serves int32 tensors.
// The resized dims live in named variables, not arrays: a dynamically indexed local array would be spilled to
// memory.
// One invocation per output element; groups = Lowering.groups1D(count, WG).
//
// Spec constants: 0 = WG, 1 = NEAREST.
// Bindings: 0 = X, 1 = T (fp32 table), 2 = Y.
// Push: count rank extrapolation outShape[6] inStride[6] tableOffset[6] taps[6] (dims past `rank`: extent 1,
// taps 0).

layout(local_size_x_id = 0) in;
#include "common.glsl"

#define MAX_RANK 6

layout(constant_id = 1) const uint NEAREST = 0u;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { uint X[]; };
layout(std430, set = 0, binding = 1) readonly buffer TableBuffer { float T[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { uint Y[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint rank;
    float extrapolation;
    uint outShape[MAX_RANK];
    uint inStride[MAX_RANK];
    uint tableOffset[MAX_RANK];
    uint taps[MAX_RANK];
} pc;                          // 108 bytes

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    // Split the output coordinate: pass-through dims go straight into the base offset; the resized ones (a is
    // the innermost) remember where their row of taps starts, how many taps it has and their input stride.
    uint rest = i;
    uint base = 0u;
    uint resized = 0u;
    uint rowA = 0u, rowB = 0u, rowC = 0u;
    uint nA = 1u, nB = 1u, nC = 1u;
    uint sA = 0u, sB = 0u, sC = 0u;
    [[unroll]] for (int d = MAX_RANK - 1; d >= 0; --d) {
        if (d >= int(pc.rank)) {
            continue;  // uniform: no division for the padding dims
        }
        uint extent = pc.outShape[d];
        uint q = rest / extent;
        uint c = rest - q * extent;
        rest = q;
        uint taps = pc.taps[d];
        if (taps == 0u) {
            base += c * pc.inStride[d];
        } else {
            uint row = pc.tableOffset[d] + 2u * c * taps;
            if (resized == 0u) {
                rowA = row; nA = taps; sA = pc.inStride[d];
            } else if (resized == 1u) {
                rowB = row; nB = taps; sB = pc.inStride[d];
            } else {
                rowC = row; nC = taps; sC = pc.inStride[d];
            }
            ++resized;
        }
    }
    // Fewer than three resized dims: the missing ones take one tap of index 0 and weight 1.
    float sum = 0.0;
    for (uint c = 0u; c < nC; ++c) {
        float ic = resized > 2u ? T[rowC + 2u * c] : 0.0;
        float wc = resized > 2u ? T[rowC + 2u * c + 1u] : 1.0;
        for (uint b = 0u; b < nB; ++b) {
            float ib = resized > 1u ? T[rowB + 2u * b] : 0.0;
            float wb = resized > 1u ? T[rowB + 2u * b + 1u] : 1.0;
            for (uint a = 0u; a < nA; ++a) {
                float ia = resized > 0u ? T[rowA + 2u * a] : 0.0;
                float wa = resized > 0u ? T[rowA + 2u * a + 1u] : 1.0;
                if (min(ia, min(ib, ic)) < 0.0) {
                    Y[i] = floatBitsToUint(pc.extrapolation);
                    return;
                }
                uint src = base + uint(ia) * sA + uint(ib) * sB + uint(ic) * sC;
                if (NEAREST != 0u) {
                    Y[i] = X[src];
                    return;
                }
                sum += wa * wb * wc * uintBitsToFloat(X[src]);
            }
        }
    }
    Y[i] = floatBitsToUint(sum);
}
