// Pure views (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout in inference): no kernel, the
// output is a `viewOf` arena tensor (same bytes). A view of a constant is a constant of the new shape, so
// e.g. a reshaped weight still reaches its Gemm as a weight image. Also Constant nodes, should the importer
// leave any.

import FMBFormat

extension LoweringContext {
    func lowerView(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        // Training first: random dropping is why its mask cannot be computed, so that is what to name.
        if n.op == "Dropout", graph.isTrainingDropout(n.node) {
            throw error(n, "Dropout with training_mode = true is not supported (FlashMem compiles inference graphs)")
        }
        if n.op == "Dropout", n.node.outputs.count > 1, !n.node.outputs[1].isEmpty {
            throw error(n, "the mask output of Dropout is not supported")
        }
        let yShape = try shape(y, of: n)
        if let constant = initializers[x] {
            guard constant.elementCount == elementCount(yShape) else {
                throw error(n, "views \(constant.shape) as \(yShape), which differ in size")
            }
            initializers[y] = ConstantTensor(dtype: constant.dtype, shape: yShape, bytes: constant.bytes)
            return
        }
        let xShape = try shape(x, of: n)
        guard elementCount(xShape) == elementCount(yShape) else {
            throw error(n, "views \(xShape) as \(yShape), which differ in size")
        }
        try registerView(y, of: x, for: n)
    }

    func lowerConstantNode(_ n: LoweringNode) throws {
        let y = try output(n)
        guard case .tensor(let value)? = n.node.attributes["value"] else {
            throw error(n, "only Constant nodes with a 'value' tensor are supported")
        }
        initializers[y] = value
    }
}
