import FMBFormat
import Foundation
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

/// Outputs no kernel writes, end to end: graph outputs folded to constants (resident tensors of the bundle,
/// uploaded once per session) in every element type the runtime exchanges, a graph input or an initializer as
/// an output, one tensor behind two outputs (an alias, or the same name twice), and zero-size inputs and
/// outputs (no bytes in the arena, no copy), through a Session (streaming and preload, both precisions,
/// several runs) and through fmrun's .npy files.
final class ConstantAndEmptyOutputTests: XCTestCase {
    private func node(_ name: String, _ op: String, _ inputs: [String], _ outputs: [String],
                      _ attributes: [String: Attribute] = [:]) -> Node {
        Node(name: name, opType: op, inputs: inputs, outputs: outputs, attributes: attributes)
    }

    private static func int64(_ values: [Int], shape: [Int]? = nil) -> ConstantTensor {
        .make(dtype: .int64, shape: shape ?? [values.count], integers: values)
    }

    /// Simplifies, infers and lowers `graph`, then assembles the bundle in memory.
    private func assemble(_ graph: Graph, precision: Precision) throws -> CompiledModel {
        try graph.simplify()
        try inferShapes(graph)
        let program = try Lowering.lower(graph, precision: precision)
        return try Compiler.assemble(program, name: graph.name, options: CompileOptions())
    }

    private func compile(_ graph: Graph, precision: Precision) throws -> LoadedBundle {
        let compiled = try assemble(graph, precision: precision)
        return LoadedBundle(bundle: compiled.bundle, payload: compiled.payload)
    }

    private func graph(_ name: String, inputs: [ValueInfo], nodes: [Node], initializers: [String: ConstantTensor],
                       outputs: [String]) -> Graph {
        var values = Dictionary(uniqueKeysWithValues: inputs.map { ($0.name, $0) })
        for (k, t) in initializers { values[k] = ValueInfo(name: k, dtype: t.dtype, shape: t.shape) }
        return Graph(name: name, nodes: nodes, inputs: inputs,
                     outputs: outputs.map { ValueInfo(name: $0, dtype: .float32, shape: nil) },
                     initializers: initializers, values: values, opset: 17, sourcePath: "<\(name) test>")
    }

    // MARK: - Constant outputs

    private func constantOutputGraph() -> Graph {
        let half = ConstantTensor.make(dtype: .float16, shape: [1], reals: [1.5])
        return graph("constants", inputs: [ValueInfo(name: "x", dtype: .float32, shape: [2, 3])], nodes: [
            node("shape", "Shape", ["x"], ["shape"]),
            node("size", "Size", ["x"], ["size"]),
            node("range", "Range", ["r0", "r1", "r2"], ["range32"]),
            node("cos", "ConstantOfShape", ["cshape"], ["half"], ["value": .tensor(half)]),
            node("drop", "Dropout", ["x"], ["d", "mask"]),
            node("relu", "Relu", ["d"], ["y"]),
            node("alias", "Identity", ["y"], ["y2"]),
        ], initializers: [
            "r0": .make(dtype: .int32, shape: [], integers: [1]), "r1": .make(dtype: .int32, shape: [], integers: [10]),
            "r2": .make(dtype: .int32, shape: [], integers: [3]), "cshape": Self.int64([2, 2]),
            "w": .make(dtype: .float32, shape: [3], reals: [0.25, -8, 1e30]),
            "extremes": Self.int64([-5, Int(Int32.max), Int(Int32.min)]),
        ], outputs: ["shape", "size", "range32", "half", "mask", "y", "y2", "w", "x", "extremes", "y", "shape"])
    }

