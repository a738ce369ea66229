// What the harness needs to know about a node test's model.onnx before compiling it: its top-level nodes
// (to name the test's operator and find shape operands) and the declared types of its inputs and outputs (to
// decline dtypes and non-tensor types before the compiler sees them). Owned by fmc-conformance; read with
// protobuf-c, independently of the compiler's importer.

import COnnx
import CProtobufC
import Foundation

/// A graph input or output as the model declares it.
struct DeclaredValue {
    enum Kind: String {
        case tensor, sequence, map, optional, sparseTensor = "sparse tensor", opaque, unknown
    }

    var name: String
    var kind: Kind
    /// ONNX TensorProto.DataType of a tensor value (0 when not declared or not a tensor).
    var dtype: Int32
}

struct ModelNode {
    var opType: String
    var domain: String
    var inputs: [String]

    /// "Op" for the default domain, "domain::Op" otherwise (the materialize script's spelling).
    var qualifiedOp: String {
        domain.isEmpty || domain == "ai.onnx" ? opType : "\(domain)::\(opType)"
    }
}

struct ModelInfo {
    var nodes: [ModelNode]
    var inputs: [DeclaredValue]
    var outputs: [DeclaredValue]
    var initializers: Set<String>

    /// The test's operator: the op of its top-level node, or the ops of several joined with "+" (e.g. an
    /// `_expanded` model, whose operator is taken from the test it expands instead; see `NodeTest`).
    var operatorName: String {
        var seen: [String] = []
        for node in nodes where !seen.contains(node.qualifiedOp) { seen.append(node.qualifiedOp) }
        return seen.isEmpty ? "(no node)" : seen.joined(separator: "+")
    }

    static func read(path: String) throws -> ModelInfo {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TestDataError(path: path, reason: "cannot read the model")
        }
        return try data.withUnsafeBytes { raw -> ModelInfo in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self),
                  let model = onnx__model_proto__unpack(nil, raw.count, base) else {
                throw TestDataError(path: path, reason: "not an ONNX model (protobuf parse failed)")
            }
            defer { onnx__model_proto__free_unpacked(model, nil) }
            guard let graph = model.pointee.graph?.pointee else {
                throw TestDataError(path: path, reason: "the model has no graph")
            }
            return ModelInfo(graph)
        }
    }

    init(_ graph: Onnx__GraphProto) {
        nodes = (0..<graph.n_node).compactMap { i in
            guard let node = graph.node[i]?.pointee else { return nil }
            return ModelNode(opType: cString(node.op_type), domain: cString(node.domain),
                             inputs: (0..<node.n_input).map { cString(node.input[$0]) })
        }
        inputs = (0..<graph.n_input).compactMap { graph.input[$0].map { Self.declared($0.pointee) } }
        outputs = (0..<graph.n_output).compactMap { graph.output[$0].map { Self.declared($0.pointee) } }
        initializers = Set((0..<graph.n_initializer).compactMap { graph.initializer[$0].map { cString($0.pointee.name) } })
    }

    private static func declared(_ vi: Onnx__ValueInfoProto) -> DeclaredValue {
        let name = cString(vi.name)
        guard let type = vi.type?.pointee else { return DeclaredValue(name: name, kind: .unknown, dtype: 0) }
        let kind: DeclaredValue.Kind
        var dtype: Int32 = 0
        switch type.value_case {
        case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
            kind = .tensor
            if let tensor = type.tensor_type?.pointee, tensor.has_elem_type != 0 { dtype = tensor.elem_type }
        case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: kind = .sequence
        case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: kind = .map
        case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: kind = .optional
        case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE: kind = .sparseTensor
        case ONNX__TYPE_PROTO__VALUE_OPAQUE_TYPE: kind = .opaque
        default: kind = .unknown
        }
        return DeclaredValue(name: name, kind: kind, dtype: dtype)
    }
}

func cString(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    pointer.map { String(cString: $0) } ?? ""
}
