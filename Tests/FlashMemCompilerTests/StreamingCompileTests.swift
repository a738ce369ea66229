// The streaming compiler: inline initializers read from the mapped model file, external data confined to the
// model's folder, and `Compiler.compile(path:options:writingTo:)` writing exactly the bundle the in-memory
// compile gives (byte for byte), or nothing at all.

@testable import FlashMemCompiler
import FMBFormat
import Foundation
import TestSupport
import XCTest

final class StreamingCompileTests: XCTestCase {
    func testStreamedBundleEqualsInMemoryCompile() throws {
        var fp16 = CompileOptions()
        fp16.precision = .fp16
        fp16.codec = .zstd
        fp16.chunkBytes = 4096
        var budget = CompileOptions()
        budget.memoryBudget = .fractionOfWeights(0.5)
        budget.maxImageBytes = 1 << 12  // pieces: several images per weight
        for model in ["cnn", "cnn_external", "mlp"] {
            for (label, options) in [("fp32", CompileOptions()), ("fp16 zstd", fp16), ("budget", budget)] {
                let path = ImportFixtures.path("\(model).onnx")
                let compiled = try Compiler.compile(path: path, options: options)
                let expected = try BundleWriter.serialize(compiled.bundle, payload: compiled.payload)
                let dir = try temporaryDirectory()
                let report = try Compiler.compile(path: path, options: options, writingTo: dir + "/out.fmb")
                let written = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/out.fmb")))
                XCTAssertEqual(written.count, expected.count, "\(model) \(label)")
                XCTAssertTrue(written == expected, "\(model) \(label): the streamed bundle differs")
                XCTAssertEqual(report.chunks, compiled.bundle.chunks.count)
                XCTAssertEqual(report.weightBytes, compiled.report.weightBytes)
                XCTAssertGreaterThan(report.weightBytes, 0)
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.fmb"])
            }
        }
    }

    func testFailedCompileWritesNothing() throws {
        let dir = try temporaryDirectory()
        let error = compileError {
            _ = try Compiler.compile(path: ImportFixtures.path("bad_unsupported_op.onnx"), options: CompileOptions(),
                                     writingTo: dir + "/out.fmb")
        }
        XCTAssertEqual(error?.op, "Det")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "no bundle, no temporary file")
    }

    func testInlineInitializersAreViewsOfTheModelFile() throws {
        let path = ImportFixtures.path("cnn.onnx")
        let graph = try ONNXImporter.load(path: path)
        let external = try ONNXImporter.load(path: ImportFixtures.path("cnn_external.onnx"))
        let mappings = try ONNXImportTests.mappings(of: path)
        XCTAssertFalse(mappings.isEmpty, "the model file is not mapped")
        var views = 0
        for (name, tensor) in graph.initializers.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(Array(tensor.bytes.pointer), external.initializers[name].map { Array($0.bytes.pointer) },
                           "\(name): the same values as the external-data copy of the model")
            let address = UInt(bitPattern: tensor.bytes.pointer.baseAddress)
            if mappings.contains(where: { $0.contains(address) && $0.contains(address + UInt(tensor.bytes.count) - 1) }) {
                views += 1
            } else {
                XCTAssertEqual(name, "scale", "only the Constant node's value is copied")
            }
        }
        XCTAssertEqual(views, 9, "every initializer is a view of the mapped model")
    }

    func testStripRemovesExactlyTheRawData() throws {
        let file = try MappedFile(path: ImportFixtures.path("cnn.onnx"))
        let stripped = try XCTUnwrap(ONNXInlineData.strip(file.bytes))
        let rawBytes = stripped.rawData.values.reduce(0) { $0 + $1.count }
        XCTAssertEqual(stripped.rawData.count, 9)
        // Each raw_data field costs its bytes plus a key and a length varint; lengths shrink by as much.
        XCTAssertLessThan(stripped.message.count, file.bytes.count - rawBytes)
        XCTAssertGreaterThan(stripped.message.count, file.bytes.count - rawBytes - 9 * 16)
        // Not protobuf (field 0), and nothing to strip: the caller unpacks the bytes as they are.
        XCTAssertNil([UInt8](repeating: 0, count: 64).withUnsafeBytes { ONNXInlineData.strip($0) })
        XCTAssertNil([0x0A, 0x02, 0x61, 0x62].withUnsafeBytes { ONNXInlineData.strip($0) })
    }

    func testExternalDataOutsideTheModelFolderIsRefused() {
        let path = ImportFixtures.path("bad_external_escape.onnx")
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertEqual(error?.file, path)
        XCTAssertTrue(error?.message.contains("'w_ext'") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("outside the model's directory") ?? false, "\(String(describing: error))")
    }

    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "fm-stream-compile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}
