// Gemm and MatMul.
//   constant B (Gemm; MatMul with a 2-D B, or one whose leading dims are 1) → gemm_cm.comp (tensor cores) when
//     the lowering may use cooperative matrices and the shape suits them (`Lowering.coopmatTile`), else
//     gemm_tiled.comp for M ≥ 64, gemm.comp for fewer rows; each split over K (+ splitk_reduce.comp) when its
//     tiles would not fill the device; B packed by WeightPacking.gemm with transB and alpha folded in and a
//     constant per-column C (times beta) as the bias texels; transA is a strided read of A;
//   two activations (MatMul; Gemm whose B is not a constant, its A an activation or a constant) → matmul.comp
//     (matmul_cm.comp on tensor cores with `--tensor-cores on`) with numpy batch broadcasting, transA / transB and
//     copies made for the product alone as strided reads, alpha in the epilogue (a constant operand is then a
//     resident arena tensor); Y too is strided (`MatMulPush`), so a Transpose or Concat that alone reads the
//     product has it write there instead of copying (`writeProducts`, Lowering+Movement.swift);
//   any other C of a Gemm (an activation, or a constant that varies along M) is read by either kernel's
//     epilogue with broadcast strides, Y = act(product + beta · C), so no step is added for it.

import FMBFormat

/// A Gemm's C term read from the arena by the matmul kernels' epilogue: Y[m, n] += beta · C[m · rowStride +
/// n · columnStride] (strides 0 along the dims C is broadcast over).
struct GemmAddend {
    var name: String
    var beta: Float
    var rowStride: Int
    var columnStride: Int
}

/// How matmul.comp walks one product: the output batch dims (up to 4, innermost last) with each operand's
/// element stride per batch dim (0 where broadcast), and the strides of each operand's two matrix dims.
struct MatMulLayout {
    var m: Int, k: Int, n: Int
    var batchShape = [1, 1, 1, 1]
    var aBatchStrides = [0, 0, 0, 0]
    var bBatchStrides = [0, 0, 0, 0]
    /// Element (m, k) of A within a batch is at m · aStrides.m + k · aStrides.k.
    var aStrides: (m: Int, k: Int)
    /// Element (k, n) of B within a batch is at k · bStrides.k + n · bStrides.n.
    var bStrides: (k: Int, n: Int)
    var alpha: Float = 1
    /// Element (0, 0) of each operand's first batch: a view of a larger tensor (a copy the product reads in place).
    var aOffset = 0
    var bOffset = 0

    var batches: Int { batchShape.reduce(1, *) }
}

/// matmul.comp's push block (matmul_cm.comp's too), field by field: the one place it is written and read back.
enum MatMulPush {
    /// 32 fields, 128 bytes (Vulkan's guaranteed maxPushConstantsSize).
    static let size = 32 * 4
    private static let batchShape = 3, yBatchStride = 25, yStrideM = 29, yStrideN = 30, yOffset = 31

    static func encode(_ layout: MatMulLayout, addend: GemmAddend?) -> PushConstants {
        var push = PushConstants()
        push.append([layout.m, layout.n, layout.k])
        push.append(layout.batchShape)
        push.append(layout.aBatchStrides)
        push.append(layout.bBatchStrides)
        push.append([layout.aStrides.m, layout.aStrides.k, layout.bStrides.k, layout.bStrides.n])
        push.append(layout.alpha)
        push.append(addend?.beta ?? 0)
        push.append([addend?.rowStride ?? 0, addend?.columnStride ?? 0])
        push.append([layout.aOffset, layout.bOffset])
        // Y is its own row-major tensor [batch…, M, N] until the lowering retargets the step (`withOutput`).
        let y = StridedAccess.contiguous(layout.batchShape + [layout.m, layout.n])
        push.append(Array(y.strides[..<4]))
        push.append([y.strides[4], y.strides[5], y.offset])
        assert(push.count == size)
        return push
    }

    /// The elements a product writes, as an access over [batch dims (4), M, N] into its Y binding; nil for a block
    /// of another size (the caller checks that the step's kernel is a product's: other blocks may be 128 bytes too).
    static func output(_ bytes: [UInt8]) -> StridedAccess? {
        guard bytes.count == size else { return nil }
        let push = PushConstants(bytes: bytes)
        func field(_ i: Int) -> Int { Int(push.u32(at: i)) }
        return StridedAccess(shape: (batchShape..<batchShape + 4).map(field) + [field(0), field(1)],
                             strides: (yBatchStride..<yBatchStride + 4).map(field) + [field(yStrideM), field(yStrideN)],
                             offset: field(yOffset))
    }

