// Element-wise kernels and their emitters, owned by the elementwise family:
//   binary.comp  Y = act(A op B), numpy broadcasting through per-operand strides (BinaryOp),
//   unary.comp   Y = f(X) (UnaryOp), also Cast between the arena's float and int words,
//   where.comp   Y = C ? X : Z, broadcasting all three.
// Relu / Sigmoid / Tanh and Add / Sub / Mul / Div reach lowerUnary / lowerBinary from Lowering.swift's switch;
// every other op of the family is routed by the table in Lowering+ElementwiseFamily.swift. Constant operands
// become resident arena tensors (read()).
//
// Arena words: float tensors (fp32, fp16, fp64) are fp32, int64 / int32 / bool tensors are int32 (bool 0 / 1).
// The kernels take the kind of each operand as a TYPES bit mask (spec constant), omitted when every operand is
// float so float kernels keep their historical spec-constant lists.

import FMBFormat

/// binary.comp's OP specialization constant (the OP_* codes there).
enum BinaryOp: UInt32 {
    case add = 0
    case sub = 1
    case mul = 2
    case div = 3
    case pow = 4
    case max = 5
    case min = 6
    /// Remainder with the divisor's sign (ONNX Mod, fmod = 0).
    case mod = 7
    /// Remainder with the dividend's sign (ONNX Mod, fmod = 1).
    case fmod = 8
    case equal = 9
    case less = 10
    case lessOrEqual = 11
    case greater = 12
    case greaterOrEqual = 13
    case and = 14
    case or = 15
    case xor = 16
    case prelu = 17

    /// The op a two-input ONNX operator computes (Mod: fmod = 0; see init(node:)).
    init?(op: String) {
        switch op {
        case "Add", "Sum", "Mean": self = .add
        case "Sub": self = .sub
        case "Mul": self = .mul
        case "Div": self = .div
        case "Pow": self = .pow
        case "Max": self = .max
        case "Min": self = .min
        case "Mod": self = .mod
        case "Equal": self = .equal
        case "Less": self = .less
        case "LessOrEqual": self = .lessOrEqual
        case "Greater": self = .greater
        case "GreaterOrEqual": self = .greaterOrEqual
        case "And": self = .and
        case "Or": self = .or
        case "Xor": self = .xor
        case "PRelu": self = .prelu
        default: return nil
        }
    }

    /// As init(op:), with the attributes that pick a variant (Mod's fmod).
    init?(node: Node) {
        guard let op = BinaryOp(op: node.opType) else { return nil }
        self = op == .mod && node.int("fmod", default: 0) != 0 ? .fmod : op
    }

    /// Comparisons and logical ops give a bool; the others give the first operand's dtype.
    var givesBool: Bool { rawValue >= BinaryOp.equal.rawValue && rawValue <= BinaryOp.xor.rawValue }
}

/// unary.comp's OP specialization constant (the OP_* codes there).
enum UnaryOp: UInt32 {
    case relu = 0, sigmoid, tanh, identity, neg, abs, sqrt, exp, log, erf, reciprocal, leakyRelu, elu, selu,
         gelu, geluTanh, hardSigmoid, hardSwish, clip, not, nonzero, toHalf, sign, floor, ceil, round, sin, cos,
         softplus, softsign, mish, scale, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh

    /// Ops that also run on int32 words (and then give the input's kind back).
    var hasIntegerMeaning: Bool {
        switch self {
        case .relu, .identity, .neg, .abs, .sign, .clip, .not, .nonzero: true
        default: false
        }
    }

    /// The op and its (alpha, beta) parameters for a one-input ONNX operator (Clip and Cast are lowered
    /// separately; they compute bounds and conversions). nil when the operator is not one of these.
    static func of(_ node: Node) -> (op: UnaryOp, alpha: Float, beta: Float)? {
        switch node.opType {
        case "Relu": (.relu, 0, 0)
        case "Sigmoid": (.sigmoid, 0, 0)
        case "Tanh": (.tanh, 0, 0)
        case "Neg": (.neg, 0, 0)
        case "Abs": (.abs, 0, 0)
        case "Sqrt": (.sqrt, 0, 0)
        case "Exp": (.exp, 0, 0)
        case "Log": (.log, 0, 0)
        case "Erf": (.erf, 0, 0)
        case "Reciprocal": (.reciprocal, 0, 0)
        case "LeakyRelu": (.leakyRelu, node.float("alpha", default: 0.01), 0)
        case "Elu": (.elu, node.float("alpha", default: 1), 0)
        case "Selu": (.selu, node.float("alpha", default: 1.67326319217681884765625),
                      node.float("gamma", default: 1.05070102214813232421875))
        case "Gelu": (node.string("approximate") == "tanh" ? .geluTanh : .gelu, 0, 0)
        case "HardSigmoid": (.hardSigmoid, node.float("alpha", default: 0.2), node.float("beta", default: 0.5))
        case "HardSwish": (.hardSwish, 0, 0)
        case "Not": (.not, 0, 0)
        case "Sign": (.sign, 0, 0)
        case "Floor": (.floor, 0, 0)
        case "Ceil": (.ceil, 0, 0)
        case "Round": (.round, 0, 0)
        case "Sin": (.sin, 0, 0)
        case "Cos": (.cos, 0, 0)
        case "Softplus": (.softplus, 0, 0)
        case "Softsign": (.softsign, 0, 0)
        case "Mish": (.mish, 0, 0)
        case "Tan": (.tan, 0, 0)
        case "Asin": (.asin, 0, 0)
        case "Acos": (.acos, 0, 0)
        case "Atan": (.atan, 0, 0)
        case "Sinh": (.sinh, 0, 0)
        case "Cosh": (.cosh, 0, 0)
        case "Asinh": (.asinh, 0, 0)
        case "Acosh": (.acosh, 0, 0)
        case "Atanh": (.atanh, 0, 0)
        default: nil
        }
    }
}

