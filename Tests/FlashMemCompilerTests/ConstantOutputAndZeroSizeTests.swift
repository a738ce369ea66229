// Graph outputs that are compile-time constants, zero-size tensors (dimensions of 0) from import through shape
// inference, folding and lowering, and Dropout's mask. The runtime side (what a session returns for such
// outputs) is in Tests/FlashMemRuntimeTests/ConstantAndEmptyOutputTests.swift.

@testable import FlashMemCompiler
import FMBFormat
import XCTest
import TestSupport

final class ConstantOutputAndZeroSizeTests: XCTestCase {
    typealias G = TestGraphs

    private func node(_ name: String, _ op: String, _ inputs: [String], _ outputs: [String],
                      _ attributes: [String: Attribute] = [:]) -> Node {
        Node(name: name, opType: op, inputs: inputs, outputs: outputs, attributes: attributes)
    }

    private static func empty(_ dtype: DType, _ shape: [Int]) -> ConstantTensor {
        ConstantTensor(dtype: dtype, shape: shape, bytes: TensorBytes([]))
    }

    // MARK: - Constant graph outputs

    func testGraphOutputsThatAreConstantsFold() throws {
        let graph = G.make(inputs: [("x", [2, 3])], nodes: [
            node("shape", "Shape", ["x"], ["shape"], ["start": .int(1)]),
            node("size", "Size", ["x"], ["size"]),
            node("range", "Range", ["r0", "r1", "r2"], ["range"]),
            node("cos", "ConstantOfShape", ["cshape"], ["cos"]),
            node("relu", "Relu", ["x"], ["y"]),
        ], initializers: ["r0": G.int64([1], shape: []), "r1": G.int64([8], shape: []), "r2": G.int64([3], shape: []),
                          "cshape": G.int64([2, 2])],
           outputs: ["shape", "size", "range", "cos", "y"])
        try graph.simplify()
        try inferShapes(graph)
        XCTAssertEqual(graph.nodes.map(\.name), ["relu"], "only the Relu needs a kernel")
        XCTAssertEqual(graph.initializers["shape"]?.ints(), [3])
        XCTAssertEqual(graph.initializers["size"]?.shape, [])
        XCTAssertEqual(graph.initializers["size"]?.ints(), [6])
        XCTAssertEqual(graph.initializers["range"]?.ints(), [1, 4, 7])
        XCTAssertEqual(graph.initializers["cos"]?.floats(), [0, 0, 0, 0])
        XCTAssertEqual(graph.outputs.map { $0.staticShape ?? [-1] }, [[1], [], [3], [2, 2], [2, 3]])
        XCTAssertEqual(graph.outputs.map(\.dtype), [.int64, .int64, .int64, .float32, .float32])
    }

    func testConstantOutputsBecomeResidentTensorsNothingElseShares() throws {
        // A constant output, an initializer output, a graph input as output, and one tensor output twice.
        let graph = G.make(inputs: [("x", [64])], nodes: [
            node("shape", "Shape", ["x"], ["shape"]),
            node("relu", "Relu", ["x"], ["h"]),
            node("sig", "Sigmoid", ["h"], ["h2"]),
            node("tanh", "Tanh", ["h2"], ["y"]),
            node("alias", "Identity", ["y"], ["y2"]),
        ], initializers: ["w": G.float32([0.5, -1.5, 2])], outputs: ["shape", "w", "x", "y", "y2"])
        try graph.simplify()
        try inferShapes(graph)
        let program = try Lowering.lower(graph, precision: .fp32)
        XCTAssertEqual(program.outputs.map(\.name), ["shape", "w", "x", "y", "y2"])
        XCTAssertEqual(program.tensors["shape"]?.constant, int32Bytes([64]), "int64 constants are int32 in the arena")
        XCTAssertEqual(program.tensors["w"]?.constant, [Float(0.5), -1.5, 2].withUnsafeBytes { Array($0) })
        XCTAssertEqual(program.tensors["y2"]?.viewOf, "y")

        let plan = try ArenaPlanner.plan(program) { _ in DataRange(offset: 0, size: 0) }
        func range(_ name: String) -> Range<UInt64> {
            let t = plan.tensors[Int(plan.index[name]!)]
            return t.offset..<(t.offset + max(t.size, 1))
        }
        // Every kernel-written tensor (h, h2 share bytes only with each other) stays clear of the constants.
        for constant in ["shape", "w"] {
            for other in ["x", "h", "h2", "y"] {
                XCTAssertFalse(range(constant).overlaps(range(other)), "\(constant) overlaps \(other)")
            }
        }
    }

