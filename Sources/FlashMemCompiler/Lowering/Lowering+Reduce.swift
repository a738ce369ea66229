// Reductions and scans: ReduceSum / Mean / Max / Min / Prod / L1 / L2 / SumSquare / LogSum / LogSumExp
// → reduce.comp (any set of axes in one pass), ArgMax / ArgMin → argmax.comp, CumSum → cumsum.comp.
// Owned by the normalization / reduction family (with Lowering+Normalization.swift and Lowering+Softmax.swift).
//
// Integer and bool tensors are int32 in the arena: ReduceSum / Max / Min / Prod, ArgMax / ArgMin and CumSum
// take them through the kernels' int variants; the other reductions need floats.

import FMBFormat

extension KernelCatalog {
    /// X, Y. Push: outputs len keptRank redRank keptShape[6] keptStride[6] redShape[6] redStride[6].
    static let reduce = KernelFamily(file: "reduce.comp", bindings: [.storageBuffer, .storageBuffer],
                                     pushConstantSize: 28 * 4, axes: [("REDUCE_INT", ["0", "1"])])
    /// X, Y (int32). Push: outputs len inner.
    static let argmax = KernelFamily(file: "argmax.comp", bindings: [.storageBuffer, .storageBuffer],
                                     pushConstantSize: 3 * 4, axes: [("ARG_INT", ["0", "1"])])
    /// X, Y. Push: lines len inner.
    static let cumsum = KernelFamily(file: "cumsum.comp", bindings: [.storageBuffer, .storageBuffer],
                                     pushConstantSize: 3 * 4, axes: [("CUMSUM_INT", ["0", "1"])])

    /// The kernels of the normalization / reduction family (listed in `KernelCatalog.all`; `normalize` is in
    /// Lowering+Normalization.swift).
    static let reductionFamilies: [KernelFamily] = [reduce, argmax, cumsum, normalize]
}

/// reduce.comp's OP specialization constant, by ONNX operator.
enum ReduceOp: UInt32, CaseIterable {
    case sum = 0, mean, max, min, prod, l1, l2, sumSquare, logSum, logSumExp

    init?(op: String) {
        switch op {
        case "ReduceSum": self = .sum
        case "ReduceMean": self = .mean
        case "ReduceMax": self = .max
        case "ReduceMin": self = .min
        case "ReduceProd": self = .prod
        case "ReduceL1": self = .l1
        case "ReduceL2": self = .l2
        case "ReduceSumSquare": self = .sumSquare
        case "ReduceLogSum": self = .logSum
        case "ReduceLogSumExp": self = .logSumExp
        default: return nil
        }
    }

    /// The ops reduce.comp's int variant computes.
    var worksOnIntegers: Bool { self == .sum || self == .max || self == .min || self == .prod }

    /// The value of a reduction over no elements (ONNX: the operator's identity; mean is 0 / 0).
    var emptyValue: Double {
        switch self {
        case .sum, .l1, .l2, .sumSquare: 0
        case .mean: .nan
        case .max, .logSum, .logSumExp: -.infinity
        case .min: .infinity
        case .prod: 1
        }
    }
}

/// The geometry reduce.comp runs on: the input's axes coalesced into kept and reduced dims with strides.
struct ReductionLayout: Equatable {
    var keptShape: [Int] = []
    var keptStrides: [Int] = []
    var reducedShape: [Int] = []
    var reducedStrides: [Int] = []

    /// Most kept (and reduced) dims the kernel's push constants hold.
    static let maxRank = 6

    /// Drops size-1 axes and merges neighbours of the same kind (they are contiguous in a row-major tensor).
    init(shape: [Int], reduced: Set<Int>) {
        var run = 1
        var dims: [(size: Int, stride: Int, reduced: Bool)] = []
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            defer { run *= shape[d] }
            guard shape[d] != 1 else { continue }
            let isReduced = reduced.contains(d)
            if let last = dims.last, last.reduced == isReduced {
                dims[dims.count - 1] = (last.size * shape[d], last.stride, isReduced)
            } else {
                dims.append((shape[d], run, isReduced))
            }
        }
        for dim in dims.reversed() {
            if dim.reduced {
                reducedShape.append(dim.size)
                reducedStrides.append(dim.stride)
            } else {
                keptShape.append(dim.size)
                keptStrides.append(dim.stride)
            }
        }
    }

    var outputs: Int { keptShape.reduce(1, *) }
    var length: Int { reducedShape.reduce(1, *) }

    /// Whether neighbouring reduced elements are neighbours in memory (coalesced loads in a workgroup).
    var reducesContiguously: Bool { reducedStrides.last == 1 }
}

