#version 450
// conv_transpose.comp — ONNX ConvTranspose, 2-D (1-D runs here with H = KH = SH = DH = 1), as a gather: each
// invocation computes output pixels by summing the input pixels and kernel taps that scatter onto them.
// Lowering: Lowering+ConvTranspose.swift.
//
//   Y[n, m, oy, ox] = B[m] + Σ_{c of m's group} Σ_{kh, kw} X[n, c, iy, ix] · W[c, m − g·OCG, kh, kw]
//                     over the taps with  oy + PT = iy·SH + kh·DH,  ox + PL = ix·SW + kw·DW,  0 ≤ iy < H, 0 ≤ ix < W
//
// Phases. Which taps reach output row oy depends only on its phase ry = oy mod SH: kh·DH ≡ ry + PT (mod SH),
// i.e. kh = kh0 + t·stepH for t < nTy (stepH = SH / gcd(SH, DH); see phaseTaps), and then
// iy = (oy + PT − kh0·DH) / SH − t·(stepH·DH / SH), an exact division. Columns likewise. Every tap belongs to
// exactly one phase, so Σ over the phases of nTy·nTx = KH·KW. A workgroup works on one phase (ry, rx) of one
// image: its invocations run the same taps with no divisibility test per pixel, and a 2×2 stride-2 upsampler
// (PP-OCR's) becomes four 1×1 convolutions.
//
// Weight image (WEIGHT_FORMAT), in the order this kernel reads it (WeightPacking.convTranspose writes it):
// phases row-major, each one a conv2d.comp-style block over its own taps. OCG / OCBG / OCB / ICG as in
// conv2d.comp (per group: output channels, texel blocks of 4 of them; all blocks; input channels per group):
//
//   texel index                                           holds (4 lanes = 4 consecutive output channels)
//   ───────────────────────────────────────────────────── ───────────────────────────────────────────────────
//   phaseBase + ((ocb · ICG + ic) · nTy + ty) · nTx + tx   W[g·ICG + ic, 4b + 0..3, kh0 + ty·stepH,
//                                                           kw0 + tx·stepW]             ocb = g · OCBG + b
//   OCB · ICG · KH · KW + ocb                              bias[g·OCG + 4b + 0..3]      (zeros when no bias)
//
//   phaseBase(ry, rx) = OCB · ICG · (Σ_{r<ry} nTy(r) · KW + nTy(ry) · Σ_{r<rx} nTx(r))
//
// Lanes with 4b + lane ≥ OCG are zero padding and are never stored.
//
// Work split — as conv2d.comp, within one phase: the phase's outputs form an OHp × OWp grid
// (oy = ry + SH·(p / OWp), ox = rx + SW·(p mod OWp)); invocation lx of group (gx, gy, z) owns its pixels
// p = gx·WG·PIX + j·WG + lx (j < PIX) and OCT texel blocks of one group, so neighbouring invocations read
// neighbouring input pixels, weight texels are uniform loads and one input load feeds 4·OCT FMAs.
// groups = (ceil(ceil(OH/SH)·ceil(OW/SW) / (WG·PIX)), G·ceil(OCBG / OCT), N·SH·SW), z = (n·SH + ry)·SW + rx.
// Workgroups past a smaller phase's pixels return at once.
//
// Defines: WEIGHT_FORMAT, CT_PIX (pixels per invocation), CT_OCT (texel blocks per invocation).
// Spec constants: 0 = WG (workgroup size x), 1 = ACTIVATION (ACT_NONE / ACT_RELU).
// Bindings: 0 = X (input), 1 = weights, 2 = Y (output).

layout(local_size_x_id = 0) in;
#include "common.glsl"

#ifndef CT_PIX
#define CT_PIX 2
#endif
#ifndef CT_OCT
#define CT_OCT 1
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
} pc;

// The taps of one axis that reach the outputs of phase r: k = first + t·step for t < count
// (WeightPacking.transposedTaps computes the same on the host).
struct Taps {
    uint first;
    uint step;
    uint count;
};

Taps phaseTaps(uint r, uint pad, uint K, uint S, uint D) {
    uint step = 1u;
    while ((step * D) % S != 0u) {
        ++step;  // S / gcd(S, D)
    }
    const uint target = (r + pad) % S;
    Taps taps = Taps(K, step, 0u);
    // The solutions of k·D ≡ target (mod S) are one residue class mod step: the first one is below step.
    for (uint k = 0u; k < step && k < K; ++k) {
        if ((k * D) % S == target) {
            taps.first = k;
            taps.count = (K - k + step - 1u) / step;
            break;
        }
    }
    return taps;
}

// Taps of the phases before r along one axis (the phase-major weight order's offsets).
uint tapsBefore(uint r, uint pad, uint K, uint S, uint D) {
    uint total = 0u;
    for (uint q = 0u; q < r; ++q) {
        total += phaseTaps(q, pad, K, S, D).count;
    }
    return total;
}

