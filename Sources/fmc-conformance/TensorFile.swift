// A serialized ONNX TensorProto (the node tests' input_<i>.pb / output_<i>.pb) decoded into a HostTensor.
// Owned by fmc-conformance. The message is unpacked here, with protobuf-c, so that the harness knows the dtype and
// shape of test data the compiler refuses (to report "dtype double" instead of an import error); the values of the
// dtypes the runtime exchanges are decoded by the importer's public `ONNXImporter.tensor`, the same code that
// reads a model's initializers.

import COnnx
import CProtobufC
import FlashMemCompiler
import FlashMemRuntime
import Foundation

/// ONNX element types (TensorProto.DataType) by their lower-case ONNX names, as the harness reports them.
enum ONNXType {
    static let names: [Int32: String] = [
        0: "undefined", 1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
        8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64", 14: "complex64",
        15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2",
        20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2",
        26: "int2", 27: "float6e2m3", 28: "float6e3m2",
    ]

    static func name(_ raw: Int32) -> String { names[raw] ?? "#\(raw)" }

    /// The runtime's element type for an ONNX dtype; nil for the dtypes FlashMem does not exchange
    /// (everything but float, float16, int32, int64 and bool).
    static func elementType(_ raw: Int32) -> ElementType? {
        switch raw {
        case 1: .float32
        case 10: .float16
        case 6: .int32
        case 7: .int64
        case 9: .bool
        default: nil
        }
    }
}

/// A failure to read a test file: which file, what is wrong.
struct TestDataError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "\(path): \(reason)" }
}

/// One decoded .pb tensor. `tensor` is nil when the dtype is not one the runtime exchanges; `dtype` and `shape`
/// are always known.
struct TensorFile {
    var path: String
    var name: String
    /// ONNX TensorProto.DataType.
    var dtype: Int32
    var shape: [Int]
    var tensor: HostTensor?

    var dtypeName: String { ONNXType.name(dtype) }
    var hasZeroSizeDimension: Bool { shape.contains(0) }

    /// Reads and decodes a serialized TensorProto.
    static func read(path: String) throws -> TensorFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TestDataError(path: path, reason: "cannot read the file")
        }
        return try data.withUnsafeBytes { raw -> TensorFile in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? (raw.count == 0 ? emptyByte : nil),
                  let proto = onnx__tensor_proto__unpack(nil, raw.count, base) else {
                throw TestDataError(path: path, reason: "not a serialized TensorProto (a sequence, map or optional?)")
            }
            defer { onnx__tensor_proto__free_unpacked(proto, nil) }
            return try decode(proto.pointee, path: path)
        }
    }

    /// A one-byte buffer for empty files (protobuf-c wants a non-null pointer even for zero bytes).
    private static let emptyByte: UnsafePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        p.initialize(to: 0)
        return UnsafePointer(p)
    }()

    static func decode(_ t: Onnx__TensorProto, path: String) throws -> TensorFile {
        let dtype = t.has_data_type != 0 ? t.data_type : 0
        let shape = UnsafeBufferPointer(start: t.dims, count: t.n_dims).map { Int(truncatingIfNeeded: $0) }
        let name = t.name.map { String(cString: $0) } ?? ""
        guard shape.allSatisfy({ $0 >= 0 && $0 < (1 << 40) }) else {
            throw TestDataError(path: path, reason: "invalid dimensions \(shape)")
        }
        var file = TensorFile(path: path, name: name, dtype: dtype, shape: shape, tensor: nil)
        guard let elementType = ONNXType.elementType(dtype) else { return file }
        if t.has_data_location != 0 && t.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            throw TestDataError(path: path, reason: "external data is not expected in a node test")
        }
        let constant: ConstantTensor
        do {
            constant = try ONNXImporter.tensor(t, path: path, label: name.isEmpty ? "tensor" : "tensor '\(name)'")
        } catch let error as CompileError {
            throw TestDataError(path: path, reason: error.message)
        }
        var bytes = Array(constant.bytes.pointer)
        if elementType == .bool { bytes = bytes.map { $0 != 0 ? 1 : 0 } }  // raw_data may hold any non-zero byte
        file.tensor = HostTensor(name: name, elementType: elementType, shape: shape, bytes: bytes)
        return file
    }
}
