// Conv (2-D, and 1-D as 2-D with H = 1) → conv2d_igemm.comp (groups = 1) or conv2d.comp with its weight and
// bias packed into one image (WeightPacking.conv2d); under maxImageBytes a groups = 1 weight is cut into
// output-channel pieces, one image and one dispatch each (Lowering+Pieces.swift). Also the spatial-attribute helper that pooling shares.

import FMBFormat

/// Spatial attributes of a 2-D window op (Conv, MaxPool, AveragePool), normalized to 2-D.
struct Window2D: Equatable {
    var kernel: (h: Int, w: Int)
    var strides: (h: Int, w: Int)
    var dilations: (h: Int, w: Int)
    /// Pads at the beginning and end of each axis.
    var padTop = 0, padLeft = 0, padBottom = 0, padRight = 0

    static func == (a: Window2D, b: Window2D) -> Bool {
        a.kernel == b.kernel && a.strides == b.strides && a.dilations == b.dilations
            && (a.padTop, a.padLeft, a.padBottom, a.padRight) == (b.padTop, b.padLeft, b.padBottom, b.padRight)
    }

    /// Output extent along one axis (ONNX's formula; ceil_mode rounds up, and a window starting in the
    /// end padding is dropped as onnxruntime does).
    static func outputExtent(input: Int, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int,
                             ceilMode: Bool) -> Int {
        let span = (kernel - 1) * dilation + 1
        let numerator = input + padBegin + padEnd - span
        guard numerator >= 0 else { return 0 }
        var out = (ceilMode ? LoweringMath.ceilDiv(numerator, stride) : numerator / stride) + 1
        if ceilMode, (out - 1) * stride >= input + padBegin {
            out -= 1
        }
        return out
    }
}