/// How a tensor's elements sit in the arena: fp32 words or int32 words.
enum ArenaKind {
    case float
    case int
}

/// numpy broadcasting as strides.
enum Broadcast {
    /// The broadcast shape of `a` and `b` (right-aligned), or nil if they do not broadcast.
    static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        let a = [Int](repeating: 1, count: rank - a.count) + a
        let b = [Int](repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for d in 0..<rank {
            guard a[d] == b[d] || a[d] == 1 || b[d] == 1 else { return nil }
            out.append(a[d] == 1 ? b[d] : a[d])
        }
        return out
    }

    /// Element strides of a tensor of `shape` (contiguous, or read through `view`'s strides) at the coordinates of
    /// `out` (right-aligned): 0 on dims it is broadcast along.
    static func strides(of shape: [Int], view: StridedAccess? = nil, broadcastTo out: [Int]) -> [Int] {
        let own = view?.strides ?? StridedAccess.rowMajorStrides(shape)
        let lead = out.count - shape.count
        return out.indices.map { d in d < lead || shape[d - lead] == 1 ? 0 : own[d - lead] }
    }

    /// Drops size-1 dims and merges each dim into its outer neighbour when every operand is contiguous across
    /// the pair (outer stride = inner stride × inner size). Never returns rank 0: a scalar is [1].
    static func coalesce(shape: [Int], strides: [[Int]]) -> (shape: [Int], strides: [[Int]]) {
        var outShape: [Int] = []
        var outStrides = [[Int]](repeating: [], count: strides.count)
        for d in shape.indices where shape[d] != 1 {
            if let last = outShape.indices.last,
               strides.indices.allSatisfy({ outStrides[$0][last] == strides[$0][d] * shape[d] }) {
                outShape[last] *= shape[d]
                for o in strides.indices { outStrides[o][last] = strides[o][d] }
            } else {
                outShape.append(shape[d])
                for o in strides.indices { outStrides[o].append(strides[o][d]) }
            }
        }
        if outShape.isEmpty {
            return ([1], strides.map { _ in [0] })
        }
        return (outShape, outStrides)
    }

    /// Most distinct dims binary.comp and where.comp index after coalescing (their MAX_RANK).
    static let maxRank = 6

    /// The push-constant block binary.comp and where.comp share: count, rank, shape[6], then strides[6] per
    /// operand (from `views` where given), each padded to maxRank. nil when the operands need more than maxRank
    /// distinct dims. (binary.comp's block goes on with each operand's offset.)
    static func pushConstants(operands: [[Int]], views: [StridedAccess?]? = nil, out: [Int]) -> PushConstants? {
        let dims = coalesce(shape: out, strides: operands.indices.map {
            strides(of: operands[$0], view: views?[$0], broadcastTo: out)
        })
        guard dims.shape.count <= maxRank else { return nil }
        let pad = maxRank - dims.shape.count
        var push = PushConstants()
        push.append([out.reduce(1, *), dims.shape.count])
        push.append(dims.shape + [Int](repeating: 1, count: pad))
        for s in dims.strides {
            push.append(s + [Int](repeating: 0, count: pad))
        }
        return push
    }
}

extension KernelCatalog {
    /// C, X, Z, Y. Push: count rank shape[6] cStride[6] xStride[6] zStride[6].
    static let ternaryWhere = KernelFamily(file: "where.comp",
                                           bindings: [.storageBuffer, .storageBuffer, .storageBuffer, .storageBuffer],
                                           pushConstantSize: 26 * 4, axes: [])

