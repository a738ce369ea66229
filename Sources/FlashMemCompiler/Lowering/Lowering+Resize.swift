// Resize and Upsample → resize.comp. Shapes are static, so where every output coordinate samples the input, and
// with which weights, is known at compile time: this file computes, per resized dim, a table of (index, weight)
// taps in double precision following the ONNX reference implementation (onnx/reference/ops/op_resize.py: the
// coordinate transformation, its neighbour choice with edge clamping, nearest rounding, linear and cubic weights
// with exclude_outside and antialias, tf_crop_and_resize's extrapolation), and the kernel only sums taps.
// Owned by the data-movement family.

import FMBFormat

extension LoweringContext {
    func lowerResize(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        let parameters = try MovementOperands.resize(nodeContext(n), shape: xShape)
        guard parameters.outputShape == yShape else {
            throw error(n, "internal: resized shape \(parameters.outputShape) is not the output's \(yShape)")
        }
        let nearest = parameters.mode == .nearest
        if !nearest { try requireFloat(n, [x, y]) }
        let count = elementCount(yShape)
        let destination = try write(y, for: n)
        guard count > 0 else { return }
        guard xShape.allSatisfy({ $0 > 0 }) else { throw error(n, "cannot resize the empty input \(xShape)") }

        // Per dim: pass through (taps 0) or a run of the table.
        let inStrides = StridedAccess.rowMajorStrides(xShape)
        var table: [Float] = []
        var dims: [(out: Int, inStride: Int, offset: Int, taps: Int)] = []
        for d in xShape.indices {
            let roi = parameters.roi?[d]
            if ResizeTaps.isIdentity(inSize: xShape[d], outSize: yShape[d], scale: parameters.scales[d], roi: roi) {
                guard yShape[d] != 1 else { continue }
                if let last = dims.last, last.taps == 0, last.inStride == inStrides[d] * yShape[d] {
                    // Neighbouring pass-through dims (N and C of NCHW) are one dim: fewer divisions per element.
                    dims[dims.count - 1] = (last.out * yShape[d], inStrides[d], 0, 0)
                } else {
                    dims.append((yShape[d], inStrides[d], 0, 0))
                }
                continue
            }
            let taps = ResizeTaps.compute(inSize: xShape[d], outSize: yShape[d], scale: parameters.scales[d], roi: roi,
                                          parameters: parameters)
            dims.append((yShape[d], inStrides[d], table.count, taps.perOutput))
            table += taps.entries
        }
        if dims.isEmpty { dims = [(1, 0, 0, 0)] }
        guard dims.filter({ $0.taps > 0 }).count <= 3 else {
            throw error(n, "resizing more than 3 dims at once is not supported")
        }
        guard dims.count <= MovementCopy.maxRank else {
            throw error(n, "resizing a tensor with \(dims.count) dims of size > 1 is not supported (at most \(MovementCopy.maxRank))")
        }
        if table.isEmpty { table = [0, 0] }
        let tableName = temporary("\(y)#resize_taps", shape: [table.count])
        initializers[tableName] = ConstantTensor(dtype: .float32, shape: [table.count],
                                                 bytes: TensorBytes(table.withUnsafeBytes { Array($0) }))

        let pad = MovementCopy.maxRank - dims.count
        var push = PushConstants()
        push.append([count, dims.count])
        push.append(Float(parameters.extrapolation))
        push.append(dims.map(\.out) + [Int](repeating: 1, count: pad))
        push.append(dims.map(\.inStride) + [Int](repeating: 0, count: pad))
        push.append(dims.map(\.offset) + [Int](repeating: 0, count: pad))
        push.append(dims.map(\.taps) + [Int](repeating: 0, count: pad))
        let wg = 256
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.resize, specConstants: [UInt32(wg), nearest ? 1 : 0],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        let combinations = dims.map { max($0.taps, 1) }.reduce(1, *)
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(x, for: n), try read(tableName, for: n), destination], push: push,
                 flops: Double(count * combinations * 2), bytes: Double(count * (combinations + 1) * 4))
    }
}

