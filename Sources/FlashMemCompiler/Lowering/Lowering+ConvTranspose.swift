// ConvTranspose (1-D, 2-D and 3-D; 1-D runs as 2-D with H = 1) → conv_transpose.comp, a gather over the
// output split into stride phases, with its weight and bias packed into one image (WeightPacking.convTranspose
// below, which reuses the Conv packing per phase). Pads, output_padding, output_shape and auto_pad are resolved
// once, by TransposedWindowGeometry (ShapeInference+Spatial.swift), for shape inference and lowering alike.

import FMBFormat

extension KernelCatalog {
    /// X, weights+bias, Y. Push: C D H W OC OD OH OW ICG OCG OCBG OCB KD KH KW SD SH SW PF PT PL DD DH DW log2W
    /// log2H. CT_DIMS 2 (1-D and 2-D, D = KD = SD = DD = 1) or 3.
    static let convTranspose = KernelFamily(file: "conv_transpose.comp", bindings: [.storageBuffer, .storageImage,
                                                                                   .storageBuffer],
                                            pushConstantSize: 26 * 4,
                                            axes: [("CT_PIX", ["2", "1"]), ("CT_OCT", ["2", "1"]),
                                                   ("CT_DIMS", ["2", "3"])])

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
    /// [OC, ICG, KD·KH, KW] (for the texel blocks and the bias texels), plus the stride phases' taps per axis.
    /// 1-D and 2-D have one depth phase holding the one depth tap.
    public struct ConvTransposeGeometry: Equatable, Sendable {
        public var conv: ConvGeometry
        /// KD (1 below 3-D); conv.kernelH is KD·KH.
        public var kernelD: Int
        /// Per phase of each axis (0..<stride): the taps reaching it.
        public var depthTaps: [TransposedTaps]
        public var rowTaps: [TransposedTaps]
        public var columnTaps: [TransposedTaps]

        /// Any spatial rank up to 3: `kernel`, `strides`, `dilations` and `padsBegin` hold one entry per
        /// spatial axis (1-D: W; 2-D: H, W; 3-D: D, H, W).
        public init(outChannels: Int, inChannelsPerGroup: Int, groups: Int, kernel: [Int], strides: [Int],
                    dilations: [Int], padsBegin: [Int]) {
            precondition((1...3).contains(kernel.count) && [strides.count, dilations.count, padsBegin.count]
                .allSatisfy { $0 == kernel.count }, "conv transpose geometry: one entry per spatial axis")
            let missing = 3 - kernel.count
            func axis(_ values: [Int], _ neutral: Int) -> [Int] { [Int](repeating: neutral, count: missing) + values }
            let (k, st, dl, pad) = (axis(kernel, 1), axis(strides, 1), axis(dilations, 1), axis(padsBegin, 0))
            conv = ConvGeometry(outChannels: outChannels, inChannelsPerGroup: inChannelsPerGroup, kernelH: k[0] * k[1],
                                kernelW: k[2], groups: groups)
            kernelD = k[0]
            func taps(_ i: Int) -> [TransposedTaps] {
                (0..<st[i]).map {
                    TransposedTaps(phase: $0, pad: pad[i], kernel: k[i], stride: st[i], dilation: dl[i])
                }
            }
            depthTaps = taps(0)
            rowTaps = taps(1)
            columnTaps = taps(2)
        }

        /// 2-D, from the Conv geometry of the weight seen as [OC, ICG, KH, KW].
        public init(conv: ConvGeometry, strides: (h: Int, w: Int), dilations: (h: Int, w: Int),
                    padsBegin: (top: Int, left: Int)) {
            self.init(outChannels: conv.outChannels, inChannelsPerGroup: conv.inChannelsPerGroup, groups: conv.groups,
                      kernel: [conv.kernelH, conv.kernelW], strides: [strides.h, strides.w],
                      dilations: [dilations.h, dilations.w], padsBegin: [padsBegin.top, padsBegin.left])
        }

        /// KH (conv.kernelH is KD·KH).
        public var kernelH: Int { conv.kernelH / kernelD }
    }

