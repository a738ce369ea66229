import FMBFormat
import Foundation
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

/// If whose condition is computed at run time (Tests/Fixtures/make_if_fixture.py, onnxruntime references): both
/// branches compile into predicated steps and the device runs only the taken one (VK_EXT_conditional_rendering);
/// nested Ifs run on the conjunction of their conditions. Checked for inputs that take each branch, fp32 and fp16,
/// streaming and preload.
final class RuntimeIfTests: XCTestCase {
    static let models = FixtureModelTests.models

    func compile(_ name: String, precision: Precision = .fp32) throws -> LoadedBundle {
        var options = CompileOptions()
        options.precision = precision
        options.chunkBytes = 1024
        let compiled = try Compiler.compile(path: Self.models.appendingPathComponent("\(name).onnx").path,
                                            options: options)
        let file = try BundleWriter.serialize(compiled.bundle, payload: compiled.payload)
        return try BundleReader.load(bytes: file, verifyChecksums: true, path: "\(name).\(precision).fmb")
    }

    func npy(_ file: String) throws -> HostTensor {
        try NPY.read(path: Self.models.appendingPathComponent(file).path)
    }

    func testBothBranchesCompileIntoPredicatedSteps() throws {
        let bundle = try compile("runtime_if").bundle
        let senses = bundle.program.compactMap(\.predicate?.sense)
        XCTAssertGreaterThan(senses.filter { $0 == .nonZero }.count, 0, "then_branch steps")
        XCTAssertGreaterThan(senses.filter { $0 == .zero }.count, 0, "else_branch steps")
        // One condition for all of them: the Greater's output.
        XCTAssertEqual(Set(bundle.program.compactMap(\.predicate?.tensor)).map { bundle.tensors[Int($0)].name }, ["cond"])
        // The two weights, one read by each branch, are still streamed.
        XCTAssertEqual(bundle.images.count, 2)
        // Unpredicated steps before (Tanh, ReduceSum, Greater) and after (the Mul by 3).
        XCTAssertNil(bundle.program.first?.predicate)
        XCTAssertNil(bundle.program.last?.predicate)
    }

    func testEachBranchMatchesOnnxRuntimeStreamingAndPreloaded() throws {
        for precision in Precision.allCases {
            let loaded = try compile("runtime_if", precision: precision)
            for branch in ["then", "else"] {
                var x = try npy("runtime_if.\(branch).x.npy")
                x.name = "x"
                let references = try ["z", "w"].map { try npy("runtime_if.\(branch).\($0).npy") }
                var outputs: [LoadMode: [HostTensor]] = [:]
                for mode in LoadMode.allCases {
                    let session = try Session(bundle: loaded, device: device(), options: SessionOptions(loadMode: mode))
                    let result = try session.run(inputs: [x])
                    outputs[mode] = result
                    for (out, ref) in zip(result, references) {
                        XCTAssertEqual(out.shape, ref.shape)
                        let error = relativeError(out.floats(), ref.floats())
                        XCTAssertLessThanOrEqual(error, precision == .fp32 ? 1e-4 : 1e-2,
                                                 "\(branch) \(precision) \(mode) \(out.name): relative error")
                    }
                }
                XCTAssertEqual(outputs[.streaming]?.map(\.bytes), outputs[.preload]?.map(\.bytes),
                               "\(branch) \(precision): streaming != preload")
            }
        }
    }

    /// One session, the condition flipping between runs: the recorded command buffers are replayed, so the
    /// device must read the condition anew every run.
    func testTheConditionIsReadAtEveryRun() throws {
        let session = try Session(bundle: try compile("runtime_if"), device: device())
        for branch in ["then", "else", "then", "else"] {
            var x = try npy("runtime_if.\(branch).x.npy")
            x.name = "x"
            let z = try session.run(inputs: [x])[0]
            XCTAssertLessThanOrEqual(relativeError(z.floats(), try npy("runtime_if.\(branch).z.npy").floats()), 1e-4, branch)
        }
    }

    func testADeviceWithoutConditionalRenderingIsRefusedAtSessionCreation() throws {
        let plain = try makeDevice(options: DeviceOptions(conditionalRendering: false))
        XCTAssertFalse(plain.hasConditionalRendering)
        XCTAssertThrowsError(try Session(bundle: try compile("runtime_if"), device: plain)) { error in
            guard case RuntimeError.requirementsUnmet(_, _, let unmet) = error else {
                return XCTFail("expected requirementsUnmet, got \(error)")
            }
            XCTAssertTrue(unmet.contains { $0.contains("VK_EXT_conditional_rendering") && $0.contains("predicated") },
                          "\(unmet)")
        }
    }

    func testBranchesWithDifferentShapesAreRefused() throws {
        XCTAssertThrowsError(try compile("bad_if_shapes")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("uneven") && text.contains("If branches with different output shapes are not "
                                                                    + "supported") && text.contains("[2]"), text)
        }
    }

    /// nested_if.onnx: an If in each branch of a run-time If, one three levels deep, their conditions computed at
    /// run time (one inside the outer branch). Every combination of the two inputs' conditions, fp32 and fp16,
    /// streaming and preload; one session per mode runs all four, so the conditions change between runs.
    func testNestedIfsMatchOnnxRuntimeForEveryCombination() throws {
        let cases = ["t16000", "t8000", "f16000", "f8000"]
        for precision in Precision.allCases {
            let loaded = try compile("nested_if", precision: precision)
            var outputs: [LoadMode: [[UInt8]]] = [:]
            for mode in LoadMode.allCases {
                let session = try Session(bundle: loaded, device: device(), options: SessionOptions(loadMode: mode))
                for name in cases {
                    var x = try npy("nested_if.\(name).x.npy"), k = try npy("nested_if.\(name).k.npy")
                    x.name = "x"
                    k.name = "k"
                    let y = try session.run(inputs: [x, k])[0]
                    let reference = try npy("nested_if.\(name).y.npy")
                    XCTAssertEqual(y.shape, reference.shape)
                    XCTAssertLessThanOrEqual(relativeError(y.floats(), reference.floats()),
                                             precision == .fp32 ? 1e-4 : 1e-2, "\(name) \(precision) \(mode)")
                    outputs[mode, default: []].append(y.bytes)
                }
            }
            XCTAssertEqual(outputs[.streaming], outputs[.preload], "\(precision): streaming != preload")
        }
    }
}
