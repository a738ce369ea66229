// Attention, as exporters write it: MatMul(Q, Kᵀ) → scaling → masking → Softmax(last axis) → MatMul(·, V), five
// kernels whose [batch·heads, Lq, Lk] scores go through the arena four times. `fuseAttention` makes the chain one
// FusedAttention node, lowered to attention.comp (Lowering+Attention.swift), which keeps the scores on chip
// (online softmax). It matches, walking up from the second MatMul through sole producers (`soleProducer`: every
// intermediate has exactly one reader, is no model output and runs under the same predicate):
//
//   MatMul(P, V)      P = Softmax(x) over the last axis (through an identity Cast: GPT-2 writes one; in an fp16
//                     bundle also through a Cast to float16: GPT-Neo's fp16 export);
//   x                 ← zero or more masks, each at most once, in either order:
//                         Add(x, M) or Add(M, x), M any float tensor broadcast to the scores' shape (MiniLM's
//                         extended attention mask computed from an input; GPT-2's folded causal mask),
//                         Where(C, x, f) or Where(C, f, x), C a bool tensor broadcast to the scores, f a constant
//                         scalar (the causal mask of GPT-Neo);
//                     ← zero or more Mul / Div by a constant scalar (the 1/√d scale);
//                     ← MatMul(Q, Kᵀ);
//   Q, Kᵀ             each through zero or more Mul / Div by a constant scalar (torch's scaled_dot_product_attention
//                     export scales both by √scale: ViT) or identity or float16 → float32 Casts (GPT-Neo), and at
//                     most one Transpose (MiniLM, GPT-2: [B, L, H, D] → [B, H, L, D], read in place by strides);
//   V                 through identity Casts and at most one Transpose; the output through at most one Transpose
//                     that is its only reader (written in place by strides).
//
// Q, Kᵀ and V must be activations (not constants), every shape static, the heads' depth D and Dv at most 128
// (attention.comp's shared tiles) and the products' batch dims coalesce to at most two (`AttentionLayout`).

import Foundation

extension LoweringPasses {
    /// The op of the node `fuseAttention` makes (lowered by Lowering+Attention.swift). Inputs: Q, Kᵀ, V (each the
    /// tensor before the Transpose it absorbed), the additive mask or "", the select condition or "". Attributes:
    /// scale, fill, select (0 none, 1 keep where true, 2 keep where false), mask_order (0: add then select, 1: select
    /// then add), q_perm / k_perm / v_perm / y_perm (absorbed transposes; absent = none), invocations (attention.comp's
    /// workgroup size, `AttentionFusionRule.invocations`; absent = 64).
    static let attentionOp = "FusedAttention"

