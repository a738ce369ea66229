// Gemm and MatMul.
//   constant B (Gemm; MatMul with a 2-D B, or one whose leading dims are 1) → gemm_tiled.comp for M ≥ 64,
//     gemm.comp for fewer rows, either split over K (+ splitk_reduce.comp) when its tiles would not fill the
//     device; B packed by WeightPacking.gemm with alpha folded in and a per-column C (times beta) as the
//     bias texels;
//     any other C → gemm into a temporary, then binary.comp adds beta·C (the relu goes on the add);
//   two activations (MatMul; Gemm without transposes and alpha = 1) → matmul.comp with numpy batch
//     broadcasting (a constant operand is then a resident arena tensor).

import FMBFormat

extension LoweringContext {
    func lowerGemm(_ n: LoweringNode) throws {
        let a = try input(n, 0), b = try input(n, 1), y = try output(n)
        let c = optionalInput(n, 2)
        try requireFloat(n, [a, b, y] + (c.map { [$0] } ?? []))
        let alpha = n.node.float("alpha", default: 1), beta = n.node.float("beta", default: 1)
        let transA = n.node.int("transA", default: 0) != 0, transB = n.node.int("transB", default: 0) != 0
        let aShape = try shape(a, of: n), bShape = try shape(b, of: n), yShape = try shape(y, of: n)
        guard aShape.count == 2, bShape.count == 2 else {
            throw error(n, "Gemm needs 2-D A and B, got \(aShape) and \(bShape)")
        }
        let (m, k) = transA ? (aShape[1], aShape[0]) : (aShape[0], aShape[1])
        let (kb, nCols) = transB ? (bShape[1], bShape[0]) : (bShape[0], bShape[1])
        guard k == kb, yShape == [m, nCols] else {
            throw error(n, "shapes A \(aShape) B \(bShape) → Y \(yShape) do not agree (transA \(transA), transB \(transB))")
        }
        if initializers[a] != nil && initializers[b] == nil {
            throw error(n, "a constant A with an activation B is not supported (only constant B)")
        }
        // Where C goes: into the bias texels when it is a constant per-column vector, else a separate add.
        var biasColumns: [Float]?
        var separateC: String?
        if let c, beta != 0 {
            let cShape = try shape(c, of: n)
            if let constant = initializers[c], constant.elementCount == nCols || constant.elementCount == 1,
               cShape.count <= 1 || (cShape.count == 2 && cShape[0] == 1) {
                let values = constant.floats()
                biasColumns = values.count == nCols ? values : [Float](repeating: values[0], count: nCols)
            } else {
                separateC = c
            }
            if initializers[b] == nil, biasColumns != nil {
                // matmul.comp has no bias: the add step takes C.
                biasColumns = nil
                separateC = c
            }
        }
        let product = separateC == nil ? y : temporary("\(y)#gemm", shape: [m, nCols])
        let productNode = separateC == nil ? n : withoutActivation(n)

        if let constantB = initializers[b] {
            try emitGemm(productNode, a: a, aStrides: transA ? (1, m) : (k, 1), m: m, k: k, n: nCols,
                         b: constantB, bName: b, transB: transB, alpha: alpha, bias: biasColumns, beta: beta,
                         aBytes: elementCount(aShape) * 4, y: product)
        } else {
            guard !transA, !transB, alpha == 1 else {
                throw error(n, "Gemm with an activation B and transA, transB or alpha ≠ 1 is not supported yet")
            }
            try emitMatMul(productNode, a: a, aShape: aShape, b: b, bShape: bShape, y: product, yShape: [m, nCols])
        }
        if let separateC {
            try addScaledC(n, product: product, c: separateC, beta: beta, y: y)
        }
    }

    func lowerMatMul(_ n: LoweringNode) throws {
        let a = try input(n, 0), b = try input(n, 1), y = try output(n)
        try requireFloat(n, [a, b, y])
        let aShape = try shape(a, of: n), bShape = try shape(b, of: n), yShape = try shape(y, of: n)
        guard !aShape.isEmpty, !bShape.isEmpty else {
            throw error(n, "MatMul of a scalar is not defined")
        }
        // A constant B whose leading dims are all 1 is a plain [K, N] weight.
        if let constantB = initializers[b], initializers[a] == nil, bShape.count >= 2,
           bShape.dropLast(2).allSatisfy({ $0 == 1 }) {
            let k = bShape[bShape.count - 2], nCols = bShape[bShape.count - 1]
            guard aShape.last == k else {
                throw error(n, "A \(aShape) and B \(bShape) disagree on K")
            }
            // Leading dims of A (and its M) flatten into the gemm's M; the output must be [.., M, N].
            let m = elementCount(aShape) / max(k, 1)
            guard elementCount(yShape) == m * nCols, yShape.last == nCols else {
                throw error(n, "the output shape \(yShape) does not fit A \(aShape) × B \(bShape)")
            }
            try emitGemm(n, a: a, aStrides: (k, 1), m: m, k: k, n: nCols, b: constantB, bName: b, transB: false,
                         alpha: 1, bias: nil, beta: 1, aBytes: elementCount(aShape) * 4, y: y)
            return
        }
        try emitMatMul(n, a: a, aShape: aShape, b: b, bShape: bShape, y: y, yShape: yShape)
    }

