// Shape inference of the spatial operators (Conv, MaxPool/AveragePool) and normalizations, and the window
// geometry lowering reuses. Owned by the importer / shape inference.

/// The sliding-window geometry of a Conv or pool node over one input: kernel, strides, dilations, the resolved
/// pads (auto_pad applied) and the output's spatial size, one entry per spatial axis. Lowering uses it so that
/// it reads auto_pad and ceil_mode exactly as shape inference did.
public struct WindowGeometry: Sendable, Equatable {
    public var kernel: [Int]
    public var strides: [Int]
    public var dilations: [Int]
    public var padsBegin: [Int]
    public var padsEnd: [Int]
    /// Output size per spatial axis.
    public var output: [Int]

    /// Resolves the attributes `strides`, `dilations`, `pads`, `auto_pad` (NOTSET, SAME_UPPER, SAME_LOWER, VALID)
    /// and `ceil_mode` of `node` for an input whose spatial sizes are `input`.
    ///
    /// With ceil_mode a last window that would start in the end padding is dropped (the ONNX spec's rule, which
    /// onnxruntime follows; onnx's own shape inference keeps it).
    public init(node: Node, input: [Int], kernel: [Int]) throws {
        let n = input.count
        func perAxis(_ key: String, default value: Int) throws -> [Int] {
            guard let v = node.ints(key) else { return [Int](repeating: value, count: n) }
            guard v.count == n else { throw ShapeRuleError("\(key) \(v) must have \(n) entries") }
            return v
        }
        guard kernel.count == n else { throw ShapeRuleError("kernel_shape \(kernel) must have \(n) entries") }
        self.kernel = kernel
        strides = try perAxis("strides", default: 1)
        dilations = try perAxis("dilations", default: 1)
        let ceilMode = node.int("ceil_mode", default: 0) != 0
        guard kernel.allSatisfy({ $0 >= 1 }), strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }) else {
            throw ShapeRuleError("kernel \(kernel), strides \(strides) and dilations \(dilations) must be positive")
        }
        let autoPad = node.string("auto_pad") ?? "NOTSET"
        padsBegin = [Int](repeating: 0, count: n)
        padsEnd = [Int](repeating: 0, count: n)
        output = [Int](repeating: 0, count: n)
        switch autoPad {
        case "NOTSET", "":
            if let pads = node.ints("pads") {
                guard pads.count == 2 * n, pads.allSatisfy({ $0 >= 0 }) else {
                    throw ShapeRuleError("pads \(pads) must be \(2 * n) non-negative values")
                }
                padsBegin = Array(pads[..<n])
                padsEnd = Array(pads[n...])
            }
        case "VALID":
            break
        case "SAME_UPPER", "SAME_LOWER":
            for i in 0..<n {
                let out = (input[i] + strides[i] - 1) / strides[i]
                let effective = (kernel[i] - 1) * dilations[i] + 1
                let total = max(0, (out - 1) * strides[i] + effective - input[i])
                // SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning.
                let small = total / 2
                padsBegin[i] = autoPad == "SAME_UPPER" ? small : total - small
                padsEnd[i] = total - padsBegin[i]
            }
        default:
            throw ShapeRuleError("auto_pad '\(autoPad)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        }
        for i in 0..<n {
            let effective = (kernel[i] - 1) * dilations[i] + 1
            let span = input[i] + padsBegin[i] + padsEnd[i] - effective
            guard span >= 0 else {
                throw ShapeRuleError("the window (kernel \(kernel[i]), dilation \(dilations[i])) is larger than "
                    + "spatial axis \(i) of the padded input (\(input[i]) + pads \(padsBegin[i]), \(padsEnd[i]))")
            }
            var out = (ceilMode ? (span + strides[i] - 1) / strides[i] : span / strides[i]) + 1
            if ceilMode && (out - 1) * strides[i] >= input[i] + padsBegin[i] { out -= 1 }
            output[i] = out
        }
    }
}

