// TensorProto → ConstantTensor: raw_data, the typed fields, and ONNX external data (views of mapped files,
// never copied; so is raw_data the importer cut out of the message, ONNXInlineData.swift). Owned by the importer.

import COnnx
import FMBFormat
import Foundation

extension ONNXGraphConverter {
    /// Converts an initializer or a tensor attribute. `label` names it in errors ("initializer 'W1'").
    ///
    /// Inline bytes are copied out of the protobuf-c message (which is freed when `load` returns); external data
    /// becomes a view of the mapped data file, and so does raw_data found in the mapped model file (`rawData`,
    /// for a TensorProto unpacked without it). Values are taken as little-endian, as ONNX stores them.
    func tensor(_ t: Onnx__TensorProto, label: String, node: String? = nil, op: String? = nil,
                rawData: (file: MappedFile, range: Range<Int>)? = nil) throws -> ConstantTensor {
        func fail(_ message: String) -> CompileError {
            CompileError(file: path, node: node, op: op, "\(label): \(message)")
        }
        let raw = t.has_data_type != 0 ? t.data_type : 0
        guard let dtype = DType(rawValue: raw) else {
            throw fail("dtype \(Self.dtypeName(raw)) is not supported (supported: float32, float16, float64, "
                + "int8, uint8, int32, int64, bool)")
        }
        let shape = UnsafeBufferPointer(start: t.dims, count: t.n_dims).map { Int(truncatingIfNeeded: $0) }
        do {
            try ShapeRules.checkDimensions(shape)
        } catch let error as ShapeRuleError {
            throw fail(error.message)
        }
        let count = shape.reduce(1, *)
        let byteCount = count * dtype.byteSize
        if t.segment != nil { throw fail("segmented tensors are not supported") }

        let bytes: TensorBytes
        if t.has_data_location != 0 && t.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            bytes = try externalBytes(t, byteCount: byteCount, fail: fail)
        } else if let rawData {
            guard rawData.range.count == byteCount else {
                throw fail("raw_data holds \(rawData.range.count) bytes, but \(dtype) \(IRText.shape(shape)) needs \(byteCount)")
            }
            bytes = TensorBytes(mapped: rawData.file, offset: rawData.range.lowerBound, count: byteCount)
        } else if t.has_raw_data != 0 {
            guard t.raw_data.len == byteCount else {
                throw fail("raw_data holds \(t.raw_data.len) bytes, but \(dtype) \(IRText.shape(shape)) needs \(byteCount)")
            }
            bytes = TensorBytes(Array(UnsafeRawBufferPointer(start: t.raw_data.data, count: t.raw_data.len)))
        } else {
            bytes = try typedFieldBytes(t, dtype: dtype, count: count, shape: shape, fail: fail)
        }
        return ConstantTensor(dtype: dtype, shape: shape, bytes: bytes)
    }

    /// The values of the typed repeated fields, packed as the dtype's little-endian bytes. ONNX keeps float16,
    /// int8, uint8 and bool in int32_data, one element per int32 (float16 as its bit pattern).
    private func typedFieldBytes(_ t: Onnx__TensorProto, dtype: DType, count: Int, shape: [Int],
                                 fail: (String) -> CompileError) throws -> TensorBytes {
        func check(_ n: Int, _ field: String) throws {
            guard n == count else {
                if n == 0 { throw fail("has no data (expected \(count) values for shape \(IRText.shape(shape)))") }
                throw fail("\(field) holds \(n) values, but shape \(IRText.shape(shape)) needs \(count)")
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(count * dtype.byteSize)
        func append<T>(_ value: T) {
            withUnsafeBytes(of: value) { out.append(contentsOf: $0) }
        }
        switch dtype {
        case .float32:
            try check(t.n_float_data, "float_data")
            for i in 0..<count { append(t.float_data[i].bitPattern.littleEndian) }
        case .float64:
            try check(t.n_double_data, "double_data")
            for i in 0..<count { append(t.double_data[i].bitPattern.littleEndian) }
        case .int64:
            try check(t.n_int64_data, "int64_data")
            for i in 0..<count { append(t.int64_data[i].littleEndian) }
        case .int32:
            try check(t.n_int32_data, "int32_data")
            for i in 0..<count { append(t.int32_data[i].littleEndian) }
        case .float16:
            try check(t.n_int32_data, "int32_data")
            for i in 0..<count { append(UInt16(truncatingIfNeeded: t.int32_data[i]).littleEndian) }
        case .int8, .uint8:
            try check(t.n_int32_data, "int32_data")
            for i in 0..<count { out.append(UInt8(truncatingIfNeeded: t.int32_data[i])) }
        case .bool:
            try check(t.n_int32_data, "int32_data")
            for i in 0..<count { out.append(t.int32_data[i] != 0 ? 1 : 0) }
        }
        return TensorBytes(out)
    }

    // MARK: - External data

    /// A view of the bytes an external tensor names (keys location, offset, length; checksum is not verified).
    /// `location` is relative to the model's directory; absolute locations are refused.
    private func externalBytes(_ t: Onnx__TensorProto, byteCount: Int,
                               fail: (String) -> CompileError) throws -> TensorBytes {
        var location: String?
        var offset = 0
        var length: Int?
        for i in 0..<t.n_external_data {
            guard let entry = t.external_data[i]?.pointee else { continue }
            let key = ONNXImporter.string(entry.key)
            let value = ONNXImporter.string(entry.value)
            switch key {
            case "location":
                location = value
            case "offset", "length":
                guard let n = Int(value), n >= 0 else {
                    throw fail("external data \(key) '\(value)' is not a non-negative integer")
                }
                if key == "offset" { offset = n } else { length = n }
            default:
                break
            }
        }
        guard let location, !location.isEmpty else { throw fail("external data has no location") }
        guard !location.hasPrefix("/") else {
            throw fail("external data location '\(location)' is absolute; only paths relative to the model's "
                + "directory are accepted")
        }
        let dataURL = URL(fileURLWithPath: location, relativeTo: modelDirectory).standardizedFileURL
        let dataPath = dataURL.path
        // Inside the model's directory, also once symbolic links are resolved (a model must not make the compiler
        // read files beside or above it: '../secret', or a link out of its folder).
        let folder = modelDirectory.standardizedFileURL.resolvingSymlinksInPath().path
        let resolved = dataURL.resolvingSymlinksInPath().path
        guard dataPath.hasPrefix(modelDirectory.standardizedFileURL.path + "/"), resolved.hasPrefix(folder + "/") else {
            throw fail("external data location '\(location)' leads outside the model's directory "
                + "'\(modelDirectory.standardizedFileURL.path)'; only files inside it are accepted")
        }
        if let length, length != byteCount {
            throw fail("external data length \(length) does not match its dtype and shape (\(byteCount) bytes)")
        }
        let file: MappedFile
        if let cached = dataFiles[dataPath] {
            file = cached
        } else {
            do {
                file = try MappedFile(path: dataPath)
            } catch let error as FileError {
                throw fail("cannot read external data file '\(dataPath)': \(error.reason)")
            }
            dataFiles[dataPath] = file
        }
        guard offset <= file.bytes.count, byteCount <= file.bytes.count - offset else {
            throw fail("external data bytes \(offset)..<\(offset + byteCount) lie beyond the end of '\(dataPath)' "
                + "(\(file.bytes.count) bytes)")
        }
        return TensorBytes(mapped: file, offset: offset, count: byteCount)
    }
}

extension ONNXImporter {
    /// Converts one TensorProto exactly as the importer converts initializers (raw_data, the typed fields, external
    /// data resolved beside `path`), for tools that read ONNX tensors outside a model: fmc-conformance decodes the
    /// node tests' input_*.pb / output_*.pb files with it.
    ///
    /// - Parameters:
    ///   - path: the file the tensor comes from; errors name it.
    ///   - label: what the tensor is, for errors ("output 0").
    /// - Throws: `CompileError` for a dtype the compiler does not hold or data that does not match dtype and shape.
    public static func tensor(_ proto: Onnx__TensorProto, path: String, label: String) throws -> ConstantTensor {
        try ONNXGraphConverter(path: path, opset: 0).tensor(proto, label: label)
    }
}
