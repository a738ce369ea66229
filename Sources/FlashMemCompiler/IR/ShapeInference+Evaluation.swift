// Shape rules of the ops that only compile-time evaluation can make static: Range and ConstantOfShape (their
// output shape is a value, so their shape operands must be constants) and If (its branches are inferred with the
// enclosing scope's values and constants in sight, IfInlining.swift). Constant folding normally removes all three; these rules give the nodes that stay (results above the
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
            let count = try ShapeRules.dimension(max(((l - s) / d).rounded(.up), 0), "Range's element count")
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
            for (key, branch) in [("then_branch", thenBranch), ("else_branch", elseBranch)]
            where branch.outputs.count != c.node.outputs.count {
                throw c.fail("\(key) has \(branch.outputs.count) outputs, the If has \(c.node.outputs.count)")
            }
            let thenTypes = try c.graph.branchOutputTypes(thenBranch, of: c.node)
            let elseTypes = try c.graph.branchOutputTypes(elseBranch, of: c.node)
            return try c.node.outputs.indices.map { k in
                try ShapeInference.ifOutputType(c.node.outputs[k], then: thenTypes.types[k], else: elseTypes.types[k],
                                                failures: (thenTypes.failure, elseTypes.failure), c)
            }
        },
    ]
}

extension ShapeInference {
    /// The type of one If output from its branches' (inferred in the enclosing scope): both must have the same
    /// static shape and dtype. `failures`: the first node each branch's inference rejected, named in the error.
    static func ifOutputType(_ name: String, then a: ValueInfo, else b: ValueInfo,
                             failures: (CompileError?, CompileError?), _ c: NodeContext) throws -> TensorType {
        let thenShape = a.staticShape, elseShape = b.staticShape
        if let thenShape, let elseShape, thenShape != elseShape {
            throw c.fail("If branches with different output shapes are not supported: output '\(name)' is "
                + "\(IRText.shape(thenShape)) in then_branch and \(IRText.shape(elseShape)) in else_branch; pin the "
                + "inputs the condition depends on with --pin-input")
        }
        guard let thenShape, elseShape != nil else {
            let (branch, failure) = thenShape == nil ? ("then_branch", failures.0) : ("else_branch", failures.1)
            let reason = failure.map { error in
                "; \(branch) cannot run on these shapes: node '\(error.node ?? "?")' (\(error.op ?? "?")): "
                    + error.message + " (choose input shapes both branches accept)"
            } ?? " (not inferable in \(branch))"
            throw c.fail("If with a condition computed at run time: the shape of output '\(name)' is not known at "
                + "compile time\(reason); or pin the inputs the condition depends on with --pin-input")
        }
        guard a.dtype == b.dtype else {
            throw c.fail("If branches with different output dtypes are not supported: output '\(name)' is "
                + "\(a.dtype) in then_branch and \(b.dtype) in else_branch")
        }
        return TensorType(dtype: a.dtype, shape: thenShape)
    }
}