extension ShapeInference {
    /// X [N, C, D1…], W [M, C/group, k1…], optional B [M] → [N, M, O1…]. 1-D and 2-D (and more) alike.
    func conv(_ c: NodeContext) throws -> TensorType {
        let x = try c.input(0), w = try c.input(1)
        try c.requireSameDType([x, w])
        guard x.shape.count >= 3, w.shape.count == x.shape.count else {
            throw c.fail("X \(IRText.shape(x.shape)) and W \(IRText.shape(w.shape)) must have the same rank ≥ 3")
        }
        let group = c.node.int("group", default: 1)
        let channels = x.shape[1], filters = w.shape[0]
        guard group >= 1, channels % group == 0, filters % group == 0, w.shape[1] * group == channels else {
            throw c.fail("X has \(channels) channels, W \(IRText.shape(w.shape)) and group \(group) do not match "
                + "(W[1] × group must equal the channels, group must divide W[0])")
        }
        let kernel = Array(w.shape[2...])
        if let declared = c.node.ints("kernel_shape"), declared != kernel {
            throw c.fail("kernel_shape \(declared) differs from the weight's \(kernel)")
        }
        if let bias = try c.optionalInput(2), bias.shape != [filters] {
            throw c.fail("B \(IRText.shape(bias.shape)) must be [\(filters)]")
        }
        let geometry = try WindowGeometry(node: c.node, input: Array(x.shape[2...]), kernel: kernel)
        return TensorType(dtype: x.dtype, shape: [x.shape[0], filters] + geometry.output)
    }

    /// MaxPool (with its optional Indices output), AveragePool, LpPool.
    func pool(_ c: NodeContext) throws -> [TensorType] {
        let x = try c.input(0)
        guard x.shape.count >= 3 else { throw c.fail("X must have rank ≥ 3, not \(IRText.shape(x.shape))") }
        guard let kernel = c.node.ints("kernel_shape") else { throw c.fail("kernel_shape is required") }
        let geometry = try WindowGeometry(node: c.node, input: Array(x.shape[2...]), kernel: kernel)
        let y = TensorType(dtype: x.dtype, shape: Array(x.shape[..<2]) + geometry.output)
        return [y, TensorType(dtype: .int64, shape: y.shape)]
    }

    /// Inference form: Y like X; the training outputs (running mean/var, opset ≥ 14; saved mean/var before) are
    /// [C].
    func batchNormalization(_ c: NodeContext) throws -> [TensorType] {
        let x = try c.input(0)
        guard x.shape.count >= 2 else { throw c.fail("X must have rank ≥ 2, not \(IRText.shape(x.shape))") }
        let channels = x.shape[1]
        for i in 1...4 {
            let p = try c.input(i)
            guard p.shape == [channels] else {
                throw c.fail("input '\(c.node.inputs[i])' is \(IRText.shape(p.shape)), expected [\(channels)]")
            }
        }
        let perChannel = TensorType(dtype: x.dtype, shape: [channels])
        return [x, perChannel, perChannel, perChannel, perChannel]
    }

    /// Y like X; Mean and InvStdDev keep the axes before `axis` and are 1 from there on.
    func layerNormalization(_ c: NodeContext) throws -> [TensorType] {
        let x = try c.input(0)
        let axis = try ShapeRules.axis(c.node.int("axis", default: -1), rank: x.shape.count)
        let normalized = Array(x.shape[axis...])
        let scale = try c.input(1)
        guard try ShapeRules.broadcast([scale.shape, normalized]) == normalized else {
            throw c.fail("Scale \(IRText.shape(scale.shape)) does not broadcast to \(IRText.shape(normalized))")
        }
        let stashType = DType(rawValue: Int32(truncatingIfNeeded: c.node.int("stash_type", default: 1))) ?? .float32
        let stats = TensorType(dtype: stashType, shape: Array(x.shape[..<axis]) + [Int](repeating: 1, count: x.shape.count - axis))
        return [x, stats, stats]
    }
}
