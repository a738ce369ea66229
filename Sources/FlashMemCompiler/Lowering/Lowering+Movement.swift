// Data-movement ops as views and strided copies: Transpose, Slice, Expand, Tile, Split, Concat (and Gather with
// evenly spaced constant indices, in Lowering+MovementKernels.swift) are affine views of their input
// (StridedAccess) and lower to copy_strided.comp — or to nothing:
//   * on constants they are evaluated here (a transposed weight still reaches its MatMul as a weight image);
//   * a Transpose that only moves size-1 dims is a view (same bytes, no kernel);
//   * a copy whose result is only consumed, through Reshape / Squeeze / Unsqueeze / Flatten views, by another
//     movement op is not kept: the consumer reads the first copy's source with the composed strides, so a chain
//     of Transposes and reshapes costs one copy, and none when it composes to the identity.
// Every copy step's kernel is named `copy_strided<COPY_ROLE=op>…` (transpose, slice, expand, tile, split,
// concat, gather): the copies that remain are the bundle's steps whose kernel name starts with `copy_strided`.
// Gather with run-time indices, Pad, Trilu: Lowering+MovementKernels.swift; Resize: Lowering+Resize.swift.
// Owned by the data-movement family.

import FMBFormat

extension KernelCatalog {
    /// X, Y. Push: count rank inOffset outOffset shape[6] inStride[6] outStride[6]. COPY_ROLE only names the kernel.
    static let copyStrided = KernelFamily(file: "copy_strided.comp", bindings: [.storageBuffer, .storageBuffer],
                                          pushConstantSize: 22 * 4,
                                          axes: [("COPY_ROLE", MovementCopy.roles)])
    /// X, I, Y, E (index check flags). Push: count indexCount inner axisDim.
    static let gather = KernelFamily(file: "gather.comp",
                                     bindings: [.storageBuffer, .storageBuffer, .storageBuffer, .storageBuffer],
                                     pushConstantSize: 4 * 4, axes: [])
    /// W (weight image, or one row piece of it), I, Y, E (index check flags). Push: count indexCount inner axisDim
    /// log2W log2H rowBase rowCount.
    static let gatherImage = KernelFamily(file: "gather_image.comp",
                                          bindings: [.storageImage, .storageBuffer, .storageBuffer, .storageBuffer],
                                          pushConstantSize: 8 * 4, axes: [])
    /// X, V, Y. Push: count rank value outShape[6] inShape[6] padBegin[6].
    static let pad = KernelFamily(file: "pad.comp", bindings: [.storageBuffer, .storageBuffer, .storageBuffer],
                                  pushConstantSize: 21 * 4, axes: [])
    /// X, Y. Push: count rows cols k.
    static let trilu = KernelFamily(file: "trilu.comp", bindings: [.storageBuffer, .storageBuffer],
                                    pushConstantSize: 4 * 4, axes: [])
    /// X, T (tap table), Y. Push: count rank extrapolation outShape[6] inStride[6] tableOffset[6] taps[6].
    static let resize = KernelFamily(file: "resize.comp", bindings: [.storageBuffer, .storageBuffer, .storageBuffer],
                                     pushConstantSize: 27 * 4, axes: [])

    /// The data-movement family's kernels (listed in `all`).
    static let movementFamilies: [KernelFamily] = [copyStrided, gather, gatherImage, pad, trilu, resize]
}

extension LoweringContext {
    static let movementRules: [String: LoweringRule] = [
        "Transpose": { $0.lowerTranspose },
        "Slice": { $0.lowerSlice },
        "Expand": { $0.lowerExpand },
        "Tile": { $0.lowerTile },
        "Split": { $0.lowerSplit },
        "Concat": { $0.lowerConcat },
        "Gather": { $0.lowerGather },
        "Pad": { $0.lowerPad },
        "Trilu": { $0.lowerTrilu },
        "Resize": { $0.lowerResize },
        "Upsample": { $0.lowerResize },
    ]

    /// A NodeContext for reusing the shape rules' operand parsing (MovementOperands).
    func nodeContext(_ n: LoweringNode) -> NodeContext {
        NodeContext(node: n.node, graph: graph)
    }

    // MARK: - Single-input views

