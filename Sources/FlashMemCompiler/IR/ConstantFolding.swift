// Compile-time evaluation: everything that depends only on shapes and constants (what exporters emit around
// Reshape and friends: Shape → Gather → Unsqueeze → Concat → Reshape; attention masks built from Range, Equal and
// Where; If on a constant condition) is replaced by initializers, so that the bundle holds only real work.
// Owned by the compile-time evaluation (constant folding) pass.
//
// Folding runs one forward pass in topological order, interleaved with lenient shape inference, so that a Shape
// node folds as soon as its input's shape is known even when the input itself is not constant. An If whose
// condition is known splices the taken branch's nodes into the pass right where the If was (IfInlining.swift),
// so they fold in the same pass. The evaluators live in ConstantFolding+Elementwise.swift (elementwise math,
// comparisons, logic, Where) and ConstantFolding+Tensors.swift (Transpose, Expand, Tile, Range, Split).

extension Graph {
    /// Replaces nodes whose result is known at compile time with initializers: Shape and Size of values with a
    /// static shape; Reshape, Flatten, Squeeze, Unsqueeze, Identity, Cast, Gather, Concat, Slice, Transpose,
    /// Expand, Tile, Split, Range, ConstantOfShape, ScatterND, OneHot, the elementwise math, comparison and logic ops and Where
    /// whose inputs are all initializers; and If whose condition is an initializer (the taken branch is inlined).
    /// Reshape-like ops on constants share the bytes (any size); the others are folded only for results of at
    /// most `ConstantFolder.elementLimit` elements, so that weights are never copied. A folded graph output
    /// becomes an initializer, which lowering makes a resident constant of the bundle.
    ///
    /// Zero-size tensors never reach a kernel: a value without elements is a constant (the empty tensor), so
    /// every node output without elements becomes an empty initializer (the node keeps its other outputs, blanked
    /// ones are ""), a reduction over an empty set folds to its identity (ReduceSum 0, ReduceMax −∞, ReduceMean
    /// NaN…) and Concat drops empty inputs. The mask of a Dropout that drops nothing is a constant all-true.
    /// Also records, in `values`, every shape the lenient inference can find on the way.
    ///
    /// A Cast to the dtype its input already has becomes an Identity.
    ///
    /// - Returns: whether aliases were introduced (an inlined If's branch outputs, no-op Casts), which
    ///   `removeAliases` then removes.
    /// - Throws: `CompileError` for an inlined branch's unusable Constant node.
    @discardableResult
    public func foldConstants() throws -> Bool {
        let inference = ShapeInference(graph: self, strict: false)
        let graphOutputs = Set(outputs.map(\.name))
        var queue = nodes
        var kept: [Node] = []
        kept.reserveCapacity(nodes.count)
        var aliasesAdded = false
        var index = 0
        while index < queue.count {
            var node = queue[index]
            index += 1
            if node.opType == "If", let branch = takenBranch(of: node) {
                let branchNodes = try inlineBranch(branch, of: node, pending: queue[index...], kept: kept)
                queue.insert(contentsOf: branchNodes, at: index)
                aliasesAdded = true
                continue
            }
            if node.opType == "If" {  // decided at run time: fold its branches with this scope in sight
                node = try specializingBranches(of: node)
            }
            node = withoutEmptyConcatInputs(node)
            if node.opType == "Identity" { aliasesAdded = true }  // a Concat left with one input
            if let results = ConstantFolder(graph: self, node: node).fold(),
               results.count == node.outputs.count,
               results.allSatisfy({ (try? ShapeRules.checkDimensions($0.shape)) != nil }) {
                for (name, tensor) in zip(node.outputs, results) where !name.isEmpty {
                    record(tensor, as: name)
                }
                continue
            }
            // Outputs known without running the node (no elements; Dropout's mask) become constants; the node
            // stays for the others, or goes when none is left.
            let before = node
            node = foldKnownOutputs(of: node, inference: inference)
            if node.outputs.allSatisfy(\.isEmpty) { continue }
            if node.opType == "Dropout", node.outputs != before.outputs { aliasesAdded = true }  // now an alias
            if node.isNoOpCast(in: self), !node.outputs.contains(where: graphOutputs.contains) {
                // Not constant, but a Cast to the dtype its input has already (exporters' `.to(float32)`): an alias.
                let alias = Node(name: node.name, opType: "Identity", inputs: [node.inputs[0]], outputs: [node.outputs[0]])
                try inference.inferAndRecord(alias)
                kept.append(alias)
                aliasesAdded = true
                continue
            }
            try inference.inferAndRecord(node)
            kept.append(node)
        }
        nodes = kept
        return aliasesAdded
    }

