// Products that read the same activation: an attention's Q, K and V projections (GPT-Neo, BERT) are three
// MatMul(A, W) with one A. `fuseSharedInputProducts` makes them one MatMul(A, [W_q W_k W_v]) (the weights, and their
// fused biases, concatenated along the columns) followed by a Slice per original output. Each Slice is a strided
// copy that the fused attention reads in place (Lowering+Attention.swift), so three products and their split-K
// reductions become one wider product, which also fills the GPU better at few rows.

import Foundation

extension LoweringPasses {
    /// Groups of at least two MatMul nodes, in the default domain and under one predicate, reading the same
    /// non-constant A with constant [K, N_i] weights (leading dims 1) of one dtype and K, either all with a fused bias
    /// of that dtype or none, no activation or residual yet, whose outputs are no model outputs and each read by one
    /// Reshape or Transpose (the head split of an attention: where the Slices cost nothing). The fused product takes
    /// the place of the group's first node. `concatenateWeights` makes the fused weight (the lowering writes it to a
    /// mapped file, `DerivedConstant`, so a large model's concatenations are not all in memory at once). Returns
    /// whether it fused any (and so added constants and values).
    @discardableResult
    static func fuseSharedInputProducts(_ nodes: inout [LoweringNode], initializers: inout [String: ConstantTensor],
                                        values: inout [String: ValueInfo], graphOutputs: Set<String>,
                                        concatenateWeights: (_ parts: [ConstantTensor], _ axis: Int,
                                                             _ shape: [Int]) throws -> ConstantTensor) rethrows -> Bool {
        let uses = useCounts(nodes, graphOutputs: graphOutputs)
        var readers: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() {
            for input in n.node.inputs where !input.isEmpty { readers[input, default: []].append(i) }
        }
        /// The activation a group member reads, nil for a node that is no member.
        func sharedInput(_ i: Int) -> String? {
            let n = nodes[i]
            guard n.op == "MatMul", isDefaultDomain(n.node), n.node.inputs.count == 2, n.node.outputs.count == 1,
                  n.activation == .none, n.residual == nil, initializers[n.node.inputs[0]] == nil,
                  let weight = initializers[n.node.inputs[1]], isPlainWeight(weight),
                  let y = n.node.outputs.first, !graphOutputs.contains(y), uses[y] == 1,
                  let r = readers[y]?.first, ["Reshape", "Transpose"].contains(nodes[r].op),
                  values[y]?.staticShape?.last == weight.shape.last else { return nil }
            return n.node.inputs[0]
        }
        var groups: [String: [Int]] = [:]
        var order: [String] = []
        for i in nodes.indices {
            guard let a = sharedInput(i) else { continue }
            if groups[a] == nil { order.append(a) }
            groups[a, default: []].append(i)
        }
        var removed = Set<Int>()
        var inserted: [Int: [LoweringNode]] = [:]  // after node i
        for a in order {
            guard let members = groups[a], members.count >= 2 else { continue }
            let first = nodes[members[0]]
            let weights = members.map { initializers[nodes[$0].node.inputs[1]]! }
            let biases = members.map { nodes[$0].bias.flatMap { initializers[$0] } }
            let k = weights[0].shape[weights[0].shape.count - 2]
            guard members.allSatisfy({ nodes[$0].predicate == first.predicate }),
                  weights.allSatisfy({ $0.dtype == weights[0].dtype && $0.shape.count == weights[0].shape.count
                                       && $0.shape[$0.shape.count - 2] == k }),
                  biases.allSatisfy({ $0 == nil }) || biases.allSatisfy({ $0?.dtype == weights[0].dtype }),
                  let outInfo = values[first.node.outputs[0]], let outShape = outInfo.staticShape else { continue }
            let columns = weights.map { $0.shape.last! }
            let total = columns.reduce(0, +)
            let rank = weights[0].shape.count
            let weightName = unusedName(first.node.inputs[1] + "#shared", in: initializers)
            initializers[weightName] = try concatenateWeights(weights, rank - 1,
                                                              Array(weights[0].shape.dropLast()) + [total])
            var fused = first
            fused.node.inputs = [a, weightName]
            let output = first.node.outputs[0] + "#shared"
            fused.node.outputs = [output]
            values[output] = ValueInfo(name: output, dtype: outInfo.dtype, shape: Array(outShape.dropLast()) + [total])
            fused.label = members.map { nodes[$0].label }.joined(separator: "+")
            if biases.allSatisfy({ $0 != nil }) {
                let parts = biases.map { b in ConstantTensor(dtype: b!.dtype, shape: [b!.elementCount], bytes: b!.bytes) }
                let biasName = unusedName(first.bias! + "#shared", in: initializers)
                initializers[biasName] = MovementCopy.concatenate(parts, axis: 0, shape: [total])
                fused.bias = biasName
            }
            // One Slice of the fused output per original output, along its last axis.
            var slices: [LoweringNode] = []
            var start = 0
            let axesName = unusedName(output + "#axes", in: initializers)
            initializers[axesName] = .make(dtype: .int64, shape: [1], integers: [-1])
            for (member, n) in zip(members, columns) {
                let y = nodes[member].node.outputs[0]
                let startsName = unusedName("\(output)#start\(start)", in: initializers)
                let endsName = unusedName("\(output)#end\(start + n)", in: initializers)
                initializers[startsName] = .make(dtype: .int64, shape: [1], integers: [start])
                initializers[endsName] = .make(dtype: .int64, shape: [1], integers: [start + n])
                var slice = LoweringNode(Node(name: nodes[member].node.name + "#slice", opType: "Slice",
                                              inputs: [output, startsName, endsName, axesName], outputs: [y]))
                slice.label = nodes[member].label
                slice.predicate = first.predicate
                slices.append(slice)
                start += n
            }
            nodes[members[0]] = fused
            inserted[members[0]] = slices
            removed.formUnion(members.dropFirst())
        }
        guard !inserted.isEmpty else { return false }
        var result: [LoweringNode] = []
        for (i, n) in nodes.enumerated() where !removed.contains(i) {
            result.append(n)
            result += inserted[i] ?? []
        }
        nodes = result
        return true
    }
}
