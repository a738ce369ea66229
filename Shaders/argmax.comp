#version 450
// argmax.comp — ONNX ArgMax / ArgMin along one axis (keepdims either way, select_last_index). Lowering:
// Lowering+Reduce.swift.
//
// The input is viewed as [outer, len, inner]; output o = (outer index) · inner + (inner index) is the index j
// in [0, len) of the largest (smallest) X[outer · len · inner + j · inner + inner index], written as int32 (the
// arena's form of int64; the runtime widens graph outputs). Ties go to the first index, or the last one with
// SELECT_LAST. As in numpy, a NaN beats every number for ArgMax and ArgMin alike.
//
// Two schedules (PER_GROUP): one workgroup per output with a shared-memory tree of (value, index) pairs, or one
// invocation per output with a serial loop.
//
// groups = Lowering.groups1D(outputs, PER_GROUP ? 1 : WG).
// Spec constants: 0 = WG (a power of two ≤ 1024), 1 = IS_MIN, 2 = SELECT_LAST, 3 = PER_GROUP.
// Defines: ARG_INT=1 — X is int32 (integer / bool data).
// Bindings: 0 = X, 1 = Y (int32).

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint IS_MIN = 0u;
layout(constant_id = 2) const uint SELECT_LAST = 0u;
layout(constant_id = 3) const uint PER_GROUP = 1u;

#if defined(ARG_INT) && ARG_INT
#define VALUE int
#else
#define VALUE float
#endif

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { VALUE X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { int Y[]; };

layout(push_constant) uniform PushConstants {
    uint outputs, len, inner;
} pc;

shared VALUE values[gl_WorkGroupSize.x];
shared uint indices[gl_WorkGroupSize.x];

// Whether (a, ia) beats (b, ib). An invalid index (0xffffffff, an invocation that saw no element) never wins.
bool better(VALUE a, uint ia, VALUE b, uint ib) {
    if (ia == 0xffffffffu) return false;
    if (ib == 0xffffffffu) return true;
#if !(defined(ARG_INT) && ARG_INT)
    if (isnan(a) || isnan(b)) {
        if (isnan(a) != isnan(b)) return isnan(a);
        return SELECT_LAST != 0u ? ia > ib : ia < ib;
    }
#endif
    if (IS_MIN != 0u ? a < b : a > b) return true;
    if (a == b) return SELECT_LAST != 0u ? ia > ib : ia < ib;
    return false;
}

void main() {
    const uint o = PER_GROUP != 0u ? flatWorkGroup() : flatInvocation();
    if (o >= pc.outputs) {
        return;  // uniform across the workgroup when PER_GROUP
    }
    const uint outer = o / pc.inner;
    const uint base = outer * pc.len * pc.inner + (o - outer * pc.inner);
    const uint first = PER_GROUP != 0u ? gl_LocalInvocationID.x : 0u;
    const uint step = PER_GROUP != 0u ? gl_WorkGroupSize.x : 1u;

    VALUE best = X[base];  // any value; index 0xffffffff marks "none yet"
    uint bestIndex = 0xffffffffu;
    for (uint j = first; j < pc.len; j += step) {
        const VALUE v = X[base + j * pc.inner];
        if (better(v, j, best, bestIndex)) {
            best = v;
            bestIndex = j;
        }
    }
    if (PER_GROUP != 0u) {
        const uint lx = gl_LocalInvocationID.x;
        values[lx] = best;
        indices[lx] = bestIndex;
        barrier();
        for (uint half_ = gl_WorkGroupSize.x / 2u; half_ > 0u; half_ >>= 1u) {
            if (lx < half_ && better(values[lx + half_], indices[lx + half_], values[lx], indices[lx])) {
                values[lx] = values[lx + half_];
                indices[lx] = indices[lx + half_];
            }
            barrier();
        }
        bestIndex = indices[0];
    }
    if (PER_GROUP == 0u || gl_LocalInvocationID.x == 0u) {
        Y[o] = bestIndex == 0xffffffffu ? 0 : int(bestIndex);
    }
}
