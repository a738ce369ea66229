// The simplification passes (Constant nodes, aliases, dead nodes), constant folding and the topological sort,
// on hand-built graphs.

@testable import FlashMemCompiler
import XCTest
import TestSupport

final class GraphSimplifyTests: XCTestCase {
    typealias G = TestGraphs

    private func node(_ name: String, _ op: String, _ inputs: [String], _ outputs: [String],
                      _ attributes: [String: Attribute] = [:]) -> Node {
        Node(name: name, opType: op, inputs: inputs, outputs: outputs, attributes: attributes)
    }

    // MARK: - Constant nodes

    func testConstantNodesBecomeInitializers() throws {
        let graph = G.make(inputs: [("x", [2])], nodes: [
            node("c1", "Constant", [], ["f"], ["value_float": .float(1.5)]),
            node("c2", "Constant", [], ["fs"], ["value_floats": .floats([1, 2])]),
            node("c3", "Constant", [], ["i"], ["value_int": .int(-3)]),
            node("c4", "Constant", [], ["is"], ["value_ints": .ints([4, 5, 6])]),
            node("c5", "Constant", [], ["t"], ["value": .tensor(G.float32([7, 8], shape: [1, 2]))]),
            node("use", "Concat", ["x", "fs"], ["y"], ["axis": .int(0)]),
        ], outputs: ["y"])
        try graph.inlineConstantNodes()
        XCTAssertEqual(graph.nodes.map(\.name), ["use"])
        XCTAssertEqual(graph.initializers["f"]?.dtype, .float32)
        XCTAssertEqual(graph.initializers["f"]?.shape, [])
        XCTAssertEqual(graph.initializers["f"]?.floats(), [1.5])
        XCTAssertEqual(graph.initializers["fs"]?.floats(), [1, 2])
        XCTAssertEqual(graph.initializers["i"]?.dtype, .int64)
        XCTAssertEqual(graph.initializers["i"]?.shape, [])
        XCTAssertEqual(graph.initializers["i"]?.ints(), [-3])
        XCTAssertEqual(graph.initializers["is"]?.ints(), [4, 5, 6])
        XCTAssertEqual(graph.initializers["t"]?.shape, [1, 2])
        XCTAssertEqual(graph.values["is"]?.staticShape, [3])

        let strings = G.make(inputs: [], nodes: [node("s", "Constant", [], ["s"], ["value_string": .string("a")])],
                             outputs: ["s"])
        let error = compileError { try strings.inlineConstantNodes() }
        XCTAssertEqual(error?.node, "s")
    }

    // MARK: - Aliases

    func testIdentityAndDropoutAreRemoved() throws {
        let graph = G.make(inputs: [("x", [4])], nodes: [
            node("relu", "Relu", ["x"], ["r"]),
            node("id", "Identity", ["r"], ["r2"]),
            node("drop", "Dropout", ["r2"], ["d", ""]),
            node("neg", "Neg", ["d"], ["n"]),
            node("drop2", "Dropout", ["n"], ["d2", "mask_unused"]),
            node("out", "Sigmoid", ["d2"], ["y"]),
        ], outputs: ["y"])
        graph.removeAliases()
        XCTAssertEqual(graph.nodes.map(\.opType), ["Relu", "Neg", "Sigmoid"])
        XCTAssertEqual(graph.nodes[1].inputs, ["r"])
        XCTAssertEqual(graph.nodes[2].inputs, ["n"])
    }

    func testIdentityProducingAGraphOutput() throws {
        // The producer of the Identity's input is renamed to write the output name.
        let renamed = G.make(inputs: [("x", [4])], nodes: [
            node("relu", "Relu", ["x"], ["r"]),
            node("id", "Identity", ["r"], ["y"]),
            node("neg", "Neg", ["r"], ["z"]),
        ], outputs: ["y", "z"])
        renamed.removeAliases()
        XCTAssertEqual(renamed.nodes.map(\.name), ["relu", "neg"])
        XCTAssertEqual(renamed.nodes[0].outputs, ["y"])
        XCTAssertEqual(renamed.nodes[1].inputs, ["y"])
        try inferShapes(renamed)
        XCTAssertEqual(renamed.outputs.map(\.staticShape), [[4], [4]])

        // From a graph input (or another output) it stays, as an Identity; a Dropout becomes one.
        let kept = G.make(inputs: [("x", [4])], nodes: [
            node("id", "Identity", ["x"], ["y"]),
            node("relu", "Relu", ["x"], ["z"]),
            node("drop", "Dropout", ["z"], ["w"]),
        ], outputs: ["y", "z", "w"])
        kept.removeAliases()
        XCTAssertEqual(kept.nodes.map(\.opType), ["Identity", "Relu", "Identity"])
        XCTAssertEqual(kept.nodes[2].inputs, ["z"])
        try inferShapes(kept)
        XCTAssertEqual(kept.values["w"]?.staticShape, [4])
    }

