// Static shape and dtype inference over the graph IR. Owned by the importer / shape inference.
//
// Runs after `Graph.simplify` (Constant nodes are initializers by then and shape arithmetic is folded, so the
// shape inputs of Reshape, Unsqueeze, Slice… are initializers). Every graph input must have a static shape;
// the CLI's `--input-shape NAME=d0,d1,...` (ONNXImporter.load's inputShapes) fixes dynamic ones.
// Spatial ops (Conv, pools, normalizations) are in ShapeInference+Spatial.swift; shared arithmetic in
// ShapeRules.swift.

/// Fills `graph.values` with the static shape and dtype of every node output and refreshes `graph.outputs`.
///
/// - Throws: `CompileError` for an input whose shape is not static (suggesting `--input-shape`), an operator it
///   does not know ("unsupported operator", naming node and op), a node whose inputs violate its operator's
///   rules, or a graph output whose inferred shape contradicts the declared one.
public func inferShapes(_ graph: Graph) throws {
    try ShapeInference(graph: graph, strict: true).run()
}

extension Graph {
    /// `inferShapes(self)`.
    public func inferShapes() throws {
        try FlashMemCompiler.inferShapes(self)
    }
}

/// A dtype and a static shape.
struct TensorType: Equatable {
    var dtype: DType
    var shape: [Int]
}

struct ShapeInference {
    let graph: Graph
    /// Strict: every value must end up static and every op must be known (the public pass). Lenient (used by
    /// constant folding before the graph is simplified): what cannot be inferred stays unknown, no error.
    let strict: Bool

    func run() throws {
        guard strict else {
            for node in graph.nodes { try inferAndRecord(node) }
            return
        }
        try checkInputsAreStatic()
        // Every unsupported operator of the model at once: a node of an unknown op is recorded and its outputs
        // become unknown; nodes reading unknown values are only checked for being supported themselves (an
        // unknown op fails before it reads an input, a known one on its missing input, which is ignored here).
        var unsupported: [CompileError] = []
        var unknown = Set<String>()
        for node in graph.nodes {
            do {
                if node.inputs.contains(where: unknown.contains) {
                    unknown.formUnion(node.outputs)
                    _ = try infer(node)
                } else {
                    try inferAndRecord(node)
                }
            } catch let error as CompileError where error.message == ShapeInference.unsupportedOperator {
                unsupported.append(error)
                unknown.formUnion(node.outputs)
            } catch where !unknown.isDisjoint(with: node.inputs) {
                continue  // a supported op whose inputs an unsupported node would have made
            }
        }
        if let first = unsupported.first {
            guard unsupported.count > 1 else { throw first }
            // Each op type once, in order of first appearance, with its count and its first node.
            var ops: [(op: String, count: Int, firstNode: String)] = []
            for error in unsupported {
                let op = error.op ?? "?"
                if let i = ops.firstIndex(where: { $0.op == op }) { ops[i].count += 1 } else {
                    ops.append((op, 1, error.node ?? "?"))
                }
            }
            let list = ops.map { "\($0.op) ×\($0.count) (\($0.count > 1 ? "first: " : "")node '\($0.firstNode)')" }
            throw CompileError(file: graph.sourcePath, node: first.node, op: first.op,
                               "\(ShapeInference.unsupportedOperator); the model has \(unsupported.count) nodes of "
                               + "\(ops.count) unsupported operators: " + list.joined(separator: ", "))
        }
        try refreshOutputs()
    }

    /// The message of a node whose operator fmc does not know.
    static let unsupportedOperator = "unsupported operator"

    /// Infers one node and records its outputs in `graph.values`.
    func inferAndRecord(_ node: Node) throws {
        let types: [TensorType]
        if strict {
            types = try infer(node)
        } else {
            guard let lenient = try? infer(node) else { return }
            types = lenient
        }
        for type in types {
            do {
                try ShapeRules.checkDimensions(type.shape)
            } catch let error as ShapeRuleError {
                guard strict else { return }
                throw CompileError(file: graph.sourcePath, node: node.name, op: node.opType, error.message)
            }
        }
        for (name, type) in zip(node.outputs, types) where !name.isEmpty {
            graph.values[name] = ValueInfo(name: name, dtype: type.dtype, shape: type.shape)
        }
    }

    private func checkInputsAreStatic() throws {
        for input in graph.inputs where input.staticShape == nil {
            let dims = input.shape.map { $0.map { $0.map(String.init) ?? "?" }.joined(separator: ",") } ?? "d0,d1,..."
            let shown = input.shape.map { IRText.shape($0) } ?? "of unknown rank"
            throw CompileError(file: graph.sourcePath, "input '\(input.name)' has a shape that is not known at compile "
                + "time (\(shown)); fix it with --input-shape \(input.name)=\(dims)"
                + (input.shape == nil ? "" : ", each ? replaced by a size"))
        }
    }