    /// gemm.comp: Y[M, N] = act(A × alpha·B' + beta·bias).
    private func emitGemm(_ n: LoweringNode, a: String, aStrides: (m: Int, k: Int), m: Int, k: Int, n nCols: Int,
                          b: ConstantTensor, bName: String, transB: Bool, alpha: Float, bias: [Float]?, beta: Float,
                          aBytes: Int, y: String) throws {
        guard b.dtype.isFloat else {
            throw error(n, "the constant B '\(bName)' must be a float tensor")
        }
        let geometry = WeightPacking.GemmGeometry(k: k, n: nCols)
        let packed = WeightPacking.gemm(b: b.floats(), transB: transB, geometry: geometry, alpha: alpha,
                                        bias: bias, beta: beta)
        let image = self.image(named: bName, values: packed)
        guard case .image(let imageIndex) = image else { return }
        let extent = program.images[imageIndex]

        let log2W = ImageLayout.log2(extent.width), log2H = ImageLayout.log2(extent.height)
        let flops = 2.0 * Double(m) * Double(k) * Double(nCols)
        let bytes = Double(aBytes + imageBytes(image) + m * nCols * 4)
        let kernel: Int
        let groups: [Int]
        let split: (slices: Int, kPerSlice: Int)
        if m >= 64 {
            // Many rows: shared-memory tiles, 128 × 128 where they still make a full wave of workgroups.
            let (tm, tn) = Lowering.tileShape(m: m, n: nCols)
            let rowTiles = LoweringMath.ceilDiv(m, 64 * tm), columnTiles = LoweringMath.ceilDiv(geometry.blocks, 16 * tn)
            guard rowTiles <= Lowering.maxGroupsPerAxis else {
                throw error(n, "M = \(m) rows exceed the dispatch grid of the matmul kernel")
            }
            split = Lowering.splitK(tiles: rowTiles * columnTiles, k: k, step: 16, minDepth: 64)
            kernel = try self.kernel(KernelRequest(
                family: KernelCatalog.gemmTiled, defines: ["GT_TM": "\(tm)", "GT_TN": "\(tn)"],
                specConstants: [split.slices > 1 ? FusedActivation.none.rawValue : n.activation.rawValue],
                workgroupSize: [256, 1, 1], sharedMemoryBytes: 16 * 16 * (tm + tn) * 16))
            groups = [columnTiles, rowTiles, split.slices]
        } else {
            // Few rows: one texel of columns per invocation, TM rows, a split over K to fill the device.
            let wg = 64
            let tm = m >= 4 ? 4 : 1
            let rowGroups = LoweringMath.ceilDiv(m, tm)
            guard rowGroups <= Lowering.maxGroupsPerAxis else {
                throw error(n, "M = \(m) rows exceed the dispatch grid of the matmul kernel")
            }
            let columnGroups = LoweringMath.ceilDiv(geometry.blocks, wg)
            split = Lowering.splitK(tiles: rowGroups * columnGroups, k: k, step: 1, minDepth: 16)
            kernel = try self.kernel(KernelRequest(
                family: KernelCatalog.gemm, defines: ["GEMM_TM": "\(tm)"],
                specConstants: [UInt32(wg), split.slices > 1 ? FusedActivation.none.rawValue : n.activation.rawValue],
                workgroupSize: [UInt32(wg), 1, 1]))
            groups = [columnGroups, rowGroups, split.slices]
        }
        var push = PushConstants()
        push.append([m, nCols, k, geometry.blocks, aStrides.m, aStrides.k, split.kPerSlice, split.slices,
                     log2W, log2H])
        let target = split.slices > 1 ? temporary("\(y)#splitk", shape: [split.slices, m * nCols]) : y
        try emit(n, kernel: kernel, groups: groups.map { UInt32(clamping: $0) },
                 bindings: [try read(a, for: n), image, try write(target, for: n)], push: push, flops: flops,
                 bytes: bytes)
        if split.slices > 1 {
            try emitSplitKReduce(n, partial: target, y: y, count: m * nCols, slices: split.slices)
        }
    }