    func testDropoutWithUsedMaskStays() {
        let graph = G.make(inputs: [("x", [4])], nodes: [
            node("drop", "Dropout", ["x"], ["d", "mask"]),
            node("cast", "Cast", ["mask"], ["y"], ["to": .int(1)]),
        ], outputs: ["y"])
        graph.removeAliases()
        XCTAssertEqual(graph.nodes.map(\.opType), ["Dropout", "Cast"])
    }

    // MARK: - Dead nodes

    func testDeadNodesAndUnusedInitializersGo() {
        let graph = G.make(inputs: [("x", [4]), ("unused_input", [1])], nodes: [
            node("a", "Relu", ["x"], ["r"]),
            node("dead1", "Add", ["x", "w_dead"], ["d1"]),
            node("dead2", "Neg", ["d1"], ["d2"]),
            node("b", "Add", ["r", "w"], ["y"]),
        ], initializers: ["w": G.zeros([4]), "w_dead": G.zeros([4])], outputs: ["y"])
        graph.values["d2"] = ValueInfo(name: "d2", dtype: .float32, shape: [4])
        graph.removeDeadNodes()
        XCTAssertEqual(graph.nodes.map(\.name), ["a", "b"])
        XCTAssertEqual(Set(graph.initializers.keys), ["w"])
        XCTAssertNil(graph.values["d2"])
        XCTAssertNil(graph.values["w_dead"])
        XCTAssertEqual(graph.inputs.map(\.name), ["x", "unused_input"])
    }

    // MARK: - Constant folding

    func testShapeArithmeticFolds() throws {
        let graph = G.make(inputs: [("x", [6, 4])], nodes: [
            node("shape", "Shape", ["x"], ["s"]),
            node("gather", "Gather", ["s", "zero"], ["b"], ["axis": .int(0)]),
            node("unsq", "Unsqueeze", ["b", "axes"], ["b1"]),
            node("div", "Div", ["b1", "two"], ["half"]),
            node("concat", "Concat", ["half", "tail"], ["target"], ["axis": .int(0)]),
            node("reshape", "Reshape", ["x", "target"], ["y"]),
        ], initializers: ["zero": G.int64([0], shape: []), "axes": G.int64([0]), "two": G.int64([2], shape: []),
                          "tail": G.int64([-1])], outputs: ["y"])
        try graph.simplify()
        XCTAssertEqual(graph.nodes.map(\.opType), ["Reshape"])
        XCTAssertEqual(graph.initializers[graph.nodes[0].inputs[1]]?.ints(), [3, -1])
        XCTAssertEqual(Set(graph.initializers.keys), ["target"])
        try inferShapes(graph)
        XCTAssertEqual(graph.outputs.first?.staticShape, [3, 8])
    }

    func testFoldingArithmeticCastSliceGather() throws {
        let graph = G.make(inputs: [], nodes: [
            node("div", "Div", ["a", "b"], ["q"]),  // int64: truncating, broadcast
            node("mul", "Mul", ["f", "g"], ["fg"]),
            node("cast", "Cast", ["f"], ["fi"], ["to": .int(7)]),
            node("slice", "Slice", ["m", "st", "en", "ax", "sp"], ["sl"]),
            node("gather", "Gather", ["m", "idx"], ["ga"], ["axis": .int(1)]),
            node("cos", "ConstantOfShape", ["shp"], ["co"], ["value": .tensor(G.int64([9], shape: [1]))]),
            node("sink", "Concat", ["q", "fi"], ["y"], ["axis": .int(0)]),
        ], initializers: [
            "a": G.int64([-7, 7, 9, -9], shape: [2, 2]), "b": G.int64([2, -4], shape: [2]),
            "f": G.float32([1.5, -2.5, 3.75]), "g": G.float32([2], shape: []),
            "m": G.int64(Array(0..<12), shape: [3, 4]),
            "st": G.int64([-1, 3]), "en": G.int64([Int(Int64.min), Int(Int64.max)]), "ax": G.int64([0, 1]),
            "sp": G.int64([-2, 1]),
            "idx": G.int64([3, -4], shape: [2]),
            "shp": G.int64([2, 2]),
        ], outputs: ["y"])
        try graph.foldConstants()
        XCTAssertEqual(graph.nodes.map(\.name), ["sink"], "the node producing the graph output stays")
        XCTAssertEqual(graph.initializers["q"]?.ints(), [-3, -1, 4, 2])
        XCTAssertEqual(graph.initializers["q"]?.shape, [2, 2])
        XCTAssertEqual(graph.initializers["fg"]?.floats(), [3, -5, 7.5])
        XCTAssertEqual(graph.initializers["fi"]?.dtype, .int64)
        XCTAssertEqual(graph.initializers["fi"]?.ints(), [1, -2, 3])
        XCTAssertEqual(graph.initializers["sl"]?.shape, [2, 1])
        XCTAssertEqual(graph.initializers["sl"]?.ints(), [11, 3])
        XCTAssertEqual(graph.initializers["ga"]?.shape, [3, 2])
        XCTAssertEqual(graph.initializers["ga"]?.ints(), [3, 0, 7, 4, 11, 8])
        XCTAssertEqual(graph.initializers["co"]?.ints(), [9, 9, 9, 9])
        XCTAssertEqual(graph.initializers["co"]?.dtype, .int64)
    }

