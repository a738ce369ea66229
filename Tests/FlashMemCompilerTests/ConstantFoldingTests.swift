// Compile-time evaluation: every folding rule on hand-built graphs, If on a constant condition, a causal-mask
// chain, pinned inputs (Tests/Fixtures/models/pin_if.onnx from make_folding_fixtures.py) and the copy-kernel
// classification `fmc inspect` counts.

@testable import FlashMemCompiler
import FMBFormat
import XCTest
import TestSupport

final class ConstantFoldingTests: XCTestCase {
    typealias G = TestGraphs

    private func node(_ name: String, _ op: String, _ inputs: [String], _ outputs: [String],
                      _ attributes: [String: Attribute] = [:]) -> Node {
        Node(name: name, opType: op, inputs: inputs, outputs: outputs, attributes: attributes)
    }

    private static func bool(_ values: [Bool], shape: [Int]? = nil) -> ConstantTensor {
        .make(dtype: .bool, shape: shape ?? [values.count], integers: values.map { $0 ? 1 : 0 })
    }

    private static func float64(_ values: [Double], shape: [Int]? = nil) -> ConstantTensor {
        .make(dtype: .float64, shape: shape ?? [values.count], reals: values)
    }

    /// Folds `nodes` (each writing one value that a final Concat-free sink does not need) and returns the graph.
    /// A Relu on the input keeps the graph non-empty; nothing else may stay.
    private func fold(_ nodes: [Node], _ initializers: [String: ConstantTensor],
                      file: StaticString = #filePath, line: UInt = #line) throws -> Graph {
        let graph = G.make(inputs: [("x", [2])], nodes: nodes + [node("sink", "Relu", ["x"], ["y"])],
                           initializers: initializers, outputs: ["y"])
        try graph.foldConstants()
        XCTAssertEqual(graph.nodes.map(\.name), ["sink"], "every constant node folds", file: file, line: line)
        return graph
    }

    // MARK: - Elementwise

    func testUnaryRules() throws {
        let g = try fold([
            node("neg", "Neg", ["f"], ["neg"]), node("abs", "Abs", ["f"], ["abs"]),
            node("sqrt", "Sqrt", ["p"], ["sqrt"]), node("rec", "Reciprocal", ["p"], ["rec"]),
            node("floor", "Floor", ["f"], ["floor"]), node("ceil", "Ceil", ["f"], ["ceil"]),
            node("exp", "Exp", ["z"], ["exp"]), node("log", "Log", ["p"], ["log"]),
            node("ineg", "Neg", ["i"], ["ineg"]), node("iabs", "Abs", ["i"], ["iabs"]),
            node("not", "Not", ["b"], ["not"]),
        ], ["f": G.float32([-1.5, 2.25]), "p": G.float32([4, 0.25]), "z": G.float32([0]),
            "i": G.int64([-3, 5]), "b": Self.bool([true, false])])
        XCTAssertEqual(g.initializers["neg"]?.floats(), [1.5, -2.25])
        XCTAssertEqual(g.initializers["abs"]?.floats(), [1.5, 2.25])
        XCTAssertEqual(g.initializers["sqrt"]?.floats(), [2, 0.5])
        XCTAssertEqual(g.initializers["rec"]?.floats(), [0.25, 4])
        XCTAssertEqual(g.initializers["floor"]?.floats(), [-2, 2])
        XCTAssertEqual(g.initializers["ceil"]?.floats(), [-1, 3])
        XCTAssertEqual(g.initializers["exp"]?.floats(), [1])
        XCTAssertEqual(g.initializers["log"]?.floats(), [Float(log(4.0)), Float(log(0.25))])
        XCTAssertEqual(g.initializers["ineg"]?.ints(), [3, -5])
        XCTAssertEqual(g.initializers["ineg"]?.dtype, .int64)
        XCTAssertEqual(g.initializers["iabs"]?.ints(), [3, 5])
        XCTAssertEqual(g.initializers["not"]?.dtype, .bool)
        XCTAssertEqual(g.initializers["not"]?.ints(), [0, 1])
    }

