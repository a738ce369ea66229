/// A tensor in host memory: what `Session.run` takes and returns, and what `NPY` reads and writes.
/// `bytes` are little-endian, C order, `elementType.byteSize` bytes per element (bool: one byte, 0 or 1).
public struct HostTensor: Equatable, Sendable {
    /// The model input or output it is (`Session.inputs`, `Session.outputs`).
    public var name: String
    public var elementType: ElementType
    /// The dimensions, outermost first.
    public var shape: [Int]
    /// The elements, little-endian, in C order.
    public var bytes: [UInt8]

    /// A tensor of any element type from its bytes, taken as they are (no copy).
    public init(name: String, elementType: ElementType, shape: [Int], bytes: [UInt8]) {
        self.name = name
        self.elementType = elementType
        self.shape = shape
        self.bytes = bytes
    }

    /// A tensor of `Element`s (`Float`: float32, `Int32`: int32, `Int64`: int64, `Float16`: float16), in C order.
    public init<Element: TensorElement>(name: String, shape: [Int], elements: [Element]) {
        self.init(name: name, elementType: Element.elementType, shape: shape,
                  bytes: elements.withUnsafeBytes { Array($0) })
    }

    /// A float32 tensor.
    public init(name: String, shape: [Int], floats: [Float]) {
        self.init(name: name, shape: shape, elements: floats)
    }

    /// An int64 tensor.
    public init(name: String, shape: [Int], int64s: [Int64]) {
        self.init(name: name, shape: shape, elements: int64s)
    }

    /// The number of elements: the product of `shape`.
    public var elementCount: Int { shape.reduce(1, *) }

    /// Calls `body` with the elements in place as `Element`s, without copying them (`floats()` and `int64s()`
    /// convert into new arrays instead). `Element.elementType` must be `elementType`: anything else is a
    /// programming error, and traps. The buffer is valid only inside `body`.
    public func withElements<Element: TensorElement, Result>(
        of type: Element.Type, _ body: (UnsafeBufferPointer<Element>) throws -> Result
    ) rethrows -> Result {
        precondition(Element.elementType == elementType,
                     "tensor \"\(name)\" is \(elementType), not \(Element.elementType) (\(Element.self))")
        return try bytes.withUnsafeBytes { raw in
            let count = min(elementCount, raw.count / MemoryLayout<Element>.stride)
            let aligned = raw.baseAddress.map { Int(bitPattern: $0) % MemoryLayout<Element>.alignment == 0 } ?? true
            if aligned {
                return try raw.withMemoryRebound(to: Element.self) { try body(UnsafeBufferPointer(rebasing: $0.prefix(count))) }
            }
            // Swift's array storage is aligned for every element type here; should some array's not be, a copy.
            let copy = (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<Element>.stride, as: Element.self) }
            return try copy.withUnsafeBufferPointer(body)
        }
    }

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

/// A Swift type whose values have the layout of one `ElementType`'s elements: what
/// ``HostTensor/init(name:shape:elements:)`` takes and ``HostTensor/withElements(of:_:)`` lends.
public protocol TensorElement {
    /// The element type whose elements are laid out as this type's values.
    static var elementType: ElementType { get }
}

extension Float: TensorElement {
    public static var elementType: ElementType { .float32 }
}

extension Int32: TensorElement {
    public static var elementType: ElementType { .int32 }
}

extension Int64: TensorElement {
    public static var elementType: ElementType { .int64 }
}

#if !(os(macOS) && arch(x86_64))
extension Float16: TensorElement {
    public static var elementType: ElementType { .float16 }
}
#endif

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
