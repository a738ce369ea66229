// Compile-time evaluation of the elementwise operators on constants: unary math, binary (and variadic Max/Min)
// arithmetic, comparisons, logic and Where, all with numpy broadcasting. Owned by the compile-time evaluation
// pass (see ConstantFolding.swift for the number semantics).

import Foundation

extension ConstantFolder {
    static let unaryOps: Set<String> = ["Neg", "Abs", "Sqrt", "Reciprocal", "Exp", "Log", "Floor", "Ceil", "Not"]
    static let arithmeticOps: Set<String> = ["Add", "Sub", "Mul", "Div", "Mod", "Pow", "Max", "Min"]
    static let comparisonOps: Set<String> = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"]
    static let logicOps: Set<String> = ["And", "Or", "Xor"]
    static let elementwiseOps = unaryOps.union(arithmeticOps).union(comparisonOps).union(logicOps)

    /// One elementwise node on constant operands; nil for dtypes the op does not take, integer division by zero,
    /// negative integer exponents and results over the element limit.
    func elementwise(_ xs: [ConstantTensor]) -> ConstantTensor? {
        let op = node.opType
        guard let first = xs.first, let shape = try? ShapeRules.broadcast(xs.map(\.shape)),
              let count = try? ShapeRules.product(shape), count <= Self.elementLimit else { return nil }
        let maps = xs.map { broadcastIndex(from: $0.shape, to: shape) }
        if Self.unaryOps.contains(op) {
            guard xs.count == 1 else { return nil }
            return unary(first)
        }
        // Pow's exponent may have another dtype; every other op wants one dtype.
        if op != "Pow" {
            guard xs.allSatisfy({ $0.dtype == first.dtype }) else { return nil }
        }
        if Self.comparisonOps.contains(op) {
            guard xs.count == 2 else { return nil }
            let result: [Int]
            if first.dtype.isFloat {
                let a = xs[0].reals(), b = xs[1].reals()
                result = (0..<count).map { compare(a[maps[0]($0)], b[maps[1]($0)]) ? 1 : 0 }
            } else {
                let a = xs[0].ints(), b = xs[1].ints()
                result = (0..<count).map { compare(a[maps[0]($0)], b[maps[1]($0)]) ? 1 : 0 }
            }
            return .make(dtype: .bool, shape: shape, integers: result)
        }
        if Self.logicOps.contains(op) {
            guard xs.count == 2, first.dtype == .bool else { return nil }
            let a = xs[0].ints(), b = xs[1].ints()
            let result = (0..<count).map { o -> Int in
                let u = a[maps[0](o)] != 0, v = b[maps[1](o)] != 0
                switch op {
                case "And": return u && v ? 1 : 0
                case "Or": return u || v ? 1 : 0
                default: return u != v ? 1 : 0
                }
            }
            return .make(dtype: .bool, shape: shape, integers: result)
        }
        // Arithmetic: Max/Min are variadic, the others binary.
        guard first.dtype != .bool, xs.count == 2 || ((op == "Max" || op == "Min") && xs.count >= 1) else { return nil }
        if first.dtype.isFloat {
            let operands = xs.map { $0.reals() }
            var result = [Double](repeating: 0, count: count)
            for o in 0..<count {
                var acc = operands[0][maps[0](o)]
                for k in 1..<max(xs.count, 1) {
                    acc = realArithmetic(acc, operands[k][maps[k](o)])
                }
                result[o] = acc
            }
            return .make(dtype: first.dtype, shape: shape, reals: result)
        }
        if op == "Pow", xs[1].dtype.isFloat {
            // Integer base, float exponent: only integral exponents stay exact.
            guard xs[1].reals().allSatisfy({ $0 == $0.rounded() && abs($0) < 64 }) else { return nil }
        }
        let operands = xs.map { $0.ints() }
        var result = [Int](repeating: 0, count: count)
        for o in 0..<count {
            var acc = operands[0][maps[0](o)]
            for k in 1..<max(xs.count, 1) {
                guard let next = integerArithmetic(acc, operands[k][maps[k](o)]) else { return nil }
                acc = next
            }
            result[o] = acc
        }
        return .make(dtype: first.dtype, shape: shape, integers: result)
    }

