#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `.npy` file that cannot be read or written, with the file and what was wrong.
public struct NPYError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

/// numpy `.npy` files (format versions 1.0, 2.0 and 3.0), little-endian, C order, for the element types
/// the runtime exchanges: float32 `<f4`, float16 `<f2`, int64 `<i8`, int32 `<i4`, bool `|b1`.
/// Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Reads a file; the tensor's name is the file name without directory and `.npy`.
    public static func read(path: String) throws -> HostTensor {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw NPYError(path: path, reason: "\(error)") }
        var tensor = try decode(Array(file.bytes), path: path)
        var name = path.split(separator: "/").last.map(String.init) ?? path
        if name.hasSuffix(".npy") { name.removeLast(4) }
        tensor.name = name
        return tensor
    }

    /// Writes `tensor` as a version 1.0 file (2.0 if the header is too long for 1.0).
    public static func write(_ tensor: HostTensor, path: String) throws {
        let bytes = encode(tensor)
        guard let file = fopen(path, "wb") else {
            throw NPYError(path: path, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        let closed = fclose(file)
        guard written == bytes.count, closed == 0 else {
            throw NPYError(path: path, reason: "write failed: \(String(cString: strerror(errno)))")
        }
    }

    public static func descr(_ type: ElementType) -> String {
        switch type {
        case .float32: "<f4"
        case .float16: "<f2"
        case .int64: "<i8"
        case .int32: "<i4"
        case .bool: "|b1"
        }
    }

    public static func encode(_ tensor: HostTensor) -> [UInt8] {
        let shape = tensor.shape.count == 1 ? "(\(tensor.shape[0]),)"
            : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr(tensor.elementType))', 'fortran_order': False, 'shape': \(shape), }"
        // Pad so the data starts at a multiple of 64 (numpy's alignment), ending the header in '\n'.
        var version: UInt8 = 1
        var prefix = 10
        if (header.utf8.count + 1 + 63) / 64 * 64 > 65_535 {
            version = 2
            prefix = 12
        }
        let total = (prefix + header.utf8.count + 1 + 63) / 64 * 64
        header += String(repeating: " ", count: total - prefix - header.utf8.count - 1) + "\n"
        var bytes = magic + [version, 0]
        let length = header.utf8.count
        if version == 1 {
            bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
        } else {
            bytes += (0..<4).map { UInt8((length >> (8 * $0)) & 0xFF) }
        }
        bytes += Array(header.utf8)
        bytes += tensor.bytes
        return bytes
    }

    /// Parses the bytes of a `.npy` file; `path` only names it in errors.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> HostTensor {
        func fail(_ reason: String) -> NPYError { NPYError(path: path, reason: reason) }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw fail("not a .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major).\(bytes[7]) (supported: 1.0, 2.0, 3.0)")
        }
        guard headerStart + headerLength <= bytes.count else {
            throw fail("header of \(headerLength) bytes runs past the end of the file (\(bytes.count) bytes)")
        }
        let text = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let dict: [String: PyValue]
        do {
            var parser = PyLiteralParser(text)
            guard case let .dict(parsed) = try parser.parseValue() else { throw fail("header is not a dict: \(text)") }
            dict = parsed
        } catch let error as NPYError { throw error } catch { throw fail("malformed header \(text.debugDescription): \(error)") }

        guard case let .string(descr)? = dict["descr"] else { throw fail("header has no 'descr' string") }
        guard case let .bool(fortran)? = dict["fortran_order"] else { throw fail("header has no 'fortran_order'") }
        guard case let .tuple(shapeValues)? = dict["shape"] else { throw fail("header has no 'shape' tuple") }
        if fortran { throw fail("Fortran-order arrays are not supported (save with np.ascontiguousarray)") }
        let type: ElementType
        switch descr {
        case "<f4", "=f4": type = .float32
        case "<f2", "=f2": type = .float16
        case "<i8", "=i8": type = .int64
        case "<i4", "=i4": type = .int32
        case "|b1", "<b1", "=b1": type = .bool
        default:
            let why = descr.hasPrefix(">") ? "big-endian dtype" : "unsupported dtype"
            throw fail("\(why) '\(descr)' (supported: float32 <f4, float16 <f2, int64 <i8, int32 <i4, bool |b1)")
        }
        var shape: [Int] = []
        for value in shapeValues {
            guard case let .int(dimension) = value, dimension >= 0 else { throw fail("bad shape \(shapeValues)") }
            shape.append(dimension)
        }
        let dataStart = headerStart + headerLength
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        let (needed, overflow2) = count.multipliedReportingOverflow(by: type.byteSize)
        guard !overflow, !overflow2 else { throw fail("shape \(shape) is too large") }
        guard bytes.count - dataStart == needed else {
            throw fail("data is \(bytes.count - dataStart) bytes; shape \(shape) of \(type) needs \(needed)")
        }
        return HostTensor(name: "", elementType: type, shape: shape, bytes: Array(bytes[dataStart...]))
    }
}

