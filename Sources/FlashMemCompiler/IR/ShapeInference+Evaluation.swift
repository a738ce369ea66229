// Shape rules of the ops that only compile-time evaluation can make static: Range and ConstantOfShape (their
// output shape is a value, so their shape operands must be constants) and If (its branches declare their output
// types). Constant folding normally removes all three; these rules give the nodes that stay (results above the
// folding element limit, an If whose condition is computed at run time) a type, or a clear error. Owned by the
// compile-time evaluation pass.

extension ShapeInference {
    static let evaluationShapes: [String: ShapeRule] = [
        "Range": { c in
            let operands = try (0..<3).map { i -> ConstantTensor in
                _ = try c.input(i)
                guard let t = c.constant(i) else {
                    throw c.fail("Range input \(i) is not a compile-time constant (pin the model inputs it depends "
                        + "on with --pin-input, or fix their shapes with --input-shape)")
                }
                guard t.elementCount == 1 else { throw c.fail("Range input \(i) must be a scalar, not \(IRText.shape(t.shape))") }
                return t
            }
            try c.requireSameDType(operands.map { TensorType(dtype: $0.dtype, shape: $0.shape) })
            let s = operands[0].reals()[0], l = operands[1].reals()[0], d = operands[2].reals()[0]
            guard d != 0 else { throw c.fail("Range delta is 0") }
            let count = Int(max(((l - s) / d).rounded(.up), 0))
            return [TensorType(dtype: operands[0].dtype, shape: [count])]
        },
        "ConstantOfShape": { c in
            _ = try c.input(0)
            guard let shape = c.constant(0) else {
                throw c.fail("ConstantOfShape's shape is not a compile-time constant")
            }
            var dtype = DType.float32
            if case .tensor(let value)? = c.node.attributes["value"] { dtype = value.dtype }
            return [TensorType(dtype: dtype, shape: shape.ints())]
        },
        "If": { c in
            _ = try c.input(0)
            guard case .graph(let thenBranch)? = c.node.attributes["then_branch"],
                  case .graph(let elseBranch)? = c.node.attributes["else_branch"] else {
                throw c.fail("If needs then_branch and else_branch")
            }
            var types: [TensorType] = []
            for (k, name) in c.node.outputs.enumerated() {
                if k < thenBranch.outputs.count, k < elseBranch.outputs.count,
                   let a = thenBranch.outputs[k].staticShape, let b = elseBranch.outputs[k].staticShape, a != b {
                    throw c.fail("If branches with different output shapes are not supported: output '\(name)' is "
                        + "\(IRText.shape(a)) in then_branch and \(IRText.shape(b)) in else_branch; pin the inputs the "
                        + "condition depends on with --pin-input")
                }
                guard k < thenBranch.outputs.count, k < elseBranch.outputs.count,
                      let a = thenBranch.outputs[k].staticShape, let b = elseBranch.outputs[k].staticShape,
                      a == b, thenBranch.outputs[k].dtype == elseBranch.outputs[k].dtype else {
                    throw c.fail("If with a condition computed at run time: the shape of output '\(name)' is not "
                        + "known at compile time; pin the inputs the condition depends on with --pin-input")
                }
                types.append(TensorType(dtype: thenBranch.outputs[k].dtype, shape: a))
            }
            return types
        },
    ]
}
