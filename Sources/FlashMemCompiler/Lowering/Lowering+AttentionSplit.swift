// Long attentions left unfused, in blocks of query rows (`AttentionSplit`, found by LoweringPasses.fuseAttention):
//
//   Q_b  = Slice(Q, rows r0 ..< r1)                     (axis −2 of Q)
//   M_b  = Slice(M, rows r0 ..< r1)                     (each mask that varies along the scores' rows; others as is)
//   Y_b  = the chain on Q_b, Kᵀ, V, M_b                 (MatMul, scalings, masks, casts, Softmax, MatMul)
//   Y    = Concat(Y_0, Y_1, …)                          (axis −2 of Y)
//
// Row i of the scores depends only on row i of Q and of the masks, so each block is exact, and its kernels are the
// unfused chain's: the outputs equal the unsplit chain's where the products' kernels reduce in the same order for
// every row count. The blocks run one after another, so the arena holds one block's scores at a time (SAM 2's
// global attention: 8 heads × 4096² fp32 = 512 MiB, twice, before).

extension LoweringContext {
    /// Replaces each split's chain in `nodes` by its blocks, where the chain's last node was.
    func splitAttentions(_ splits: [AttentionSplit]) throws {
        for split in splits {
            guard let last = split.chain.last, let at = nodes.firstIndex(where: { $0.node.outputs == last.node.outputs })
            else { continue }
            // Every chain node comes before its last (each reads the one before): with them removed, the blocks go
            // where the last was, after everything the chain reads and before everything that reads its output.
            let chainOutputs = Set(split.chain.map { $0.node.outputs[0] })
            let blocks = try splitNodes(split)
            nodes.removeAll { chainOutputs.contains($0.node.outputs.first ?? "") }
            nodes.insert(contentsOf: blocks, at: at - (split.chain.count - 1))
        }
        guard !splits.isEmpty else { return }
        // The Slices' operands are constants the lowering reads through the graph (NodeContext), as after Ifs.
        refreshGraph()
    }

    private func splitNodes(_ split: AttentionSplit) throws -> [LoweringNode] {
        let last = split.chain[split.chain.count - 1]
        var builder = NodeExpansion(context: self, original: last)
        let rank = split.scoresShape.count
        let lq = split.scoresShape[rank - 2]
        let q = split.chain[0].node.inputs[0]
        let qRank = try shape(q, of: split.chain[0]).count
        var outputs: [String] = []
        var r0 = 0
        while r0 < lq {
            let r1 = min(r0 + split.rowsPerBlock, lq)
            let tag = "rows\(r0)"
            // Only the rows' operands are sliced, by position: Q as the first product's A, the masks where the nodes
            // between the products read them (K or V may be the very tensor Q is: self-attention over its input).
            let qRows = try slice(q, axis: qRank - 2, r0, r1, tag: "\(tag)_q", &builder)
            var maskRows: [String: String] = [:]
            for mask in split.masks where maskRows[mask] == nil {
                let s = try shape(mask, of: last)
                if s.count >= 2, s[s.count - 2] == lq {
                    maskRows[mask] = try slice(mask, axis: s.count - 2, r0, r1, tag: "\(tag)_mask", &builder)
                }
            }
            var renamed: [String: String] = [:]  // the chain's outputs: this block's
            for (i, n) in split.chain.enumerated() {
                let original = n.node.outputs[0]
                var outShape = try shape(original, of: n)
                outShape[outShape.count - 2] = r1 - r0
                let out = builder.value("\(tag)_\(i)", shape: outShape)
                if let dtype = dtype(original) { values[out]?.dtype = dtype }
                let between = i > 0 && i < split.chain.count - 1
                let inputs = n.node.inputs.enumerated().map { j, name in
                    renamed[name] ?? (i == 0 && j == 0 ? qRows : (between ? maskRows[name] : nil) ?? name)
                }
                builder.op(n.op, inputs, output: out, name: "\(tag)_\(n.label)", attributes: n.node.attributes)
                renamed[original] = out
            }
            outputs.append(renamed[last.node.outputs[0]]!)
            r0 = r1
        }
        let y = last.node.outputs[0]
        builder.op("Concat", outputs, output: y, name: "concat",
                   attributes: ["axis": .int(try shape(y, of: last).count - 2)])
        return builder.nodes
    }

    /// `x` rows `r0 ..< r1` along `axis` (Slice's inputs from opset 10, its attributes before).
    private func slice(_ x: String, axis: Int, _ r0: Int, _ r1: Int, tag: String,
                       _ builder: inout NodeExpansion) throws -> String {
        var s = try shape(x, of: builder.original)
        s[axis] = r1 - r0
        let out = builder.value(tag, shape: s)
        if let dtype = dtype(x) { values[out]?.dtype = dtype }
        if graph.opset < 10 {
            builder.op("Slice", [x], output: out, name: tag,
                       attributes: ["starts": .ints([r0]), "ends": .ints([r1]), "axes": .ints([axis])])
        } else {
            builder.op("Slice", [x, builder.int64Constant([r0], name: "\(tag)_starts"),
                                 builder.int64Constant([r1], name: "\(tag)_ends"),
                                 builder.int64Constant([axis], name: "\(tag)_axes")], output: out, name: tag)
        }
        return out
    }
}
