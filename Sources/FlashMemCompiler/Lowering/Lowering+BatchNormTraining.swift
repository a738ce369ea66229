// BatchNormalization with training_mode = 1 (opset ≥ 14), rewritten before the lowering passes into ops the
// lowering already has. Training mode is deterministic: Y normalizes X with the batch's own statistics, the
// mean and population variance over N and the spatial axes of each channel, and the optional outputs blend them
// into the running statistics (onnx/reference/ops/op_batch_normalization.py, opsets 14 and 15):
//
//   mean     = ReduceMean(X, axes ≠ 1, keepdims)                     [1, C, 1…]
//   centered = X − mean
//   var      = ReduceMean(centered · centered, axes ≠ 1, keepdims)   [1, C, 1…]
//   Y        = centered · (scale / √(var + ε)) + B                   (scale, B viewed as [C, 1…])
//   running_mean = input_mean · momentum + mean · (1 − momentum)     (mean, var viewed as [C])
//   running_var  = input_var · momentum + var · (1 − momentum)
//
// Four passes over X-sized tensors (two reductions, the centring, the square; the affine map is two more), a
// rare cost: inference graphs use inference mode, which keeps its own fast path (folded into a Conv, else
// batchnorm.comp in Lowering+BatchNorm.swift). Owned by the normalization work.

import FMBFormat

extension LoweringContext {
    /// Replaces every training-mode BatchNormalization in `nodes` by the nodes above. Runs before the lowering
    /// passes, so a following Relu fuses into the last Add.
    ///
    /// - Throws: `CompileError` naming the node for an input of rank < 2 or a non-float input or output.
    func expandTrainingBatchNorms() throws {
        guard nodes.contains(where: isTrainingBatchNorm) else { return }
        var expanded: [LoweringNode] = []
        for n in nodes {
            if isTrainingBatchNorm(n) {
                expanded += try trainingBatchNormNodes(n)
            } else {
                expanded.append(n)
            }
        }
        nodes = expanded
    }

    private func isTrainingBatchNorm(_ n: LoweringNode) -> Bool {
        n.op == "BatchNormalization" && (n.node.domain.isEmpty || n.node.domain == "ai.onnx")
            && n.node.int("training_mode", default: 0) != 0
    }

    /// The nodes computing `n`'s outputs (Y, and running_mean / running_var where the graph asks for them).
    private func trainingBatchNormNodes(_ n: LoweringNode) throws -> [LoweringNode] {
        let x = try input(n, 0), y = try output(n)
        let parameters = try (1...4).map { try input(n, $0) }
        try requireFloat(n, [x, y] + parameters + n.node.outputs.dropFirst().filter { !$0.isEmpty })
        let xShape = try shape(x, of: n)
        guard xShape.count >= 2 else {
            throw error(n, "the input \(xShape) needs a batch and a channel axis (rank ≥ 2)")
        }
        let channels = xShape[1]
        let statShape = xShape.indices.map { $0 == 1 ? channels : 1 }  // [1, C, 1…]
        let parameterShape = Array(statShape.dropFirst())  // [C, 1…]: broadcasts against X from the right
        var builder = NodeExpansion(context: self, original: n)

        let mean = builder.reduceMean(x, shape: statShape, name: "mean")
        let centered = builder.op("Sub", [x, mean], shape: xShape, name: "centered")
        let squared = builder.op("Mul", [centered, centered], shape: xShape, name: "squared")
        let variance = builder.reduceMean(squared, shape: statShape, name: "var")
        let epsilon = builder.scalar(n.node.float("epsilon", default: 1e-5), name: "epsilon")
        let shifted = builder.op("Add", [variance, epsilon], shape: statShape, name: "var_eps")
        let deviation = builder.op("Sqrt", [shifted], shape: statShape, name: "std")
        let scale = builder.view(parameters[0], shape: parameterShape, name: "scale")
        let factor = builder.op("Div", [scale, deviation], shape: statShape, name: "factor")
        let scaled = builder.op("Mul", [centered, factor], shape: xShape, name: "scaled")
        let bias = builder.view(parameters[1], shape: parameterShape, name: "bias")
        builder.op("Add", [scaled, bias], output: y, name: "affine")

        let momentum = n.node.float("momentum", default: 0.9)
        for (i, statistic, name) in [(1, mean, "running_mean"), (2, variance, "running_var")] {
            guard let running = optionalOutput(n, i) else { continue }
            let current = builder.view(statistic, shape: [channels], name: "\(name)_batch")
            builder.blend(previous: parameters[i + 1], current: current, momentum: momentum, output: running,
                          name: name, channels: channels)
        }
        return builder.nodes
    }
}

extension NodeExpansion {
    /// Mean over every axis but the channel axis 1, kept as size-1 axes.
    fileprivate mutating func reduceMean(_ x: String, shape: [Int], name: String) -> String {
        reduce("ReduceMean", x, axes: shape.indices.filter { $0 != 1 }, keepDims: true, shape: shape, name: name)
    }

    /// previous · momentum + current · (1 − momentum) → output, all [C].
    fileprivate mutating func blend(previous: String, current: String, momentum: Float, output: String, name: String,
                                    channels: Int) {
        let kept = op("Mul", [previous, scalar(momentum, name: "momentum")], shape: [channels], name: "\(name)_kept")
        let added = op("Mul", [current, scalar(1 - momentum, name: "one_minus_momentum")], shape: [channels],
                       name: "\(name)_added")
        op("Add", [kept, added], output: output, name: name)
    }
}