    func testReshapeOfAConstantIsAView() throws {
        let weight = G.zeros([4, 6])
        let graph = G.make(inputs: [("x", [2, 12])], nodes: [
            node("r", "Reshape", ["w", "s"], ["w2"]),
            node("mm", "MatMul", ["x", "w2"], ["y"]),
        ], initializers: ["w": weight, "s": G.int64([12, 2])], outputs: ["y"])
        try graph.foldConstants()
        let folded = try XCTUnwrap(graph.initializers["w2"])
        XCTAssertEqual(folded.shape, [12, 2])
        XCTAssertEqual(folded.bytes.pointer.baseAddress, weight.bytes.pointer.baseAddress)
    }

    func testLargeConstantsAreNotMaterialized() throws {
        let n = ConstantFolder.elementLimit + 1
        let graph = G.make(inputs: [("x", [n])], nodes: [
            node("cast", "Cast", ["big"], ["big32"], ["to": .int(1)]),
            node("add", "Add", ["x", "big32"], ["y"]),
        ], initializers: ["big": .make(dtype: .float16, shape: [n], reals: [Double](repeating: 1, count: n))],
           outputs: ["y"])
        try graph.foldConstants()
        XCTAssertEqual(graph.nodes.map(\.name), ["cast", "add"])
        XCTAssertEqual(graph.values["big32"]?.staticShape, [n], "lenient inference records what it can")
    }

    func testDivisionByZeroIsLeftForRunTime() throws {
        let graph = G.make(inputs: [], nodes: [
            node("div", "Div", ["a", "z"], ["q"]),
            node("sink", "Identity", ["q"], ["y"]),
        ], initializers: ["a": G.int64([1]), "z": G.int64([0])], outputs: ["y"])
        try graph.foldConstants()
        XCTAssertEqual(graph.nodes.map(\.name), ["div", "sink"])
    }

    // MARK: - Topological order

    func testNodesAreSortedStably() throws {
        let graph = G.make(inputs: [("x", [2])], nodes: [
            node("c", "Add", ["a", "b"], ["y"]),
            node("b", "Neg", ["a"], ["b"]),
            node("other", "Relu", ["x"], ["o"]),
            node("a", "Relu", ["x"], ["a"]),
        ], outputs: ["y", "o"])
        try graph.sortTopologically()
        XCTAssertEqual(graph.nodes.map(\.name), ["other", "a", "b", "c"])
    }

    func testNestedGraphReferencesAreDependencies() throws {
        let thenBranch = G.make(inputs: [], nodes: [node("inner", "Neg", ["r"], ["t"])], outputs: ["t"])
        XCTAssertEqual(thenBranch.outerReferences, ["r"])
        let graph = G.make(inputs: [("x", [2]), ("cond", [])], nodes: [
            node("if", "If", ["cond"], ["y"], ["then_branch": .graph(thenBranch), "else_branch": .graph(thenBranch)]),
            node("relu", "Relu", ["x"], ["r"]),
        ], outputs: ["y"])
        try graph.sortTopologically()
        XCTAssertEqual(graph.nodes.map(\.name), ["relu", "if"])

        let unresolved = G.make(inputs: [("cond", [])], nodes: [
            node("if", "If", ["cond"], ["y"], ["then_branch": .graph(thenBranch)]),
        ], outputs: ["y"])
        let error = compileError { try unresolved.sortTopologically() }
        XCTAssertEqual(error?.node, "if")
        XCTAssertTrue(error?.message.contains("'r'") ?? false)
    }

    func testDuplicateProducerIsAnError() {
        let graph = G.make(inputs: [("x", [2])], nodes: [
            node("a", "Relu", ["x"], ["y"]),
            node("b", "Neg", ["x"], ["y"]),
        ], outputs: ["y"])
        let error = compileError { try graph.sortTopologically() }
        XCTAssertEqual(error?.node, "b")
    }
}