    /// Records a folded value as an initializer (with its type in `values`).
    private func record(_ tensor: ConstantTensor, as name: String) {
        initializers[name] = tensor
        values[name] = ValueInfo(name: name, dtype: tensor.dtype, shape: tensor.shape)
    }

    /// Concat ignores inputs without elements (ONNX allows them along the axis); dropping them keeps zero-size
    /// tensors away from kernels. A Concat left with one input is an Identity (an alias `removeAliases` removes).
    private func withoutEmptyConcatInputs(_ node: Node) -> Node {
        guard node.opType == "Concat", node.outputs.count == 1 else { return node }
        let kept = node.inputs.filter { name in
            name.isEmpty || (initializers[name]?.shape ?? values[name]?.staticShape)?.contains(0) != true
        }
        guard !kept.isEmpty, kept.count < node.inputs.count else { return node }
        if kept.count == 1 {
            return Node(name: node.name, opType: "Identity", inputs: kept, outputs: node.outputs)
        }
        var node = node
        node.inputs = kept
        return node
    }

    /// Turns the outputs of `node` whose value is known without running it into initializers and blanks them in
    /// the node (an omitted output, ""): outputs without elements (a dimension 0), which no kernel may write, and
    /// the mask of a Dropout that drops nothing (inference mode, or training with ratio 0), which is all true.
    private func foldKnownOutputs(of node: Node, inference: ShapeInference) -> Node {
        guard let types = try? inference.infer(node), types.count >= node.outputs.count else { return node }
        var node = node
        for (i, name) in node.outputs.enumerated() where !name.isEmpty {
            let type = types[i]
            if type.shape.contains(0) {
                record(ConstantTensor(dtype: type.dtype, shape: type.shape, bytes: TensorBytes([])), as: name)
                node.outputs[i] = ""
            } else if node.opType == "Dropout", i == 1, !isTrainingDropout(node),
                      let count = try? ShapeRules.product(type.shape), count <= ConstantFolder.elementLimit {
                let dtype = values[name]?.dtype ?? type.dtype
                record(.make(dtype: dtype, shape: type.shape, integers: [Int](repeating: 1, count: count)), as: name)
                node.outputs[i] = ""
            }
        }
        return node
    }

    /// Nodes of this graph and, recursively, of its nested graphs (If branches, Loop bodies): the count that
    /// `CompileReport.foldedNodes` compares before and after simplification.
    public var nodeCountIncludingNested: Int {
        nodes.reduce(nodes.count) { n, node in n + node.nestedGraphs.reduce(0) { $0 + $1.nodeCountIncludingNested } }
    }
}

extension Node {
    /// A one-input Cast whose target dtype is its input's (as far as `graph.values` knows it).
    func isNoOpCast(in graph: Graph) -> Bool {
        guard opType == "Cast", inputs.count == 1, outputs.count == 1, !inputs[0].isEmpty, !outputs[0].isEmpty,
              let from = graph.values[inputs[0]]?.dtype else { return false }
        return Int(from.rawValue) == int("to", default: -1)
    }
}