    /// Returns the chains it matched but did not fuse whose scores are larger than `rule.splitScoresAbove`: the
    /// lowering computes those in blocks of query rows (`LoweringContext.splitAttentions`).
    @discardableResult
    /// `halfPrecision`: the bundle is fp16, whose activations are held in fp32 and checked to fp16's tolerance;
    /// there a Cast of the probabilities to float16 (GPT-Neo's fp16 export) may be left out of the fusion, which
    /// then multiplies V by P unrounded.
    static func fuseAttention(_ nodes: inout [LoweringNode], initializers: [String: ConstantTensor],
                              values: [String: ValueInfo], graphOutputs: Set<String>, opset: Int,
                              rule: AttentionFusionRule = .always, halfPrecision: Bool = false) -> [AttentionSplit] {
        guard rule.maxKeys > 0 || rule.scoresAbove < Int.max || rule.splitScoresAbove < Int.max else { return [] }
        var splits: [AttentionSplit] = []
        let uses = useCounts(nodes, graphOutputs: graphOutputs)
        let producer = producers(nodes)
        var readers: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() {
            for input in n.node.inputs where !input.isEmpty { readers[input, default: []].append(i) }
        }
        var removed = Set<Int>()
        var replacements: [Int: LoweringNode] = [:]
        func scalar(_ name: String) -> Float? {
            guard let c = initializers[name], c.dtype.isFloat, c.elementCount == 1 else { return nil }
            return c.floats()[0]
        }
        func shape(_ name: String) -> [Int]? { initializers[name]?.shape ?? values[name]?.staticShape }
        func isActivation(_ name: String) -> Bool {
            initializers[name] == nil && (values[name]?.dtype == .float32 || values[name]?.dtype == .float16)
        }

        for (last, m2) in nodes.enumerated() where m2.op == "MatMul" && isDefaultDomain(m2.node) {
            guard !removed.contains(last), m2.activation == .none, m2.bias == nil, m2.node.inputs.count == 2,
                  m2.node.outputs.count == 1 else { continue }
            var members: [Int] = [last]
            func sole(_ value: String) -> Int? {
                guard let p = soleProducer(of: value, in: nodes, producers: producer, uses: uses,
                                           graphOutputs: graphOutputs, removed: removed, predicate: m2.predicate),
                      !members.contains(p), nodes[p].activation == .none else { return nil }
                return p
            }
            // A Cast that changes no value: to the same type, or float16 to float32 (GPT-Neo's fp16 export casts Q
            // and K up; in an fp32 export those Casts are identities).
            func isIdentityCast(_ p: Int) -> Bool {
                guard nodes[p].op == "Cast", let x = nodes[p].node.inputs.first, let dtype = values[x]?.dtype else {
                    return false
                }
                let to = nodes[p].node.int("to", default: -1)
                return to == Int(dtype.rawValue) || (dtype == .float16 && to == Int(DType.float32.rawValue))
            }
            func isCastToHalf(_ p: Int) -> Bool {
                nodes[p].op == "Cast" && nodes[p].node.int("to", default: -1) == Int(DType.float16.rawValue)
            }
            // P = Softmax(x) over the last axis, possibly through an identity Cast (or, in an fp16 bundle, a Cast to
            // float16: GPT-Neo's fp16 export rounds P before its product with V).
            var value = m2.node.inputs[0]
            guard var p = sole(value) else { continue }
            if isIdentityCast(p) || (halfPrecision && isCastToHalf(p)) {
                members.append(p)
                value = nodes[p].node.inputs[0]
                guard let q = sole(value) else { continue }
                p = q
            }
            guard nodes[p].op == "Softmax", let scoresShape = shape(value), scoresShape.count >= 2 else { continue }
            let rank = scoresShape.count
            // Opset < 13 coerces to 2-D at `axis` (default 1): at the last axis that is the same normalization.
            let axis = nodes[p].node.int("axis", default: opset < 13 ? 1 : -1)
            guard axis == -1 || axis == rank - 1 else { continue }
            members.append(p)
            value = nodes[p].node.inputs[0]

            // Masks, then scales, walking up to MatMul(Q, Kᵀ).
            var scale: Float = 1, fill: Float = 0
            var addMask: String?, cond: String?
            var select = 0, maskOrder = 0
            var seenScale = false
            var first: Int?
            var ok = true
            while ok, let q = sole(value) {
                let n = nodes[q].node
                if nodes[q].op == "MatMul" {
                    first = q
                    break
                }
                if isIdentityCast(q) {
                    members.append(q)
                    value = n.inputs[0]
                    continue
                }
                switch nodes[q].op {
                case "Mul" where n.inputs.count == 2:
                    if let c = scalar(n.inputs[1]) { scale *= c; value = n.inputs[0] }
                    else if let c = scalar(n.inputs[0]) { scale *= c; value = n.inputs[1] }
                    else { ok = false }
                    seenScale = true
                case "Div" where n.inputs.count == 2:
                    if let c = scalar(n.inputs[1]), c != 0 { scale /= c; value = n.inputs[0] } else { ok = false }
                    seenScale = true
                case "Add" where n.inputs.count == 2 && !seenScale && addMask == nil:
                    // The scores are the operand of the scores' shape that a node of the chain computes (torch
                    // writes scores + mask); the other is the mask.
                    func isScores(_ x: String) -> Bool {
                        shape(x) == scoresShape && initializers[x] == nil && sole(x) != nil
                    }
                    let (scores, other) = isScores(n.inputs[0]) ? (n.inputs[0], n.inputs[1]) : (n.inputs[1], n.inputs[0])
                    guard isScores(scores), scores != other,
                          let dtype = initializers[other]?.dtype ?? values[other]?.dtype,
                          dtype.isFloat, let s = shape(other), s.count <= rank,
                          Broadcast.shape(s, scoresShape) == scoresShape else { ok = false; break }
                    addMask = other
                    if cond != nil { maskOrder = 0 }  // walking up: the select seen before comes after this add
                    value = scores
                case "Where" where n.inputs.count == 3 && !seenScale && cond == nil:
                    let c = n.inputs[0]
                    guard initializers[c]?.dtype ?? values[c]?.dtype == .bool, let s = shape(c), s.count <= rank,
                          Broadcast.shape(s, scoresShape) == scoresShape else { ok = false; break }
                    if let f = scalar(n.inputs[2]), scalar(n.inputs[1]) == nil, shape(n.inputs[1]) == scoresShape {
                        select = 1; fill = f; value = n.inputs[1]
                    } else if let f = scalar(n.inputs[1]), scalar(n.inputs[2]) == nil, shape(n.inputs[2]) == scoresShape {
                        select = 2; fill = f; value = n.inputs[2]
                    } else { ok = false; break }
                    cond = c
                    if addMask != nil { maskOrder = 1 }  // the add seen before comes after this select
                default:
                    ok = false
                }
                if ok { members.append(q) }
            }
            guard ok, let m1 = first, nodes[m1].bias == nil, nodes[m1].node.inputs.count == 2,
                  nodes[m1].node.outputs[0] == value else { continue }
            members.append(m1)
            // The chain itself, MatMul(Q, Kᵀ) first: what a split computes once per block of query rows.
            let core = members.reversed().map { nodes[$0] }
            let scoresBytes = scoresShape.reduce(1, *) * 4
            func split() {
                guard scoresBytes > rule.splitScoresAbove, let qShape = shape(nodes[m1].node.inputs[0]), qShape.count >= 2,
                      qShape[qShape.count - 2] == scoresShape[rank - 2], scoresShape[rank - 2] > 1 else { return }
                let masks = core.flatMap { n -> [String] in
                    switch n.op {
                    case "Add": return n.node.inputs.filter { !core.map(\.node.outputs[0]).contains($0) }
                    case "Where": return [n.node.inputs[0]]
                    default: return []
                    }
                }
                splits.append(AttentionSplit(chain: core, scoresShape: scoresShape, masks: masks,
                                             rowsPerBlock: AttentionSplit.rowsPerBlock(scoresShape: scoresShape,
                                                                                     limit: rule.splitScoresAbove)))
            }

            // Q and Kᵀ through scalings and one Transpose each; V and the output through one Transpose each.
            func operand(_ name: String, scaled: Bool) -> (source: String, perm: [Int]?) {
                var name = name
                while let q = sole(name), isIdentityCast(q) || (scaled && ["Mul", "Div"].contains(nodes[q].op)
                                                                  && nodes[q].node.inputs.count == 2) {
                    let n = nodes[q].node
                    if isIdentityCast(q) { name = n.inputs[0] }  // GPT-Neo casts Q and K to float32
                    else if nodes[q].op == "Mul", let c = scalar(n.inputs[1]) { scale *= c; name = n.inputs[0] }
                    else if nodes[q].op == "Mul", let c = scalar(n.inputs[0]) { scale *= c; name = n.inputs[1] }
                    else if nodes[q].op == "Div", let c = scalar(n.inputs[1]), c != 0 { scale /= c; name = n.inputs[0] }
                    else { break }
                    members.append(q)
                }
                if let q = sole(name), nodes[q].op == "Transpose", let perm = nodes[q].node.ints("perm"),
                   let source = nodes[q].node.inputs.first, isActivation(source) {
                    members.append(q)
                    return (source, perm)
                }
                return (name, nil)
            }
            let q = operand(nodes[m1].node.inputs[0], scaled: true)
            let k = operand(nodes[m1].node.inputs[1], scaled: true)
            let v = operand(m2.node.inputs[1], scaled: false)
            var output = m2.node.outputs[0]
            var yPerm: [Int]?
            if uses[output] == 1, !graphOutputs.contains(output), let r = readers[output]?.first, !removed.contains(r),
               nodes[r].op == "Transpose", isDefaultDomain(nodes[r].node), nodes[r].predicate == m2.predicate,
               nodes[r].node.outputs.count == 1, let perm = nodes[r].node.ints("perm") {
                yPerm = perm
                output = nodes[r].node.outputs[0]
                members.append(r)
            }
            guard [q.source, k.source, v.source].allSatisfy(isActivation),
                  let qShape = shape(q.source), let kShape = shape(k.source), let vShape = shape(v.source),
                  let yShape = shape(output),
                  let layout = AttentionLayout(q: (qShape, q.perm), kT: (kShape, k.perm), v: (vShape, v.perm),
                                               y: (yShape, yPerm), addMask: addMask.flatMap(shape),
                                               cond: cond.flatMap(shape)),
                  rule.fuses(keys: layout.lk, scoresBytes: scoresBytes)
            else {
                split()
                continue
            }
            var attributes: [String: Attribute] = ["scale": .float(scale), "fill": .float(fill), "select": .int(select),
                                                   "mask_order": .int(maskOrder), "invocations": .int(rule.invocations)]
            for (key, perm) in [("q_perm", q.perm), ("k_perm", k.perm), ("v_perm", v.perm), ("y_perm", yPerm)] {
                if let perm { attributes[key] = .ints(perm) }
            }
            let at = members.max()!
            var fused = LoweringNode(Node(name: m2.node.name, opType: attentionOp,
                                          inputs: [q.source, k.source, v.source, addMask ?? "", cond ?? ""],
                                          outputs: [output], attributes: attributes))
            fused.label = "attention(" + members.sorted().map { nodes[$0].label }.joined(separator: "+") + ")"
            fused.predicate = m2.predicate
            replacements[at] = fused
            removed.formUnion(members)
        }
        if !removed.isEmpty {
            nodes = nodes.enumerated().compactMap { i, n in replacements[i] ?? (removed.contains(i) ? nil : n) }
        }
        return splits
    }
}

