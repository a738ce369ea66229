// The ONNX importer on the fixture models (Tests/Fixtures/make_fixtures.py): shapes against onnx's own
// inference, external data as views, typed initializer fields, input-shape overrides, and errors that name
// the file, node and op.

@testable import FlashMemCompiler
import Foundation
import XCTest
import TestSupport

final class ONNXImportTests: XCTestCase {
    // MARK: - Good models

    func testMLPShapesMatchONNX() throws {
        let graph = try ONNXImporter.loadAndPrepare(path: ImportFixtures.path("mlp.onnx"))
        XCTAssertEqual(graph.opset, 17)
        XCTAssertEqual(graph.nodes.map(\.opType), ["MatMul", "Add", "Relu", "Gemm", "Softmax"])
        XCTAssertEqual(graph.inputs.map(\.name), ["x"])
        XCTAssertEqual(Set(graph.initializers.keys), ["W1", "b1", "W2", "b2"])
        XCTAssertEqual(graph.outputs.map(\.name), ["y"])
        XCTAssertEqual(graph.outputs.first?.staticShape, [3, 29])
        XCTAssertEqual(graph.nodes[3].int("transB", default: 0), 1)
        XCTAssertEqual(graph.nodes[4].int("axis", default: 0), -1)
        try assertShapesMatchONNX(graph, model: "mlp")
    }

    func testCNNShapesMatchONNX() throws {
        let graph = try ONNXImporter.loadAndPrepare(path: ImportFixtures.path("cnn.onnx"))
        XCTAssertEqual(graph.nodes.map(\.opType), [
            "Conv", "Relu", "Conv", "Add", "Mul", "MaxPool", "Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm",
            "Reshape", "Softmax",
        ])
        // The Constant node became an initializer with its values.
        let scale = try XCTUnwrap(graph.initializers["scale"])
        XCTAssertEqual(scale.shape, [1, 8, 1, 1])
        XCTAssertEqual(scale.floats(), (0..<8).map { 1 + 0.1 * Float($0) })
        XCTAssertEqual(graph.values["c2"]?.staticShape, [1, 8, 17, 15])
        XCTAssertEqual(graph.values["p"]?.staticShape, [1, 8, 9, 8])
        XCTAssertEqual(graph.outputs.first?.staticShape, [1, 2, 5])
        try assertShapesMatchONNX(graph, model: "cnn")
    }

    func testExternalDataIsMappedNotCopied() throws {
        let external = try ONNXImporter.loadAndPrepare(path: ImportFixtures.path("cnn_external.onnx"))
        let inline = try ONNXImporter.loadAndPrepare(path: ImportFixtures.path("cnn.onnx"))
        try assertShapesMatchONNX(external, model: "cnn_external")
        XCTAssertEqual(Set(external.initializers.keys), Set(inline.initializers.keys))

        let dataFile = ImportFixtures.path("cnn_external.onnx.data")
        let mappings = try Self.mappings(of: dataFile)
        XCTAssertFalse(mappings.isEmpty, "the data file is not mapped")
        var views = 0
        for (name, tensor) in external.initializers.sorted(by: { $0.key < $1.key }) {
            let reference = try XCTUnwrap(inline.initializers[name])
            XCTAssertEqual(tensor.shape, reference.shape, name)
            XCTAssertEqual(Array(tensor.bytes.pointer), Array(reference.bytes.pointer), name)
            let address = UInt(bitPattern: tensor.bytes.pointer.baseAddress)
            let inMapping = mappings.contains { $0.contains(address) && $0.contains(address + UInt(tensor.bytes.count) - 1) }
            // reshape.shape stays inline (see make_fixtures.py), scale is a Constant node's value.
            if name == "reshape.shape" || name == "scale" {
                XCTAssertFalse(inMapping, name)
            } else {
                XCTAssertTrue(inMapping, "\(name) is not a view of \(dataFile)")
                views += 1
            }
        }
        XCTAssertEqual(views, 8)
    }

    /// Address ranges of /proc/self/maps entries that map `path`.
    static func mappings(of path: String) throws -> [ClosedRange<UInt>] {
        // /proc files report size 0: read to the end rather than trusting the size.
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/self/maps"))
        defer { try? handle.close() }
        let maps = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        return maps.split(separator: "\n").compactMap { line in
            guard line.hasSuffix(resolved) || line.hasSuffix(path) else { return nil }
            let bounds = line.split(separator: " ")[0].split(separator: "-")
            guard bounds.count == 2, let lo = UInt(bounds[0], radix: 16), let hi = UInt(bounds[1], radix: 16) else {
                return nil
            }
            return lo...(hi - 1)
        }
    }

