// Chunk payload codecs (FORMAT.md "Codecs"): `none` is the raw bytes, `zstd` one zstd frame
// (system libzstd through CZstd). Encoding is for `PayloadBuilder`; decoding for the runtime's streamer and
// checksum verification.

import CZstd

extension Codec: CustomStringConvertible {
    public var description: String {
        switch self {
        case .none: "none"
        case .zstd: "zstd"
        }
    }
}

/// A payload that cannot be decoded into the bytes its chunk describes.
public struct CodecError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// A `none` payload whose stored size is not its raw size.
        case payloadSize(expected: Int, actual: Int)
        /// The destination cannot hold `rawSize` bytes.
        case destinationTooSmall(needed: Int, available: Int)
        /// libzstd failed; the text is `ZSTD_getErrorName`.
        case zstd(String)
        /// The frame decoded to a different size than the chunk's `rawSize`.
        case decodedSize(expected: Int, actual: Int)
    }

    public var codec: Codec
    public var reason: Reason

    public init(codec: Codec, reason: Reason) {
        self.codec = codec
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case let .payloadSize(expected, actual):
            "\(codec) payload is \(actual) bytes, expected its raw size \(expected)"
        case let .destinationTooSmall(needed, available):
            "destination holds \(available) bytes, \(needed) needed"
        case let .zstd(name): "zstd: \(name)"
        case let .decodedSize(expected, actual): "\(codec) payload decoded to \(actual) bytes, expected \(expected)"
        }
    }
}

extension Codec {
    /// Decodes a stored chunk payload into the first `rawSize` bytes of `destination`
    /// (memcpy for `none`, `ZSTD_decompress` for `zstd`). Thread-safe; allocates a zstd context per call —
    /// a streamer that decodes many chunks on one thread should keep a `ZstdDecompressor` instead.
    public static func decode(chunk payload: UnsafeRawBufferPointer, codec: Codec, rawSize: Int,
                              into destination: UnsafeMutableRawBufferPointer) throws {
        try check(codec: codec, payload: payload, rawSize: rawSize, destination: destination)
        switch codec {
        case .none:
            if rawSize > 0 { destination.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: rawSize) }
        case .zstd:
            let got = ZSTD_decompress(destination.baseAddress, rawSize, payload.baseAddress, payload.count)
            try finishZstd(got, rawSize: rawSize)
        }
    }

    /// Encodes `raw` with this codec; nil when zstd fails (the caller stores the bytes raw instead).
    /// `level` is the zstd compression level (1…19; 3 is zstd's default).
    public func encode(_ raw: UnsafeRawBufferPointer, level: Int32 = 3) -> [UInt8]? {
        switch self {
        case .none:
            return Array(raw)
        case .zstd:
            let bound = ZSTD_compressBound(raw.count)
            var out = [UInt8](repeating: 0, count: bound)
            let written = out.withUnsafeMutableBytes { dst in
                ZSTD_compress(dst.baseAddress, bound, raw.baseAddress, raw.count, level)
            }
            if ZSTD_isError(written) != 0 { return nil }
            out.removeSubrange(written...)
            return out
        }
    }

    static func check(codec: Codec, payload: UnsafeRawBufferPointer, rawSize: Int,
                      destination: UnsafeMutableRawBufferPointer) throws {
        if destination.count < rawSize {
            throw CodecError(codec: codec, reason: .destinationTooSmall(needed: rawSize, available: destination.count))
        }
        if codec == .none, payload.count != rawSize {
            throw CodecError(codec: .none, reason: .payloadSize(expected: rawSize, actual: payload.count))
        }
        if codec == .zstd, payload.count == 0 {
            throw CodecError(codec: .zstd, reason: .zstd("empty payload"))
        }
    }

    static func finishZstd(_ result: Int, rawSize: Int) throws {
        if ZSTD_isError(result) != 0 {
            throw CodecError(codec: .zstd, reason: .zstd(String(cString: ZSTD_getErrorName(result))))
        }
        if result != rawSize {
            throw CodecError(codec: .zstd, reason: .decodedSize(expected: rawSize, actual: result))
        }
    }
}

/// A reusable zstd decompression context (`ZSTD_DCtx`), freed on deinit. Not thread-safe: keep one per
/// decoding thread. Decodes exactly like `Codec.decode`, without a context allocation per chunk.
public final class ZstdDecompressor {
    private let context: OpaquePointer

    public init() {
        // ZSTD_createDCtx only fails when malloc does.
        guard let context = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx: out of memory") }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    public func decode(chunk payload: UnsafeRawBufferPointer, codec: Codec, rawSize: Int,
                       into destination: UnsafeMutableRawBufferPointer) throws {
        guard codec == .zstd else {
            return try Codec.decode(chunk: payload, codec: codec, rawSize: rawSize, into: destination)
        }
        try Codec.check(codec: codec, payload: payload, rawSize: rawSize, destination: destination)
        let got = ZSTD_decompressDCtx(context, destination.baseAddress, rawSize, payload.baseAddress, payload.count)
        try Codec.finishZstd(got, rawSize: rawSize)
    }
}
