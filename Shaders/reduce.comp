#version 450
// reduce.comp — ONNX ReduceSum / Mean / Max / Min / Prod / L1 / L2 / SumSquare / LogSum / LogSumExp over any set
// of axes in one pass. Lowering: Lowering+Reduce.swift.
//
// The lowering coalesces the input's axes into at most 6 KEPT dims and 6 REDUCED dims (neighbouring axes of
// the same kind merge), each with its element stride in X. Output o (row-major over the kept dims, which is
// exactly Y's layout with or without keepdims) reads the `len` elements
//
//   X[ base(o) + off(r) ],  r = 0 … len-1,   base = Σ keptIndex_d · keptStride_d,   off = Σ redIndex_d · redStride_d
//
//   e.g. X [2, 5, 3, 7] reducing axes {1, 3}:  kept = [2, 3] strides [105, 7],  reduced = [5, 7] strides [21, 1]
//
// COLUMNS outputs share a workgroup of WG invocations: invocation lx takes output column = lx mod COLUMNS of
// the workgroup's COLUMNS consecutive outputs and reduction slice = lx / COLUMNS of SLICES = WG / COLUMNS
// (elements r ≡ slice mod SLICES), then a shared-memory tree combines the slices of each column:
//
//   COLUMNS = 1      one workgroup per output (contiguous rows: neighbouring invocations read neighbours);
//   COLUMNS = 8…64   strided rows (a reduced axis that is not innermost): neighbouring invocations take
//                    neighbouring outputs, which are neighbours in memory, and SLICES split the row;
//   COLUMNS = WG     one invocation per output, a serial loop, no tree (short rows).
//
//   WG = 256, COLUMNS = 8:   lx  0… 7 → outputs g·8 + 0…7, slice 0     Σ over slices 0…31 ──► Y[g·8 + c]
//                            lx  8…15 → outputs g·8 + 0…7, slice 1
//                            …        lx 248…255 → slice 31
//
// LogSumExp first reduces the max, then Σ exp(x − max), so large inputs do not overflow.
//
// groups = Lowering.groups1D(outputs, COLUMNS).
// Spec constants: 0 = WG (a power of two ≤ 1024), 1 = OP (REDUCE_* below), 2 = COLUMNS (a power of two ≤ WG).
// Defines: REDUCE_INT=1 — int32 tensors (integer / bool data; OP is SUM, MAX, MIN or PROD).
// Bindings: 0 = X, 1 = Y.

layout(local_size_x_id = 0) in;
#include "common.glsl"

#define REDUCE_SUM 0u
#define REDUCE_MEAN 1u
#define REDUCE_MAX 2u
#define REDUCE_MIN 3u
#define REDUCE_PROD 4u
#define REDUCE_L1 5u
#define REDUCE_L2 6u
#define REDUCE_SUM_SQUARE 7u
#define REDUCE_LOG_SUM 8u
#define REDUCE_LOG_SUM_EXP 9u

layout(constant_id = 1) const uint OP = REDUCE_SUM;
layout(constant_id = 2) const uint COLUMNS = 1u;

