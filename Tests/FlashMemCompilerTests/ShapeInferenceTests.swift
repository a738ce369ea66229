// Shape inference per operator on hand-built graphs. Expected Conv/pool shapes were checked against
// onnxruntime 1.32 (the ceil_mode case is one where onnx's own shape inference disagrees with onnxruntime:
// we follow onnxruntime and the spec's "windows starting in the right padding are ignored").

@testable import FlashMemCompiler
import XCTest
import TestSupport

final class ShapeInferenceTests: XCTestCase {
    typealias G = TestGraphs

    private func node(_ op: String, _ inputs: [String], _ outputs: [String] = ["y"],
                      _ attributes: [String: Attribute] = [:]) -> Node {
        Node(name: "n_\(op)", opType: op, inputs: inputs, outputs: outputs, attributes: attributes)
    }

    private func conv(x: [Int], w: [Int], _ attributes: [String: Attribute]) throws -> [Int] {
        try G.inferOne(node("Conv", ["x", "w"], ["y"], attributes), inputs: [("x", x)],
                       initializers: ["w": G.zeros(w)])[0]
    }

    // MARK: - Conv and pools

    func testConvPadding() throws {
        XCTAssertEqual(try conv(x: [1, 1, 7, 8], w: [1, 1, 3, 3], ["auto_pad": .string("SAME_UPPER"), "strides": .ints([2, 2])]),
                       [1, 1, 4, 4])
        XCTAssertEqual(try conv(x: [1, 1, 8, 8], w: [1, 1, 3, 3], ["auto_pad": .string("SAME_LOWER"), "strides": .ints([2, 2])]),
                       [1, 1, 4, 4])
        XCTAssertEqual(try conv(x: [1, 1, 8, 9], w: [1, 1, 3, 3], ["auto_pad": .string("VALID"), "strides": .ints([2, 2])]),
                       [1, 1, 3, 4])
        // 1-D, grouped, dilated, asymmetric pads.
        XCTAssertEqual(try conv(x: [1, 4, 10], w: [6, 2, 5],
                                ["group": .int(2), "dilations": .ints([2]), "strides": .ints([3]), "pads": .ints([1, 2])]),
                       [1, 6, 2])
        XCTAssertEqual(try conv(x: [2, 3, 33, 29], w: [8, 3, 3, 3], ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),
                       [2, 8, 17, 15])
    }

    func testWindowGeometryResolvesSamePads() throws {
        let upper = node("Conv", [], [], ["auto_pad": .string("SAME_UPPER"), "strides": .ints([2, 2])])
        let g = try WindowGeometry(node: upper, input: [8, 7], kernel: [3, 3])
        XCTAssertEqual(g.padsBegin, [0, 1])
        XCTAssertEqual(g.padsEnd, [1, 1])
        XCTAssertEqual(g.output, [4, 4])
        let lower = node("AveragePool", [], [], ["auto_pad": .string("SAME_LOWER"), "strides": .ints([2, 2])])
        let h = try WindowGeometry(node: lower, input: [9, 6], kernel: [4, 3])
        XCTAssertEqual(h.padsBegin, [2, 1])
        XCTAssertEqual(h.padsEnd, [1, 0])
        XCTAssertEqual(h.output, [5, 3])
    }

    func testConvErrorsNameTheNode() {
        let error = compileError {
            _ = try self.conv(x: [1, 3, 8, 8], w: [4, 2, 3, 3], [:])  // W expects 2 channels, X has 3
        }
        XCTAssertEqual(error?.node, "n_Conv")
        XCTAssertEqual(error?.op, "Conv")
        XCTAssertTrue(error?.message.contains("channels") ?? false, "\(String(describing: error))")

        let kernel = compileError {
            _ = try self.conv(x: [1, 1, 8, 8], w: [1, 1, 3, 3], ["kernel_shape": .ints([5, 5])])
        }
        XCTAssertTrue(kernel?.message.contains("kernel_shape") ?? false)
        let tooBig = compileError { _ = try self.conv(x: [1, 1, 2, 8], w: [1, 1, 3, 3], [:]) }
        XCTAssertTrue(tooBig?.message.contains("larger") ?? false, "\(String(describing: tooBig))")
    }

