// The bundle's checksum. FORMAT.md "Checksum fm64" is the specification; this is its only implementation.

/// `fm64` is XXH64 with seed 0, bit for bit (xxHash's 64-bit hash, by Yann Collet). We chose a published
/// hash rather than our own so anyone can check a bundle with `xxhsum -H64` or any xxHash library, and
/// because it is fast: four independent 64-bit multiply-rotate lanes over 32-byte stripes keep the
/// multiplier busy (≈ 10+ GB/s per core in release builds), then an 8/4/1-byte tail and a final avalanche.
/// It detects corruption; it is not a cryptographic hash.
public enum Checksum {
    static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    /// One lane step: mix an 8-byte word into an accumulator.
    @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }

    @inline(__always) static func merge(_ acc: UInt64, _ lane: UInt64) -> UInt64 {
        (acc ^ round(0, lane)) &* p1 &+ p4
    }

    /// The fm64 checksum (XXH64, seed 0) of `bytes`.
    public static func fm64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hasher = Hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// fm64 of bytes that arrive in pieces (the compiler's streamed data section): `update` with each piece in
    /// order, then `finalize`; the result equals `fm64` of the concatenation. A value type; not thread-safe.
    public struct Hasher: Sendable {
        private var v1 = p1 &+ p2, v2 = p2, v3: UInt64 = 0, v4 = 0 &- p1
        /// Bytes seen so far.
        public private(set) var count = 0
        /// The last incomplete 32-byte stripe (`pending` bytes of it).
        private var stripe: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        private var pending = 0

        public init() {}

        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
            count += bytes.count
            var i = 0
            if pending > 0 {
                let take = min(32 - pending, bytes.count)
                withUnsafeMutableBytes(of: &stripe) { $0.baseAddress!.advanced(by: pending).copyMemory(from: base, byteCount: take) }
                pending += take
                i = take
                guard pending == 32 else { return }
                withUnsafeBytes(of: stripe) { consume($0.baseAddress!) }
                pending = 0
            }
            let n = bytes.count
            if n - i >= 32 {
                var a = v1, b = v2, c = v3, d = v4
                @inline(__always) func word(_ j: Int) -> UInt64 {
                    UInt64(littleEndian: base.loadUnaligned(fromByteOffset: j, as: UInt64.self))
                }
                while i <= n - 32 {
                    a = round(a, word(i))
                    b = round(b, word(i + 8))
                    c = round(c, word(i + 16))
                    d = round(d, word(i + 24))
                    i += 32
                }
                v1 = a; v2 = b; v3 = c; v4 = d
            }
            if i < n {
                withUnsafeMutableBytes(of: &stripe) { $0.baseAddress!.copyMemory(from: base + i, byteCount: n - i) }
                pending = n - i
            }
        }

        public mutating func update(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { update($0) }
        }

        private mutating func consume(_ s: UnsafeRawPointer) {
            @inline(__always) func word(_ j: Int) -> UInt64 {
                UInt64(littleEndian: s.loadUnaligned(fromByteOffset: j, as: UInt64.self))
            }
            v1 = round(v1, word(0))
            v2 = round(v2, word(8))
            v3 = round(v3, word(16))
            v4 = round(v4, word(24))
        }

        /// The checksum of everything passed to `update` (the hasher may be updated further afterwards).
        public func finalize() -> UInt64 {
            var h: UInt64
            if count >= 32 {
                h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
                h = merge(merge(merge(merge(h, v1), v2), v3), v4)
            } else {
                h = p5
            }
            h &+= UInt64(count)
            var tail = stripe
            let n = pending
            return withUnsafeBytes(of: &tail) { raw -> UInt64 in
                let base = raw.baseAddress!
                var i = 0
                while i + 8 <= n {
                    let w = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                    h = rotl(h ^ round(0, w), 27) &* p1 &+ p4
                    i += 8
                }
                if i + 4 <= n {
                    let w = UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
                    h = rotl(h ^ (w &* p1), 23) &* p2 &+ p3
                    i += 4
                }
                while i < n {
                    h = rotl(h ^ (UInt64(base.load(fromByteOffset: i, as: UInt8.self)) &* p5), 11) &* p1
                    i += 1
                }
                return avalanche(h)
            }
        }
    }

    /// The fm64 checksum of a byte array.
    public static func fm64(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { fm64($0) }
    }

    @inline(__always) static func avalanche(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33
        h &*= p2
        h ^= h >> 29
        h &*= p3
        h ^= h >> 32
        return h
    }
}
