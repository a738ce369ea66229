#version 450
// cumsum.comp — ONNX CumSum along one axis (exclusive, reverse). Lowering: Lowering+Reduce.swift.
//
// The tensor is viewed as [outer, len, inner]; line l = (outer index) · inner + (inner index) is the len
// elements base + j · inner. With REVERSE the line is walked from its end; EXCLUSIVE leaves out the element
// itself:
//
//   x      │ a   b     c        inclusive │ a   a+b   a+b+c      exclusive │ 0   a   a+b
//
// Two schedules (PER_GROUP):
//   0 — one invocation per line, a serial running sum (many short lines);
//   1 — one workgroup per line: the line goes in chunks of WG elements, each scanned in shared memory
//       (Hillis–Steele, log2 WG steps) and offset by the carry of the chunks before it (long lines).
//
// groups = Lowering.groups1D(lines, PER_GROUP ? 1 : WG).
// Spec constants: 0 = WG (a power of two ≤ 1024), 1 = EXCLUSIVE, 2 = REVERSE, 3 = PER_GROUP.
// Defines: CUMSUM_INT=1 — int32 tensors.
// Bindings: 0 = X, 1 = Y.

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint EXCLUSIVE = 0u;
layout(constant_id = 2) const uint REVERSE = 0u;
layout(constant_id = 3) const uint PER_GROUP = 0u;

#if defined(CUMSUM_INT) && CUMSUM_INT
#define VALUE int
#define ZERO 0
#else
#define VALUE float
#define ZERO 0.0
#endif

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { VALUE X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { VALUE Y[]; };

layout(push_constant) uniform PushConstants {
    uint lines, len, inner;
} pc;

shared VALUE scan[gl_WorkGroupSize.x];

// Offset of the k-th element of the line in walking order.
uint at(uint base, uint k) {
    return base + (REVERSE != 0u ? pc.len - 1u - k : k) * pc.inner;
}

void main() {
    const uint line = PER_GROUP != 0u ? flatWorkGroup() : flatInvocation();
    if (line >= pc.lines) {
        return;  // uniform across the workgroup when PER_GROUP
    }
    const uint outer = line / pc.inner;
    const uint base = outer * pc.len * pc.inner + (line - outer * pc.inner);

    if (PER_GROUP == 0u) {
        VALUE sum = ZERO;
        for (uint k = 0u; k < pc.len; ++k) {
            const uint i = at(base, k);
            const VALUE x = X[i];
            Y[i] = EXCLUSIVE != 0u ? sum : sum + x;
            sum += x;
        }
        return;
    }

    const uint lx = gl_LocalInvocationID.x;
    VALUE carry = ZERO;
    for (uint start = 0u; start < pc.len; start += gl_WorkGroupSize.x) {
        const uint k = start + lx;
        const VALUE x = k < pc.len ? X[at(base, k)] : ZERO;
        scan[lx] = x;
        barrier();
        for (uint offset = 1u; offset < gl_WorkGroupSize.x; offset <<= 1u) {
            const VALUE add = lx >= offset ? scan[lx - offset] : ZERO;
            barrier();
            scan[lx] += add;
            barrier();
        }
        // Exclusive takes the neighbour's inclusive sum rather than subtracting x (exact for floats too).
        const VALUE before = EXCLUSIVE != 0u ? (lx > 0u ? scan[lx - 1u] : ZERO) : scan[lx];
        if (k < pc.len) {
            Y[at(base, k)] = carry + before;
        }
        carry += scan[gl_WorkGroupSize.x - 1u];
        barrier();  // everyone has read the chunk total before the next chunk overwrites scan
    }
}
