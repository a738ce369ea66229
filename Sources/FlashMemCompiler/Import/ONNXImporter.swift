// ONNX → graph IR. Owned by the importer; the passes in IR/ (simplify, constant folding, shape inference) run
// on what it returns.
//
// The .onnx file is memory-mapped and unpacked with protobuf-c (COnnx). protobuf-c copies every bytes field while
// unpacking and refuses messages over 2 GiB, so the main graph's inline initializers are cut out of the message
// first (ONNXInlineData.swift) and become `TensorBytes` views of the mapped model file, as external tensors
// become views of their mapped data files: no weight is copied while importing.

import COnnx
// Imported for its `link "protobuf-c"`: COnnx is a C target, so only a Swift import of the system-library module
// makes the linker pull in libprotobuf-c.
import CProtobufC
import FMBFormat
import Foundation

public enum ONNXImporter {
    /// protobuf-c (like protobuf) cannot parse a message of 2 GiB or more.
    static let protobufLimit = Int(Int32.max)

    /// Reads an ONNX model: nodes in topological order, initializers (views of the mapped model file or of their
    /// external data files; tensors inside nodes and nested graphs copied: ONNXInlineData.swift), attributes (nested graphs converted the same way), inputs with their declared
    /// shapes, value_info and output types in `values`. It does not simplify or infer shapes: see
    /// `loadAndPrepare`.
    ///
    /// - Parameter inputShapes: per graph input, the full shape to use instead of the declared one (the CLI's
    ///   `--input-shape NAME=d0,d1,...`). It must name a real input, have the declared rank and agree with every
    ///   dimension the model declares statically.
    /// - Throws: `CompileError` naming the file (and node, tensor or input) for anything the compiler cannot use.
    public static func load(path: String, inputShapes: [String: [Int]] = [:]) throws -> Graph {
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch let error as FileError {
            throw CompileError(file: path, "cannot read the model: \(error.reason)")
        }
        if file.bytes.count >= protobufLimit {
            throw CompileError(file: path, "the model is \(file.bytes.count) bytes; protobuf-c cannot parse messages of "
                + "2 GiB or more: save the weights as ONNX external data (onnx.save_model(..., "
                + "save_as_external_data=True))")
        }
        let stripped = ONNXInlineData.strip(file.bytes)
        let unpacked = { (bytes: UnsafeRawBufferPointer) -> UnsafeMutablePointer<Onnx__ModelProto>? in
            guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
            return onnx__model_proto__unpack(nil, bytes.count, base)
        }
        guard let model = stripped.map({ $0.message.withUnsafeBytes(unpacked) }) ?? unpacked(file.bytes) else {
            throw CompileError(file: path, "not an ONNX model: protobuf parse failed")
        }
        defer { onnx__model_proto__free_unpacked(model, nil) }

        let opset = try defaultOpset(model.pointee, path: path)
        guard let graphProto = model.pointee.graph else {
            throw CompileError(file: path, "the model has no graph")
        }
        let converter = ONNXGraphConverter(path: path, opset: opset)
        let graph = try converter.graph(graphProto.pointee, outerScope: [],
                                        inlineData: stripped.map { (file, $0.rawData) })
        graph.sourceFiles = (stripped != nil ? [file] : []) + converter.dataFiles.keys.sorted().map { converter.dataFiles[$0]! }
        graph.releaseSourcePages()
        try applyInputShapes(inputShapes, to: graph)
        return graph
    }

    /// `load`, then the simplifications (`Graph.simplify`: Constant nodes to initializers, aliases removed,
    /// constant folding, dead nodes removed), then `inferShapes`: a graph with every value's static shape and
    /// dtype known, ready for lowering.
    ///
    /// - Parameter pinnedInputs: graph inputs fixed to values at compile time (the CLI's `--pin-input`); they
    ///   become initializers before simplification, so that what depends on them folds (PinnedInputs.swift).
    public static func loadAndPrepare(path: String, inputShapes: [String: [Int]] = [:],
                                      pinnedInputs: [String: [Double]] = [:]) throws -> Graph {
        try prepare(path: path, inputShapes: inputShapes, pinnedInputs: pinnedInputs).graph
    }

    /// `loadAndPrepare`, also counting the nodes simplification removed (folded, inlined, dead), nested graphs
    /// included.
    public static func prepare(path: String, inputShapes: [String: [Int]] = [:],
                               pinnedInputs: [String: [Double]] = [:]) throws -> (graph: Graph, foldedNodes: Int) {
        let graph = try load(path: path, inputShapes: inputShapes)
        try graph.pinInputs(pinnedInputs)
        let imported = graph.nodeCountIncludingNested
        try graph.simplify()
        try inferShapes(graph)
        return (graph, imported - graph.nodeCountIncludingNested)
    }

    // MARK: - Model-level fields

    /// The version of the default domain ("" or "ai.onnx") in opset_import.
    static func defaultOpset(_ model: Onnx__ModelProto, path: String) throws -> Int {
        var found: Int?
        for i in 0..<model.n_opset_import {
            guard let entry = model.opset_import[i]?.pointee else { continue }
            if isDefaultDomain(string(entry.domain)) {
                found = Int(entry.has_version != 0 ? entry.version : 1)
            }
        }
        guard let found else {
            throw CompileError(file: path, "the model imports no opset of the default ONNX domain")
        }
        return found
    }

    static func isDefaultDomain(_ domain: String) -> Bool { domain.isEmpty || domain == "ai.onnx" }

    // MARK: - Input shape overrides

    static func applyInputShapes(_ overrides: [String: [Int]], to graph: Graph) throws {
        // Sorted so that the first error reported does not depend on dictionary order.
        for (name, dims) in overrides.sorted(by: { $0.key < $1.key }) {
            guard let index = graph.inputs.firstIndex(where: { $0.name == name }) else {
                let real = graph.inputs.map(\.name).joined(separator: ", ")
                throw CompileError(file: graph.sourcePath,
                                   "--input-shape names '\(name)', which is not an input of the model (inputs: \(real))")
            }
            let spelled = "--input-shape \(name)=\(dims.map(String.init).joined(separator: ","))"
            if let bad = dims.first(where: { $0 < 0 }) {
                throw CompileError(file: graph.sourcePath, "\(spelled): dimension \(bad) is negative")
            }
            do {
                try ShapeRules.checkDimensions(dims)
            } catch let error as ShapeRuleError {
                throw CompileError(file: graph.sourcePath, "\(spelled): \(error.message)")
            }
            let declared = graph.inputs[index].shape
            if let declared {
                guard declared.count == dims.count else {
                    throw CompileError(file: graph.sourcePath, "\(spelled) has rank \(dims.count), but input '\(name)' "
                        + "has rank \(declared.count) (declared shape \(IRText.shape(declared)))")
                }
                for (axis, (d, given)) in zip(declared, dims).enumerated() {
                    if let d, d != given {
                        throw CompileError(file: graph.sourcePath, "\(spelled): dimension \(axis) of input '\(name)' "
                            + "is declared as \(d) (declared shape \(IRText.shape(declared)))")
                    }
                }
            }
            graph.inputs[index].shape = dims
            graph.values[name] = graph.inputs[index]
        }
    }

    // MARK: - C string helpers

    static func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }
}

/// Shapes spelled for error messages: `[3, ?, 37]`.
enum IRText {
    static func shape(_ shape: [Int?]) -> String {
        "[" + shape.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]"
    }

    static func shape(_ shape: [Int]) -> String {
        "[" + shape.map(String.init).joined(separator: ", ") + "]"
    }
}