    private func refreshOutputs() throws {
        for (i, declared) in graph.outputs.enumerated() {
            guard let inferred = graph.values[declared.name], let shape = inferred.staticShape else {
                throw CompileError(file: graph.sourcePath, "the shape of graph output '\(declared.name)' is not known")
            }
            if let declaredShape = declared.shape, declaredShape.count != shape.count
                || zip(declaredShape, shape).contains(where: { $0.0 != nil && $0.0 != $0.1 }) {
                throw CompileError(file: graph.sourcePath, "graph output '\(declared.name)' is declared as "
                    + "\(IRText.shape(declaredShape)) but its inferred shape is \(IRText.shape(shape))")
            }
            graph.outputs[i] = inferred
        }
    }

    // MARK: - Dispatch

    static let unary: Set<String> = [
        "Abs", "Ceil", "Clip", "Cos", "Elu", "Erf", "Exp", "Floor", "Gelu", "HardSigmoid", "HardSwish", "Identity",
        "LeakyRelu", "Log", "Mish", "Neg", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Sign", "Sin",
        "Softplus", "Softsign", "Sqrt", "Tanh",
    ]
    static let arithmetic: Set<String> = ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean"]
    static let comparison: Set<String> = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"]
    static let logical: Set<String> = ["And", "Or", "Xor"]
    static let reductions: Set<String> = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"]

    func infer(_ node: Node) throws -> [TensorType] {
        let c = NodeContext(node: node, graph: graph)
        do {
            return try inferOp(c)
        } catch let error as ShapeRuleError {
            throw c.fail(error.message)
        }
    }