    /// The block with the product writing to `view` (over the dims of `output`; strides and offset non-negative).
    static func withOutput(_ bytes: [UInt8], _ view: StridedAccess) -> [UInt8] {
        var push = PushConstants(bytes: bytes)
        for d in 0..<4 { push.set(view.strides[d], at: yBatchStride + d) }
        push.set(view.strides[4], at: yStrideM)
        push.set(view.strides[5], at: yStrideN)
        push.set(view.offset, at: yOffset)
        return push.bytes
    }
}

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
        // Where C goes: into the bias texels when B and C are constant and C is the same for every row, else
        // into the kernel's epilogue; beta = 0 drops C.
        var bias: [Float]?
        var addend: GemmAddend?
        if let c, beta != 0 {
            let strides = try gemmCStrides(n, c: c, m: m, n: nCols)
            if initializers[b] != nil, let constant = initializers[c], strides.row == 0 {
                let values = constant.floats()
                bias = strides.column == 0 ? [Float](repeating: values[0], count: nCols) : values
            } else {
                addend = GemmAddend(name: c, beta: beta, rowStride: strides.row, columnStride: strides.column)
            }
        }
        if let residual = n.residual {  // fuseResidualAdd: only where C is constant bias texels or absent
            guard addend == nil else { throw error(n, "internal: a fused residual beside a run-time C") }
            addend = GemmAddend(name: residual, beta: 1, rowStride: nCols, columnStride: 1)
        }
        if let constantB = initializers[b] {
            try emitGemm(n, a: a, aStrides: transA ? (1, m) : (k, 1), m: m, k: k, n: nCols, b: constantB, bName: b,
                         transB: transB, alpha: alpha, bias: bias, beta: beta, addend: addend,
                         aBytes: elementCount(aShape) * 4, y: y)
        } else {
            let layout = MatMulLayout(m: m, k: k, n: nCols, aStrides: transA ? (1, m) : (k, 1),
                                      bStrides: transB ? (1, k) : (nCols, 1), alpha: alpha)
            try emitMatMul(n, layout: layout, a: a, b: b, addend: addend, y: y,
                           bytes: elementCount(aShape) + elementCount(bShape) + m * nCols)
        }
    }

    /// C's element strides along the rows and columns of Y [M, N] (unidirectional broadcast: C is a scalar,
    /// [N], [1, N], [M, 1], [M, N] or another shape whose dims are 1 or match).
    private func gemmCStrides(_ n: LoweringNode, c: String, m: Int, n nCols: Int) throws -> (row: Int, column: Int) {
        let cShape = try shape(c, of: n)
        guard cShape.count <= 2 else {
            throw error(n, "C \(cShape) has more than 2 dims and does not broadcast to Y [\(m), \(nCols)]")
        }
        let full = [Int](repeating: 1, count: 2 - cShape.count) + cShape
        guard full[0] == 1 || full[0] == m, full[1] == 1 || full[1] == nCols else {
            throw error(n, "C \(cShape) does not broadcast to Y [\(m), \(nCols)]")
        }
        return (full[0] == 1 ? 0 : full[1], full[1] == 1 ? 0 : 1)
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
            let bias = try n.bias.map { name -> [Float] in
                guard let constant = initializers[name] else { throw error(n, "fused bias '\(name)' is not a constant") }
                return constant.floats()
            }
            let addend = n.residual.map { GemmAddend(name: $0, beta: 1, rowStride: nCols, columnStride: 1) }
            try emitGemm(n, a: a, aStrides: (k, 1), m: m, k: k, n: nCols, b: constantB, bName: b, transB: false,
                         alpha: 1, bias: bias, beta: 1, addend: addend, aBytes: elementCount(aShape) * 4, y: y)
            return
        }
        guard n.bias == nil, n.residual == nil else { throw error(n, "a fused bias or residual needs a constant B (internal)") }
        // An operand copied for products alone (a transpose, a slice of rows: an unfused attention's Kᵀ and its
        // blocks of Q) is read in place: the product reads the copy's source through the composed view and the
        // copy goes once its last reader has (`composableCopy`).
        var sources = [a, b]
        var views: [StridedAccess?] = [nil, nil]
        var folded: [(step: Int, root: String, removable: Bool)] = []
        let aRoot = program.tensors[a]?.viewOf ?? a, bRoot = program.tensors[b]?.viewOf ?? b
        for (i, (name, operandShape)) in [(a, aShape), (b, bShape)].enumerated()
        where operandShape.count >= 2 && aRoot != bRoot {
            guard let read = inPlaceRead(of: name, shape: operandShape, for: n) else { continue }
            (sources[i], views[i]) = (read.source, read.view)
            folded.append(read.copy)
        }
        var layout = try matMulLayout(n, aShape: aShape, bShape: bShape, yShape: yShape, views: views)
        layout.alpha = n.node.float("alpha", default: 1)  // a scaling fused after it (`fuseProductScale`)
        fold(folded, into: n)
        try emitMatMul(n, layout: layout, a: sources[0], b: sources[1], addend: nil, y: y,
                       bytes: elementCount(aShape) + elementCount(bShape) + elementCount(yShape))
    }

    /// gemm.comp / gemm_tiled.comp: Y[M, N] = act(A × alpha·B' + beta·bias + beta·C). Under maxImageBytes, B'
    /// is cut along N into column pieces (whole texel blocks; whole column tiles of the tiled kernel where that
    /// fits), one image and one dispatch each, all sharing one split over K and its single reduction.
    private func emitGemm(_ n: LoweringNode, a: String, aStrides: (m: Int, k: Int), m: Int, k: Int, n nCols: Int,
                          b: ConstantTensor, bName: String, transB: Bool, alpha: Float, bias: [Float]?, beta: Float,
                          addend: GemmAddend?, aBytes: Int, y: String) throws {
        guard b.dtype.isFloat else {
            throw error(n, "the constant B '\(bName)' must be a float tensor")
        }
        let geometry = WeightPacking.GemmGeometry(k: k, n: nCols)
        let cBytes = try addend.map { elementCount(try shape($0.name, of: n)) * 4 } ?? 0
        let hasC: UInt32 = addend == nil ? 0 : 1
        // The kernel and the split over K are chosen for the whole product, so every piece shares them.
        let kernel: Int
        let split: (slices: Int, kPerSlice: Int)
        let rowGroups: Int
        let blocksPerGroup: Int
        let tiled: Bool
        var family = KernelCatalog.gemm
        var halfA = false
        var work = StepWork.plain
        if cooperativeMatrix, let tile = coopmatTileOverride.map({ Lowering.coopmatMinimumMet(m: m, k: k, n: nCols) ? $0 : nil })
            ?? Lowering.coopmatTile(m: m, k: k, n: nCols) {
            // Tensor cores: BM × BN tiles of 16 × 16 fragments, K in slabs of 32.
            tiled = true
            blocksPerGroup = tile.bn / 4
            rowGroups = LoweringMath.ceilDiv(m, tile.bm)
            guard rowGroups <= Lowering.maxGroupsPerAxis else {
                throw error(n, "M = \(m) rows exceed the dispatch grid of the matmul kernel")
            }
            let columnTiles = LoweringMath.ceilDiv(geometry.blocks, blocksPerGroup)
            split = Lowering.splitK(tiles: rowGroups * columnTiles, k: k, step: tile.bk, minDepth: 4 * tile.bk)
            // A read 4 values at a time where its rows are contiguous and 16-byte aligned.
            let vectorA = aStrides.k == 1 && aStrides.m % 4 == 0 && k % 4 == 0
            // A read by several column tiles is converted to halves once (to_half.comp) rather than in each.
            halfA = aStrides.k == 1 && columnTiles >= 2
            family = KernelCatalog.gemmCoopmat
            work = .cooperativeMatrix(kPerWorkgroup: split.kPerSlice, slices: split.slices)
            kernel = try self.kernel(KernelRequest(
                family: family, defines: tile.defines.merging(["CM_VECTOR_A": vectorA && !halfA ? "1" : "0",
                                                               "CM_HALF_A": halfA ? "1" : "0"]) { $1 },
                specConstants: [split.slices > 1 ? FusedActivation.none.rawValue : n.activation.rawValue, hasC],
                workgroupSize: [UInt32(tile.invocations), 1, 1], sharedMemoryBytes: tile.sharedMemoryBytes,
                features: .cooperativeMatrixNV))
        } else if m >= 64 {
            tiled = true
            // Many rows: shared-memory tiles, 128 × 128 where they still make a full wave of workgroups.
            let (tm, tn) = Lowering.tileShape(m: m, n: nCols)
            blocksPerGroup = 16 * tn
            rowGroups = LoweringMath.ceilDiv(m, 64 * tm)
            guard rowGroups <= Lowering.maxGroupsPerAxis else {
                throw error(n, "M = \(m) rows exceed the dispatch grid of the matmul kernel")
            }
            let columnTiles = LoweringMath.ceilDiv(geometry.blocks, blocksPerGroup)
            split = Lowering.splitK(tiles: rowGroups * columnTiles, k: k, step: 16, minDepth: 64)
            family = KernelCatalog.gemmTiled
            kernel = try self.kernel(KernelRequest(
                family: family, defines: ["GT_TM": "\(tm)", "GT_TN": "\(tn)"],
                specConstants: [split.slices > 1 ? FusedActivation.none.rawValue : n.activation.rawValue, hasC],
                workgroupSize: [256, 1, 1], sharedMemoryBytes: 16 * 16 * (tm + tn) * 16))
        } else {
            // Few rows: one texel of columns per invocation, TM rows, a split over K to fill the device.
            tiled = false
            let wg = 64
            let tm = m >= 4 ? 4 : 1
            blocksPerGroup = wg
            rowGroups = LoweringMath.ceilDiv(m, tm)
            guard rowGroups <= Lowering.maxGroupsPerAxis else {
                throw error(n, "M = \(m) rows exceed the dispatch grid of the matmul kernel")
            }
            let columnGroups = LoweringMath.ceilDiv(geometry.blocks, wg)
            split = Lowering.splitK(tiles: rowGroups * columnGroups, k: k, step: 1, minDepth: 16)
            kernel = try self.kernel(KernelRequest(
                family: family, defines: ["GEMM_TM": "\(tm)"],
                specConstants: [UInt32(wg), split.slices > 1 ? FusedActivation.none.rawValue : n.activation.rawValue,
                                hasC],
                workgroupSize: [UInt32(wg), 1, 1]))
        }
        // The kernel's weight format; rows of B are whole texels of it (2 blocks of 4 columns in a half8 image).
        let format = family.weightFormat(precision)
        let rowAlignment = format.valuesPerTexel / 4
        let pieces = try pieceRanges(n, weight: bName, units: geometry.blocks,
                                     granules: tiled ? [blocksPerGroup, 1] : [1], axis: .columns, format: format) { r in
            LoweringMath.ceilDiv(WeightPacking.GemmGeometry(k: k, n: 4 * r.count, rowAlignment: rowAlignment).texels * 4,
                                 format.valuesPerTexel)
        }
        let target = split.slices > 1 ? temporary("\(y)#splitk", shape: [split.slices, m * nCols]) : y
        var aBinding = try read(a, for: n)
        var aRowStride = aStrides.m
        if halfA {
            (aBinding, aRowStride) = try emitToHalf(n, a: aBinding, m: m, k: k, strideM: aStrides.m, product: y)
        }
        // Without C, binding 3 (never read) is A as the kernel reads it: no other tensor is kept alive for it.
        let cBinding = try addend.map { try read($0.name, for: n) } ?? aBinding
        let values = b.floats()
        for (p, blocks) in pieces.enumerated() {
            let n0 = blocks.lowerBound * 4, columns = min(nCols, blocks.upperBound * 4) - n0
            let pieceGeometry = WeightPacking.GemmGeometry(k: k, n: columns, rowAlignment: rowAlignment)
            let packed = WeightPacking.gemm(b: values, transB: transB, geometry: pieceGeometry, alpha: alpha,
                                            bias: bias, beta: beta, columnOffset: n0, totalColumns: nCols)
            let image = self.image(named: pieceName(bName, p, of: pieces.count), values: packed, format: format)
            guard case .image(let imageIndex) = image else { return }
            let extent = program.images[imageIndex]
            let log2W = ImageLayout.log2(extent.width), log2H = ImageLayout.log2(extent.height)
            let share = Double(columns) / Double(max(nCols, 1))
            let flops = 2.0 * Double(m) * Double(k) * Double(columns)
            let bytes = Double(aBytes + imageBytes(image)) + share * Double(cBytes + m * nCols * 4)
            var push = PushConstants()
            push.append([m, columns, k, pieceGeometry.blocks, aRowStride, aStrides.k, split.kPerSlice, split.slices,
                         log2W, log2H])
            push.append(addend?.beta ?? 0)
            push.append([addend?.rowStride ?? 0, addend?.columnStride ?? 0])
            push.append([n0, nCols])
            let groups = [LoweringMath.ceilDiv(pieceGeometry.blocks, blocksPerGroup), rowGroups, split.slices]
            try emit(n, kernel: kernel, groups: groups.map { UInt32(clamping: $0) },
                     bindings: [aBinding, image, try write(target, for: n), cBinding], push: push, flops: flops,
                     bytes: bytes, work: work)
        }
        if split.slices > 1 {
            try emitSplitKReduce(n, partial: target, y: y, count: m * nCols, slices: split.slices)
        }
    }

    /// to_half.comp: A[M, K] (row m at m · strideM, contiguous along K) as rows of K rounded up to 8 halves in a
    /// temporary of the arena, for gemm_cm.comp's CM_HALF_A. Returns its binding and row stride (in halves).
    func emitToHalf(_ n: LoweringNode, a: LoweredBinding, m: Int, k: Int, strideM: Int,
                    product y: String) throws -> (LoweredBinding, Int) {
        let runsPerRow = LoweringMath.ceilDiv(k, 8)
        let half = temporary("\(y)#halfA", shape: [m, 4 * runsPerRow])  // 8 halves = 4 floats of arena
        let wg = 256
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.toHalf, specConstants: [UInt32(wg)],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        var push = PushConstants()
        push.append([m, k, strideM, runsPerRow])
        if case .tensor(let source) = a {
            halfOutputCandidates.conversions.append(.init(step: program.steps.count, source: source, output: half,
                                                          m: m, k: k, strideM: strideM))
        }
        try emit(n, kernel: kernel, groups: try groups1D(n, items: m * runsPerRow, perGroup: wg),
                 bindings: [a, try write(half, for: n)], push: push, flops: 0,
                 bytes: Double(m * k * 4 + m * runsPerRow * 16))
        return (try read(half, for: n), 8 * runsPerRow)
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

    /// The layout of numpy matmul A × B: a 1-D A is [1, K] (M dropped from the output), a 1-D B is [K, 1] (N
    /// dropped), batch dims broadcast; each operand contiguous, or read through `views` (of its shape, rank ≥ 2).
    private func matMulLayout(_ n: LoweringNode, aShape: [Int], bShape: [Int], yShape: [Int],
                              views: [StridedAccess?] = [nil, nil]) throws -> MatMulLayout {
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
        guard elementCount(yShape) == elementCount(outBatch) * m * nCols else {
            throw error(n, "the output shape \(yShape) does not fit A \(aShape) × B \(bShape)")
        }
        // Each operand's element strides (its view's, else row-major): per batch dim (0 where broadcast), then its
        // two matrix dims; the batch dims are then coalesced (size-1 dims dropped, contiguous ones merged).
        func strides(_ view: StridedAccess?, _ full: [Int], _ batch: [Int]) -> (batch: [Int], matrix: (Int, Int)) {
            let s = view?.strides ?? StridedAccess.rowMajorStrides(full)
            let own = Array(s.dropLast(2))
            let padded = [Int](repeating: 0, count: rank - own.count) + own
            return (zip(batch, padded).map { $0 == 1 ? 0 : $1 }, (s[s.count - 2], s[s.count - 1]))
        }
        let aS = strides(aShape.count >= 2 ? views[0] : nil, a2, aB)
        let bS = strides(bShape.count >= 2 ? views[1] : nil, b2, bB)
        let dims = Broadcast.coalesce(shape: outBatch, strides: [aS.batch, bS.batch])
        guard dims.shape.count <= 4 else {
            throw error(n, "more than 4 distinct broadcast batch dims are not supported (\(outBatch))")
        }
        let pad = 4 - dims.shape.count
        var layout = MatMulLayout(m: m, k: k, n: nCols, aStrides: aS.matrix, bStrides: bS.matrix)
        layout.aOffset = aShape.count >= 2 ? views[0]?.offset ?? 0 : 0
        layout.bOffset = bShape.count >= 2 ? views[1]?.offset ?? 0 : 0
        layout.batchShape = [Int](repeating: 1, count: pad) + dims.shape
        layout.aBatchStrides = [Int](repeating: 0, count: pad) + dims.strides[0]
        layout.bBatchStrides = [Int](repeating: 0, count: pad) + dims.strides[1]
        return layout
    }

    /// matmul.comp (matmul_cm.comp on tensor cores where the lowering may use them for such products,
    /// `cooperativeMatrixProducts`, and the product is not too small for their tiles): batched
    /// Y = act(alpha · A × B + beta · C) as `layout` describes; `bytes` counts the elements of A, B and Y.
    private func emitMatMul(_ n: LoweringNode, layout: MatMulLayout, a: String, b: String, addend: GemmAddend?,
                            y: String, bytes: Int) throws {
        let (m, k, nCols, batches) = (layout.m, layout.k, layout.n, layout.batches)
        let specConstants: [UInt32] = [n.activation.rawValue, addend == nil ? 0 : 1]
        let kernel: Int
        let tile: (rows: Int, columns: Int)
        var work = StepWork.plain
        if cooperativeMatrixProducts && Lowering.coopmatMinimumMet(m: m, k: k, n: nCols) {
            // Tensor cores: 64 × 64 tiles of 16 × 16 fragments, K in slabs of 32 (matmul_cm.comp).
            tile = (64, 64)
            kernel = try self.kernel(KernelRequest(
                family: KernelCatalog.matmulCoopmat, specConstants: specConstants, workgroupSize: [128, 1, 1],
                sharedMemoryBytes: (64 * 40 + 32 * 72) * 2 + 4 * 256 * 4, features: .cooperativeMatrixNV))
            work = .cooperativeMatrix(kPerWorkgroup: k, slices: 1)
        } else {
            let (tm, tn) = Lowering.tileShape(m: m, n: nCols, batches: batches)
            tile = (64 * tm, 64 * tn)
            kernel = try self.kernel(KernelRequest(
                family: KernelCatalog.matmul, defines: ["MM_TM": "\(tm)", "MM_TN": "\(tn)"],
                specConstants: specConstants, workgroupSize: [256, 1, 1], sharedMemoryBytes: 16 * 64 * (tm + tn) * 4))
        }
        let push = MatMulPush.encode(layout, addend: addend)
        let cElements = try addend.map { elementCount(try shape($0.name, of: n)) } ?? 0
        let groups = [LoweringMath.ceilDiv(nCols, tile.columns), LoweringMath.ceilDiv(m, tile.rows), batches]
        let aBinding = try read(a, for: n)
        let cBinding = try addend.map { try read($0.name, for: n) } ?? aBinding
        try emit(n, kernel: kernel, groups: groups.map { UInt32(clamping: $0) },
                 bindings: [aBinding, try read(b, for: n), try write(y, for: n), cBinding], push: push,
                 flops: 2.0 * Double(batches) * Double(m) * Double(k) * Double(nCols),
                 bytes: Double((bytes + cElements) * 4), work: work)
    }
}