    /// The element-wise family's entries beyond binary and unary (listed in `all`).
    static let elementwiseFamilies: [KernelFamily] = [ternaryWhere]
}

extension LoweringContext {
    /// Workgroup size of the element-wise kernels.
    static let elementwiseWorkgroup = 256

    /// The arena kind of a value; fails for dtypes the arena cannot hold exactly (8-bit integers would lose
    /// their wrap-around in int32 words). Unknown dtypes (a rule's fresh temporaries) are float.
    func arenaKind(_ value: String, for n: LoweringNode) throws -> ArenaKind {
        guard let dtype = dtype(value) else { return .float }
        switch dtype {
        case .float32, .float16, .float64: return .float
        case .int32, .int64, .bool: return .int
        case .int8, .uint8:
            throw error(n, "'\(value)' is \(dtype); element-wise ops support float32, float16, int64, int32 and bool")
        }
    }

    /// A fresh intermediate of `shape` with `like`'s dtype (temporary() alone makes float32).
    func temporary(_ base: String, shape: [Int], like value: String) -> String {
        let dtype = dtype(value) ?? .float32
        let name = temporary(base, shape: shape)
        values[name]?.dtype = dtype
        return name
    }

    // MARK: - Binary

    func lowerBinary(_ n: LoweringNode) throws {
        guard let op = BinaryOp(node: n.node) else {
            throw error(n, "internal: not a binary op")
        }
        try emitBinary(n, op: op, a: try input(n, 0), b: try input(n, 1), y: try output(n),
                       operandActivation: n.operandActivation)
    }