    func testPools() throws {
        func pool(_ op: String, _ x: [Int], _ attributes: [String: Attribute]) throws -> [Int] {
            try G.inferOne(node(op, ["x"], ["y"], attributes), inputs: [("x", x)])[0]
        }
        // ceil_mode: the last window would start in the end padding and is dropped (onnxruntime: 3, onnx: 4).
        XCTAssertEqual(try pool("MaxPool", [1, 1, 10, 5], ["kernel_shape": .ints([3, 2]), "strides": .ints([4, 2]),
                                                         "pads": .ints([2, 0, 2, 0]), "ceil_mode": .int(1)]),
                       [1, 1, 3, 3])
        XCTAssertEqual(try pool("MaxPool", [1, 1, 5, 6], ["kernel_shape": .ints([2, 3]), "strides": .ints([2, 2]),
                                                        "pads": .ints([0, 1, 0, 1]), "ceil_mode": .int(1)]),
                       [1, 1, 3, 4])
        XCTAssertEqual(try pool("MaxPool", [1, 1, 12, 12], ["kernel_shape": .ints([3, 3]), "strides": .ints([1, 2]),
                                                          "dilations": .ints([2, 3]), "pads": .ints([1, 1, 1, 1])]),
                       [1, 1, 10, 4])
        XCTAssertEqual(try pool("AveragePool", [1, 2, 9, 6], ["kernel_shape": .ints([4, 3]), "strides": .ints([2, 2]),
                                                            "auto_pad": .string("SAME_LOWER")]),
                       [1, 2, 5, 3])
        XCTAssertEqual(try pool("GlobalAveragePool", [1, 12, 9, 8], [:]), [1, 12, 1, 1])
        XCTAssertEqual(try pool("GlobalAveragePool", [2, 5, 7], [:]), [2, 5, 1])
        let noKernel = compileError { _ = try pool("MaxPool", [1, 1, 4, 4], [:]) }
        XCTAssertTrue(noKernel?.message.contains("kernel_shape") ?? false)
    }

    // MARK: - Gemm, MatMul, broadcasting

    func testGemm() throws {
        let gemm = node("Gemm", ["a", "b", "c"], ["y"], ["transA": .int(1), "transB": .int(1)])
        XCTAssertEqual(try G.inferOne(gemm, inputs: [("a", [5, 3]), ("b", [4, 5]), ("c", [4])])[0], [3, 4])
        let plain = node("Gemm", ["a", "b"])
        XCTAssertEqual(try G.inferOne(plain, inputs: [("a", [3, 5]), ("b", [5, 4])])[0], [3, 4])
        let mismatch = compileError { _ = try G.inferOne(plain, inputs: [("a", [3, 5]), ("b", [4, 5])]) }
        XCTAssertEqual(mismatch?.op, "Gemm")
        XCTAssertTrue(mismatch?.message.contains("inner dimensions") ?? false)
        let badBias = compileError {
            _ = try G.inferOne(self.node("Gemm", ["a", "b", "c"]), inputs: [("a", [3, 5]), ("b", [5, 4]), ("c", [3])])
        }
        XCTAssertTrue(badBias?.message.contains("does not broadcast") ?? false)
    }

    func testMatMulNumpyRules() throws {
        func matmul(_ a: [Int], _ b: [Int]) throws -> [Int] {
            try G.inferOne(node("MatMul", ["a", "b"]), inputs: [("a", a), ("b", b)])[0]
        }
        XCTAssertEqual(try matmul([3, 7], [7, 5]), [3, 5])
        XCTAssertEqual(try matmul([7], [7, 5]), [5])
        XCTAssertEqual(try matmul([4, 7], [7]), [4])
        XCTAssertEqual(try matmul([7], [7]), [])
        XCTAssertEqual(try matmul([2, 1, 4, 7], [5, 7, 6]), [2, 5, 4, 6])
        XCTAssertEqual(try matmul([9, 4, 7], [7]), [9, 4])
        XCTAssertNotNil(compileError { _ = try matmul([3, 7], [6, 5]) })
        XCTAssertNotNil(compileError { _ = try matmul([2, 3, 7], [4, 7, 5]) })
    }

    func testBroadcastingAndDTypes() throws {
        XCTAssertEqual(try G.inferOne(node("Add", ["a", "b"]), inputs: [("a", [2, 1, 5]), ("b", [3, 1])])[0], [2, 3, 5])
        XCTAssertEqual(try G.inferOne(node("Mul", ["a", "b"]), inputs: [("a", []), ("b", [4])])[0], [4])
        let bad = compileError { _ = try G.inferOne(self.node("Sub", ["a", "b"]), inputs: [("a", [2, 3]), ("b", [4])]) }
        XCTAssertTrue(bad?.message.contains("broadcast") ?? false)

        let mixed = G.make(inputs: [("a", [2])], nodes: [node("Div", ["a", "k"])], initializers: ["k": G.int64([2])],
                           outputs: ["y"])
        let error = compileError { try inferShapes(mixed) }
        XCTAssertTrue(error?.message.contains("dtypes differ") ?? false, "\(String(describing: error))")

        let cmp = G.make(inputs: [("a", [2, 3]), ("b", [3])], nodes: [node("Less", ["a", "b"])], outputs: ["y"])
        try inferShapes(cmp)
        XCTAssertEqual(cmp.values["y"]?.dtype, .bool)
    }

