// BatchNormalization (inference mode) that LoweringPasses.foldBatchNorm could not fold into a Conv →
// batchnorm.comp with its four parameters folded into one resident constant (scale[C] then shift[C]). Any input
// rank ≥ 2 ([N, C], [N, C, L], [N, C, D, H, W]…): the kernel sees [N, C, inner]. Training mode is rewritten into
// other ops before this (Lowering+BatchNormTraining.swift). Owned by the normalization family.

import FMBFormat

extension LoweringContext {
    func lowerBatchNorm(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        try requireFloat(n, [x, y])
        if n.node.int("training_mode", default: 0) != 0 {
            throw error(n, "internal: training_mode = 1 reached the inference kernel (expandTrainingBatchNorms in "
                        + "Lowering+BatchNormTraining.swift rewrites it)")
        }
        if n.node.int("spatial", default: 1) != 1 {
            throw error(n, "spatial = 0 is not supported")
        }
        if n.node.outputs.dropFirst().contains(where: { !$0.isEmpty }) {
            throw error(n, "the running mean / variance outputs are not supported (inference only)")
        }
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        guard xShape == yShape, xShape.count >= 2 else {
            throw error(n, "input \(xShape) and output \(yShape) must be equal, of rank ≥ 2")
        }
        let channels = xShape[1]
        var params: [[Float]] = []
        for i in 1...4 {
            let name = try input(n, i)
            guard let constant = initializers[name] else {
                throw error(n, "parameter '\(name)' is computed at run time; only constant BatchNormalization "
                            + "parameters are supported (they are folded into one scale and shift)")
            }
            guard constant.dtype.isFloat, constant.elementCount == channels else {
                throw error(n, "parameter '\(name)' must be a float tensor of \(channels) values, not \(constant.dtype) \(constant.shape)")
            }
            params.append(constant.floats())
        }
        let epsilon = n.node.float("epsilon", default: 1e-5)
        let scale = (0..<channels).map { params[0][$0] / (params[3][$0] + epsilon).squareRoot() }
        let shift = (0..<channels).map { params[1][$0] - params[2][$0] * scale[$0] }
        let paramName = temporary("\(n.label)#scale_shift", shape: [2 * channels])
        initializers[paramName] = LoweringPasses.constant(scale + shift, shape: [2 * channels])

        let count = elementCount(xShape)
        let inner = elementCount(Array(xShape.dropFirst(2)))
        let wg = 256
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.batchnorm,
                                                   specConstants: [UInt32(wg), n.activation.rawValue],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        var push = PushConstants()
        push.append([count, channels, inner])
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(x, for: n), try read(paramName, for: n), try write(y, for: n)], push: push,
                 flops: Double(2 * count), bytes: Double((2 * count + 2 * channels) * 4))
    }
}
