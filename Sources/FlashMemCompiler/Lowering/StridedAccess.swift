// Index arithmetic of data-movement ops: a tensor seen as an affine view of a flat buffer. Transpose, Slice,
// Expand, Tile, Split, Concat and Gather with evenly spaced constant indices are all such views; chains of them
// (with Reshape / Squeeze / Unsqueeze in between) compose into one view, so the lowering emits one strided copy
// (copy_strided.comp) — or none, when the composition is the identity — instead of one copy per op.
// Owned by the data-movement lowering (Lowering+Movement.swift).

/// Element `c` (row-major over `shape`) of the viewed tensor is element `offset + Σ c_d·strides[d]` of the buffer.
/// Strides may be negative (Slice with negative steps) or 0 (Expand, Tile).
struct StridedAccess: Equatable, CustomStringConvertible {
    var shape: [Int]
    var strides: [Int]
    var offset: Int

    init(shape: [Int], strides: [Int], offset: Int = 0) {
        precondition(shape.count == strides.count, "one stride per dim")
        self.shape = shape
        self.strides = strides
        self.offset = offset
    }

    /// The whole of a row-major tensor of `shape`.
    static func contiguous(_ shape: [Int]) -> StridedAccess {
        StridedAccess(shape: shape, strides: rowMajorStrides(shape))
    }

