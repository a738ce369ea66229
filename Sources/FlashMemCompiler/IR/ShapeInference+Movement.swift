// Shape rules of the data-movement ops ShapeInference.swift's switch does not know (Split, Tile, Pad, Resize,
// Upsample, Trilu), and the parsing of their operands, which the lowering (Lowering+Movement*.swift) reuses so
// that both read ONNX the same way. Transpose, Concat, Gather, Slice, Expand, Squeeze and Unsqueeze stay in the
// switch. Owned by the data-movement family.

extension ShapeInference {
    static let movementShapes: [String: ShapeRule] = [
        "Split": { c in
            let x = try c.input(0)
            let split = try MovementOperands.split(c, shape: x.shape)
            return split.sizes.map { size in
                var shape = x.shape
                shape[split.axis] = size
                return TensorType(dtype: x.dtype, shape: shape)
            }
        },
        "Tile": { c in
            let x = try c.input(0)
            let repeats = try MovementOperands.tileRepeats(c, rank: x.shape.count)
            return [TensorType(dtype: x.dtype, shape: try zip(x.shape, repeats).map { try ShapeRules.product([$0, $1]) })]
        },
        "Pad": { c in
            let x = try c.input(0)
            let pads = try MovementOperands.pads(c, shape: x.shape)
            return [TensorType(dtype: x.dtype, shape: try pads.outputShape(x.shape))]
        },
        "Resize": { c in
            let x = try c.input(0)
            return [TensorType(dtype: x.dtype, shape: try MovementOperands.resize(c, shape: x.shape).outputShape)]
        },
        "Upsample": { c in
            let x = try c.input(0)
            return [TensorType(dtype: x.dtype, shape: try MovementOperands.resize(c, shape: x.shape).outputShape)]
        },
        "Trilu": { c in
            let x = try c.input(0)
            guard x.shape.count >= 2 else { throw c.fail("the input must have rank ≥ 2, not \(IRText.shape(x.shape))") }
            _ = try MovementOperands.triluK(c)
            return [x]
        },
    ]
}

/// The operands and attributes of data-movement ops, read and checked once (ONNX operator spec, opsets 1–21).
/// Every function throws a `CompileError` naming the node.
enum MovementOperands {
    /// Integer values of constant input `i`, nil when the input is absent; an error when it is not a constant.
    static func constantInts(_ c: NodeContext, _ i: Int, _ what: String) throws -> [Int]? {
        guard i < c.node.inputs.count, !c.node.inputs[i].isEmpty else { return nil }
        guard let t = c.constant(i) else { throw c.fail("\(what) (input \(i)) is not a compile-time constant") }
        return t.ints()
    }

    static func constantReals(_ c: NodeContext, _ i: Int, _ what: String) throws -> [Double]? {
        guard i < c.node.inputs.count, !c.node.inputs[i].isEmpty else { return nil }
        guard let t = c.constant(i) else { throw c.fail("\(what) (input \(i)) is not a compile-time constant") }
        return t.reals()
    }

    // MARK: - Split

    /// The split axis and the size of every output along it.
    static func split(_ c: NodeContext, shape: [Int]) throws -> (axis: Int, sizes: [Int]) {
        let axis = try ShapeRules.axis(c.node.int("axis", default: 0), rank: shape.count)
        let dim = shape[axis]
        let outputs = c.node.outputs.count
        let explicit = c.graph.opset < 13 ? c.node.ints("split") : try constantInts(c, 1, "split")
        if let sizes = explicit, !sizes.isEmpty {
            guard sizes.count == outputs, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == dim else {
                throw c.fail("split \(sizes) does not cut dim \(axis) (\(dim)) into \(outputs) outputs")
            }
            return (axis, sizes)
        }
        if case .int(let parts)? = c.node.attributes["num_outputs"] {
            // Opset 18: equal parts of ceil(dim / n), the last one smaller.
            guard parts >= 1, parts == outputs else {
                throw c.fail("num_outputs \(parts) does not match the \(outputs) outputs")
            }
            let chunk = (dim + parts - 1) / parts
            let sizes = (0..<parts).map { max(0, min(chunk, dim - $0 * chunk)) }
            guard sizes.reduce(0, +) == dim else {
                throw c.fail("dim \(axis) (\(dim)) cannot be split into \(parts) parts of \(chunk)")
            }
            return (axis, sizes)
        }
        guard outputs >= 1, dim % outputs == 0 else {
            throw c.fail("dim \(axis) (\(dim)) does not split evenly into \(outputs) outputs")
        }
        return (axis, [Int](repeating: dim / outputs, count: outputs))
    }

    // MARK: - Tile