// MARK: - The Python literal subset numpy writes in headers

enum PyValue: Equatable, CustomStringConvertible {
    case string(String)
    case int(Int)
    case bool(Bool)
    case tuple([PyValue])
    case dict([String: PyValue])

    var description: String {
        switch self {
        case let .string(s): "'\(s)'"
        case let .int(i): "\(i)"
        case let .bool(b): b ? "True" : "False"
        case let .tuple(t): "(" + t.map(\.description).joined(separator: ", ") + ")"
        case let .dict(d): "{" + d.map { "'\($0)': \($1)" }.joined(separator: ", ") + "}"
        }
    }
}

struct PyLiteralError: Error, CustomStringConvertible {
    var description: String
}

/// Parses dicts with string keys, strings, non-negative ints (with an optional `L`), True/False and
/// tuples/lists — what `numpy.lib.format` writes.
struct PyLiteralParser {
    private let chars: [Character]
    private var at = 0

    init(_ text: String) { chars = Array(text) }

    private mutating func skipSpace() {
        while at < chars.count, chars[at].isWhitespace { at += 1 }
    }

    private mutating func expect(_ c: Character) throws {
        skipSpace()
        guard at < chars.count, chars[at] == c else {
            throw PyLiteralError(description: "expected '\(c)' at offset \(at)")
        }
        at += 1
    }

    private mutating func peek() -> Character? {
        skipSpace()
        return at < chars.count ? chars[at] : nil
    }

    mutating func parseValue() throws -> PyValue {
        guard let c = peek() else { throw PyLiteralError(description: "unexpected end") }
        switch c {
        case "{":
            at += 1
            var dict: [String: PyValue] = [:]
            while peek() != "}" {
                guard case let .string(key) = try parseValue() else { throw PyLiteralError(description: "dict key is not a string") }
                try expect(":")
                dict[key] = try parseValue()
                if peek() == "," { at += 1 } else { break }
            }
            try expect("}")
            return .dict(dict)
        case "(", "[":
            let close: Character = c == "(" ? ")" : "]"
            at += 1
            var items: [PyValue] = []
            while peek() != close {
                items.append(try parseValue())
                if peek() == "," { at += 1 } else { break }
            }
            try expect(close)
            return .tuple(items)
        case "'", "\"":
            at += 1
            var s = ""
            while at < chars.count, chars[at] != c {
                s.append(chars[at])
                at += 1
            }
            try expect(c)
            return .string(s)
        default:
            var word = ""
            while at < chars.count, chars[at].isLetter || chars[at].isNumber || chars[at] == "-" {
                word.append(chars[at])
                at += 1
            }
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            default:
                if word.hasSuffix("L") { word.removeLast() }
                guard let value = Int(word) else { throw PyLiteralError(description: "unexpected '\(word.isEmpty ? String(c) : word)'") }
                return .int(value)
            }
        }
    }
}
