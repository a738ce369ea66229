/// A tensor in host memory: what `Session.run` takes and returns, and what `NPY` reads and writes.
/// `bytes` are little-endian, C order, `elementType.byteSize` bytes per element (bool: one byte, 0 or 1).
public struct HostTensor: Equatable, Sendable {
    public var name: String
    public var elementType: ElementType
    public var shape: [Int]
    public var bytes: [UInt8]

    public init(name: String, elementType: ElementType, shape: [Int], bytes: [UInt8]) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
        self.bytes = bytes
    }

    /// A float32 tensor.
    public init(name: String, shape: [Int], floats: [Float]) {
        self.init(name: name, elementType: .float32, shape: shape, bytes: floats.withUnsafeBytes { Array($0) })
    }

    /// An int64 tensor.
    public init(name: String, shape: [Int], int64s: [Int64]) {
        self.init(name: name, elementType: .int64, shape: shape, bytes: int64s.withUnsafeBytes { Array($0) })
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// The elements as Float, from float32, float16, int32, int64 or bool.
    public func floats() -> [Float] {
        bytes.withUnsafeBytes { raw in
            switch elementType {
            case .float32: return (0..<elementCount).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
            case .float16: return (0..<elementCount).map { halfToFloat(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
            case .int32: return (0..<elementCount).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            case .int64: return (0..<elementCount).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            case .bool: return (0..<elementCount).map { raw[$0] != 0 ? 1 : 0 }
            }
        }
    }

    /// The elements as Int64, from int32, int64 or bool (floating types truncate toward zero).
    public func int64s() -> [Int64] {
        bytes.withUnsafeBytes { raw in
            switch elementType {
            case .int32: return (0..<elementCount).map { Int64(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            case .int64: return (0..<elementCount).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) }
            case .bool: return (0..<elementCount).map { raw[$0] != 0 ? 1 : 0 }
            case .float32, .float16: return floats().map { Int64($0) }
            }
        }
    }
}

/// IEEE 754 binary16 → binary32, exact (every half is a float), subnormals and NaN payloads included.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h) & 0x3FF
    if exponent == 0 {
        // Zero or subnormal: mantissa × 2^-24.
        let magnitude = Float(mantissa) * (1.0 / 16_777_216.0)
        return sign != 0 ? -magnitude : magnitude
    }
    if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// binary32 → binary16, round to nearest even; overflow gives ±infinity, NaN stays NaN.
@inline(__always)
func floatToHalf(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xFF)
    var mantissa = bits & 0x7F_FFFF
    if exponent == 0xFF { return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0) }
    let e = exponent - 127 + 15
    if e >= 0x1F { return sign | 0x7C00 }
    if e <= 0 {
        // Subnormal half (or zero): shift the mantissa with its implicit bit, rounding to nearest even.
        if e < -10 { return sign }
        mantissa |= 0x80_0000
        let shift = UInt32(14 - e)
        let halfway = UInt32(1) << (shift - 1)
        var result = mantissa >> shift
        let rest = mantissa & ((UInt32(1) << shift) - 1)
        if rest > halfway || (rest == halfway && result & 1 == 1) { result += 1 }
        return sign | UInt16(result)
    }
    var result = UInt32(e) << 10 | (mantissa >> 13)
    let rest = mantissa & 0x1FFF
    // Rounding may carry into the exponent, up to infinity (0x7C00): exactly IEEE's behaviour.
    if rest > 0x1000 || (rest == 0x1000 && result & 1 == 1) { result += 1 }
    return sign | UInt16(result)
}
