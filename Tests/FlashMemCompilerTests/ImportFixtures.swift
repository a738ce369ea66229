// Locates the ONNX fixtures written by Tests/Fixtures/make_fixtures.py and reads their shapes.json (onnx's own
// shape inference), for the importer and shape-inference tests.

import FlashMemCompiler
import Foundation
import XCTest

enum ImportFixtures {
    /// Tests/Fixtures/models, found from this file's path (fixtures are not SwiftPM resources).
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
        .appendingPathComponent("models")

    static func path(_ file: String) -> String {
        directory.appendingPathComponent(file).path
    }

    /// NAME.shapes.json: value name → (ONNX dtype, shape).
    static func expectedShapes(_ model: String) throws -> [String: (dtype: Int32, shape: [Int])] {
        let data = try Data(contentsOf: directory.appendingPathComponent("\(model).shapes.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        var shapes: [String: (dtype: Int32, shape: [Int])] = [:]
        for (name, entry) in json {
            let dtype = try XCTUnwrap(entry["dtype"] as? Int, name)
            let shape = try XCTUnwrap(entry["shape"] as? [Int], "\(name) has a dynamic shape in shapes.json")
            shapes[name] = (Int32(dtype), shape)
        }
        return shapes
    }
}

/// Every value of `graph` (node outputs, inputs, initializers) has the static shape and dtype onnx infers, and
/// every node output is known.
func assertShapesMatchONNX(_ graph: Graph, model: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let expected = try ImportFixtures.expectedShapes(model)
    var names = Set(graph.inputs.map(\.name)).union(graph.initializers.keys)
    for node in graph.nodes { names.formUnion(node.outputs.filter { !$0.isEmpty }) }
    for name in names.sorted() {
        guard let info = graph.values[name], let shape = info.staticShape else {
            XCTFail("value '\(name)' has no static shape", file: file, line: line)
            continue
        }
        guard let reference = expected[name] else {
            XCTFail("value '\(name)' is not in \(model).shapes.json", file: file, line: line)
            continue
        }
        XCTAssertEqual(shape, reference.shape, "shape of '\(name)'", file: file, line: line)
        XCTAssertEqual(info.dtype.rawValue, reference.dtype, "dtype of '\(name)'", file: file, line: line)
    }
    for output in graph.outputs {
        XCTAssertEqual(output.staticShape, expected[output.name]?.shape, "graph output '\(output.name)'",
                       file: file, line: line)
    }
}

/// Hand-built graphs for the pass tests.
enum TestGraphs {
    /// A graph over float32 inputs (shape nil entries are dynamic); outputs start untyped.
    static func make(inputs: [(String, [Int?])], nodes: [Node], initializers: [String: ConstantTensor] = [:],
                     outputs: [String], opset: Int = 17, dtype: DType = .float32) -> Graph {
        let inputInfos = inputs.map { ValueInfo(name: $0.0, dtype: dtype, shape: $0.1) }
        var values: [String: ValueInfo] = [:]
        for info in inputInfos { values[info.name] = info }
        for (name, t) in initializers { values[name] = ValueInfo(name: name, dtype: t.dtype, shape: t.shape) }
        return Graph(name: "test", nodes: nodes, inputs: inputInfos,
                     outputs: outputs.map { ValueInfo(name: $0, dtype: .float32, shape: nil) },
                     initializers: initializers, values: values, opset: opset, sourcePath: "test.onnx")
    }

    static func int64(_ values: [Int], shape: [Int]? = nil) -> ConstantTensor {
        .make(dtype: .int64, shape: shape ?? [values.count], integers: values)
    }

    static func float32(_ values: [Double], shape: [Int]? = nil) -> ConstantTensor {
        .make(dtype: .float32, shape: shape ?? [values.count], reals: values)
    }

    static func zeros(_ shape: [Int]) -> ConstantTensor {
        .make(dtype: .float32, shape: shape, reals: [Double](repeating: 0, count: shape.reduce(1, *)))
    }

    /// Infers shapes of a one-node graph and returns its output shape(s).
    static func inferOne(_ node: Node, inputs: [(String, [Int?])], initializers: [String: ConstantTensor] = [:],
                         opset: Int = 17) throws -> [[Int]] {
        let graph = make(inputs: inputs, nodes: [node], initializers: initializers,
                         outputs: node.outputs.filter { !$0.isEmpty }, opset: opset)
        try inferShapes(graph)
        return node.outputs.filter { !$0.isEmpty }.map { graph.values[$0]?.staticShape ?? [-1] }
    }
}
