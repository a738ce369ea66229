// ConvTranspose (2-D, and 1-D as 2-D with H = 1) → conv_transpose.comp, a gather over the output split into
// stride phases, with its weight and bias packed into one image (WeightPacking.convTranspose below, which
// reuses the Conv packing per phase). Pads, output_padding, output_shape and auto_pad are resolved once, by
// TransposedWindowGeometry (ShapeInference+Spatial.swift), for shape inference and lowering alike.

import FMBFormat

extension KernelCatalog {
    /// X, weights+bias, Y. Push: C H W OC OH OW ICG OCG OCBG OCB KH KW SH SW PT PL DH DW log2W log2H (as conv2d).
    static let convTranspose = KernelFamily(file: "conv_transpose.comp", bindings: [.storageBuffer, .storageImage,
                                                                                   .storageBuffer],
                                            pushConstantSize: 20 * 4,
                                            axes: [("CT_PIX", ["2", "1"]), ("CT_OCT", ["2", "1"])])

    static let convTransposeFamilies = [convTranspose]
}

extension WeightPacking {
    /// The kernel taps along one axis of a ConvTranspose that reach the outputs of phase r (outputs o with
    /// o ≡ r mod stride): first, first + step, … (count of them), the solutions of k·dilation ≡ r + pad
    /// (mod stride). conv_transpose.comp's phaseTaps computes the same.
    public struct TransposedTaps: Equatable, Sendable {
        public var first: Int
        public var step: Int
        public var count: Int

        public init(phase r: Int, pad: Int, kernel: Int, stride: Int, dilation: Int) {
            var step = 1
            while (step * dilation) % stride != 0 { step += 1 }  // stride / gcd(stride, dilation)
            self.step = step
            let target = (r + pad) % stride
            let first = (0..<min(step, kernel)).first { ($0 * dilation) % stride == target }
            self.first = first ?? kernel
            self.count = first.map { (kernel - $0 + step - 1) / step } ?? 0
        }
    }

    /// A ConvTranspose's geometry in conv_transpose.comp's terms: the Conv geometry of its weight seen as
    /// [OC, ICG, KH, KW] (for the texel blocks and the bias texels), plus the stride phases' taps.
    public struct ConvTransposeGeometry: Equatable, Sendable {
        public var conv: ConvGeometry
        /// Per phase of each axis (0..<stride): the taps reaching it.
        public var rowTaps: [TransposedTaps]
        public var columnTaps: [TransposedTaps]

        public init(conv: ConvGeometry, strides: (h: Int, w: Int), dilations: (h: Int, w: Int),
                    padsBegin: (top: Int, left: Int)) {
            self.conv = conv
            rowTaps = (0..<strides.h).map {
                TransposedTaps(phase: $0, pad: padsBegin.top, kernel: conv.kernelH, stride: strides.h,
                               dilation: dilations.h)
            }
            columnTaps = (0..<strides.w).map {
                TransposedTaps(phase: $0, pad: padsBegin.left, kernel: conv.kernelW, stride: strides.w,
                               dilation: dilations.w)
            }
        }
    }

    /// ConvTranspose weights (row-major [C, OCG, KH, KW], C = groups · ICG) and bias ([OC], or nil for zeros)
    /// in conv_transpose.comp's order: phase by phase (row-major), the phase's taps as a Conv weight
    /// [OC, ICG, nTy, nTx] in `conv2d`'s order (without its bias texels), then the bias texels where `conv2d`
    /// puts them for the whole kernel.
    public static func convTranspose(weight: [Float], bias: [Float]?, geometry t: ConvTransposeGeometry) -> [Float] {
        let c = t.conv
        precondition(weight.count == c.outChannels * c.inChannelsPerGroup * c.kernelH * c.kernelW,
                     "conv transpose weight size does not match its geometry")
        var out = [Float](repeating: 0, count: c.texels * 4)
        var offset = 0
        for rows in t.rowTaps {
            for columns in t.columnTaps {
                let phase = ConvGeometry(outChannels: c.outChannels, inChannelsPerGroup: c.inChannelsPerGroup,
                                         kernelH: rows.count, kernelW: columns.count, groups: c.groups)
                let packed = conv2d(weight: phaseWeight(weight, conv: c, rows: rows, columns: columns), bias: nil,
                                    geometry: phase)
                out.replaceSubrange(offset..<offset + phase.weightTexels * 4, with: packed[..<(phase.weightTexels * 4)])
                offset += phase.weightTexels * 4
            }
        }
        precondition(offset == c.weightTexels * 4, "the phases' taps do not cover the kernel")
        if let bias {
            for oc in 0..<c.outChannels {
                let (texel, lane) = c.biasTexel(oc: oc)
                out[texel * 4 + lane] = bias[oc]
            }
        }
        return out
    }

