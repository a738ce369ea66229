// Softmax and LogSoftmax → softmax.comp over an [outer, len, inner] view of the tensor (any axis; the opset < 13
// coerce-to-2-D semantics too). Softmax is dispatched by Lowering.swift's switch, LogSoftmax by `softmaxRules`.
// Owned by the normalization / reduction family.

import FMBFormat

extension LoweringContext {
    static let softmaxRules: [String: LoweringRule] = ["LogSoftmax": { $0.lowerSoftmax }]

    /// Softmax or LogSoftmax (by `n.op`).
    func lowerSoftmax(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        try requireFloat(n, [x, y])
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        guard xShape == yShape else {
            throw error(n, "input \(xShape) and output \(yShape) differ")
        }
        let rank = max(xShape.count, 1)
        let shape = xShape.isEmpty ? [1] : xShape
        // Opset < 13 coerces the input to 2-D at `axis` (default 1): the row is everything from axis on.
        // Opset ≥ 13 normalizes along the one axis (default -1).
        let legacy = graph.opset < 13
        var axis = n.node.int("axis", default: legacy ? 1 : -1)
        if axis < 0 { axis += rank }
        guard axis >= 0, axis < rank else {
            throw error(n, "axis \(n.node.int("axis", default: 0)) is out of range for rank \(rank)")
        }
        if elementCount(shape) == 0 {
            try lowerAsView(n, x: x, y: y)  // nothing to normalize
            return
        }
        let outer = elementCount(Array(shape[..<axis]))
        let len = legacy ? elementCount(Array(shape[axis...])) : shape[axis]
        let inner = legacy ? 1 : elementCount(Array(shape[(axis + 1)...]))
        let rows = outer * inner
        let wg = len >= 1024 ? 256 : 64
        let log: UInt32 = n.op == "LogSoftmax" ? 1 : 0
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.softmax, specConstants: [UInt32(wg), log],
                                                   workgroupSize: [UInt32(wg), 1, 1], sharedMemoryBytes: wg * 4))
        var push = PushConstants()
        push.append([rows, len, inner])
        let count = rows * len
        try emit(n, kernel: kernel, groups: try groups1D(n, items: rows, perGroup: 1),
                 bindings: [try read(x, for: n), try write(y, for: n)], push: push,
                 flops: Double(count * 5), bytes: Double(count * 12))
    }
}
