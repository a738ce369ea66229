// LayerNormalization, GroupNormalization and InstanceNormalization → normalize.comp: every one is a per-row
// mean / variance and an affine map whose scale / bias index the kernel derives from two numbers (paramRowMod,
// paramDiv; the table is in normalize.comp's header). Scale and bias are usually constants (resident arena
// tensors: they are small); activations of the exact parameter shape work too.
// Owned by the normalization / reduction family.

import FMBFormat

extension KernelCatalog {
    /// X, scale, bias, Y, Mean, InvStdDev. Push: rows len paramRowMod paramDiv epsilon.
    static let normalize = KernelFamily(file: "normalize.comp", bindings: [BindingKind](repeating: .storageBuffer, count: 6),
                                        pushConstantSize: 5 * 4, axes: [("NORM_HALF_OUT", ["0", "1"])])
}

extension LoweringContext {
    static let normalizationRules: [String: LoweringRule] = [
        "LayerNormalization": { $0.lowerLayerNormalization },
        "GroupNormalization": { $0.lowerGroupNormalization },
        "InstanceNormalization": { $0.lowerInstanceNormalization },
    ]

    /// One normalize.comp dispatch: the parameters of the affine map and where its statistics go.
    struct NormalizeDispatch {
        var x: String
        var y: String
        var scale: String
        var bias: String?
        var rows: Int
        var len: Int
        var paramRowMod: Int
        var paramDiv: Int
        var epsilon: Float
        /// LayerNormalization's Mean and InvStdDev outputs ([rows] elements each), when asked for.
        var stats: (mean: String, invStdDev: String)?
    }

    func lowerLayerNormalization(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let xShape = try shape(x, of: n)
        try requireFloat(n, [x, y])
        let rank = xShape.count
        var axis = n.node.int("axis", default: -1)
        guard axis >= -rank, axis < rank else { throw error(n, "axis \(axis) is out of range for rank \(rank)") }
        if axis < 0 { axis += rank }
        let stash = n.node.int("stash_type", default: 1)
        guard stash == 1 else {
            throw error(n, "stash_type \(stash) is not supported (statistics are computed in float32, stash_type 1)")
        }
        let normalized = Array(xShape[axis...])
        let rows = elementCount(Array(xShape[..<axis])), len = elementCount(normalized)

        // Mean and InvStdDev are written together; an output nobody asked for becomes a scratch tensor.
        var stats: (mean: String, invStdDev: String)?
        let mean = optionalOutput(n, 1), invStdDev = optionalOutput(n, 2)
        if mean != nil || invStdDev != nil {
            try requireFloat(n, [mean, invStdDev].compactMap { $0 })
            stats = (mean ?? temporary("\(n.label)#mean", shape: [rows]),
                     invStdDev ?? temporary("\(n.label)#inv_std_dev", shape: [rows]))
        }
        let scale = try layerNormParameter(n, try input(n, 1), normalized: normalized)
        let bias = try optionalInput(n, 2).map { try layerNormParameter(n, $0, normalized: normalized) }
        try emitNormalize(n, NormalizeDispatch(x: x, y: y, scale: scale, bias: bias, rows: rows, len: len,
                                               paramRowMod: 1, paramDiv: 1,
                                               epsilon: n.node.float("epsilon", default: 1e-5), stats: stats))
    }

    func lowerGroupNormalization(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let xShape = try shape(x, of: n)
        try requireFloat(n, [x, y])
        guard xShape.count >= 2 else { throw error(n, "the input \(xShape) needs N and C") }
        guard case .int(let groups)? = n.node.attributes["num_groups"] else {
            throw error(n, "the num_groups attribute is required")
        }
        let channels = xShape[1], spatial = elementCount(Array(xShape.dropFirst(2)))
        guard groups >= 1, channels % groups == 0 else {
            throw error(n, "num_groups \(groups) does not divide the \(channels) channels")
        }
        let stash = n.node.int("stash_type", default: 1)
        guard stash == 1 else {
            throw error(n, "stash_type \(stash) is not supported (statistics are computed in float32, stash_type 1)")
        }
        let len = channels / groups * spatial
        // Opset 21 scales per channel ([C]); opsets 18–20 per group ([G]).
        let scale = try input(n, 1), bias = try input(n, 2)
        let perChannel: Bool
        switch (try parameterCount(n, scale), try parameterCount(n, bias)) {
        case (channels, channels): perChannel = true
        case (groups, groups): perChannel = false
        case let (s, b):
            throw error(n, "scale (\(s) values) and bias (\(b) values) must both have C = \(channels) (opset 21) "
                        + "or num_groups = \(groups) (opset 18) values")
        }
        try emitNormalize(n, NormalizeDispatch(x: x, y: y, scale: scale, bias: bias, rows: xShape[0] * groups,
                                               len: len, paramRowMod: groups, paramDiv: perChannel ? spatial : len,
                                               epsilon: n.node.float("epsilon", default: 1e-5), stats: nil))
    }