/// Evaluates one node on constant inputs. `fold()` returns nil (and the node stays) for anything it does not
/// handle or that would be an error: shape inference reports errors later with their context.
///
/// Arithmetic: integers (and bool) in Int64 with wrap-around, as onnxruntime computes them; floats in Double,
/// rounded to the dtype after every node. For +, −, ×, ÷ and √ that equals computing in float32 (Double holds more
/// than twice float32's precision, so the double rounding is innocuous); Pow, Exp and Log may differ from a
/// float32 library in the last ulp.
struct ConstantFolder {
    /// Largest result, in elements, that folding materializes (copies). Reshape-like views are not limited.
    static let elementLimit = 1 << 16

    let graph: Graph
    let node: Node

    func fold() -> [ConstantTensor]? {
        switch node.opType {
        case "Shape":
            guard let shape = staticShape(0) else { return nil }
            let range = shapeRange(rank: shape.count)
            return [.make(dtype: .int64, shape: [range.count], integers: Array(shape[range]))]
        case "Size":
            guard let shape = staticShape(0) else { return nil }
            guard let count = try? ShapeRules.product(shape) else { return nil }
            return [.make(dtype: .int64, shape: [], integers: [count])]
        default:
            break
        }
        // Every present input must be an initializer or a value without elements (whose content is known).
        var inputs: [ConstantTensor?] = []
        for name in node.inputs {
            if name.isEmpty { inputs.append(nil); continue }
            guard let t = graph.initializers[name] ?? emptyValue(name) else { return nil }
            inputs.append(t)
        }
        guard let x = inputs.first ?? nil else { return nil }
        if x.elementCount == 0, let identity = Self.emptyReductions[node.opType] {
            return emptyReduction(x, identity: identity)
        }
        return try? foldOp(x, inputs)
    }

    /// The empty tensor, for a value whose static shape has a dimension 0.
    private func emptyValue(_ name: String) -> ConstantTensor? {
        guard let info = graph.values[name], let shape = info.staticShape, shape.contains(0) else { return nil }
        return ConstantTensor(dtype: info.dtype, shape: shape, bytes: TensorBytes([]))
    }

    /// What each reduction yields over an empty set (numpy's and the ONNX reference's identities).
    static let emptyReductions: [String: Double] = [
        "ReduceSum": 0, "ReduceL1": 0, "ReduceL2": 0, "ReduceSumSquare": 0, "ReduceProd": 1,
        "ReduceMax": -.infinity, "ReduceMin": .infinity, "ReduceMean": .nan,
        "ReduceLogSum": -.infinity, "ReduceLogSumExp": -.infinity,
    ]

    /// A reduction of an input without elements: every output element is `identity` (the output shape comes
    /// from shape inference: a reduced axis of size 0 gives 1 with keepdims, or goes). Integer results are
    /// folded only where the identity is an integer.
    private func emptyReduction(_ x: ConstantTensor, identity: Double) -> [ConstantTensor]? {
        guard let types = try? ShapeInference(graph: graph, strict: false).infer(node), let type = types.first,
              let count = try? ShapeRules.product(type.shape), count <= Self.elementLimit else { return nil }
        if !type.dtype.isFloat {
            guard identity.isFinite, type.dtype != .bool else { return nil }
        }
        return [.make(dtype: type.dtype, shape: type.shape, reals: [Double](repeating: identity, count: count))]
    }

