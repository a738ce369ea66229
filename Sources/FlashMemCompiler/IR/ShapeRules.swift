// The shape arithmetic of ONNX operators as pure functions on static shapes, shared by shape inference and
// constant folding so that both read ONNX the same way. Owned by the importer / shape inference.

/// A shape rule violated by a node; the caller wraps it into a `CompileError` naming the node.
struct ShapeRuleError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

enum ShapeRules {
    /// Largest dimension the compiler accepts (ONNX allows int64; no real tensor comes close to this).
    static let maxDimension = Int(Int32.max)
    /// Largest product of a shape's non-zero dimensions. Bounding it (rather than the element count, which a
    /// zero dimension makes 0) keeps every partial product of every accepted shape from overflowing.
    static let maxElements = 1 << 50

    /// Rejects shapes a corrupt or hostile model could use to make later arithmetic overflow (and trap).
    static func checkDimensions(_ shape: [Int]) throws {
        var product = 1
        for d in shape {
            guard d >= 0, d <= maxDimension else {
                throw ShapeRuleError("shape \(IRText.shape(shape)) has dimension \(d), outside 0...\(maxDimension)")
            }
            product *= max(d, 1)
            guard product <= maxElements else {
                throw ShapeRuleError("shape \(IRText.shape(shape)) has more than 2^50 elements")
            }
        }
    }

    /// The sum of `terms` (a padded size, a shifted extent), or an error when it overflows.
    static func sum(_ terms: Int...) throws -> Int {
        var s = 0
        for t in terms {
            let (r, overflow) = s.addingReportingOverflow(t)
            guard !overflow else { throw ShapeRuleError("the sum of \(terms) overflows") }
            s = r
        }
        return s
    }

    /// A size computed in floating point (a scaled dimension, an element count) as a dimension, truncated; an error
    /// for NaN, infinities and values outside 0...maxDimension, which `Int(_:)` would trap on or which no tensor
    /// can have.
    static func dimension(_ value: Double, _ what: String) throws -> Int {
        guard value.isFinite, value >= 0, value <= Double(maxDimension) else {
            throw ShapeRuleError("\(what) \(value) is not a size in 0...\(maxDimension)")
        }
        return Int(value)
    }

    /// The product of `dims`, or an error when it overflows.
    static func product<C: Collection>(_ dims: C) throws -> Int where C.Element == Int {
        var p = 1
        for d in dims {
            let (r, overflow) = p.multipliedReportingOverflow(by: d)
            guard !overflow else { throw ShapeRuleError("the product of \(Array(dims)) overflows") }
            p = r
        }
        return p
    }

    /// An ONNX axis in [-rank, rank - 1] as a non-negative index.
    static func axis(_ axis: Int, rank: Int, name: String = "axis") throws -> Int {
        guard axis >= -rank && axis < rank else {
            throw ShapeRuleError("\(name) \(axis) is out of range for rank \(rank)")
        }
        return axis < 0 ? axis + rank : axis
    }

    /// Multidirectional (numpy) broadcasting.
    static func broadcast(_ shapes: [[Int]]) throws -> [Int] {
        let rank = shapes.map(\.count).max() ?? 0
        var out = [Int](repeating: 1, count: rank)
        for shape in shapes {
            let padded = [Int](repeating: 1, count: rank - shape.count) + shape
            for i in 0..<rank where padded[i] != 1 {
                if out[i] == 1 {
                    out[i] = padded[i]
                } else if out[i] != padded[i] {
                    throw ShapeRuleError("shapes " + shapes.map { IRText.shape($0) }.joined(separator: " and ")
                        + " do not broadcast (dimension \(i) of the result: \(out[i]) vs \(padded[i]))")
                }
            }
        }
        return out
    }

    /// numpy matmul: 1-D operands are promoted (a to [1, K], b to [K, 1]) and the added dimension dropped again;
    /// batch dimensions broadcast.
    static func matmul(_ a: [Int], _ b: [Int]) throws -> [Int] {
        guard !a.isEmpty, !b.isEmpty else { throw ShapeRuleError("MatMul operands must have rank ≥ 1") }
        let a2 = a.count == 1 ? [1, a[0]] : a
        let b2 = b.count == 1 ? [b[0], 1] : b
        let k = a2[a2.count - 1], kb = b2[b2.count - 2]
        guard k == kb else {
            throw ShapeRuleError("inner dimensions differ: \(IRText.shape(a)) × \(IRText.shape(b)) (\(k) vs \(kb))")
        }
        var out = try broadcast([Array(a2.dropLast(2)), Array(b2.dropLast(2))])
        if a.count > 1 { out.append(a2[a2.count - 2]) }
        if b.count > 1 { out.append(b2[b2.count - 1]) }
        return out
    }

    /// Reshape's target: 0 copies the input dimension (unless allowzero), one -1 is inferred.
    static func reshape(_ input: [Int], target: [Int], allowZero: Bool) throws -> [Int] {
        let total = try product(input)
        var out = target
        var inferred: Int?
        for (i, d) in target.enumerated() {
            switch d {
            case -1:
                guard inferred == nil else { throw ShapeRuleError("shape \(IRText.shape(target)) has more than one -1") }
                inferred = i
            case 0 where !allowZero:
                guard i < input.count else {
                    throw ShapeRuleError("shape \(IRText.shape(target)) copies dimension \(i) (0), but the input "
                        + "\(IRText.shape(input)) has rank \(input.count)")
                }
                out[i] = input[i]
            case ..<0:
                throw ShapeRuleError("shape \(IRText.shape(target)) has a negative dimension \(d)")
            default:
                break
            }
        }
        if let inferred {
            if allowZero && target.contains(0) {
                throw ShapeRuleError("shape \(IRText.shape(target)) has both -1 and 0 with allowzero = 1")
            }
            let known = try product(out.enumerated().filter { $0.offset != inferred }.map(\.element))
            guard known > 0, total % known == 0 else {
                throw ShapeRuleError("cannot reshape \(IRText.shape(input)) (\(total) elements) to \(IRText.shape(target))")
            }
            out[inferred] = total / known
        }
        guard try product(out) == total else {
            throw ShapeRuleError("cannot reshape \(IRText.shape(input)) (\(total) elements) to \(IRText.shape(target))")
        }
        try checkDimensions(out)
        return out
    }

