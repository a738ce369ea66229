// Push-constant blocks, byte for byte. Every kernel's block holds 32-bit scalars (and arrays of them, which
// std430 packs at stride 4), so field i sits at byte offset 4·i; this builder appends in declaration order.

/// A little-endian push-constant block under construction.
public struct PushConstants: Sendable, Equatable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// A block built earlier (a lowered step's), to read or rewrite.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    public mutating func append(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A non-negative count or index; the lowering checks ranges (tensor sizes < 2³²) before building.
    public mutating func append(_ value: Int) {
        append(UInt32(truncatingIfNeeded: value))
    }

    public mutating func append(_ value: Float) {
        append(value.bitPattern)
    }

    public mutating func append(_ values: [Int]) {
        for v in values { append(v) }
    }

    /// Replaces field `index` (a block built earlier, rewritten where the lowering retargets a step).
    public mutating func set(_ value: Int, at index: Int) {
        let v = UInt32(truncatingIfNeeded: value).littleEndian
        withUnsafeBytes(of: v) { raw in
            for (i, byte) in raw.enumerated() { bytes[index * 4 + i] = byte }
        }
    }

    /// Field `index` read back as UInt32 (tests and tools).
    public func u32(at index: Int) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)) }
    }

    public var count: Int { bytes.count }
}