    func testTypedFieldInitializers() throws {
        let graph = try ONNXImporter.load(path: ImportFixtures.path("typed_fields.onnx"))
        // w_f32 is listed among the graph inputs too (old exporters did that): it is a constant, not an input.
        XCTAssertEqual(graph.inputs.map(\.name), ["x"])
        let f32 = try XCTUnwrap(graph.initializers["w_f32"])
        XCTAssertEqual(f32.dtype, .float32)
        XCTAssertEqual(f32.shape, [2, 4])
        XCTAssertEqual(f32.floats(), [1, 2, 3, 4, -1, -2, -3, -4])
        let f16 = try XCTUnwrap(graph.initializers["w_f16"])
        XCTAssertEqual(f16.dtype, .float16)
        XCTAssertEqual(f16.bytes.count, 16)
        XCTAssertEqual(f16.floats(), [0.5, -1, 2, 0.25, 1.5, -0.125, 3, -2.5])
        let f64 = try XCTUnwrap(graph.initializers["w_f64"])
        XCTAssertEqual(f64.dtype, .float64)
        XCTAssertEqual(f64.reals(), [0.5, 1.5, -2.5, 8])
        XCTAssertEqual(graph.initializers["shape_i64"]?.ints(), [4, 2])
        XCTAssertEqual(graph.initializers["shape_i64"]?.dtype, .int64)
        XCTAssertEqual(graph.initializers["w_i32"]?.ints(), [7, -8, 9])
        XCTAssertEqual(graph.initializers["w_i32"]?.dtype, .int32)

        try graph.simplify()
        try inferShapes(graph)
        // The Casts of constants fold; the unused int32 initializer goes.
        XCTAssertEqual(graph.nodes.map(\.opType), ["Mul", "Add", "Add", "Reshape"])
        XCTAssertNil(graph.initializers["w_i32"])
        XCTAssertEqual(graph.initializers["w_f16_as_f32"]?.dtype, .float32)
        XCTAssertEqual(graph.initializers["w_f16_as_f32"]?.floats(), [0.5, -1, 2, 0.25, 1.5, -0.125, 3, -2.5])
        XCTAssertEqual(graph.initializers["w_f64_as_f32"]?.floats(), [0.5, 1.5, -2.5, 8])
        try assertShapesMatchONNX(graph, model: "typed_fields")
    }

    // MARK: - Dynamic shapes and overrides

    func testDynamicInputNeedsAShape() throws {
        let path = ImportFixtures.path("dynamic.onnx")
        let raw = try ONNXImporter.load(path: path)
        XCTAssertEqual(raw.inputs.first?.shape?.count, 2)
        XCTAssertNil(raw.inputs.first?.shape?[0] ?? nil)
        XCTAssertEqual(raw.inputs.first?.shape?[1], 16)
        let error = compileError { _ = try ONNXImporter.loadAndPrepare(path: path) }
        XCTAssertEqual(error?.file, path)
        XCTAssertTrue(error?.description.contains("input 'x'") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.description.contains("--input-shape x=?,16") ?? false, "\(String(describing: error))")
    }

    func testInputShapeOverrideFoldsShapeArithmetic() throws {
        let graph = try ONNXImporter.loadAndPrepare(path: ImportFixtures.path("dynamic.onnx"), inputShapes: ["x": [3, 16]])
        // Identity and Dropout removed, Shape→Gather→Unsqueeze→Concat folded, the dead Relu gone.
        XCTAssertEqual(graph.nodes.map(\.opType), ["MatMul", "Relu", "Reshape", "Softmax"])
        XCTAssertEqual(graph.nodes[1].inputs, ["h"])
        XCTAssertEqual(graph.nodes[3].inputs, ["r3"])
        let target = try XCTUnwrap(graph.initializers[graph.nodes[2].inputs[1]])
        XCTAssertEqual(target.dtype, .int64)
        XCTAssertEqual(target.ints(), [3, 2, 4])
        XCTAssertEqual(Set(graph.initializers.keys), ["W", "target"])
        XCTAssertEqual(graph.outputs.first?.staticShape, [3, 2, 4])
        try assertShapesMatchONNX(graph, model: "dynamic")
    }

    func testOverridesAreChecked() throws {
        let mlp = ImportFixtures.path("mlp.onnx")
        let unknown = compileError { _ = try ONNXImporter.load(path: mlp, inputShapes: ["nope": [1, 2]]) }
        XCTAssertTrue(unknown?.message.contains("'nope'") ?? false)
        XCTAssertTrue(unknown?.message.contains("inputs: x") ?? false, "\(String(describing: unknown))")

        let rank = compileError { _ = try ONNXImporter.load(path: mlp, inputShapes: ["x": [111]]) }
        XCTAssertTrue(rank?.message.contains("input 'x'") ?? false, "\(String(describing: rank))")
        XCTAssertTrue(rank?.message.contains("rank") ?? false)

        let fixed = compileError { _ = try ONNXImporter.load(path: mlp, inputShapes: ["x": [5, 37]]) }
        XCTAssertTrue(fixed?.message.contains("dimension 0 of input 'x' is declared as 3") ?? false,
                      "\(String(describing: fixed))")

        let dynamic = ImportFixtures.path("dynamic.onnx")
        let wrongTail = compileError { _ = try ONNXImporter.load(path: dynamic, inputShapes: ["x": [2, 17]]) }
        XCTAssertTrue(wrongTail?.message.contains("declared as 16") ?? false, "\(String(describing: wrongTail))")

        let graph = try ONNXImporter.load(path: dynamic, inputShapes: ["x": [7, 16]])
        XCTAssertEqual(graph.inputs.first?.staticShape, [7, 16])
        try graph.simplify()
        try inferShapes(graph)
        XCTAssertEqual(graph.outputs.first?.staticShape, [7, 2, 4])
    }

