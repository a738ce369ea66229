// GraphProto → Graph: nodes, attributes, inputs, outputs and value_info. Tensors (initializers, tensor
// attributes, external data) are in ONNXGraphConverter+Tensors.swift. Owned by the importer.

import COnnx
import FMBFormat
import Foundation

/// Converts the graphs of one model. A class because it caches the mapped external data files: each file is
/// mapped once however many tensors (of however many nested graphs) point into it. Not thread-safe; lives for
/// one `ONNXImporter.load`.
final class ONNXGraphConverter {
    /// The model file, for error messages.
    let path: String
    /// External data locations are resolved against this directory.
    let modelDirectory: URL
    let opset: Int
    /// Mapped external data files by standardized path.
    var dataFiles: [String: MappedFile] = [:]

    init(path: String, opset: Int) {
        self.path = path
        self.modelDirectory = URL(fileURLWithPath: path).deletingLastPathComponent()
        self.opset = opset
    }

    /// Converts a graph and sorts its nodes topologically. `outerScope` holds the names a nested graph (an If
    /// branch, a Loop body) may read from the graphs that enclose it; `nested` is true for such graphs, whose
    /// inputs may leave their type to the node that owns them (a Loop body's iteration count and state).
    /// `inlineData` (main graph only) gives the mapped model file and, per initializer index, where its raw_data
    /// lies in it, for a `proto` unpacked without them (ONNXInlineData.strip).
    func graph(_ proto: Onnx__GraphProto, outerScope: Set<String>, nested: Bool = false,
               inlineData: (file: MappedFile, rawData: [Int: Range<Int>])? = nil) throws -> Graph {
        let graphName = ONNXImporter.string(proto.name)
        var values: [String: ValueInfo] = [:]

        var initializers: [String: ConstantTensor] = [:]
        for i in 0..<proto.n_initializer {
            guard let t = proto.initializer[i]?.pointee else { continue }
            let name = ONNXImporter.string(t.name)
            let mapped = inlineData.flatMap { data in data.rawData[i].map { (data.file, $0) } }
            let tensor = try self.tensor(t, label: "initializer '\(name)'", rawData: mapped)
            initializers[name] = tensor
            values[name] = ValueInfo(name: name, dtype: tensor.dtype, shape: tensor.shape)
        }
        if proto.n_sparse_initializer > 0, let sparse = proto.sparse_initializer[0]?.pointee {
            let name = sparse.values.map { ONNXImporter.string($0.pointee.name) } ?? "?"
            throw CompileError(file: path, "sparse initializer '\(name)' is not supported")
        }

        // Older exporters list every initializer among the inputs too; those are constants, not inputs.
        var inputs: [ValueInfo] = []
        for i in 0..<proto.n_input {
            guard let vi = proto.input[i]?.pointee else { continue }
            let declared = declaredType(vi)
            if initializers[declared.name] != nil { continue }
            let info = nested && declared.elemType == nil
                ? ValueInfo(name: declared.name, dtype: .float32, shape: nil)  // typed by the owning node
                : try requiredTensorType(declared, role: "input")
            inputs.append(info)
            values[info.name] = info
        }

        // value_info are hints: entries of types the compiler does not handle (sequences, strings) are skipped.
        for i in 0..<proto.n_value_info {
            guard let vi = proto.value_info[i]?.pointee else { continue }
            let declared = declaredType(vi)
            if let raw = declared.elemType, let dtype = DType(rawValue: raw) {
                values[declared.name] = ValueInfo(name: declared.name, dtype: dtype, shape: declared.shape)
            }
        }

        var outputs: [ValueInfo] = []
        for i in 0..<proto.n_output {
            guard let vi = proto.output[i]?.pointee else { continue }
            let declared = declaredType(vi)
            let info: ValueInfo
            if declared.elemType == nil {
                // No type at all: a placeholder that shape inference replaces.
                info = ValueInfo(name: declared.name, dtype: .float32, shape: nil)
            } else {
                info = try requiredTensorType(declared, role: "output")
            }
            outputs.append(info)
            if values[info.name] == nil || info.shape != nil { values[info.name] = info }
        }

        // Everything a nested graph of this graph may reference.
        var scope = outerScope
        scope.formUnion(initializers.keys)
        scope.formUnion(inputs.map(\.name))
        for i in 0..<proto.n_node {
            guard let n = proto.node[i]?.pointee else { continue }
            for j in 0..<n.n_output { scope.insert(ONNXImporter.string(n.output[j])) }
        }

        var nodes: [Node] = []
        nodes.reserveCapacity(proto.n_node)
        for i in 0..<proto.n_node {
            guard let n = proto.node[i]?.pointee else { continue }
            nodes.append(try node(n, index: i, scope: scope))
        }

        let graph = Graph(name: graphName, nodes: nodes, inputs: inputs, outputs: outputs,
                          initializers: initializers, values: values, opset: opset, sourcePath: path)
        try graph.sortTopologically(outerScope: outerScope)
        return graph
    }

    // MARK: - Nodes