    private func foldOp(_ x: ConstantTensor, _ inputs: [ConstantTensor?]) throws -> [ConstantTensor]? {
        func input(_ i: Int) -> ConstantTensor? { i < inputs.count ? inputs[i] : nil }
        let op = node.opType
        switch op {
        case "Identity":
            return [x]
        case "Reshape":
            guard let target = input(1) else { return nil }
            let shape = try ShapeRules.reshape(x.shape, target: target.ints(),
                                               allowZero: node.int("allowzero", default: 0) != 0)
            return [x.reshaped(shape)]
        case "Flatten":
            return [x.reshaped(try ShapeRules.flatten(x.shape, axis: node.int("axis", default: 1)))]
        case "Unsqueeze":
            guard let axes = graph.opset < 13 ? node.ints("axes") : input(1)?.ints() else { return nil }
            return [x.reshaped(try ShapeRules.unsqueeze(x.shape, axes: axes))]
        case "Squeeze":
            let axes = graph.opset < 13 ? node.ints("axes") : input(1)?.ints()
            return [x.reshaped(try ShapeRules.squeeze(x.shape, axes: axes))]
        case "Cast":
            guard let to = DType(rawValue: Int32(truncatingIfNeeded: node.int("to", default: 0))),
                  x.elementCount <= Self.elementLimit else { return nil }
            return cast(x, to: to).map { [$0] }
        case "Gather":
            guard let indices = input(1) else { return nil }
            return gather(x, indices: indices).map { [$0] }
        case "Concat":
            guard case .int(let axis) = node.attributes["axis"] else { return nil }
            let parts = inputs.compactMap { $0 }
            return concat(parts, axis: axis).map { [$0] }
        case "Slice":
            return slice(x, inputs).map { [$0] }
        case "ConstantOfShape":
            return constantOfShape(x).map { [$0] }
        case "Transpose":
            return transpose(x).map { [$0] }
        case "Expand":
            guard let shape = input(1) else { return nil }
            return expand(x, to: shape.ints()).map { [$0] }
        case "Tile":
            guard let repeats = input(1) else { return nil }
            return tile(x, repeats: repeats.ints()).map { [$0] }
        case "Range":
            guard let limit = input(1), let delta = input(2) else { return nil }
            return range(start: x, limit: limit, delta: delta).map { [$0] }
        case "Split":
            return split(x, inputs)
        case "Where":
            guard let a = input(1), let b = input(2) else { return nil }
            return select(x, a, b).map { [$0] }
        case "ScatterND":
            guard let indices = input(1), let updates = input(2) else { return nil }
            return scatterND(x, indices: indices, updates: updates).map { [$0] }
        case "OneHot":
            guard input(1) != nil, let values = input(2) else { return nil }
            return oneHot(x, values: values).map { [$0] }
        case _ where Self.elementwiseOps.contains(op):
            let operands = inputs.compactMap { $0 }
            guard operands.count == inputs.count else { return nil }
            return elementwise(operands).map { [$0] }
        default:
            return nil
        }
    }

    // MARK: - Helpers

    private func staticShape(_ i: Int) -> [Int]? {
        guard i < node.inputs.count, !node.inputs[i].isEmpty else { return nil }
        return graph.values[node.inputs[i]]?.staticShape
    }

    /// Shape's start/end (opset 15), clamped.
    private func shapeRange(rank: Int) -> Range<Int> {
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
        let start = clamp(node.int("start", default: 0)), end = clamp(node.int("end", default: rank))
        return start..<max(start, end)
    }

    /// Copies elements: output element o comes from input element `source(o)`.
    func gatherElements(_ x: ConstantTensor, shape: [Int], source: (Int) -> Int) -> ConstantTensor? {
        guard let count = try? ShapeRules.product(shape), count <= Self.elementLimit else { return nil }
        let size = x.dtype.byteSize
        var out = [UInt8](repeating: 0, count: count * size)
        out.withUnsafeMutableBytes { dst in
            for o in 0..<count {
                let s = source(o)
                dst.baseAddress!.advanced(by: o * size)
                    .copyMemory(from: x.bytes.pointer.baseAddress!.advanced(by: s * size), byteCount: size)
            }
        }
        return ConstantTensor(dtype: x.dtype, shape: shape, bytes: TensorBytes(out))
    }

    private func cast(_ x: ConstantTensor, to: DType) -> ConstantTensor? {
        if x.dtype.isFloat {
            let values = x.reals()
            if !to.isFloat {
                // Out-of-range float → int casts are undefined behaviour in C (and ORT): leave them to run time.
                guard values.allSatisfy({ $0.isFinite && abs($0) < 9.2e18 }) || to == .bool else { return nil }
            }
            return .make(dtype: to, shape: x.shape, reals: values)
        }
        return .make(dtype: to, shape: x.shape, integers: x.ints())
    }

