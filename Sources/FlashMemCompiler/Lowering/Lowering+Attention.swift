// FusedAttention (made by LoweringPasses.fuseAttention, LoweringPasses+Attention.swift) → attention.comp: one
// dispatch of ceil(Lq / 16) × batches workgroups computing softmax(mask(scale · Q × Kᵀ)) × V with the scores on
// chip. The operands are read (and the output written) through the strides `AttentionLayout` computes, so the
// transposes the pass absorbed cost nothing. Owned by the matmul family.

import FMBFormat

extension LoweringContext {
    func lowerAttention(_ n: LoweringNode) throws {
        let q = try input(n, 0), k = try input(n, 1), v = try input(n, 2), y = try output(n)
        let addMask = optionalInput(n, 3), cond = optionalInput(n, 4)
        try requireFloat(n, [q, k, v, y] + (addMask.map { [$0] } ?? []))
        let perm = { (key: String) in n.node.ints(key) }
        guard let layout = AttentionLayout(
            q: (try shape(q, of: n), perm("q_perm")), kT: (try shape(k, of: n), perm("k_perm")),
            v: (try shape(v, of: n), perm("v_perm")), y: (try shape(y, of: n), perm("y_perm")),
            addMask: try addMask.map { try shape($0, of: n) }, cond: try cond.map { try shape($0, of: n) })
        else {
            throw error(n, "internal: the fused attention's operands do not fit attention.comp")
        }
        let dmax = max(layout.d, layout.dv) <= 64 ? 64 : 128
        let bc = dmax == 64 ? 32 : 16  // attention.comp's BC (keys per tile)
        let select = n.node.int("select", default: 0)
        let kernel = try self.kernel(KernelRequest(
            family: KernelCatalog.attention, defines: ["ATT_DMAX": "\(dmax)"],
            specConstants: [addMask == nil ? 0 : 1, UInt32(select), UInt32(n.node.int("mask_order", default: 0)),
                            UInt32(layout.d), UInt32(layout.dv)],
            // attention.comp's shared arrays: Qs [16][dmax], KsT [dmax][BC + 1], Vs [BC][dmax], S [16][BC + 1], 3 × 16.
            workgroupSize: [64, 1, 1], sharedMemoryBytes: (16 * dmax + dmax * (bc + 1) + bc * dmax + 16 * (bc + 1)
                                                            + 3 * 16) * 4))
        var push = PushConstants()
        push.append([layout.lq, layout.lk, layout.d, layout.dv, layout.batch[1]])
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
        let qBinding = try read(q, for: n)
        let bindings = [qBinding, try read(k, for: n), try read(v, for: n), try write(y, for: n),
                        try addMask.map { try read($0, for: n) } ?? qBinding,
                        try cond.map { try read($0, for: n) } ?? qBinding]
        let (lq, lk, d, dv) = (Double(layout.lq), Double(layout.lk), Double(layout.d), Double(layout.dv))
        let b = Double(batches)
        try emit(n, kernel: kernel, groups: groups.map { UInt32(clamping: $0) }, bindings: bindings, push: push,
                 flops: b * lq * lk * (2 * d + 2 * dv + 5),
                 bytes: b * 4 * (lq * d + lk * (d + dv) * (lq / 16).rounded(.up) + lq * dv
                                 + (addMask == nil ? 0 : lq * lk) + (cond == nil ? 0 : lq * lk)))
    }
}
