// Shape inference of the spatial operators (Conv, ConvTranspose, MaxPool/AveragePool) and normalizations, and
// the window geometry lowering reuses. Owned by the importer / shape inference.

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
        let window = try WindowAttributes(node: node, kernel: kernel, axes: n)
        self.kernel = kernel
        strides = window.strides
        dilations = window.dilations
        let ceilMode = node.int("ceil_mode", default: 0) != 0
        let autoPad = node.string("auto_pad") ?? "NOTSET"
        padsBegin = [Int](repeating: 0, count: n)
        padsEnd = [Int](repeating: 0, count: n)
        output = [Int](repeating: 0, count: n)
        switch autoPad {
        case "NOTSET", "":
            if let pads = try window.explicitPads() { (padsBegin, padsEnd) = pads }
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
        guard group >= 1, group <= ShapeRules.maxDimension, channels % group == 0, filters % group == 0,
              w.shape[1] * group == channels else {
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

/// The attributes every windowed node (Conv, the pools, ConvTranspose) reads the same way, checked: strides and
/// dilations with one positive entry per spatial axis (default 1), the kernel likewise, explicit `pads`.
private struct WindowAttributes {
    let node: Node
    let axes: Int
    let strides: [Int]
    let dilations: [Int]

    init(node: Node, kernel: [Int], axes: Int) throws {
        self.node = node
        self.axes = axes
        guard kernel.count == axes else { throw ShapeRuleError("kernel_shape \(kernel) must have \(axes) entries") }
        strides = try Self.perAxis(node, "strides", axes: axes, default: 1)
        dilations = try Self.perAxis(node, "dilations", axes: axes, default: 1)
        guard kernel.allSatisfy({ $0 >= 1 }), strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }) else {
            throw ShapeRuleError("kernel \(kernel), strides \(strides) and dilations \(dilations) must be positive")
        }
    }

    /// Attribute `key` of `node` with one entry per spatial axis, or `value` on every axis when absent.
    static func perAxis(_ node: Node, _ key: String, axes: Int, default value: Int) throws -> [Int] {
        guard let v = node.ints(key) else { return [Int](repeating: value, count: axes) }
        guard v.count == axes else { throw ShapeRuleError("\(key) \(v) must have \(axes) entries") }
        try Self.checkMagnitude(v, key)
        return v
    }

    /// Window attributes no larger than a dimension: then every size the window arithmetic computes (at most two
    /// products of two such values, plus a few) stays inside Int.
    static func checkMagnitude(_ values: [Int], _ key: String) throws {
        if let v = values.first(where: { $0.magnitude > UInt(ShapeRules.maxDimension) }) {
            throw ShapeRuleError("\(key) entry \(v) is larger than any dimension (\(ShapeRules.maxDimension))")
        }
    }

    /// `pads` as (begin, end) per axis, or nil when the node has none.
    func explicitPads() throws -> (begin: [Int], end: [Int])? {
        guard let pads = node.ints("pads") else { return nil }
        guard pads.count == 2 * axes, pads.allSatisfy({ $0 >= 0 }) else {
            throw ShapeRuleError("pads \(pads) must be \(2 * axes) non-negative values")
        }
        try Self.checkMagnitude(pads, "pads")
        return (Array(pads[..<axes]), Array(pads[axes...]))
    }
}

// MARK: - ConvTranspose

/// The geometry of a ConvTranspose node over one input, one entry per spatial axis: kernel, strides, dilations,
/// output_padding, the resolved pads and the output's spatial size. Lowering reads it so that it resolves pads
/// exactly as shape inference did.
///
/// Per axis the scattered result spans full = (in − 1)·stride + output_padding + (kernel − 1)·dilation + 1
/// positions and the output is positions [padsBegin, full − padsEnd) of it. Following onnxruntime (1.32) and
/// the spec: `output_shape` (spatial sizes) fixes the output and total = max(0, full − output) is split with the
/// odd unit at the beginning, or at the end with SAME_UPPER; an output_shape up to stride − 1 past `full` leaves
/// zeros (bias) at the end. SAME_UPPER / SAME_LOWER aim at in · stride the same way (never growing past
/// `full`); VALID pads nothing; NOTSET takes `pads`.
public struct TransposedWindowGeometry: Sendable, Equatable {
    public var kernel: [Int]
    public var strides: [Int]
    public var dilations: [Int]
    public var outputPadding: [Int]
    public var padsBegin: [Int]
    public var padsEnd: [Int]
    /// Output size per spatial axis.
    public var output: [Int]