// MARK: - Tensor-core tiles

/// A tile of gemm_cm.comp: a workgroup of `wm` × `wn` subgroups (32 invocations each) owns `bm` × `bn` outputs
/// and walks K in slabs of `bk`, staged into shared memory in runs of 8 halves; each subgroup holds
/// (bm / wm / 16) × (bn / wn / 16) 16 × 16 accumulators. `doubleBuffered`: two shared buffers, one barrier per slab.
/// `fmc compile --coopmat-tile` overrides the rule (`Lowering.coopmatTile`) with one, for tuning.
public struct CoopmatTile: Equatable, Sendable, CustomStringConvertible {
    public var bm: Int, bn: Int, wm: Int, wn: Int
    public var bk = 32
    public var doubleBuffered = false
    /// Tiles inside the output store their accumulators with cooperative stores (gemm_cm.comp's CM_DIRECT) instead of
    /// through shared memory. H100, gemm-lab, 4096³ with halves for A: 128 × 128/2 × 4/64 168.5 → 171.3 TFLOP/s,
    /// 128 × 256/2 × 8/32 191.8 → 184.2, 64 × 64 at 128 × 10240 × 2560 unchanged
    /// (Benchmarks/results/h100-gemm-lab-epilogue-2026-12-07.txt): only `large` takes it.
    public var directStores = false

