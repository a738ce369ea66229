// Lowering of an If whose condition is computed at run time (Lowering+ControlFlow.swift) and the arena plan
// of predicated steps. The device-side behaviour is in FlashMemRuntimeTests/RuntimeIfTests.swift.

import FMBFormat
import XCTest
@testable import FlashMemCompiler

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
}