    func lowerTranspose(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let xShape = try shape(x, of: n)
        let perm = n.node.ints("perm") ?? Array((0..<xShape.count).reversed())
        guard perm.count == xShape.count, Set(perm) == Set(0..<xShape.count) else {
            throw error(n, "perm \(perm) is not a permutation of the \(xShape.count) axes")
        }
        // Also a write pattern: x's element c goes to y's row-major position Σ c_d · yStride[perm⁻¹(d)].
        let yStrides = StridedAccess.rowMajorStrides(perm.map { xShape[$0] })
        var scatter = [Int](repeating: 0, count: perm.count)
        for (i, d) in perm.enumerated() { scatter[d] = yStrides[i] }
        try lowerStridedView(n, role: "transpose", x: x, y: y, scatter: scatter) { $0.permuted(perm) }
    }

    func lowerSlice(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let xShape = try shape(x, of: n)
        let axes: [ShapeRules.SliceAxis]
        do {
            axes = try ShapeInference(graph: graph, strict: true).sliceAxes(nodeContext(n), shape: xShape)
        } catch let e as ShapeRuleError {
            throw error(n, e.message)
        }
        try lowerStridedView(n, role: "slice", x: x, y: y) { $0.sliced(axes) }
    }

    func lowerExpand(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let yShape = try shape(y, of: n)
        try lowerStridedView(n, role: "expand", x: x, y: y, grows: true) { $0.broadcast(to: yShape) }
    }

    func lowerTile(_ n: LoweringNode) throws {
        let x = try input(n, 0), y = try output(n)
        let repeats = try MovementOperands.tileRepeats(nodeContext(n), rank: try shape(x, of: n).count)
        try lowerStridedView(n, role: "tile", x: x, y: y, grows: true) { $0.tiled(repeats) }
    }

    /// Lowers `y = view(x)` for an affine `view` (y is the view's elements in row-major order): folds it on a
    /// constant x, registers y as a view when the result reads x (or the source of a composed copy) unchanged,
    /// else emits one strided copy. `grows`: the result may be larger than x (Expand, Tile), so a constant is
    /// folded only while small. `scatter`: for a view that reorders every element of x once (Transpose), where
    /// x's element c lands in y (Σ c_d·scatter[d]), which lets a copy producing x compose from the write side.
    func lowerStridedView(_ n: LoweringNode, role: String, x: String, y: String, grows: Bool = false,
                          scatter: [Int]? = nil, view: (StridedAccess) -> StridedAccess?) throws {
        let xShape = try shape(x, of: n), yShape = try shape(y, of: n)
        if let constant = initializers[x],
           !grows || elementCount(yShape) <= max(MovementCopy.foldLimit, constant.elementCount) {
            guard let access = view(.contiguous(xShape)), access.count == elementCount(yShape) else {
                throw error(n, "internal: the view of \(xShape) does not give \(yShape)")
            }
            initializers[y] = MovementCopy.materialize(constant, access, shape: yShape)
            return
        }
        if let scatter, try writeProducts(of: x, shape: xShape, for: n, into: y, scatter: (scatter, 0)) {
            return
        }
        let plan = try planCopy(of: x, shape: xShape, for: n, view: view,
                                write: { (StridedAccess.rowMajorStrides($0.shape), 0) },
                                scatter: scatter.map { ($0, 0) })
        guard plan.read.count == elementCount(yShape) else {
            throw error(n, "internal: the view of \(xShape) does not give \(yShape)")
        }
        if let replaced = plan.replaced { program.steps.remove(at: replaced) }
        let contiguousWrite = plan.writeOffset == 0
            && StridedAccess(shape: plan.read.shape, strides: plan.writeStrides).isIdentity
        if let constant = initializers[plan.source], plan.replaced != nil, contiguousWrite {
            initializers[y] = MovementCopy.materialize(constant, plan.read, shape: yShape)
            return
        }
        if plan.read.isIdentity, contiguousWrite, let sourceTensor = program.tensors[plan.source],
           sourceTensor.byteSize == elementCount(yShape) * 4 {
            try registerView(y, of: plan.source, for: n)
            return
        }
        let destination = try write(y, for: n)
        try emitCopy(n, role: role, from: try read(plan.source, for: n), plan.read, to: destination,
                     outStrides: plan.writeStrides, outOffset: plan.writeOffset)
    }