    static func rowMajorStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var run = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[d] = run
            run *= shape[d]
        }
        return strides
    }

    var count: Int { shape.reduce(1, *) }

    var description: String { "\(shape) strides \(strides) + \(offset)" }

    /// Whether this view reads exactly a row-major buffer of `count` elements from its start, in order (so a
    /// copy through it would copy the buffer unchanged). Size-1 dims' strides do not matter.
    var isIdentity: Bool {
        guard offset == 0 || count == 0 else { return false }
        var run = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] != 1 {
            guard strides[d] == run else { return false }
            run *= shape[d]
        }
        return true
    }

    // MARK: - Views of views

    /// Transpose: output dim i is input dim perm[i].
    func permuted(_ perm: [Int]) -> StridedAccess {
        StridedAccess(shape: perm.map { shape[$0] }, strides: perm.map { strides[$0] }, offset: offset)
    }

    /// Slice: per dim, elements start, start + step, … (count of them).
    func sliced(_ axes: [ShapeRules.SliceAxis]) -> StridedAccess {
        var result = self
        for (d, axis) in axes.enumerated() {
            result.offset += axis.start * strides[d]
            result.strides[d] = strides[d] * axis.step
            result.shape[d] = axis.count
        }
        return result
    }

    /// Expand / numpy broadcasting to `target` (right-aligned; broadcast dims get stride 0). nil if the shapes
    /// do not broadcast to exactly `target`.
    func broadcast(to target: [Int]) -> StridedAccess? {
        guard target.count >= shape.count else { return nil }
        let pad = target.count - shape.count
        var strides = [Int](repeating: 0, count: target.count)
        for d in target.indices where d >= pad {
            let s = shape[d - pad]
            guard s == target[d] || s == 1 else { return nil }
            strides[d] = s == 1 ? 0 : self.strides[d - pad]
        }
        return StridedAccess(shape: target, strides: strides, offset: offset)
    }

    /// Tile: every dim d becomes two, (repeats[d] with stride 0, shape[d]), whose row-major order is that of the
    /// tiled dim of size repeats[d]·shape[d].
    func tiled(_ repeats: [Int]) -> StridedAccess {
        var shape: [Int] = [], strides: [Int] = []
        for d in self.shape.indices {
            shape += [repeats[d], self.shape[d]]
            strides += [0, self.strides[d]]
        }
        return StridedAccess(shape: shape, strides: strides, offset: offset)
    }

    /// The same elements in the same order seen with another shape (Reshape of a view), or nil when that is not
    /// an affine view: each run of merged dims must be evenly strided (as torch's `view`).
    func reshaped(_ target: [Int]) -> StridedAccess? {
        guard target.reduce(1, *) == count else { return nil }
        if count == 0 {
            return StridedAccess(shape: target, strides: [Int](repeating: 0, count: target.count), offset: offset)
        }
        // Source dims without the size-1 ones, grouped into maximal evenly strided runs (chunks).
        let dims = shape.indices.filter { shape[$0] != 1 }.map { (size: shape[$0], stride: strides[$0]) }
        var chunks: [(size: Int, innerStride: Int)] = []
        for dim in dims {
            if let last = chunks.last, last.innerStride == dim.stride * dim.size {
                chunks[chunks.count - 1] = (last.size * dim.size, dim.stride)
            } else {
                chunks.append((dim.size, dim.stride))
            }
        }
        // Target dims consume chunks from the innermost outward; a target dim must lie inside one chunk.
        var result = [Int](repeating: 0, count: target.count)
        var chunk = chunks.count - 1
        var consumed = 1  // elements of the current chunk already covered by inner target dims
        for d in stride(from: target.count - 1, through: 0, by: -1) {
            let size = target[d]
            if size == 1 {
                result[d] = 0
                continue
            }
            while chunk >= 0 && consumed == chunks[chunk].size {
                chunk -= 1
                consumed = 1
            }
            guard chunk >= 0, chunks[chunk].size % (consumed * size) == 0 else { return nil }
            result[d] = chunks[chunk].innerStride * consumed
            consumed *= size
        }
        return StridedAccess(shape: target, strides: result, offset: offset)
    }

    /// These elements (offsets into a row-major tensor of `shape`) at the places `scatter` moves that tensor's
    /// elements to: element c goes to `scatter.offset + Σ c_d·scatter.strides[d]`. nil unless the result is affine:
    /// each dim of this access must step along one dim of the tensor (its stride a multiple of that dim's) without
    /// carrying into the next, so every element's coordinates are the offset's plus its steps.
    func scattered(over shape: [Int], to scatter: (strides: [Int], offset: Int)) -> StridedAccess? {
        let radix = StridedAccess.rowMajorStrides(shape)
        let total = shape.reduce(1, *)
        guard scatter.strides.count == shape.count, offset >= 0, offset < total else { return nil }
        var reach: [Int] = []  // the coordinates of the first element, then the largest each dim reaches
        var rest = offset
        for r in radix {
            reach.append(rest / r)
            rest %= r
        }
        var moved = [Int](repeating: 0, count: self.shape.count)
        for d in self.shape.indices where self.shape[d] > 1 {
            let s = strides[d]
            guard s > 0, let j = shape.indices.first(where: { shape[$0] > 1 && s % radix[$0] == 0 }) else { return nil }
            let steps = s / radix[j]
            reach[j] += steps * (self.shape[d] - 1)
            guard reach[j] < shape[j] else { return nil }
            moved[d] = steps * scatter.strides[j]
        }
        var first = scatter.offset
        rest = offset
        for j in shape.indices {
            first += rest / radix[j] * scatter.strides[j]
            rest %= radix[j]
        }
        return StridedAccess(shape: self.shape, strides: moved, offset: first)
    }

    // MARK: - Dispatch shape

    /// Drops size-1 dims and merges each dim into its outer neighbour where both the read (`self`) and the write
    /// (`out` strides, same shape) are evenly strided across the pair. Never returns rank 0 (a scalar is [1]).
    static func coalesce(_ read: StridedAccess, outStrides: [Int]) -> (shape: [Int], inStrides: [Int], outStrides: [Int]) {
        var shape: [Int] = [], ins: [Int] = [], outs: [Int] = []
        for d in read.shape.indices where read.shape[d] != 1 {
            if let last = shape.indices.last,
               ins[last] == read.strides[d] * read.shape[d], outs[last] == outStrides[d] * read.shape[d] {
                shape[last] *= read.shape[d]
                ins[last] = read.strides[d]
                outs[last] = outStrides[d]
            } else {
                shape.append(read.shape[d])
                ins.append(read.strides[d])
                outs.append(outStrides[d])
            }
        }
        if shape.isEmpty { return ([1], [0], [0]) }
        return (shape, ins, outs)
    }
}
