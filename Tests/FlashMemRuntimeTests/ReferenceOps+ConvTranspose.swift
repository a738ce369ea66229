// CPU reference of ONNX ConvTranspose for ConvTransposeOpTests, written from the operator spec as a scatter
// (each input pixel adds W times itself onto the outputs its taps reach), the opposite direction of the
// compiler's gather kernel, and sharing nothing with the compiler. Owned by the ConvTranspose work.

extension ReferenceOps {
    /// Attributes of a 2-D ConvTranspose with its pads already resolved (1-D tests use H = KH = 1); the 2-D and
    /// 1-D references run the 3-D one with D = KD = 1.
    struct ConvTransposeAttributes {
        var strides = [1, 1]
        var dilations = [1, 1]
        var outputPadding = [0, 0]
        /// [top, left, bottom, right]; an end pad may be negative: the output then runs past the scattered
        /// result by that much, holding only the bias there (output_shape's slack).
        var pads = [0, 0, 0, 0]
        var groups = 1
    }

    /// ONNX ConvTranspose, 2-D: x [N, C, H, W], w [C, M / groups, KH, KW], bias [M] or nil → y [N, M, OH, OW]
    /// with OH = (H − 1)·SH + output_padding + (KH − 1)·DH + 1 − pad top − pad bottom (likewise OW).
    static func convTranspose2d(x: [Float], xShape: [Int], w: [Float], wShape: [Int], bias: [Float]? = nil,
                                _ a: ConvTransposeAttributes) -> (y: [Float], shape: [Int]) {
        let a3 = ConvTransposeAttributes3D(strides: [1] + a.strides, dilations: [1] + a.dilations,
                                           outputPadding: [0] + a.outputPadding,
                                           pads: [0, a.pads[0], a.pads[1], 0, a.pads[2], a.pads[3]], groups: a.groups)
        let r = convTranspose3d(x: x, xShape: [xShape[0], xShape[1], 1, xShape[2], xShape[3]], w: w,
                                wShape: [wShape[0], wShape[1], 1, wShape[2], wShape[3]], bias: bias, a3)
        return (r.y, [r.shape[0], r.shape[1], r.shape[3], r.shape[4]])
    }

    /// Attributes of a 3-D ConvTranspose with its pads already resolved: per axis (depth, height, width), pads
    /// [front, top, left, back, bottom, right] (end pads may be negative, as in ConvTransposeAttributes).
    struct ConvTransposeAttributes3D {
        var strides = [1, 1, 1]
        var dilations = [1, 1, 1]
        var outputPadding = [0, 0, 0]
        var pads = [0, 0, 0, 0, 0, 0]
        var groups = 1
    }

    /// ONNX ConvTranspose, 3-D: x [N, C, D, H, W], w [C, M / groups, KD, KH, KW], bias [M] or nil →
    /// y [N, M, OD, OH, OW], each output size as in convTranspose2d.
    static func convTranspose3d(x: [Float], xShape: [Int], w: [Float], wShape: [Int], bias: [Float]? = nil,
                                _ a: ConvTransposeAttributes3D) -> (y: [Float], shape: [Int]) {
        let n: Int = xShape[0], c: Int = xShape[1]
        let (d, h, wd) = (xShape[2], xShape[3], xShape[4])
        let (ocg, kd, kh, kw) = (wShape[1], wShape[2], wShape[3], wShape[4])
        let icg: Int = c / a.groups, m: Int = ocg * a.groups
        precondition(wShape[0] == c && c % a.groups == 0, "convTranspose3d: bad groups")
        // The whole scattered result, then the window [pad begin, full − pad end) of it on each axis.
        func span(_ input: Int, _ kernel: Int, _ axis: Int) -> Int {
            let last: Int = (input - 1) * a.strides[axis] + (kernel - 1) * a.dilations[axis]
            return last + a.outputPadding[axis] + 1
        }
        let (fullD, fullH, fullW) = (span(d, kd, 0), span(h, kh, 1), span(wd, kw, 2))
        var full = [Float](repeating: 0, count: n * m * fullD * fullH * fullW)
        for b in 0..<n {
            for ci in 0..<c {
                let g = ci / icg
                for iz in 0..<d {
                    for iy in 0..<h {
                        for ix in 0..<wd {
                            let v = x[(((b * c + ci) * d + iz) * h + iy) * wd + ix]
                            for o in 0..<ocg {
                                let volume = (b * m + g * ocg + o) * fullD
                                let kernelBase = (ci * ocg + o) * kd
                                for kz in 0..<kd {
                                    let fz = iz * a.strides[0] + kz * a.dilations[0]
                                    for ky in 0..<kh {
                                        let fy = iy * a.strides[1] + ky * a.dilations[1]
                                        let row = ((volume + fz) * fullH + fy) * fullW
                                        let taps = ((kernelBase + kz) * kh + ky) * kw
                                        for kx in 0..<kw {
                                            full[row + ix * a.strides[2] + kx * a.dilations[2]] += v * w[taps + kx]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let od = fullD - a.pads[0] - a.pads[3], oh = fullH - a.pads[1] - a.pads[4], ow = fullW - a.pads[2] - a.pads[5]
        var y = [Float](repeating: 0, count: n * m * od * oh * ow)
        var i = 0
        for b in 0..<n {
            for o in 0..<m {
                for oz in 0..<od {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let (fz, fy, fx) = (oz + a.pads[0], oy + a.pads[1], ox + a.pads[2])
                            let inside = fz < fullD && fy < fullH && fx < fullW
                            let scattered = inside ? full[(((b * m + o) * fullD + fz) * fullH + fy) * fullW + fx] : 0
                            y[i] = scattered + (bias?[o] ?? 0)
                            i += 1
                        }
                    }
                }
            }
        }
        return (y, [n, m, od, oh, ow])
    }

    /// ONNX ConvTranspose, 1-D: x [N, C, W], w [C, M / groups, KW]; stride, dilation, output_padding and
    /// pads [begin, end] of the one axis.
    static func convTranspose1d(x: [Float], xShape: [Int], w: [Float], wShape: [Int], bias: [Float]? = nil,
                                stride: Int = 1, dilation: Int = 1, outputPadding: Int = 0, pads: [Int] = [0, 0],
                                groups: Int = 1) -> (y: [Float], shape: [Int]) {
        let attributes = ConvTransposeAttributes(strides: [1, stride], dilations: [1, dilation],
                                                 outputPadding: [0, outputPadding], pads: [0, pads[0], 0, pads[1]],
                                                 groups: groups)
        let r = convTranspose2d(x: x, xShape: [xShape[0], xShape[1], 1, xShape[2]], w: w,
                                wShape: [wShape[0], wShape[1], 1, wShape[2]], bias: bias, attributes)
        return (r.y, [r.shape[0], r.shape[1], r.shape[3]])
    }
}