extension LoweringContext {
    /// Reads kernel_shape / strides / dilations / pads / auto_pad of `n` for a spatial input `spatial`
    /// ([H, W], or [W] for 1-D ops) and returns 2-D attributes (1-D ops get H = 1).
    func window2D(_ n: LoweringNode, spatial: [Int], kernelShape: [Int]) throws -> Window2D {
        let rank = spatial.count
        guard rank == 1 || rank == 2 else {
            throw error(n, "\(rank)-D \(n.op) is not supported (only 1-D and 2-D)")
        }
        guard kernelShape.count == rank, kernelShape.allSatisfy({ $0 >= 1 }) else {
            throw error(n, "kernel_shape \(kernelShape) does not match a \(rank)-D input")
        }
        let strides = n.node.ints("strides") ?? [Int](repeating: 1, count: rank)
        let dilations = n.node.ints("dilations") ?? [Int](repeating: 1, count: rank)
        guard strides.count == rank, strides.allSatisfy({ $0 >= 1 }) else {
            throw error(n, "strides \(strides) must have \(rank) positive entries")
        }
        guard dilations.count == rank, dilations.allSatisfy({ $0 >= 1 }) else {
            throw error(n, "dilations \(dilations) must have \(rank) positive entries")
        }
        var pads = n.node.ints("pads") ?? [Int](repeating: 0, count: 2 * rank)
        let autoPad = n.node.string("auto_pad") ?? "NOTSET"
        switch autoPad {
        case "NOTSET":
            guard pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 }) else {
                throw error(n, "pads \(pads) must have \(2 * rank) non-negative entries")
            }
        case "VALID":
            pads = [Int](repeating: 0, count: 2 * rank)
        case "SAME_UPPER", "SAME_LOWER":
            for axis in 0..<rank {
                let out = LoweringMath.ceilDiv(spatial[axis], strides[axis])
                let span = (kernelShape[axis] - 1) * dilations[axis] + 1
                let total = max(0, (out - 1) * strides[axis] + span - spatial[axis])
                let small = total / 2
                pads[axis] = autoPad == "SAME_UPPER" ? small : total - small
                pads[axis + rank] = total - pads[axis]
            }
        default:
            throw error(n, "auto_pad '\(autoPad)' is not supported (NOTSET, VALID, SAME_UPPER, SAME_LOWER)")
        }
        if rank == 1 {
            return Window2D(kernel: (1, kernelShape[0]), strides: (1, strides[0]), dilations: (1, dilations[0]),
                            padTop: 0, padLeft: pads[0], padBottom: 0, padRight: pads[1])
        }
        return Window2D(kernel: (kernelShape[0], kernelShape[1]), strides: (strides[0], strides[1]),
                        dilations: (dilations[0], dilations[1]),
                        padTop: pads[0], padLeft: pads[1], padBottom: pads[2], padRight: pads[3])
    }

    /// The [N, C, H, W] view of an NCHW (or NCW: H = 1) shape.
    func nchw(_ n: LoweringNode, _ shape: [Int], what: String) throws -> (n: Int, c: Int, h: Int, w: Int) {
        switch shape.count {
        case 4: return (shape[0], shape[1], shape[2], shape[3])
        case 3: return (shape[0], shape[1], 1, shape[2])
        default: throw error(n, "\(what) has shape \(shape); only 1-D (N, C, W) and 2-D (N, C, H, W) inputs are supported")
        }
    }

    func lowerConv(_ n: LoweringNode) throws {
        let x = try input(n, 0), wName = try input(n, 1), y = try output(n)
        let biasName = optionalInput(n, 2)
        try requireFloat(n, [x, y])
        guard let weight = initializers[wName], weight.dtype.isFloat else {
            throw error(n, "the weight '\(wName)' must be a constant float tensor")
        }
        var bias: [Float]?
        if let biasName {
            guard let b = initializers[biasName], b.dtype.isFloat else {
                throw error(n, "the bias '\(biasName)' must be a constant float tensor")
            }
            bias = b.floats()
        }
        let xShape = try shape(x, of: n)
        let yShape = try shape(y, of: n)
        guard xShape.count == weight.shape.count, xShape.count == 3 || xShape.count == 4 else {
            throw error(n, "\(max(xShape.count, weight.shape.count) - 2)-D convolution is not supported (input \(xShape), "
                        + "weight \(weight.shape)); only 1-D and 2-D")
        }
        let inShape = try nchw(n, xShape, what: "the input")
        let outShape = try nchw(n, yShape, what: "the output")
        let groups = n.node.int("group", default: 1)
        let oc = weight.shape[0], icPerGroup = weight.shape[1]
        guard groups >= 1, inShape.c % groups == 0, oc % groups == 0, icPerGroup * groups == inShape.c else {
            throw error(n, "group = \(groups) does not divide input channels \(inShape.c) / weight \(weight.shape)")
        }
        if let bias, bias.count != oc {
            throw error(n, "the bias has \(bias.count) values for \(oc) output channels")
        }
        let kernelShape = Array(weight.shape.dropFirst(2))
        if let declared = n.node.ints("kernel_shape"), declared != kernelShape {
            throw error(n, "kernel_shape \(declared) disagrees with the weight's shape \(weight.shape)")
        }
        let window = try window2D(n, spatial: Array(xShape.dropFirst(2)), kernelShape: kernelShape)
        let oh = Window2D.outputExtent(input: inShape.h, kernel: window.kernel.h, stride: window.strides.h,
                                       dilation: window.dilations.h, padBegin: window.padTop,
                                       padEnd: window.padBottom, ceilMode: false)
        let ow = Window2D.outputExtent(input: inShape.w, kernel: window.kernel.w, stride: window.strides.w,
                                       dilation: window.dilations.w, padBegin: window.padLeft,
                                       padEnd: window.padRight, ceilMode: false)
        guard outShape == (inShape.n, oc, oh, ow) else {
            throw error(n, "the output shape \(yShape) disagrees with the computed [\(inShape.n), \(oc), \(oh), \(ow)]")
        }

        let geometry = WeightPacking.ConvGeometry(outChannels: oc, inChannelsPerGroup: icPerGroup,
                                                  kernelH: window.kernel.h, kernelW: window.kernel.w, groups: groups)
        if groups == 1 {
            try emitConvIGemm(n, x: x, y: y, weight: weight, weightName: wName, bias: bias, geometry: geometry,
                              input: inShape, oh: oh, ow: ow, window: window)
            return
        }
        // Grouped (depthwise…): the direct kernel, under maxImageBytes one dispatch per piece of whole groups.
        // Register tile: 4 pixels per invocation on large planes, fewer on small ones so workgroups stay busy.
        let pixels = oh * ow
        let wg = 64
        let pix = pixels >= 4 * wg * 8 ? 4 : (pixels >= 2 * wg * 4 ? 2 : 1)
        let kernel = try self.kernel(KernelRequest(
            family: KernelCatalog.conv2d, defines: ["CONV_PIX": "\(pix)", "CONV_OCT": "1"],
            specConstants: [UInt32(wg), n.activation.rawValue], workgroupSize: [UInt32(wg), 1, 1]))
        let taps = window.kernel.h * window.kernel.w
        let pieces = try pieceRanges(n, weight: wName, units: groups, granules: [1], axis: .groups) { r in
            r.count * geometry.blocksPerGroup * (icPerGroup * taps + 1)
        }
        let values = weight.floats()
        let ocPerGroup = oc / groups
        let xBinding = try read(x, for: n)
        for (p, range) in pieces.enumerated() {
            // A group range is a contiguous run of output channels, the weight's outermost dim.
            let oc0 = range.lowerBound * ocPerGroup, channels = range.count * ocPerGroup
            let pieceGeometry = WeightPacking.ConvGeometry(outChannels: channels, inChannelsPerGroup: icPerGroup,
                                                           kernelH: window.kernel.h, kernelW: window.kernel.w,
                                                           groups: range.count)
            let packed = pieces.count == 1
                ? WeightPacking.conv2d(weight: values, bias: bias, geometry: geometry)
                : WeightPacking.conv2d(weight: Array(values[(oc0 * icPerGroup * taps)..<((oc0 + channels) * icPerGroup * taps)]),
                                       bias: bias.map { Array($0[oc0..<(oc0 + channels)]) }, geometry: pieceGeometry)
            let image = self.image(named: pieceName(wName, p, of: pieces.count), values: packed)
            guard case .image(let imageIndex) = image else { return }
            let extent = program.images[imageIndex]
            let flops = 2.0 * Double(inShape.n * channels * oh * ow) * Double(icPerGroup * taps)
            let share = Double(range.count) / Double(groups)
            let bytes = Double(imageBytes(image)) + share * Double(elementCount(xShape) * 4 + elementCount(yShape) * 4)
            var push = PushConstants()
            push.append([inShape.c, inShape.h, inShape.w, oc, oh, ow,
                         icPerGroup, ocPerGroup, pieceGeometry.blocksPerGroup, pieceGeometry.blocks,
                         window.kernel.h, window.kernel.w, window.strides.h, window.strides.w,
                         window.padTop, window.padLeft, window.dilations.h, window.dilations.w,
                         ImageLayout.log2(extent.width), ImageLayout.log2(extent.height), range.lowerBound])
            let groupsGrid = [LoweringMath.ceilDiv(pixels, wg * pix), pieceGeometry.blocks, inShape.n]
            try emit(n, kernel: kernel, groups: groupsGrid.map { UInt32(clamping: $0) },
                     bindings: [xBinding, image, try write(y, for: n)], push: push, flops: flops, bytes: bytes)
        }
    }

    /// conv2d_igemm.comp (groups = 1): 64 × 64 tiles (128 × 128 ones measured slower on an H100, even on
    /// ResNet-50's batch-8 layers), and a split over K when the tiles alone would not fill the device. Under
    /// maxImageBytes the weight is cut into output-channel pieces (whole tiles of 16 blocks where that fits),
    /// one image and dispatch each, sharing the split over K and its one reduction.
    private func emitConvIGemm(_ n: LoweringNode, x: String, y: String, weight: ConstantTensor, weightName: String,
                               bias: [Float]?, geometry: WeightPacking.ConvGeometry,
                               input: (n: Int, c: Int, h: Int, w: Int), oh: Int, ow: Int, window: Window2D) throws {
        let oc = geometry.outChannels, blocks = geometry.blocks
        let pixels = input.n * oh * ow
        let k = input.c * window.kernel.h * window.kernel.w
        let (tm, tn) = (1, 4)
        let tileBlocks = 16 * tm, tilePixels = 16 * tn
        let tiles = LoweringMath.ceilDiv(pixels, tilePixels) * LoweringMath.ceilDiv(blocks, tileBlocks)
        let split = Lowering.splitK(tiles: tiles, k: k, step: 16, minDepth: 64)
        let kernel = try self.kernel(KernelRequest(
            family: KernelCatalog.conv2dIGemm, defines: ["IG_TM": "\(tm)", "IG_TN": "\(tn)"],
            specConstants: [split.slices > 1 ? FusedActivation.none.rawValue : n.activation.rawValue],
            workgroupSize: [256, 1, 1], sharedMemoryBytes: 16 * tileBlocks * 16 + 16 * tilePixels * 4))
        let pieces = try pieceRanges(n, weight: weightName, units: blocks, granules: [tileBlocks, 1],
                                     axis: .outputChannels) { r in r.count * k + r.count }
        let count = pixels * oc
        let target = split.slices > 1 ? temporary("\(y)#splitk", shape: [split.slices, count]) : y
        let xBinding = try read(x, for: n)
        let values = weight.floats()
        let xBytes = input.n * input.c * input.h * input.w * 4
        for (p, range) in pieces.enumerated() {
            let oc0 = range.lowerBound * 4, channels = min(oc, range.upperBound * 4) - oc0
            let pieceGeometry = WeightPacking.ConvGeometry(outChannels: channels, inChannelsPerGroup: geometry.inChannelsPerGroup,
                                                           kernelH: geometry.kernelH, kernelW: geometry.kernelW, groups: 1)
            // Output channels are the weight's outermost dim, so a channel range is a contiguous run.
            let packed = pieces.count == 1
                ? WeightPacking.conv2d(weight: values, bias: bias, geometry: geometry)
                : WeightPacking.conv2d(weight: Array(values[(oc0 * k)..<((oc0 + channels) * k)]),
                                       bias: bias.map { Array($0[oc0..<(oc0 + channels)]) }, geometry: pieceGeometry)
            let image = self.image(named: pieceName(weightName, p, of: pieces.count), values: packed)
            guard case .image(let imageIndex) = image else { return }
            let extent = program.images[imageIndex]
            let flops = 2.0 * Double(pixels * channels) * Double(k)
            let bytes = Double(xBytes + imageBytes(image) + pixels * channels * 4)
            var push = PushConstants()
            push.append([input.n, input.c, input.h, input.w, channels, oh, ow, pieceGeometry.blocks,
                         window.kernel.h, window.kernel.w, window.strides.h, window.strides.w,
                         window.padTop, window.padLeft, window.dilations.h, window.dilations.w,
                         k, split.kPerSlice, split.slices,
                         ImageLayout.log2(extent.width), ImageLayout.log2(extent.height), oc0, oc])
            let groups = [LoweringMath.ceilDiv(pixels, tilePixels), LoweringMath.ceilDiv(pieceGeometry.blocks, tileBlocks),
                          split.slices]
            try emit(n, kernel: kernel, groups: groups.map { UInt32(clamping: $0) },
                     bindings: [xBinding, image, try write(target, for: n)], push: push, flops: flops, bytes: bytes)
        }
        if split.slices > 1 {
            try emitSplitKReduce(n, partial: target, y: y, count: count, slices: split.slices)
        }
    }
}
