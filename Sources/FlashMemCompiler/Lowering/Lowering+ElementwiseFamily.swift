// The elementwise family's lowering table: every element-wise ONNX op outside Lowering.swift's switch, routed
// to the emitters of Lowering+Elementwise.swift, plus the rules that need more than one kernel or none:
// Clip (bounds as push constants, or Max / Min steps when a bound is computed), Cast / CastLike (a view when
// the arena words do not change), variadic Max / Min / Sum / Mean (a chain of binary steps). Owned by the
// elementwise family.

import FMBFormat

extension LoweringContext {
    static let elementwiseRules: [String: LoweringRule] = {
        var rules: [String: LoweringRule] = [:]
        let binary = ["Pow", "Mod", "PRelu", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or",
                      "Xor"]
        for op in binary { rules[op] = { $0.lowerBinary } }
        for op in ["Max", "Min", "Sum", "Mean"] { rules[op] = { $0.lowerVariadic } }
        // Relu, Sigmoid and Tanh are in Lowering.swift's switch (which wins).
        let unary = ["Neg", "Abs", "Sqrt", "Exp", "Log", "Erf", "Reciprocal", "LeakyRelu", "Elu", "Selu", "Gelu",
                     "HardSigmoid", "HardSwish", "Not", "Sign", "Floor", "Ceil", "Round", "Sin", "Cos", "Softplus",
                     "Softsign", "Mish", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh"]
        for op in unary { rules[op] = { $0.lowerUnary } }
        rules["Clip"] = { $0.lowerClip }
        rules["Cast"] = { $0.lowerCast }
        rules["CastLike"] = { $0.lowerCast }
        rules["Where"] = { $0.lowerWhere }
        return rules
    }()

    // MARK: - Clip

    /// One bound of Clip: a compile-time value (as the kernel's 32-bit word) or a computed tensor.
    private enum ClipBound {
        case word(UInt32)
        case tensor(String)
    }

    /// Clip: min / max attributes before opset 11, optional inputs 1 / 2 from then on. Constant bounds go to
    /// unary.comp's push constants; a computed bound becomes a Max (lower) or Min (upper) step.
    func lowerClip(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let kind = try arenaKind(x, for: n)
        func bound(_ i: Int, attribute: String, default fallback: Float) throws -> ClipBound {
            if graph.opset < 11 {
                return .word(n.node.float(attribute, default: fallback).bitPattern)
            }
            guard let name = optionalInput(n, i) else {
                return .word(kind == .int ? UInt32(bitPattern: fallback < 0 ? Int32.min : Int32.max)
                                          : (fallback < 0 ? -Float.infinity : Float.infinity).bitPattern)
            }
            guard let constant = initializers[name] else { return .tensor(name) }
            guard constant.elementCount == 1 else {
                throw error(n, "the \(attribute) bound '\(name)' has \(constant.elementCount) elements, not 1")
            }
            if kind == .int {
                let v = constant.ints()[0]
                return .word(UInt32(bitPattern: Int32(clamping: v)))
            }
            return .word(constant.floats()[0].bitPattern)
        }
        let lo = try bound(1, attribute: "min", default: -Float.greatestFiniteMagnitude)
        let hi = try bound(2, attribute: "max", default: Float.greatestFiniteMagnitude)
        switch (lo, hi) {
        case let (.word(a), .word(b)):
            try emitUnary(n, op: .clip, x: x, y: y, alpha: a, beta: b)
        default:
            // min(max(x, lo), hi) with a computed bound: a binary step per present bound (a constant one is
            // read as a resident tensor).
            let steps = [(BinaryOp.max, optionalInput(n, 1)), (BinaryOp.min, optionalInput(n, 2))]
                .compactMap { op, name in name.map { (op, $0) } }
            let xShape = try shape(x, of: n)
            var current = x
            for (i, (op, bound)) in steps.enumerated() {
                let target = i == steps.count - 1 ? y : temporary("\(y)#clip", shape: xShape, like: x)
                try emitBinary(n, op: op, a: current, b: bound, y: target, activation: FusedActivation.none)
                current = target
            }
        }
    }

    // MARK: - Cast

    /// Cast / CastLike to float32, float16, float64, int64, int32 or bool. Where the arena words stay the same
    /// (float ↔ float but to float16, int ↔ int, bool → int) the output is a view; otherwise one unary.comp
    /// step converts: float → int truncates, → bool compares with 0, → float16 rounds to fp16 precision.
    func lowerCast(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        guard let from = dtype(x), let to = dtype(y) else {
            throw error(n, "the dtypes of '\(x)' and '\(y)' are unknown (shape inference must run before lowering)")
        }
        let fromKind = try arenaKind(x, for: n)
        let op: UnaryOp?
        switch to {
        case .bool: op = from == .bool ? nil : .nonzero
        case .float16: op = from == .float16 ? nil : .toHalf
        case .float32, .float64: op = fromKind == .float ? nil : .identity
        case .int32, .int64: op = fromKind == .int ? nil : .identity
        case .int8, .uint8:
            throw error(n, "Cast to \(to) is not supported (the arena holds float32, float16, int64, int32 and bool)")
        }
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        guard elementCount(xShape) == elementCount(yShape) else {
            throw error(n, "input \(xShape) and output \(yShape) differ in size")
        }
        if op == nil, initializers[x] == nil {
            try registerView(y, of: x, for: n)
            return
        }
        try emitUnary(n, op: op ?? .identity, x: x, y: y)
    }

    // MARK: - Variadic

    /// Max / Min / Sum / Mean over any number of inputs, all broadcast together: a chain of binary steps
    /// (Mean's last step scales by 1 / count); one input is copied.
    func lowerVariadic(_ n: LoweringNode) throws {
        let xs = n.node.inputs.filter { !$0.isEmpty }
        let y = try output(n)
        guard let op = BinaryOp(op: n.op), let first = xs.first else {
            throw error(n, "needs at least one input")
        }
        let isMean = n.op == "Mean"
        if isMean {
            try requireFloat(n, xs + [y])
        }
        if xs.count == 1 {
            try emitUnary(n, op: .identity, x: first, y: y)
            return
        }
        var accumulated = first
        var accumulatedShape = try shape(first, of: n)
        for (j, next) in xs.dropFirst().enumerated() {
            let nextShape = try shape(next, of: n)
            guard let outShape = Broadcast.shape(accumulatedShape, nextShape) else {
                throw error(n, "inputs \(accumulatedShape) and \(nextShape) do not broadcast")
            }
            let last = j == xs.count - 2
            let target = last && !isMean ? y : temporary("\(y)#\(n.op.lowercased())\(j)", shape: outShape, like: y)
            try emitBinary(n, op: op, a: accumulated, b: next, y: target, activation: last ? nil : FusedActivation.none)
            accumulated = target
            accumulatedShape = outShape
        }
        if isMean {
            try emitUnary(n, op: .scale, x: accumulated, y: y, alpha: (1 / Float(xs.count)).bitPattern)
        }
    }
}
