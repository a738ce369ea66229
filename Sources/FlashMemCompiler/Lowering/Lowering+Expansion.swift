// A builder for rules that rewrite one node into ops the lowering already has, before the lowering passes
// (training-mode BatchNormalization, Einsum): fresh value names (LoweringContext.temporary) with their shapes,
// constants, and the original node's predicate on every node it makes.

/// Builds the nodes replacing one node; `nodes` is the result, in order.
struct NodeExpansion {
    let context: LoweringContext
    let original: LoweringNode
    private(set) var nodes: [LoweringNode] = []

    init(context: LoweringContext, original: LoweringNode) {
        self.context = context
        self.original = original
    }

    /// A fresh value of `shape`, named after the original node.
    func value(_ name: String, shape: [Int]) -> String {
        context.temporary("\(original.label)#\(name)", shape: shape)
    }

    /// A node `opType` writing `output`, labelled "<original>/<name>".
    @discardableResult
    mutating func op(_ opType: String, _ inputs: [String], output: String, name: String,
                     attributes: [String: Attribute] = [:]) -> String {
        var lowered = LoweringNode(Node(name: "\(original.label)/\(name)", opType: opType, inputs: inputs,
                                        outputs: [output], attributes: attributes))
        lowered.predicate = original.predicate
        nodes.append(lowered)
        return output
    }

    /// A node `opType` writing a fresh value of `shape`.
    mutating func op(_ opType: String, _ inputs: [String], shape: [Int], name: String,
                     attributes: [String: Attribute] = [:]) -> String {
        op(opType, inputs, output: value(name, shape: shape), name: name, attributes: attributes)
    }

    /// A reduction over `axes` writing a fresh value of `shape` (or `output`). The axes are an attribute before
    /// opset 18 (13 for ReduceSum) and an input from then on (as lowerReduce reads them).
    @discardableResult
    mutating func reduce(_ opType: String, _ x: String, axes: [Int], keepDims: Bool, shape: [Int], name: String,
                         output: String? = nil) -> String {
        let y = output ?? value(name, shape: shape)
        let keep: [String: Attribute] = ["keepdims": .int(keepDims ? 1 : 0)]
        if context.graph.opset < (opType == "ReduceSum" ? 13 : 18) {
            return op(opType, [x], output: y, name: name, attributes: keep.merging(["axes": .ints(axes)]) { $1 })
        }
        return op(opType, [x, int64Constant(axes, name: "\(name)_axes")], output: y, name: name, attributes: keep)
    }

    /// `x` reshaped to `shape` (a view; a constant stays a constant).
    mutating func view(_ x: String, shape: [Int], name: String, output: String? = nil) -> String {
        let target = int64Constant(shape, name: "\(name)_shape")
        if let output { return op("Reshape", [x, target], output: output, name: name) }
        return op("Reshape", [x, target], shape: shape, name: name)
    }

    /// A float32 scalar constant.
    func scalar(_ v: Float, name: String) -> String {
        let constant = value(name, shape: [])
        context.initializers[constant] = LoweringPasses.constant([v], shape: [])
        return constant
    }

    /// An int64 vector constant.
    func int64Constant(_ values: [Int], name: String) -> String {
        let constant = value(name, shape: [values.count])
        let bytes = values.map { Int64($0).littleEndian }.withUnsafeBytes { [UInt8]($0) }
        context.initializers[constant] = ConstantTensor(dtype: .int64, shape: [values.count], bytes: TensorBytes(bytes))
        return constant
    }
}