    func lowerInstanceNormalization(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let xShape = try shape(x, of: n)
        try requireFloat(n, [x, y])
        guard xShape.count >= 2 else { throw error(n, "the input \(xShape) needs N and C") }
        let channels = xShape[1], spatial = elementCount(Array(xShape.dropFirst(2)))
        let scale = try input(n, 1), bias = try input(n, 2)
        for name in [scale, bias] where try parameterCount(n, name) != channels {
            throw error(n, "'\(name)' must have C = \(channels) values")
        }
        try emitNormalize(n, NormalizeDispatch(x: x, y: y, scale: scale, bias: bias, rows: xShape[0] * channels,
                                               len: spatial, paramRowMod: channels, paramDiv: spatial,
                                               epsilon: n.node.float("epsilon", default: 1e-5), stats: nil))
    }

    // MARK: - Helpers

    func emitNormalize(_ n: LoweringNode, _ d: NormalizeDispatch) throws {
        if d.rows * d.len == 0 {
            try lowerAsView(n, x: d.x, y: d.y)  // nothing to normalize (statistics of no rows are empty too)
            if let stats = d.stats {
                try fillConstant(n, stats.mean, shape: try shape(stats.mean, of: n), value: 0, integerValue: nil)
                try fillConstant(n, stats.invStdDev, shape: try shape(stats.invStdDev, of: n), value: 0, integerValue: nil)
            }
            return
        }
        let wg = d.len >= 2048 ? 256 : 64
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.normalize,
                                                   specConstants: [UInt32(wg), d.bias == nil ? 0 : 1, d.stats == nil ? 0 : 1],
                                                   workgroupSize: [UInt32(wg), 1, 1], sharedMemoryBytes: wg * 4))
        var push = PushConstants()
        push.append([d.rows, d.len, d.paramRowMod, d.paramDiv])
        push.append(d.epsilon)
        let x = try read(d.x, for: n), scale = try read(d.scale, for: n)
        let bias = try d.bias.map { try read($0, for: n) } ?? scale
        let y = try write(d.y, for: n)
        var stats = [y, y]
        if let names = d.stats {
            stats = [try write(names.mean, for: n), try write(names.invStdDev, for: n)]
        }
        let count = d.rows * d.len
        if d.stats == nil {
            halfOutputCandidates.normalizations[d.y] = .init(step: program.steps.count, rows: d.rows, len: d.len,
                                                             workgroup: wg, hasBias: d.bias != nil)
        }
        try emit(n, kernel: kernel, groups: try groups1D(n, items: d.rows, perGroup: 1),
                 bindings: [x, scale, bias, y] + stats, push: push,
                 flops: Double(count * 7), bytes: Double(count * 16))
    }

    /// Output `i` of `n` when present (non-empty).
    func optionalOutput(_ n: LoweringNode, _ i: Int) -> String? {
        i < n.node.outputs.count && !n.node.outputs[i].isEmpty ? n.node.outputs[i] : nil
    }

    /// Elements of a float parameter tensor.
    private func parameterCount(_ n: LoweringNode, _ name: String) throws -> Int {
        try requireFloat(n, [name])
        return elementCount(try shape(name, of: n))
    }

    /// LayerNormalization's Scale or B as a tensor of exactly the normalized shape's elements: a constant that
    /// broadcasts to it is expanded at compile time; an activation must have that many elements already.
    private func layerNormParameter(_ n: LoweringNode, _ name: String, normalized: [Int]) throws -> String {
        try requireFloat(n, [name])
        let pShape = try shape(name, of: n)
        guard Broadcast.shape(pShape, normalized) == normalized else {
            throw error(n, "'\(name)' \(pShape) does not broadcast to the normalized shape \(normalized)")
        }
        let len = elementCount(normalized)
        if elementCount(pShape) == len {
            return name
        }
        guard let constant = initializers[name] else {
            throw error(n, "'\(name)' \(pShape) is computed at run time; only a run-time Scale / B of the normalized "
                        + "shape \(normalized) is supported (a constant one may broadcast)")
        }
        let values = constant.floats()
        let strides = Broadcast.strides(of: pShape, broadcastTo: normalized)
        var expanded = [Float](repeating: 0, count: len)
        for i in 0..<len {
            var rest = i, source = 0
            for d in stride(from: normalized.count - 1, through: 0, by: -1) {
                source += (rest % normalized[d]) * strides[d]
                rest /= normalized[d]
            }
            expanded[i] = values[source]
        }
        let expandedName = temporary("\(name)#expanded", shape: normalized)
        initializers[expandedName] = LoweringPasses.constant(expanded, shape: normalized)
        return expandedName
    }
}