    func testBinaryArithmeticRules() throws {
        let g = try fold([
            node("add", "Add", ["a", "row"], ["add"]),  // [2,2] + [2]
            node("sub", "Sub", ["a", "row"], ["sub"]),
            node("mod", "Mod", ["m", "d"], ["mod"]),  // integer, divisor's sign
            node("fmod", "Mod", ["m", "d"], ["fmod"], ["fmod": .int(1)]),  // integer, dividend's sign
            node("fmodf", "Mod", ["mf", "df"], ["fmodf"], ["fmod": .int(1)]),
            node("pow", "Pow", ["pb", "pe"], ["pow"]),  // int base, int exponent
            node("powf", "Pow", ["f", "two"], ["powf"]),  // float base, int64 exponent
            node("max", "Max", ["a", "row", "three"], ["max"]),  // variadic
            node("min", "Min", ["a", "row"], ["min"]),
            node("div", "Div", ["one", "three_f"], ["div"]),
            node("div64", "Div", ["one64", "three64"], ["div64"]),
        ], ["a": G.int64([1, -2, 3, 4], shape: [2, 2]), "row": G.int64([10, 1]),
            "m": G.int64([7, -7, 7, -7]), "d": G.int64([3, 3, -3, -3]),
            "mf": G.float32([5.5, -5.5]), "df": G.float32([2, 2]),
            "pb": G.int64([2, -3, 5]), "pe": G.int64([10, 3, 0]),
            "f": G.float32([1.5, -3]), "two": G.int64([2], shape: []), "three": G.int64([3], shape: []),
            "one": G.float32([1], shape: []), "three_f": G.float32([3], shape: []),
            "one64": Self.float64([1], shape: []), "three64": Self.float64([3], shape: [])])
        XCTAssertEqual(g.initializers["add"]?.ints(), [11, -1, 13, 5])
        XCTAssertEqual(g.initializers["add"]?.shape, [2, 2])
        XCTAssertEqual(g.initializers["sub"]?.ints(), [-9, -3, -7, 3])
        XCTAssertEqual(g.initializers["mod"]?.ints(), [1, 2, -2, -1])
        XCTAssertEqual(g.initializers["fmod"]?.ints(), [1, -1, 1, -1])
        XCTAssertEqual(g.initializers["fmodf"]?.floats(), [1.5, -1.5])
        XCTAssertEqual(g.initializers["pow"]?.ints(), [1024, -27, 1])
        XCTAssertEqual(g.initializers["powf"]?.floats(), [2.25, 9])
        XCTAssertEqual(g.initializers["powf"]?.dtype, .float32)
        XCTAssertEqual(g.initializers["max"]?.ints(), [10, 3, 10, 4])
        XCTAssertEqual(g.initializers["min"]?.ints(), [1, -2, 3, 1])
        // float32 results are rounded to float32 (what a float32 kernel computes); float64 keeps its precision.
        XCTAssertEqual(g.initializers["div"]?.floats(), [Float(1) / Float(3)])
        XCTAssertEqual(g.initializers["div64"]?.dtype, .float64)
        XCTAssertEqual(g.initializers["div64"]?.reals(), [1.0 / 3.0])
    }

    func testComparisonLogicAndWhereRules() throws {
        let g = try fold([
            node("eq", "Equal", ["i", "two"], ["eq"]),
            node("lt", "Less", ["i", "two"], ["lt"]),
            node("gt", "Greater", ["f", "zero"], ["gt"]),
            node("le", "LessOrEqual", ["i", "two"], ["le"]),
            node("ge", "GreaterOrEqual", ["i", "two"], ["ge"]),
            node("and", "And", ["b1", "b2"], ["and"]),
            node("or", "Or", ["b1", "b2"], ["or"]),
            node("xor", "Xor", ["b1", "b2"], ["xor"]),
            node("where", "Where", ["b1", "wx", "wy"], ["where"]),  // [3] against scalar and [3]
        ], ["i": G.int64([1, 2, 3]), "two": G.int64([2], shape: []),
            "f": G.float32([-1, 0, 0.5]), "zero": G.float32([0], shape: []),
            "b1": Self.bool([true, true, false]), "b2": Self.bool([true, false, false]),
            "wx": G.float32([7], shape: []), "wy": G.float32([-1, -2, -3])])
        XCTAssertEqual(g.initializers["eq"]?.dtype, .bool)
        XCTAssertEqual(g.initializers["eq"]?.ints(), [0, 1, 0])
        XCTAssertEqual(g.initializers["lt"]?.ints(), [1, 0, 0])
        XCTAssertEqual(g.initializers["gt"]?.ints(), [0, 0, 1])
        XCTAssertEqual(g.initializers["le"]?.ints(), [1, 1, 0])
        XCTAssertEqual(g.initializers["ge"]?.ints(), [0, 1, 1])
        XCTAssertEqual(g.initializers["and"]?.ints(), [1, 0, 0])
        XCTAssertEqual(g.initializers["or"]?.ints(), [1, 1, 0])
        XCTAssertEqual(g.initializers["xor"]?.ints(), [0, 1, 0])
        XCTAssertEqual(g.initializers["where"]?.floats(), [7, 7, -3])
        XCTAssertEqual(g.initializers["where"]?.dtype, .float32)
    }