    // MARK: - Bad models

    func testTruncatedModel() {
        let path = ImportFixtures.path("bad_truncated.onnx")
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertEqual(error?.file, path)
        XCTAssertTrue(error?.description.contains("bad_truncated.onnx") ?? false)
        XCTAssertTrue(error?.message.contains("not an ONNX model: protobuf parse failed") ?? false)
    }

    func testMissingAndEmptyFiles() throws {
        let missing = ImportFixtures.path("no_such_model.onnx")
        let error = compileError { _ = try ONNXImporter.load(path: missing) }
        XCTAssertTrue(error?.description.contains("no_such_model.onnx") ?? false)

        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("fm-empty-\(getpid()).onnx").path
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let emptyError = compileError { _ = try ONNXImporter.load(path: empty) }
        XCTAssertTrue(emptyError?.message.contains("not an ONNX model") ?? false, "\(String(describing: emptyError))")
    }

    func testModelsOver2GiBAskForExternalData() throws {
        // A sparse file: the size check comes before any parsing, so nothing is read.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fm-huge-\(getpid()).onnx").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 1 << 31)
        try handle.close()
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertEqual(error?.file, path)
        XCTAssertTrue(error?.message.contains("2 GiB") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("external data") ?? false)
    }

    func testUnsupportedOperator() throws {
        let path = ImportFixtures.path("bad_unsupported_op.onnx")
        // Import itself is fine: the op is only refused by shape inference, after the simplifications.
        _ = try ONNXImporter.load(path: path)
        let error = compileError { _ = try ONNXImporter.loadAndPrepare(path: path) }
        XCTAssertEqual(error?.node, "my_det")
        XCTAssertEqual(error?.op, "Det")
        XCTAssertEqual(error?.message, "unsupported operator")
        XCTAssertEqual(error?.description, "\(path): node 'my_det' (Det): unsupported operator")
    }

    func testUndefinedInput() {
        let path = ImportFixtures.path("bad_missing_input.onnx")
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertEqual(error?.node, "my_add")
        XCTAssertEqual(error?.op, "Add")
        XCTAssertTrue(error?.message.contains("'undefined_value'") ?? false)
        XCTAssertTrue(error?.description.hasPrefix(path) ?? false)
    }

    func testCycle() {
        let path = ImportFixtures.path("bad_cycle.onnx")
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertTrue(["cyc_a", "cyc_b"].contains(error?.node ?? ""), "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("cycle") ?? false)
        XCTAssertTrue(error?.description.hasPrefix(path) ?? false)
    }

    func testCustomDomain() {
        let path = ImportFixtures.path("bad_custom_domain.onnx")
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertEqual(error?.node, "my_foo")
        XCTAssertEqual(error?.op, "Foo")
        XCTAssertTrue(error?.message.contains("com.example") ?? false)
    }

    func testUnsupportedDType() {
        let path = ImportFixtures.path("bad_dtype.onnx")
        let error = compileError { _ = try ONNXImporter.load(path: path) }
        XCTAssertTrue(error?.description.hasPrefix(path) ?? false)
        XCTAssertTrue(error?.message.contains("'w_u16'") ?? false)
        XCTAssertTrue(error?.message.contains("UINT16") ?? false)
    }

    func testExternalDataErrors() {
        let missing = compileError {
            _ = try ONNXImporter.load(path: ImportFixtures.path("bad_external_missing.onnx"))
        }
        XCTAssertTrue(missing?.message.contains("'w_ext'") ?? false)
        XCTAssertTrue(missing?.message.contains("missing.onnx.data") ?? false, "\(String(describing: missing))")

        let range = compileError {
            _ = try ONNXImporter.load(path: ImportFixtures.path("bad_external_range.onnx"))
        }
        XCTAssertTrue(range?.message.contains("'w_ext'") ?? false)
        XCTAssertTrue(range?.message.contains("cnn_external.onnx.data") ?? false, "\(String(describing: range))")
        XCTAssertTrue(range?.message.contains("beyond the end") ?? false)
    }
}