    private func gather(_ x: ConstantTensor, indices: ConstantTensor) -> ConstantTensor? {
        guard !indices.dtype.isFloat, let axis = try? ShapeRules.axis(node.int("axis", default: 0), rank: x.shape.count),
              let shape = try? ShapeRules.gather(x.shape, indices: indices.shape, axis: axis) else { return nil }
        let dim = x.shape[axis]
        var index = indices.ints()
        for i in index.indices {
            if index[i] < 0 { index[i] += dim }
            guard index[i] >= 0 && index[i] < dim else { return nil }
        }
        let inner = x.shape[(axis + 1)...].reduce(1, *)
        let n = index.count
        return gatherElements(x, shape: shape) { o in
            let (outer, rest) = o.quotientAndRemainder(dividingBy: n * inner)
            let (k, i) = rest.quotientAndRemainder(dividingBy: inner)
            return (outer * dim + index[k]) * inner + i
        }
    }

    private func concat(_ parts: [ConstantTensor], axis: Int) -> ConstantTensor? {
        guard let first = parts.first, parts.allSatisfy({ $0.dtype == first.dtype }),
              let shape = try? ShapeRules.concat(parts.map(\.shape), axis: axis),
              let count = try? ShapeRules.product(shape), count <= Self.elementLimit else { return nil }
        let a = axis < 0 ? axis + first.shape.count : axis
        let outer = first.shape[..<a].reduce(1, *)
        let size = first.dtype.byteSize
        var out = [UInt8]()
        out.reserveCapacity(count * size)
        for o in 0..<outer {
            for part in parts {
                let block = part.shape[a...].reduce(1, *) * size
                out.append(contentsOf: part.bytes.pointer[(o * block)..<((o + 1) * block)])
            }
        }
        return ConstantTensor(dtype: first.dtype, shape: shape, bytes: TensorBytes(out))
    }

    private func slice(_ x: ConstantTensor, _ inputs: [ConstantTensor?]) -> ConstantTensor? {
        let axes: [ShapeRules.SliceAxis]
        if graph.opset < 10 {
            guard let starts = node.ints("starts"), let ends = node.ints("ends"),
                  let a = try? ShapeRules.slice(x.shape, starts: starts, ends: ends, axes: node.ints("axes"), steps: nil)
            else { return nil }
            axes = a
        } else {
            func ints(_ i: Int) -> [Int]? { i < inputs.count ? inputs[i]?.ints() : nil }
            guard let starts = ints(1), let ends = ints(2),
                  let a = try? ShapeRules.slice(x.shape, starts: starts, ends: ends, axes: ints(3), steps: ints(4))
            else { return nil }
            axes = a
        }
        let strides = Self.strides(x.shape)
        return gatherByAxis(x, shape: axes.map(\.count)) { a, i in (axes[a].start + i * axes[a].step) * strides[a] }
    }

    private func constantOfShape(_ shapeTensor: ConstantTensor) -> ConstantTensor? {
        let shape = shapeTensor.ints()
        guard (try? ShapeRules.checkDimensions(shape)) != nil,
              let count = try? ShapeRules.product(shape), count <= Self.elementLimit else { return nil }
        var value = ConstantTensor.make(dtype: .float32, shape: [1], reals: [0])
        if case .tensor(let t) = node.attributes["value"] {
            guard t.elementCount == 1 else { return nil }
            value = t
        }
        return gatherElements(value, shape: shape) { _ in 0 }
    }

    /// Maps a linear index of the broadcast result to the linear index of an operand of shape `from`.
    func broadcastIndex(from: [Int], to: [Int]) -> (Int) -> Int {
        let padded = [Int](repeating: 1, count: to.count - from.count) + from
        var strides = [Int](repeating: 0, count: to.count)
        var s = 1
        for i in stride(from: to.count - 1, through: 0, by: -1) {
            strides[i] = padded[i] == 1 ? 0 : s
            s *= padded[i]
        }
        return { o in
            var rest = o, index = 0
            for i in stride(from: to.count - 1, through: 0, by: -1) {
                let (q, r) = rest.quotientAndRemainder(dividingBy: to[i])
                rest = q
                index += r * strides[i]
            }
            return index
        }
    }
}