    /// binary.comp: Y = act(A op bAct(B)) with numpy broadcasting (up to 6 distinct dims after coalescing).
    /// `activation` defaults to the node's fused one (a chain passes .none for its inner steps). An operand copied for
    /// this op alone (a slice, a transpose) is read in place through the copy's view (`composableCopy`).
    func emitBinary(_ n: LoweringNode, op: BinaryOp, a: String, b: String, y: String,
                    activation: FusedActivation? = nil, operandActivation: FusedActivation = .none) throws {
        let aKind = try arenaKind(a, for: n), bKind = try arenaKind(b, for: n), yKind = try arenaKind(y, for: n)
        let expected: ArenaKind = op.givesBool ? .int : aKind
        guard op == .pow || op.givesBool || aKind == bKind else {
            throw error(n, "operands '\(a)' (\(dtype(a).map { "\($0)" } ?? "?")) and '\(b)' "
                        + "(\(dtype(b).map { "\($0)" } ?? "?")) differ in dtype")
        }
        guard yKind == expected else {
            throw error(n, "the output '\(y)' is \(dtype(y).map { "\($0)" } ?? "?"), which \(n.op) cannot produce "
                        + "from \(dtype(a).map { "\($0)" } ?? "?")")
        }
        let aShape = try shape(a, of: n), bShape = try shape(b, of: n), yShape = try shape(y, of: n)
        guard let outShape = Broadcast.shape(aShape, bShape), outShape == yShape else {
            throw error(n, "operands \(aShape) and \(bShape) do not broadcast to the output \(yShape)")
        }
        var sources = [a, b]
        var views: [StridedAccess?] = [nil, nil]
        var folded: [(step: Int, root: String, removable: Bool)] = []
        var iteration: [Int]?  // the copy's own dims, where its view does not fit the operand's shape
        // Only an operand the node reads once: a chain of steps for one node (Sum(x, y, x)) would read a copy the
        // first step removed.
        for (i, (name, operandShape)) in [(a, aShape), (b, bShape)].enumerated()
        where a != b && n.node.inputs.filter({ $0 == name }).count == 1 {
            // Same shapes throughout: where the copy's view does not fit the operand, walk the copy's own dims, in
            // which the other operand and the output are row-major too (SAM 2's window un-partition,
            // [1, 32, 8, 32, 8, C] seen as [1, 256, 256, C], then its residual Add).
            let sameShapes = aShape == bShape && aShape == outShape && views == [nil, nil]
            guard let read = inPlaceRead(of: name, shape: operandShape, for: n, walkingCopyDims: sameShapes) else {
                continue
            }
            (sources[i], views[i]) = (read.source, read.view)
            folded.append(read.copy)
            if read.view.shape != operandShape {
                iteration = read.view.shape
                break  // the other operand's shape no longer matches the walk
            }
        }
        let walked = iteration.map { [$0, $0] } ?? [aShape, bShape]
        guard var push = Broadcast.pushConstants(operands: walked, views: views, out: iteration ?? outShape) else {
            throw error(n, "broadcasting over more than \(Broadcast.maxRank) distinct dims is not supported "
                        + "(\(aShape) and \(bShape))")
        }
        push.append(views.map { $0?.offset ?? 0 })
        fold(folded, into: n)
        let types = UInt32(aKind == .int ? 1 : 0) | UInt32(bKind == .int ? 2 : 0) | UInt32(yKind == .int ? 4 : 0)
        let count = elementCount(outShape)
        let wg = Self.elementwiseWorkgroup
        var spec = [UInt32(wg), op.rawValue, (activation ?? n.activation).rawValue]
        if types != 0 || operandActivation != .none { spec.append(types) }
        if operandActivation != .none { spec.append(operandActivation.rawValue) }
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.binary, specConstants: spec,
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(sources[0], for: n), try read(sources[1], for: n), try write(y, for: n)],
                 push: push,
                 flops: Double(count),
                 bytes: Double((elementCount(aShape) + elementCount(bShape) + count) * 4))
    }

    // MARK: - Unary

    func lowerUnary(_ n: LoweringNode) throws {
        guard let unary = UnaryOp.of(n.node) else {
            throw error(n, "internal: not a unary op")
        }
        let x = try input(n, 0), y = try output(n)
        let xKind = try arenaKind(x, for: n)
        if xKind == .int, !unary.op.hasIntegerMeaning {
            throw error(n, "'\(x)' is \(dtype(x).map { "\($0)" } ?? "?"); \(n.op) needs a float tensor")
        }
        if n.op == "Gelu", let approximate = n.node.string("approximate"), approximate != "none", approximate != "tanh" {
            throw error(n, "approximate = '\(approximate)' is not supported (expected 'none' or 'tanh')")
        }
        guard n.activation == .none else {
            throw error(n, "internal: a fused activation on \(n.op)")
        }
        try emitUnary(n, op: unary.op, x: x, y: y, alpha: unary.alpha.bitPattern, beta: unary.beta.bitPattern)
    }

    /// unary.comp: Y = f(X) with f's parameters as 32-bit words (fp32 bits, or int32 for Clip on ints). X and Y
    /// may be of either kind: an int Y takes float results truncated toward zero.
    func emitUnary(_ n: LoweringNode, op: UnaryOp, x: String, y: String, alpha: UInt32 = 0, beta: UInt32 = 0) throws {
        let xKind = try arenaKind(x, for: n), yKind = try arenaKind(y, for: n)
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        guard elementCount(xShape) == elementCount(yShape) else {
            throw error(n, "input \(xShape) and output \(yShape) differ in size")
        }
        let types = UInt32(xKind == .int ? 1 : 0) | UInt32(yKind == .int ? 2 : 0)
        let count = elementCount(xShape)
        let wg = Self.elementwiseWorkgroup
        var spec = [UInt32(wg), op.rawValue]
        if types != 0 { spec.append(types) }
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.unary, specConstants: spec,
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        var push = PushConstants()
        push.append(count)
        push.append(alpha)
        push.append(beta)
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(x, for: n), try write(y, for: n)], push: push,
                 flops: Double(count), bytes: Double(count * 8))
    }

    // MARK: - Where

    /// where.comp: Y = C ? X : Z, all three broadcast to Y.
    func lowerWhere(_ n: LoweringNode) throws {
        let c = try input(n, 0), x = try input(n, 1), z = try input(n, 2), y = try output(n)
        guard try arenaKind(c, for: n) == .int else {
            throw error(n, "the condition '\(c)' is \(dtype(c).map { "\($0)" } ?? "?"), not bool")
        }
        let kinds = try [x, z, y].map { try arenaKind($0, for: n) }
        guard kinds.allSatisfy({ $0 == kinds[0] }) else {
            throw error(n, "X '\(x)', Y '\(z)' and the output differ in dtype")
        }
        let shapes = try [c, x, z].map { try shape($0, of: n) }
        let yShape = try shape(y, of: n)
        guard let out = Broadcast.shape(shapes[0], shapes[1]).flatMap({ Broadcast.shape($0, shapes[2]) }),
              out == yShape else {
            throw error(n, "operands \(shapes[0]), \(shapes[1]) and \(shapes[2]) do not broadcast to the output \(yShape)")
        }
        guard let push = Broadcast.pushConstants(operands: shapes, out: out) else {
            throw error(n, "broadcasting over more than \(Broadcast.maxRank) distinct dims is not supported")
        }
        let count = elementCount(out)
        let wg = Self.elementwiseWorkgroup
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.ternaryWhere, specConstants: [UInt32(wg)],
                                                   workgroupSize: [UInt32(wg), 1, 1]))
        try emit(n, kernel: kernel, groups: try groups1D(n, items: count, perGroup: wg),
                 bindings: [try read(c, for: n), try read(x, for: n), try read(z, for: n), try write(y, for: n)],
                 push: push, flops: Double(count),
                 bytes: Double((shapes.map(elementCount).reduce(0, +) + count) * 4))
    }
}
