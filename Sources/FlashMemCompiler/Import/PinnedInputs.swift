// Pinned inputs: a graph input fixed to a value at compile time (the CLI's `--pin-input sr=16000`), which turns
// it into an initializer so that everything depending on it folds (e.g. silero_vad's If(Equal(sr, 16000))).
// Owned by the compile-time evaluation pass; ONNXImporter.prepare applies it before simplification.

extension Graph {
    /// Replaces each named graph input by an initializer of the input's declared dtype and shape holding the given
    /// values: a scalar when the input is declared with rank 0 (or without a shape and given one value); a shape
    /// with one unknown dimension takes it from the value count; a 1-D tensor when the rank is unknown.
    ///
    /// - Throws: `CompileError` naming the input for a name that is not an input (listing the inputs), a value
    ///   count that does not match the shape, or a value the dtype cannot hold (fractional for an integer type,
    ///   out of range, not 0/1 for bool).
    public func pinInputs(_ pinned: [String: [Double]]) throws {
        // Sorted so that the first error reported does not depend on dictionary order.
        for (name, given) in pinned.sorted(by: { $0.key < $1.key }) {
            let spelled = "--pin-input \(name)=\(given.map(Self.spell).joined(separator: ","))"
            guard let index = inputs.firstIndex(where: { $0.name == name }) else {
                let real = inputs.map(\.name).joined(separator: ", ")
                throw CompileError(file: sourcePath, "\(spelled) names '\(name)', which is not an input of the model "
                    + "(inputs: \(real.isEmpty ? "none" : real))")
            }
            let input = inputs[index]
            guard !given.isEmpty else { throw CompileError(file: sourcePath, "\(spelled): no value given") }
            let shape = try pinnedShape(input, count: given.count, spelled: spelled)
            for v in given {
                if let problem = Self.representationProblem(v, dtype: input.dtype) {
                    throw CompileError(file: sourcePath, "\(spelled): \(Self.spell(v)) \(problem) (input '\(name)' is "
                        + "\(input.dtype))")
                }
            }
            initializers[name] = .make(dtype: input.dtype, shape: shape, reals: given)
            values[name] = ValueInfo(name: name, dtype: input.dtype, shape: shape)
            inputs.remove(at: index)
        }
    }

    private func pinnedShape(_ input: ValueInfo, count: Int, spelled: String) throws -> [Int] {
        guard let declared = input.shape else { return count == 1 ? [] : [count] }
        let known = declared.compactMap { $0 }
        let product = known.reduce(1, *)
        switch declared.count - known.count {
        case 0:
            guard product == count else {
                throw CompileError(file: sourcePath, "\(spelled) gives \(count) value\(count == 1 ? "" : "s"), but "
                    + "input '\(input.name)' has shape \(IRText.shape(declared)) (\(product) element\(product == 1 ? "" : "s"))")
            }
            return known
        case 1:
            guard product > 0, count % product == 0 else {
                throw CompileError(file: sourcePath, "\(spelled) gives \(count) values, which do not fill input "
                    + "'\(input.name)' of shape \(IRText.shape(declared))")
            }
            return declared.map { $0 ?? count / product }
        default:
            throw CompileError(file: sourcePath, "\(spelled): input '\(input.name)' has shape \(IRText.shape(declared)) "
                + "with several unknown dimensions; fix them first with --input-shape")
        }
    }

    /// Why `value` cannot be stored exactly in `dtype`, or nil when it can.
    static func representationProblem(_ value: Double, dtype: DType) -> String? {
        switch dtype {
        case .float64:
            return nil
        case .float32:
            return value.isFinite && abs(value) > Double(Float.greatestFiniteMagnitude) ? "is out of float32's range" : nil
        case .float16:
            return value.isFinite && abs(value) > Double(Float16.greatestFiniteMagnitude) ? "is out of float16's range" : nil
        case .bool:
            return value == 0 || value == 1 ? nil : "is not a bool (0 or 1)"
        case .int64, .int32, .int8, .uint8:
            guard value.isFinite, value == value.rounded() else { return "is not an integer" }
            let range: ClosedRange<Double> = switch dtype {
            case .int32: Double(Int32.min)...Double(Int32.max)
            case .int8: Double(Int8.min)...Double(Int8.max)
            case .uint8: 0...255
            default: -0x1p63 ... 0x1p63  // int64: [-2⁶³, 2⁶³), the upper end excluded below
            }
            return range.contains(value) && value < 0x1p63 ? nil : "is out of \(dtype)'s range"
        }
    }

    /// 16000 rather than 16000.0.
    static func spell(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }
}
