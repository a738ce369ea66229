// Lowering of an If whose condition is computed at run time (Lowering+ControlFlow.swift), nested ones included,
// the shape inference of its branches in the enclosing scope (IfInlining.swift) and the arena plan of predicated
// steps. The device-side behaviour is in FlashMemRuntimeTests/RuntimeIfTests.swift.

import FMBFormat
import XCTest
@testable import FlashMemCompiler
import TestSupport

final class ControlFlowLoweringTests: XCTestCase {
    func lowerFixture() throws -> LoweredProgram {
        let graph = try ONNXImporter.loadAndPrepare(path: ImportFixtures.path("runtime_if.onnx"))
        XCTAssertEqual(graph.nodes.filter { $0.opType == "If" }.count, 1, "the condition is not folded")
        return try Lowering.lower(graph, precision: .fp32)
    }

    func testBranchesArePredicatedOnTheCondition() throws {
        let program = try lowerFixture()
        let then = program.steps.filter { $0.predicate == LoweredPredicate(tensor: "cond", sense: .nonZero) }
        let otherwise = program.steps.filter { $0.predicate == LoweredPredicate(tensor: "cond", sense: .zero) }
        XCTAssertFalse(then.isEmpty)
        XCTAssertFalse(otherwise.isEmpty)
        XCTAssertEqual(then.count + otherwise.count, program.steps.filter { $0.predicate != nil }.count)
        // Then-steps come first, all of them before any else-step.
        let senses = program.steps.compactMap(\.predicate?.sense)
        XCTAssertEqual(senses, senses.sorted { $0.rawValue < $1.rawValue })
        // Each branch reads its own weight image.
        XCTAssertTrue(then.contains { $0.bindings.contains(.image(0)) } != otherwise.contains { $0.bindings.contains(.image(0)) })
    }

    func testResultsAreWrittenIntoTheIfOutputs() throws {
        let program = try lowerFixture()
        for sense in [PredicateSense.nonZero, .zero] {
            let steps = program.steps.filter { $0.predicate?.sense == sense }
            // Output 0 is computed by each branch's last kernel (Relu / Sigmoid), which writes 'out0' itself.
            XCTAssertTrue(steps.contains { $0.bindings.last == .tensor("out0")
                                           && !program.kernels[$0.kernel].name.hasPrefix("copy_strided") },
                          "\(sense): no kernel writes out0")
            // Output 1 is an outer value (then) or a view (else): one copy step into 'w'.
            let copies = steps.filter { program.kernels[$0.kernel].name.hasPrefix("copy_strided<COPY_ROLE=if_result>") }
            XCTAssertEqual(copies.map(\.bindings.last), [.tensor("w")], "\(sense)")
        }
        // No branch-local name survives as the tensor of a retargeted result.
        XCTAssertNil(program.tensors["then_out0"])
        XCTAssertNil(program.tensors["else_out0"])
    }