void main() {
    const uint lx = gl_LocalInvocationID.x;
    const uint phases = pc.SH * pc.SW;
    const uint n = gl_WorkGroupID.z / phases;
    const uint ry = (gl_WorkGroupID.z - n * phases) / pc.SW;
    const uint rx = gl_WorkGroupID.z - n * phases - ry * pc.SW;
    const uint groupFirstPixel = gl_WorkGroupID.x * gl_WorkGroupSize.x * CT_PIX;
    const uint OHp = ry < pc.OH ? (pc.OH - ry + pc.SH - 1u) / pc.SH : 0u;
    const uint OWp = rx < pc.OW ? (pc.OW - rx + pc.SW - 1u) / pc.SW : 0u;
    const uint P = OHp * OWp;
    if (groupFirstPixel >= P) {
        return;  // uniform: the whole workgroup is past this phase's pixels
    }
    const uint pBase = groupFirstPixel + lx;

    const Taps rows = phaseTaps(ry, pc.PT, pc.KH, pc.SH, pc.DH);
    const Taps cols = phaseTaps(rx, pc.PL, pc.KW, pc.SW, pc.DW);
    const uint phaseBase = pc.OCB * pc.ICG * (tapsBefore(ry, pc.PT, pc.KH, pc.SH, pc.DH) * pc.KW
                                              + rows.count * tapsBefore(rx, pc.PL, pc.KW, pc.SW, pc.DW));
    // Input rows (columns) move back by this much from one tap of the phase to the next.
    const int rowStep = int(rows.step * pc.DH / pc.SH);
    const int colStep = int(cols.step * pc.DW / pc.SW);

    // Per pixel: the input coordinate its first tap reads (exact divisions, possibly negative).
    int iy0[CT_PIX];
    int ix0[CT_PIX];
    for (uint j = 0; j < CT_PIX; ++j) {
        uint p = min(pBase + j * gl_WorkGroupSize.x, P - 1u);
        uint py = p / OWp;
        uint oy = ry + pc.SH * py;
        uint ox = rx + pc.SW * (p - py * OWp);
        iy0[j] = (int(oy + pc.PT) - int(rows.first * pc.DH)) / int(pc.SH);
        ix0[j] = (int(ox + pc.PL) - int(cols.first * pc.DW)) / int(pc.SW);
    }

    // Texel blocks of this tile, all in group g; blocks past the group's last one read that one and are not
    // stored.
    const uint tilesPerGroup = (pc.OCBG + CT_OCT - 1u) / CT_OCT;
    const uint g = gl_WorkGroupID.y / tilesPerGroup;
    const uint ocbFirst = g * pc.OCBG + (gl_WorkGroupID.y - g * tilesPerGroup) * CT_OCT;
    const uint ocbEnd = (g + 1u) * pc.OCBG;
    uint ocbRead[CT_OCT];
    for (uint o = 0; o < CT_OCT; ++o) {
        ocbRead[o] = min(ocbFirst + o, ocbEnd - 1u);
    }

    const uint biasBase = pc.OCB * pc.ICG * pc.KH * pc.KW;
    vec4 acc[CT_PIX][CT_OCT];
    for (uint o = 0; o < CT_OCT; ++o) {
        vec4 bias = WEIGHT_AT(weights, biasBase + ocbRead[o], pc.log2W, pc.log2H);
        for (uint j = 0; j < CT_PIX; ++j) {
            acc[j][o] = bias;
        }
    }

    const uint plane = pc.H * pc.W;
    const uint phaseTaps2D = rows.count * cols.count;
    uint channel = (n * pc.C + g * pc.ICG) * plane;
    for (uint ic = 0; ic < pc.ICG; ++ic, channel += plane) {
        for (uint ty = 0; ty < rows.count; ++ty) {
            for (uint tx = 0; tx < cols.count; ++tx) {
                vec4 w[CT_OCT];
                for (uint o = 0; o < CT_OCT; ++o) {
                    uint t = phaseBase + (ocbRead[o] * pc.ICG + ic) * phaseTaps2D + ty * cols.count + tx;
                    w[o] = WEIGHT_AT(weights, t, pc.log2W, pc.log2H);
                }
                for (uint j = 0; j < CT_PIX; ++j) {
                    int iy = iy0[j] - int(ty) * rowStep;
                    int ix = ix0[j] - int(tx) * colStep;
                    bool inside = iy >= 0 && iy < int(pc.H) && ix >= 0 && ix < int(pc.W);
                    // Clamped index + select: never an out-of-range load (as conv2d.comp).
                    float v = X[channel + (inside ? uint(iy) * pc.W + uint(ix) : 0u)];
                    v = inside ? v : 0.0;
                    for (uint o = 0; o < CT_OCT; ++o) {
                        acc[j][o] += v * w[o];
                    }
                }
            }
        }
    }

    for (uint o = 0; o < CT_OCT; ++o) {
        uint ocb = ocbFirst + o;
        if (ocb >= ocbEnd) {
            break;
        }
        uint b = ocb - g * pc.OCBG;
        for (uint lane = 0; lane < 4; ++lane) {
            uint ocInGroup = 4u * b + lane;
            if (ocInGroup >= pc.OCG) {
                break;
            }
            uint plane0 = (n * pc.OC + g * pc.OCG + ocInGroup) * pc.OH * pc.OW;
            for (uint j = 0; j < CT_PIX; ++j) {
                uint p = pBase + j * gl_WorkGroupSize.x;
                if (p < P) {
                    uint py = p / OWp;
                    uint oy = ry + pc.SH * py;
                    uint ox = rx + pc.SW * (p - py * OWp);
                    Y[plane0 + oy * pc.OW + ox] = activate(acc[j][o][lane], ACTIVATION);
                }
            }
        }
    }
}
