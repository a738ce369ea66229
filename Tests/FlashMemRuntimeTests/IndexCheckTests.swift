import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime
import TestSupport

/// Out-of-range Gather indices (a token id past the vocabulary) fail the run naming the node, as onnxruntime does,
/// instead of giving plausible outputs: the kernels flag them on the device (`FMBundle.checks`), the session reads
/// the flags back after the run.
final class IndexCheckTests: XCTestCase {
    /// Gather of `data` (a graph input, or a constant table when `table` is given) by graph input `i`.
    func bundle(dataShape: [Int], indexShape: [Int], axis: Int, table: [Double]? = nil) throws -> LoadedBundle {
        let node = Node(name: "lookup", opType: "Gather", inputs: ["x", "i"], outputs: ["y"], attributes: ["axis": .int(axis)])
        var inputs = [ValueInfo(name: "i", dtype: .int64, shape: indexShape)]
        var initializers: [String: ConstantTensor] = [:]
        if let table {
            initializers["x"] = .make(dtype: .float32, shape: dataShape, reals: table)
        } else {
            inputs.insert(ValueInfo(name: "x", dtype: .float32, shape: dataShape), at: 0)
        }
        let values = inputs + initializers.map { ValueInfo(name: $0.key, dtype: $0.value.dtype, shape: $0.value.shape) }
        let graph = Graph(name: "gather", nodes: [node], inputs: inputs,
                          outputs: [ValueInfo(name: "y", dtype: .float32, shape: nil)], initializers: initializers,
                          values: Dictionary(uniqueKeysWithValues: values.map { ($0.name, $0) }), opset: 17,
                          sourcePath: "<gather test>")
        try graph.simplify()
        try inferShapes(graph)
        let compiled = try Compiler.assemble(try Lowering.lower(graph, precision: .fp32), name: "gather",
                                             options: .smallChunks)
        XCTAssertEqual(compiled.bundle.checks.count, 1)
        // Through the file format: the checks section round-trips.
        let file = try BundleWriter.serialize(compiled.bundle, payload: compiled.payload)
        let loaded = try BundleReader.load(bytes: file, path: "gather.fmb")
        XCTAssertEqual(loaded.bundle.checks, compiled.bundle.checks)
        return loaded
    }

    func assertIndexChecked(_ loaded: LoadedBundle, data: HostTensor?, indexShape: [Int], axisDim: Int) throws {
        for mode in LoadMode.allCases {
            let session = try Session(bundle: loaded, device: device(), options: SessionOptions(loadMode: mode))
            func run(_ ids: [Int64]) throws -> [HostTensor] {
                try session.run(inputs: (data.map { [$0] } ?? []) + [HostTensor(name: "i", shape: indexShape, int64s: ids)])
            }
            let count = indexShape.reduce(1, *)
            let valid = (0..<count).map { Int64($0 % axisDim) - ($0 == 1 ? Int64(axisDim) : 0) }  // one negative
            let good = try run(valid)
            for bad in [Int64(axisDim), Int64(axisDim + 1000), Int64(-axisDim - 1)] {
                var ids = valid
                ids[count - 1] = bad
                XCTAssertThrowsError(try run(ids), "\(mode) index \(bad)") { error in
                    guard case let .checkFailed(path, node, reason)? = error as? RuntimeError else {
                        return XCTFail("\(mode) index \(bad): \(error)")
                    }
                    XCTAssertEqual(path, "gather.fmb")
                    XCTAssertEqual(node, "Gather 'lookup'")
                    XCTAssertTrue(reason.contains("index \(bad) is out of range") && reason.contains("[-\(axisDim), \(axisDim - 1)]"),
                                  reason)
                }
            }
            // The flags are cleared for every run: valid indices run again, with the same outputs.
            XCTAssertEqual(try run(valid)[0].bytes, good[0].bytes, "\(mode)")
        }
    }

    func testGatherOfARuntimeTensorFlagsOutOfRangeIndices() throws {
        var rng = SplitMix(seed: 5)
        let x = HostTensor(name: "x", shape: [4, 5, 3], floats: (0..<60).map { _ in rng.float(in: -1...1) })
        try assertIndexChecked(bundle(dataShape: [4, 5, 3], indexShape: [2, 3], axis: 1), data: x, indexShape: [2, 3],
                               axisDim: 5)
    }

    /// An embedding table streamed as a weight image (cut into row pieces by the small chunk options or not).
    func testEmbeddingLookupFlagsATokenIdPastTheVocabulary() throws {
        var rng = SplitMix(seed: 6)
        let table = (0..<(331 * 13)).map { _ in Double(rng.float(in: -1...1)) }
        let loaded = try bundle(dataShape: [331, 13], indexShape: [2, 5], axis: 0, table: table)
        XCTAssertFalse(loaded.bundle.images.isEmpty, "the table is a weight image")
        try assertIndexChecked(loaded, data: nil, indexShape: [2, 5], axisDim: 331)
    }
}