    /// 8 subgroups, 64 × 32 outputs (4 × 2 fragments) each, K in slabs of 64: of the 128 × 128 tiles gemm-lab
    /// timed on an H100 with fp32 A and the weight image, the fastest on 4096³ and on 512 × 10240 × 2560
    /// (Benchmarks/results/h100-gemm-lab-2026-12-07.txt).
    static let large = CoopmatTile(bm: 128, bn: 128, wm: 2, wn: 4, bk: 64, directStores: true)
    /// 16 subgroups, 64 × 32 outputs (4 × 2 fragments) each, K in slabs of 32: with A in halves, 189.6 TFLOP/s on
    /// 4096³ against 167.5 for `large` (H100, gemm-lab: Benchmarks/results/h100-gemm-lab-tiles-2026-12-07.txt), but
    /// slower where its workgroups make few waves (512 × 10240 × 2560, 160 of them: 112.7 against 123.4).
    static let huge = CoopmatTile(bm: 128, bn: 256, wm: 2, wn: 8)
    /// 4 subgroups, 32 × 32 outputs (2 × 2 fragments) each.
    static let small = CoopmatTile(bm: 64, bn: 64, wm: 2, wn: 2)
    /// The most shared memory a tile may declare: Vulkan's guaranteed minimum is 16 KiB, the H200 reports 48 KiB.
    static let sharedMemoryLimit = 48 * 1024