    /// The taps of one phase as a Conv weight [OC, ICG, nTy, nTx]: W'[m, ic, ty, tx] =
    /// W[g·ICG + ic, m − g·OCG, rows.first + ty·rows.step, columns.first + tx·columns.step].
    private static func phaseWeight(_ weight: [Float], conv c: ConvGeometry, rows: TransposedTaps,
                                    columns: TransposedTaps) -> [Float] {
        let ocg = c.outChannelsPerGroup, icg = c.inChannelsPerGroup
        var out = [Float](repeating: 0, count: c.outChannels * icg * rows.count * columns.count)
        var i = 0
        for m in 0..<c.outChannels {
            let g = m / ocg
            for ic in 0..<icg {
                let source = ((g * icg + ic) * ocg + m % ocg) * c.kernelH
                for ty in 0..<rows.count {
                    let row = (source + rows.first + ty * rows.step) * c.kernelW
                    for tx in 0..<columns.count {
                        out[i] = weight[row + columns.first + tx * columns.step]
                        i += 1
                    }
                }
            }
        }
        return out
    }
}

extension LoweringContext {
    static let convTransposeRules: [String: LoweringRule] = ["ConvTranspose": { $0.lowerConvTranspose }]

    func lowerConvTranspose(_ n: LoweringNode) throws {
        let x = try input(n, 0), wName = try input(n, 1), y = try output(n)
        try requireFloat(n, [x, y])
        let weight = try constantFloats(n, wName, what: "weight")
        let bias = try optionalInput(n, 2).map { try constantFloats(n, $0, what: "bias") }
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        guard xShape.count == weight.shape.count, xShape.count == 3 || xShape.count == 4 else {
            throw error(n, "\(max(xShape.count, weight.shape.count) - 2)-D ConvTranspose is not supported (input "
                        + "\(xShape), weight \(weight.shape)); only 1-D and 2-D")
        }
        let inShape = try nchw(n, xShape, what: "the input")
        let outShape = try nchw(n, yShape, what: "the output")
        let groups = n.node.int("group", default: 1)
        let ocPerGroup = weight.shape[1]
        guard groups >= 1, inShape.c % groups == 0, weight.shape[0] == inShape.c else {
            throw error(n, "group = \(groups) does not divide input channels \(inShape.c) / weight \(weight.shape)")
        }
        let oc = ocPerGroup * groups
        if let bias, bias.elementCount != oc {
            throw error(n, "the bias has \(bias.elementCount) values for \(oc) output channels")
        }
        let window = try transposedWindow(n, spatial: Array(xShape.dropFirst(2)),
                                          kernel: Array(weight.shape.dropFirst(2)))
        guard outShape == (inShape.n, oc, window.output.h, window.output.w) else {
            throw error(n, "the output shape \(yShape) disagrees with the computed [\(inShape.n), \(oc), "
                        + "\(window.output.h), \(window.output.w)]")
        }

        let conv = WeightPacking.ConvGeometry(outChannels: oc, inChannelsPerGroup: inShape.c / groups,
                                              kernelH: window.kernel.h, kernelW: window.kernel.w, groups: groups)
        let geometry = WeightPacking.ConvTransposeGeometry(conv: conv, strides: window.strides,
                                                           dilations: window.dilations, padsBegin: window.padsBegin)
        let packed = WeightPacking.convTranspose(weight: weight.floats(), bias: bias?.floats(), geometry: geometry)
        let image = self.image(named: wName, values: packed)
        guard case .image(let imageIndex) = image else { return }
        let extent = program.images[imageIndex]
        try emitConvTranspose(n, x: x, y: y, image: image, input: inShape, conv: conv, window: window,
                              log2W: ImageLayout.log2(extent.width), log2H: ImageLayout.log2(extent.height))
    }

    /// Spatial attributes of a ConvTranspose normalized to 2-D (1-D: H = KH = SH = DH = 1, no row pads).
    struct TransposedWindow2D {
        var kernel: (h: Int, w: Int)
        var strides: (h: Int, w: Int)
        var dilations: (h: Int, w: Int)
        var padsBegin: (top: Int, left: Int)
        var output: (h: Int, w: Int)
    }

