// Small graph rewrites the lowering runs first, on its own copy of the nodes (the Graph is not modified):
//
//   foldBatchNorm   Conv → BatchNormalization, where the Conv output feeds only the BN and is not a model
//                   output and every BN parameter is constant, becomes one Conv with
//                   W'[oc] = W[oc] · s[oc],  b'[oc] = (b[oc] − mean[oc]) · s[oc] + β[oc],  s = γ / √(var + ε).
//   recognizeGelu   a GELU written as element-wise nodes becomes one Gelu node (LoweringPasses+Gelu.swift).
//   fuseMatMulBias  MatMul(A, constant B) → Add(constant bias over the last axis) becomes one MatMul with a bias.
//   fuseActivations X → Relu, where X is Conv / ConvTranspose / Gemm / MatMul / Add / Sub / Mul / Div /
//                   BatchNormalization, and X → Gelu (exact or tanh), where X is Conv / ConvTranspose / Gemm /
//                   MatMul, and X's only output feeds only that node and is not a model output, becomes X with a
//                   fused epilogue (spec constant ACTIVATION of its kernel, `activate` in common.glsl) writing
//                   the activation's output; also through one view between them (X → Reshape → act becomes
//                   X+act → Reshape).
//   fuseGatedActivation  Mul(x, Gelu(g)) becomes one Mul taking the GELU of g as it reads it (a GEGLU).
//   fuseAttention   MatMul(Q, Kᵀ) → scale → masks → Softmax → MatMul(·, V), with the transposes around it, becomes
//                   one FusedAttention node (attention.comp; LoweringPasses+Attention.swift). Its survivor takes the
//                   place of the last node it replaces, since its inputs come from before the first.
//
// All keep topological order: the surviving node takes the place of the first, whose consumers all come
// after the removed node.

import Foundation

enum LoweringPasses {
    /// How many times each value is read (node inputs, plus once per model output it is).
    static func useCounts(_ nodes: [LoweringNode], graphOutputs: Set<String>) -> [String: Int] {
        var uses: [String: Int] = [:]
        for n in nodes {
            for input in n.node.inputs where !input.isEmpty {
                uses[input, default: 0] += 1
            }
        }
        for output in graphOutputs {
            uses[output, default: 0] += 1
        }
        return uses
    }

    /// The index of the node producing each value.
    static func producers(_ nodes: [LoweringNode]) -> [String: Int] {
        var producers: [String: Int] = [:]
        for (i, n) in nodes.enumerated() {
            for output in n.node.outputs where !output.isEmpty {
                producers[output] = i
            }
        }
        return producers
    }

