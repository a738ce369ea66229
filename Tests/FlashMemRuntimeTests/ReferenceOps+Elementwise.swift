// CPU references of the element-wise ops (elementwise family), written from the ONNX operator spec in Double /
// Int64 and sharing nothing with the compiler. Values travel as [Double] whatever the dtype (int64 and bool
// tensors hold integers, bool 0 / 1), so one broadcasting helper serves every op.

import Foundation

extension ReferenceOps {
    // MARK: - Broadcasting

    /// `op` over `operands` broadcast together (numpy rules); returns the values and the broadcast shape.
    static func broadcasting(_ operands: [(values: [Double], shape: [Int])],
                             _ op: ([Double]) -> Double) -> (y: [Double], shape: [Int]) {
        var shape: [Int] = []
        for operand in operands {
            shape = broadcastShape(shape, operand.shape)!
        }
        let total = count(shape)
        let full = operands.map { operand -> [Double] in
            let padded = [Int](repeating: 1, count: shape.count - operand.shape.count) + operand.shape
            let inStrides = strides(padded)
            return (0..<total).map { i in
                var rest = i, source = 0
                for d in stride(from: shape.count - 1, through: 0, by: -1) {
                    let coordinate = rest % shape[d]
                    rest /= shape[d]
                    if padded[d] != 1 { source += coordinate * inStrides[d] }
                }
                return operand.values[source]
            }
        }
        return ((0..<total).map { i in op(full.map { $0[i] }) }, shape)
    }

    static func binary(_ a: [Double], _ aShape: [Int], _ b: [Double], _ bShape: [Int],
                       _ op: (Double, Double) -> Double) -> (y: [Double], shape: [Int]) {
        broadcasting([(a, aShape), (b, bShape)]) { op($0[0], $0[1]) }
    }

    // MARK: - Scalar semantics

    /// Integer division truncating toward zero (ONNX Div on integers, C semantics).
    static func divTrunc(_ a: Double, _ b: Double) -> Double {
        let (x, y) = (Int64(a), Int64(b))
        return Double(x / y)
    }

    /// ONNX Mod: fmod = 1 keeps the dividend's sign (C fmod), fmod = 0 the divisor's (Python %).
    static func mod(_ a: Double, _ b: Double, fmod: Bool) -> Double {
        let r = Foundation.fmod(a, b)
        if fmod || r == 0 || (r < 0) == (b < 0) { return r }
        return r + b
    }

    static func erf(_ x: Double) -> Double { Foundation.erf(x) }

    static func softplus(_ x: Double) -> Double { x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)) }

    /// The float16 value nearest to `x` (ties to even), as a Cast to float16 stores it.
    static func roundToHalf(_ x: Double) -> Double { Double(Float(Float16(Float(x)))) }

    /// Unary ONNX ops by name, with their default attributes (Gelu exact unless `geluTanh`).
    static func unary(_ op: String) -> (Double) -> Double {
        switch op {
        case "Relu": return { max($0, 0) }
        case "Sigmoid": return { 1 / (1 + exp(-$0)) }
        case "Tanh": return { Foundation.tanh($0) }
        case "Neg": return { -$0 }
        case "Abs": return { Swift.abs($0) }
        case "Sqrt": return { $0.squareRoot() }
        case "Exp": return { exp($0) }
        case "Log": return { log($0) }
        case "Erf": return { erf($0) }
        case "Reciprocal": return { 1 / $0 }
        case "LeakyRelu": return { $0 < 0 ? 0.01 * $0 : $0 }
        case "Elu": return { $0 < 0 ? exp($0) - 1 : $0 }
        case "Selu": return { x in
            let alpha = 1.67326319217681884765625, gamma = 1.05070102214813232421875
            return x > 0 ? gamma * x : gamma * (alpha * exp(x) - alpha)
        }
        case "Gelu": return { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
        case "GeluTanh": return { x in 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }
        case "HardSigmoid": return { min(max(0.2 * $0 + 0.5, 0), 1) }
        case "HardSwish": return { $0 * min(max($0 / 6 + 0.5, 0), 1) }
        case "Sign": return { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
        case "Floor": return { $0.rounded(.down) }
        case "Ceil": return { $0.rounded(.up) }
        case "Round": return { $0.rounded(.toNearestOrEven) }
        case "Sin": return { sin($0) }
        case "Cos": return { cos($0) }
        case "Softplus": return { softplus($0) }
        case "Softsign": return { $0 / (1 + Swift.abs($0)) }
        case "Mish": return { $0 * Foundation.tanh(softplus($0)) }
        case "Tan": return { tan($0) }
        case "Asin": return { asin($0) }
        case "Acos": return { acos($0) }
        case "Atan": return { atan($0) }
        case "Sinh": return { sinh($0) }
        case "Cosh": return { cosh($0) }
        case "Asinh": return { asinh($0) }
        case "Acosh": return { acosh($0) }
        case "Atanh": return { atanh($0) }
        case "Not": return { $0 == 0 ? 1 : 0 }
        default: preconditionFailure("no reference for unary \(op)")
        }
    }

    /// Two-input ONNX ops by name (comparisons and logical ops give 1 / 0; `integer` selects integer Div).
    static func binaryOp(_ op: String, integer: Bool = false) -> (Double, Double) -> Double {
        switch op {
        case "Add", "Sum": return { $0 + $1 }
        case "Sub": return { $0 - $1 }
        case "Mul": return { $0 * $1 }
        case "Div": return integer ? { divTrunc($0, $1) } : { $0 / $1 }
        case "Pow": return { Foundation.pow($0, $1) }
        case "Max": return { max($0, $1) }
        case "Min": return { min($0, $1) }
        case "Mod": return { mod($0, $1, fmod: false) }
        case "FMod": return { mod($0, $1, fmod: true) }
        case "PRelu": return { $0 < 0 ? $0 * $1 : $0 }
        case "Equal": return { $0 == $1 ? 1 : 0 }
        case "Less": return { $0 < $1 ? 1 : 0 }
        case "LessOrEqual": return { $0 <= $1 ? 1 : 0 }
        case "Greater": return { $0 > $1 ? 1 : 0 }
        case "GreaterOrEqual": return { $0 >= $1 ? 1 : 0 }
        case "And": return { ($0 != 0 && $1 != 0) ? 1 : 0 }
        case "Or": return { ($0 != 0 || $1 != 0) ? 1 : 0 }
        case "Xor": return { (($0 != 0) != ($1 != 0)) ? 1 : 0 }
        default: preconditionFailure("no reference for binary \(op)")
        }
    }

    /// ONNX Where: c ? x : y, all three broadcast.
    static func whereOp(_ c: [Double], _ cShape: [Int], _ x: [Double], _ xShape: [Int], _ y: [Double],
                        _ yShape: [Int]) -> (y: [Double], shape: [Int]) {
        broadcasting([(c, cShape), (x, xShape), (y, yShape)]) { $0[0] != 0 ? $0[1] : $0[2] }
    }
}