    func testTheConditionStaysLiveUntilTheLastPredicatedStep() throws {
        // cond is written by step 0 and bound by no later step; steps 1 and 2 run on it. 'tmp', written by step 1,
        // must not take cond's bytes.
        var program = LoweredProgram()
        program.kernels = [KernelSpec(name: "k", spirv: [0x0723_0203], bindings: [.storageBuffer, .storageBuffer],
                                      pushConstantSize: 0, workgroupSize: [1, 1, 1])]
        for name in ["x", "cond", "tmp", "y"] { program.tensors[name] = ArenaTensor(name: name, byteSize: 256) }
        program.steps = [
            LoweredStep(kernel: 0, groups: [1, 1, 1], bindings: [.tensor("x"), .tensor("cond")], pushConstants: [],
                        label: "cond"),
            LoweredStep(kernel: 0, groups: [1, 1, 1], bindings: [.tensor("x"), .tensor("tmp")], pushConstants: [],
                        label: "then", predicate: LoweredPredicate(tensor: "cond", sense: .nonZero)),
            LoweredStep(kernel: 0, groups: [1, 1, 1], bindings: [.tensor("tmp"), .tensor("y")], pushConstants: [],
                        label: "else", predicate: LoweredPredicate(tensor: "cond", sense: .zero)),
        ]
        program.inputs = [IOBinding(name: "x", elementType: .float32, shape: [64], tensor: 0)]
        program.outputs = [IOBinding(name: "y", elementType: .float32, shape: [64], tensor: 0)]
        let plan = try ArenaPlanner.plan(program) { _ in DataRange(offset: 0, size: 0) }
        let offset = { (name: String) in plan.tensors[Int(plan.index[name]!)].offset }
        XCTAssertNotEqual(offset("cond"), offset("tmp"))

        // Without the predicates cond would be dead after step 0 and share tmp's bytes (what the rule prevents).
        for k in program.steps.indices { program.steps[k].predicate = nil }
        let unpredicated = try ArenaPlanner.plan(program) { _ in DataRange(offset: 0, size: 0) }
        XCTAssertEqual(unpredicated.tensors[Int(unpredicated.index["cond"]!)].offset,
                       unpredicated.tensors[Int(unpredicated.index["tmp"]!)].offset)
    }

    // MARK: - Branches inferred in the enclosing scope

    private func node(_ name: String, _ op: String, _ inputs: [String], _ outputs: [String],
                      _ attributes: [String: Attribute] = [:]) -> Node {
        Node(name: name, opType: op, inputs: inputs, outputs: outputs, attributes: attributes)
    }

    /// x float[3, 4], cond bool (a graph input, so the If stays); y = Relu(If(cond)). Neither branch declares a
    /// shape. then: a nested If on Shape(x)[1] == 4 (decidable only with x's shape in sight) whose branches have
    /// different shapes, Transpose(x) [4, 3] or x [3, 4]; else: the given nodes, writing "else_out".
    private func scopedIfGraph(elseNodes: [Node]) -> Graph {
        let transpose = TestGraphs.make(inputs: [], nodes: [node("tr", "Transpose", ["x"], ["tr_out"],
                                                                 ["perm": .ints([1, 0])])], outputs: ["tr_out"])
        let keep = TestGraphs.make(inputs: [], nodes: [node("keep", "Identity", ["x"], ["keep_out"])],
                                   outputs: ["keep_out"])
        let thenBranch = TestGraphs.make(inputs: [], nodes: [
            node("shape", "Shape", ["x"], ["s"]),
            node("cols", "Gather", ["s", "one"], ["n"]),
            node("is4", "Equal", ["n", "four"], ["wide"]),
            node("by_shape", "If", ["wide"], ["then_out"], ["then_branch": .graph(transpose), "else_branch": .graph(keep)]),
        ], initializers: ["one": TestGraphs.int64([1], shape: []), "four": TestGraphs.int64([4], shape: [])],
           outputs: ["then_out"])
        let elseBranch = TestGraphs.make(inputs: [], nodes: elseNodes,
                                         initializers: ["shape43": TestGraphs.int64([4, 3]), "shape5": TestGraphs.int64([5])],
                                         outputs: ["else_out"])
        for branch in [thenBranch, elseBranch, transpose, keep] {
            for k in branch.outputs.indices { branch.outputs[k].shape = nil }
        }
        let graph = TestGraphs.make(inputs: [("x", [3, 4]), ("cond", [])], nodes: [
            node("if", "If", ["cond"], ["r"], ["then_branch": .graph(thenBranch), "else_branch": .graph(elseBranch)]),
            node("after", "Relu", ["r"], ["y"]),
        ], outputs: ["y"])
        graph.inputs[1].dtype = .bool
        graph.values["cond"]?.dtype = .bool
        return graph
    }

