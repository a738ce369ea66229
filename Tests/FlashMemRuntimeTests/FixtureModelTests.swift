import FMBFormat
import Foundation
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

/// Model tests on the small fixtures of Tests/Fixtures (made by make_fixtures.py with onnxruntime
/// references): ONNX file → fmc's compiler → a .fmb file on disk → BundleReader → Session, streaming and
/// preloaded, in fp32 and fp16.
final class FixtureModelTests: XCTestCase {
    static let models = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/models")

    /// `maxImageBytes` (for fp32; half of it for fp16, whose texels are half as large): also checks that some
    /// weight was cut into pieces and no image exceeds it.
    func check(_ name: String, inputShapes: [String: [Int]] = [:], maxImageBytes: Int? = nil) throws {
        let model = Self.models.appendingPathComponent("\(name).onnx").path
        var input = try NPY.read(path: Self.models.appendingPathComponent("\(name).input.npy").path)
        let reference = try NPY.read(path: Self.models.appendingPathComponent("\(name).ref.npy").path)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("fm-fixture-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        for precision in Precision.allCases {
            var options = CompileOptions()
            options.precision = precision
            options.inputShapes = inputShapes
            options.chunkBytes = 1024
            options.maxImageBytes = maxImageBytes.map { precision == .fp16 ? $0 / 2 : $0 }
            let compiled = try Compiler.compile(path: model, options: options)
            if let maxImageBytes = options.maxImageBytes {
                XCTAssertFalse(compiled.report.splits.isEmpty, "\(name) \(precision): nothing was cut")
                for image in compiled.bundle.images {
                    let bytes = image.width * image.height * image.layers * (image.format == .rgba16f ? 8 : 16)
                    XCTAssertLessThanOrEqual(Int(bytes), maxImageBytes, "\(name) \(precision): image '\(image.name)'")
                }
            }
            let path = scratch.appendingPathComponent("\(name).\(precision).fmb").path
            try BundleWriter.write(compiled.bundle, payload: compiled.payload, to: path)
            let loaded = try BundleReader.open(path: path, verifyChecksums: true)
            input.name = loaded.bundle.meta.inputs[0].name

            var outputs: [LoadMode: HostTensor] = [:]
            for mode in LoadMode.allCases {
                let session = try Session(bundle: loaded, device: device(), options: SessionOptions(loadMode: mode))
                let result = try session.run(inputs: [input])
                XCTAssertEqual(result.count, 1)
                outputs[mode] = result[0]
                XCTAssertEqual(result[0].shape, reference.shape, "\(name) \(precision) \(mode): shape")
                XCTAssertEqual(result[0].elementType, reference.elementType, "\(name) \(precision) \(mode): dtype")
                let error = relativeError(result[0].floats(), reference.floats())
                XCTAssertLessThanOrEqual(error, precision == .fp32 ? 1e-4 : 1e-2, "\(name) \(precision) \(mode): relative error")
            }
            XCTAssertEqual(outputs[.streaming]?.bytes, outputs[.preload]?.bytes, "\(name) \(precision): streaming != preload")
        }
    }

    func testMLP() throws { try check("mlp") }

    func testCNN() throws { try check("cnn") }

    /// Kernel rewriting end to end: weights cut into pieces under a small image limit give the same outputs.
    func testMLPAndCNNWithWeightsCutIntoPieces() throws {
        try check("mlp", maxImageBytes: 4096)
        try check("cnn", maxImageBytes: 1024)
    }

    /// One budget for arena + weights: too small is an error naming the smallest feasible budget; that budget and
    /// larger ones compile, stay within it on the device, and every run (the first copies every weight, later ones
    /// only the streamed) equals preload bit for bit.
    func testMemoryBudgetsFromTheSmallestFeasibleUp() throws {
        let model = Self.models.appendingPathComponent("cnn.onnx").path
        var input = try NPY.read(path: Self.models.appendingPathComponent("cnn.input.npy").path)
        var options = CompileOptions()
        options.chunkBytes = 1024
        options.maxImageBytes = 2048
        let reference = try Compiler.compile(path: model, options: options)
        input.name = reference.bundle.meta.inputs[0].name
        let preload = try Session(bundle: LoadedBundle(bundle: reference.bundle, payload: reference.payload),
                                  device: device(), options: SessionOptions(loadMode: .preload))
        let expected = try preload.run(inputs: [input])[0].bytes

        options.memoryBudget = .bytes(reference.bundle.meta.arenaSize + 1)
        var smallest: UInt64 = 0
        XCTAssertThrowsError(try Compiler.compile(path: model, options: options)) { error in
            let text = "\(error)"
            let match = text.range(of: #"smallest feasible budget is (\d+) bytes"#, options: .regularExpression)
            XCTAssertNotNil(match, text)
            smallest = match.flatMap { UInt64(text[$0].split(separator: " ")[4]) } ?? 0
        }
        XCTAssertGreaterThan(smallest, reference.bundle.meta.arenaSize)
        let everything = reference.bundle.meta.arenaSize + reference.bundle.placement!.weightSpaceBytes
        for budget in [MemoryBudget.bytes(smallest), .fractionOfWeights(0.5), .auto, .bytes(everything)] {
            options.memoryBudget = budget
            let compiled = try Compiler.compile(path: model, options: options)
            let plan = try XCTUnwrap(compiled.bundle.placement)
            XCTAssertLessThanOrEqual(compiled.bundle.meta.arenaSize + plan.weightSpaceBytes, compiled.bundle.schedule.budgetBytes)
            let session = try Session(bundle: LoadedBundle(bundle: compiled.bundle, payload: compiled.payload),
                                      device: device())
            XCTAssertLessThanOrEqual(session.memory.deviceBytes, compiled.bundle.schedule.budgetBytes, "\(budget)")
            for run in 0..<3 {
                XCTAssertEqual(try session.run(inputs: [input])[0].bytes, expected, "\(budget), run \(run)")
            }
            if case .bytes(everything) = budget {
                XCTAssertEqual(session.lastStats?.bytesStreamed, 0, "a budget for every weight streams nothing warm")
            }
        }
    }

    func testCNNWithExternalData() throws { try check("cnn_external") }

    func testDynamicBatchFixedOnTheCommandLine() throws { try check("dynamic", inputShapes: ["x": [3, 16]]) }

    func testUnsupportedOpIsACompileErrorNamingNodeAndOp() throws {
        let model = Self.models.appendingPathComponent("bad_unsupported_op.onnx").path
        XCTAssertThrowsError(try Compiler.compile(path: model, options: CompileOptions())) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bad_unsupported_op.onnx") && text.contains("my_det") && text.contains("Det"), text)
        }
    }

    func testUntypedLoopBodyImportsAndLoopIsRefusedByName() throws {
        let model = Self.models.appendingPathComponent("bad_untyped_loop_body.onnx").path
        let graph = try ONNXImporter.load(path: model)
        XCTAssertEqual(graph.nodes.map(\.opType), ["Loop"])
        XCTAssertThrowsError(try Compiler.compile(path: model, options: CompileOptions())) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("my_loop") && text.contains("Loop"), text)
        }
    }
}