    static func flatten(_ shape: [Int], axis: Int) throws -> [Int] {
        guard axis >= -shape.count && axis <= shape.count else {
            throw ShapeRuleError("axis \(axis) is out of range for rank \(shape.count)")
        }
        let a = axis < 0 ? axis + shape.count : axis
        return [try product(shape[..<a]), try product(shape[a...])]
    }

    /// Axes index the output (rank + axes.count).
    static func unsqueeze(_ shape: [Int], axes: [Int]) throws -> [Int] {
        let rank = shape.count + axes.count
        let normalized = try axes.map { try axis($0, rank: rank, name: "axes entry") }
        guard Set(normalized).count == normalized.count else {
            throw ShapeRuleError("axes \(axes) repeat an axis")
        }
        var out: [Int] = []
        var source = shape.makeIterator()
        for i in 0..<rank { out.append(normalized.contains(i) ? 1 : source.next()!) }
        return out
    }

    /// Without axes, removes every dimension of size 1.
    static func squeeze(_ shape: [Int], axes: [Int]?) throws -> [Int] {
        guard let axes else { return shape.filter { $0 != 1 } }
        let normalized = Set(try axes.map { try axis($0, rank: shape.count, name: "axes entry") })
        for a in normalized where shape[a] != 1 {
            throw ShapeRuleError("cannot squeeze axis \(a) of \(IRText.shape(shape)): its size is \(shape[a])")
        }
        return shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
    }

    static func transpose(_ shape: [Int], perm: [Int]?) throws -> [Int] {
        let perm = perm ?? Array((0..<shape.count).reversed())
        guard perm.count == shape.count, Set(perm) == Set(0..<shape.count) else {
            throw ShapeRuleError("perm \(perm) is not a permutation of the \(shape.count) axes")
        }
        return perm.map { shape[$0] }
    }

    static func concat(_ shapes: [[Int]], axis: Int) throws -> [Int] {
        guard let first = shapes.first else { throw ShapeRuleError("Concat has no inputs") }
        let a = try self.axis(axis, rank: first.count)
        var out = first
        for shape in shapes.dropFirst() {
            guard shape.count == first.count,
                  shape.indices.allSatisfy({ $0 == a || shape[$0] == first[$0] }) else {
                throw ShapeRuleError("inputs " + shapes.map { IRText.shape($0) }.joined(separator: ", ")
                    + " differ outside axis \(a)")
            }
            out[a] += shape[a]
        }
        return out
    }

    static func gather(_ data: [Int], indices: [Int], axis: Int) throws -> [Int] {
        let a = try self.axis(axis, rank: data.count)
        return Array(data[..<a]) + indices + Array(data[(a + 1)...])
    }

    /// One sliced axis: elements start, start + step, ... (count of them).
    struct SliceAxis: Equatable {
        var start: Int
        var step: Int
        var count: Int
    }

    /// Slice (opset ≥ 10 semantics): per axis, negative starts/ends count from the end, then clamp.
    static func slice(_ shape: [Int], starts: [Int], ends: [Int], axes: [Int]?, steps: [Int]?) throws -> [SliceAxis] {
        let axes = axes ?? Array(0..<starts.count)
        let steps = steps ?? [Int](repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
            throw ShapeRuleError("starts, ends, axes and steps have different lengths")
        }
        var result = shape.map { SliceAxis(start: 0, step: 1, count: $0) }
        var seen = Set<Int>()
        for i in starts.indices {
            let a = try axis(axes[i], rank: shape.count, name: "axes entry")
            guard seen.insert(a).inserted else { throw ShapeRuleError("axes repeat axis \(a)") }
            let dim = shape[a], step = steps[i]
            guard step != 0 else { throw ShapeRuleError("step 0 on axis \(a)") }
            // Ends are often INT64_MAX / INT64_MIN: clamp before any arithmetic can overflow.
            var start = max(min(starts[i], Int(Int32.max)), Int(Int32.min))
            var end = max(min(ends[i], Int(Int32.max)), Int(Int32.min))
            if start < 0 { start += dim }
            if end < 0 { end += dim }
            let count: Int
            if step > 0 {
                start = min(max(start, 0), dim)
                end = min(max(end, 0), dim)
                count = end > start ? (end - start - 1) / step + 1 : 0  // no overflow for any step
            } else {
                start = min(max(start, 0), dim - 1)
                end = min(max(end, -1), dim - 1)
                // step.magnitude: -Int.min would trap.
                count = start > end ? Int(UInt(start - end - 1) / step.magnitude) + 1 : 0
            }
            // One element or none: the step does not matter, and a huge one (±2^63 is legal) would overflow the
            // strides lowering multiplies it into.
            result[a] = SliceAxis(start: start, step: count > 1 ? step : 1, count: count)
        }
        return result
    }
}