extension LoweringContext {
    static let reductionRules: [String: LoweringRule] = {
        var rules: [String: LoweringRule] = [
            "ArgMax": { $0.lowerArgExtreme }, "ArgMin": { $0.lowerArgExtreme },
            "CumSum": { $0.lowerCumSum },
        ]
        for op in ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                   "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"] {
            rules[op] = { $0.lowerReduce }
        }
        return rules
    }()

    /// reduce.comp's schedule for `outputs` rows of `length` elements: how many outputs share a workgroup
    /// (COLUMNS) and its size. Short rows: an invocation each. Contiguous rows: a workgroup each (its loads are
    /// coalesced). Strided rows: neighbouring outputs are neighbours in memory, so a workgroup takes 8–64 of them
    /// side by side, splitting each row over WG / COLUMNS slices; as many columns as still leave a full wave of
    /// workgroups (at least 8: one 32-byte sector per load), and for fewer than 8 outputs a workgroup each.
    static func reduceSchedule(outputs: Int, length: Int, contiguous: Bool) -> (columns: Int, workgroup: Int) {
        if length < 32 {
            return (64, 64)
        }
        if contiguous || outputs < 8 {
            return (1, length >= 4096 ? 256 : 64)
        }
        var columns = 64
        while columns > 8 && LoweringMath.ceilDiv(outputs, columns) < Lowering.targetWorkgroups {
            columns /= 2
        }
        return (columns, 256)
    }

    /// Whether ArgMax / ArgMin run a workgroup per output (else an invocation): rows long enough for a tree,
    /// and contiguous or too few outputs to fill the device with invocations (which read strided rows coalesced).
    static func reducesPerGroup(outputs: Int, length: Int, contiguous: Bool) -> Bool {
        length >= 32 && (contiguous || outputs < 2048)
    }

    // MARK: - Reduce*

    func lowerReduce(_ n: LoweringNode) throws {
        guard let op = ReduceOp(op: n.op) else { throw error(n, "internal: not a reduction") }
        let x = try input(n, 0), y = try output(n)
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        let isInt = try arenaIsInteger(n, x)
        if isInt, !op.worksOnIntegers {
            throw error(n, "\(n.op) of dtype \(dtype(x).map { "\($0)" } ?? "int32") is not supported (float only)")
        }

        // ReduceSum takes its axes as an input from opset 13, the other reductions from opset 18.
        let axes: [Int]?
        if graph.opset < (op == .sum ? 13 : 18) {
            axes = n.node.ints("axes")
        } else if let name = optionalInput(n, 1) {
            guard let constant = initializers[name] else {
                throw error(n, "the axes input '\(name)' is not a compile-time constant")
            }
            axes = constant.ints()
        } else {
            axes = nil
        }
        let rank = xShape.count
        var reduced = Set<Int>()
        if let axes, !axes.isEmpty {
            for a in axes {
                guard a >= -rank, a < rank else { throw error(n, "axes entry \(a) is out of range for rank \(rank)") }
                reduced.insert(a < 0 ? a + rank : a)
            }
        } else if n.node.int("noop_with_empty_axes", default: 0) != 0 {
            try lowerAsView(n, x: x, y: y)  // no axes with noop_with_empty_axes: the identity
            return
        } else {
            reduced = Set(0..<rank)
        }

        let layout = ReductionLayout(shape: xShape, reduced: reduced)
        guard elementCount(yShape) == layout.outputs || elementCount(xShape) == 0 else {
            throw error(n, "the output \(yShape) does not have the \(layout.outputs) elements of reducing \(xShape) over \(reduced.sorted())")
        }
        if elementCount(xShape) == 0 || elementCount(yShape) == 0 {
            // Reducing an empty set gives the operator's identity; an empty output needs no work.
            try fillConstant(n, y, shape: yShape, value: op.emptyValue, integerValue: emptyIntegerValue(op, dtype(y)))
            return
        }
        guard layout.keptShape.count <= ReductionLayout.maxRank, layout.reducedShape.count <= ReductionLayout.maxRank else {
            throw error(n, "reducing axes \(reduced.sorted()) of \(xShape) leaves more than \(ReductionLayout.maxRank) "
                        + "separate kept or reduced dim groups")
        }
        let (columns, wg) = Self.reduceSchedule(outputs: layout.outputs, length: layout.length,
                                                contiguous: layout.reducesContiguously)
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.reduce, defines: ["REDUCE_INT": isInt ? "1" : "0"],
                                                   specConstants: [UInt32(wg), op.rawValue, UInt32(columns)],
                                                   workgroupSize: [UInt32(wg), 1, 1], sharedMemoryBytes: wg * 4))
        func padded(_ values: [Int], with fill: Int) -> [Int] {
            values + [Int](repeating: fill, count: ReductionLayout.maxRank - values.count)
        }
        var push = PushConstants()
        push.append([layout.outputs, layout.length, layout.keptShape.count, layout.reducedShape.count])
        push.append(padded(layout.keptShape, with: 1))
        push.append(padded(layout.keptStrides, with: 0))
        push.append(padded(layout.reducedShape, with: 1))
        push.append(padded(layout.reducedStrides, with: 0))
        let count = elementCount(xShape)
        try emit(n, kernel: kernel, groups: try groups1D(n, items: layout.outputs, perGroup: columns),
                 bindings: [try read(x, for: n), try write(y, for: n)], push: push,
                 flops: Double(count * (op == .logSumExp ? 3 : 1)), bytes: Double((count + layout.outputs) * 4))
    }

    /// The integer an empty integer / bool reduction gives (nil for float outputs).
    private func emptyIntegerValue(_ op: ReduceOp, _ dtype: DType?) -> Int? {
        guard let dtype, !dtype.isFloat else { return nil }
        switch op {
        // Integers are int32 in the arena (int64 outputs are widened from it), so the int32 extremes.
        case .max: return dtype == .bool ? 0 : Int(Int32.min)
        case .min: return dtype == .bool ? 1 : Int(Int32.max)
        case .prod: return 1
        default: return 0
        }
    }

    // MARK: - ArgMax / ArgMin

    func lowerArgExtreme(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        let isInt = try arenaIsInteger(n, x)
        let rank = max(xShape.count, 1)
        let shape = xShape.isEmpty ? [1] : xShape
        var axis = n.node.int("axis", default: 0)
        guard axis >= -rank, axis < rank else { throw error(n, "axis \(axis) is out of range for rank \(rank)") }
        if axis < 0 { axis += rank }
        let outer = elementCount(Array(shape[..<axis])), len = shape[axis]
        let inner = elementCount(Array(shape[(axis + 1)...]))
        guard len > 0 else { throw error(n, "the reduced axis \(axis) of \(xShape) is empty") }
        guard elementCount(yShape) == outer * inner else {
            throw error(n, "the output \(yShape) does not have \(outer * inner) elements")
        }
        let outputs = outer * inner
        let perGroup = Self.reducesPerGroup(outputs: outputs, length: len, contiguous: inner == 1)
        let wg = perGroup && len >= 4096 ? 256 : 64
        let isMin: UInt32 = n.op == "ArgMin" ? 1 : 0
        let last: UInt32 = n.node.int("select_last_index", default: 0) != 0 ? 1 : 0
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.argmax, defines: ["ARG_INT": isInt ? "1" : "0"],
                                                   specConstants: [UInt32(wg), isMin, last, perGroup ? 1 : 0],
                                                   workgroupSize: [UInt32(wg), 1, 1], sharedMemoryBytes: wg * 8))
        var push = PushConstants()
        push.append([outputs, len, inner])
        try emit(n, kernel: kernel, groups: try groups1D(n, items: outputs, perGroup: perGroup ? 1 : wg),
                 bindings: [try read(x, for: n), try write(y, for: n)], push: push,
                 flops: Double(outer * len * inner), bytes: Double((outer * len * inner + outputs) * 4))
    }

    // MARK: - CumSum

    func lowerCumSum(_ n: LoweringNode) throws {
        let x = try input(n, 0), axisName = try input(n, 1), y = try output(n)
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        guard xShape == yShape else { throw error(n, "input \(xShape) and output \(yShape) differ") }
        let isInt = try arenaIsInteger(n, x)
        guard let axisConstant = initializers[axisName], axisConstant.elementCount == 1 else {
            throw error(n, "the axis input '\(axisName)' is not a compile-time constant scalar")
        }
        let rank = max(xShape.count, 1)
        let shape = xShape.isEmpty ? [1] : xShape
        var axis = axisConstant.ints()[0]
        guard axis >= -rank, axis < rank else { throw error(n, "axis \(axis) is out of range for rank \(rank)") }
        if axis < 0 { axis += rank }
        if elementCount(shape) == 0 {
            try fillConstant(n, y, shape: yShape, value: 0, integerValue: 0)
            return
        }
        let outer = elementCount(Array(shape[..<axis])), len = shape[axis]
        let inner = elementCount(Array(shape[(axis + 1)...]))
        let lines = outer * inner
        // A workgroup per line pays log2(WG) barriers per WG elements: worth it only for long lines, few of them.
        let perGroup = len > 128 && lines < 4096
        let wg = perGroup && len >= 4096 ? 256 : 64
        let exclusive: UInt32 = n.node.int("exclusive", default: 0) != 0 ? 1 : 0
        let reverse: UInt32 = n.node.int("reverse", default: 0) != 0 ? 1 : 0
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.cumsum, defines: ["CUMSUM_INT": isInt ? "1" : "0"],
                                                   specConstants: [UInt32(wg), exclusive, reverse, perGroup ? 1 : 0],
                                                   workgroupSize: [UInt32(wg), 1, 1], sharedMemoryBytes: wg * 4))
        var push = PushConstants()
        push.append([lines, len, inner])
        let count = elementCount(shape)
        try emit(n, kernel: kernel, groups: try groups1D(n, items: lines, perGroup: perGroup ? 1 : wg),
                 bindings: [try read(x, for: n), try write(y, for: n)], push: push,
                 flops: Double(count), bytes: Double(count * 8))
    }

    // MARK: - Shared helpers

    /// Whether `value` is int32 in the arena (integer / bool dtypes); float16/32 are fp32; float64 is refused.
    func arenaIsInteger(_ n: LoweringNode, _ value: String) throws -> Bool {
        guard let dtype = dtype(value) else { return false }
        if dtype == .float64 {
            throw error(n, "'\(value)' is float64, which the kernels do not compute in")
        }
        return !dtype.isFloat
    }

    /// `y` as the same bytes as `x` (a view, or for a constant `x` a constant).
    func lowerAsView(_ n: LoweringNode, x: String, y: String) throws {
        let yShape = try shape(y, of: n)
        if let constant = initializers[x] {
            initializers[y] = ConstantTensor(dtype: constant.dtype, shape: yShape, bytes: constant.bytes)
            return
        }
        try registerView(y, of: x, for: n)
    }

    /// Makes `y` a constant of `shape` filled with `value` (or `integerValue` for integer / bool dtypes).
    func fillConstant(_ n: LoweringNode, _ y: String, shape: [Int], value: Double, integerValue: Int?) throws {
        let dtype = dtype(y) ?? .float32
        let count = elementCount(shape)
        if dtype.isFloat {
            initializers[y] = ConstantTensor.make(dtype: dtype, shape: shape,
                                                  reals: [Double](repeating: value, count: count))
        } else {
            initializers[y] = ConstantTensor.make(dtype: dtype, shape: shape,
                                                  integers: [Int](repeating: integerValue ?? 0, count: count))
        }
    }
}