    func testBranchShapesAreInferredWithTheOuterScopeInSight() throws {
        let graph = scopedIfGraph(elseNodes: [node("reshape", "Reshape", ["x", "shape43"], ["else_out"])])
        try graph.simplify()
        try inferShapes(graph)
        XCTAssertEqual(graph.nodes.map(\.opType), ["If", "Relu"])
        XCTAssertEqual(graph.values["r"]?.staticShape, [4, 3])
        XCTAssertEqual(graph.outputs.first?.staticShape, [4, 3])
        // The then branch was folded with x's shape known: its shape test and nested If are gone.
        guard case .graph(let thenBranch)? = graph.nodes[0].attributes["then_branch"] else {
            return XCTFail("the If lost its then_branch")
        }
        XCTAssertEqual(thenBranch.nodes.map(\.opType), ["Transpose"])
        XCTAssertEqual(thenBranch.outputs.first?.staticShape, [4, 3])

        let program = try Lowering.lower(graph, precision: .fp32)
        let predicates = program.steps.compactMap(\.predicate)
        XCTAssertTrue(predicates.allSatisfy { $0.tensor == "cond" }, "\(predicates)")
        XCTAssertEqual(Set(predicates.map(\.sense.rawValue)), [PredicateSense.nonZero.rawValue, PredicateSense.zero.rawValue])
    }

    func testABranchThatCannotRunOnTheShapesIsNamed() throws {
        // else: Reshape of 12 elements to [5], which no input of this shape allows.
        let graph = scopedIfGraph(elseNodes: [node("bad_reshape", "Reshape", ["x", "shape5"], ["else_out"])])
        try graph.simplify()
        let error = compileError { try inferShapes(graph) }
        XCTAssertEqual(error?.node, "if")
        let message = error?.message ?? ""
        XCTAssertTrue(message.contains("else_branch cannot run on these shapes") && message.contains("'bad_reshape'")
                      && message.contains("--pin-input"), message)
    }

    // MARK: - Nested Ifs decided at run time

    func testNestedIfStepsRunOnTheConjunctionOfTheirConditions() throws {
        let graph = try ONNXImporter.loadAndPrepare(path: ImportFixtures.path("nested_if.onnx"))
        let program = try Lowering.lower(graph, precision: .fp32)
        let combined = Set(program.steps.compactMap(\.predicate?.tensor)).subtracting(["cond"])
        XCTAssertEqual(combined, Set(["inner_if", "deep_if", "else_if"].flatMap { name in
            ["then_branch", "else_branch"].map { "\(name)/\($0)/condition_and" }
        }))
        for tensor in combined {
            let writers = program.steps.indices.filter { program.steps[$0].bindings.last == .tensor(tensor) }
            XCTAssertEqual(writers.count, 1, tensor)
            guard let writer = writers.first else { continue }
            XCTAssertNil(program.steps[writer].predicate, "\(tensor) is computed whichever branch runs")
            XCTAssertTrue(program.kernels[program.steps[writer].kernel].name.hasPrefix("binary"), tensor)
            let readers = program.steps.indices.filter { program.steps[$0].predicate?.tensor == tensor }
            XCTAssertFalse(readers.isEmpty, tensor)
            XCTAssertTrue(readers.allSatisfy { $0 > writer }, "\(tensor) is written before the steps it predicates")
        }
        // Three levels: deep_if's then-steps need inner_if's then-condition and cond itself.
        let deep = program.steps.first { $0.bindings.last == .tensor("deep_if/then_branch/condition_and") }
        XCTAssertEqual(deep.map { Array($0.bindings.dropLast()) }, [.tensor("inner_if/then_branch/condition_and"), .tensor("cond")])
        // The step after the nested If in the outer then-branch runs on the outer condition alone.
        let add = program.steps.first { $0.label.contains("then_add") }
        XCTAssertEqual(add?.predicate, LoweredPredicate(tensor: "cond", sense: .nonZero))
        // Lowering leaves the graph's branches as they were: it can lower the same graph again.
        XCTAssertEqual(try Lowering.lower(graph, precision: .fp32).steps.count, program.steps.count)
    }
}