    /// splitk_reduce.comp: Y = act(Σ over `slices` partial sums of `count` values).
    func emitSplitKReduce(_ n: LoweringNode, partial: String, y: String, count: Int, slices: Int) throws {
        let wg = 256
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.splitKReduce,
                                                   specConstants: [UInt32(wg), n.activation.rawValue],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        var push = PushConstants()
        push.append([count, slices])
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(partial, for: n), try write(y, for: n)], push: push,
                 flops: Double(count * slices), bytes: Double(count * (slices + 1) * 4))
    }

    /// matmul.comp: batched Y = act(A × B), numpy broadcasting over batch dims, 1-D operands promoted.
    private func emitMatMul(_ n: LoweringNode, a: String, aShape: [Int], b: String, bShape: [Int], y: String,
                            yShape: [Int]) throws {
        // numpy: a 1-D A is [1, K] (M dropped from the output), a 1-D B is [K, 1] (N dropped).
        let a2 = aShape.count == 1 ? [1, aShape[0]] : aShape
        let b2 = bShape.count == 1 ? [bShape[0], 1] : bShape
        let m = a2[a2.count - 2], k = a2[a2.count - 1]
        let kb = b2[b2.count - 2], nCols = b2[b2.count - 1]
        guard k == kb else {
            throw error(n, "A \(aShape) and B \(bShape) disagree on K")
        }
        let aBatch = Array(a2.dropLast(2)), bBatch = Array(b2.dropLast(2))
        let rank = max(aBatch.count, bBatch.count)
        let aB = [Int](repeating: 1, count: rank - aBatch.count) + aBatch
        let bB = [Int](repeating: 1, count: rank - bBatch.count) + bBatch
        var outBatch: [Int] = []
        for d in 0..<rank {
            guard aB[d] == bB[d] || aB[d] == 1 || bB[d] == 1 else {
                throw error(n, "batch dims of A \(aShape) and B \(bShape) do not broadcast")
            }
            outBatch.append(max(aB[d], bB[d]))
        }
        let batches = elementCount(outBatch)
        guard elementCount(yShape) == batches * m * nCols else {
            throw error(n, "the output shape \(yShape) does not fit A \(aShape) × B \(bShape)")
        }
        // Element strides per batch dim (0 where broadcast), then drop size-1 dims and merge contiguous ones.
        var aStride = [Int](repeating: 0, count: rank), bStride = [Int](repeating: 0, count: rank)
        var aRun = m * k, bRun = k * nCols
        for d in stride(from: rank - 1, through: 0, by: -1) {
            aStride[d] = aB[d] == 1 ? 0 : aRun
            bStride[d] = bB[d] == 1 ? 0 : bRun
            aRun *= aB[d]
            bRun *= bB[d]
        }
        let dims = Broadcast.coalesce(shape: outBatch, strides: [aStride, bStride])
        guard dims.shape.count <= 4 else {
            throw error(n, "more than 4 distinct broadcast batch dims are not supported (\(outBatch))")
        }
        let pad = 4 - dims.shape.count
        let batchShape = [Int](repeating: 1, count: pad) + dims.shape
        let aStrides = [Int](repeating: 0, count: pad) + dims.strides[0]
        let bStrides = [Int](repeating: 0, count: pad) + dims.strides[1]

        let (tm, tn) = Lowering.tileShape(m: m, n: nCols, batches: batches)
        let kernel = try self.kernel(KernelRequest(
            family: KernelCatalog.matmul, defines: ["MM_TM": "\(tm)", "MM_TN": "\(tn)"],
            specConstants: [n.activation.rawValue], workgroupSize: [256, 1, 1],
            sharedMemoryBytes: 16 * 64 * (tm + tn) * 4))
        var push = PushConstants()
        push.append([m, nCols, k])
        push.append(batchShape)
        push.append(aStrides)
        push.append(bStrides)
        let groups = [LoweringMath.ceilDiv(nCols, 64 * tn), LoweringMath.ceilDiv(m, 64 * tm), batches]
        try emit(n, kernel: kernel, groups: groups.map { UInt32(clamping: $0) },
                 bindings: [try read(a, for: n), try read(b, for: n), try write(y, for: n)], push: push,
                 flops: 2.0 * Double(batches) * Double(m) * Double(k) * Double(nCols),
                 bytes: Double((elementCount(aShape) + elementCount(bShape) + batches * m * nCols) * 4))
    }

    /// Y = act(product + beta · C) for a Gemm whose C is not a constant per-column vector.
    private func addScaledC(_ n: LoweringNode, product: String, c: String, beta: Float, y: String) throws {
        var cName = c
        if beta != 1 {
            guard let constant = initializers[c] else {
                throw error(n, "beta = \(beta) with a non-constant C is not supported")
            }
            cName = temporary("\(c)#beta", shape: constant.shape)
            initializers[cName] = LoweringPasses.constant(constant.floats().map { $0 * beta }, shape: constant.shape)
        }
        try emitBinary(n, op: .add, a: product, b: cName, y: y)
    }

    /// `n` with its fused activation removed (the activation moves to a later step of the same node).
    private func withoutActivation(_ n: LoweringNode) -> LoweringNode {
        var copy = n
        copy.activation = .none
        return copy
    }
}