    func testAConstantInt64OutputBeyondInt32IsRefused() throws {
        let graph = G.make(inputs: [("x", [2])], nodes: [node("relu", "Relu", ["x"], ["y"])],
                           initializers: ["big": G.int64([1, 1 << 40])], outputs: ["y", "big"])
        try graph.simplify()
        try inferShapes(graph)
        let error = compileError { _ = try Lowering.lower(graph, precision: .fp32) }
        XCTAssertTrue(error?.message.contains("model output 'big'") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("not supported") ?? false, "\(String(describing: error))")
    }

    // MARK: - Dropout's mask

    func testDropoutMaskIsAConstantWhenNothingIsDropped() throws {
        let cases: [(String, [String: ConstantTensor], [String])] = [
            ("inference", [:], ["x"]),
            ("training, ratio 0", ["ratio": G.float32([0], shape: []), "train": boolScalar(true)], ["x", "ratio", "train"]),
        ]
        for (label, initializers, inputs) in cases {
            let graph = G.make(inputs: [("x", [2, 3])], nodes: [
                node("drop", "Dropout", inputs, ["d", "mask"]),
                node("relu", "Relu", ["d"], ["y"]),
            ], initializers: initializers, outputs: ["y", "mask"])
            try graph.simplify()
            try inferShapes(graph)
            XCTAssertEqual(graph.nodes.map(\.opType), ["Relu"], label)
            XCTAssertEqual(graph.initializers["mask"]?.dtype, .bool, label)
            XCTAssertEqual(graph.initializers["mask"]?.shape, [2, 3], label)
            XCTAssertEqual(graph.initializers["mask"]?.ints(), [1, 1, 1, 1, 1, 1], label)
        }
    }

    func testTrainingDropoutThatDropsIsRefused() throws {
        let withMask = G.make(inputs: [("x", [2, 3])], nodes: [
            node("drop", "Dropout", ["x", "ratio", "train"], ["y", "mask"]),
        ], initializers: ["ratio": G.float32([0.5], shape: []), "train": boolScalar(true)], outputs: ["y", "mask"])
        try withMask.simplify()
        try inferShapes(withMask)
        XCTAssertNil(withMask.initializers["mask"], "a mask that drops at random is not a constant")
        let maskError = compileError { _ = try Lowering.lower(withMask, precision: .fp32) }
        XCTAssertTrue(maskError?.message.contains("not supported") ?? false, "\(String(describing: maskError))")

        let plain = G.make(inputs: [("x", [2, 3])], nodes: [node("drop", "Dropout", ["x", "ratio", "train"], ["y"])],
                           initializers: ["ratio": G.float32([0.5], shape: []), "train": boolScalar(true)], outputs: ["y"])
        try plain.simplify()
        try inferShapes(plain)
        let error = compileError { _ = try Lowering.lower(plain, precision: .fp32) }
        XCTAssertTrue(error?.message.contains("training_mode") ?? false, "\(String(describing: error))")
    }

    // MARK: - Zero-size tensors