    func testUndefinedIntegerResultsAreLeftForRunTime() throws {
        let graph = G.make(inputs: [], nodes: [
            node("mod0", "Mod", ["a", "zero"], ["m"]),
            node("negpow", "Pow", ["a", "minus"], ["p"]),
            node("mixed", "Add", ["a", "f"], ["s"]),  // dtypes differ: an invalid model, not ours to decide
            node("sink", "Concat", ["m", "p", "s"], ["y"], ["axis": .int(0)]),
        ], initializers: ["a": G.int64([3]), "zero": G.int64([0]), "minus": G.int64([-1]), "f": G.float32([1])],
           outputs: ["y"])
        try graph.foldConstants()
        XCTAssertEqual(graph.nodes.map(\.name), ["mod0", "negpow", "mixed", "sink"])
    }

    // MARK: - Tensors

    func testScatterNDAndOneHotRules() throws {
        // data [3, 2]; rows 2 and then 0 replaced, and (add) row 0 hit twice, in order; a negative index counts from
        // the end. OneHot of [1, -1, 5] with depth 3 on axis 0: 5 is out of range, a column of off values.
        let g = try fold([
            node("set", "ScatterND", ["d", "idx", "u"], ["set"]),
            node("add", "ScatterND", ["d", "dup", "u"], ["add"], ["reduction": .string("add")]),
            node("imax", "ScatterND", ["id", "neg", "iu"], ["imax"], ["reduction": .string("max")]),
            node("hot", "OneHot", ["hi", "depth", "vals"], ["hot"], ["axis": .int(0)]),
        ], ["d": G.float32([1, 2, 3, 4, 5, 6], shape: [3, 2]), "idx": G.int64([2, 0], shape: [2, 1]),
            "dup": G.int64([0, 0], shape: [2, 1]), "u": G.float32([10, 20, 30, 40], shape: [2, 2]),
            "id": G.int64([1, 9, 3]), "neg": G.int64([-1], shape: [1, 1]), "iu": G.int64([7]),
            "hi": G.int64([1, -1, 5]), "depth": G.int64([3]), "vals": G.float32([-1, 2])])
        XCTAssertEqual(g.initializers["set"]?.floats(), [30, 40, 3, 4, 10, 20])
        XCTAssertEqual(g.initializers["add"]?.floats(), [41, 62, 3, 4, 5, 6])
        XCTAssertEqual(g.initializers["imax"]?.ints(), [1, 9, 7])
        XCTAssertEqual(g.initializers["hot"]?.shape, [3, 3])
        XCTAssertEqual(g.initializers["hot"]?.floats(), [-1, -1, -1, 2, -1, -1, -1, 2, -1])
    }

