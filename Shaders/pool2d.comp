#version 450
// pool2d.comp — 2-D max / average pooling over NCHW (ONNX MaxPool, AveragePool).
// Lowering: Lowering+Pool.swift.
//
// One invocation per output element (nc, oy, ox); the window of (oy, ox) starts at
// (oy·SH − PT, ox·SW − PL) and its taps are DH / DW apart:
//
//        −PL   0                  W    W+PR
//   −PT   ┌───┬──────────────────┬───┐      taps outside [0, H) × [0, W) are skipped;
//     0   │pad│      input       │pad│      average divides by the taps inside the input
//         │   │                  │   │      (COUNT_PAD = 0) or inside the padded extent
//     H   └───┴──────────────────┴───┘      [−PT, H+PB) × [−PL, W+PR) (COUNT_PAD = 1; ceil_mode windows
//                                           may reach past it, those taps never count).
//
// groups = Lowering.groups1D(NC · OH · OW, WG).
// Spec constants: 0 = WG, 1 = MODE (0 max, 1 average), 2 = COUNT_PAD.
// Bindings: 0 = X, 1 = Y.

layout(local_size_x_id = 0) in;
#include "common.glsl"

layout(constant_id = 1) const uint MODE = 0;
layout(constant_id = 2) const uint COUNT_PAD = 0;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { float X[]; };
layout(std430, set = 0, binding = 1) writeonly buffer OutputBuffer { float Y[]; };

layout(push_constant) uniform PushConstants {
    uint NC, H, W, OH, OW;
    uint KH, KW, SH, SW;
    uint PT, PL, PB, PR;
    uint DH, DW;
} pc;

void main() {
    const uint i = flatInvocation();
    const uint P = pc.OH * pc.OW;
    if (i >= pc.NC * P) {
        return;
    }
    const uint nc = i / P;
    const uint p = i - nc * P;
    const uint oy = p / pc.OW;
    const uint ox = p - oy * pc.OW;
    const int iy0 = int(oy * pc.SH) - int(pc.PT);
    const int ix0 = int(ox * pc.SW) - int(pc.PL);
    const uint base = nc * pc.H * pc.W;

    float best = uintBitsToFloat(0xff800000u);  // -inf
    float sum = 0.0;
    uint inside = 0;
    uint rowsPadded = 0;
    uint colsPadded = 0;
    for (uint kh = 0; kh < pc.KH; ++kh) {
        int iy = iy0 + int(kh * pc.DH);
        if (iy >= -int(pc.PT) && iy < int(pc.H + pc.PB)) {
            ++rowsPadded;
        }
        if (iy < 0 || iy >= int(pc.H)) {
            continue;
        }
        for (uint kw = 0; kw < pc.KW; ++kw) {
            int ix = ix0 + int(kw * pc.DW);
            if (ix < 0 || ix >= int(pc.W)) {
                continue;
            }
            float v = X[base + uint(iy) * pc.W + uint(ix)];
            best = max(best, v);
            sum += v;
            ++inside;
        }
    }
    if (MODE == 0u) {
        Y[i] = best;
    } else {
        for (uint kw = 0; kw < pc.KW; ++kw) {
            int ix = ix0 + int(kw * pc.DW);
            if (ix >= -int(pc.PL) && ix < int(pc.W + pc.PR)) {
                ++colsPadded;
            }
        }
        uint divisor = COUNT_PAD != 0u ? rowsPadded * colsPadded : inside;
        Y[i] = sum / float(max(divisor, 1u));
    }
}