/// An attention left unfused whose scores would take more than `AttentionFusionRule.splitScoresAbove` bytes:
/// the lowering computes its chain once per block of `rowsPerBlock` query rows (Slice of Q and of the masks that
/// vary along the rows, the chain, Concat of the outputs), so at most one block's scores are in the arena at a time.
struct AttentionSplit {
    /// MatMul(Q, Kᵀ), the scalings, masks and casts, Softmax, MatMul(·, V): in order, each reading the one before.
    var chain: [LoweringNode]
    /// [batch…, Lq, Lk].
    var scoresShape: [Int]
    /// The masks' inputs (additive masks, select conditions): sliced along the rows where they vary along them.
    var masks: [String]
    var rowsPerBlock: Int

    /// The most rows whose scores take at most `limit` bytes, rounded down to a multiple of 64 (the products'
    /// tiles) where that leaves at least 64, at least 1.
    static func rowsPerBlock(scoresShape: [Int], limit: Int) -> Int {
        let rank = scoresShape.count
        let rowBytes = max(scoresShape.prefix(rank - 2).reduce(1, *) * scoresShape[rank - 1] * 4, 1)
        let rows = max(limit / rowBytes, 1)
        return rows >= 64 ? rows / 64 * 64 : rows
    }
}

/// How attention.comp walks one fused attention: sizes, and every operand's element strides over two batch
/// dims (outer, inner) and its two matrix dims (K as [Lk, D], masks as [Lq, Lk]; 0 along broadcast dims).
struct AttentionLayout: Equatable {
    var lq: Int, lk: Int, d: Int, dv: Int
    var batch: [Int]  // [outer, inner]
    var q: [Int], k: [Int], v: [Int], y: [Int], addMask: [Int], cond: [Int]  // each [b0, b1, row, column]
    /// Where Q, K and V start in the tensors bound for them (elements): views of a larger tensor (Lowering+Attention).
    var offsets: [Int]