    func testShapeInferenceKeepsZeroDimensions() throws {
        XCTAssertEqual(try G.inferOne(node("r", "Relu", ["x"], ["y"]), inputs: [("x", [3, 0, 5])]), [[3, 0, 5]])
        XCTAssertEqual(try G.inferOne(node("s", "ReduceSum", ["x", "axes"], ["y"]), inputs: [("x", [3, 0, 5])],
                                      initializers: ["axes": G.int64([1])]), [[3, 1, 5]])
        XCTAssertEqual(try G.inferOne(node("m", "ReduceMax", ["x"], ["y"], ["axes": .ints([2]), "keepdims": .int(0)]),
                                      inputs: [("x", [3, 0, 5])], opset: 13), [[3, 0]])
        XCTAssertEqual(try G.inferOne(node("r", "Reshape", ["x", "shape"], ["y"], ["allowzero": .int(1)]),
                                      inputs: [("x", [0, 3, 4])], initializers: ["shape": G.int64([3, 4, 0])]),
                       [[3, 4, 0]])
        XCTAssertEqual(try G.inferOne(node("r", "Reshape", ["x", "shape"], ["y"]), inputs: [("x", [0, 3, 4])],
                                      initializers: ["shape": G.int64([-1, 4])]), [[0, 4]])
        // numpy (and so ONNX) refuses to infer -1 beside a 0 when there are no elements.
        XCTAssertThrowsError(try G.inferOne(node("r", "Reshape", ["x", "shape"], ["y"]), inputs: [("x", [0, 3, 4])],
                                            initializers: ["shape": G.int64([0, -1])]))
        XCTAssertEqual(try G.inferOne(node("c", "Concat", ["a", "b"], ["y"], ["axis": .int(1)]),
                                      inputs: [("a", [2, 0]), ("b", [2, 3])]), [[2, 3]])
        XCTAssertEqual(try G.inferOne(node("s", "Split", ["x", "parts"], ["a", "b", "c"]), inputs: [("x", [0])],
                                      initializers: ["parts": G.int64([0, 0, 0])]), [[0], [0], [0]])
        XCTAssertEqual(try G.inferOne(node("mm", "MatMul", ["a", "b"], ["y"]), inputs: [("a", [2, 0]), ("b", [0, 3])]),
                       [[2, 3]])
    }

    func testEmptyValuesFoldToConstants() throws {
        let axes = G.int64([1])
        let graph = G.make(inputs: [("x", [3, 0, 5]), ("z", [4])], nodes: [
            node("relu", "Relu", ["x"], ["e"]),
            node("sum", "ReduceSum", ["x", "axes"], ["sum"]),
            node("max", "ReduceMax", ["x"], ["max"], ["axes": .ints([1]), "keepdims": .int(0)]),
            node("min", "ReduceMin", ["x"], ["min"], ["axes": .ints([1])]),
            node("prod", "ReduceProd", ["x"], ["prod"], ["axes": .ints([1])]),
            node("mean", "ReduceMean", ["x"], ["mean"], ["axes": .ints([1])]),
            node("l2", "ReduceL2", ["x"], ["l2"], ["axes": .ints([1])]),
            node("lse", "ReduceLogSumExp", ["x"], ["lse"], ["axes": .ints([1])]),
            node("keep0", "ReduceSum", ["x", "axes2"], ["keep0"]),  // the zero axis is not reduced: still empty
            node("zr", "Relu", ["z"], ["zr"]),
            node("split", "Split", ["zr", "parts"], ["s0", "s1"]),
            node("cat", "Concat", ["s0", "zr", "s0"], ["cat"], ["axis": .int(0)]),
        ], initializers: ["axes": axes, "axes2": G.int64([2]), "parts": G.int64([0, 4])],
           outputs: ["e", "sum", "max", "min", "prod", "mean", "l2", "lse", "keep0", "s0", "s1", "cat"], opset: 17)
        try graph.simplify()
        try inferShapes(graph)

        XCTAssertEqual(graph.nodes.map(\.name), ["zr", "split"], "only the non-empty work is left")
        XCTAssertEqual(graph.nodes.last?.outputs, ["", "s1"], "Split's empty output is blanked, the other stays")
        XCTAssertEqual(graph.initializers["e"]?.shape, [3, 0, 5])
        XCTAssertEqual(graph.initializers["e"]?.bytes.count, 0)
        XCTAssertEqual(graph.initializers["s0"]?.shape, [0])
        XCTAssertEqual(graph.initializers["keep0"]?.shape, [3, 0, 1])
        XCTAssertEqual(graph.initializers["sum"]?.shape, [3, 1, 5])
        XCTAssertEqual(graph.initializers["sum"]?.floats(), [Float](repeating: 0, count: 15))
        XCTAssertEqual(graph.initializers["max"]?.shape, [3, 5])
        XCTAssertEqual(graph.initializers["max"]?.floats(), [Float](repeating: -.infinity, count: 15))
        XCTAssertEqual(graph.initializers["min"]?.floats(), [Float](repeating: .infinity, count: 15))
        XCTAssertEqual(graph.initializers["prod"]?.floats(), [Float](repeating: 1, count: 15))
        XCTAssertTrue(graph.initializers["mean"]?.floats().allSatisfy(\.isNaN) ?? false)
        XCTAssertEqual(graph.initializers["l2"]?.floats(), [Float](repeating: 0, count: 15))
        XCTAssertEqual(graph.initializers["lse"]?.floats(), [Float](repeating: -.infinity, count: 15))
        XCTAssertNil(graph.initializers["cat"], "Concat without its empty inputs is an alias of zr")
        XCTAssertEqual(graph.values["cat"]?.staticShape, [4])
    }

