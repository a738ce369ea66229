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
        // Into X itself where nothing reads X afterwards (an unfused attention's scores): Y is then a view of X, so
        // the arena never holds both (Depth Anything S: its live peak was one block's scores and their softmax).
        let inPlace = mayOverwrite(x, for: n)
        let kernel = try self.kernel(KernelRequest(family: inPlace ? KernelCatalog.softmaxInPlace : KernelCatalog.softmax,
                                                   defines: inPlace ? ["SOFTMAX_IN_PLACE": "1"] : [:],
                                                   specConstants: [UInt32(wg), log],
                                                   workgroupSize: [UInt32(wg), 1, 1], sharedMemoryBytes: wg * 4))
        var push = PushConstants()
        push.append([rows, len, inner])
        let count = rows * len
        let bindings: [LoweredBinding]
        if inPlace {
            bindings = [try read(x, for: n)]
            try registerView(y, of: x, for: n)
        } else {
            bindings = [try read(x, for: n), try write(y, for: n)]
        }
        try emit(n, kernel: kernel, groups: try groups1D(n, items: rows, perGroup: 1), bindings: bindings, push: push,
                 flops: Double(count * 5), bytes: Double(count * 12))
    }

    /// Whether `n` may write its output over its input `x`: x is an arena tensor a step computed (not a view, a
    /// constant, a model input or output, or a checked tensor), nothing else binds it yet but its producer, and
    /// `n` is the only node that reads it; `n` runs unconditionally.
    func mayOverwrite(_ x: String, for n: LoweringNode) -> Bool {
        guard n.predicate == nil, let tensor = program.tensors[x], tensor.viewOf == nil, tensor.constant == nil,
              !graph.inputs.contains(where: { $0.name == x }), !graph.outputs.contains(where: { $0.name == x }),
              !program.checks.contains(where: { $0.tensor == x }),
              !program.tensors.values.contains(where: { $0.viewOf == x }),
              program.steps.filter({ $0.bindings.contains(.tensor(x)) }).count == 1 else { return false }
        return nodes.filter { $0.node.inputs.contains(x) }.count == 1
    }
}