    // MARK: - Shape manipulation

    func testReshape() throws {
        func reshape(_ x: [Int], _ target: [Int], allowZero: Int = 0) throws -> [Int] {
            try G.inferOne(node("Reshape", ["x", "s"], ["y"], ["allowzero": .int(allowZero)]), inputs: [("x", x)],
                           initializers: ["s": G.int64(target)])[0]
        }
        XCTAssertEqual(try reshape([2, 3, 4], [0, -1]), [2, 12])
        XCTAssertEqual(try reshape([2, 3, 4], [-1, 0]), [8, 3])
        XCTAssertEqual(try reshape([2, 3, 4], [4, 0, 2], allowZero: 0), [4, 3, 2])
        XCTAssertEqual(try reshape([2, 0, 4], [0, 4], allowZero: 1), [0, 4])
        XCTAssertNotNil(compileError { _ = try reshape([2, 3, 4], [5, -1]) })
        XCTAssertNotNil(compileError { _ = try reshape([2, 3, 4], [-1, -1]) })

        let dynamic = G.make(inputs: [("x", [2, 3]), ("s", [2])], nodes: [node("Reshape", ["x", "s"])], outputs: ["y"])
        let error = compileError { try inferShapes(dynamic) }
        XCTAssertEqual(error?.message, "Reshape shape is not a compile-time constant")
        XCTAssertEqual(error?.node, "n_Reshape")
    }

    func testSoftmaxAxisDependsOnOpset() throws {
        XCTAssertEqual(try G.inferOne(node("Softmax", ["x"]), inputs: [("x", [5])], opset: 13)[0], [5])
        // Before opset 13 the default axis is 1: a rank-1 input has none.
        let old = compileError { _ = try G.inferOne(self.node("Softmax", ["x"]), inputs: [("x", [5])], opset: 11) }
        XCTAssertTrue(old?.message.contains("axis 1") ?? false, "\(String(describing: old))")
        XCTAssertEqual(try G.inferOne(node("Softmax", ["x"]), inputs: [("x", [2, 5, 3])], opset: 11)[0], [2, 5, 3])
    }

    func testFlattenTransposeConcat() throws {
        XCTAssertEqual(try G.inferOne(node("Flatten", ["x"], ["y"], ["axis": .int(0)]), inputs: [("x", [2, 3, 4])])[0], [1, 24])
        XCTAssertEqual(try G.inferOne(node("Flatten", ["x"], ["y"], ["axis": .int(-1)]), inputs: [("x", [2, 3, 4])])[0], [6, 4])
        XCTAssertEqual(try G.inferOne(node("Flatten", ["x"]), inputs: [("x", [2, 3, 4])])[0], [2, 12])
        XCTAssertEqual(try G.inferOne(node("Transpose", ["x"]), inputs: [("x", [2, 3, 4])])[0], [4, 3, 2])
        XCTAssertEqual(try G.inferOne(node("Transpose", ["x"], ["y"], ["perm": .ints([0, 2, 1])]), inputs: [("x", [2, 3, 4])])[0],
                       [2, 4, 3])
        XCTAssertEqual(try G.inferOne(node("Concat", ["a", "b"], ["y"], ["axis": .int(-1)]),
                                      inputs: [("a", [2, 3]), ("b", [2, 5])])[0], [2, 8])
        XCTAssertNotNil(compileError {
            _ = try G.inferOne(self.node("Concat", ["a", "b"], ["y"], ["axis": .int(0)]), inputs: [("a", [2, 3]), ("b", [2, 5])])
        })
    }

    func testUnsqueezeSqueezeAcrossOpsets() throws {
        XCTAssertEqual(try G.inferOne(node("Unsqueeze", ["x"], ["y"], ["axes": .ints([0, 3])]), inputs: [("x", [2, 3])],
                                      opset: 11)[0], [1, 2, 3, 1])
        XCTAssertEqual(try G.inferOne(node("Unsqueeze", ["x", "a"]), inputs: [("x", [2, 3])],
                                      initializers: ["a": G.int64([-1])])[0], [2, 3, 1])
        XCTAssertEqual(try G.inferOne(node("Squeeze", ["x"]), inputs: [("x", [1, 3, 1, 2])])[0], [3, 2])
        XCTAssertEqual(try G.inferOne(node("Squeeze", ["x", "a"]), inputs: [("x", [1, 3, 1, 2])],
                                      initializers: ["a": G.int64([2])])[0], [1, 3, 2])
        XCTAssertEqual(try G.inferOne(node("Squeeze", ["x"], ["y"], ["axes": .ints([0])]), inputs: [("x", [1, 3, 1])],
                                      opset: 11)[0], [3, 1])
        let bad = compileError {
            _ = try G.inferOne(self.node("Squeeze", ["x", "a"]), inputs: [("x", [1, 3])], initializers: ["a": G.int64([1])])
        }
        XCTAssertTrue(bad?.message.contains("size is 3") ?? false)
    }

