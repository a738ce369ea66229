#version 450
// conv2d.comp — direct 2-D convolution (ONNX Conv, 2-D; Conv1d runs here with H = KH = 1), register-tiled.
// NCHW fp32 activations in the arena, weights + bias in one weight image. Lowering: Lowering+Conv.swift.
//
// Weight image (WEIGHT_FORMAT), in the order this kernel reads it. OCG = output channels per group,
// OCBG = ceil(OCG / 4) texel blocks per group, OCB = groups × OCBG, ICG = input channels per group:
//
//   texel index                               holds (4 lanes = 4 consecutive output channels)
//   ───────────────────────────────────────── ─────────────────────────────────────────────────────
//   ((ocb · ICG + ic) · KH + kh) · KW + kw    W[oc0 + 0..3, ic, kh, kw]      ocb = g · OCBG + b,
//                                                                            oc0 = g · OCG + 4b
//   OCB · ICG · KH · KW + ocb                 bias[oc0 + 0..3]               (zeros when no bias)
//
// Lanes with 4b + lane ≥ OCG are zero padding and are never stored. With groups = 1 this is
// [ocBlock][ic][kh][kw] followed by [ocBlock] bias texels.
//
// Work split — group (gx, gy, n) with WG invocations computes a PIX × (4·OCT) register tile per
// invocation:
//
//        output pixels p = oy·OW + ox of image n ──────────────────────────►
//        │◄──────────────── WG · PIX pixels of group gx ─────────────────►│
//        │ j=0: lanes 0..WG-1 │ j=1: lanes 0..WG-1 │ … │ j=PIX-1         │   invocation lx owns
//   ocb  ├────────────────────┴────────────────────┴───┴─────────────────┤   p = gx·WG·PIX + j·WG + lx
//   gy·OCT … gy·OCT+OCT-1  (the same for the whole group: weight texels are uniform loads)
//
// so neighbouring invocations read neighbouring input pixels (coalesced) and one texel load feeds
// 4 · PIX FMAs. groups = (ceil(OH·OW / (WG·PIX)), ceil(OCB / OCT), N). With groups > 1 the lowering
// uses OCT = 1 so a tile never straddles two groups.
//
// Group pieces (Lowering maxImageBytes): a weight too large for one image is cut into ranges of whole groups
// [groupOffset, groupOffset + OCB / OCBG), each its own image laid out as above for its groups only (so OCB is
// the piece's) and its own dispatch; group g of the piece reads input channels (groupOffset + g) · ICG … and
// writes output channels (groupOffset + g) · OCG … of the full OC. Unsplit: groupOffset = 0.
//
//   groups    │◄─ piece 0: groups 0 … ─►│◄─ piece 1: groupOffset … ─►│ …
//
// Defines: WEIGHT_FORMAT, CONV_PIX (pixels per invocation), CONV_OCT (texel blocks per invocation).
// Spec constants: 0 = WG (workgroup size x), 1 = ACTIVATION (ACT_NONE / ACT_RELU).
// Bindings: 0 = X (input), 1 = weights, 2 = Y (output).

layout(local_size_x_id = 0) in;
#include "common.glsl"

#ifndef CONV_PIX
#define CONV_PIX 4
#endif
#ifndef CONV_OCT
#define CONV_OCT 1
#endif

layout(constant_id = 1) const uint ACTIVATION = ACT_NONE;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { float X[]; };
layout(set = 0, binding = 1, WEIGHT_FORMAT) readonly uniform image2DArray weights;
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };

layout(push_constant) uniform PushConstants {
    uint C, H, W;          // input channels (all groups), height, width
    uint OC, OH, OW;       // output channels, height, width
    uint ICG, OCG, OCBG;   // per group: input channels, output channels, texel blocks
    uint OCB;              // texel blocks in all groups
    uint KH, KW;
    uint SH, SW;           // strides
    uint PT, PL;           // pads at the top / left (bottom / right only shape the output)
    uint DH, DW;           // dilations
    uint log2W, log2H;     // weight image extent
    uint groupOffset;      // this piece's first group (OC, C are the whole convolution's; OCB the piece's)
} pc;                      // 84 bytes

