#version 450
// conv_transpose.comp — ONNX ConvTranspose, 2-D and 3-D, as a gather: each invocation computes output pixels
// by summing the input pixels and kernel taps that scatter onto them. 2-D runs with CT_DIMS = 2 (no depth
// loop; D = OD = KD = SD = DD = 1, PF = 0), 1-D as 2-D with H = KH = SH = DH = 1 as well; 3-D with CT_DIMS = 3.
// Lowering: Lowering+ConvTranspose.swift.
//
//   Y[n, m, oz, oy, ox] = B[m] + Σ_{c of m's group} Σ_{kd, kh, kw} X[n, c, iz, iy, ix] · W[c, m − g·OCG, kd, kh, kw]
//       over the taps with  oz + PF = iz·SD + kd·DD,  oy + PT = iy·SH + kh·DH,  ox + PL = ix·SW + kw·DW,
//       0 ≤ iz < D, 0 ≤ iy < H, 0 ≤ ix < W
//
// Phases. Which taps reach output row oy depends only on its phase ry = oy mod SH: kh·DH ≡ ry + PT (mod SH),
// i.e. kh = kh0 + t·stepH for t < nTy (stepH = SH / gcd(SH, DH); see phaseTaps), and then
// iy = (oy + PT − kh0·DH) / SH − t·(stepH·DH / SH), an exact division. Columns and depth slices likewise.
// Every tap belongs to exactly one phase, so Σ over the phases of nTz·nTy·nTx = KD·KH·KW. A workgroup works on
// one phase (rd, ry, rx) of one image: its invocations run the same taps with no divisibility test per pixel,
// and a 2×2 stride-2 upsampler (PP-OCR's) becomes four 1×1 convolutions.
//
// Weight image (WEIGHT_FORMAT), in the order this kernel reads it (WeightPacking.convTranspose writes it):
// phases row-major, each one a conv2d.comp-style block over its own taps. OCG / OCBG / OCB / ICG as in
// conv2d.comp (per group: output channels, texel blocks of 4 of them; all blocks; input channels per group):
//
//   texel index                                              holds (4 lanes = 4 consecutive output channels)
//   ──────────────────────────────────────────────────────── ────────────────────────────────────────────────
//   phaseBase + (((ocb · ICG + ic) · nTz + tz) · nTy + ty)     W[g·ICG + ic, 4b + 0..3, kd0 + tz·stepD,
//               · nTx + tx                                        kh0 + ty·stepH, kw0 + tx·stepW]   ocb = g·OCBG + b
//   OCB · ICG · KD · KH · KW + ocb                             bias[g·OCG + 4b + 0..3]      (zeros when no bias)
//
//   phaseBase(rd, ry, rx) = OCB · ICG · (Σ_{r<rd} nTz(r) · KH · KW
//                                        + nTz(rd) · (Σ_{r<ry} nTy(r) · KW + nTy(ry) · Σ_{r<rx} nTx(r)))
//
// Lanes with 4b + lane ≥ OCG are zero padding and are never stored.
//
// Work split — as conv2d.comp, within one phase: the phase's outputs form an ODp × OHp × OWp grid
// (oz = rd + SD·pz, oy = ry + SH·py, ox = rx + SW·px with p = (pz·OHp + py)·OWp + px); invocation lx of group
// (gx, gy, z) owns its pixels p = gx·WG·PIX + j·WG + lx (j < PIX) and OCT texel blocks of one group, so
// neighbouring invocations read neighbouring input pixels, weight texels are uniform loads and one input load
// feeds 4·OCT FMAs. groups = (ceil(ceil(OD/SD)·ceil(OH/SH)·ceil(OW/SW) / (WG·PIX)), G·ceil(OCBG / OCT),
// N·SD·SH·SW), z = ((n·SD + rd)·SH + ry)·SW + rx. Workgroups past a smaller phase's pixels return at once.
//
// Defines: WEIGHT_FORMAT, CT_PIX (pixels per invocation), CT_OCT (texel blocks per invocation), CT_DIMS (2 or 3
// spatial dims).
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
#ifndef CT_DIMS
#define CT_DIMS 2
#endif

layout(constant_id = 1) const uint ACTIVATION = ACT_NONE;