    static func tileRepeats(_ c: NodeContext, rank: Int) throws -> [Int] {
        guard let repeats = try constantInts(c, 1, "repeats") else { throw c.fail("Tile needs repeats") }
        guard repeats.count == rank, repeats.allSatisfy({ $0 >= 0 }) else {
            throw c.fail("repeats \(repeats) must hold \(rank) non-negative values")
        }
        return repeats
    }

    // MARK: - Pad

    enum PadMode: UInt32 {
        case constant = 0, reflect = 1, edge = 2, wrap = 3
    }

    struct Pads {
        var mode: PadMode
        /// Per dim, elements added before and after (negative: removed).
        var begin: [Int]
        var end: [Int]
        /// The constant: a value known at compile time (attribute or constant input), or the name of the
        /// run-time tensor that holds it, or nil for 0.
        var constantValue: ConstantTensor?
        var constantInput: String?

        /// Throws for pads whose sum with the dimension overflows (a model may hold any int64).
        func outputShape(_ shape: [Int]) throws -> [Int] {
            try shape.indices.map { try ShapeRules.sum(shape[$0], begin[$0], end[$0]) }
        }
    }

    static func pads(_ c: NodeContext, shape: [Int]) throws -> Pads {
        let rank = shape.count
        let modeName = c.node.string("mode") ?? "constant"
        guard let mode = ["constant": PadMode.constant, "reflect": .reflect, "edge": .edge, "wrap": .wrap][modeName],
              mode != .wrap || c.graph.opset >= 19 else {
            throw c.fail("mode '\(modeName)' is not a Pad mode of opset \(c.graph.opset)")
        }
        var all: [Int]
        var value: ConstantTensor?
        var valueInput: String?
        if c.graph.opset < 11 {
            guard let attribute = c.node.ints("pads") ?? c.node.ints("paddings") else { throw c.fail("Pad needs pads") }
            all = attribute
            let v = c.node.float("value", default: 0)
            if v != 0 { value = .make(dtype: .float32, shape: [], reals: [Double(v)]) }
        } else {
            guard let input = try constantInts(c, 1, "pads") else { throw c.fail("Pad needs pads") }
            all = input
            if c.node.inputs.count > 2, !c.node.inputs[2].isEmpty {
                if let t = c.constant(2) {
                    guard t.elementCount == 1 else { throw c.fail("constant_value must hold one value") }
                    value = t
                } else {
                    valueInput = c.node.inputs[2]
                }
            }
            if let axes = try constantInts(c, 3, "axes") {
                let normalized = try axes.map { try ShapeRules.axis($0, rank: rank, name: "axes entry") }
                guard Set(normalized).count == axes.count, all.count == 2 * axes.count else {
                    throw c.fail("pads \(all) do not match axes \(axes)")
                }
                var full = [Int](repeating: 0, count: 2 * rank)
                for (i, a) in normalized.enumerated() {
                    full[a] = all[i]
                    full[rank + a] = all[axes.count + i]
                }
                all = full
            }
        }
        guard all.count == 2 * rank else { throw c.fail("pads \(all) must hold \(2 * rank) values for rank \(rank)") }
        let pads = Pads(mode: mode, begin: Array(all[..<rank]), end: Array(all[rank...]), constantValue: value,
                        constantInput: valueInput)
        for d in 0..<rank {
            let out = try ShapeRules.sum(shape[d], pads.begin[d], pads.end[d])
            guard out >= 0 else { throw c.fail("pads \(all) remove more than dim \(d) (\(shape[d])) holds") }
            if mode != .constant, out > 0, shape[d] == 0 {
                throw c.fail("\(modeName) padding of the empty dim \(d)")
            }
        }
        return pads
    }

    // MARK: - Trilu

    static func triluK(_ c: NodeContext) throws -> Int {
        guard let k = try constantInts(c, 1, "k") else { return 0 }
        guard k.count == 1 else { throw c.fail("k must hold one value, not \(k.count)") }
        return k[0]
    }

    // MARK: - Resize

    /// Resize / Upsample, every operand resolved per dim of X.
    struct Resize {
        enum Mode: String { case nearest, linear, cubic }
        var mode: Mode
        var coordinateMode: String
        var nearestMode: String
        var cubicA: Double
        var excludeOutside: Bool
        var antialias: Bool
        var extrapolation: Double
        /// Per dim of X.
        var scales: [Double]
        var outputShape: [Int]
        /// Per dim of X: the region of interest (start, end) in normalized coordinates (tf_crop_and_resize only).
        var roi: [(start: Double, end: Double)]?
    }