/// The sampling taps of one resized dim (ONNX reference semantics, in Double).
enum ResizeTaps {
    /// Whether the dim is left as is (the reference skips it too).
    static func isIdentity(inSize: Int, outSize: Int, scale: Double, roi: (start: Double, end: Double)?) -> Bool {
        func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(abs(a), abs(b)) || a == b }
        return close(scale, 1) && inSize == outSize
            && (roi.map { abs($0.start) <= 1e-9 && close($0.end, 1) } ?? true)
    }

    /// `perOutput` (index, weight) pairs for each output coordinate, flattened as [index, weight, …]; index -1
    /// marks an extrapolated coordinate.
    static func compute(inSize: Int, outSize: Int, scale: Double, roi: (start: Double, end: Double)?,
                        parameters p: MovementOperands.Resize) -> (perOutput: Int, entries: [Float]) {
        let outputWidth = scale * Double(inSize)
        var rows: [[(index: Int, weight: Double)]] = []
        for yi in 0..<outSize {
            let y = Double(yi)
            var x: Double
            var extrapolated = false
            switch p.coordinateMode {
            case "align_corners":
                x = outputWidth == 1 ? 0 : y * Double(inSize - 1) / (outputWidth - 1)
            case "asymmetric":
                x = y / scale
            case "tf_crop_and_resize":
                let r = roi ?? (0, 1)
                x = outputWidth == 1 ? (r.end - r.start) * Double(inSize - 1) / 2
                                     : y * (r.end - r.start) * Double(inSize - 1) / (outputWidth - 1)
                x += r.start * Double(inSize - 1)
                extrapolated = x < 0 || x > Double(inSize - 1)
            case "pytorch_half_pixel":
                x = outputWidth == 1 ? -0.5 : (y + 0.5) / scale - 0.5
            case "half_pixel_symmetric":
                let adjustment = Double(outSize) / outputWidth
                let center = Double(inSize) / 2
                x = center * (1 - adjustment) + (y + 0.5) / scale - 0.5
            default:  // half_pixel
                x = (y + 0.5) / scale - 0.5
            }
            if extrapolated {
                rows.append([(-1, 0)])
                continue
            }
            let ratio = x == x.rounded(.down) ? 1.0 : x - x.rounded(.down)
            var coeffs = coefficients(ratio: ratio, scale: scale, parameters: p)
            let count = coeffs.count
            let padWidth = (count + 1) / 2
            let padded = x + Double(padWidth)
            let floorPadded = padded.rounded(.down)
            let frac = padded - floorPadded
            let offset: Int
            if count % 2 == 0 {
                offset = frac == 0 ? -(count / 2) : -(count / 2) + 1
            } else {
                let base = -((count - 1) / 2)
                offset = frac <= 0.5 ? base : base + 1
            }
            let start = Int(floorPadded) + offset - padWidth
            if p.excludeOutside {
                for k in 0..<count where start + k < 0 || start + k >= inSize { coeffs[k] = 0 }
                let sum = coeffs.reduce(0, +)
                if sum != 0 { coeffs = coeffs.map { $0 / sum } }
            }
            var row = (0..<count).map { k in (index: min(max(start + k, 0), inSize - 1), weight: coeffs[k]) }
            if p.mode == .nearest {
                row = [row.first(where: { $0.weight != 0 }) ?? row[row.count - 1]]
                row[0].weight = 1
            }
            rows.append(row)
        }
        let perOutput = rows.map(\.count).max() ?? 1
        var entries: [Float] = []
        entries.reserveCapacity(outSize * perOutput * 2)
        for row in rows {
            for k in 0..<perOutput {
                if k < row.count {
                    entries += [Float(row[k].index), Float(row[k].weight)]
                } else {
                    // Padding taps (extrapolated rows keep -1 so the kernel sees it on any tap).
                    entries += [row[0].index < 0 ? -1 : 0, 0]
                }
            }
        }
        return (perOutput, entries)
    }

    static func coefficients(ratio: Double, scale: Double, parameters p: MovementOperands.Resize) -> [Double] {
        switch p.mode {
        case .nearest:
            if ratio == 1 { return [0, 1] }
            switch p.nearestMode {
            case "round_prefer_ceil": return ratio < 0.5 ? [1, 0] : [0, 1]
            case "floor": return [1, 0]
            case "ceil": return [0, 1]
            default: return ratio <= 0.5 ? [1, 0] : [0, 1]  // round_prefer_floor
            }
        case .linear:
            guard p.antialias else { return [1 - ratio, ratio] }
            let s = min(scale, 1)
            let start = Int((-1 / s).rounded(.down)) + 1
            let footprint = 2 - 2 * start
            let coeffs = (start..<(start + footprint)).map { max(0, min(1, 1 - abs((Double($0) - ratio) * s))) }
            let sum = coeffs.reduce(0, +)
            return coeffs.map { $0 / sum }
        case .cubic:
            let a = p.cubicA
            guard p.antialias else {
                let r1 = ratio + 1, q = 1 - ratio, q1 = q + 1
                return [((a * r1 - 5 * a) * r1 + 8 * a) * r1 - 4 * a,
                        ((a + 2) * ratio - (a + 3)) * ratio * ratio + 1,
                        ((a + 2) * q - (a + 3)) * q * q + 1,
                        ((a * q1 - 5 * a) * q1 + 8 * a) * q1 - 4 * a]
            }
            let s = min(scale, 1)
            func kernel(_ x: Double) -> Double {
                let x = abs(x), x2 = x * x, x3 = x2 * x
                if x <= 1 { return (a + 2) * x3 - (a + 3) * x2 + 1 }
                if x < 2 { return a * x3 - 5 * a * x2 + 8 * a * x - 4 * a }
                return 0
            }
            let iStart = Int((-2 / s).rounded(.down)) + 1
            let iEnd = 2 - iStart
            let coeffs = (iStart..<iEnd).map { kernel(s * (Double($0) - ratio)) }
            let sum = coeffs.reduce(0, +)
            return coeffs.map { $0 / sum }
        }
    }
}