layout(std430, set = 0, binding = 0) readonly buffer InputBuffer { float X[]; };
layout(set = 0, binding = 1, WEIGHT_FORMAT) readonly uniform image2DArray weights;
layout(std430, set = 0, binding = 2) writeonly buffer OutputBuffer { float Y[]; };

layout(push_constant) uniform PushConstants {
    uint C, D, H, W;       // input channels (all groups), depth, height, width
    uint OC, OD, OH, OW;   // output channels, depth, height, width
    uint ICG, OCG, OCBG;   // per group: input channels, output channels, texel blocks
    uint OCB;              // texel blocks in all groups
    uint KD, KH, KW;
    uint SD, SH, SW;       // strides
    uint PF, PT, PL;       // pads at the front / top / left (back / bottom / right only shape the output)
    uint DD, DH, DW;       // dilations
    uint log2W, log2H;     // weight image extent
} pc;

// The taps of one axis that reach the outputs of phase r: k = first + t·step for t < count
// (WeightPacking.TransposedTaps computes the same on the host).
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

// The output position (oz, oy, ox) of pixel p of phase (rd, ry, rx), whose grid is ? × OHp × OWp.
uvec3 outputPosition(uint p, uint OHp, uint OWp, uvec3 phase) {
#if CT_DIMS == 3
    const uint pz = p / (OHp * OWp);
    p -= pz * OHp * OWp;
#else
    const uint pz = 0u;
#endif
    const uint py = p / OWp;
    return uvec3(phase.x + pc.SD * pz, phase.y + pc.SH * py, phase.z + pc.SW * (p - py * OWp));
}