    /// TransposedWindowGeometry of `n` (as shape inference resolved it) for a 1-D or 2-D input.
    private func transposedWindow(_ n: LoweringNode, spatial: [Int], kernel: [Int]) throws -> TransposedWindow2D {
        if let declared = n.node.ints("kernel_shape"), declared != kernel {
            throw error(n, "kernel_shape \(declared) disagrees with the weight's kernel \(kernel)")
        }
        let g: TransposedWindowGeometry
        do {
            g = try TransposedWindowGeometry(node: n.node, input: spatial, kernel: kernel)
        } catch let failure as ShapeRuleError {
            throw error(n, failure.message)
        }
        if spatial.count == 1 {
            return TransposedWindow2D(kernel: (1, g.kernel[0]), strides: (1, g.strides[0]),
                                      dilations: (1, g.dilations[0]), padsBegin: (0, g.padsBegin[0]),
                                      output: (1, g.output[0]))
        }
        return TransposedWindow2D(kernel: (g.kernel[0], g.kernel[1]), strides: (g.strides[0], g.strides[1]),
                                  dilations: (g.dilations[0], g.dilations[1]),
                                  padsBegin: (g.padsBegin[0], g.padsBegin[1]), output: (g.output[0], g.output[1]))
    }

    /// One conv_transpose.comp dispatch. Register tile: 2 pixels × 2 texel blocks per invocation (one weight load
    /// feeds 2 pixels, one input load 8 FMAs), 1 pixel on small phases so workgroups stay busy. On an H100,
    /// PP-OCR's two upsamplers took 34 and 27 µs with 2 pixels, 36 and 29 µs with 4 and 44 and 60 µs with 1;
    /// 1 texel block instead of 2 took 41 µs.
    private func emitConvTranspose(_ n: LoweringNode, x: String, y: String, image: LoweredBinding,
                                   input: (n: Int, c: Int, h: Int, w: Int), conv: WeightPacking.ConvGeometry,
                                   window: TransposedWindow2D, log2W: Int, log2H: Int) throws {
        let (oh, ow) = window.output
        let phasePixels = LoweringMath.ceilDiv(oh, window.strides.h) * LoweringMath.ceilDiv(ow, window.strides.w)
        let wg = 64
        let pix = phasePixels >= 2 * wg * 4 ? 2 : 1
        let oct = conv.blocksPerGroup >= 2 ? 2 : 1
        let kernel = try self.kernel(KernelRequest(
            family: KernelCatalog.convTranspose, defines: ["CT_PIX": "\(pix)", "CT_OCT": "\(oct)"],
            specConstants: [UInt32(wg), n.activation.rawValue], workgroupSize: [UInt32(wg), 1, 1]))

        var push = PushConstants()
        push.append([input.c, input.h, input.w, conv.outChannels, oh, ow,
                     conv.inChannelsPerGroup, conv.outChannelsPerGroup, conv.blocksPerGroup, conv.blocks,
                     window.kernel.h, window.kernel.w, window.strides.h, window.strides.w,
                     window.padsBegin.top, window.padsBegin.left, window.dilations.h, window.dilations.w, log2W, log2H])
        let grid = [LoweringMath.ceilDiv(phasePixels, wg * pix),
                    conv.groups * LoweringMath.ceilDiv(conv.blocksPerGroup, oct),
                    input.n * window.strides.h * window.strides.w]
        // Each input pixel meets each tap once: N·C·H·W·OCG·KH·KW multiply-adds.
        let inputCount = input.n * input.c * input.h * input.w
        let flops = 2.0 * Double(inputCount) * Double(conv.outChannelsPerGroup * conv.kernelH * conv.kernelW)
        let bytes = Double((inputCount + input.n * conv.outChannels * oh * ow) * 4 + imageBytes(image))
        try emit(n, kernel: kernel, groups: grid.map { UInt32(clamping: $0) },
                 bindings: [try read(x, for: n), image, try write(y, for: n)], push: push, flops: flops, bytes: bytes)
    }

    /// A constant float input of `n` (a weight or bias the kernel reads from its weight image).
    private func constantFloats(_ n: LoweringNode, _ name: String, what: String) throws -> ConstantTensor {
        guard let tensor = initializers[name], tensor.dtype.isFloat else {
            throw error(n, "the \(what) '\(name)' must be a constant float tensor (a run-time \(what) is not "
                        + "supported)")
        }
        return tensor
    }
}
