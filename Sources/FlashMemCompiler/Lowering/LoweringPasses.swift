// Small graph rewrites the lowering runs first, on its own copy of the nodes (the Graph is not modified):
//
//   foldBatchNorm   Conv → BatchNormalization, where the Conv output feeds only the BN and is not a model
//                   output and every BN parameter is constant, becomes one Conv with
//                   W'[oc] = W[oc] · s[oc],  b'[oc] = (b[oc] − mean[oc]) · s[oc] + β[oc],  s = γ / √(var + ε).
//   fuseRelu        X → Relu, where X is Conv / ConvTranspose / Gemm / MatMul / Add / Sub / Mul / Div /
//                   BatchNormalization, its only output feeds only the Relu and is not a model output,
//                   becomes X with a fused relu epilogue (spec constant ACTIVATION of its kernel) writing the
//                   Relu's output.
//
// Both keep topological order: the surviving node takes the place of the first, whose consumers all come
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

    static func fuseRelu(_ nodes: inout [LoweringNode], graphOutputs: Set<String>) {
        let uses = useCounts(nodes, graphOutputs: graphOutputs)
        let producer = producers(nodes)
        var removed = Set<Int>()
        for (r, relu) in nodes.enumerated() where relu.op == "Relu" && isDefaultDomain(relu.node) {
            guard let x = relu.node.inputs.first, let p = producer[x], !removed.contains(p),
                  reluFusable.contains(nodes[p].op), isDefaultDomain(nodes[p].node), nodes[p].activation == .none,
                  nodes[p].node.outputs.filter({ !$0.isEmpty }).count == 1, nodes[p].node.outputs[0] == x,
                  uses[x] == 1, !graphOutputs.contains(x), relu.node.outputs.count == 1
            else { continue }
            nodes[p].node.outputs = [relu.node.outputs[0]]
            nodes[p].activation = .relu
            nodes[p].label += "+\(relu.label)"
            removed.insert(r)
        }
        nodes = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    private static func isDefaultDomain(_ node: Node) -> Bool {
        node.domain.isEmpty || node.domain == "ai.onnx"
    }

    private static func unusedName(_ base: String, in initializers: [String: ConstantTensor]) -> String {
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