#if defined(REDUCE_INT) && REDUCE_INT
#define VALUE int
#define LOWEST (-2147483647 - 1)
#define HIGHEST 2147483647
#define ZERO 0
#define ONE 1
#else
#define VALUE float
#define LOWEST uintBitsToFloat(0xff800000u)
#define HIGHEST uintBitsToFloat(0x7f800000u)
#define ZERO 0.0
#define ONE 1.0
#endif

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { VALUE X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { VALUE Y[]; };

layout(push_constant) uniform PushConstants {
    uint outputs, len, keptRank, redRank;
    uint keptShape[6];
    uint keptStride[6];
    uint redShape[6];
    uint redStride[6];
} pc;

shared VALUE scratch[gl_WorkGroupSize.x];

// What an element contributes before combining (|x|, x², …; exp(x − shift) for LogSumExp's second pass).
VALUE mapped(VALUE x, VALUE shift) {
#if defined(REDUCE_INT) && REDUCE_INT
    return x;
#else
    switch (OP) {
    case REDUCE_L1: return abs(x);
    case REDUCE_L2: case REDUCE_SUM_SQUARE: return x * x;
    case REDUCE_LOG_SUM_EXP: return exp(x - shift);
    default: return x;
    }
#endif
}

// The combining operator of a pass: max / min / product, else a sum. LogSumExp's first pass is a max.
VALUE combine(VALUE a, VALUE b, bool maxPass) {
    if (maxPass || OP == REDUCE_MAX) return max(a, b);
    if (OP == REDUCE_MIN) return min(a, b);
    if (OP == REDUCE_PROD) return a * b;
    return a + b;
}

VALUE identity(bool maxPass) {
    if (maxPass || OP == REDUCE_MAX) return LOWEST;
    if (OP == REDUCE_MIN) return HIGHEST;
    if (OP == REDUCE_PROD) return ONE;
    return ZERO;
}

// Offset in X of reduced element r.
uint reducedOffset(uint r) {
    if (pc.redRank == 1u) {
        return r * pc.redStride[0];
    }
    uint offset = 0u;
    for (int d = int(pc.redRank) - 1; d >= 0; --d) {
        const uint size = pc.redShape[d];
        offset += (r % size) * pc.redStride[d];
        r /= size;
    }
    return offset;
}

// Offset in X of output o's first element.
uint keptOffset(uint o) {
    uint offset = 0u;
    for (int d = int(pc.keptRank) - 1; d >= 0; --d) {
        const uint size = pc.keptShape[d];
        offset += (o % size) * pc.keptStride[d];
        o /= size;
    }
    return offset;
}

// Combines the SLICES partial results of each column over shared memory; every invocation gets its column's.
VALUE combineSlices(VALUE v, bool maxPass) {
    const uint slices = gl_WorkGroupSize.x / COLUMNS;
    if (slices == 1u) {
        return v;  // one invocation per output: nothing to combine (uniform: spec constants)
    }
    const uint lx = gl_LocalInvocationID.x;
    const uint slice = lx / COLUMNS;
    scratch[lx] = v;
    barrier();
    for (uint half_ = slices / 2u; half_ > 0u; half_ >>= 1u) {
        if (slice < half_) {
            scratch[lx] = combine(scratch[lx], scratch[lx + half_ * COLUMNS], maxPass);
        }
        barrier();
    }
    VALUE r = scratch[lx % COLUMNS];
    barrier();  // scratch is reused by a second pass
    return r;
}

// One pass over output o's elements: this invocation's slice, then the column's total.
VALUE pass(bool valid, uint base, bool maxPass, VALUE shift) {
    const uint slices = gl_WorkGroupSize.x / COLUMNS;
    VALUE acc = identity(maxPass);
    if (valid) {
        for (uint r = gl_LocalInvocationID.x / COLUMNS; r < pc.len; r += slices) {
            const VALUE x = X[base + reducedOffset(r)];
            acc = combine(acc, maxPass ? x : mapped(x, shift), maxPass);
        }
    }
    return combineSlices(acc, maxPass);
}

VALUE finish(VALUE acc, VALUE shift) {
#if defined(REDUCE_INT) && REDUCE_INT
    return acc;
#else
    switch (OP) {
    case REDUCE_MEAN: return acc / float(pc.len);
    case REDUCE_L2: return sqrt(acc);
    case REDUCE_LOG_SUM: return log(acc);
    case REDUCE_LOG_SUM_EXP: return shift + log(acc);
    default: return acc;
    }
#endif
}

void main() {
    // No early return: every invocation takes part in the barriers, outputs past the end only compute nothing.
    const uint o = flatWorkGroup() * COLUMNS + gl_LocalInvocationID.x % COLUMNS;
    const bool valid = o < pc.outputs;
    const uint base = valid ? keptOffset(o) : 0u;
    VALUE shift = ZERO;
#if !(defined(REDUCE_INT) && REDUCE_INT)
    if (OP == REDUCE_LOG_SUM_EXP) {
        shift = pass(valid, base, true, ZERO);
        // An all −inf row: keep exp(x − shift) finite (the result is −inf either way).
        if (isinf(shift)) shift = 0.0;
    }
#endif
    const VALUE acc = pass(valid, base, false, shift);
    if (valid && gl_LocalInvocationID.x < COLUMNS) {
        Y[o] = finish(acc, shift);
    }
}
