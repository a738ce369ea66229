// Keeps the inline weights of an ONNX model in the mapped file. Owned by the importer.
//
// protobuf-c copies every bytes field while unpacking, so a model whose weights are inline (raw_data, what
// onnx.save writes below 2 GiB) would cost its size again in memory, and again for each copy the importer made.
// Before unpacking, this walks the protobuf wire format of the ModelProto just far enough to find the raw_data of
// each initializer of the main graph, and builds a copy of the message without those fields (a few MiB: nodes,
// names, shapes). protobuf-c unpacks the copy; the importer makes each initializer a view of its bytes in the
// mapped model file instead (`TensorBytes(mapped:offset:count:)`).
//
// The rule: main-graph initializers stored as raw_data (what every exporter writes) and external data are read
// from their mapped files, never copied. Tensors inside nodes (Constant values, initializers of If/Loop
// branches) and tensors in the typed fields (float_data, int64_data…) are copied while unpacking; they are small
// in the models we know.

/// Protobuf wire walking for `strip`. Offsets are into the mapped model file.
enum ONNXInlineData {
    /// A ModelProto without its main graph's initializer raw_data, and where each of those was.
    struct Stripped {
        /// The serialized ModelProto without the raw_data fields of main-graph initializers.
        var message: [UInt8]
        /// Per initializer (by position among the main graph's initializers), the range of its raw_data bytes in
        /// the model file.
        var rawData: [Int: Range<Int>]
    }

    // ModelProto.graph, GraphProto.initializer and TensorProto.raw_data field numbers (onnx.proto).
    static let modelGraphField: UInt64 = 7
    static let graphInitializerField: UInt64 = 5
    static let tensorRawDataField: UInt64 = 9
    static let lengthDelimited: UInt64 = 2

    /// The model without its initializers' raw_data, or nil when there is nothing to strip or the bytes are not
    /// laid out as expected (not protobuf, groups, the graph field repeated): the caller then unpacks the file as
    /// is, and protobuf-c reports what is wrong with it.
    static func strip(_ model: UnsafeRawBufferPointer) -> Stripped? {
        var reader = WireReader(bytes: model)
        var out: [UInt8] = []
        var rawData: [Int: Range<Int>] = [:]
        var graphs = 0
        while !reader.atEnd {
            let start = reader.offset
            guard let field = reader.field() else { return nil }
            guard field.number == modelGraphField, field.wireType == lengthDelimited, let body = field.body else {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: model[start..<reader.offset]))
                continue
            }
            graphs += 1
            guard graphs == 1, let graph = stripGraph(model, body: body, rawData: &rawData) else { return nil }
            appendLengthDelimited(&out, field: modelGraphField, body: graph)
        }
        return rawData.isEmpty ? nil : Stripped(message: out, rawData: rawData)
    }

    /// The GraphProto in `body` without its initializers' raw_data fields, whose ranges go into `rawData`.
    private static func stripGraph(_ model: UnsafeRawBufferPointer, body: Range<Int>,
                                   rawData: inout [Int: Range<Int>]) -> [UInt8]? {
        var reader = WireReader(bytes: model, range: body)
        var out: [UInt8] = []
        var initializer = 0
        while !reader.atEnd {
            let start = reader.offset
            guard let field = reader.field() else { return nil }
            guard field.number == graphInitializerField, field.wireType == lengthDelimited, let tensorBody = field.body
            else {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: model[start..<reader.offset]))
                continue
            }
            var tensor: [UInt8] = []
            var inner = WireReader(bytes: model, range: tensorBody)
            while !inner.atEnd {
                let fieldStart = inner.offset
                guard let f = inner.field() else { return nil }
                if f.number == tensorRawDataField, f.wireType == lengthDelimited, let data = f.body {
                    rawData[initializer] = data  // the last occurrence wins, as in protobuf
                } else {
                    tensor.append(contentsOf: UnsafeRawBufferPointer(rebasing: model[fieldStart..<inner.offset]))
                }
            }
            appendLengthDelimited(&out, field: graphInitializerField, body: tensor)
            initializer += 1
        }
        return out
    }

    private static func appendLengthDelimited(_ out: inout [UInt8], field: UInt64, body: [UInt8]) {
        appendVarint(&out, field << 3 | lengthDelimited)
        appendVarint(&out, UInt64(body.count))
        out.append(contentsOf: body)
    }

    static func appendVarint(_ out: inout [UInt8], _ value: UInt64) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
}

/// Reads protobuf fields (key, then the value by wire type) within a range of bytes. Every read is bounds
/// checked: malformed input gives nil, never a trap.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int
    let end: Int

    init(bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil) {
        self.bytes = bytes
        self.offset = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? bytes.count
    }

    var atEnd: Bool { offset >= end }

    struct Field {
        var number: UInt64
        var wireType: UInt64
        /// The value's bytes for length-delimited fields.
        var body: Range<Int>?
    }

    /// The next field, with the reader moved past it; nil for malformed input or groups (wire types 3, 4).
    mutating func field() -> Field? {
        guard let key = varint() else { return nil }
        let number = key >> 3, wireType = key & 7
        guard number > 0 else { return nil }  // field 0 does not exist: not protobuf
        switch wireType {
        case 0:
            guard varint() != nil else { return nil }
        case 1, 5:
            let size = wireType == 1 ? 8 : 4
            guard end - offset >= size else { return nil }
            offset += size
        case 2:
            guard let length = varint(), length <= UInt64(end - offset) else { return nil }
            let body = offset..<(offset + Int(length))
            offset = body.upperBound
            return Field(number: number, wireType: wireType, body: body)
        default:
            return nil
        }
        return Field(number: number, wireType: wireType, body: nil)
    }

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < end, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }
}
