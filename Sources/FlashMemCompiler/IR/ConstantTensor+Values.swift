// Building constant tensors from values and reading them at full precision: what the Constant-node inlining and
// constant folding passes need. Owned by the importer / simplification passes.

extension ConstantTensor {
    /// A tensor of `dtype` holding `values` (integers narrowed with wrap-around; bool is value != 0; floats
    /// converted exactly where the dtype can hold them).
    public static func make(dtype: DType, shape: [Int], integers values: [Int]) -> ConstantTensor {
        precondition(values.count == shape.reduce(1, *), "value count does not match the shape")
        var bytes = [UInt8]()
        bytes.reserveCapacity(values.count * dtype.byteSize)
        for v in values {
            switch dtype {
            case .int64: append(Int64(v), to: &bytes)
            case .int32: append(Int32(truncatingIfNeeded: v), to: &bytes)
            case .int8: append(Int8(truncatingIfNeeded: v), to: &bytes)
            case .uint8: append(UInt8(truncatingIfNeeded: v), to: &bytes)
            case .bool: bytes.append(v != 0 ? 1 : 0)
            case .float32: append(Float(v).bitPattern, to: &bytes)
            case .float16: append(Float16(Float(v)).bitPattern, to: &bytes)
            case .float64: append(Double(v).bitPattern, to: &bytes)
            }
        }
        return ConstantTensor(dtype: dtype, shape: shape, bytes: TensorBytes(bytes))
    }

    /// A tensor of `dtype` holding `values`, rounded to the dtype (floats) or truncated toward zero (integers;
    /// the caller must have checked that the values are finite and in range).
    public static func make(dtype: DType, shape: [Int], reals values: [Double]) -> ConstantTensor {
        precondition(values.count == shape.reduce(1, *), "value count does not match the shape")
        switch dtype {
        case .float32, .float16, .float64:
            var bytes = [UInt8]()
            bytes.reserveCapacity(values.count * dtype.byteSize)
            for v in values {
                switch dtype {
                case .float32: append(Float(v).bitPattern, to: &bytes)
                case .float16: append(Float16(v).bitPattern, to: &bytes)
                default: append(v.bitPattern, to: &bytes)
                }
            }
            return ConstantTensor(dtype: dtype, shape: shape, bytes: TensorBytes(bytes))
        case .bool:
            return make(dtype: dtype, shape: shape, integers: values.map { $0 != 0 ? 1 : 0 })
        default:
            return make(dtype: dtype, shape: shape, integers: values.map { Int($0) })
        }
    }

    /// The values as Double, without the precision loss of `floats()` for float64 and large integers.
    public func reals() -> [Double] {
        let p = bytes.pointer
        switch dtype {
        case .float64: return (0..<elementCount).map { p.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) }
        case .float32, .float16: return floats().map(Double.init)
        default: return ints().map(Double.init)
        }
    }

    /// The same bytes seen with another shape of equally many elements (no copy).
    func reshaped(_ shape: [Int]) -> ConstantTensor {
        ConstantTensor(dtype: dtype, shape: shape, bytes: bytes)
    }
}

private func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
}
