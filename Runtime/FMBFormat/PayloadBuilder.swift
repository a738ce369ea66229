// Lays out the data section (FORMAT.md "data"): chunk payloads at 4096-byte boundaries, resident constants
// at 256-byte boundaries, zero bytes in between. The compiler appends every payload here, puts the returned
// ranges into its `FMBundle`, and hands `bytes` to `BundleWriter` as the data section, or (built on a
// `StreamingBundleWriter`) the payloads go to the bundle's temporary file as they come and only their size and
// running checksum stay in memory.

/// Builds the data section blob. The writer places the data section at a 4096-aligned file offset, so an
/// offset aligned inside the blob is aligned in the file. Not thread-safe (a value type; build on one thread).
public struct PayloadBuilder: Sendable {
    /// Chunk payloads start at multiples of this (page size; lets the runtime map or `O_DIRECT`-read them).
    public static let chunkAlignment = 4096
    /// Resident constants start at multiples of this (the arena's tensor alignment).
    public static let constantAlignment = 256

    /// A stored payload: where it is, how it is encoded and the checksum of its raw bytes.
    public struct Stored: Equatable, Sendable {
        /// The stored (possibly compressed) bytes, relative to the data section start.
        public var range: DataRange
        public var codec: Codec
        public var rawSize: UInt64
        /// `Checksum.fm64` of the raw (decoded) bytes.
        public var checksum: UInt64

        public init(range: DataRange, codec: Codec, rawSize: UInt64, checksum: UInt64) {
            self.range = range
            self.codec = codec
            self.rawSize = rawSize
            self.checksum = checksum
        }
    }

    /// The data section so far; stays empty when the builder writes to a file (`init(file:)`).
    public private(set) var bytes: [UInt8] = []
    /// Where the payloads go instead of `bytes`, owned by a `StreamingBundleWriter`.
    let file: PayloadFile?
    /// Bytes of the data section so far.
    public private(set) var count = 0
    /// fm64 of the data section so far, kept only when writing to a file (`bytes` is hashed whole otherwise).
    private(set) var hasher = Checksum.Hasher()
    /// zstd level used for `.zstd` payloads.
    public var zstdLevel: Int32
    /// A `.zstd` payload is kept only if it saves at least this fraction of the raw size (0: any saving).
    /// Decoding costs CPU on the streaming path, so a producer may ask for real savings, e.g. 0.1.
    public var minimumSavings: Double

    public init(zstdLevel: Int32 = 3, minimumSavings: Double = 0) {
        self.zstdLevel = zstdLevel
        self.minimumSavings = minimumSavings
        self.file = nil
    }

    /// A builder that appends to `file` (from `StreamingBundleWriter.payload`) instead of memory.
    init(file: PayloadFile, zstdLevel: Int32 = 3, minimumSavings: Double = 0) {
        self.zstdLevel = zstdLevel
        self.minimumSavings = minimumSavings
        self.file = file
    }

    /// Appends a weight chunk at a 4096-byte boundary, compressed with `codec` when that shrinks it
    /// (otherwise stored as `.none`).
    public mutating func appendChunk(_ raw: UnsafeRawBufferPointer, codec: Codec = .none) -> Stored {
        append(raw, alignment: Self.chunkAlignment, codec: codec)
    }

    public mutating func appendChunk(_ raw: [UInt8], codec: Codec = .none) -> Stored {
        raw.withUnsafeBytes { appendChunk($0, codec: codec) }
    }

    /// Appends a resident constant (never compressed: it is copied into the arena as is) at a 256-byte
    /// boundary; the range goes into `Tensor.constant`.
    public mutating func appendConstant(_ raw: UnsafeRawBufferPointer) -> DataRange {
        append(raw, alignment: Self.constantAlignment, codec: .none).range
    }

    public mutating func appendConstant(_ raw: [UInt8]) -> DataRange {
        raw.withUnsafeBytes { appendConstant($0) }
    }

    /// Appends `raw` at the next multiple of `alignment` (a power of two ≤ 4096), encoded with `codec` when
    /// that saves at least `minimumSavings`, else raw.
    ///
    /// On a file, a failed write is kept in `PayloadFile.failure` (the first one; later appends only count) and
    /// `StreamingBundleWriter.finish` throws it, so appending stays non-throwing as in memory.
    public mutating func append(_ raw: UnsafeRawBufferPointer, alignment: Int, codec: Codec) -> Stored {
        precondition(alignment > 0 && alignment <= Self.chunkAlignment && alignment & (alignment - 1) == 0,
                     "alignment must be a power of two ≤ 4096")
        let checksum = Checksum.fm64(raw)
        var stored: [UInt8]? = nil
        var used = Codec.none
        if codec != .none, let encoded = codec.encode(raw, level: zstdLevel),
           Double(encoded.count) <= Double(raw.count) * (1 - minimumSavings), encoded.count < raw.count {
            stored = encoded
            used = codec
        }
        let padding = (alignment - count % alignment) % alignment
        let offset = count + padding
        if let file {
            let zeros = [UInt8](repeating: 0, count: padding)
            zeros.withUnsafeBytes { file.append($0, hashingInto: &hasher) }
            if let stored {
                stored.withUnsafeBytes { file.append($0, hashingInto: &hasher) }
            } else {
                file.append(raw, hashingInto: &hasher)
            }
            count = offset + (stored?.count ?? raw.count)
        } else {
            bytes.append(contentsOf: repeatElement(0, count: padding))
            if let stored { bytes.append(contentsOf: stored) } else { bytes.append(contentsOf: raw) }
            count = bytes.count
        }
        return Stored(range: DataRange(offset: UInt64(offset), size: UInt64(count - offset)),
                      codec: used, rawSize: UInt64(raw.count), checksum: checksum)
    }
}

extension PayloadBuilder {
    /// Appends bytes that are already laid out data section (another bundle's, copied piece by piece): no
    /// alignment, no codec, no per-piece checksum.
    mutating func appendVerbatim(_ raw: UnsafeRawBufferPointer) {
        if let file {
            file.append(raw, hashingInto: &hasher)
            count += raw.count
        } else {
            bytes.append(contentsOf: raw)
            count = bytes.count
        }
    }
}

extension Chunk {
    /// A chunk whose payload is `stored`, as returned by `PayloadBuilder.appendChunk`.
    public init(image: UInt32, layer: UInt32, y: UInt32, rows: UInt32, stored: PayloadBuilder.Stored) {
        self.init(image: image, layer: layer, y: y, rows: rows, payload: stored.range, rawSize: stored.rawSize,
                  codec: stored.codec, checksum: stored.checksum)
    }
}