    /// attention.comp's widest head (shared tiles of ATT_DMAX = 128).
    static let maxDepth = 128

    /// nil where the kernel cannot do it (shapes that do not fit a product, D or Dv over 128, more than two
    /// batch dims left after coalescing). Operands are (shape of the tensor read, the Transpose applied to it);
    /// `y` is the tensor written and the Transpose that made it from the product.
    init?(q: ([Int], [Int]?), kT: ([Int], [Int]?), v: ([Int], [Int]?), y: ([Int], [Int]?), addMask: [Int]?,
          cond: [Int]?) {
        func view(_ operand: ([Int], [Int]?)) -> StridedAccess? {
            let (shape, perm) = operand
            guard let perm else { return .contiguous(shape) }
            guard perm.count == shape.count, Set(perm) == Set(0..<shape.count) else { return nil }
            return StridedAccess.contiguous(shape).permuted(perm)
        }
        guard let qv = view(q), let kv = view(kT), let vv = view(v) else { return nil }
        self.init(q: qv, kT: kv, v: vv, y: y, addMask: addMask, cond: cond)
    }

    /// The same with Q, Kᵀ and V given as views (shape as the products see them, strides and offset into the
    /// tensor read).
    init?(q qv: StridedAccess, kT kv: StridedAccess, v vv: StridedAccess, y: ([Int], [Int]?), addMask: [Int]?,
          cond: [Int]?) {
        guard qv.shape.count >= 2,
              qv.shape.count == kv.shape.count, qv.shape.count == vv.shape.count else { return nil }
        let rank = qv.shape.count
        let lq = qv.shape[rank - 2], d = qv.shape[rank - 1]
        let lk = kv.shape[rank - 1], dv = vv.shape[rank - 1]
        guard kv.shape[rank - 2] == d, vv.shape[rank - 2] == lk, d <= Self.maxDepth, dv <= Self.maxDepth,
              lq > 0, lk > 0, d > 0, dv > 0 else { return nil }
        let qBatch = Array(qv.shape.prefix(rank - 2)), kBatch = Array(kv.shape.prefix(rank - 2))
        let vBatch = Array(vv.shape.prefix(rank - 2))
        guard let sBatch = Broadcast.shape(qBatch, kBatch), let outBatch = Broadcast.shape(sBatch, vBatch),
              outBatch.count == rank - 2 else { return nil }
        // The product [outBatch, Lq, Dv], and where each of its elements is written.
        let product = outBatch + [lq, dv]
        var yStrides: [Int]
        if let perm = y.1 {
            guard perm.count == rank, Set(perm) == Set(0..<rank), perm.map({ product[$0] }) == y.0 else { return nil }
            let written = StridedAccess.rowMajorStrides(y.0)
            yStrides = [Int](repeating: 0, count: rank)
            for i in 0..<rank { yStrides[perm[i]] = written[i] }
        } else {
            guard y.0 == product else { return nil }
            yStrides = StridedAccess.rowMajorStrides(product)
        }
        func batchStrides(_ shape: [Int], _ strides: [Int]) -> [Int] {
            zip(shape.prefix(rank - 2), strides.prefix(rank - 2)).map { $0 == 1 ? 0 : $1 }
        }
        let scores = outBatch + [lq, lk]
        func maskStrides(_ shape: [Int]?) -> [Int]? {
            guard let shape else { return [Int](repeating: 0, count: rank) }
            guard shape.count <= rank, Broadcast.shape(shape, scores) == scores else { return nil }
            return Broadcast.strides(of: shape, broadcastTo: scores)
        }
        guard let aStrides = maskStrides(addMask), let cStrides = maskStrides(cond) else { return nil }
        let all = [batchStrides(qv.shape, qv.strides), batchStrides(kv.shape, kv.strides),
                   batchStrides(vv.shape, vv.strides), Array(yStrides.prefix(rank - 2)),
                   Array(aStrides.prefix(rank - 2)), Array(cStrides.prefix(rank - 2))]
        let dims = Broadcast.coalesce(shape: outBatch.isEmpty ? [1] : outBatch,
                                      strides: outBatch.isEmpty ? all.map { _ in [0] } : all)
        guard dims.shape.count <= 2 else { return nil }
        let pad = 2 - dims.shape.count
        func two(_ s: [Int]) -> [Int] { [Int](repeating: 0, count: pad) + s }
        (self.lq, self.lk, self.d, self.dv) = (lq, lk, d, dv)
        batch = [Int](repeating: 1, count: pad) + dims.shape
        self.q = two(dims.strides[0]) + [qv.strides[rank - 2], qv.strides[rank - 1]]
        self.k = two(dims.strides[1]) + [kv.strides[rank - 1], kv.strides[rank - 2]]  // Kᵀ [D, Lk] read as [Lk, D]
        self.v = two(dims.strides[2]) + [vv.strides[rank - 2], vv.strides[rank - 1]]
        self.y = two(dims.strides[3]) + [yStrides[rank - 2], yStrides[rank - 1]]
        self.addMask = two(dims.strides[4]) + [aStrides[rank - 2], aStrides[rank - 1]]
        self.cond = two(dims.strides[5]) + [cStrides[rank - 2], cStrides[rank - 1]]
        offsets = [qv.offset, kv.offset, vv.offset]
        guard ([self.q, self.k, self.v, self.y, self.addMask, self.cond].joined()).allSatisfy({ $0 >= 0 }),
              offsets.allSatisfy({ $0 >= 0 }) else {
            return nil
        }
    }
}

