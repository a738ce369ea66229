#version 450
// pool.comp — max / average pooling over N, C and up to three spatial dims (ONNX MaxPool with its optional
// Indices output, AveragePool). Lowering: Lowering+Pool.swift, which gives 1-D and 2-D inputs leading
// spatial dims of size 1 (kernel 1, stride 1, no pads), so one kernel serves every rank.
//
// One invocation per output element (nc, o0, o1, o2); along spatial axis a the window starts at
// o_a·S_a − PB_a and its taps are D_a apart:
//
//        −PB   0                  X    X+PE
//          ┌───┬──────────────────┬───┐      taps outside [0, X) are skipped;
//          │pad│      input       │pad│      average divides by the taps inside the input (COUNT_PAD = 0)
//          └───┴──────────────────┴───┘      or by Π over axes of the taps inside [−PB, X+PE) (COUNT_PAD = 1;
//                                            ceil_mode windows may reach past it, those taps never count).
//
// X is read through strides and an offset (a transpose copied for the pool alone is read in place: SAM 2's Hiera
// pools Q, a third of its QKV product, after moving channels first); Y is row-major.
//
// MaxPool keeps the first largest tap in row-major window order (a later tap must be strictly greater, as
// onnxruntime does) and, with INDICES, writes its flat index into X: nc · Π X_a plus the spatial offset,
// row-major (INDICES = 1, storage_order 0) or column-major (INDICES = 2, storage_order 1).
//
// groups = Lowering.groups1D(NC · O0 · O1 · O2, WG).
// Spec constants: 0 = WG, 1 = MODE (0 max, 1 average), 2 = COUNT_PAD, 3 = INDICES (0 none, 1, 2).
// Bindings: 0 = X, 1 = Y, 2 = Indices (int32; written only when INDICES ≠ 0, the lowering binds Y otherwise).

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint MODE = 0;
layout(constant_id = 2) const uint COUNT_PAD = 0;
layout(constant_id = 3) const uint INDICES = 0;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { float X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { float Y[]; };
layout(std430, set = 0, binding = 2) writeonly buffer IndicesBuffer { int I[]; };

layout(push_constant) uniform PushConstants {
    uint NC;
    uint inSize[3];      // spatial dims of X, outermost first
    uint outSize[3];
    uint kernelSize[3];
    uint stride[3];
    uint dilation[3];
    uint padBegin[3];
    uint padEnd[3];
    uint C;              // channels: nc = n · C + c
    uint xStrideN, xStrideC;
    uint xStride[3];     // element (n, c, x0, x1, x2) of X is at xOffset + n·xStrideN + c·xStrideC + Σ x_a·xStride[a]
    uint xOffset;
} pc;                    // 116 bytes

// Taps of a window starting at `start` along `axis` that lie inside the padded extent [−PB, X + PE).
uint paddedTaps(int start, uint axis) {
    uint taps = 0;
    for (uint k = 0; k < pc.kernelSize[axis]; ++k) {
        int at = start + int(k * pc.dilation[axis]);
        if (at >= -int(pc.padBegin[axis]) && at < int(pc.inSize[axis] + pc.padEnd[axis])) {
            ++taps;
        }
    }
    return taps;
}

void main() {
    const uint i = flatInvocation();
    const uint P = pc.outSize[0] * pc.outSize[1] * pc.outSize[2];
    if (i >= pc.NC * P) {
        return;
    }
    const uint nc = i / P;
    uint p = i - nc * P;
    const uint o2 = p % pc.outSize[2];
    p /= pc.outSize[2];
    const uint o1 = p % pc.outSize[1];
    const uint o0 = p / pc.outSize[1];
    const int start0 = int(o0 * pc.stride[0]) - int(pc.padBegin[0]);
    const int start1 = int(o1 * pc.stride[1]) - int(pc.padBegin[1]);
    const int start2 = int(o2 * pc.stride[2]) - int(pc.padBegin[2]);
    const uint plane = pc.inSize[0] * pc.inSize[1] * pc.inSize[2];
    const uint base = nc * plane;  // of the tap's index in row-major X (Indices)
    const uint origin = pc.xOffset + (nc / pc.C) * pc.xStrideN + (nc % pc.C) * pc.xStrideC;  // of its address

    float best = uintBitsToFloat(0xff800000u);  // -inf
    uint bestAt = 0;                            // (x0, x1, x2) of the best tap, row-major
    float sum = 0.0;
    uint inside = 0;
    for (uint k0 = 0; k0 < pc.kernelSize[0]; ++k0) {
        int x0 = start0 + int(k0 * pc.dilation[0]);
        if (x0 < 0 || x0 >= int(pc.inSize[0])) {
            continue;
        }
        for (uint k1 = 0; k1 < pc.kernelSize[1]; ++k1) {
            int x1 = start1 + int(k1 * pc.dilation[1]);
            if (x1 < 0 || x1 >= int(pc.inSize[1])) {
                continue;
            }
            const uint row = (uint(x0) * pc.inSize[1] + uint(x1)) * pc.inSize[2];
            const uint rowAt = origin + uint(x0) * pc.xStride[0] + uint(x1) * pc.xStride[1];
            for (uint k2 = 0; k2 < pc.kernelSize[2]; ++k2) {
                int x2 = start2 + int(k2 * pc.dilation[2]);
                if (x2 < 0 || x2 >= int(pc.inSize[2])) {
                    continue;
                }
                float v = X[rowAt + uint(x2) * pc.xStride[2]];
                if (v > best) {
                    best = v;
                    bestAt = row + uint(x2);
                }
                sum += v;
                ++inside;
            }
        }
    }
    if (MODE == 0u) {
        Y[i] = best;
        if (INDICES != 0u) {
            uint at = bestAt;
            if (INDICES == 2u) {
                // Row-major (x0, x1, x2) → column-major x0 + x1·X0 + x2·X0·X1.
                uint x2 = at % pc.inSize[2];
                uint x1 = (at / pc.inSize[2]) % pc.inSize[1];
                uint x0 = at / (pc.inSize[2] * pc.inSize[1]);
                at = x0 + (x1 + x2 * pc.inSize[1]) * pc.inSize[0];
            }
            I[i] = int(base + at);
        }
    } else {
        uint divisor = inside;
        if (COUNT_PAD != 0u) {
            divisor = paddedTaps(start0, 0u) * paddedTaps(start1, 1u) * paddedTaps(start2, 2u);
        }
        Y[i] = sum / float(max(divisor, 1u));
    }
}
