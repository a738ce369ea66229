// Activations in halves written by their producer: a to_half.comp step (A of a tensor-core product as rows of
// halves, Lowering+MatMul.swift's emitToHalf) whose source is the output of a normalize.comp step that nothing
// else reads (a transformer's LayerNorm before its attention or MLP projections) is merged into that step: the
// normalization writes its rows as halves itself (normalize.comp's NORM_HALF_OUT), its fp32 output is never
// made, and the program has one step and one barrier fewer. The halves are the same: packHalf2x16 of the same fp32
// value in both kernels.
//
// The lowering rules record the candidates as they emit them; `fuseHalfOutputs` runs once every node is lowered,
// when every reader of every tensor is known.

/// The steps `LoweringContext.fuseHalfOutputs` may merge.
struct HalfOutputCandidates {
    /// A normalize.comp step without statistics outputs, by the tensor it writes.
    struct Normalization {
        var step: Int
        var rows: Int, len: Int
        var workgroup: Int
        var hasBias: Bool
    }
    /// A to_half.comp step: rows m of `source` (m · strideM + k) → `output`.
    struct Conversion {
        var step: Int
        var source: String, output: String
        var m: Int, k: Int, strideM: Int
    }
    var normalizations: [String: Normalization] = [:]
    var conversions: [Conversion] = []
}

extension LoweringContext {
    func fuseHalfOutputs(graphOutputs: Set<String>) throws {
        let candidates = halfOutputCandidates
        guard !candidates.conversions.isEmpty, !candidates.normalizations.isEmpty else { return }
        // The steps that bind each tensor (views count as their root), and the tensors others are views of.
        var binders: [String: Set<Int>] = [:]
        for (k, step) in program.steps.enumerated() {
            for name in step.tensors { binders[program.tensors[name]?.viewOf ?? name, default: []].insert(k) }
        }
        let viewed = Set(program.tensors.values.compactMap(\.viewOf))
        var removed = Set<Int>()
        for conversion in candidates.conversions {
            let x = conversion.source
            guard let norm = candidates.normalizations[x], norm.step < conversion.step,
                  conversion.m == norm.rows, conversion.k == norm.len, conversion.strideM == norm.len,
                  !graphOutputs.contains(x), !viewed.contains(x), program.tensors[x]?.viewOf == nil,
                  binders[x] == [norm.step, conversion.step],
                  program.steps[norm.step].predicate == program.steps[conversion.step].predicate
            else { continue }
            let kernel = try self.kernel(KernelRequest(
                family: KernelCatalog.normalize, defines: ["NORM_HALF_OUT": "1"],
                specConstants: [UInt32(norm.workgroup), norm.hasBias ? 1 : 0, 0],
                workgroupSize: [UInt32(norm.workgroup), 1, 1], sharedMemoryBytes: norm.workgroup * 4))
            var step = program.steps[norm.step]
            step.kernel = kernel
            // Y and the two unused statistics bindings (Y again) become the rows of halves.
            for i in 3...5 { step.bindings[i] = .tensor(conversion.output) }
            step.bytesRead -= Double(norm.rows * norm.len * 2)  // halves written instead of floats
            program.steps[norm.step] = step
            program.tensors[x] = nil
            removed.insert(conversion.step)
        }
        guard !removed.isEmpty else { return }
        program.steps = program.steps.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        pruneUnusedKernels()
    }
}