/// Where `fuseAttention` makes one attention.comp step of an attention: where it has at most `maxKeys` keys, or
/// where its fp32 scores would take more than `scoresAbove` bytes (then the unfused chain would not fit one
/// storage buffer of the device) and splitting does not make them fit. An attention left unfused whose scores
/// take more than `splitScoresAbove` bytes is computed in blocks of query rows whose scores take at most that
/// (`AttentionSplit`). Per device: `CostModel.fusedAttentionMaxKeys` and `CostModel.storageBufferRange`
/// (`CompileOptions.attentionFusionRule`).
public struct AttentionFusionRule: Sendable, Equatable {
    public var maxKeys: Int
    public var scoresAbove: Int
    public var splitScoresAbove: Int
    /// Invocations per workgroup of the fused kernel (attention.comp's ATT_WG, one of `workgroupSizes`;
    /// `CostModel.attentionInvocations`).
    public var invocations: Int
    /// The workgroup sizes attention.comp is built for.
    public static let workgroupSizes = [64, 256]

    public init(maxKeys: Int, scoresAbove: Int, splitScoresAbove: Int = .max, invocations: Int = 64) {
        self.maxKeys = maxKeys
        self.scoresAbove = scoresAbove
        self.splitScoresAbove = splitScoresAbove
        self.invocations = invocations
    }

    /// Every attention the pass matches.
    public static let always = AttentionFusionRule(maxKeys: Int.max, scoresAbove: 0)
    /// None.
    public static let never = AttentionFusionRule(maxKeys: 0, scoresAbove: Int.max)

    func fuses(keys: Int, scoresBytes: Int) -> Bool {
        keys <= maxKeys || (scoresBytes > scoresAbove && splitScoresAbove >= scoresAbove)
    }
}
