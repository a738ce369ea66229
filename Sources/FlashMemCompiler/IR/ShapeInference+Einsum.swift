// Shape rule of Einsum (the equation is parsed by ShapeRules.einsum, shared with Lowering+Einsum.swift).
// Owned by the importer / shape inference.

extension ShapeInference {
    static let einsumShapes: [String: ShapeRule] = [
        "Einsum": { c in
            let xs = try c.inputs()
            guard xs.count == c.node.inputs.count else { throw c.fail("Einsum inputs cannot be omitted") }
            try c.requireSameDType(xs)
            guard let equation = c.node.string("equation") else { throw c.fail("the equation attribute is required") }
            let einsum = try ShapeRules.einsum(equation, shapes: xs.map(\.shape))
            return [TensorType(dtype: xs[0].dtype, shape: einsum.outputShape)]
        },
    ]
}