    /// ConvTranspose weights (row-major [C, OCG, KD, KH, KW], C = groups · ICG; KD = 1 below 3-D) and bias ([OC],
    /// or nil for zeros) in conv_transpose.comp's order: phase by phase (row-major over depth, rows, columns),
    /// the phase's taps as a Conv weight [OC, ICG, nTz·nTy, nTx] in `conv2d`'s order (without its bias texels),
    /// then the bias texels where `conv2d` puts them for the whole kernel.
    public static func convTranspose(weight: [Float], bias: [Float]?, geometry t: ConvTransposeGeometry) -> [Float] {
        let c = t.conv
        precondition(weight.count == c.outChannels * c.inChannelsPerGroup * c.kernelH * c.kernelW,
                     "conv transpose weight size does not match its geometry")
        var out = [Float](repeating: 0, count: c.texels * 4)
        var offset = 0
        for depth in t.depthTaps {
            for rows in t.rowTaps {
                for columns in t.columnTaps {
                    let phase = ConvGeometry(outChannels: c.outChannels, inChannelsPerGroup: c.inChannelsPerGroup,
                                             kernelH: depth.count * rows.count, kernelW: columns.count, groups: c.groups)
                    let taps = phaseWeight(weight, geometry: t, taps: (depth, rows, columns))
                    let packed = conv2d(weight: taps, bias: nil, geometry: phase)
                    out.replaceSubrange(offset..<offset + phase.weightTexels * 4,
                                        with: packed[..<(phase.weightTexels * 4)])
                    offset += phase.weightTexels * 4
                }
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

    /// The taps of one phase as a Conv weight [OC, ICG, nTz, nTy, nTx]: W'[m, ic, tz, ty, tx] =
    /// W[g·ICG + ic, m − g·OCG, depth.first + tz·depth.step, rows.first + ty·rows.step,
    ///   columns.first + tx·columns.step].
    private static func phaseWeight(_ weight: [Float], geometry t: ConvTransposeGeometry,
                                    taps: (depth: TransposedTaps, rows: TransposedTaps, columns: TransposedTaps))
        -> [Float] {
        let c = t.conv, (depth, rows, columns) = taps
        let ocg = c.outChannelsPerGroup, icg = c.inChannelsPerGroup, kh = t.kernelH
        var out = [Float](repeating: 0, count: c.outChannels * icg * depth.count * rows.count * columns.count)
        var i = 0
        for m in 0..<c.outChannels {
            let g = m / ocg
            for ic in 0..<icg {
                let source = ((g * icg + ic) * ocg + m % ocg) * t.kernelD
                for tz in 0..<depth.count {
                    let slice = (source + depth.first + tz * depth.step) * kh
                    for ty in 0..<rows.count {
                        let row = (slice + rows.first + ty * rows.step) * c.kernelW
                        for tx in 0..<columns.count {
                            out[i] = weight[row + columns.first + tx * columns.step]
                            i += 1
                        }
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
        guard xShape.count == weight.shape.count, (3...5).contains(xShape.count) else {
            throw error(n, "\(max(xShape.count, weight.shape.count) - 2)-D ConvTranspose is not supported (input "
                        + "\(xShape), weight \(weight.shape)); only 1-D, 2-D and 3-D")
        }
        let channels = xShape[1]
        let groups = n.node.int("group", default: 1)
        guard groups >= 1, channels % groups == 0, weight.shape[0] == channels else {
            throw error(n, "group = \(groups) does not divide input channels \(channels) / weight \(weight.shape)")
        }
        let oc = weight.shape[1] * groups
        if let bias, bias.elementCount != oc {
            throw error(n, "the bias has \(bias.elementCount) values for \(oc) output channels")
        }
        let window = try transposedWindow(n, spatial: Array(xShape.dropFirst(2)),
                                          kernel: Array(weight.shape.dropFirst(2)))
        guard yShape == [xShape[0], oc] + window.geometry.output else {
            throw error(n, "the output shape \(yShape) disagrees with the computed "
                        + "\([xShape[0], oc] + window.geometry.output)")
        }

        let g = window.geometry
        let geometry = WeightPacking.ConvTransposeGeometry(outChannels: oc, inChannelsPerGroup: channels / groups,
                                                           groups: groups, kernel: g.kernel, strides: g.strides,
                                                           dilations: g.dilations, padsBegin: g.padsBegin)
        let packed = WeightPacking.convTranspose(weight: weight.floats(), bias: bias?.floats(), geometry: geometry)
        let image = self.image(named: wName, values: packed)
        guard case .image(let imageIndex) = image else { return }
        let extent = program.images[imageIndex]
        try emitConvTranspose(n, x: x, y: y, image: image, batch: xShape[0], channels: channels,
                              conv: geometry.conv, window: window,
                              log2W: ImageLayout.log2(extent.width), log2H: ImageLayout.log2(extent.height))
    }

    /// TransposedWindowGeometry of a ConvTranspose (as shape inference resolved it) with its input, and the
    /// three-axis (depth, height, width) view conv_transpose.comp takes: lower ranks get leading axes of size 1
    /// (kernel, stride and dilation 1, no pads).
    struct TransposedWindow {
        var geometry: TransposedWindowGeometry
        /// Spatial input sizes, one per axis of `geometry`.
        var input: [Int]

        /// Spatial axes of the node (1, 2 or 3).
        var rank: Int { input.count }

        private func padded(_ values: [Int], _ neutral: Int) -> [Int] {
            [Int](repeating: neutral, count: 3 - values.count) + values
        }

        var input3: [Int] { padded(input, 1) }
        var output3: [Int] { padded(geometry.output, 1) }
        var kernel3: [Int] { padded(geometry.kernel, 1) }
        var strides3: [Int] { padded(geometry.strides, 1) }
        var dilations3: [Int] { padded(geometry.dilations, 1) }
        var padsBegin3: [Int] { padded(geometry.padsBegin, 0) }
    }

    /// TransposedWindowGeometry of `n` for a 1-D, 2-D or 3-D input.
    private func transposedWindow(_ n: LoweringNode, spatial: [Int], kernel: [Int]) throws -> TransposedWindow {
        if let declared = n.node.ints("kernel_shape"), declared != kernel {
            throw error(n, "kernel_shape \(declared) disagrees with the weight's kernel \(kernel)")
        }
        do {
            return TransposedWindow(geometry: try TransposedWindowGeometry(node: n.node, input: spatial, kernel: kernel),
                                    input: spatial)
        } catch let failure as ShapeRuleError {
            throw error(n, failure.message)
        }
    }

    /// One conv_transpose.comp dispatch. Register tile: 2 pixels × 2 texel blocks per invocation (one weight load
    /// feeds 2 pixels, one input load 8 FMAs), 1 pixel on small phases so workgroups stay busy. On an H100,
    /// PP-OCR's two upsamplers took 34 and 27 µs with 2 pixels, 36 and 29 µs with 4 and 44 and 60 µs with 1;
    /// 1 texel block instead of 2 took 41 µs. 3-D runs the CT_DIMS = 3 variant (a loop over depth taps); 1-D and
    /// 2-D keep the variant without it.
    private func emitConvTranspose(_ n: LoweringNode, x: String, y: String, image: LoweredBinding, batch: Int,
                                   channels: Int, conv: WeightPacking.ConvGeometry, window w: TransposedWindow,
                                   log2W: Int, log2H: Int) throws {
        let (input, output, strides) = (w.input3, w.output3, w.strides3)
        let phasePixels = (0..<3).map { LoweringMath.ceilDiv(output[$0], strides[$0]) }.reduce(1, *)
        let wg = 64
        let pix = phasePixels >= 2 * wg * 4 ? 2 : 1
        let oct = conv.blocksPerGroup >= 2 ? 2 : 1
        let kernel = try self.kernel(KernelRequest(
            family: KernelCatalog.convTranspose,
            defines: ["CT_PIX": "\(pix)", "CT_OCT": "\(oct)", "CT_DIMS": w.rank == 3 ? "3" : "2"],
            specConstants: [UInt32(wg), n.activation.rawValue], workgroupSize: [UInt32(wg), 1, 1]))

        var push = PushConstants()
        push.append([channels] + input + [conv.outChannels] + output)
        push.append([conv.inChannelsPerGroup, conv.outChannelsPerGroup, conv.blocksPerGroup, conv.blocks])
        push.append(w.kernel3 + strides + w.padsBegin3 + w.dilations3 + [log2W, log2H])
        let grid = [LoweringMath.ceilDiv(phasePixels, wg * pix),
                    conv.groups * LoweringMath.ceilDiv(conv.blocksPerGroup, oct),
                    batch * strides.reduce(1, *)]
        // Each input pixel meets each tap once: N·C·D·H·W·OCG·KD·KH·KW multiply-adds.
        let inputCount = batch * channels * input.reduce(1, *)
        let taps = w.kernel3.reduce(1, *)
        let flops = 2.0 * Double(inputCount) * Double(conv.outChannelsPerGroup * taps)
        let bytes = Double((inputCount + batch * conv.outChannels * output.reduce(1, *)) * 4 + imageBytes(image))
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
