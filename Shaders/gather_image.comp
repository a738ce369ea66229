#version 450
// gather_image.comp — ONNX Gather from a constant float table held in a weight image (embedding tables: they
// stream like any weight and take half the bytes in fp16): Y[o, j, k] = W[o, idx(j), k] with the indexing of
// gather.comp. The table's elements are the image's components in row-major order (texel e / 4, lane e % 4).
// Lowering: Lowering+MovementKernels.swift.
//
// Row pieces (Lowering maxImageBytes): a table too large for one image is cut along the gathered axis into
// row ranges [rowBase, rowBase + rowCount), each its own image W_p[o, r, k] = W[o, rowBase + r, k] and its
// own dispatch over every output element; a dispatch stores only the elements whose (normalized) index falls
// in its range, so the pieces together write each element exactly once:
//
//   table rows  0 ─────────── r1 ─────────── r2 ─────────── axisDim
//               │  piece 0    │   piece 1    │   piece 2    │
//   Y[o, j, :]  written by the piece holding row idx(j)       (unsplit: rowBase = 0, rowCount = axisDim)
//
// One invocation per element; groups = Lowering.groups1D(count, WG).
//
// Spec constants: 0 = WG.
// Bindings: 0 = W (weight image, WEIGHT_FORMAT), 1 = I (int32), 2 = Y (fp32), 3 = E (the run-time check's flag words, zeroed before every run: an index outside
// [-axisDim, axisDim) sets E[0] = 1 and E[1] = the index, and the runtime fails the run naming the node).
// Push: count indexCount inner axisDim log2W log2H rowBase rowCount.

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(set = 0, binding = 0, WEIGHT_FORMAT) readonly uniform image2DArray W;
layout(std430, set = 0, binding = 1) readonly buffer IndexBuffer { int I[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };
layout(std430, set = 0, binding = 3) writeonly buffer ErrorBuffer { uint E[]; };

layout(push_constant) uniform PushConstants {
    uint count;
    uint indexCount;
    uint inner;
    uint axisDim;
    uint log2W;
    uint log2H;
    uint rowBase;   // this piece's first row of the gathered axis
    uint rowCount;  // rows of the gathered axis in this piece's image
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
    if (row < pc.rowBase || row - pc.rowBase >= pc.rowCount) {
        return;  // another piece's row
    }
    uint e = (o * pc.rowCount + (row - pc.rowBase)) * pc.inner + k;
    vec4 texel = WEIGHT_AT(W, e >> 2u, pc.log2W, pc.log2H);
    Y[i] = texel[e & 3u];
}