    func testConstantOutputsComeBackInEveryElementType() throws {
        for precision in Precision.allCases {
            let bundle = try compile(constantOutputGraph(), precision: precision)
            XCTAssertEqual(bundle.bundle.program.count, 1, "only the Relu runs")
            var results: [LoadMode: [[HostTensor]]] = [:]
            for mode in LoadMode.allCases {
                let session = try Session(bundle: bundle, device: device(), options: SessionOptions(loadMode: mode))
                for run in 0..<2 {
                    let x: [Float] = run == 0 ? [-1, 2, -3, 4, -5, 6] : [7, -8, 9, -10, 11, -12]
                    let out = try session.run(inputs: [HostTensor(name: "x", shape: [2, 3], floats: x)])
                    let label = "\(precision) \(mode) run \(run)"
                    checkConstantOutputs(out, x: x, label: label)
                    results[mode, default: []].append(out)
                }
            }
            XCTAssertEqual(results[.streaming], results[.preload], "\(precision): streaming != preload")
        }
    }

    private func checkConstantOutputs(_ out: [HostTensor], x: [Float], label: String) {
        XCTAssertEqual(out.map(\.name), ["shape", "size", "range32", "half", "mask", "y", "y2", "w", "x", "extremes",
                                         "y", "shape"])
        guard out.count == 12 else { return }
        let relu = x.map { max($0, 0) }
        XCTAssertEqual(out[0].elementType, .int64, label)
        XCTAssertEqual(out[0].int64s(), [2, 3], label)
        XCTAssertEqual(out[1].shape, [], label)
        XCTAssertEqual(out[1].int64s(), [6], label)
        XCTAssertEqual(out[2].elementType, .int32, label)
        XCTAssertEqual(out[2].int64s(), [1, 4, 7], label)
        XCTAssertEqual(out[3].elementType, .float16, label)
        XCTAssertEqual(out[3].shape, [2, 2], label)
        XCTAssertEqual(out[3].floats(), [1.5, 1.5, 1.5, 1.5], label)
        XCTAssertEqual(out[4].elementType, .bool, label)
        XCTAssertEqual(out[4].shape, [2, 3], label)
        XCTAssertEqual(out[4].bytes, [1, 1, 1, 1, 1, 1], label)
        XCTAssertEqual(out[5].floats(), relu, label)
        XCTAssertEqual(out[6].floats(), relu, "\(label): the second output of one tensor")
        XCTAssertEqual(out[7].floats(), [0.25, -8, 1e30], label)
        XCTAssertEqual(out[8].floats(), x, "\(label): a graph input as output")
        XCTAssertEqual(out[9].elementType, .int64, label)
        XCTAssertEqual(out[9].int64s(), [-5, Int64(Int32.max), Int64(Int32.min)], label)
        XCTAssertEqual(out[10], out[5], "\(label): one computed tensor listed twice")
        XCTAssertEqual(out[11], out[0], "\(label): one constant listed twice")
    }

    // MARK: - Zero-size tensors

    private func emptyGraph() -> Graph {
        graph("empty", inputs: [ValueInfo(name: "x", dtype: .float32, shape: [3, 0, 5]),
                                ValueInfo(name: "z", dtype: .float32, shape: [4])], nodes: [
            node("relu", "Relu", ["x"], ["e"]),
            node("sum", "ReduceSum", ["x", "axes"], ["sum"]),
            node("max", "ReduceMax", ["x"], ["max"], ["axes": .ints([1]), "keepdims": .int(0)]),
            node("zr", "Relu", ["z"], ["zr"]),
            node("split", "Split", ["zr", "parts"], ["s0", "s1"]),
            node("xs", "Shape", ["x"], ["xs"]),
            node("none", "Shape", ["x"], ["noDims"], ["start": .int(1), "end": .int(1)]),
        ], initializers: ["axes": Self.int64([1]), "parts": Self.int64([0, 4])],
           outputs: ["e", "sum", "max", "s0", "s1", "xs", "noDims", "x"])
    }

    private let z: [Float] = [-0.5, 1.25, -3, 4]