    /// One copy: element c of `read` (over `source`) goes to `writeOffset + Σ c_d·writeStrides[d]` of the
    /// destination; `replaced`: the index of an earlier copy step folded into this one (the caller removes it).
    struct CopyPlan {
        var source: String
        var read: StridedAccess
        var writeStrides: [Int]
        var writeOffset: Int
        var replaced: Int?
    }

    /// How to copy `x` (of `shape`) seen through `view` and written by `write` (strides and offset over the view's
    /// result). When `x` is the whole output of a single earlier copy step whose result only `n` consumes
    /// (possibly through views), that copy is folded in: from the read side when its read pattern seen with x's
    /// shape is affine (then `view` applies to it), else from the write side when the consumer writes every
    /// element of x once (`scatter`: strides and offset over x's coordinates) and that pattern, seen with the
    /// producer's iteration shape, is affine.
    func planCopy(of x: String, shape xShape: [Int], for n: LoweringNode, view: (StridedAccess) -> StridedAccess?,
                  write: (StridedAccess) -> (strides: [Int], offset: Int),
                  scatter: (strides: [Int], offset: Int)? = nil) throws -> CopyPlan {
        if let producer = composableCopy(producing: x, consumer: n) {
            if let seen = producer.access.reshaped(xShape), let access = view(seen) {
                let w = write(access)
                composed(producer.root, by: n)
                return CopyPlan(source: producer.source, read: access, writeStrides: w.strides, writeOffset: w.offset,
                                replaced: producer.removable ? producer.step : nil)
            }
            if producer.removable, let scatter,
               let w = StridedAccess(shape: xShape, strides: scatter.strides, offset: scatter.offset)
                .reshaped(producer.access.shape) {
                return CopyPlan(source: producer.source, read: producer.access, writeStrides: w.strides,
                                writeOffset: w.offset, replaced: producer.step)
            }
        }
        guard let access = view(.contiguous(xShape)) else {
            throw error(n, "internal: no view of \(xShape)")
        }
        let w = write(access)
        return CopyPlan(source: x, read: access, writeStrides: w.strides, writeOffset: w.offset, replaced: nil)
    }

    // MARK: - Split and Concat

    func lowerSplit(_ n: LoweringNode) throws {
        let x = try input(n, 0)
        let xShape = try shape(x, of: n)
        let split = try MovementOperands.split(nodeContext(n), shape: xShape)
        let outputs = n.node.outputs
        func part(_ j: Int) -> [ShapeRules.SliceAxis] {
            var axes = xShape.map { ShapeRules.SliceAxis(start: 0, step: 1, count: $0) }
            axes[split.axis] = ShapeRules.SliceAxis(start: split.sizes[..<j].reduce(0, +), step: 1, count: split.sizes[j])
            return axes
        }
        if let constant = initializers[x] {
            for (j, y) in outputs.enumerated() where !y.isEmpty {
                let access = StridedAccess.contiguous(xShape).sliced(part(j))
                initializers[y] = MovementCopy.materialize(constant, access, shape: access.shape)
            }
            return
        }
        // Every output reads x through its own slice; a copy producing x is composed once for all of them.
        var source = x
        var base = StridedAccess.contiguous(xShape)
        if let producer = composableCopy(producing: x, consumer: n), let seen = producer.access.reshaped(xShape) {
            fold([(producer.step, producer.root, producer.removable)], into: n)
            source = producer.source
            base = seen
        }
        let sourceBinding = try read(source, for: n)
        for (j, y) in outputs.enumerated() where !y.isEmpty {
            let access = base.sliced(part(j))
            guard access.count == elementCount(try shape(y, of: n)) else {
                throw error(n, "internal: output \(j) does not have \(access.shape)")
            }
            let destination = try write(y, for: n)
            try emitCopy(n, role: "split", from: sourceBinding, access, to: destination,
                         outStrides: StridedAccess.rowMajorStrides(access.shape), outOffset: 0)
        }
    }