    init(bm: Int, bn: Int, wm: Int, wn: Int, bk: Int = 32, doubleBuffered: Bool = false, directStores: Bool = false) {
        (self.bm, self.bn, self.wm, self.wn) = (bm, bn, wm, wn)
        (self.bk, self.doubleBuffered, self.directStores) = (bk, doubleBuffered, directStores)
    }

    /// Parses `BMxBN/WMxWN[/BK][/db][/direct]`, e.g. `128x128/2x4/64/db`; nil with the reason when the text or the
    /// tile is not valid.
    public static func parse(_ text: String) -> Result<CoopmatTile, CoopmatTileError> {
        let parts = text.split(separator: "/").map(String.init)
        func pair(_ s: String) -> (Int, Int)? {
            let xy = s.split(separator: "x").compactMap { Int($0) }
            return xy.count == 2 ? (xy[0], xy[1]) : nil
        }
        guard parts.count >= 2, let (bm, bn) = pair(parts[0]), let (wm, wn) = pair(parts[1]) else {
            return .failure(CoopmatTileError(text: text, reason: "expected BMxBN/WMxWN[/BK][/db][/direct]"))
        }
        var tile = CoopmatTile(bm: bm, bn: bn, wm: wm, wn: wn)
        for part in parts.dropFirst(2) {
            if let bk = Int(part) { tile.bk = bk }
            else if part == "db" { tile.doubleBuffered = true }
            else if part == "direct" { tile.directStores = true }
            else { return .failure(CoopmatTileError(text: text, reason: "unknown part '\(part)'")) }
        }
        if let reason = tile.invalidReason { return .failure(CoopmatTileError(text: text, reason: reason)) }
        return .success(tile)
    }