    func testTensorRules() throws {
        let m = G.int64(Array(0..<6), shape: [2, 3])
        let g = try fold([
            node("tr", "Transpose", ["m"], ["tr"], ["perm": .ints([1, 0])]),
            node("trd", "Transpose", ["m"], ["trd"]),  // default: reversed axes
            node("ex", "Expand", ["col", "exshape"], ["ex"]),
            node("tile", "Tile", ["m", "reps"], ["tile"]),
            node("split", "Split", ["m", "parts"], ["s0", "s1"], ["axis": .int(1)]),
            node("range", "Range", ["r0", "r1", "r2"], ["range"]),
            node("rangef", "Range", ["f0", "f1", "f2"], ["rangef"]),
            node("rangeneg", "Range", ["r1", "r0", "rm"], ["rangeneg"]),
            node("cos", "ConstantOfShape", ["cshape"], ["cos"]),  // default value: float32 0
            node("sq", "Squeeze", ["m3", "ax0"], ["sq"]),
            node("unsq", "Unsqueeze", ["col", "ax0"], ["unsq"]),
            node("resh", "Reshape", ["m", "rshape"], ["resh"]),
            node("cat", "Concat", ["m", "m"], ["cat"], ["axis": .int(1)]),
            node("id", "Identity", ["m"], ["id"]),
            node("gat", "Gather", ["m", "gi"], ["gat"]),
            node("size", "Size", ["x"], ["size"]),
            node("shape", "Shape", ["x"], ["shape"]),
        ], ["m": m, "col": G.int64([1, 2], shape: [2, 1]), "exshape": G.int64([2, 3]), "reps": G.int64([1, 2]),
            "parts": G.int64([1, 2]), "r0": G.int64([1], shape: []), "r1": G.int64([8], shape: []),
            "r2": G.int64([3], shape: []), "rm": G.int64([-4], shape: []),
            "f0": G.float32([0], shape: []), "f1": G.float32([1], shape: []), "f2": G.float32([0.25], shape: []),
            "cshape": G.int64([2, 1]), "m3": G.int64([1, 2, 3], shape: [1, 3]), "ax0": G.int64([0]),
            "rshape": G.int64([3, -1]), "gi": G.int64([1], shape: [])])
        XCTAssertEqual(g.initializers["tr"]?.shape, [3, 2])
        XCTAssertEqual(g.initializers["tr"]?.ints(), [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(g.initializers["trd"]?.ints(), [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(g.initializers["ex"]?.shape, [2, 3])
        XCTAssertEqual(g.initializers["ex"]?.ints(), [1, 1, 1, 2, 2, 2])
        XCTAssertEqual(g.initializers["tile"]?.shape, [2, 6])
        XCTAssertEqual(g.initializers["tile"]?.ints(), [0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5])
        XCTAssertEqual(g.initializers["s0"]?.ints(), [0, 3])
        XCTAssertEqual(g.initializers["s1"]?.shape, [2, 2])
        XCTAssertEqual(g.initializers["s1"]?.ints(), [1, 2, 4, 5])
        XCTAssertEqual(g.initializers["range"]?.ints(), [1, 4, 7])
        XCTAssertEqual(g.initializers["rangef"]?.floats(), [0, 0.25, 0.5, 0.75])
        XCTAssertEqual(g.initializers["rangeneg"]?.ints(), [8, 4])
        XCTAssertEqual(g.initializers["cos"]?.dtype, .float32)
        XCTAssertEqual(g.initializers["cos"]?.shape, [2, 1])
        XCTAssertEqual(g.initializers["sq"]?.shape, [3])
        XCTAssertEqual(g.initializers["unsq"]?.shape, [1, 2, 1])
        XCTAssertEqual(g.initializers["resh"]?.shape, [3, 2])
        XCTAssertEqual(g.initializers["cat"]?.ints(), [0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5])
        XCTAssertEqual(g.initializers["id"]?.ints(), Array(0..<6))
        XCTAssertEqual(g.initializers["gat"]?.ints(), [3, 4, 5])
        XCTAssertEqual(g.initializers["size"]?.ints(), [2])
        XCTAssertEqual(g.initializers["shape"]?.ints(), [2])
    }

    func testResultsOverTheLimitStayNodes() throws {
        let big = ConstantFolder.elementLimit + 1
        let graph = G.make(inputs: [("x", [big])], nodes: [
            node("range", "Range", ["zero", "n", "one"], ["r"]),
            node("cast", "Cast", ["r"], ["rf"], ["to": .int(1)]),
            node("expand", "Expand", ["one_f", "shape"], ["e"]),
            node("add", "Add", ["x", "rf"], ["s"]),
            node("sink", "Add", ["s", "e"], ["y"]),
        ], initializers: ["zero": G.int64([0], shape: []), "n": G.int64([big], shape: []),
                          "one": G.int64([1], shape: []), "one_f": G.float32([1], shape: []),
                          "shape": G.int64([big])], outputs: ["y"])
        try graph.foldConstants()
        XCTAssertEqual(graph.nodes.map(\.name), ["range", "cast", "expand", "add", "sink"])
        // The shape rules of Range and ConstantOfShape still give those nodes static shapes.
        try inferShapes(graph)
        XCTAssertEqual(graph.values["r"]?.staticShape, [big])
        XCTAssertEqual(graph.values["e"]?.staticShape, [big])
    }

    /// A causal attention mask as transformer exporters build it: Range, Unsqueeze, LessOrEqual, Where; only the
    /// Add of the mask to the scores is left.
    func testCausalMaskChainFolds() throws {
        let graph = G.make(inputs: [("scores", [1, 4, 4])], nodes: [
            node("shape", "Shape", ["scores"], ["s"]),
            node("len", "Gather", ["s", "minus1"], ["n"], ["axis": .int(0)]),
            node("range", "Range", ["zero", "n", "one"], ["pos"]),
            node("rows", "Unsqueeze", ["pos", "ax1"], ["row"]),
            node("cols", "Unsqueeze", ["pos", "ax0"], ["col"]),
            node("allowed", "LessOrEqual", ["col", "row"], ["ok"]),
            node("neg", "Where", ["ok", "zf", "ninf"], ["mask"]),
            node("add", "Add", ["scores", "mask"], ["y"]),
        ], initializers: ["minus1": G.int64([-1], shape: []), "zero": G.int64([0], shape: []),
                          "one": G.int64([1], shape: []), "ax0": G.int64([0]), "ax1": G.int64([1]),
                          "zf": G.float32([0], shape: []), "ninf": G.float32([-1e9], shape: [])],
           outputs: ["y"])
        try graph.simplify()
        XCTAssertEqual(graph.nodes.map(\.name), ["add"])
        let mask = try XCTUnwrap(graph.initializers[graph.nodes[0].inputs[1]])
        XCTAssertEqual(mask.shape, [4, 4])
        XCTAssertEqual(mask.floats(), [0, -1e9, -1e9, -1e9, 0, 0, -1e9, -1e9, 0, 0, 0, -1e9, 0, 0, 0, 0])
        try inferShapes(graph)
        XCTAssertEqual(graph.outputs.first?.staticShape, [1, 4, 4])
    }

    func testCastToTheSameDTypeIsRemoved() throws {
        let graph = G.make(inputs: [("x", [3])], nodes: [
            node("same", "Cast", ["x"], ["c"], ["to": .int(1)]),  // float32 → float32
            node("relu", "Relu", ["c"], ["r"]),
            node("real", "Cast", ["r"], ["y"], ["to": .int(7)]),  // float32 → int64 stays
        ], outputs: ["y"])
        try graph.simplify()
        XCTAssertEqual(graph.nodes.map(\.name), ["relu", "real"])
        XCTAssertEqual(graph.nodes[0].inputs, ["x"])
    }

    // MARK: - If

    private func branch(_ name: String, _ nodes: [Node], outputs: [String],
                        initializers: [String: ConstantTensor] = [:]) -> Graph {
        G.make(inputs: [], nodes: nodes, initializers: initializers, outputs: outputs)
    }

    /// then: relu(x) * 2 (a Constant node inside, reading outer x); else: neg(x).
    private func ifGraph(condition: Bool?) -> Graph {
        let thenBranch = branch("then", [
            node("two", "Constant", [], ["two"], ["value": .tensor(G.float32([2], shape: []))]),
            node("then_relu", "Relu", ["x"], ["t"]),
            node("then_mul", "Mul", ["t", "two"], ["then_out"]),
        ], outputs: ["then_out"])
        let elseBranch = branch("else", [node("else_neg", "Neg", ["x"], ["else_out"])], outputs: ["else_out"])
        var initializers: [String: ConstantTensor] = [:]
        if let condition { initializers["cond"] = Self.bool([condition], shape: []) }
        let graph = G.make(inputs: [("x", [3])] + (condition == nil ? [("cond", [])] : []), nodes: [
            node("if", "If", ["cond"], ["r"], ["then_branch": .graph(thenBranch), "else_branch": .graph(elseBranch)]),
            node("after", "Sigmoid", ["r"], ["y"]),
        ], initializers: initializers, outputs: ["y"])
        if condition == nil { graph.inputs[1].dtype = .bool; graph.values["cond"]?.dtype = .bool }
        return graph
    }

    func testIfOnAConstantConditionInlinesTheTakenBranch() throws {
        let taken = ifGraph(condition: true)
        try taken.simplify()
        XCTAssertEqual(taken.nodes.map(\.opType), ["Relu", "Mul", "Sigmoid"])
        XCTAssertEqual(taken.nodes[0].inputs, ["x"], "the branch reads the outer-scope value")
        XCTAssertEqual(taken.nodes[1].outputs, ["r"], "the branch output is renamed to the If's output")
        XCTAssertEqual(taken.initializers[taken.nodes[1].inputs[1]]?.floats(), [2], "the branch's Constant moved out")
        try inferShapes(taken)
        XCTAssertEqual(taken.outputs.first?.staticShape, [3])

        let other = ifGraph(condition: false)
        try other.simplify()
        XCTAssertEqual(other.nodes.map(\.opType), ["Neg", "Sigmoid"])
        XCTAssertEqual(other.nodes[0].outputs, ["r"])
        XCTAssertNil(other.initializers["two"], "nothing of the dropped branch remains")
    }

    func testIfBranchOutputsThatAreOuterValuesOrConstants() throws {
        // then: outputs the outer value x and a branch constant; a nested If on a shape-derived condition.
        let inner = branch("inner_then", [node("inner_neg", "Neg", ["x"], ["inner_out"])], outputs: ["inner_out"])
        let innerElse = branch("inner_else", [node("inner_abs", "Abs", ["x"], ["inner_else_out"])],
                               outputs: ["inner_else_out"])
        let thenBranch = branch("then", [
            node("c", "Constant", [], ["k"], ["value": .tensor(G.float32([1, 2, 3]))]),
            node("shape", "Shape", ["x"], ["s"]),
            node("is3", "Equal", ["s", "three"], ["s3"]),
            node("sq", "Squeeze", ["s3"], ["s3s"]),
            node("nested", "If", ["s3s"], ["n"], ["then_branch": .graph(inner), "else_branch": .graph(innerElse)]),
        ], outputs: ["x", "k", "n"], initializers: ["three": G.int64([3])])
        let graph = G.make(inputs: [("x", [3])], nodes: [
            node("if", "If", ["cond"], ["a", "b", "c"],
                 ["then_branch": .graph(thenBranch), "else_branch": .graph(thenBranch)]),
            node("sum", "Sum", ["a", "b", "c"], ["y"]),
        ], initializers: ["cond": Self.bool([true], shape: [1])], outputs: ["y"])
        try graph.simplify()
        XCTAssertEqual(graph.nodes.map(\.opType), ["Neg", "Sum"])
        XCTAssertEqual(graph.nodes[1].inputs[0], "x", "an Identity of an outer value is an alias and goes")
        XCTAssertEqual(graph.initializers[graph.nodes[1].inputs[1]]?.floats(), [1, 2, 3])
        XCTAssertEqual(graph.nodes[0].outputs, [graph.nodes[1].inputs[2]])
        try inferShapes(graph)
        XCTAssertEqual(graph.outputs.first?.staticShape, [3])
    }

    func testInlinedNamesDoNotCollideWithOuterNames() throws {
        // The branch defines "t", which the outer graph defines too.
        let thenBranch = branch("then", [node("inner", "Neg", ["x"], ["t"]), node("inner2", "Abs", ["t"], ["o"])],
                                outputs: ["o"])
        let graph = G.make(inputs: [("x", [2])], nodes: [
            node("outer", "Relu", ["x"], ["t"]),
            node("if", "If", ["cond"], ["r"], ["then_branch": .graph(thenBranch), "else_branch": .graph(thenBranch)]),
            node("sum", "Add", ["t", "r"], ["y"]),
        ], initializers: ["cond": Self.bool([true], shape: [])], outputs: ["y"])
        try graph.simplify()
        XCTAssertEqual(graph.nodes.map(\.name), ["outer", "inner", "inner2", "sum"])
        XCTAssertNotEqual(graph.nodes[1].outputs, ["t"])
        XCTAssertEqual(graph.nodes[2].inputs, graph.nodes[1].outputs)
        XCTAssertEqual(graph.nodes[3].inputs, ["t", "r"])
        try graph.sortTopologically()
        XCTAssertEqual(thenBranch.nodes[0].outputs, ["t"], "the shared branch object is left intact")
    }

    func testIfWithARunTimeConditionStays() throws {
        let graph = ifGraph(condition: nil)
        try graph.simplify()
        XCTAssertEqual(graph.nodes.map(\.opType), ["If", "Sigmoid"])
        // The branches declare no static shapes; inferred with x in sight they give [3].
        try inferShapes(graph)
        XCTAssertEqual(graph.values["r"]?.staticShape, [3])
        XCTAssertEqual(graph.outputs.first?.staticShape, [3])
    }

    // MARK: - Pinned inputs

    func testPinnedInputFoldsASileroStyleIf() throws {
        let path = ImportFixtures.path("pin_if.onnx")
        let (graph, folded) = try ONNXImporter.prepare(path: path, pinnedInputs: ["sr": [16000]])
        XCTAssertEqual(graph.nodes.map(\.opType), ["Mul"])
        XCTAssertEqual(graph.nodes[0].outputs, ["y"])
        XCTAssertEqual(graph.inputs.map(\.name), ["x"], "a pinned input is no longer an input")
        XCTAssertEqual(graph.initializers[graph.nodes[0].inputs[1]]?.floats(), [2])
        // Imported: Constant, Equal, If, Identity + 2 then-nodes + 1 else-node = 7; 1 stays.
        XCTAssertEqual(folded, 6)

        let eight = try ONNXImporter.loadAndPrepare(path: path, pinnedInputs: ["sr": [8000]])
        XCTAssertEqual(eight.nodes.map(\.opType), ["Neg"])

        // Without the pin the If stays; its branches declare [1, 4], which types its output (lowering then
        // reports the run-time If).
        let dynamic = try ONNXImporter.loadAndPrepare(path: path)
        XCTAssertEqual(dynamic.nodes.map(\.opType), ["Equal", "If"])
        XCTAssertEqual(dynamic.outputs.first?.staticShape, [1, 4])
    }

    func testPinnedInputShapesAndErrors() throws {
        let graph = G.make(inputs: [("x", [2]), ("v", [nil, 2]), ("s", [])], nodes: [
            node("a", "Add", ["x", "x"], ["y"]),
        ], outputs: ["y"])
        try graph.pinInputs(["v": [1, 2, 3, 4], "s": [0.5]])
        XCTAssertEqual(graph.initializers["v"]?.shape, [2, 2], "one unknown dimension is taken from the count")
        XCTAssertEqual(graph.initializers["s"]?.shape, [])
        XCTAssertEqual(graph.initializers["s"]?.floats(), [0.5])
        XCTAssertEqual(graph.inputs.map(\.name), ["x"])

        let unknown = compileError { try graph.pinInputs(["rate": [1]]) }
        XCTAssertTrue(unknown?.message.contains("'rate', which is not an input of the model (inputs: x)") ?? false,
                      "\(String(describing: unknown))")
        let count = compileError { try graph.pinInputs(["x": [1, 2, 3]]) }
        XCTAssertTrue(count?.message.contains("gives 3 values, but input 'x' has shape [2] (2 elements)") ?? false,
                      "\(String(describing: count))")

        let ints = G.make(inputs: [("sr", [])], nodes: [], outputs: [], dtype: .int64)
        let fraction = compileError { try ints.pinInputs(["sr": [16000.5]]) }
        XCTAssertTrue(fraction?.message.contains("--pin-input sr=16000.5: 16000.5 is not an integer (input 'sr' is int64)")
                      ?? false, "\(String(describing: fraction))")
        let int32s = G.make(inputs: [("n", [])], nodes: [], outputs: [], dtype: .int32)
        let range = compileError { try int32s.pinInputs(["n": [3e9]]) }
        XCTAssertTrue(range?.message.contains("is out of int32's range") ?? false, "\(String(describing: range))")
        let bools = G.make(inputs: [("b", [])], nodes: [], outputs: [], dtype: .bool)
        XCTAssertNotNil(compileError { try bools.pinInputs(["b": [2]]) })
        try bools.pinInputs(["b": [1]])
        XCTAssertEqual(bools.initializers["b"]?.ints(), [1])
        XCTAssertEqual(bools.initializers["b"]?.dtype, .bool)
    }

    // MARK: - Counters

    func testCopyKernelsAreRecognizedByStem() {
        XCTAssertTrue(BundleInspector.isCopyKernel("copy_strided<>[4]"))
        XCTAssertTrue(BundleInspector.isCopyKernel("gather<>[]"))
        XCTAssertTrue(BundleInspector.isCopyKernel("pad<>[]"))
        XCTAssertTrue(BundleInspector.isCopyKernel("transpose"))
        XCTAssertFalse(BundleInspector.isCopyKernel("gemm<GEMM_TM=4,WEIGHT_FORMAT=rgba32f>[]"))
        XCTAssertTrue(BundleInspector.isCopyKernel("gather_image<WEIGHT_FORMAT=rgba16f>[]"))
        XCTAssertFalse(BundleInspector.isCopyKernel("binary<OP=copy>[]"), "only the stem counts")
        XCTAssertFalse(BundleInspector.isCopyKernel("splitk_reduce<>[256,1]"), "whole words only")
    }
}
