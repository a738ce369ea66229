// Little-endian fixed-width encoding and bounds-checked decoding: the primitives of FORMAT.md
// ("Primitive encodings"). `BundleWriter` and `BundleReader` are the only users; they mirror each other
// field by field.

// MARK: - ByteWriter

/// Appends little-endian fixed-width values to a growing byte array. Positions are file offsets when the
/// writer starts at file offset 0, which `BundleWriter` guarantees, so `align(to:)` aligns in the file.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    var count: Int { bytes.count }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    /// IEEE-754 binary64, stored as its bit pattern.
    mutating func f64(_ v: Double) { u64(v.bitPattern) }

    /// `count` zero bytes (reserved fields).
    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }

    /// Zero bytes up to the next multiple of `alignment`.
    mutating func align(to alignment: Int) { zeros((alignment - bytes.count % alignment) % alignment) }

    mutating func raw(_ data: some Collection<UInt8>) { bytes.append(contentsOf: data) }

    /// `str`: u32 byte count, then UTF-8 bytes, no terminator.
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u32(UInt32(clamping: utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Array count prefix. Counts above UInt32.max cannot be written; the validator rejects such tables first.
    mutating func count(_ n: Int) { u32(UInt32(clamping: n)) }

    mutating func u32s(_ values: [UInt32]) {
        #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for v in values { u32(v) }
        #endif
    }

    /// Overwrites 8 bytes at `offset` (for fields known only after the rest is laid out).
    mutating func patchU64(_ v: UInt64, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { src in
            for i in 0..<8 { bytes[offset + i] = src[i] }
        }
    }
}

// MARK: - ByteReader

/// Reads little-endian fixed-width values from one section of a file, never past its end. Every read names
/// the field it is for; the name is built only when the read fails, so passing interpolated paths is cheap.
/// A failed read throws `FormatError` with one `.structure` issue naming that field and its file offset.
struct ByteReader {
    /// The whole file, so positions and error offsets are file offsets.
    let file: UnsafeRawBufferPointer
    /// The section being read, for messages ("kernels").
    let section: String
    private(set) var position: Int
    let end: Int

    init(_ file: UnsafeRawBufferPointer, range: Range<Int>, section: String) {
        self.file = file
        self.section = section
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    var remaining: Int { end - position }

    func fail(_ path: String, _ message: String) -> FormatError {
        FormatError(FormatIssue(.structure, path, message, fileOffset: position))
    }

    private mutating func need(_ n: Int, _ path: () -> String) throws {
        if n > remaining {
            throw fail(path(), "truncated: needs \(n) bytes, \(remaining) left in section \(section)")
        }
    }

    private mutating func load<T: FixedWidthInteger>(_: T.Type, _ path: () -> String) throws -> T {
        try need(MemoryLayout<T>.size, path)
        let v = file.loadUnaligned(fromByteOffset: position, as: T.self)
        position += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func u8(_ path: @autoclosure () -> String) throws -> UInt8 { try load(UInt8.self, path) }
    mutating func u16(_ path: @autoclosure () -> String) throws -> UInt16 { try load(UInt16.self, path) }
    mutating func u32(_ path: @autoclosure () -> String) throws -> UInt32 { try load(UInt32.self, path) }
    mutating func u64(_ path: @autoclosure () -> String) throws -> UInt64 { try load(UInt64.self, path) }
    mutating func i64(_ path: @autoclosure () -> String) throws -> Int64 { try load(Int64.self, path) }
    mutating func f64(_ path: @autoclosure () -> String) throws -> Double {
        Double(bitPattern: try load(UInt64.self, path))
    }

    /// Skips `n` reserved or padding bytes (their content is not checked; see FORMAT.md "Reserved bytes").
    mutating func skip(_ n: Int, _ path: @autoclosure () -> String) throws {
        try need(n, path)
        position += n
    }

    /// Skips padding up to the next multiple of `alignment` (a file offset).
    mutating func align(to alignment: Int, _ path: @autoclosure () -> String) throws {
        try skip((alignment - position % alignment) % alignment, path())
    }

    /// An array count (u32). Fails before anything is allocated when `count * minElementSize` bytes cannot
    /// be left in the section, so a corrupt count never asks for gigabytes.
    mutating func count(_ path: @autoclosure () -> String, minElementSize: Int) throws -> Int {
        let start = position
        let n = Int(try load(UInt32.self, path))
        if n * minElementSize > remaining {
            position = start
            throw fail(path(), "count \(n) needs at least \(n * minElementSize) bytes, "
                       + "\(remaining - 4) left in section \(section)")
        }
        return n
    }

    mutating func bytes(_ n: Int, _ path: @autoclosure () -> String) throws -> [UInt8] {
        try need(n, path)
        defer { position += n }
        return Array(UnsafeRawBufferPointer(rebasing: file[position..<position + n]))
    }

    mutating func u32s(_ n: Int, _ path: @autoclosure () -> String) throws -> [UInt32] {
        try need(n * 4, path)
        let start = position
        position += n * 4
        return [UInt32](unsafeUninitializedCapacity: n) { buffer, initialized in
            for i in 0..<n {
                buffer[i] = UInt32(littleEndian: file.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self))
            }
            initialized = n
        }
    }

    /// `str`: u32 byte count, then that many bytes of valid UTF-8.
    mutating func string(_ path: @autoclosure () -> String) throws -> String {
        let n = try count(path(), minElementSize: 1)
        let start = position
        let utf8 = UnsafeRawBufferPointer(rebasing: file[position..<position + n])
        guard let s = String(validating: utf8, as: UTF8.self) else {
            position = start
            throw fail(path(), "not valid UTF-8 (\(n) bytes)")
        }
        position += n
        return s
    }

    /// Every byte of a section must be consumed: v1 sections have no optional tail (new data goes into new
    /// section kinds, see FORMAT.md "Versioning").
    func finish() throws {
        if remaining != 0 {
            throw fail(section, "\(remaining) unexpected bytes after the last field")
        }
    }
}
