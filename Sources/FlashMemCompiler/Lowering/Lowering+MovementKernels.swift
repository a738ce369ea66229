// Data-movement ops with their own kernels: Gather (gather.comp; gather_image.comp when the table is a large
// constant float tensor — an embedding — which then streams as a weight image like any other weight, cut into
// row pieces under maxImageBytes), Pad (pad.comp) and Trilu (trilu.comp).
// Gather with constant indices folds on a constant table or, when the indices are evenly spaced, becomes a
// strided view (Lowering+Movement.swift). Owned by the data-movement family.

import FMBFormat

extension LoweringContext {
    // MARK: - Gather

    func lowerGather(_ n: LoweringNode) throws {
        let data = try input(n, 0), indices = try input(n, 1), y = try output(n)
        let dataShape = try shape(data, of: n), indexShape = try shape(indices, of: n), yShape = try shape(y, of: n)
        let axisAttribute = n.node.int("axis", default: 0)
        guard axisAttribute >= -dataShape.count && axisAttribute < dataShape.count else {
            throw error(n, "axis \(axisAttribute) is out of range for rank \(dataShape.count)")
        }
        let axis = axisAttribute < 0 ? axisAttribute + dataShape.count : axisAttribute
        let axisDim = dataShape[axis]
        if let indexType = dtype(indices), indexType.isFloat {
            throw error(n, "indices are \(indexType); Gather takes int32 or int64 indices")
        }
        let outer = dataShape[..<axis].reduce(1, *), inner = dataShape[(axis + 1)...].reduce(1, *)
        let indexCount = elementCount(indexShape)

        if let constantIndices = initializers[indices] {
            let raw = constantIndices.ints()
            guard raw.allSatisfy({ $0 >= -axisDim && $0 < axisDim }) else {
                throw error(n, "an index is outside [-\(axisDim), \(axisDim - 1)] (axis \(axis))")
            }
            let rows = raw.map { $0 < 0 ? $0 + axisDim : $0 }
            if let table = initializers[data],
               elementCount(yShape) <= max(MovementCopy.foldLimit, table.elementCount) {
                initializers[y] = MovementCopy.gather(table, rows: rows, outer: outer, axisDim: axisDim, inner: inner,
                                                      shape: yShape)
                return
            }
            // Evenly spaced rows (one index, a range, a stride, a repeated row): a slice of the axis, reshaped.
            let step = rows.count > 1 ? rows[1] - rows[0] : 1
            if !rows.isEmpty, zip(rows, rows.dropFirst()).allSatisfy({ $1 - $0 == step }) {
                var axes = dataShape.map { ShapeRules.SliceAxis(start: 0, step: 1, count: $0) }
                axes[axis] = ShapeRules.SliceAxis(start: rows[0], step: step, count: rows.count)
                try lowerStridedView(n, role: "gather", x: data, y: y) { $0.sliced(axes).reshaped(yShape) }
                return
            }
        }
        let count = elementCount(yShape)
        let destination = try write(y, for: n)
        guard count > 0 else { return }
        let flags = indexCheck(n, bound: axisDim)
        let wg = 256
        var push = PushConstants()
        push.append([count, max(indexCount, 1), max(inner, 1), axisDim])
        if let table = initializers[data], table.dtype.isFloat, table.elementCount >= MovementCopy.imageTableMinElements {
            // An embedding table: a weight image (streamed, fp16 in --precision fp16) read in row-major order; under
            // maxImageBytes, row pieces along the gathered axis, each step storing only its rows' elements.
            let pieces = try pieceRanges(n, weight: data, units: axisDim, granules: [1], axis: .rows) { r in
                LoweringMath.ceilDiv(outer * r.count * inner, 4)
            }
            let values = table.floats()
            let kernel = try self.kernel(KernelRequest(family: KernelCatalog.gatherImage, specConstants: [UInt32(wg)],
                                                       workgroupSize: [UInt32(wg), 1, 1]))
            let indexBinding = try read(indices, for: n)
            for (p, rows) in pieces.enumerated() {
                var piece: [Float]
                if pieces.count == 1 {
                    piece = values
                } else {
                    piece = []
                    piece.reserveCapacity(outer * rows.count * inner)
                    for o in 0..<outer {
                        piece += values[((o * axisDim + rows.lowerBound) * inner)..<((o * axisDim + rows.upperBound) * inner)]
                    }
                }
                let image = self.image(named: pieceName(data, p, of: pieces.count), values: piece)
                let extent = ImageLayout.extent(texels: LoweringMath.ceilDiv(piece.count, 4))
                var piecePush = push
                piecePush.append([ImageLayout.log2(extent.width), ImageLayout.log2(extent.height)])
                piecePush.append([rows.lowerBound, rows.count])
                try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                         bindings: [image, indexBinding, destination, flags], push: piecePush,
                         flops: 0, bytes: Double(count * 8 + indexCount * 4))
            }
            return
        }
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.gather, specConstants: [UInt32(wg)],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(data, for: n), try read(indices, for: n), destination, flags], push: push,
                 flops: 0, bytes: Double(count * 8 + indexCount * 4))
    }

    /// The flag tensor (8 bytes) of a run-time check that `n`'s indices lie in [-bound, bound): its kernels set
    /// word 0 (and word 1 to a bad index) and the runtime fails the run naming the node (RuntimeCheck).
    func indexCheck(_ n: LoweringNode, bound: Int) -> LoweredBinding {
        var name = "\(n.label)#indexCheck"
        var i = 1
        while program.tensors[name] != nil || values[name] != nil || initializers[name] != nil {
            name = "\(n.label)#indexCheck\(i)"
            i += 1
        }
        program.tensors[name] = ArenaTensor(name: name, byteSize: 8)
        program.checks.append(LoweredCheck(kind: .indexInRange, tensor: name, node: "\(n.op) '\(n.label)'", bound: bound))
        return .tensor(name)
    }

    // MARK: - Pad

    func lowerPad(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        let pads = try MovementOperands.pads(nodeContext(n), shape: xShape)
        guard let padded = try? pads.outputShape(xShape), padded == yShape else {
            throw error(n, "internal: padded shape \(String(describing: try? pads.outputShape(xShape))) is not the output's \(yShape)")
        }
        let isFloat = dtype(x)?.isFloat ?? true
        // The constant as the arena's 32-bit pattern of x's type.
        var valueBits: UInt32 = 0
        if let value = pads.constantValue {
            valueBits = isFloat ? Float(value.reals()[0]).bitPattern
                                : UInt32(bitPattern: Int32(truncatingIfNeeded: value.ints()[0]))
        }
        // Merge neighbouring dims the padding leaves alone (and, for the constant mode, a padded dim with the
        // unpadded ones inside it: c - p·inner is inside exactly when the outer coordinate is).
        var outShape: [Int] = [], inShape: [Int] = [], begin: [Int] = []
        for d in xShape.indices {
            let padded = pads.begin[d] != 0 || pads.end[d] != 0
            if let last = outShape.indices.last, !padded,
               pads.mode == .constant || (begin[last] == 0 && outShape[last] == inShape[last]) {
                outShape[last] *= yShape[d]
                inShape[last] *= xShape[d]
                begin[last] *= xShape[d]
            } else {
                outShape.append(yShape[d])
                inShape.append(xShape[d])
                begin.append(pads.begin[d])
            }
        }
        if outShape.isEmpty { (outShape, inShape, begin) = ([1], [1], [0]) }
        guard outShape.count <= MovementCopy.maxRank else {
            throw error(n, "padding \(outShape.count) separate dims is not supported (at most \(MovementCopy.maxRank))")
        }
        let count = elementCount(yShape)
        let destination = try write(y, for: n)
        guard count > 0 else { return }
        let source = try read(x, for: n)
        let valueBinding = try pads.constantInput.map { try read($0, for: n) } ?? source
        let pad = MovementCopy.maxRank - outShape.count
        var push = PushConstants()
        push.append([count, outShape.count])
        push.append(valueBits)
        push.append(outShape + [Int](repeating: 1, count: pad))
        push.append(inShape + [Int](repeating: 1, count: pad))
        push.append(begin + [Int](repeating: 0, count: pad))
        let wg = 256
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.pad,
                                                   specConstants: [UInt32(wg), pads.mode.rawValue,
                                                                   pads.constantInput == nil ? 0 : 1],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [source, valueBinding, destination], push: push, flops: 0, bytes: Double(count * 8))
    }

    // MARK: - Trilu

    func lowerTrilu(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let xShape = try shape(x, of: n)
        guard xShape.count >= 2 else { throw error(n, "the input must have rank ≥ 2, not \(xShape)") }
        let k = try MovementOperands.triluK(nodeContext(n))
        let upper = n.node.int("upper", default: 1) != 0
        let rows = xShape[xShape.count - 2], cols = xShape[xShape.count - 1]
        let count = elementCount(xShape)
        let destination = try write(y, for: n)
        guard count > 0 else { return }
        // k beyond the matrix keeps all or nothing; clamping keeps it in int32.
        let clampedK = max(-(rows + 1), min(cols + 1, k))
        var push = PushConstants()
        push.append([count, rows, cols, clampedK])
        let wg = 256
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.trilu, specConstants: [UInt32(wg), upper ? 1 : 0],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(x, for: n), destination], push: push, flops: 0, bytes: Double(count * 8))
    }
}

extension MovementCopy {
    /// Gather on a constant table: out[o, j, k] = table[o, rows[j], k].
    static func gather(_ table: ConstantTensor, rows: [Int], outer: Int, axisDim: Int, inner: Int,
                       shape: [Int]) -> ConstantTensor {
        let size = table.dtype.byteSize
        let rowBytes = inner * size
        var out: [UInt8] = []
        out.reserveCapacity(outer * rows.count * rowBytes)
        let p = table.bytes.pointer
        for o in 0..<outer {
            for r in rows {
                let start = (o * axisDim + r) * rowBytes
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[start..<(start + rowBytes)]))
            }
        }
        return ConstantTensor(dtype: table.dtype, shape: shape, bytes: TensorBytes(out))
    }
}