    func lowerConcat(_ n: LoweringNode) throws {
        let y = try output(n)
        let yShape = try shape(y, of: n)
        guard case .int(let axisAttribute)? = n.node.attributes["axis"] else { throw error(n, "Concat needs an axis") }
        let axis = axisAttribute < 0 ? axisAttribute + yShape.count : axisAttribute
        guard axis >= 0 && axis < yShape.count else { throw error(n, "axis \(axisAttribute) is out of range") }
        let inputs = n.node.inputs.filter { !$0.isEmpty }
        let outStrides = StridedAccess.rowMajorStrides(yShape)

        if inputs.allSatisfy({ initializers[$0] != nil }) {
            initializers[y] = MovementCopy.concatenate(inputs.map { initializers[$0]! }, axis: axis, shape: yShape)
            return
        }
        // One copy per input into its region of y; a copy producing an input is folded into it (once per name).
        var offsets: [String: Int] = [:]
        var start = 0
        for x in inputs {
            let xShape = try shape(x, of: n)
            guard xShape.count == yShape.count else { throw error(n, "input '\(x)' has rank \(xShape.count)") }
            if offsets[x] == nil { offsets[x] = start }
            start += xShape[axis]
        }
        var plans: [String: CopyPlan] = [:]
        for x in inputs where plans[x] == nil {
            let region = (strides: outStrides, offset: offsets[x]! * outStrides[axis])
            // Products that write into y themselves need no plan (`writeProducts`: only an input named once).
            if try writeProducts(of: x, shape: try shape(x, of: n), for: n, into: y, scatter: region) { continue }
            let plan = try planCopy(of: x, shape: try shape(x, of: n), for: n, view: { $0 }, write: { _ in region },
                                    scatter: region)
            if let replaced = plan.replaced { program.steps.remove(at: replaced) }
            plans[x] = plan
        }
        let destination = try write(y, for: n)
        start = 0
        for x in inputs {
            let xShape = try shape(x, of: n)
            guard var plan = plans[x] else {
                start += xShape[axis]
                continue
            }
            if start != offsets[x]! {
                // The same input again, further along: move its write pattern by the difference.
                plan.writeOffset += (start - offsets[x]!) * outStrides[axis]
            }
            try emitCopy(n, role: "concat", from: try read(plan.source, for: n), plan.read, to: destination,
                         outStrides: plan.writeStrides, outOffset: plan.writeOffset)
            start += xShape[axis]
        }
        guard start == yShape[axis] else { throw error(n, "the inputs do not fill the output's axis \(axis)") }
    }

    // MARK: - Copy steps

    /// Emits copy_strided dispatches: element c of `access` (over `from`) goes to `outOffset + Σ c_d·outStrides[d]`
    /// of `to`. More than MAX_RANK dims after coalescing: one dispatch per index of the outer dims.
    func emitCopy(_ n: LoweringNode, role: String, from source: LoweredBinding, _ access: StridedAccess,
                  to destination: LoweredBinding, outStrides: [Int], outOffset: Int) throws {
        let count = access.count
        guard count > 0 else { return }
        let dims = StridedAccess.coalesce(access, outStrides: outStrides)
        let inner = max(0, dims.shape.count - MovementCopy.maxRank)
        let outer = Array(dims.shape[..<inner])
        let dispatches = outer.reduce(1, *)
        guard dispatches <= MovementCopy.maxDispatches else {
            throw error(n, "the copy of \(access.shape) has \(dims.shape.count) independent dims and would take "
                        + "\(dispatches) dispatches of \(MovementCopy.maxRank) dims (at most \(MovementCopy.maxDispatches))")
        }
        let wg = 256
        let kernel = try self.kernel(KernelRequest(family: KernelCatalog.copyStrided, defines: ["COPY_ROLE": role],
                                                   specConstants: [UInt32(wg)], workgroupSize: [UInt32(wg), 1, 1]))
        let shape = Array(dims.shape[inner...])
        let perDispatch = shape.reduce(1, *)
        for k in 0..<dispatches {
            var rest = k, inOffset = access.offset, outOffsetK = outOffset
            for d in stride(from: inner - 1, through: 0, by: -1) {
                let c = rest % outer[d]
                rest /= outer[d]
                inOffset += c * dims.inStrides[d]
                outOffsetK += c * dims.outStrides[d]
            }
            let push = MovementCopy.push(count: perDispatch, shape: shape, inStrides: Array(dims.inStrides[inner...]),
                                         outStrides: Array(dims.outStrides[inner...]), inOffset: inOffset,
                                         outOffset: outOffsetK)
            try emit(n, kernel: kernel, groups: try groups1D(n, items: perDispatch, perGroup: wg),
                     bindings: [source, destination], push: push, flops: 0, bytes: Double(perDispatch * 8))
        }
    }