    func testEmptyInputsAndOutputs() throws {
        for precision in Precision.allCases {
            let bundle = try compile(emptyGraph(), precision: precision)
            XCTAssertFalse(bundle.bundle.tensors.contains { $0.size == 0 && $0.constant.map { $0.size > 0 } == true })
            var results: [LoadMode: [HostTensor]] = [:]
            for mode in LoadMode.allCases {
                let session = try Session(bundle: bundle, device: device(), options: SessionOptions(loadMode: mode))
                for _ in 0..<2 {
                    let out = try session.run(inputs: [HostTensor(name: "x", shape: [3, 0, 5], floats: []),
                                                       HostTensor(name: "z", shape: [4], floats: z)])
                    checkEmptyOutputs(out, label: "\(precision) \(mode)")
                    results[mode] = out
                }
            }
            XCTAssertEqual(results[.streaming], results[.preload], "\(precision): streaming != preload")
        }
    }

    private func checkEmptyOutputs(_ out: [HostTensor], label: String) {
        XCTAssertEqual(out.map(\.name), ["e", "sum", "max", "s0", "s1", "xs", "noDims", "x"], label)
        guard out.count == 8 else { return }
        let expectedShapes: [[Int]] = [[3, 0, 5], [3, 1, 5], [3, 5], [0], [4], [3], [0], [3, 0, 5]]
        XCTAssertEqual(out.map(\.shape), expectedShapes, label)
        for i in [0, 3, 6, 7] { XCTAssertEqual(out[i].bytes, [], "\(label): \(out[i].name) has no bytes") }
        XCTAssertEqual(out[1].floats(), [Float](repeating: 0, count: 15), "\(label): sum over an empty set")
        XCTAssertEqual(out[2].floats(), [Float](repeating: -.infinity, count: 15), "\(label): max over an empty set")
        XCTAssertEqual(out[4].floats(), z.map { max($0, 0) }, label)
        XCTAssertEqual(out[5].int64s(), [3, 0, 5], label)
        XCTAssertEqual(out[6].elementType, .int64, label)
    }

    func testFMRunReadsAndWritesEmptyTensors() throws {
        // Beside the test bundle (macOS) or the test executable (Linux), as FMRunTests looks for it.
        let bundle = Bundle(for: Self.self).bundleURL
        let candidates = [bundle, bundle.deletingLastPathComponent()].map { $0.appendingPathComponent("fmrun") }
        guard let fmrun = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("fmrun not built")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fmrun-empty-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let compiled = try assemble(emptyGraph(), precision: .fp32)
        let bundlePath = dir.appendingPathComponent("empty.fmb").path
        try BundleWriter.write(compiled.bundle, payload: compiled.payload, to: bundlePath)
        let xPath = dir.appendingPathComponent("x.npy").path, zPath = dir.appendingPathComponent("z.npy").path
        try NPY.write(HostTensor(name: "x", shape: [3, 0, 5], floats: []), path: xPath)
        try NPY.write(HostTensor(name: "z", shape: [4], floats: z), path: zPath)
        let outDir = dir.appendingPathComponent("out").path

        let process = Process()
        process.executableURL = fmrun
        process.arguments = [bundlePath, "--input", "x=\(xPath)", "--input", "z=\(zPath)", "--output-dir", outDir]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, stderr)

        let out = try ["e", "sum", "max", "s0", "s1", "xs", "noDims", "x"].map { try NPY.read(path: "\(outDir)/\($0).npy") }
        checkEmptyOutputs(out, label: "fmrun")
    }

    func testNPYRoundTripsEmptyAndScalarTensors() throws {
        for type in [ElementType.float32, .float16, .int64, .int32, .bool] {
            for shape in [[0], [3, 0, 5], [2, 0], []] {
                let bytes = [UInt8](repeating: 1, count: shape.reduce(1, *) * type.byteSize)
                let tensor = HostTensor(name: "", elementType: type, shape: shape, bytes: bytes)
                let decoded = try NPY.decode(NPY.encode(tensor))
                XCTAssertEqual(decoded, tensor, "\(type) \(shape)")
            }
        }
    }
}
