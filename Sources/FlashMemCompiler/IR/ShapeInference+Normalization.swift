// Shape rules of the normalization / reduction / scan ops ShapeInference.swift's switch does not know:
// GroupNormalization, the reductions beyond Sum / Mean / Max / Min / Prod, ArgMax / ArgMin and CumSum.
// Owned by the normalization / reduction family (lowering: Lowering+Reduce.swift, Lowering+Normalization.swift).

extension ShapeInference {
    static let normalizationShapes: [String: ShapeRule] = {
        var rules: [String: ShapeRule] = [
            "GroupNormalization": groupNormalizationShape,
            "ArgMax": argExtremeShape, "ArgMin": argExtremeShape,
            "CumSum": cumSumShape,
        ]
        for op in ["ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"] {
            rules[op] = reductionShape
        }
        return rules
    }()

    /// X [N, C, …] → Y like X; num_groups must divide C and scale / bias hold C (opset 21) or num_groups
    /// (opset 18) values.
    private static func groupNormalizationShape(_ c: NodeContext) throws -> [TensorType] {
        let x = try c.input(0)
        guard x.shape.count >= 2 else { throw c.fail("X must have rank ≥ 2, not \(IRText.shape(x.shape))") }
        guard case .int(let groups)? = c.node.attributes["num_groups"] else {
            throw c.fail("the num_groups attribute is required")
        }
        let channels = x.shape[1]
        guard groups >= 1, channels % groups == 0 else {
            throw c.fail("num_groups \(groups) does not divide the \(channels) channels")
        }
        for i in 1...2 {
            let p = try c.input(i)
            let count = try ShapeRules.product(p.shape)
            guard count == channels || count == groups else {
                throw c.fail("input '\(c.node.inputs[i])' is \(IRText.shape(p.shape)); expected [\(channels)] "
                    + "(opset 21) or [\(groups)] (opset 18)")
            }
        }
        return [x]
    }

    /// The reductions whose axes are an attribute before opset 18 and an input from then on.
    private static func reductionShape(_ c: NodeContext) throws -> [TensorType] {
        let x = try c.input(0)
        let axes = try c.axes(attributeBefore: 18)
        let keep = c.node.int("keepdims", default: 1) != 0
        let reduced: Set<Int>
        if let axes, !axes.isEmpty {
            reduced = Set(try axes.map { try ShapeRules.axis($0, rank: x.shape.count, name: "axes entry") })
        } else if c.node.int("noop_with_empty_axes", default: 0) != 0 {
            return [x]
        } else {
            reduced = Set(x.shape.indices)
        }
        var shape: [Int] = []
        for (i, d) in x.shape.enumerated() {
            if !reduced.contains(i) { shape.append(d) } else if keep { shape.append(1) }
        }
        return [TensorType(dtype: x.dtype, shape: shape)]
    }

    /// Indices (int64) of the extreme along `axis`, which keepdims keeps as 1.
    private static func argExtremeShape(_ c: NodeContext) throws -> [TensorType] {
        let x = try c.input(0)
        let axis = try ShapeRules.axis(c.node.int("axis", default: 0), rank: max(x.shape.count, 1))
        var shape = x.shape
        if !shape.isEmpty {
            if c.node.int("keepdims", default: 1) != 0 { shape[axis] = 1 } else { shape.remove(at: axis) }
        }
        return [TensorType(dtype: .int64, shape: shape)]
    }

    /// Y like X; the axis input is a constant scalar (or one-element tensor) in range.
    private static func cumSumShape(_ c: NodeContext) throws -> [TensorType] {
        let x = try c.input(0)
        _ = try c.input(1)
        if let axis = c.constant(1) {
            guard axis.elementCount == 1 else { throw c.fail("axis must be a scalar, not \(IRText.shape(axis.shape))") }
            _ = try ShapeRules.axis(axis.ints()[0], rank: max(x.shape.count, 1))
        }
        return [x]
    }
}
