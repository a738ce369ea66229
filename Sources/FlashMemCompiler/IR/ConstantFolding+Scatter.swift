// Compile-time evaluation of ScatterND and OneHot on constants (the same operand parsing as shape inference and
// lowering: ScatterOperands). Owned by the compile-time evaluation pass; results are capped at
// `ConstantFolder.elementLimit` elements.

extension ConstantFolder {
    func scatterND(_ data: ConstantTensor, indices: ConstantTensor, updates: ConstantTensor) -> ConstantTensor? {
        let c = NodeContext(node: node, graph: graph)
        guard data.elementCount <= Self.elementLimit, data.dtype == updates.dtype,
              let scatter = try? ScatterOperands.scatterND(
                c, data: data.shape, indices: TensorType(dtype: indices.dtype, shape: indices.shape),
                updates: TensorType(dtype: updates.dtype, shape: updates.shape)) else { return nil }
        let tuples = indices.ints()
        var slices: [Int] = []
        for u in 0..<scatter.updates {
            var s = 0
            for (j, dim) in scatter.indexedShape.enumerated() {
                var i = tuples[u * scatter.depth + j]
                if i < 0 { i += dim }
                guard i >= 0, i < dim else { return nil }  // out of bounds: an error, reported by the lowering's checks
                s = s * dim + i
            }
            slices.append(s)
        }
        func apply<T>(_ out: inout [T], _ values: [T], _ combine: (T, T) -> T) {
            for (u, s) in slices.enumerated() {
                for e in 0..<scatter.sliceSize {
                    out[s * scatter.sliceSize + e] = combine(out[s * scatter.sliceSize + e], values[u * scatter.sliceSize + e])
                }
            }
        }
        if data.dtype.isFloat {
            var out = data.reals()
            switch scatter.reduction {
            case .none: apply(&out, updates.reals()) { $1 }
            case .add: apply(&out, updates.reals(), +)
            case .mul: apply(&out, updates.reals(), *)
            case .max: apply(&out, updates.reals()) { Swift.max($0, $1) }
            case .min: apply(&out, updates.reals()) { Swift.min($0, $1) }
            }
            return .make(dtype: data.dtype, shape: data.shape, reals: out)
        }
        var out = data.ints()
        switch scatter.reduction {
        case .none: apply(&out, updates.ints()) { $1 }
        case .add: apply(&out, updates.ints()) { $0 &+ $1 }
        case .mul: apply(&out, updates.ints()) { $0 &* $1 }
        case .max: apply(&out, updates.ints()) { Swift.max($0, $1) }
        case .min: apply(&out, updates.ints()) { Swift.min($0, $1) }
        }
        return .make(dtype: data.dtype, shape: data.shape, integers: out)
    }

    func oneHot(_ indices: ConstantTensor, values: ConstantTensor) -> ConstantTensor? {
        let c = NodeContext(node: node, graph: graph)
        guard values.elementCount == 2, let oneHot = try? ScatterOperands.oneHot(c, indices: indices.shape),
              let count = try? ShapeRules.product(oneHot.outputShape), count <= Self.elementLimit else { return nil }
        let positions = indices.reals().map { v -> Int in
            let i = Int(exactly: v.rounded(.towardZero)) ?? Int.min
            return i < 0 && i != Int.min ? i + oneHot.depth : i
        }
        return gatherElements(values, shape: oneHot.outputShape) { o in
            let inner = o % oneHot.inner
            let d = (o / oneHot.inner) % oneHot.depth
            let outer = o / (oneHot.inner * oneHot.depth)
            return positions[outer * oneHot.inner + inner] == d ? 1 : 0
        }
    }
}