    static func foldBatchNorm(_ nodes: inout [LoweringNode], initializers: inout [String: ConstantTensor],
                              graphOutputs: Set<String>) {
        let uses = useCounts(nodes, graphOutputs: graphOutputs)
        let producer = producers(nodes)
        var removed = Set<Int>()
        for (b, bn) in nodes.enumerated() where bn.op == "BatchNormalization" && isDefaultDomain(bn.node) {
            guard bn.node.int("training_mode", default: 0) == 0, bn.node.int("spatial", default: 1) == 1,
                  bn.node.outputs.dropFirst().allSatisfy({ $0.isEmpty || uses[$0] == nil }),
                  bn.node.inputs.count >= 5, let x = bn.node.inputs.first,
                  let c = producer[x], nodes[c].op == "Conv", isDefaultDomain(nodes[c].node),
                  nodes[c].activation == .none, nodes[c].node.outputs.count == 1,
                  uses[x] == 1, !graphOutputs.contains(x),
                  nodes[c].node.inputs.count >= 2, let weight = initializers[nodes[c].node.inputs[1]],
                  weight.dtype.isFloat, let oc = weight.shape.first, weight.shape.count >= 3
            else { continue }
            let params = bn.node.inputs[1...4].map { initializers[$0] }
            guard params.allSatisfy({ $0 != nil && $0!.dtype.isFloat && $0!.elementCount == oc }) else { continue }
            let gamma = params[0]!.floats(), beta = params[1]!.floats()
            let mean = params[2]!.floats(), variance = params[3]!.floats()
            var bias = [Float](repeating: 0, count: oc)
            if nodes[c].node.inputs.count >= 3, !nodes[c].node.inputs[2].isEmpty {
                guard let b = initializers[nodes[c].node.inputs[2]], b.dtype.isFloat, b.elementCount == oc else { continue }
                bias = b.floats()
            }
            let epsilon = bn.node.float("epsilon", default: 1e-5)
            let scale = (0..<oc).map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
            var w = weight.floats()
            let perChannel = w.count / max(oc, 1)
            for o in 0..<oc {
                for i in 0..<perChannel {
                    w[o * perChannel + i] *= scale[o]
                }
            }
            let foldedBias = (0..<oc).map { (bias[$0] - mean[$0]) * scale[$0] + beta[$0] }

            let weightName = unusedName("\(nodes[c].node.inputs[1])#bn:\(bn.label)", in: initializers)
            initializers[weightName] = constant(w, shape: weight.shape)
            let biasName = unusedName("\(bn.label)#folded_bias", in: initializers)
            initializers[biasName] = constant(foldedBias, shape: [oc])

            nodes[c].node.inputs = [nodes[c].node.inputs[0], weightName, biasName]
            nodes[c].node.outputs = [bn.node.outputs[0]]
            nodes[c].label += "+\(bn.label)"
            removed.insert(b)
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Ops whose kernels take a fused relu epilogue.
    static let reluFusable: Set<String> = ["Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "BatchNormalization",
                                           "ConvTranspose"]

    /// Ops whose kernels take a fused GELU epilogue (the matmul and convolution kernels; the element-wise ones
    /// have only relu).
    static let geluFusable: Set<String> = ["Conv", "Gemm", "MatMul", "ConvTranspose"]

    /// The fused activation a Relu or Gelu node becomes, and the producers that can take it; nil for other nodes.
    private static func fusable(_ n: LoweringNode) -> (activation: FusedActivation, producers: Set<String>)? {
        guard isDefaultDomain(n.node) else { return nil }
        switch n.op {
        case "Relu": return (.relu, reluFusable)
        case "Gelu":
            switch n.node.string("approximate") ?? "none" {
            case "none": return (.gelu, geluFusable)
            case "tanh": return (.geluTanh, geluFusable)
            default: return nil
            }
        default: return nil
        }
    }

    /// Ops that only reinterpret their first input's elements (an element-wise activation commutes with them).
    static let views: Set<String> = ["Reshape", "Flatten", "Squeeze", "Unsqueeze"]

    static func fuseActivations(_ nodes: inout [LoweringNode], graphOutputs: Set<String>) {
        let uses = useCounts(nodes, graphOutputs: graphOutputs)
        let producer = producers(nodes)
        var removed = Set<Int>()
        func soleProducer(of value: String, predicate: LoweredPredicate?) -> Int? {
            Self.soleProducer(of: value, in: nodes, producers: producer, uses: uses, graphOutputs: graphOutputs,
                              removed: removed, predicate: predicate)
        }
        for (r, act) in nodes.enumerated() {
            guard let fusion = fusable(act), act.node.outputs.count == 1,
                  let x = act.node.inputs.first, var p = soleProducer(of: x, predicate: act.predicate) else { continue }
            // X → view → activation (GPT-2: Gemm → Reshape → GELU) is X with the activation → view.
            var view: Int?
            if views.contains(nodes[p].op), let data = nodes[p].node.inputs.first,
               let q = soleProducer(of: data, predicate: act.predicate) {
                (view, p) = (p, q)
            }
            guard fusion.producers.contains(nodes[p].op), nodes[p].activation == .none else { continue }
            absorb(act, into: p, through: view, &nodes)
            nodes[p].activation = fusion.activation
            removed.insert(r)
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Mul(x, Gelu(g)) (either order), where the Gelu's output feeds only the Mul and is not a model output, becomes
    /// one Mul applying the GELU to g as it reads it (binary.comp's B_ACTIVATION): a GEGLU (SD-UNet's feed-forward,
    /// x, g = proj(h).chunk(2) then x · gelu(g)) otherwise writes gelu(g) and reads it back, and with both halves read
    /// in place from the product (`composableCopy`) it holds no half as a tensor of its own.
    static func fuseGatedActivation(_ nodes: inout [LoweringNode], graphOutputs: Set<String>) {
        let uses = useCounts(nodes, graphOutputs: graphOutputs)
        let producer = producers(nodes)
        var removed = Set<Int>()
        for (r, mul) in nodes.enumerated() where mul.op == "Mul" && isDefaultDomain(mul.node) {
            guard mul.node.inputs.count == 2, mul.node.outputs.count == 1, mul.operandActivation == .none else {
                continue
            }
            for (x, gated) in bothOrders(mul) {
                guard let g = soleProducer(of: gated, in: nodes, producers: producer, uses: uses,
                                           graphOutputs: graphOutputs, removed: removed, predicate: mul.predicate),
                      nodes[g].op == "Gelu", nodes[g].activation == .none, nodes[g].node.inputs.count == 1,
                      let input = nodes[g].node.inputs.first else { continue }
                let approximate = nodes[g].node.string("approximate") ?? "none"
                guard approximate == "none" || approximate == "tanh" else { continue }
                nodes[r].node.inputs = [x, input]
                nodes[r].operandActivation = approximate == "tanh" ? .geluTanh : .gelu
                nodes[r].label = "\(nodes[g].label)+\(mul.label)"
                removed.insert(g)
                break
            }
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// MatMul(A, B) → Add(·, c), where B is a constant [K, N] weight (leading dims 1), A is not constant, c is a
    /// constant of N values along the last axis ([N], [1, N], …, no more dims than the product) and the product
    /// feeds only the Add and is not a model output, becomes one MatMul with c as its bias (packed into the weight
    /// image's bias texels, as Gemm's C): how torch exports a Linear on 3-D activations (transformer projections
    /// and MLPs), whose Add otherwise is a kernel and an arena round trip of its own, and stands between the
    /// product and its activation.
    static func fuseMatMulBias(_ nodes: inout [LoweringNode], initializers: [String: ConstantTensor],
                               values: [String: ValueInfo], graphOutputs: Set<String>) {
        mergeIntoProducers(&nodes, ops: ["Add"], graphOutputs: graphOutputs, orders: bothOrders) {
            nodes, _, y, c, p, _ in
            guard nodes[p].op == "MatMul", nodes[p].activation == .none, nodes[p].bias == nil,
                  nodes[p].node.inputs.count == 2, initializers[nodes[p].node.inputs[0]] == nil,
                  let weight = initializers[nodes[p].node.inputs[1]], isPlainWeight(weight),
                  let bias = initializers[c], bias.dtype == weight.dtype, let n = weight.shape.last,
                  bias.shape.last == n || (bias.shape.isEmpty && n == 1), bias.elementCount == n,
                  let yRank = values[y]?.shape?.count, bias.shape.count <= yRank
            else { return nil }
            return Merge { $0.bias = c }
        }
    }

    /// MatMul of two activations → Mul or Div by a float scalar constant becomes one product scaling in its epilogue
    /// (the MatMul's "alpha", an attribute of our own that matmul.comp applies): an attention left unfused (its
    /// scores · scale) otherwise writes and reads the scores once more. Runs after the attention passes, which absorb
    /// the scalings of the attentions they fuse; a Div becomes alpha = 1 / c.
    static func fuseProductScale(_ nodes: inout [LoweringNode], initializers: [String: ConstantTensor],
                                 graphOutputs: Set<String>) {
        let orders = { (scale: LoweringNode) in  // c · y commutes, y / c does not
            scale.op == "Mul" ? bothOrders(scale) : [(scale.node.inputs[0], scale.node.inputs[1])]
        }
        mergeIntoProducers(&nodes, ops: ["Mul", "Div"], graphOutputs: graphOutputs, orders: orders) {
            nodes, scale, _, c, p, _ in
            guard let constant = initializers[c], constant.dtype.isFloat, constant.elementCount == 1,
                  let value = constant.floats().first, value.isFinite, scale.op == "Mul" || value != 0,
                  nodes[p].op == "MatMul", nodes[p].activation == .none, nodes[p].bias == nil,
                  nodes[p].residual == nil, nodes[p].node.inputs.count == 2,
                  nodes[p].node.inputs.allSatisfy({ initializers[$0] == nil }) else { return nil }
            let alpha = nodes[p].node.float("alpha", default: 1) * (scale.op == "Mul" ? value : 1 / value)
            return Merge { $0.node.attributes["alpha"] = .float(alpha) }
        }
    }

    /// MatMul(A, constant B) (its bias fused or not) or Gemm(A, constant B[, a constant C along the columns]) →
    /// Add(·, R), where R is an activation of the product's shape, becomes one product adding R in its epilogue
    /// (the kernels' C, row-major [M, N]): a transformer's residual connection after its attention projection and
    /// its MLP, otherwise an element-wise kernel and an arena round trip of its own. Runs before `fuseActivations`,
    /// since the kernels apply the activation after C: act(A × B + bias + R) is Relu(product + R). The Add's output
    /// becomes the product's (or that of a view between them, as `fuseActivations` does).
    static func fuseResidualAdd(_ nodes: inout [LoweringNode], initializers: [String: ConstantTensor],
                                values: [String: ValueInfo], graphOutputs: Set<String>) {
        let producer = producers(nodes)
        mergeIntoProducers(&nodes, ops: ["Add"], graphOutputs: graphOutputs, orders: bothOrders) {
            nodes, add, _, residual, found, sole in
            guard let outShape = values[add.node.outputs[0]]?.staticShape else { return nil }
            // Product → views → Add (ViT: Gemm [L, E] → Reshape [L, 1, E] → Transpose [1, L, E]): views and
            // transposes of size-1 dims keep the element order.
            var p = found
            var view: Int?
            while keepsElementOrder(nodes[p], values), let data = nodes[p].node.inputs.first, let q = sole(data) {
                view = view ?? p
                p = q
            }
            // The product has every element of the sum: through views its shape may differ, never its size
            // (SD-UNet's time embedding [1, 320] → Unsqueeze ×2 → [1, 320, 1, 1] + hidden [1, 320, 64, 64] is a
            // broadcast, not a residual).
            guard let productShape = values[nodes[p].node.outputs[0]]?.staticShape,
                  productShape.reduce(1, *) == outShape.reduce(1, *), view != nil || productShape == outShape,
                  nodes[p].activation == .none, nodes[p].residual == nil,
                  initializers[residual] == nil, producer[residual].map({ $0 < p }) ?? true,
                  let info = values[residual], info.dtype.isFloat, info.staticShape == outShape,
                  nodes[p].node.inputs.count >= 2, initializers[nodes[p].node.inputs[0]] == nil,
                  let weight = initializers[nodes[p].node.inputs[1]], weight.dtype.isFloat
            else { return nil }
            switch nodes[p].op {
            case "MatMul":
                guard nodes[p].node.inputs.count == 2, isPlainWeight(weight) else { return nil }
            case "Gemm":
                // Its C must be a constant the lowering packs as bias texels (the same for every row).
                let inputs = nodes[p].node.inputs
                if inputs.count > 2, !inputs[2].isEmpty {
                    guard let c = initializers[inputs[2]], c.shape.count <= 1 || c.shape.first == 1 else { return nil }
                }
            default:
                return nil
            }
            return Merge(producer: p, view: view) { $0.residual = residual }
        }
    }

    /// A view (`views`), or a Transpose that moves only size-1 dims: its output has its input's elements in the
    /// same order.
    static func keepsElementOrder(_ n: LoweringNode, _ values: [String: ValueInfo]) -> Bool {
        guard isDefaultDomain(n.node), n.node.outputs.count == 1 else { return false }
        if views.contains(n.op) { return true }
        guard n.op == "Transpose", let x = n.node.inputs.first, let shape = values[x]?.staticShape,
              let perm = n.node.ints("perm"), perm.count == shape.count else { return false }
        let moved = perm.filter { shape[$0] != 1 }
        return moved == moved.sorted()
    }

    /// Merges the node at `merged` into the producer `p`: the producer (or `view`, a view node between them that
    /// stays) now writes `merged`'s output, and the producer's label names it. The caller removes `merged`.
    static func absorb(_ merged: LoweringNode, into p: Int, through view: Int? = nil, _ nodes: inout [LoweringNode]) {
        if let view {
            nodes[view].node.outputs = [merged.node.outputs[0]]
            nodes[view].label += "+\(merged.label)"
        } else {
            nodes[p].node.outputs = [merged.node.outputs[0]]
        }
        nodes[p].label += "+\(merged.label)"
    }

    /// A constant MatMul operand that is one [K, N] weight (leading dims all 1): what the lowering packs as an image.
    static func isPlainWeight(_ weight: ConstantTensor) -> Bool {
        weight.dtype.isFloat && weight.shape.count >= 2 && weight.shape.dropLast(2).allSatisfy({ $0 == 1 })
    }

    /// The node writing `value` as its only output, where `value` is read by one node only and is not a model
    /// output, in the default domain, under `predicate` and not yet merged away: a producer a pass may merge into
    /// that one reader.
    /// How a node merges into the product that computes one of its operands: `producer` (nil: the operand's own)
    /// takes the node's output, through `view` (a view node between them that stays, see `absorb`), and `apply`
    /// records what the product now computes.
    struct Merge {
        var producer: Int?
        var view: Int?
        var apply: (inout LoweringNode) -> Void

        init(producer: Int? = nil, view: Int? = nil, apply: @escaping (inout LoweringNode) -> Void) {
            (self.producer, self.view, self.apply) = (producer, view, apply)
        }
    }

    /// Both (operand, other) orders of a two-input node.
    static func bothOrders(_ n: LoweringNode) -> [(String, String)] {
        [(n.node.inputs[0], n.node.inputs[1]), (n.node.inputs[1], n.node.inputs[0])]
    }

    /// The loop of the passes that merge an element-wise node into the product computing one of its operands
    /// (fuseMatMulBias, fuseProductScale, fuseResidualAdd): for every node `ops` names with two inputs and one
    /// output, each (operand, other) of `orders` whose operand has a sole producer (`soleProducer`) is offered to
    /// `merge` with that producer's index and a finder of further sole producers under the same predicate; the
    /// first `Merge` it returns is applied (`absorb`) and the node goes.
    static func mergeIntoProducers(_ nodes: inout [LoweringNode], ops: Set<String>, graphOutputs: Set<String>,
                                   orders: (LoweringNode) -> [(String, String)],
                                   merge: (_ nodes: [LoweringNode], _ node: LoweringNode, _ operand: String,
                                           _ other: String, _ producer: Int, _ sole: (String) -> Int?) -> Merge?) {
        let uses = useCounts(nodes, graphOutputs: graphOutputs)
        let producer = producers(nodes)
        var removed = Set<Int>()
        for (r, n) in nodes.enumerated() where ops.contains(n.op) && isDefaultDomain(n.node) {
            guard n.node.inputs.count == 2, n.node.outputs.count == 1, n.node.inputs[0] != n.node.inputs[1] else {
                continue
            }
            let current = nodes
            func sole(_ value: String) -> Int? {
                soleProducer(of: value, in: current, producers: producer, uses: uses, graphOutputs: graphOutputs,
                             removed: removed, predicate: n.predicate)
            }
            for (operand, other) in orders(n) {
                guard let p = sole(operand), let m = merge(current, n, operand, other, p, sole) else { continue }
                let target = m.producer ?? p
                absorb(n, into: target, through: m.view, &nodes)
                m.apply(&nodes[target])
                removed.insert(r)
                break
            }
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    static func soleProducer(of value: String, in nodes: [LoweringNode], producers: [String: Int], uses: [String: Int],
                             graphOutputs: Set<String>, removed: Set<Int>, predicate: LoweredPredicate?) -> Int? {
        guard let p = producers[value], !removed.contains(p), isDefaultDomain(nodes[p].node),
              nodes[p].predicate == predicate,
              nodes[p].node.outputs.filter({ !$0.isEmpty }).count == 1, nodes[p].node.outputs[0] == value,
              uses[value] == 1, !graphOutputs.contains(value) else { return nil }
        return p
    }

    static func isDefaultDomain(_ node: Node) -> Bool {
        node.domain.isEmpty || node.domain == "ai.onnx"
    }

    static func unusedName(_ base: String, in initializers: [String: ConstantTensor]) -> String {
        var name = base
        var i = 1
        while initializers[name] != nil {
            name = "\(base)#\(i)"
            i += 1
        }
        return name
    }

    static func constant(_ values: [Float], shape: [Int]) -> ConstantTensor {
        let bytes = values.withUnsafeBytes { [UInt8]($0) }
        return ConstantTensor(dtype: .float32, shape: shape, bytes: TensorBytes(bytes))
    }
}
