// CPU reference of ONNX ConvTranspose for ConvTransposeOpTests, written from the operator spec as a scatter
// (each input pixel adds W times itself onto the outputs its taps reach), the opposite direction of the
// compiler's gather kernel, and sharing nothing with the compiler. Owned by the ConvTranspose work.

extension ReferenceOps {
    /// Attributes of a 2-D ConvTranspose with its pads already resolved (1-D tests use H = KH = 1).
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
        let (n, c, h, wd) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let (ocg, kh, kw) = (wShape[1], wShape[2], wShape[3])
        let icg = c / a.groups, m = ocg * a.groups
        precondition(wShape[0] == c && c % a.groups == 0, "convTranspose2d: bad groups")
        // The whole scattered result, then the window [pad top, full − pad bottom) of it.
        let fullH = (h - 1) * a.strides[0] + a.outputPadding[0] + (kh - 1) * a.dilations[0] + 1
        let fullW = (wd - 1) * a.strides[1] + a.outputPadding[1] + (kw - 1) * a.dilations[1] + 1
        var full = [Float](repeating: 0, count: n * m * fullH * fullW)
        for b in 0..<n {
            for ci in 0..<c {
                let g = ci / icg
                for iy in 0..<h {
                    for ix in 0..<wd {
                        let v = x[((b * c + ci) * h + iy) * wd + ix]
                        for o in 0..<ocg {
                            let plane = (b * m + g * ocg + o) * fullH
                            for ky in 0..<kh {
                                let fy = iy * a.strides[0] + ky * a.dilations[0]
                                for kx in 0..<kw {
                                    let fx = ix * a.strides[1] + kx * a.dilations[1]
                                    full[(plane + fy) * fullW + fx] += v * w[((ci * ocg + o) * kh + ky) * kw + kx]
                                }
                            }
                        }
                    }
                }
            }
        }
        let oh = fullH - a.pads[0] - a.pads[2], ow = fullW - a.pads[1] - a.pads[3]
        var y = [Float](repeating: 0, count: n * m * oh * ow)
        for b in 0..<n {
            for o in 0..<m {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let fy = oy + a.pads[0], fx = ox + a.pads[1]
                        let scattered = fy < fullH && fx < fullW ? full[((b * m + o) * fullH + fy) * fullW + fx] : 0
                        y[((b * m + o) * oh + oy) * ow + ox] = scattered + (bias?[o] ?? 0)
                    }
                }
            }
        }
        return (y, [n, m, oh, ow])
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