    func testZeroSizeOperandOfAKernelIsRefusedByName() throws {
        // MatMul over K = 0 has a non-empty result from empty operands: no kernel may bind them.
        let graph = G.make(inputs: [("a", [2, 0]), ("b", [0, 3])], nodes: [node("mm", "MatMul", ["a", "b"], ["y"])],
                           outputs: ["y"])
        try graph.simplify()
        try inferShapes(graph)
        let error = compileError { _ = try Lowering.lower(graph, precision: .fp32) }
        XCTAssertEqual(error?.node, "mm")
        XCTAssertTrue(error?.message.contains("zero-size tensor 'a'") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("not supported") ?? false, "\(String(describing: error))")
    }

    func testEmptyOutputsAreArenaTensorsWithoutBytes() throws {
        let graph = G.make(inputs: [("x", [3, 0])], nodes: [node("relu", "Relu", ["x"], ["y"])], outputs: ["y"])
        try graph.simplify()
        try inferShapes(graph)
        let program = try Lowering.lower(graph, precision: .fp32)
        XCTAssertTrue(program.steps.isEmpty)
        XCTAssertEqual(program.tensors["y"]?.byteSize, 0)
        XCTAssertNil(program.tensors["y"]?.constant, "nothing to upload")
        XCTAssertEqual(program.outputs.first?.shape, [3, 0])
    }

    // MARK: - Import

    func testImporterAcceptsZeroDimensions() throws {
        let dynamic = ImportFixtures.path("dynamic.onnx")
        let graph = try ONNXImporter.loadAndPrepare(path: dynamic, inputShapes: ["x": [0, 16]])
        XCTAssertEqual(graph.inputs.first?.staticShape, [0, 16])
        XCTAssertTrue(graph.nodes.isEmpty, "every value is empty: nothing to run (\(graph.nodes.map(\.opType)))")
        XCTAssertEqual(graph.initializers["y"]?.shape, [0, 2, 4])

        let negative = compileError { _ = try ONNXImporter.load(path: dynamic, inputShapes: ["x": [-1, 16]]) }
        XCTAssertTrue(negative?.message.contains("dimension -1 is negative") ?? false, "\(String(describing: negative))")
    }

    // MARK: - Helpers

    private func boolScalar(_ value: Bool) -> ConstantTensor {
        .make(dtype: .bool, shape: [], integers: [value ? 1 : 0])
    }

    private func int32Bytes(_ values: [Int32]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }
}
