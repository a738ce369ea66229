import FlashMemCompiler

/// Builds a Graph with every value's shape given, as shape inference would leave it: the hand-built graphs
/// of the lowering tests (compiler target) and the kernel-path tests (runtime target).
public struct GraphBuilder {
    public var nodes: [Node] = []
    public var inputs: [ValueInfo] = []
    public var outputs: [String] = []
    public var initializers: [String: ConstantTensor] = [:]
    public var values: [String: ValueInfo] = [:]
    public var opset = 17

    public init() {}

    public mutating func input(_ name: String, _ shape: [Int], dtype: DType = .float32) {
        let info = ValueInfo(name: name, dtype: dtype, shape: shape)
        inputs.append(info)
        values[name] = info
    }

    /// A float32 initializer holding `values`, or a fixed small-integer pattern when none are given.
    public mutating func constant(_ name: String, _ shape: [Int], _ values: [Float]? = nil) {
        let count = shape.reduce(1, *)
        let data = values ?? (0..<count).map { Float(($0 * 7) % 11) - 5 }
        precondition(data.count == count)
        initializers[name] = ConstantTensor(dtype: .float32, shape: shape,
                                            bytes: TensorBytes(data.withUnsafeBytes { [UInt8]($0) }))
        self.values[name] = ValueInfo(name: name, dtype: .float32, shape: shape)
    }

    /// A float16 initializer holding `values` rounded to halves (an fp16 export's constants).
    public mutating func halfConstant(_ name: String, _ shape: [Int], _ values: [Float]) {
        precondition(values.count == shape.reduce(1, *))
        let halves = values.map { Float16($0).bitPattern }
        initializers[name] = ConstantTensor(dtype: .float16, shape: shape,
                                            bytes: TensorBytes(halves.withUnsafeBytes { [UInt8]($0) }))
        self.values[name] = ValueInfo(name: name, dtype: .float16, shape: shape)
    }

    /// A 1-D int64 initializer (shapes, axes, indices); its value info is left to the graph.
    public mutating func intConstant(_ name: String, _ values: [Int64]) {
        initializers[name] = ConstantTensor(dtype: .int64, shape: [values.count],
                                            bytes: TensorBytes(values.withUnsafeBytes { [UInt8]($0) }))
    }

    /// A one-output node whose float32 output has `shape`; the node is named after its output unless `name`.
    public mutating func node(_ op: String, _ inputs: [String], _ output: String, _ shape: [Int], name: String? = nil,
                              _ attributes: [String: Attribute] = [:]) {
        nodes.append(Node(name: name ?? output, opType: op, inputs: inputs, outputs: [output], attributes: attributes))
        values[output] = ValueInfo(name: output, dtype: .float32, shape: shape)
    }

    /// The graph; an output without a known value gets float32 with an unknown shape.
    public func graph() -> Graph {
        Graph(name: "test", nodes: nodes, inputs: inputs,
              outputs: outputs.map { values[$0] ?? ValueInfo(name: $0, dtype: .float32, shape: nil) },
              initializers: initializers, values: values, opset: opset, sourcePath: "test.onnx")
    }
}
