// Einsum, rewritten before the lowering passes into ops the lowering already has (no kernel of its own):
//
//   each operand:  ReduceSum over the labels no other operand and not the output has
//   two operands:  A → Transpose [batch, a-only, contracted] → Reshape [batch, M, K]
//                  B → Transpose [batch, contracted, b-only] → Reshape [batch, K, N]
//                  MatMul → [batch, M, N] → Reshape [batch, a-only…, b-only…]
//   more:          the same pairwise from the left, keeping the labels later operands or the output need
//   last:          Transpose to the output's label order (Reshapes are views; Transposes that only move size-1
//                  dimensions are views; chains of copies compose, Lowering+Movement.swift)
//
// So DeepViT's re-attention 'bhij,hg->bgij' (a 16 × 16 constant mixing the heads) is one MatMul with a weight
// image, and 'bhid,bhjd->bhij' / 'bhij,bhjd->bhid' are batched MatMuls. Labels repeated within one term
// (diagonals) are not supported (ShapeRules.einsum). Owned by the lowering.

extension LoweringContext {
    /// Replaces every Einsum in `nodes` by the nodes above.
    func expandEinsums() throws {
        guard nodes.contains(where: { $0.op == "Einsum" }) else { return }
        var expanded: [LoweringNode] = []
        for n in nodes {
            if n.op == "Einsum" && (n.node.domain.isEmpty || n.node.domain == "ai.onnx") {
                expanded += try einsumNodes(n)
            } else {
                expanded.append(n)
            }
        }
        nodes = expanded
    }

    private func einsumNodes(_ n: LoweringNode) throws -> [LoweringNode] {
        let y = try output(n)
        let xs = try n.node.inputs.indices.map { try input(n, $0) }
        try requireFloat(n, xs + [y])
        guard let equation = n.node.string("equation") else { throw error(n, "the equation attribute is required") }
        let einsum: ShapeRules.Einsum
        do {
            einsum = try ShapeRules.einsum(equation, shapes: try xs.map { try shape($0, of: n) })
        } catch let e as ShapeRuleError {
            throw error(n, e.message)
        }
        var builder = NodeExpansion(context: self, original: n)
        var terms = zip(xs, einsum.operands).map { EinsumTerm(value: $0, labels: $1) }
        let sizes = einsum.sizes
        // Labels still needed after operand i: the output's and those of the operands after it.
        func needed(after i: Int) -> Set<Character> {
            Set(einsum.output).union(terms.dropFirst(i + 1).flatMap(\.labels))
        }
        terms[0] = try sumOut(terms[0], keeping: needed(after: 0).union(terms.count > 1 ? terms[1].labels : []),
                              &builder, n, name: "sum0")
        var result = terms[0]
        for i in 1..<max(terms.count, 1) {
            let keep = needed(after: i)
            let b = try sumOut(terms[i], keeping: keep.union(result.labels), &builder, n, name: "sum\(i)")
            result = try contract(result, b, keeping: keep, sizes: sizes, &builder, n, step: i)
        }
        // The output order (every remaining label is an output label by now).
        let perm = einsum.output.map { result.labels.firstIndex(of: $0)! }
        let resultShape = try shape(result.value, of: n)
        if perm != Array(perm.indices) {
            builder.op("Transpose", [result.value], output: y, name: "output", attributes: ["perm": .ints(perm)])
        } else if resultShape != einsum.outputShape {
            _ = builder.view(result.value, shape: einsum.outputShape, name: "output", output: y)
        } else {
            builder.op("Identity", [result.value], output: y, name: "output")
        }
        return builder.nodes
    }

    /// `term` with the labels outside `keeping` summed out.
    private func sumOut(_ term: EinsumTerm, keeping: Set<Character>, _ builder: inout NodeExpansion,
                        _ n: LoweringNode, name: String) throws -> EinsumTerm {
        let axes = term.labels.indices.filter { !keeping.contains(term.labels[$0]) }
        guard !axes.isEmpty else { return term }
        let xShape = try shape(term.value, of: n)
        let kept = term.labels.indices.filter { !axes.contains($0) }
        let value = builder.reduce("ReduceSum", term.value, axes: axes, keepDims: false, shape: kept.map { xShape[$0] },
                                   name: name)
        return EinsumTerm(value: value, labels: kept.map { term.labels[$0] })
    }

    /// a × b over their shared labels not in `keeping`, as one (batched) MatMul.
    private func contract(_ a: EinsumTerm, _ b: EinsumTerm, keeping: Set<Character>, sizes: [Character: Int],
                          _ builder: inout NodeExpansion, _ n: LoweringNode, step: Int) throws -> EinsumTerm {
        let shared = a.labels.filter(b.labels.contains)
        let batch = shared.filter(keeping.contains)
        let contracted = shared.filter { !keeping.contains($0) }
        let aOnly = a.labels.filter { !shared.contains($0) }
        let bOnly = b.labels.filter { !shared.contains($0) }
        let aShape = try shape(a.value, of: n), bShape = try shape(b.value, of: n)
        func size(_ term: EinsumTerm, _ termShape: [Int], _ label: Character) -> Int {
            termShape[term.labels.firstIndex(of: label)!]
        }
        for label in contracted where size(a, aShape, label) != size(b, bShape, label) {
            throw error(n, "label '\(label)' is summed over but has sizes \(size(a, aShape, label)) and "
                + "\(size(b, bShape, label)) (broadcasting a summed label is not supported)")
        }
        let m = aOnly.reduce(1) { $0 * sizes[$1]! }, k = contracted.reduce(1) { $0 * sizes[$1]! }
        let nCols = bOnly.reduce(1) { $0 * sizes[$1]! }
        let aBatch = batch.map { size(a, aShape, $0) }, bBatch = batch.map { size(b, bShape, $0) }

        let left = try arrange(a, aShape, order: batch + aOnly + contracted, shape: aBatch + [m, k], &builder,
                               n, name: "lhs\(step)")
        let right = try arrange(b, bShape, order: batch + contracted + bOnly, shape: bBatch + [k, nCols], &builder,
                                n, name: "rhs\(step)")
        let outBatch = batch.map { sizes[$0]! }
        let product = builder.op("MatMul", [left, right], shape: outBatch + [m, nCols], name: "matmul\(step)")
        let labels = batch + aOnly + bOnly
        let unfolded = labels.map { sizes[$0]! }
        let value = unfolded == outBatch + [m, nCols] ? product
            : builder.view(product, shape: unfolded, name: "unfold\(step)")
        return EinsumTerm(value: value, labels: labels)
    }

    /// `term` transposed to the label `order` and reshaped to `shape` (each only where it changes something).
    private func arrange(_ term: EinsumTerm, _ termShape: [Int], order: [Character], shape target: [Int],
                         _ builder: inout NodeExpansion, _ n: LoweringNode, name: String) throws -> String {
        let perm = order.map { term.labels.firstIndex(of: $0)! }
        var value = term.value
        var current = termShape
        if perm != Array(perm.indices) {
            current = perm.map { termShape[$0] }
            value = builder.op("Transpose", [value], shape: current, name: "\(name)_t", attributes: ["perm": .ints(perm)])
        }
        if current != target {
            value = builder.view(value, shape: target, name: "\(name)_r")
        }
        return value
    }
}

/// One operand of an Einsum on its way to the output: a value and the label of each of its dimensions.
private struct EinsumTerm {
    var value: String
    var labels: [Character]
}