    /// Resolves `strides`, `dilations`, `output_padding`, `pads`, `auto_pad` and `output_shape` of `node` for an
    /// input whose spatial sizes are `input`.
    public init(node: Node, input: [Int], kernel: [Int]) throws {
        let n = input.count
        let window = try WindowAttributes(node: node, kernel: kernel, axes: n)
        self.kernel = kernel
        strides = window.strides
        dilations = window.dilations
        outputPadding = try WindowAttributes.perAxis(node, "output_padding", axes: n, default: 0)
        for i in 0..<n where outputPadding[i] < 0 || outputPadding[i] >= max(strides[i], dilations[i]) {
            throw ShapeRuleError("output_padding \(outputPadding) must be non-negative and less than "
                + "max(stride, dilation) on every axis (strides \(strides), dilations \(dilations))")
        }
        var full: [Int] = []
        for i in 0..<n {
            let span: Int = (kernel[i] - 1) * dilations[i] + 1
            full.append((input[i] - 1) * strides[i] + outputPadding[i] + span)
        }
        let autoPad = node.string("auto_pad") ?? "NOTSET"
        guard ["NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(autoPad) else {
            throw ShapeRuleError("auto_pad '\(autoPad)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
        }
        padsBegin = [Int](repeating: 0, count: n)
        padsEnd = [Int](repeating: 0, count: n)
        output = full
        if let requested = node.ints("output_shape") {
            try resolve(outputShape: requested, full: full, sameUpper: autoPad == "SAME_UPPER")
        } else if autoPad.hasPrefix("SAME") {
            for i in 0..<n {
                split(axis: i, total: max(0, full[i] - input[i] * strides[i]), sameUpper: autoPad == "SAME_UPPER")
                output[i] = full[i] - padsBegin[i] - padsEnd[i]
            }
        } else if autoPad != "VALID", let pads = try window.explicitPads() {
            (padsBegin, padsEnd) = pads
            output = (0..<n).map { full[$0] - padsBegin[$0] - padsEnd[$0] }
        }
        guard output.allSatisfy({ $0 >= 1 }) else {
            throw ShapeRuleError("the output \(output) would be empty: the input \(input) scatters over \(full) "
                + "positions before pads \(padsBegin + padsEnd) are cut")
        }
    }

    /// Pads for an explicit `output_shape`, which must give one size per spatial axis.
    private mutating func resolve(outputShape requested: [Int], full: [Int], sameUpper: Bool) throws {
        guard requested.count == full.count else {
            throw ShapeRuleError("output_shape \(requested) must have one entry per spatial axis (\(full.count))")
        }
        for i in full.indices {
            guard requested[i] >= 1, requested[i] - full[i] < strides[i] else {
                throw ShapeRuleError("output_shape \(requested) does not fit the input: axis \(i) spans \(full[i]) "
                    + "positions (up to \(full[i] + strides[i] - 1) with the stride's slack)")
            }
            split(axis: i, total: max(0, full[i] - requested[i]), sameUpper: sameUpper)
            output[i] = requested[i]
        }
    }

    /// SAME_UPPER puts the odd unit of padding at the end, everything else at the beginning.
    private mutating func split(axis i: Int, total: Int, sameUpper: Bool) {
        padsBegin[i] = sameUpper ? total / 2 : total - total / 2
        padsEnd[i] = total - padsBegin[i]
    }
}

extension ShapeInference {
    /// The spatial ops ShapeInference.swift's switch does not know (listed in ShapeInference+Families.swift).
    static let spatialShapes: [String: ShapeRule] = ["ConvTranspose": convTransposeShape]

    /// X [N, C, D1…], W [C, M/group, k1…], optional B [M] → [N, M, O1…] (TransposedWindowGeometry). Any spatial
    /// rank here; the lowering takes 1-D to 3-D.
    private static func convTransposeShape(_ c: NodeContext) throws -> [TensorType] {
        let x = try c.input(0), w = try c.input(1)
        try c.requireSameDType([x, w])
        guard x.shape.count >= 3, w.shape.count == x.shape.count else {
            throw c.fail("X \(IRText.shape(x.shape)) and W \(IRText.shape(w.shape)) must have the same rank ≥ 3")
        }
        let group = c.node.int("group", default: 1)
        let channels = x.shape[1]
        guard group >= 1, group <= ShapeRules.maxDimension, channels % group == 0, w.shape[0] == channels else {
            throw c.fail("X has \(channels) channels, W \(IRText.shape(w.shape)) and group \(group) do not match "
                + "(W[0] must equal the channels and group must divide them)")
        }
        let filters = w.shape[1] * group
        let kernel = Array(w.shape[2...])
        if let declared = c.node.ints("kernel_shape"), declared != kernel {
            throw c.fail("kernel_shape \(declared) differs from the weight's \(kernel)")
        }
        if let bias = try c.optionalInput(2), bias.shape != [filters] {
            throw c.fail("B \(IRText.shape(bias.shape)) must be [\(filters)]")
        }
        let geometry = try TransposedWindowGeometry(node: c.node, input: Array(x.shape[2...]), kernel: kernel)
        return [TensorType(dtype: x.dtype, shape: [x.shape[0], filters] + geometry.output)]
    }
}
