// ScatterND → scatter_nd.comp (one step: each output element takes its data value and every update addressed to
// it, in order) and OneHot → onehot.comp. Both fold at compile time when their inputs are constants
// (ConstantFolding+Scatter.swift). Operands are parsed by ScatterOperands (ShapeInference+Scatter.swift).
// Owned by the data-movement family.

import FMBFormat

extension KernelCatalog {
    /// X, I, U, Y. Push: count sliceSize updates k dims[8].
    static let scatterND = KernelFamily(file: "scatter_nd.comp",
                                        bindings: [.storageBuffer, .storageBuffer, .storageBuffer, .storageBuffer],
                                        pushConstantSize: 12 * 4, axes: [("SCATTER_INT", ["0", "1"])])
    /// I, V, Y. Push: count depth inner.
    static let oneHot = KernelFamily(file: "onehot.comp", bindings: [.storageBuffer, .storageBuffer, .storageBuffer],
                                     pushConstantSize: 3 * 4, axes: [("ONEHOT_FLOAT", ["0", "1"])])

    /// The scatter kernels (listed in `KernelCatalog.all`).
    static let scatterFamilies: [KernelFamily] = [scatterND, oneHot]
}

extension LoweringContext {
    static let scatterRules: [String: LoweringRule] = [
        "ScatterND": { $0.lowerScatterND },
        "OneHot": { $0.lowerOneHot },
    ]

    /// The most index dimensions (k) scatter_nd.comp's push block holds.
    static let scatterMaxDepth = 8

    func lowerScatterND(_ n: LoweringNode) throws {
        let x = try input(n, 0), indices = try input(n, 1), updates = try input(n, 2), y = try output(n)
        let c = nodeContext(n)
        let xShape = try shape(x, of: n)
        guard let indexType = dtype(indices), let updateType = dtype(updates), let dataType = dtype(x) else {
            throw error(n, "internal: the dtypes of the operands are unknown")
        }
        let scatter = try ScatterOperands.scatterND(c, data: xShape,
                                                    indices: TensorType(dtype: indexType, shape: try shape(indices, of: n)),
                                                    updates: TensorType(dtype: updateType, shape: try shape(updates, of: n)))
        guard scatter.depth <= Self.scatterMaxDepth else {
            throw error(n, "index tuples of \(scatter.depth) dimensions are not supported (at most \(Self.scatterMaxDepth))")
        }
        let integer = !dataType.isFloat
        if integer && dataType == .bool && scatter.reduction != .none {
            throw error(n, "reduction on bool data is not supported")
        }
        let count = elementCount(xShape)
        let destination = try write(y, for: n)
        guard count > 0 else { return }
        var push = PushConstants()
        push.append([count, scatter.sliceSize, scatter.updates, scatter.depth])
        push.append(scatter.indexedShape + [Int](repeating: 1, count: Self.scatterMaxDepth - scatter.depth))
        let wg = 256
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.scatterND,
                                                   defines: ["SCATTER_INT": integer ? "1" : "0"],
                                                   specConstants: [UInt32(wg), scatter.reduction.rawValue],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        let reads = Double(count) * Double(1 + scatter.updates * (scatter.depth + 1)) * 4
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(x, for: n), try read(indices, for: n), try read(updates, for: n), destination],
                 push: push, flops: 0, bytes: reads)
    }

    func lowerOneHot(_ n: LoweringNode) throws {
        let indices = try input(n, 0), values = try input(n, 2), y = try output(n)
        let oneHot = try ScatterOperands.oneHot(nodeContext(n), indices: try shape(indices, of: n))
        let count = elementCount(oneHot.outputShape)
        let destination = try write(y, for: n)
        guard count > 0 else { return }
        var push = PushConstants()
        push.append([count, oneHot.depth, oneHot.inner])
        let wg = 256
        let floatIndices = dtype(indices)?.isFloat ?? false
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.oneHot,
                                                   defines: ["ONEHOT_FLOAT": floatIndices ? "1" : "0"],
                                                   specConstants: [UInt32(wg)], workgroupSize: [UInt32(wg), 1, 1]))
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(indices, for: n), try read(values, for: n), destination], push: push, flops: 0,
                 bytes: Double(count) * 8)
    }
}
