// Malformed ONNX models (issue 12, item 6): each is refused with a CompileError naming the file and the tensor or
// node at fault, in bounded time and memory, and `fmc compile`'s library call leaves nothing at the output path.
// The bad_*.onnx fixtures (Tests/Fixtures/make_fixtures.py) cover truncation, dangling inputs, cycles and a
// '../' external location (ONNXImportTests, StreamingCompileTests); the models here are valid fixtures edited
// through protobuf-c (COnnx): unpacked, one field changed, packed again.

import COnnx
import FlashMemCompiler
import Foundation
import TestSupport
import XCTest

final class MalformedModelTests: XCTestCase {
    // MARK: Wrong initializer sizes

    func testRawDataShorterOrLongerThanTheShapeNeeds() throws {
        let dir = try temporaryDirectory()
        for delta: Int64 in [1, -1] {
            var name = ""
            let path = try editedFixture("mlp.onnx", in: dir) { model in
                let t = try firstInitializer(model, rank: 2)
                name = String(cString: t.pointee.name)
                t.pointee.dims[0] += delta
            }
            let error = compileError { _ = try ONNXImporter.load(path: path) }
            XCTAssertEqual(error?.file, path)
            XCTAssertTrue(error?.message.hasPrefix("initializer '\(name)': raw_data holds ") ?? false, "\(String(describing: error))")
            XCTAssertTrue(error?.message.contains("but float32 [") ?? false, "\(String(describing: error))")
        }
    }

    func testExternalDataLengthThatDisagreesWithTheShape() throws {
        let dir = try copyExternalFixture()
        let path = try editedFixture("cnn_external.onnx", in: dir) { model in
            let t = try firstExternalInitializer(model)
            try setExternalData(t, key: "length", to: "5")
        }
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertTrue(error?.message.contains("external data length 5 does not match its dtype and shape") ?? false,
                      "\(String(describing: error))")
    }

    // MARK: Absurd shapes

    func testDimensionsBeyondInt32AreRefused() throws {
        let dir = try temporaryDirectory()
        for dims: [Int64] in [[1 << 40, 4], [-3, 4]] {
            var name = ""
            let path = try editedFixture("mlp.onnx", in: dir) { model in
                let t = try firstInitializer(model, rank: 2)
                name = String(cString: t.pointee.name)
                t.pointee.dims[0] = dims[0]
            }
            let error = compileError { _ = try ONNXImporter.load(path: path) }
            XCTAssertTrue(error?.message.hasPrefix("initializer '\(name)': shape [\(dims[0]), ") ?? false,
                          "\(String(describing: error))")
            XCTAssertTrue(error?.message.contains("has dimension \(dims[0]), outside 0...2147483647") ?? false,
                          "\(String(describing: error))")
        }
    }

    func testElementCountsThatWouldOverflowAreRefused() throws {
        let dir = try temporaryDirectory()
        var name = ""
        // 2^31-1 squared fits Int, but the bytes of such a tensor, and the products later passes take, would not
        // stay far from overflow: the importer bounds element counts at 2^50.
        let path = try editedFixture("mlp.onnx", in: dir) { model in
            let t = try firstInitializer(model, rank: 2)
            name = String(cString: t.pointee.name)
            t.pointee.dims[0] = Int64(Int32.max)
            t.pointee.dims[1] = Int64(Int32.max)
        }
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertEqual(error?.message, "initializer '\(name)': shape [2147483647, 2147483647] has more than 2^50 elements")
    }

    func testDeclaredInputDimensionBeyondInt32IsRefusedAtPreparation() throws {
        let dir = try temporaryDirectory()
        let path = try editedFixture("mlp.onnx", in: dir) { model in
            let input = try XCTUnwrap(model.graph?.pointee.input[0]?.pointee.type?.pointee.tensor_type?.pointee.shape)
            input.pointee.dim[0]!.pointee.dim_value = 1 << 40
        }
        let error = compileError { _ = try ONNXImporter.loadAndPrepare(path: path) }
        XCTAssertEqual(error?.file, path)
        XCTAssertNotNil(error, "a 2^40 dimension must not reach lowering")
    }

    // MARK: External data outside the model's folder

    func testAbsoluteExternalLocationIsRefused() throws {
        let dir = try copyExternalFixture()
        let absolute = dir + "/cnn_external.onnx.data"  // exists: refused for being absolute, not for being missing
        let path = try editedFixture("cnn_external.onnx", in: dir) { model in
            try setExternalData(try firstExternalInitializer(model), key: "location", to: absolute)
        }
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertTrue(error?.message.contains("external data location '\(absolute)' is absolute") ?? false,
                      "\(String(describing: error))")
    }