    /// Why the shader cannot be built with this tile, or nil.
    var invalidReason: String? {
        guard [1, 2, 4, 8].contains(wm), [1, 2, 4, 8].contains(wn), wm * wn <= 16 else {
            return "the subgroup grid must be 1, 2, 4 or 8 on each side, at most 16 subgroups"
        }
        guard bm % (16 * wm) == 0, bn % (16 * wn) == 0 else {
            return "each subgroup's part (BM / WM × BN / WN) must be whole 16 × 16 fragments"
        }
        guard bk == 32 || bk == 64 else { return "BK must be 32 or 64" }
        guard (bm * bk / 8) % invocations == 0, (bk * bn / 8) % invocations == 0 else {
            return "a slab (BM × BK and BK × BN) must split evenly into runs of 8 over \(invocations) invocations"
        }
        guard sharedMemoryBytes <= Self.sharedMemoryLimit else {
            return "needs \(sharedMemoryBytes) bytes of shared memory, more than \(Self.sharedMemoryLimit)"
        }
        return nil
    }

    var invocations: Int { 32 * wm * wn }
    var defines: [String: String] {
        ["CM_BM": "\(bm)", "CM_BN": "\(bn)", "CM_WM": "\(wm)", "CM_WN": "\(wn)", "CM_BK": "\(bk)",
         "CM_DB": doubleBuffered ? "1" : "0", "CM_DIRECT": directStores ? "1" : "0"]
    }
    /// As, Bs (fp16, rows padded by 8; twice when double-buffered) and one 16 × 16 fp32 staging area per subgroup
    /// for the epilogue, as the shader declares them: the staging areas reuse Bs, or else As, where they fit
    /// (CM_ALIAS_C), and take memory of their own only where neither is large enough.
    var sharedMemoryBytes: Int {
        let buffers = doubleBuffered ? 2 : 1
        let (a, b) = (buffers * bm * (bk + 8) * 2, buffers * bk * (bn + 8) * 2)
        let staging = wm * wn * 256 * 4
        return a + b + (staging <= max(a, b) ? 0 : staging)
    }
    public var description: String {
        "\(bm)x\(bn)/\(wm)x\(wn)/\(bk)" + (doubleBuffered ? "/db" : "") + (directStores ? "/direct" : "")
    }
}

