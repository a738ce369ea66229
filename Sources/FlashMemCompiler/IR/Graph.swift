// The compiler's graph IR: what the ONNX importer produces and every pass reads.
// Shapes are static (all dimensions known) once `Graph.inferShapes` has run; dtypes always are.

import Foundation
import FMBFormat

/// ONNX's TensorProto.DataType values for the types the compiler knows.
public enum DType: Int32, Sendable, CustomStringConvertible {
    case float32 = 1
    case uint8 = 2
    case int8 = 3
    case int32 = 6
    case int64 = 7
    case bool = 9
    case float16 = 10
    case float64 = 11

    public var byteSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .float16: 2
        case .float32, .int32: 4
        case .int64, .float64: 8
        }
    }

    public var isFloat: Bool { self == .float32 || self == .float16 || self == .float64 }

    public var description: String {
        switch self {
        case .float32: "float32"
        case .uint8: "uint8"
        case .int8: "int8"
        case .int32: "int32"
        case .int64: "int64"
        case .bool: "bool"
        case .float16: "float16"
        case .float64: "float64"
        }
    }

    /// The bundle's element type for a model input or output of this dtype.
    public var elementType: ElementType? {
        switch self {
        case .float32: .float32
        case .float16: .float16
        case .int32: .int32
        case .int64: .int64
        case .bool: .bool
        default: nil
        }
    }
}

/// Bytes of a constant tensor: owned, or a view of a memory-mapped file (ONNX external data), which the
/// `MappedFile` keeps alive.
public struct TensorBytes: @unchecked Sendable {
    private let owner: AnyObject?
    public let pointer: UnsafeRawBufferPointer

    public init(_ bytes: [UInt8]) {
        let storage = ByteStorage(bytes)
        self.owner = storage
        self.pointer = storage.buffer
    }

    public init(mapped file: MappedFile, offset: Int, count: Int) {
        self.owner = file
        self.pointer = UnsafeRawBufferPointer(rebasing: file.bytes[offset..<(offset + count)])
    }

    public var count: Int { pointer.count }
}

/// Heap bytes with a stable address.
final class ByteStorage {
    let buffer: UnsafeRawBufferPointer

    init(_ bytes: [UInt8]) {
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { raw.copyMemory(from: $0) }
        buffer = UnsafeRawBufferPointer(rebasing: raw[0..<bytes.count])
    }

    deinit { buffer.baseAddress.map { UnsafeMutableRawPointer(mutating: $0).deallocate() } }
}

/// A constant tensor (an initializer or a Constant node's value).
public struct ConstantTensor: Sendable {
    public var dtype: DType
    public var shape: [Int]
    public var bytes: TensorBytes

    public init(dtype: DType, shape: [Int], bytes: TensorBytes) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// The values widened to Float (float16/float32/float64/integers).
    public func floats() -> [Float] {
        let n = elementCount
        let p = bytes.pointer
        switch dtype {
        case .float32: return (0..<n).map { p.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        case .float16: return (0..<n).map { Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
        case .float64: return (0..<n).map { Float(p.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
        default: return ints().map { Float($0) }
        }
    }

    /// The values as Int (integers and bools; floats are truncated).
    public func ints() -> [Int] {
        let n = elementCount
        let p = bytes.pointer
        switch dtype {
        case .int64: return (0..<n).map { Int(p.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        case .int32: return (0..<n).map { Int(p.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        case .int8: return (0..<n).map { Int(p.loadUnaligned(fromByteOffset: $0, as: Int8.self)) }
        case .uint8, .bool: return (0..<n).map { Int(p.load(fromByteOffset: $0, as: UInt8.self)) }
        default: return floats().map { Int($0) }
        }
    }
}

public enum Attribute: Sendable {
    case int(Int)
    case float(Float)
    case string(String)
    case ints([Int])
    case floats([Float])
    case strings([String])
    case tensor(ConstantTensor)
    case graph(Graph)
}

/// A graph value (an edge): its name, dtype and shape. A shape entry is nil while unknown.
public struct ValueInfo: Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int?]?

    public init(name: String, dtype: DType, shape: [Int?]?) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    /// The shape when every dimension is known.
    public var staticShape: [Int]? {
        guard let shape else { return nil }
        let known = shape.compactMap { $0 }
        return known.count == shape.count ? known : nil
    }
}

public struct Node: Sendable {
    public var name: String
    public var opType: String
    public var domain: String
    /// Input names; "" marks an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: Attribute]

    public init(name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
                attributes: [String: Attribute] = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }
}

/// A computation graph in topological order. `values` holds dtype/shape of every named edge
/// (inputs, initializers, node outputs) as far as known.
public final class Graph: @unchecked Sendable {
    public var name: String
    public var nodes: [Node]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var initializers: [String: ConstantTensor]
    public var values: [String: ValueInfo]
    /// The default-domain opset the model imports.
    public var opset: Int
    /// Where the graph came from, for error messages.
    public var sourcePath: String
    /// The mapped files initializers are views of (the model, its external data), set by the importer.
    public var sourceFiles: [MappedFile] = []

    public init(name: String, nodes: [Node], inputs: [ValueInfo], outputs: [ValueInfo],
                initializers: [String: ConstantTensor], values: [String: ValueInfo], opset: Int, sourcePath: String) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.values = values
        self.opset = opset
        self.sourcePath = sourcePath
    }

    /// Drops the resident pages of `sourceFiles` from this process (`MappedFile.dropResidentPages`): the
    /// compiler calls it after packing each weight, so reading a model of any size through the mapping never
    /// holds more of it than the weight being packed.
    public func releaseSourcePages() {
        for file in sourceFiles { file.dropResidentPages() }
    }
}

// MARK: - Attribute access

extension Node {
    public func int(_ key: String, default value: Int) -> Int {
        if case .int(let v) = attributes[key] { return v }
        return value
    }

    public func float(_ key: String, default value: Float) -> Float {
        if case .float(let v) = attributes[key] { return v }
        return value
    }

    public func ints(_ key: String) -> [Int]? {
        if case .ints(let v) = attributes[key] { return v }
        return nil
    }

    public func string(_ key: String) -> String? {
        if case .string(let v) = attributes[key] { return v }
        return nil
    }
}

// MARK: - Errors

/// A compile error a user can act on: which file, which node, what was expected.
public struct CompileError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var node: String?
    public var op: String?
    public var message: String

    public init(file: String, node: String? = nil, op: String? = nil, _ message: String) {
        self.file = file
        self.node = node
        self.op = op
        self.message = message
    }

    public var description: String {
        var where_ = file
        if let node { where_ += ": node '\(node)'" }
        if let op { where_ += " (\(op))" }
        return "\(where_): \(message)"
    }
}