    static func resize(_ c: NodeContext, shape: [Int]) throws -> Resize {
        let rank = shape.count
        let opset = c.graph.opset
        let modeName = c.node.string("mode") ?? "nearest"
        guard let mode = Resize.Mode(rawValue: modeName), mode != .cubic || c.node.opType == "Resize" else {
            throw c.fail("mode '\(modeName)' is not supported")
        }
        var result = Resize(mode: mode, coordinateMode: "asymmetric", nearestMode: "floor", cubicA: -0.75,
                            excludeOutside: false, antialias: false, extrapolation: 0, scales: [],
                            outputShape: shape, roi: nil)
        // Upsample (opsets 7, 9) and Resize 10: scales only, asymmetric coordinates, nearest = floor (integer
        // upsampling repeats every element).
        var scales: [Double]?
        var sizes: [Int]?
        if c.node.opType == "Upsample" || opset < 11 {
            if c.node.opType == "Upsample" && opset < 9 {
                if case .floats(let v)? = c.node.attributes["scales"] { scales = v.map(Double.init) }
            } else {
                scales = try constantReals(c, 1, "scales")
            }
            guard scales != nil else { throw c.fail("\(c.node.opType) needs scales") }
        } else {
            result.coordinateMode = c.node.string("coordinate_transformation_mode") ?? "half_pixel"
            result.nearestMode = c.node.string("nearest_mode") ?? "round_prefer_floor"
            result.cubicA = Double(c.node.float("cubic_coeff_a", default: -0.75))
            result.excludeOutside = c.node.int("exclude_outside", default: 0) != 0
            result.extrapolation = Double(c.node.float("extrapolation_value", default: 0))
            result.antialias = c.node.int("antialias", default: 0) != 0
            scales = try constantReals(c, 2, "scales")
            sizes = try constantInts(c, 3, "sizes")
            if scales?.isEmpty == true { scales = nil }
            if sizes?.isEmpty == true { sizes = nil }
            let known = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                         "tf_crop_and_resize"]
            guard known.contains(result.coordinateMode) else {
                throw c.fail("coordinate_transformation_mode '\(result.coordinateMode)' is not supported")
            }
            guard ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"].contains(result.nearestMode) else {
                throw c.fail("nearest_mode '\(result.nearestMode)' is not supported")
            }
            if result.antialias && mode == .nearest {
                throw c.fail("antialias applies to linear and cubic modes only")
            }
        }
        guard (scales == nil) != (sizes == nil) else {
            throw c.fail("exactly one of scales and sizes must be given")
        }
        let axes = try (c.node.ints("axes") ?? Array(0..<rank)).map {
            try ShapeRules.axis($0, rank: rank, name: "axes entry")
        }
        guard Set(axes).count == axes.count else { throw c.fail("axes \(axes) repeat an axis") }
        let given = scales?.count ?? sizes!.count
        guard given == axes.count else {
            throw c.fail("\(scales == nil ? "sizes" : "scales") hold \(given) values for \(axes.count) axes")
        }
        var perDimScale = [Double](repeating: 1, count: rank)
        var out = shape
        if let scales {
            for (i, a) in axes.enumerated() {
                guard scales[i] > 0, scales[i].isFinite else { throw c.fail("scale \(scales[i]) must be positive") }
                perDimScale[a] = scales[i]
                out[a] = try ShapeRules.dimension(scales[i] * Double(shape[a]), "scaled size of axis \(a)")
            }
        } else if let sizes {
            for (i, a) in axes.enumerated() {
                guard sizes[i] >= 0 else { throw c.fail("size \(sizes[i]) is negative") }
                guard shape[a] > 0 else { throw c.fail("cannot resize the empty dim \(a)") }
                out[a] = sizes[i]
                perDimScale[a] = Double(sizes[i]) / Double(shape[a])
            }
            let policy = c.node.string("keep_aspect_ratio_policy") ?? "stretch"
            if policy != "stretch" {
                let axisScales = axes.map { perDimScale[$0] }
                guard let scale = policy == "not_larger" ? axisScales.min() : (policy == "not_smaller" ? axisScales.max() : nil) else {
                    throw c.fail("keep_aspect_ratio_policy '\(policy)' is not supported")
                }
                for a in axes {
                    perDimScale[a] = scale
                    out[a] = try ShapeRules.dimension(scale * Double(shape[a]) + 0.5, "scaled size of axis \(a)")
                }
            }
        }
        result.scales = perDimScale
        result.outputShape = out
        if result.coordinateMode == "tf_crop_and_resize" {
            guard let roi = try constantReals(c, 1, "roi") else {
                throw c.fail("tf_crop_and_resize needs roi")
            }
            guard roi.count == 2 * axes.count else {
                throw c.fail("roi holds \(roi.count) values for \(axes.count) axes")
            }
            var full = [(start: Double, end: Double)](repeating: (0, 1), count: rank)
            for (i, a) in axes.enumerated() { full[a] = (roi[i], roi[axes.count + i]) }
            result.roi = full
        }
        return result
    }
}