public struct CoopmatTileError: Error, CustomStringConvertible {
    public var text: String
    public var reason: String
    public var description: String { "tensor-core tile '\(text)': \(reason)" }
}

extension Lowering {
    /// The smallest product gemm_cm.comp takes: below 16 rows a 16-row fragment is mostly padding and the
    /// product is memory-bound (a GEMV: gemm.comp reads B once at full bandwidth); below 32 columns or a depth
    /// of 32 one tile is mostly padding.
    static let coopmatMinimum = (m: 16, k: 32, n: 32)

    static func coopmatMinimumMet(m: Int, k: Int, n: Int) -> Bool {
        m >= coopmatMinimum.m && k >= coopmatMinimum.k && n >= coopmatMinimum.n
    }

    /// The least work (2·M·K·N) the rule gives to tensor cores. Below it the tiled plain kernel is as fast or
    /// faster: its fixed costs are lower (no conversion of A to halves, no 16-row fragments of padding). On an H100
    /// (coopmat-bench, fp16, gemm_cm against gemm_tiled): 128×768×768 (151 MFLOP) 0.98×, 256×256×512 (67 MFLOP)
    /// 0.81×, 128×384×384 0.82×, 200×256×160 0.63×; 300×777×555 (259 MFLOP) 1.30×, 197×768×3072 (929 MFLOP) 2.44×.
    static let coopmatMinimumFlops = 200_000_000

    /// The tensor-core tile for Y[M, N] = A[M, K] × B[K, N], or nil when the plain kernels should serve it
    /// (`coopmatMinimum`, `coopmatMinimumFlops`). 128 × 256 tiles (16 subgroups) where they make two waves of
    /// workgroups (`targetWorkgroups`); else 128 × 128 tiles (8 subgroups) where they make a full wave
    /// (`targetWorkgroups / 2`) without a split over K; else 64 × 64 (4 subgroups), and the caller still splits K
    /// when even those would not fill the device. Edges (M, N, K not multiples of the tile) are handled by the
    /// kernel, so no shape is refused for them.
    static func coopmatTile(m: Int, k: Int, n: Int) -> CoopmatTile? {
        guard coopmatMinimumMet(m: m, k: k, n: n), 2 * m * k * n >= coopmatMinimumFlops else { return nil }
        func tiles(_ tile: CoopmatTile) -> Int { LoweringMath.ceilDiv(m, tile.bm) * LoweringMath.ceilDiv(n, tile.bn) }
        if tiles(.huge) >= targetWorkgroups { return .huge }
        return tiles(.large) >= targetWorkgroups / 2 ? .large : .small
    }
}
