import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

/// Per-op differential tests: one-node graphs on odd shapes (for dispatch-boundary coverage) with a fixed
/// seed go through the whole compiler and the runtime on the default device (lavapipe in CI), in both
/// weight precisions and both load modes, and are compared with the CPU reference in ReferenceOps.
final class OpTests: XCTestCase {
    /// A graph input or weight: name, shape and seeded values.
    struct Operand {
        var name: String
        var shape: [Int]
        var values: [Float]

        init(_ name: String, _ shape: [Int], seed: UInt64) {
            var rng = ReferenceOps.SeededRandom(seed: seed)
            self.name = name
            self.shape = shape
            self.values = rng.floats(ReferenceOps.count(shape))
        }

        /// The operand as a float32 initializer.
        var constant: ConstantTensor {
            .make(dtype: .float32, shape: shape, reals: values.map(Double.init))
        }
    }

    /// `checkGraph` for one node.
    func check(_ node: Node, inputs: [Operand], weights: [Operand] = [], expected: [Float], shape: [Int],
               file: StaticString = #filePath, line: UInt = #line) throws {
        try checkGraph([node], inputs: inputs, weights: weights, expected: expected, shape: shape, file: file, line: line)
    }

    // MARK: - Ops

    func testConvGroupedStridedDilatedPaddedWithBias() throws {
        let x = Operand("x", [2, 6, 13, 11], seed: 1)
        let w = Operand("w", [9, 2, 3, 2], seed: 2)
        let b = Operand("b", [9], seed: 3)
        let node = Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"], attributes: [
            "group": .int(3), "strides": .ints([2, 1]), "pads": .ints([1, 0, 2, 1]), "dilations": .ints([1, 2]),
        ])
        let ref = ReferenceOps.conv2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, bias: b.values,
                                      strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2], groups: 3)
        try check(node, inputs: [x], weights: [w, b], expected: ref.y, shape: ref.shape)
    }

    func testConvDepthwiseNoBias() throws {
        let x = Operand("x", [1, 5, 9, 7], seed: 4)
        let w = Operand("w", [5, 1, 3, 3], seed: 5)
        let node = Node(name: "dw", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: [
            "group": .int(5), "pads": .ints([1, 1, 1, 1]),
        ])
        let ref = ReferenceOps.conv2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape,
                                      pads: [1, 1, 1, 1], groups: 5)
        try check(node, inputs: [x], weights: [w], expected: ref.y, shape: ref.shape)
    }

    func testConvFusedRelu() throws {
        let x = Operand("x", [1, 3, 10, 10], seed: 6)
        let w = Operand("w", [7, 3, 1, 1], seed: 7)
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"]),
            Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["y"]),
        ]
        let ref = ReferenceOps.conv2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape)
        try checkGraph(nodes, inputs: [x], weights: [w], expected: ReferenceOps.relu(ref.y), shape: ref.shape)
    }

    func testGemmTransBAlphaBeta() throws {
        let a = Operand("a", [5, 37], seed: 8)
        let b = Operand("b", [29, 37], seed: 9)
        let c = Operand("c", [29], seed: 10)
        let node = Node(name: "gemm", opType: "Gemm", inputs: ["a", "b", "c"], outputs: ["y"], attributes: [
            "transB": .int(1), "alpha": .float(0.5), "beta": .float(2),
        ])
        let ref = ReferenceOps.gemm(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape, c: c.values,
                                    cShape: c.shape, alpha: 0.5, beta: 2, transB: true)
        try check(node, inputs: [a], weights: [b, c], expected: ref.y, shape: ref.shape)
    }

    func testMatMulConstantB() throws {
        let a = Operand("a", [2, 3, 17], seed: 11)
        let b = Operand("b", [17, 13], seed: 12)
        let node = Node(name: "mm", opType: "MatMul", inputs: ["a", "b"], outputs: ["y"])
        let ref = ReferenceOps.matmul(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape)
        try check(node, inputs: [a], weights: [b], expected: ref.y, shape: ref.shape)
    }

    func testMatMulBatchedBroadcastActivations() throws {
        let a = Operand("a", [2, 3, 7, 5], seed: 13)
        let b = Operand("b", [3, 5, 6], seed: 14)
        let node = Node(name: "bmm", opType: "MatMul", inputs: ["a", "b"], outputs: ["y"])
        let ref = ReferenceOps.matmul(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape)
        try check(node, inputs: [a, b], expected: ref.y, shape: ref.shape)
    }

    func testAddAndMulBroadcast() throws {
        let a = Operand("a", [2, 3, 5, 7], seed: 15)
        let b = Operand("b", [3, 1, 7], seed: 16)
        for op in ["Add", "Mul"] {
            let node = Node(name: op.lowercased(), opType: op, inputs: ["a", "b"], outputs: ["y"])
            let ref = ReferenceOps.binary(a.values, a.shape, b.values, b.shape) { op == "Add" ? $0 + $1 : $0 * $1 }
            try check(node, inputs: [a, b], expected: ref.y, shape: ref.shape)
        }
    }

    func testMulByConstant() throws {
        let a = Operand("a", [1, 4, 3, 5], seed: 17)
        let s = Operand("s", [1, 4, 1, 1], seed: 18)
        let node = Node(name: "scale", opType: "Mul", inputs: ["a", "s"], outputs: ["y"])
        let ref = ReferenceOps.binary(a.values, a.shape, s.values, s.shape) { $0 * $1 }
        try check(node, inputs: [a], weights: [s], expected: ref.y, shape: ref.shape)
    }

    func testRelu() throws {
        let x = Operand("x", [3, 1001], seed: 19)
        let node = Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["y"])
        try check(node, inputs: [x], expected: ReferenceOps.relu(x.values), shape: x.shape)
    }

    func testMaxPoolPaddedStridedCeil() throws {
        let x = Operand("x", [2, 3, 11, 9], seed: 20)
        let node = Node(name: "pool", opType: "MaxPool", inputs: ["x"], outputs: ["y"], attributes: [
            "kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "ceil_mode": .int(1),
        ])
        let ref = ReferenceOps.pool2d(x: x.values, xShape: x.shape, isMax: true, kernel: [3, 3], strides: [2, 2],
                                      pads: [1, 1, 1, 1], ceilMode: true)
        try check(node, inputs: [x], expected: ref.y, shape: ref.shape)
    }

    func testGlobalAveragePool() throws {
        let x = Operand("x", [2, 5, 7, 9], seed: 21)
        let node = Node(name: "gap", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["y"])
        let ref = ReferenceOps.globalAveragePool(x: x.values, xShape: x.shape)
        try check(node, inputs: [x], expected: ref.y, shape: ref.shape)
    }

    func testSoftmaxLastAxis() throws {
        let x = Operand("x", [3, 7, 33], seed: 22)
        let node = Node(name: "softmax", opType: "Softmax", inputs: ["x"], outputs: ["y"], attributes: ["axis": .int(-1)])
        try check(node, inputs: [x], expected: ReferenceOps.softmax(x: x.values, shape: x.shape), shape: x.shape)
    }

    func testFlattenReshapeIdentityAreViews() throws {
        let x = Operand("x", [2, 3, 4, 5], seed: 23)
        let shape = ConstantTensor(dtype: .int64, shape: [2], bytes: TensorBytes([Int64(-1), 20].withUnsafeBytes { Array($0) }))
        let nodes = [
            Node(name: "flatten", opType: "Flatten", inputs: ["x"], outputs: ["f"], attributes: ["axis": .int(2)]),
            Node(name: "id", opType: "Identity", inputs: ["f"], outputs: ["i"]),
            Node(name: "reshape", opType: "Reshape", inputs: ["i", "shape"], outputs: ["r"]),
            Node(name: "relu", opType: "Relu", inputs: ["r"], outputs: ["y"]),
        ]
        try checkGraph(nodes, inputs: [x], constants: ["shape": shape], expected: ReferenceOps.relu(x.values), shape: [6, 20])
    }

    /// Compiles `nodes` (the last node's first output is the graph output) with `inputs` as graph inputs and
    /// `weights`/`constants` as initializers, runs it streaming and preloaded in fp32 and fp16, and checks the
    /// output against `expected` (relative L2 error ≤ 1e-4 in fp32, 1e-2 in fp16) and streaming against
    /// preload (bit-identical).
    func checkGraph(_ nodes: [Node], inputs: [Operand], weights: [Operand] = [], constants: [String: ConstantTensor] = [:],
                    expected: [Float], shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let label = nodes.map(\.opType).joined(separator: "+")
        for precision in Precision.allCases {
            var initializers = Dictionary(uniqueKeysWithValues: weights.map { ($0.name, $0.constant) })
            initializers.merge(constants) { a, _ in a }
            let inputInfo = inputs.map { ValueInfo(name: $0.name, dtype: .float32, shape: $0.shape) }
                + initializers.map { ValueInfo(name: $0.key, dtype: $0.value.dtype, shape: $0.value.shape) }
            let graph = Graph(
                name: label, nodes: nodes, inputs: Array(inputInfo.prefix(inputs.count)),
                outputs: [ValueInfo(name: nodes.last!.outputs[0], dtype: .float32, shape: nil)],
                initializers: initializers, values: Dictionary(uniqueKeysWithValues: inputInfo.map { ($0.name, $0) }),
                opset: 17, sourcePath: "<\(label) test>")
            try graph.simplify()
            try inferShapes(graph)
            let program = try Lowering.lower(graph, precision: precision)
            let feeds = inputs.map { HostTensor(name: $0.name, shape: $0.shape, floats: $0.values) }
            var results: [LoadMode: [Float]] = [:]
            for (mode, output) in try runInEveryLoadMode(program, name: label, feeds: feeds) {
                XCTAssertEqual(output.first?.shape, shape, "\(label) \(precision) \(mode): shape", file: file, line: line)
                results[mode] = output.first?.floats() ?? []
            }
            let tolerance: Float = precision == .fp32 ? 1e-4 : 1e-2
            XCTAssertLessThanOrEqual(relativeError(results[.streaming]!, expected), tolerance,
                                     "\(label) \(precision): relative error", file: file, line: line)
            XCTAssertEqual(results[.streaming], results[.preload], "\(label) \(precision): streaming != preload",
                           file: file, line: line)
        }
    }
}