    func node(_ proto: Onnx__NodeProto, index: Int, scope: Set<String>) throws -> Node {
        let op = ONNXImporter.string(proto.op_type)
        var name = ONNXImporter.string(proto.name)
        // Unnamed nodes get a name from their op and position so that errors can point at them.
        if name.isEmpty { name = "\(op)_\(index)" }
        let domain = ONNXImporter.string(proto.domain)
        guard ONNXImporter.isDefaultDomain(domain) else {
            throw CompileError(file: path, node: name, op: op,
                               "operator domain '\(domain)' is not supported (only the default ONNX domain is)")
        }
        let inputs = (0..<proto.n_input).map { ONNXImporter.string(proto.input[$0]) }
        let outputs = (0..<proto.n_output).map { ONNXImporter.string(proto.output[$0]) }
        var attributes: [String: Attribute] = [:]
        for i in 0..<proto.n_attribute {
            guard let a = proto.attribute[i]?.pointee else { continue }
            attributes[ONNXImporter.string(a.name)] = try attribute(a, node: name, op: op, scope: scope)
        }
        return Node(name: name, opType: op, domain: "", inputs: inputs, outputs: outputs, attributes: attributes)
    }

    func attribute(_ a: Onnx__AttributeProto, node: String, op: String, scope: Set<String>) throws -> Attribute {
        let name = ONNXImporter.string(a.name)
        var type = a.type.rawValue
        if a.has_type == 0 || type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED.rawValue {
            type = Self.impliedType(a)
        }
        switch type {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT.rawValue:
            return .float(a.f)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT.rawValue:
            return .int(Int(a.i))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING.rawValue:
            return .string(Self.text(a.s))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS.rawValue:
            return .floats(Array(UnsafeBufferPointer(start: a.floats, count: a.n_floats)))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS.rawValue:
            return .ints(UnsafeBufferPointer(start: a.ints, count: a.n_ints).map { Int($0) })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS.rawValue:
            return .strings((0..<a.n_strings).map { Self.text(a.strings[$0]) })
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR.rawValue:
            guard let t = a.t else { break }
            return .tensor(try tensor(t.pointee, label: "tensor attribute '\(name)'", node: node, op: op))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH.rawValue:
            guard let g = a.g else { break }
            return .graph(try graph(g.pointee, outerScope: scope, nested: true))
        default:
            throw CompileError(file: path, node: node, op: op,
                               "attribute '\(name)' is of kind \(Self.attributeKindName(type)), which is not supported")
        }
        throw CompileError(file: path, node: node, op: op, "attribute '\(name)' has no value")
    }

    /// Attributes written by old exporters may lack `type`; the field that is set tells it.
    static func impliedType(_ a: Onnx__AttributeProto) -> UInt32 {
        if a.t != nil { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR.rawValue }
        if a.g != nil { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH.rawValue }
        if a.n_floats > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS.rawValue }
        if a.n_ints > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS.rawValue }
        if a.n_strings > 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS.rawValue }
        if a.has_f != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT.rawValue }
        if a.has_i != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT.rawValue }
        if a.has_s != 0 { return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING.rawValue }
        return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED.rawValue
    }

    static func attributeKindName(_ type: UInt32) -> String {
        switch type {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR.rawValue: "SPARSE_TENSOR"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS.rawValue: "TENSORS"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS.rawValue: "GRAPHS"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS.rawValue: "SPARSE_TENSORS"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO.rawValue: "TYPE_PROTO"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS.rawValue: "TYPE_PROTOS"
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED.rawValue: "UNDEFINED"
        default: "#\(type)"
        }
    }

    static func text(_ data: ProtobufCBinaryData) -> String {
        guard let bytes = data.data, data.len > 0 else { return "" }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: data.len), as: UTF8.self)
    }

    // MARK: - Types of inputs, outputs, value_info

    /// A ValueInfoProto as declared: elemType nil when it is not a tensor type; shape nil when the rank is
    /// unknown; a dimension nil when it is symbolic (dim_param) or absent.
    struct DeclaredType {
        var name: String
        var elemType: Int32?
        var shape: [Int?]?
    }

    func declaredType(_ vi: Onnx__ValueInfoProto) -> DeclaredType {
        var declared = DeclaredType(name: ONNXImporter.string(vi.name), elemType: nil, shape: nil)
        guard let type = vi.type?.pointee, type.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
              let tensorType = type.tensor_type?.pointee else { return declared }
        if tensorType.has_elem_type != 0 { declared.elemType = tensorType.elem_type }
        if let shape = tensorType.shape?.pointee {
            declared.shape = (0..<shape.n_dim).map { i -> Int? in
                // Out-of-range sizes are treated as unknown; an --input-shape can then fix them.
                guard let dim = shape.dim[i]?.pointee,
                      dim.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE,
                      dim.dim_value >= 0, dim.dim_value <= Int64(ShapeRules.maxDimension) else { return nil }
                return Int(dim.dim_value)
            }
        }
        return declared
    }

    /// Graph inputs and outputs must be tensors of a dtype the compiler handles.
    func requiredTensorType(_ declared: DeclaredType, role: String) throws -> ValueInfo {
        guard let raw = declared.elemType else {
            throw CompileError(file: path, "\(role) '\(declared.name)' is not a tensor (or has no element type)")
        }
        guard let dtype = DType(rawValue: raw) else {
            throw CompileError(file: path, "\(role) '\(declared.name)' has dtype \(Self.dtypeName(raw)), "
                + "which is not supported")
        }
        return ValueInfo(name: declared.name, dtype: dtype, shape: declared.shape)
    }

    /// TensorProto.DataType names, as ONNX spells them.
    static func dtypeName(_ raw: Int32) -> String {
        let names = [0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32",
                     7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64",
                     14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ",
                     19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1",
                     24: "FLOAT8E8M0", 25: "UINT2", 26: "INT2", 27: "FLOAT6E2M3", 28: "FLOAT6E3M2"]
        return names[Int(raw)] ?? "#\(raw)"
    }
}
