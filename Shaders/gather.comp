#version 450
// gather.comp — ONNX Gather with indices computed at run time: Y[o, j, k] = X[o, idx(j), k], where o runs over
// the dims before `axis`, j over the indices, k over the dims after `axis`, and idx(j) = I[j] (+ axisDim when
// negative; out-of-range indices are an error, which ONNX runtimes report: flagged in E, and clamped so that no
// read leaves X).
// Lowering: Lowering+MovementKernels.swift. Constant indices never get here (they fold or become a strided copy).
//
// Words are copied as raw 32-bit patterns (fp32 or int32 data); I is int32 (int64 indices are int32 in the arena).
// One invocation per element; groups = Lowering.groups1D(count, WG).
//
// Spec constants: 0 = WG.
// Bindings: 0 = X, 1 = I, 2 = Y, 3 = E (the run-time check's flag words, zeroed before every run: an index outside
// [-axisDim, axisDim) sets E[0] = 1 and E[1] = the index, and the runtime fails the run naming the node).
// Push: count indexCount inner axisDim.

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { uint X[]; };
layout(std430, set = 0, binding = 1) readonly buffer IndexBuffer { int I[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { uint Y[]; };
layout(std430, set = 0, binding = 3) writeonly buffer ErrorBuffer { uint E[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint indexCount;
    uint inner;
    uint axisDim;
} pc;

void main() {
    const uint i = flatInvocation();
    if (i >= pc.count) {
        return;
    }
    uint k = i % pc.inner;
    uint rest = i / pc.inner;
    uint j = rest % pc.indexCount;
    uint o = rest / pc.indexCount;
    const int given = I[j];
    int index = given;
    if (index < 0) {
        index += int(pc.axisDim);
    }
    if (index < 0 || index >= int(pc.axisDim)) {
        // Every invocation that sees a bad index writes the same flag; any one of the bad indices is reported.
        E[0] = 1u;
        E[1] = uint(given);
    }
    uint row = uint(clamp(index, 0, int(pc.axisDim) - 1));
    Y[i] = X[(o * pc.axisDim + row) * pc.inner + k];
}