void main() {
    const uint lx = gl_LocalInvocationID.x;
    const uint n = gl_WorkGroupID.z;
    const uint P = pc.OH * pc.OW;
    const uint pBase = gl_WorkGroupID.x * gl_WorkGroupSize.x * CONV_PIX + lx;

    // Per pixel: top-left input coordinate of its window and whether it exists.
    int iy0[CONV_PIX];
    int ix0[CONV_PIX];
    for (uint j = 0; j < CONV_PIX; ++j) {
        uint p = min(pBase + j * gl_WorkGroupSize.x, P - 1u);
        uint oy = p / pc.OW;
        uint ox = p - oy * pc.OW;
        iy0[j] = int(oy * pc.SH) - int(pc.PT);
        ix0[j] = int(ox * pc.SW) - int(pc.PL);
    }

    // Texel blocks of this tile; blocks past OCB read block OCB-1 and are not stored.
    const uint ocbFirst = gl_WorkGroupID.y * CONV_OCT;
    const uint g = ocbFirst / pc.OCBG;
    uint ocbRead[CONV_OCT];
    for (uint o = 0; o < CONV_OCT; ++o) {
        ocbRead[o] = min(ocbFirst + o, pc.OCB - 1u);
    }

    const uint taps = pc.KH * pc.KW;
    const uint biasBase = pc.OCB * pc.ICG * taps;
    vec4 acc[CONV_PIX][CONV_OCT];
    for (uint o = 0; o < CONV_OCT; ++o) {
        vec4 bias = WEIGHT_AT(weights, biasBase + ocbRead[o], pc.log2W, pc.log2H);
        for (uint j = 0; j < CONV_PIX; ++j) {
            acc[j][o] = bias;
        }
    }

    const uint plane = pc.H * pc.W;
    uint channel = (n * pc.C + (pc.groupOffset + g) * pc.ICG) * plane;
    for (uint ic = 0; ic < pc.ICG; ++ic, channel += plane) {
        for (uint kh = 0; kh < pc.KH; ++kh) {
            for (uint kw = 0; kw < pc.KW; ++kw) {
                vec4 w[CONV_OCT];
                for (uint o = 0; o < CONV_OCT; ++o) {
                    uint t = ((ocbRead[o] * pc.ICG + ic) * pc.KH + kh) * pc.KW + kw;
                    w[o] = WEIGHT_AT(weights, t, pc.log2W, pc.log2H);
                }
                for (uint j = 0; j < CONV_PIX; ++j) {
                    int iy = iy0[j] + int(kh * pc.DH);
                    int ix = ix0[j] + int(kw * pc.DW);
                    bool inside = iy >= 0 && iy < int(pc.H) && ix >= 0 && ix < int(pc.W);
                    // Always load an in-range element, then zero it: a branch-free padded read that
                    // stays valid even if the optimizer turns the select into a speculative load.
                    float v = X[channel + (inside ? uint(iy) * pc.W + uint(ix) : 0u)];
                    v = inside ? v : 0.0;
                    for (uint o = 0; o < CONV_OCT; ++o) {
                        acc[j][o] += v * w[o];
                    }
                }
            }
        }
    }

    for (uint o = 0; o < CONV_OCT; ++o) {
        uint ocb = ocbFirst + o;
        if (ocb >= pc.OCB) {
            break;
        }
        uint b = ocb - g * pc.OCBG;
        for (uint lane = 0; lane < 4; ++lane) {
            uint ocInGroup = 4u * b + lane;
            if (ocInGroup >= pc.OCG) {
                break;
            }
            uint oc = (pc.groupOffset + g) * pc.OCG + ocInGroup;
            for (uint j = 0; j < CONV_PIX; ++j) {
                uint p = pBase + j * gl_WorkGroupSize.x;
                if (p < P) {
                    Y[(n * pc.OC + oc) * P + p] = activate(acc[j][o][lane], ACTIVATION);
                }
            }
        }
    }
}