void main() {
    const uint lx = gl_LocalInvocationID.x;
    const uint planePhases = pc.SH * pc.SW;
    const uint phases = pc.SD * planePhases;
    const uint n = gl_WorkGroupID.z / phases;
    const uint phaseIndex = gl_WorkGroupID.z - n * phases;
    const uint rd = phaseIndex / planePhases;
    const uint ry = (phaseIndex - rd * planePhases) / pc.SW;
    const uint rx = phaseIndex - rd * planePhases - ry * pc.SW;
    const uvec3 phase = uvec3(rd, ry, rx);
    const uint groupFirstPixel = gl_WorkGroupID.x * gl_WorkGroupSize.x * CT_PIX;
    const uint ODp = rd < pc.OD ? (pc.OD - rd + pc.SD - 1u) / pc.SD : 0u;
    const uint OHp = ry < pc.OH ? (pc.OH - ry + pc.SH - 1u) / pc.SH : 0u;
    const uint OWp = rx < pc.OW ? (pc.OW - rx + pc.SW - 1u) / pc.SW : 0u;
    const uint P = ODp * OHp * OWp;
    if (groupFirstPixel >= P) {
        return;  // uniform: the whole workgroup is past this phase's pixels
    }
    const uint pBase = groupFirstPixel + lx;

#if CT_DIMS == 3
    const Taps depth = phaseTaps(rd, pc.PF, pc.KD, pc.SD, pc.DD);
    const uint depthBefore = tapsBefore(rd, pc.PF, pc.KD, pc.SD, pc.DD);
    // Input slices move back by this much from one tap of the phase to the next.
    const int depthStep = int(depth.step * pc.DD / pc.SD);
#else
    const Taps depth = Taps(0u, 1u, 1u);
    const uint depthBefore = 0u;
#endif
    const Taps rows = phaseTaps(ry, pc.PT, pc.KH, pc.SH, pc.DH);
    const Taps cols = phaseTaps(rx, pc.PL, pc.KW, pc.SW, pc.DW);
    const uint phaseBase = pc.OCB * pc.ICG * (depthBefore * pc.KH * pc.KW
        + depth.count * (tapsBefore(ry, pc.PT, pc.KH, pc.SH, pc.DH) * pc.KW
                         + rows.count * tapsBefore(rx, pc.PL, pc.KW, pc.SW, pc.DW)));
    // Input rows (columns) move back by this much from one tap of the phase to the next.
    const int rowStep = int(rows.step * pc.DH / pc.SH);
    const int colStep = int(cols.step * pc.DW / pc.SW);

    // Per pixel: the input coordinate its first tap reads (exact divisions, possibly negative).
    int iy0[CT_PIX];
    int ix0[CT_PIX];
#if CT_DIMS == 3
    int iz0[CT_PIX];
#endif
    for (uint j = 0; j < CT_PIX; ++j) {
        const uvec3 o = outputPosition(min(pBase + j * gl_WorkGroupSize.x, P - 1u), OHp, OWp, phase);
#if CT_DIMS == 3
        iz0[j] = (int(o.x + pc.PF) - int(depth.first * pc.DD)) / int(pc.SD);
#endif
        iy0[j] = (int(o.y + pc.PT) - int(rows.first * pc.DH)) / int(pc.SH);
        ix0[j] = (int(o.z + pc.PL) - int(cols.first * pc.DW)) / int(pc.SW);
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

    const uint biasBase = pc.OCB * pc.ICG * pc.KD * pc.KH * pc.KW;
    vec4 acc[CT_PIX][CT_OCT];
    for (uint o = 0; o < CT_OCT; ++o) {
        vec4 bias = WEIGHT_AT(weights, biasBase + ocbRead[o], pc.log2W, pc.log2H);
        for (uint j = 0; j < CT_PIX; ++j) {
            acc[j][o] = bias;
        }
    }

    const uint plane = pc.H * pc.W;
    const uint channelSize = pc.D * plane;
    const uint phaseTapCount = depth.count * rows.count * cols.count;
    uint channel = (n * pc.C + g * pc.ICG) * channelSize;
    for (uint ic = 0; ic < pc.ICG; ++ic, channel += channelSize) {
#if CT_DIMS == 3
        for (uint tz = 0; tz < depth.count; ++tz) {
            // The input slice each pixel reads for this depth tap; outside the input, a first row no tap
            // reaches (so the row test below rejects every tap of the slice).
            int rowStart[CT_PIX];
            uint slice[CT_PIX];
            for (uint j = 0; j < CT_PIX; ++j) {
                int iz = iz0[j] - int(tz) * depthStep;
                bool sliceInside = iz >= 0 && iz < int(pc.D);
                rowStart[j] = sliceInside ? iy0[j] : -0x40000000;
                slice[j] = sliceInside ? uint(iz) * plane : 0u;
            }
#define CT_ROW_START(j) rowStart[j]
#define CT_SLICE(j) slice[j]
#else
        {
            const uint tz = 0u;
#define CT_ROW_START(j) iy0[j]
#define CT_SLICE(j) 0u
#endif
            for (uint ty = 0; ty < rows.count; ++ty) {
                for (uint tx = 0; tx < cols.count; ++tx) {
                    vec4 w[CT_OCT];
                    for (uint o = 0; o < CT_OCT; ++o) {
                        uint t = phaseBase + (ocbRead[o] * pc.ICG + ic) * phaseTapCount
                            + (tz * rows.count + ty) * cols.count + tx;
                        w[o] = WEIGHT_AT(weights, t, pc.log2W, pc.log2H);
                    }
                    for (uint j = 0; j < CT_PIX; ++j) {
                        int iy = CT_ROW_START(j) - int(ty) * rowStep;
                        int ix = ix0[j] - int(tx) * colStep;
                        bool inside = iy >= 0 && iy < int(pc.H) && ix >= 0 && ix < int(pc.W);
                        // Clamped index + select: never an out-of-range load (as conv2d.comp).
                        float v = X[channel + CT_SLICE(j) + (inside ? uint(iy) * pc.W + uint(ix) : 0u)];
                        v = inside ? v : 0.0;
                        for (uint o = 0; o < CT_OCT; ++o) {
                            acc[j][o] += v * w[o];
                        }
                    }
                }
            }
        }
    }

    const uint volume = pc.OD * pc.OH * pc.OW;
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
            uint plane0 = (n * pc.OC + g * pc.OCG + ocInGroup) * volume;
            for (uint j = 0; j < CT_PIX; ++j) {
                uint p = pBase + j * gl_WorkGroupSize.x;
                if (p < P) {
                    const uvec3 out3 = outputPosition(p, OHp, OWp, phase);
                    Y[plane0 + (out3.x * pc.OH + out3.y) * pc.OW + out3.z] = activate(acc[j][o][lane], ACTIVATION);
                }
            }
        }
    }
}
