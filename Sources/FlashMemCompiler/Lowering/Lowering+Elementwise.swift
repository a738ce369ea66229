// Element-wise ops: Add / Sub / Mul / Div → binary.comp (numpy broadcasting through per-operand strides),
// Relu / Sigmoid / Tanh → unary.comp. Constant operands become resident arena tensors.

import FMBFormat

/// binary.comp's OP specialization constant.
enum BinaryOp: UInt32 {
    case add = 0
    case sub = 1
    case mul = 2
    case div = 3

    init?(op: String) {
        switch op {
        case "Add": self = .add
        case "Sub": self = .sub
        case "Mul": self = .mul
        case "Div": self = .div
        default: return nil
        }
    }
}

/// numpy broadcasting as strides.
enum Broadcast {
    /// The broadcast shape of `a` and `b` (right-aligned), or nil if they do not broadcast.
    static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        let a = [Int](repeating: 1, count: rank - a.count) + a
        let b = [Int](repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for d in 0..<rank {
            guard a[d] == b[d] || a[d] == 1 || b[d] == 1 else { return nil }
            out.append(a[d] == 1 ? b[d] : a[d])
        }
        return out
    }

    /// Element strides of a contiguous tensor of `shape` read at the coordinates of `out` (right-aligned):
    /// 0 on dims it is broadcast along.
    static func strides(of shape: [Int], broadcastTo out: [Int]) -> [Int] {
        let shape = [Int](repeating: 1, count: out.count - shape.count) + shape
        var strides = [Int](repeating: 0, count: out.count)
        var run = 1
        for d in stride(from: out.count - 1, through: 0, by: -1) {
            strides[d] = shape[d] == 1 ? 0 : run
            run *= shape[d]
        }
        return strides
    }

    /// Drops size-1 dims and merges each dim into its outer neighbour when every operand is contiguous across
    /// the pair (outer stride = inner stride × inner size). Never returns rank 0: a scalar is [1].
    static func coalesce(shape: [Int], strides: [[Int]]) -> (shape: [Int], strides: [[Int]]) {
        var outShape: [Int] = []
        var outStrides = [[Int]](repeating: [], count: strides.count)
        for d in shape.indices where shape[d] != 1 {
            if let last = outShape.indices.last,
               strides.indices.allSatisfy({ outStrides[$0][last] == strides[$0][d] * shape[d] }) {
                outShape[last] *= shape[d]
                for o in strides.indices { outStrides[o][last] = strides[o][d] }
            } else {
                outShape.append(shape[d])
                for o in strides.indices { outStrides[o].append(strides[o][d]) }
            }
        }
        if outShape.isEmpty {
            return ([1], strides.map { _ in [0] })
        }
        return (outShape, outStrides)
    }
}

extension LoweringContext {
    func lowerBinary(_ n: LoweringNode) throws {
        guard let op = BinaryOp(op: n.op) else {
            throw error(n, "internal: not a binary op")
        }
        try emitBinary(n, op: op, a: try input(n, 0), b: try input(n, 1), y: try output(n))
    }

    /// binary.comp: Y = act(A op B) with numpy broadcasting (up to 6 distinct dims after coalescing).
    func emitBinary(_ n: LoweringNode, op: BinaryOp, a: String, b: String, y: String) throws {
        try requireFloat(n, [a, b, y])
        let aShape = try shape(a, of: n), bShape = try shape(b, of: n), yShape = try shape(y, of: n)
        guard let outShape = Broadcast.shape(aShape, bShape), outShape == yShape else {
            throw error(n, "operands \(aShape) and \(bShape) do not broadcast to the output \(yShape)")
        }
        let dims = Broadcast.coalesce(shape: outShape, strides: [Broadcast.strides(of: aShape, broadcastTo: outShape),
                                                                 Broadcast.strides(of: bShape, broadcastTo: outShape)])
        let maxRank = 6
        guard dims.shape.count <= maxRank else {
            throw error(n, "broadcasting over more than \(maxRank) distinct dims is not supported (\(aShape) and \(bShape))")
        }
        let count = elementCount(outShape)
        let wg = 256
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.binary,
                                                   specConstants: [UInt32(wg), op.rawValue, n.activation.rawValue],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        let pad = maxRank - dims.shape.count
        var push = PushConstants()
        push.append([count, dims.shape.count])
        push.append(dims.shape + [Int](repeating: 1, count: pad))
        push.append(dims.strides[0] + [Int](repeating: 0, count: pad))
        push.append(dims.strides[1] + [Int](repeating: 0, count: pad))
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(a, for: n), try read(b, for: n), try write(y, for: n)], push: push,
                 flops: Double(count),
                 bytes: Double((elementCount(aShape) + elementCount(bShape) + count) * 4))
    }

    func lowerUnary(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        try requireFloat(n, [x, y])
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        guard elementCount(xShape) == elementCount(yShape) else {
            throw error(n, "input \(xShape) and output \(yShape) differ in size")
        }
        let op: UInt32 = n.op == "Relu" ? 0 : (n.op == "Sigmoid" ? 1 : 2)
        let count = elementCount(xShape)
        let wg = 256
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.unary, specConstants: [UInt32(wg), op],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        var push = PushConstants()
        push.append(count)
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(x, for: n), try write(y, for: n)], push: push,
                 flops: Double(count), bytes: Double(count * 8))
    }
}