    /// The copy step that wrote all of `value`'s root tensor, in order, if `consumer` may read its source instead:
    /// it is the only step that binds the root, no graph output is the root or a view of it, and every node that
    /// reads them (through views) is `consumer`, or else every one is a data-movement op or a MatMul, the consumer
    /// too (ViT's three Gathers of one head-split Transpose; the products of a split attention's blocks).
    /// `removable`: no other reader still needs the copy (the caller removes the step; otherwise it stays for the
    /// readers not yet lowered, and the caller records `composed(root, by:)`).
    func composableCopy(producing value: String, consumer: LoweringNode)
        -> (step: Int, root: String, source: String, access: StridedAccess, removable: Bool)? {
        guard let tensor = program.tensors[value] else { return nil }
        let root = tensor.viewOf ?? value
        var binders: [Int] = []
        for (k, step) in program.steps.enumerated() where step.bindings.contains(.tensor(root)) {
            binders.append(k)
            if binders.count > 1 { return nil }
        }
        guard let k = binders.first else { return nil }
        let step = program.steps[k]
        guard program.kernels[step.kernel].name.hasPrefix(KernelCatalog.copyStrided.stem + "<"),
              step.bindings.count == 2, step.bindings[1] == .tensor(root), case .tensor(let source) = step.bindings[0],
              source != root, let decoded = MovementCopy.decode(step.pushConstants),
              decoded.outOffset == 0, decoded.outStrides == StridedAccess.rowMajorStrides(decoded.shape),
              decoded.shape.reduce(1, *) == tensor.byteSize / 4,
              let others = otherReaders(of: root, consumer: consumer) else {
            return nil
        }
        let removable = others.isSubset(of: composedReaders[root, default: []])
        return (k, root, source, StridedAccess(shape: decoded.shape, strides: decoded.inStrides, offset: decoded.inOffset),
                removable)
    }

    /// How `consumer`, a kernel taking unsigned strides and an offset, reads `value` in place where a copy made it
    /// for consumer alone (`composableCopy`): the copy's source and its view seen with `shape` — or, with
    /// `walkingCopyDims`, over the copy's own dims where that view does not fit `shape` — and the copy, for `fold`
    /// once the consumer reads it so.
    func inPlaceRead(of value: String, shape: [Int], for consumer: LoweringNode, walkingCopyDims: Bool = false)
        -> (source: String, view: StridedAccess, copy: (step: Int, root: String, removable: Bool))? {
        guard let copy = composableCopy(producing: value, consumer: consumer),
              let view = copy.access.reshaped(shape) ?? (walkingCopyDims ? copy.access : nil),
              view.offset >= 0, view.strides.allSatisfy({ $0 >= 0 }) else { return nil }
        return (copy.source, view, (copy.step, copy.root, copy.removable))
    }

    /// Where `x` (of `xShape`) is written only by products of two activations (matmul.comp or matmul_cm.comp steps)
    /// and only `n` reads it, makes those products write their elements straight to where `n` would copy them
    /// (element c of x to `scatter.offset + Σ c_d·scatter.strides[d]` of `y`, registered here) and returns true: no
    /// copy is needed. The write side of composition: an unfused attention's P·V written through the Transpose back
    /// to [positions, heads, dims], and a split attention's blocks of rows into their Concat.
    func writeProducts(of x: String, shape xShape: [Int], for n: LoweringNode, into y: String,
                       scatter: (strides: [Int], offset: Int)) throws -> Bool {
        guard let tensor = program.tensors[x], tensor.constant == nil,
              n.node.inputs.filter({ $0 == x }).count == 1 else { return false }
        let root = tensor.viewOf ?? x
        guard otherReaders(of: root, consumer: n)?.isEmpty == true else { return false }
        let products = [KernelCatalog.matmul.stem, KernelCatalog.matmulCoopmat.stem].map { $0 + "<" }
        var writers: [(step: Int, view: StridedAccess)] = []
        for (k, step) in program.steps.enumerated() where step.bindings.contains(.tensor(root)) {
            let name = program.kernels[step.kernel].name
            guard products.contains(where: name.hasPrefix), step.predicate == nil, step.bindings.count == 4,
                  step.bindings.indices.allSatisfy({ ($0 == 2) == (step.bindings[$0] == .tensor(root)) }),
                  let view = MatMulPush.output(step.pushConstants)?.scattered(over: xShape, to: scatter),
                  view.offset >= 0, view.strides.allSatisfy({ $0 >= 0 }) else { return false }
            writers.append((k, view))
        }
        guard !writers.isEmpty else { return false }
        let destination = try write(y, for: n)
        for (k, view) in writers {
            program.steps[k].bindings[2] = destination
            program.steps[k].pushConstants = MatMulPush.withOutput(program.steps[k].pushConstants, view)
        }
        return true
    }