    private func inferOp(_ c: NodeContext) throws -> [TensorType] {
        let op = c.node.opType
        switch op {
        case _ where Self.unary.contains(op):
            return [try c.input(0)]
        case "Softmax", "LogSoftmax", "Hardmax":
            let x = try c.input(0)
            // Before opset 13 the default axis is 1 and the input is coerced to 2-D at that axis; the output
            // shape is the input's either way (lowering reads graph.opset for the semantics).
            _ = try ShapeRules.axis(c.node.int("axis", default: graph.opset >= 13 ? -1 : 1), rank: x.shape.count)
            return [x]
        case "Dropout":
            let x = try c.input(0)
            return [x, TensorType(dtype: .bool, shape: x.shape)]
        case "Cast":
            let x = try c.input(0)
            let to = c.node.int("to", default: 0)
            guard let dtype = DType(rawValue: Int32(truncatingIfNeeded: to)) else {
                throw c.fail("Cast to dtype \(ONNXGraphConverter.dtypeName(Int32(truncatingIfNeeded: to))) is not supported")
            }
            return [TensorType(dtype: dtype, shape: x.shape)]
        case _ where Self.arithmetic.contains(op):
            let xs = try c.inputs()
            try c.requireSameDType(xs)
            return [TensorType(dtype: xs[0].dtype, shape: try ShapeRules.broadcast(xs.map(\.shape)))]
        case "Pow":
            let a = try c.input(0), b = try c.input(1)
            return [TensorType(dtype: a.dtype, shape: try ShapeRules.broadcast([a.shape, b.shape]))]
        case "PRelu":
            let x = try c.input(0), slope = try c.input(1)
            guard try ShapeRules.broadcast([x.shape, slope.shape]) == x.shape else {
                throw c.fail("slope \(IRText.shape(slope.shape)) does not broadcast to \(IRText.shape(x.shape))")
            }
            return [x]
        case _ where Self.comparison.contains(op) || Self.logical.contains(op):
            let xs = try c.inputs()
            try c.requireSameDType(xs)
            return [TensorType(dtype: .bool, shape: try ShapeRules.broadcast(xs.map(\.shape)))]
        case "Not":
            return [try c.input(0)]
        case "Where":
            let cond = try c.input(0), x = try c.input(1), y = try c.input(2)
            try c.requireSameDType([x, y])
            return [TensorType(dtype: x.dtype, shape: try ShapeRules.broadcast([cond.shape, x.shape, y.shape]))]
        case "MatMul":
            let a = try c.input(0), b = try c.input(1)
            try c.requireSameDType([a, b])
            return [TensorType(dtype: a.dtype, shape: try ShapeRules.matmul(a.shape, b.shape))]
        case "Gemm":
            return [try gemm(c)]
        case "Conv":
            return [try conv(c)]
        case "MaxPool", "AveragePool", "LpPool":
            return try pool(c)
        case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool":
            let x = try c.input(0)
            guard x.shape.count >= 3 else { throw c.fail("input must have rank ≥ 3, not \(IRText.shape(x.shape))") }
            return [TensorType(dtype: x.dtype, shape: Array(x.shape[..<2]) + [Int](repeating: 1, count: x.shape.count - 2))]
        case "BatchNormalization":
            return try batchNormalization(c)
        case "LayerNormalization":
            return try layerNormalization(c)
        case "InstanceNormalization":
            return [try c.input(0)]
        case "Flatten":
            let x = try c.input(0)
            return [TensorType(dtype: x.dtype, shape: try ShapeRules.flatten(x.shape, axis: c.node.int("axis", default: 1)))]
        case "Reshape":
            let x = try c.input(0)
            guard let target = c.constant(1) else { throw c.fail("Reshape shape is not a compile-time constant") }
            let shape = try ShapeRules.reshape(x.shape, target: target.ints(),
                                               allowZero: c.node.int("allowzero", default: 0) != 0)
            return [TensorType(dtype: x.dtype, shape: shape)]
        case "Transpose":
            let x = try c.input(0)
            return [TensorType(dtype: x.dtype, shape: try ShapeRules.transpose(x.shape, perm: c.node.ints("perm")))]
        case "Concat":
            let xs = try c.inputs()
            try c.requireSameDType(xs)
            guard case .int(let axis) = c.node.attributes["axis"] else { throw c.fail("Concat needs an axis attribute") }
            return [TensorType(dtype: xs[0].dtype, shape: try ShapeRules.concat(xs.map(\.shape), axis: axis))]
        case "Unsqueeze":
            let x = try c.input(0)
            guard let axes = try c.axes(attributeBefore: 13) else { throw c.fail("Unsqueeze needs axes") }
            return [TensorType(dtype: x.dtype, shape: try ShapeRules.unsqueeze(x.shape, axes: axes))]
        case "Squeeze":
            let x = try c.input(0)
            return [TensorType(dtype: x.dtype, shape: try ShapeRules.squeeze(x.shape, axes: try c.axes(attributeBefore: 13)))]
        case "Gather":
            let data = try c.input(0), indices = try c.input(1)
            let shape = try ShapeRules.gather(data.shape, indices: indices.shape, axis: c.node.int("axis", default: 0))
            return [TensorType(dtype: data.dtype, shape: shape)]
        case "Shape":
            let x = try c.input(0)
            return [TensorType(dtype: .int64, shape: [try shapeOpRange(c, rank: x.shape.count).count])]
        case "Size":
            _ = try c.input(0)
            return [TensorType(dtype: .int64, shape: [])]
        case _ where Self.reductions.contains(op):
            return [try reduction(c)]
        case "Slice":
            let x = try c.input(0)
            let axes = try sliceAxes(c, shape: x.shape)
            return [TensorType(dtype: x.dtype, shape: axes.map(\.count))]
        case "Expand":
            let x = try c.input(0)
            guard let target = c.constant(1) else { throw c.fail("Expand shape is not a compile-time constant") }
            let targetShape = target.ints()
            try ShapeRules.checkDimensions(targetShape)
            return [TensorType(dtype: x.dtype, shape: try ShapeRules.broadcast([x.shape, targetShape]))]
        default:
            guard let rule = ShapeInference.familyRules[op] else { throw c.fail(ShapeInference.unsupportedOperator) }
            return try rule(c)
        }
    }

    // MARK: - Operators

