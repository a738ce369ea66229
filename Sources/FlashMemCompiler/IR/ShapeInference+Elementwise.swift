// Shape rules of the element-wise ops that ShapeInference.swift's switch does not know: Mod, CastLike and the
// trigonometric / hyperbolic functions beyond Sin and Cos. Owned by the elementwise family.

extension ShapeInference {
    static let elementwiseShapes: [String: ShapeRule] = {
        var rules: [String: ShapeRule] = [:]
        rules["Mod"] = { c in
            let xs = try c.inputs()
            try c.requireSameDType(xs)
            return [TensorType(dtype: xs[0].dtype, shape: try ShapeRules.broadcast(xs.map(\.shape)))]
        }
        rules["CastLike"] = { c in
            let x = try c.input(0), like = try c.input(1)
            return [TensorType(dtype: like.dtype, shape: x.shape)]
        }
        for op in ["Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh"] {
            rules[op] = { c in [try c.input(0)] }
        }
        return rules
    }()
}