    /// Records that `consumer` reads the source of `root`'s copy (found by `composableCopy`) instead of the root, so
    /// the last of several readers may remove the copy. Call only once the consumer is lowered that way.
    func composed(_ root: String, by consumer: LoweringNode) {
        composedReaders[root, default: []].insert(consumer.node.outputs.first ?? consumer.label)
    }

    /// Folds copies `consumer` now reads through (each found by `composableCopy`): every copy is recorded as composed
    /// by it, and the removable ones' steps go, each once and from the last, so the other indices stay valid.
    func fold(_ copies: [(step: Int, root: String, removable: Bool)], into consumer: LoweringNode) {
        for copy in copies { composed(copy.root, by: consumer) }
        for step in Set(copies.filter(\.removable).map(\.step)).sorted(by: >) { program.steps.remove(at: step) }
    }

    /// The readers of `root` and of the views of it other than `consumer` and the view nodes on the way (each by its
    /// first output): empty when `consumer` is the only one; nil when the copy must stay for them (one is not a
    /// data-movement op, or `consumer` reads the root through two names, or a view of it is a graph output).
    private func otherReaders(of root: String, consumer: LoweringNode) -> Set<String>? {
        let views: Set<String> = ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"]
        let movement: Set<String> = ["Transpose", "Slice", "Gather", "Split", "Concat", "Expand", "Tile"]
        let graphOutputs = Set(graph.outputs.map(\.name))
        // Readers that compose a copy each on their own (recording `composed`): data movement, and products of two
        // activations (an unfused attention's Kᵀ read by the products of every block of query rows).
        let composing = movement.union(["MatMul"])
        var aliases: Set<String> = [root]
        var others: Set<String> = []
        var consumerComposes = false
        for node in nodes {
            let reads = node.node.inputs.contains(where: aliases.contains)
            guard reads else { continue }
            if node.node.outputs == consumer.node.outputs && node.op == consumer.op {
                consumerComposes = composing.contains(node.op)
                continue
            }
            // A view op, or a data-movement op already lowered as a view of the root (a Slice that keeps every
            // element: SAM 2's crop of a window un-partition that needed no padding).
            if let out = node.node.outputs.first, !out.isEmpty,
               views.contains(node.op) || program.tensors[out]?.viewOf == root,
               node.node.inputs.first.map(aliases.contains) == true,
               node.node.inputs.dropFirst().allSatisfy({ !aliases.contains($0) }),
               node.node.outputs.dropFirst().allSatisfy(\.isEmpty) {
                aliases.insert(out)
                continue
            }
            guard composing.contains(node.op) else { return nil }
            others.insert(node.node.outputs.first ?? node.label)
        }
        // The consumer must read the root through one name only: composing may remove the copy, so a second name
        // would read a tensor nobody writes.
        let read = Set(consumer.node.inputs).intersection(aliases)
        guard read.count == 1, aliases.isDisjoint(with: graphOutputs) else { return nil }
        return others.isEmpty || consumerComposes ? others : nil
    }
}

/// copy_strided.comp's push block and the CPU side of data movement on constants.
enum MovementCopy {
    static let maxRank = 6
    /// Outer dims beyond maxRank become separate dispatches, at most this many.
    static let maxDispatches = 4096
    /// Largest constant (elements) that Expand / Tile fold at compile time; larger ones are copied at run time.
    static let foldLimit = 1 << 16
    /// Smallest constant float table (elements) that Gather reads from a weight image; smaller ones (lookup tables
    /// rather than embeddings) stay exact fp32 resident constants.
    static let imageTableMinElements = 4096
    /// COPY_ROLE values (the op a copy serves), for the catalog and `fmc inspect`.
    static let roles = ["transpose", "slice", "expand", "tile", "split", "concat", "gather", "if_result"]