    /// Where(condition, x, y) with broadcasting; x and y must share a dtype.
    func select(_ condition: ConstantTensor, _ x: ConstantTensor, _ y: ConstantTensor) -> ConstantTensor? {
        guard condition.dtype == .bool, x.dtype == y.dtype,
              let shape = try? ShapeRules.broadcast([condition.shape, x.shape, y.shape]),
              let count = try? ShapeRules.product(shape), count <= Self.elementLimit else { return nil }
        let c = condition.ints()
        let ic = broadcastIndex(from: condition.shape, to: shape)
        let ix = broadcastIndex(from: x.shape, to: shape), iy = broadcastIndex(from: y.shape, to: shape)
        // Bytes are copied, so every dtype round-trips exactly.
        let size = x.dtype.byteSize
        var out = [UInt8](repeating: 0, count: count * size)
        out.withUnsafeMutableBytes { dst in
            for o in 0..<count {
                let (source, s) = c[ic(o)] != 0 ? (x, ix(o)) : (y, iy(o))
                dst.baseAddress!.advanced(by: o * size)
                    .copyMemory(from: source.bytes.pointer.baseAddress!.advanced(by: s * size), byteCount: size)
            }
        }
        return ConstantTensor(dtype: x.dtype, shape: shape, bytes: TensorBytes(out))
    }

    // MARK: - Scalar semantics

    private func unary(_ x: ConstantTensor) -> ConstantTensor? {
        let op = node.opType
        if op == "Not" {
            guard x.dtype == .bool else { return nil }
            return .make(dtype: .bool, shape: x.shape, integers: x.ints().map { $0 == 0 ? 1 : 0 })
        }
        if x.dtype.isFloat {
            let values = x.reals().map { v -> Double in
                switch op {
                case "Neg": return -v
                case "Abs": return abs(v)
                case "Sqrt": return v.squareRoot()
                case "Reciprocal": return 1 / v
                case "Exp": return Foundation.exp(v)
                case "Log": return Foundation.log(v)
                case "Floor": return v.rounded(.down)
                default: return v.rounded(.up)  // Ceil
                }
            }
            return .make(dtype: x.dtype, shape: x.shape, reals: values)
        }
        guard x.dtype != .bool, op == "Neg" || op == "Abs" else { return nil }
        let values = x.ints().map { op == "Neg" ? 0 &- $0 : ($0 < 0 ? 0 &- $0 : $0) }
        return .make(dtype: x.dtype, shape: x.shape, integers: values)
    }

    private func compare<T: Comparable>(_ u: T, _ v: T) -> Bool {
        switch node.opType {
        case "Equal": return u == v
        case "Less": return u < v
        case "Greater": return u > v
        case "LessOrEqual": return u <= v
        default: return u >= v
        }
    }

    private func realArithmetic(_ u: Double, _ v: Double) -> Double {
        switch node.opType {
        case "Add": return u + v
        case "Sub": return u - v
        case "Mul": return u * v
        case "Div": return u / v
        case "Pow": return Foundation.pow(u, v)
        case "Max": return u.isNaN || v.isNaN ? .nan : Swift.max(u, v)
        case "Min": return u.isNaN || v.isNaN ? .nan : Swift.min(u, v)
        default:
            // Mod: fmod = 1 is C's fmod (sign of the dividend); fmod = 0 takes the divisor's sign, like numpy.
            let r = Foundation.fmod(u, v)
            if node.int("fmod", default: 0) != 0 || r == 0 || (r < 0) == (v < 0) { return r }
            return r + v
        }
    }

    /// Integer semantics with wrap-around; nil where the result is undefined (÷ 0, Int.min ÷ −1, negative
    /// exponents), which leaves the node to run time.
    private func integerArithmetic(_ u: Int, _ v: Int) -> Int? {
        switch node.opType {
        case "Add": return u &+ v
        case "Sub": return u &- v
        case "Mul": return u &* v
        case "Max": return Swift.max(u, v)
        case "Min": return Swift.min(u, v)
        case "Div":
            let (q, overflow) = u.dividedReportingOverflow(by: v)
            return v == 0 || overflow ? nil : q
        case "Pow":
            guard v >= 0 else { return nil }
            var result = 1, base = u, e = v
            while e > 0 {
                if e & 1 == 1 { result = result &* base }
                base = base &* base
                e >>= 1
            }
            return result
        default:  // Mod
            let (r, overflow) = u.remainderReportingOverflow(dividingBy: v)
            guard v != 0, !overflow else { return nil }
            if node.int("fmod", default: 0) != 0 || r == 0 || (r < 0) == (v < 0) { return r }
            return r + v
        }
    }
}
