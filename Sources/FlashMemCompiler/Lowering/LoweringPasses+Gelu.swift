// GELU, as exporters write it: opset < 20 has no Gelu op, so torch writes the exact GELU as
// x · 0.5 · (1 + erf(x / √2)) and the tanh approximation (GPT-2 / GPT-Neo's "gelu_new") as
// 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))) — five to eight element-wise nodes, so as many kernels and
// arena round trips per transformer MLP. `recognizeGelu` finds such a subgraph by what it computes rather than
// by its operand order: the nodes that read only x, scalar constants and each other's outputs, among the
// element-wise ops the two formulas use, whose one outside-visible output y is, evaluated as a function of x on
// sample points, GELU (or its tanh form) to 1e-5 — 1e-4 where its constants are float16 (an fp16 export rounds
// √(2/π) and 0.044715: 1.3e-5 off at x = −1.3; the two forms differ by up to 4.4e-4 at the samples, so they stay
// apart). It becomes one Gelu node (`approximate` = "tanh" for the tanh
// form), which `fuseActivations` then folds into the Gemm / MatMul / Conv that produces x, when that is x's only
// reader.

import Foundation

extension LoweringPasses {
    /// The element-wise ops a decomposed GELU is made of.
    static let geluParts: Set<String> = ["Mul", "Div", "Add", "Sub", "Erf", "Tanh", "Pow", "Sqrt"]

    /// Replaces every decomposed GELU (see above) with one Gelu node at the place of its last node.
    static func recognizeGelu(_ nodes: inout [LoweringNode], initializers: [String: ConstantTensor],
                              values: [String: ValueInfo], graphOutputs: Set<String>) {
        var consumers: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() {
            for input in n.node.inputs where !input.isEmpty { consumers[input, default: []].append(i) }
        }
        func scalar(_ name: String) -> Double? {
            guard let c = initializers[name], c.dtype.isFloat, c.elementCount == 1 else { return nil }
            return Double(c.floats()[0])
        }
        func isHalfScalar(_ name: String) -> Bool { initializers[name]?.dtype == .float16 }
        var removed = Set<Int>()
        var replacements: [Int: LoweringNode] = [:]
        // Candidate x: any value read by a GELU-part node (node outputs and graph inputs alike), in node order.
        var seen = Set<String>()
        for n in nodes where geluParts.contains(n.op) && isDefaultDomain(n.node) {
            for x in n.node.inputs where !x.isEmpty && scalar(x) == nil && !seen.contains(x) {
                seen.insert(x)
                guard values[x]?.dtype == .float32 || values[x]?.dtype == .float16 else { continue }
                guard let match = matchGelu(x: x, nodes: nodes, consumers: consumers, scalar: scalar,
                                            isHalfScalar: isHalfScalar, graphOutputs: graphOutputs,
                                            taken: removed) else { continue }
                let last = match.members.max()!
                var gelu = LoweringNode(Node(name: nodes[last].node.name, opType: "Gelu", inputs: [x],
                                             outputs: [match.output],
                                             attributes: match.tanh ? ["approximate": .string("tanh")] : [:]))
                gelu.label = "gelu(" + match.members.sorted().map { nodes[$0].label }.joined(separator: "+") + ")"
                gelu.predicate = nodes[last].predicate
                replacements[last] = gelu
                removed.formUnion(match.members)
            }
        }
        guard !removed.isEmpty else { return }
        nodes = nodes.enumerated().compactMap { i, n in replacements[i] ?? (removed.contains(i) ? nil : n) }
    }

    /// The GELU subgraph reading `x`: its node indices, its output and which form it is; nil if there is none.
    private static func matchGelu(x: String, nodes: [LoweringNode], consumers: [String: [Int]],
                                  scalar: (String) -> Double?, isHalfScalar: (String) -> Bool,
                                  graphOutputs: Set<String>,
                                  taken: Set<Int>) -> (members: Set<Int>, output: String, tanh: Bool)? {
        // The closure: in node order from x's first reader, every GELU-part node whose inputs are all x, scalar
        // constants or outputs of the closure.
        guard let first = consumers[x]?.min() else { return nil }
        var closure: [Int] = []
        var produced: Set<String> = [x]
        for i in first..<nodes.count where !taken.contains(i) {
            let n = nodes[i]
            guard geluParts.contains(n.op), isDefaultDomain(n.node), n.activation == .none,
                  n.predicate == nodes[first].predicate, n.node.outputs.count == 1,
                  n.node.inputs.allSatisfy({ produced.contains($0) || scalar($0) != nil }),
                  n.node.inputs.contains(where: { produced.contains($0) })
            else { continue }
            closure.append(i)
            produced.insert(n.node.outputs[0])
            if closure.count > 12 { break }
        }
        // Try each closure output as y, latest first: y's ancestors in the closure must be read only by each other.
        let inClosure = Set(closure)
        for candidate in closure.reversed() {
            let y = nodes[candidate].node.outputs[0]
            var members: Set<Int> = [candidate]
            var stack = [candidate]
            while let i = stack.popLast() {
                for input in nodes[i].node.inputs where input != x {
                    if let p = closure.first(where: { nodes[$0].node.outputs[0] == input }), inClosure.contains(p),
                       !members.contains(p) {
                        members.insert(p)
                        stack.append(p)
                    }
                }
            }
            guard (4...10).contains(members.count) else { continue }
            let internalOnly = members.allSatisfy { i in
                let v = nodes[i].node.outputs[0]
                if v == y { return true }
                return !graphOutputs.contains(v) && (consumers[v] ?? []).allSatisfy { members.contains($0) }
            }
            guard internalOnly else { continue }
            let order = members.sorted()
            func evaluate(_ t: Double) -> Double? {
                var env: [String: Double] = [x: t]
                for i in order {
                    let n = nodes[i].node
                    let args = n.inputs.map { env[$0] ?? scalar($0) }
                    guard args.allSatisfy({ $0 != nil }) else { return nil }
                    let a = args.map { $0! }
                    let r: Double
                    switch (n.opType, a.count) {
                    case ("Mul", 2): r = a[0] * a[1]
                    case ("Div", 2): r = a[0] / a[1]
                    case ("Add", 2): r = a[0] + a[1]
                    case ("Sub", 2): r = a[0] - a[1]
                    case ("Pow", 2): r = Foundation.pow(a[0], a[1])
                    case ("Erf", 1): r = Foundation.erf(a[0])
                    case ("Tanh", 1): r = Foundation.tanh(a[0])
                    case ("Sqrt", 1): r = a[0].squareRoot()
                    default: return nil
                    }
                    env[n.outputs[0]] = r
                }
                return env[y]
            }
            let samples: [Double] = [-6, -3.5, -2, -1.3, -0.7, -0.2, -0.01, 0.01, 0.3, 0.9, 1.7, 2.5, 4, 7]
            let got = samples.map(evaluate)
            guard got.allSatisfy({ $0 != nil && $0!.isFinite }) else { continue }
            let half = order.contains { i in nodes[i].node.inputs.contains(where: isHalfScalar) }
            let tolerance = half ? 1e-4 : 1e-5
            func matches(_ f: (Double) -> Double) -> Bool {
                zip(samples, got).allSatisfy { t, g in abs(g! - f(t)) <= tolerance * (1 + abs(f(t))) }
            }
            if matches({ 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }) {
                return (members, y, false)
            }
            if matches({ 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }) {
                return (members, y, true)
            }
        }
        return nil
    }
}
