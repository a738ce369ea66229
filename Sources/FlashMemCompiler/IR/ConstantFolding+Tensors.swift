// Compile-time evaluation of the data-movement and generator operators on constants: Transpose, Expand, Tile,
// Split and Range. Owned by the compile-time evaluation pass; every result is capped at
// `ConstantFolder.elementLimit` elements (gatherElements checks it; gatherByAxis unravels output indices).

extension ConstantFolder {
    func transpose(_ x: ConstantTensor) -> ConstantTensor? {
        guard let shape = try? ShapeRules.transpose(x.shape, perm: node.ints("perm")) else { return nil }
        let perm = node.ints("perm") ?? Array((0..<x.shape.count).reversed())
        let strides = Self.strides(x.shape)
        return gatherByAxis(x, shape: shape) { axis, i in i * strides[perm[axis]] }
    }

    func expand(_ x: ConstantTensor, to target: [Int]) -> ConstantTensor? {
        guard (try? ShapeRules.checkDimensions(target)) != nil,
              let shape = try? ShapeRules.broadcast([x.shape, target]) else { return nil }
        return gatherElements(x, shape: shape, source: broadcastIndex(from: x.shape, to: shape))
    }

    func tile(_ x: ConstantTensor, repeats: [Int]) -> ConstantTensor? {
        guard repeats.count == x.shape.count, repeats.allSatisfy({ $0 >= 0 }) else { return nil }
        let shape = zip(x.shape, repeats).map { $0 * $1 }
        let strides = Self.strides(x.shape)
        return gatherByAxis(x, shape: shape) { axis, i in (i % x.shape[axis]) * strides[axis] }
    }

    /// Split into the outputs MovementOperands.split decides (the same parsing as shape inference and lowering).
    func split(_ x: ConstantTensor, _ inputs: [ConstantTensor?]) -> [ConstantTensor]? {
        guard let (axis, sizes) = try? MovementOperands.split(NodeContext(node: node, graph: graph), shape: x.shape)
        else { return nil }
        let strides = Self.strides(x.shape)
        var offset = 0
        var parts: [ConstantTensor] = []
        for size in sizes {
            var shape = x.shape
            shape[axis] = size
            let start = offset
            guard let part = gatherByAxis(x, shape: shape, source: { a, i in (a == axis ? i + start : i) * strides[a] })
            else { return nil }
            parts.append(part)
            offset += size
        }
        return parts
    }

    /// Range(start, limit, delta): `max(ceil((limit − start) / delta), 0)` elements `start + i·delta`, computed in
    /// the dtype (integers exactly, float32 in Float, float64 in Double) as the ONNX reference does.
    func range(start: ConstantTensor, limit: ConstantTensor, delta: ConstantTensor) -> ConstantTensor? {
        guard start.elementCount == 1, limit.elementCount == 1, delta.elementCount == 1,
              start.dtype == limit.dtype, start.dtype == delta.dtype, start.dtype != .bool else { return nil }
        let dtype = start.dtype
        if !dtype.isFloat {
            let s = start.ints()[0], l = limit.ints()[0], d = delta.ints()[0]
            guard d != 0 else { return nil }
            let (diff, overflow) = l.subtractingReportingOverflow(s)
            guard !overflow else { return nil }
            var count = diff / d
            if diff % d != 0 && (diff < 0) == (d < 0) { count += 1 }
            count = max(count, 0)
            guard count <= Self.elementLimit else { return nil }
            return .make(dtype: dtype, shape: [count], integers: (0..<count).map { s &+ $0 &* d })
        }
        let s = start.reals()[0], l = limit.reals()[0], d = delta.reals()[0]
        guard d != 0, s.isFinite, l.isFinite, d.isFinite else { return nil }
        let values: [Double]
        if dtype == .float64 {
            let count = max((l - s) / d, 0).rounded(.up)
            guard count <= Double(Self.elementLimit) else { return nil }
            values = (0..<Int(count)).map { s + Double($0) * d }
        } else {
            let fs = Float(s), fd = Float(d)
            let count = max((Float(l) - fs) / fd, 0).rounded(.up)
            guard count <= Float(Self.elementLimit) else { return nil }
            values = (0..<Int(count)).map { Double(fs + Float($0) * fd) }
        }
        return .make(dtype: dtype, shape: [values.count], reals: values)
    }

    /// Copies elements where each output axis contributes to the source index on its own: the output element at
    /// index (i₀, …, iₙ) comes from input element Σₐ `source(a, iₐ)` (a linear index). Transpose, Tile, Split and
    /// Slice are all of this form.
    func gatherByAxis(_ x: ConstantTensor, shape: [Int], source: (_ axis: Int, _ index: Int) -> Int) -> ConstantTensor? {
        gatherElements(x, shape: shape) { o in
            var rest = o, linear = 0
            for axis in stride(from: shape.count - 1, through: 0, by: -1) {
                let (q, r) = rest.quotientAndRemainder(dividingBy: shape[axis])
                rest = q
                linear += source(axis, r)
            }
            return linear
        }
    }

    /// Row-major strides, in elements.
    static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        return strides
    }
}
