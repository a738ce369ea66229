// FusedAttention (made by LoweringPasses.fuseAttention, LoweringPasses+Attention.swift) → attention.comp: one
// dispatch of ceil(Lq / 16) × batches workgroups computing softmax(mask(scale · Q × Kᵀ)) × V with the scores on
// chip. The operands are read (and the output written) through the strides `AttentionLayout` computes, so the
// transposes the pass absorbed cost nothing. A strided copy that made Q, K or V for this step alone (the head
// split of a fused QKV projection: ViT's Gather + Reshape + Transpose of one [L, 3·E] product) is folded in too:
// the step reads the copy's source through the composed view, from an element offset (`composableCopy`, as the
// data-movement lowering folds copies into copies). Owned by the matmul family.

import FMBFormat

extension LoweringContext {
    func lowerAttention(_ n: LoweringNode) throws {
        let q = try input(n, 0), k = try input(n, 1), v = try input(n, 2), y = try output(n)
        let addMask = optionalInput(n, 3), cond = optionalInput(n, 4)
        try requireFloat(n, [q, k, v, y] + (addMask.map { [$0] } ?? []))
        let perm = { (key: String) in n.node.ints(key) }
        let yView = (try shape(y, of: n), perm("y_perm"))
        let maskShapes = (try addMask.map { try shape($0, of: n) }, try cond.map { try shape($0, of: n) })
        // Each operand as the products see it: the tensor itself (`plain`), or the source of the copy that made it.
        var sources = [q, k, v]
        var plain: [StridedAccess] = [], views: [StridedAccess] = []
        var folded: [(step: Int, root: String, removable: Bool)] = []
        for (name, key) in [(q, "q_perm"), (k, "k_perm"), (v, "v_perm")] {
            let operandShape = try shape(name, of: n)
            let p = perm(key) ?? Array(0..<operandShape.count)
            guard p.count == operandShape.count, Set(p) == Set(0..<operandShape.count) else {
                throw error(n, "internal: \(key) \(p) is not a permutation of \(operandShape.count) axes")
            }
            plain.append(StridedAccess.contiguous(operandShape).permuted(p))
            if let copy = composableCopy(producing: name, consumer: n), copy.removable,
               let seen = copy.access.reshaped(operandShape) {
                sources[views.count] = copy.source
                folded.append((copy.step, copy.root, copy.removable))
                views.append(seen.permuted(p))
            } else {
                views.append(plain[plain.count - 1])
            }
        }
        func fit(_ v: [StridedAccess]) -> AttentionLayout? {
            AttentionLayout(q: v[0], kT: v[1], v: v[2], y: yView, addMask: maskShapes.0, cond: maskShapes.1)
        }
        var layout = fit(views)
        if layout == nil, !folded.isEmpty {
            // The composed views do not fit the kernel's strides: read the copies' outputs instead.
            (sources, folded, layout) = ([q, k, v], [], fit(plain))
        }
        guard let layout else {
            throw error(n, "internal: the fused attention's operands do not fit attention.comp")
        }
        fold(folded, into: n)
        let dmax = max(layout.d, layout.dv) <= 64 ? 64 : 128
        let bc = dmax == 64 ? 32 : 16  // attention.comp's BC (keys per tile)
        let select = n.node.int("select", default: 0)
        let invocations = n.node.int("invocations", default: 64)
        guard AttentionFusionRule.workgroupSizes.contains(invocations) else {
            throw error(n, "internal: attention.comp runs \(AttentionFusionRule.workgroupSizes) invocations per workgroup, "
                        + "not \(invocations)")
        }
        let kernel = try self.kernel(KernelRequest(
            family: KernelCatalog.attention, defines: ["ATT_DMAX": "\(dmax)", "ATT_WG": "\(invocations)"],
            specConstants: [addMask == nil ? 0 : 1, UInt32(select), UInt32(n.node.int("mask_order", default: 0)),
                            UInt32(layout.d), UInt32(layout.dv)],
            // attention.comp's shared arrays: Qs [16][dmax], KsT [dmax][BC + 1], Vs [BC][dmax], S [16][BC + 1], 3 × 16.
            workgroupSize: [UInt32(invocations), 1, 1],
            sharedMemoryBytes: (16 * dmax + dmax * (bc + 1) + bc * dmax + 16 * (bc + 1) + 3 * 16) * 4))
        var push = PushConstants()
        push.append([layout.lq, layout.lk, layout.batch[1]] + layout.offsets)
        for strides in [layout.q, layout.k, layout.v, layout.y, layout.addMask, layout.cond] {
            push.append(strides)
        }
        push.append(n.node.float("scale", default: 1))
        push.append(n.node.float("fill", default: 0))
        let batches = layout.batch[0] * layout.batch[1]
        guard batches <= Lowering.maxGroupsPerAxis else {
            throw error(n, "\(batches) attention batches exceed the dispatch grid")
        }
        let groups = [LoweringMath.ceilDiv(layout.lq, 16), batches, 1]
        let qBinding = try read(sources[0], for: n)
        let bindings = [qBinding, try read(sources[1], for: n), try read(sources[2], for: n), try write(y, for: n),
                        try addMask.map { try read($0, for: n) } ?? qBinding,
                        try cond.map { try read($0, for: n) } ?? qBinding]
        let (lq, lk, d, dv) = (Double(layout.lq), Double(layout.lk), Double(layout.d), Double(layout.dv))
        let b = Double(batches)
        try emit(n, kernel: kernel, groups: groups.map { UInt32(clamping: $0) }, bindings: bindings, push: push,
                 flops: b * lq * lk * (2 * d + 2 * dv + 5),
                 bytes: b * 4 * (lq * d + lk * (d + dv) * (lq / 16).rounded(.up) + lq * dv
                                 + (addMask == nil ? 0 : lq * lk) + (cond == nil ? 0 : lq * lk)),
                 work: .attention)
    }
}