    private func gemm(_ c: NodeContext) throws -> TensorType {
        let a = try c.input(0), b = try c.input(1)
        try c.requireSameDType([a, b])
        guard a.shape.count == 2, b.shape.count == 2 else {
            throw c.fail("A and B must be 2-D, not \(IRText.shape(a.shape)) and \(IRText.shape(b.shape))")
        }
        let transA = c.node.int("transA", default: 0) != 0, transB = c.node.int("transB", default: 0) != 0
        let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (kb, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        guard k == kb else {
            throw c.fail("inner dimensions differ: A \(IRText.shape(a.shape)) (transA \(transA ? 1 : 0)) and "
                + "B \(IRText.shape(b.shape)) (transB \(transB ? 1 : 0))")
        }
        if let bias = try c.optionalInput(2), (try? ShapeRules.broadcast([bias.shape, [m, n]])) != [m, n] {
            throw c.fail("C \(IRText.shape(bias.shape)) does not broadcast to [\(m), \(n)]")
        }
        return TensorType(dtype: a.dtype, shape: [m, n])
    }

    private func reduction(_ c: NodeContext) throws -> TensorType {
        let x = try c.input(0)
        // ReduceSum takes axes as an input from opset 13, the others from opset 18.
        let axes = try c.axes(attributeBefore: c.node.opType == "ReduceSum" ? 13 : 18)
        let keep = c.node.int("keepdims", default: 1) != 0
        var reduced: Set<Int>
        if let axes, !axes.isEmpty {
            reduced = Set(try axes.map { try ShapeRules.axis($0, rank: x.shape.count, name: "axes entry") })
        } else if c.node.int("noop_with_empty_axes", default: 0) != 0 {
            return x
        } else {
            reduced = Set(x.shape.indices)
        }
        var shape: [Int] = []
        for (i, d) in x.shape.enumerated() {
            if !reduced.contains(i) { shape.append(d) } else if keep { shape.append(1) }
        }
        return TensorType(dtype: x.dtype, shape: shape)
    }

    /// Shape's start/end attributes (opset 15), clamped as the spec says.
    func shapeOpRange(_ c: NodeContext, rank: Int) throws -> Range<Int> {
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
        let start = clamp(c.node.int("start", default: 0))
        let end = clamp(c.node.int("end", default: rank))
        return start..<max(start, end)
    }

    /// Slice parameters: attributes before opset 10, constant inputs from 10 on.
    func sliceAxes(_ c: NodeContext, shape: [Int]) throws -> [ShapeRules.SliceAxis] {
        if graph.opset < 10 {
            guard let starts = c.node.ints("starts"), let ends = c.node.ints("ends") else {
                throw c.fail("Slice needs starts and ends")
            }
            return try ShapeRules.slice(shape, starts: starts, ends: ends, axes: c.node.ints("axes"), steps: nil)
        }
        func constantInts(_ i: Int, _ what: String) throws -> [Int]? {
            guard i < c.node.inputs.count, !c.node.inputs[i].isEmpty else { return nil }
            guard let t = c.constant(i) else { throw c.fail("Slice \(what) are not a compile-time constant") }
            return t.ints()
        }
        guard let starts = try constantInts(1, "starts"), let ends = try constantInts(2, "ends") else {
            throw c.fail("Slice needs starts and ends")
        }
        return try ShapeRules.slice(shape, starts: starts, ends: ends, axes: try constantInts(3, "axes"),
                                    steps: try constantInts(4, "steps"))
    }
}

// MARK: - Node context

/// One node's view of the graph during inference: typed inputs, constants, errors naming the node.
struct NodeContext {
    let node: Node
    let graph: Graph

    func fail(_ message: String) -> CompileError {
        CompileError(file: graph.sourcePath, node: node.name, op: node.opType, message)
    }

    /// A present input with a known static shape.
    func input(_ i: Int) throws -> TensorType {
        guard i < node.inputs.count, !node.inputs[i].isEmpty else { throw fail("input \(i) is missing") }
        let name = node.inputs[i]
        guard let info = graph.values[name] else { throw fail("the type of input '\(name)' is not known") }
        guard let shape = info.staticShape else {
            throw fail("the shape of input '\(name)' is not known at compile time (\(info.shape.map { IRText.shape($0) } ?? "unknown rank"))")
        }
        return TensorType(dtype: info.dtype, shape: shape)
    }

    /// An optional input: nil when omitted ("" or past the end).
    func optionalInput(_ i: Int) throws -> TensorType? {
        guard i < node.inputs.count, !node.inputs[i].isEmpty else { return nil }
        return try input(i)
    }

    /// All present inputs.
    func inputs() throws -> [TensorType] {
        guard !node.inputs.isEmpty else { throw fail("has no inputs") }
        return try node.inputs.indices.filter { !node.inputs[$0].isEmpty }.map { try input($0) }
    }

    /// The initializer feeding input i, if it is one.
    func constant(_ i: Int) -> ConstantTensor? {
        guard i < node.inputs.count, !node.inputs[i].isEmpty else { return nil }
        return graph.initializers[node.inputs[i]]
    }

    func requireSameDType(_ types: [TensorType]) throws {
        guard let first = types.first else { return }
        if let other = types.first(where: { $0.dtype != first.dtype }) {
            throw fail("input dtypes differ (\(first.dtype) and \(other.dtype))")
        }
    }

    /// `axes` as an attribute (opsets before `attributeBefore`) or as constant input 1 (from then on); nil when
    /// absent.
    func axes(attributeBefore version: Int) throws -> [Int]? {
        if graph.opset < version { return node.ints("axes") }
        guard node.inputs.count > 1, !node.inputs[1].isEmpty else { return nil }
        guard let t = constant(1) else { throw fail("\(node.opType) axes are not a compile-time constant") }
        return t.ints()
    }
}