    static func push(count: Int, shape: [Int], inStrides: [Int], outStrides: [Int], inOffset: Int, outOffset: Int) -> PushConstants {
        let pad = maxRank - shape.count
        var push = PushConstants()
        push.append([count, shape.count, inOffset, outOffset])
        push.append(shape + [Int](repeating: 1, count: pad))
        push.append(inStrides + [Int](repeating: 0, count: pad))
        push.append(outStrides + [Int](repeating: 0, count: pad))
        return push
    }

    /// The fields of a push block built by `push`, nil if it is not one.
    static func decode(_ bytes: [UInt8]) -> (shape: [Int], inStrides: [Int], outStrides: [Int], inOffset: Int, outOffset: Int)? {
        guard bytes.count == 22 * 4 else { return nil }
        func field(_ i: Int) -> Int {
            Int(Int32(bitPattern: bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }))
        }
        let rank = field(1)
        guard rank >= 1 && rank <= maxRank else { return nil }
        return ((0..<rank).map { field(4 + $0) }, (0..<rank).map { field(10 + $0) }, (0..<rank).map { field(16 + $0) },
                field(2), field(3))
    }

    /// The elements of `constant` read through `access`, as a constant of `shape` (same dtype, any element size).
    static func materialize(_ constant: ConstantTensor, _ access: StridedAccess, shape: [Int]) -> ConstantTensor {
        let size = constant.dtype.byteSize
        var out = [UInt8](repeating: 0, count: access.count * size)
        let source = constant.bytes.pointer
        out.withUnsafeMutableBytes { dst in
            var coordinate = [Int](repeating: 0, count: access.shape.count)
            for o in 0..<access.count {
                var src = access.offset
                for d in coordinate.indices { src += coordinate[d] * access.strides[d] }
                dst.baseAddress!.advanced(by: o * size).copyMemory(from: source.baseAddress!.advanced(by: src * size), byteCount: size)
                var d = coordinate.count - 1
                while d >= 0 {
                    coordinate[d] += 1
                    if coordinate[d] < access.shape[d] { break }
                    coordinate[d] = 0
                    d -= 1
                }
            }
        }
        return ConstantTensor(dtype: constant.dtype, shape: shape, bytes: TensorBytes(out))
    }

    /// Concat of constants (same dtype) along `axis` into `shape`.
    static func concatenate(_ parts: [ConstantTensor], axis: Int, shape: [Int]) -> ConstantTensor {
        var out: [UInt8] = []
        out.reserveCapacity(shape.reduce(1, *) * parts[0].dtype.byteSize)
        forEachRun(of: parts, axis: axis, shape: shape) { out.append(contentsOf: $0) }
        return ConstantTensor(dtype: parts[0].dtype, shape: shape, bytes: TensorBytes(out))
    }

    /// The bytes of `parts` concatenated along `axis` into `shape`, in order, as runs of one part each (the
    /// concatenation is their sequence).
    static func forEachRun(of parts: [ConstantTensor], axis: Int, shape: [Int],
                           _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        let size = parts[0].dtype.byteSize
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        for o in 0..<outer {
            for part in parts {
                let run = part.shape[axis] * inner * size
                try body(UnsafeRawBufferPointer(rebasing: part.bytes.pointer[(o * run)..<((o + 1) * run)]))
            }
        }
    }
}

extension LoweredProgram {
    /// Drops kernels no step dispatches and renumbers the steps' kernel indices. Composing copies removes steps
    /// after their kernel was compiled (a Transpose folded into the Concat that reads it), and every kernel
    /// costs a pipeline at session start, so lowering ends with this.
    public mutating func removeUnusedKernels() {
        var used = [Bool](repeating: false, count: kernels.count)
        for step in steps { used[step.kernel] = true }
        guard used.contains(false) else { return }
        var newIndex = [Int](repeating: -1, count: kernels.count)
        var kept: [KernelSpec] = []
        for (i, kernel) in kernels.enumerated() where used[i] {
            newIndex[i] = kept.count
            kept.append(kernel)
        }
        kernels = kept
        for k in steps.indices { steps[k].kernel = newIndex[steps[k].kernel] }
    }
}