    func testSymbolicLinkOutOfTheModelFolderIsRefused() throws {
        let outside = try copyExternalFixture()
        let dir = try temporaryDirectory()
        try FileManager.default.createSymbolicLink(atPath: dir + "/cnn_external.onnx.data",
                                                   withDestinationPath: outside + "/cnn_external.onnx.data")
        let path = try editedFixture("cnn_external.onnx", in: dir) { _ in }
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertTrue(error?.message.contains("leads outside the model's directory") ?? false,
                      "\(String(describing: error))")
        XCTAssertTrue(error?.message.hasPrefix("initializer '") ?? false, "\(String(describing: error))")
    }

    // MARK: Truncation, bounded time

    /// Every prefix of a model (at 97 cut points) is refused or imported, never a crash; together in well under
    /// a second.
    func testEveryTruncationOfAModelIsRefusedCleanly() throws {
        let dir = try temporaryDirectory()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: ImportFixtures.path("mlp.onnx")))
        let path = dir + "/cut.onnx"
        let start = Date()
        var refused = 0
        for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 97)) {
            try bytes.prefix(cut).write(to: URL(fileURLWithPath: path))
            do {
                _ = try ONNXImporter.loadAndPrepare(path: path)
            } catch let error as CompileError {
                XCTAssertEqual(error.file, path)
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 90)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    // MARK: No partial bundle

    /// `Compiler.compile(path:options:writingTo:)` is what `fmc compile -o` calls: for each malformed model the
    /// output folder stays empty (no bundle, no temporary file).
    func testMalformedModelsLeaveNothingAtTheOutputPath() throws {
        let edited = try temporaryDirectory()
        let wrongSize = try editedFixture("mlp.onnx", in: edited) { model in
            try firstInitializer(model, rank: 2).pointee.dims[0] += 1
        }
        let models = ["bad_truncated.onnx", "bad_missing_input.onnx", "bad_cycle.onnx", "bad_external_escape.onnx",
                      "bad_dtype.onnx"].map(ImportFixtures.path) + [wrongSize]
        for model in models {
            let dir = try temporaryDirectory()
            let error = compileError {
                _ = try Compiler.compile(path: model, options: CompileOptions(), writingTo: dir + "/out.fmb")
            }
            XCTAssertEqual(error?.file, model)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "\(model) left files behind")
        }
    }

    // MARK: Helpers

    /// Writes a copy of the fixture `name`, edited through protobuf-c, to `directory` and returns its path.
    /// `edit` may change fields in place, or swap strings and arrays for ones from malloc (protobuf-c frees them).
    func editedFixture(_ name: String, in directory: String,
                       _ edit: (Onnx__ModelProto) throws -> Void) throws -> String {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: ImportFixtures.path(name)))
        let model = try XCTUnwrap(bytes.withUnsafeBytes { raw in
            onnx__model_proto__unpack(nil, raw.count, raw.bindMemory(to: UInt8.self).baseAddress)
        }, "\(name) does not unpack")
        defer { onnx__model_proto__free_unpacked(model, nil) }
        try edit(model.pointee)
        var out = [UInt8](repeating: 0, count: onnx__model_proto__get_packed_size(model))
        let written = out.withUnsafeMutableBufferPointer { onnx__model_proto__pack(model, $0.baseAddress!) }
        XCTAssertEqual(written, out.count)
        let path = directory + "/" + name
        try Data(out).write(to: URL(fileURLWithPath: path))
        return path
    }

    func firstInitializer(_ model: Onnx__ModelProto, rank: Int) throws -> UnsafeMutablePointer<Onnx__TensorProto> {
        let graph = try XCTUnwrap(model.graph?.pointee)
        let found = (0..<graph.n_initializer).lazy.compactMap { graph.initializer[$0] }
            .first { $0.pointee.n_dims == rank && $0.pointee.has_raw_data != 0 }
        return try XCTUnwrap(found, "no rank-\(rank) initializer with raw_data")
    }

    func firstExternalInitializer(_ model: Onnx__ModelProto) throws -> UnsafeMutablePointer<Onnx__TensorProto> {
        let graph = try XCTUnwrap(model.graph?.pointee)
        let found = (0..<graph.n_initializer).lazy.compactMap { graph.initializer[$0] }
            .first { $0.pointee.n_external_data > 0 }
        return try XCTUnwrap(found, "no initializer with external data")
    }

    /// Sets an existing external_data entry's value.
    func setExternalData(_ t: UnsafeMutablePointer<Onnx__TensorProto>, key: String, to value: String) throws {
        let entries = (0..<t.pointee.n_external_data).compactMap { t.pointee.external_data[$0] }
        let entry = try XCTUnwrap(entries.first { String(cString: $0.pointee.key) == key }, "no '\(key)' entry")
        free(entry.pointee.value)
        entry.pointee.value = strdup(value)
    }

    /// A fresh folder holding cnn_external.onnx's data file.
    func copyExternalFixture() throws -> String {
        let dir = try temporaryDirectory()
        try FileManager.default.copyItem(atPath: ImportFixtures.path("cnn_external.onnx.data"),
                                         toPath: dir + "/cnn_external.onnx.data")
        return dir
    }

    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "fm-malformed-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}