    func testBatchNormalizationAndIdentity() throws {
        let bn = node("BatchNormalization", ["x", "s", "b", "m", "v"])
        let params = ["s": G.zeros([4]), "b": G.zeros([4]), "m": G.zeros([4]), "v": G.zeros([4])]
        XCTAssertEqual(try G.inferOne(bn, inputs: [("x", [2, 4, 5, 5])], initializers: params)[0], [2, 4, 5, 5])
        XCTAssertNotNil(compileError {
            _ = try G.inferOne(bn, inputs: [("x", [2, 3, 5, 5])], initializers: params)
        })
        XCTAssertEqual(try G.inferOne(node("Identity", ["x"]), inputs: [("x", [7, 1])])[0], [7, 1])
        XCTAssertEqual(try G.inferOne(node("Relu", ["x"]), inputs: [("x", [7, 1])])[0], [7, 1])
    }

    func testGatherSliceReduce() throws {
        XCTAssertEqual(try G.inferOne(node("Gather", ["x", "i"], ["y"], ["axis": .int(1)]), inputs: [("x", [2, 9, 4])],
                                      initializers: ["i": G.int64([1, 2, 3, 4, 5, 6], shape: [3, 2])])[0], [2, 3, 2, 4])
        let slice = node("Slice", ["x", "st", "en", "ax", "sp"])
        XCTAssertEqual(try G.inferOne(slice, inputs: [("x", [10, 8])],
                                      initializers: ["st": G.int64([1, -1]), "en": G.int64([Int(Int64.max), -9]),
                                                     "ax": G.int64([0, 1]), "sp": G.int64([3, -2])])[0], [3, 4])
        let reduce = node("ReduceMean", ["x"], ["y"], ["axes": .ints([-1])])
        XCTAssertEqual(try G.inferOne(reduce, inputs: [("x", [2, 3, 4])])[0], [2, 3, 1])
    }

    // MARK: - Errors

    func testUnsupportedOperatorAndDynamicInput() {
        let det = compileError { _ = try G.inferOne(self.node("Det", ["x"]), inputs: [("x", [3, 3])]) }
        XCTAssertEqual(det?.description, "test.onnx: node 'n_Det' (Det): unsupported operator")

        let dynamic = compileError {
            _ = try G.inferOne(self.node("Relu", ["tokens"]), inputs: [("tokens", [nil, 128])])
        }
        XCTAssertTrue(dynamic?.message.contains("input 'tokens'") ?? false)
        XCTAssertTrue(dynamic?.message.contains("--input-shape tokens=?,128") ?? false, "\(String(describing: dynamic))")
    }

    /// Every unsupported operator of a model is named at once, also those behind another one; supported ops that
    /// only lack the outputs of an unsupported one are not reported.
    func testEveryUnsupportedOperatorIsReportedAtOnce() {
        let graph = G.make(inputs: [("x", [3, 3])],
                           nodes: [node("Det", ["x"], ["d"]), node("Relu", ["d"], ["r"]), node("Frobnicate", ["r"], ["f"]),
                                   node("Relu", ["x"], ["y"]), node("Unique", ["y"], ["e"]), node("Det", ["y"], ["z"])],
                           outputs: ["f", "e", "z"])
        let error = compileError { try inferShapes(graph) }
        let text = error?.description ?? ""
        XCTAssertTrue(text.hasSuffix("the model has 4 nodes of 3 unsupported operators: Det ×2 (first: node 'n_Det'), "
                                     + "Frobnicate ×1 (node 'n_Frobnicate'), Unique ×1 (node 'n_Unique')"), text)
        XCTAssertFalse(text.contains("(Relu)"), text)
        XCTAssertEqual(error?.op, "Det", "the first one stays the error's op")
    }

    func testDeclaredOutputShapeIsChecked() {
        let graph = G.make(inputs: [("x", [2, 3])], nodes: [node("Relu", ["x"])], outputs: ["y"])
        graph.outputs[0].shape = [2, 4]
        let error = compileError { try inferShapes(graph) }
        XCTAssertTrue(error?.message.contains("graph output 'y'") ?? false, "\(String(describing: error))")
    }
}
