// CPU references of the normalization / reduction / scan ops (NormalizationOpTests), written from the ONNX
// operator spec as plain loops in Double, sharing nothing with the compiler's lowering. Owned by the
// normalization / reduction family.

import Foundation

extension ReferenceOps {
    // MARK: - Normalizations

    /// Normalizes each of `rows` contiguous rows of `len` elements: (x − mean) / √(var + ε) · scale[p] + bias[p],
    /// with p = param(row, j). Returns Y and the per-row mean and 1 / √(var + ε).
    static func normalizeRows(_ x: [Float], rows: Int, len: Int, epsilon: Float, scale: [Float], bias: [Float]?,
                              param: (Int, Int) -> Int) -> (y: [Float], mean: [Float], invStdDev: [Float]) {
        var y = [Float](repeating: 0, count: x.count)
        var means: [Float] = [], invs: [Float] = []
        for r in 0..<rows {
            let row = (0..<len).map { Double(x[r * len + $0]) }
            let mean = row.reduce(0, +) / Double(len)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(len)
            let inv = 1 / (variance + Double(epsilon)).squareRoot()
            for j in 0..<len {
                let p = param(r, j)
                y[r * len + j] = Float((row[j] - mean) * inv * Double(scale[p]) + Double(bias?[p] ?? 0))
            }
            means.append(Float(mean))
            invs.append(Float(inv))
        }
        return (y, means, invs)
    }

    /// LayerNormalization over the axes from `axis` on; scale / bias already have the normalized shape's
    /// element count (broadcast them first with `broadcast`).
    static func layerNorm(x: [Float], shape: [Int], axis: Int, scale: [Float], bias: [Float]?,
                          epsilon: Float = 1e-5) -> (y: [Float], mean: [Float], invStdDev: [Float]) {
        let axis = axis < 0 ? axis + shape.count : axis
        let len = count(Array(shape[axis...]))
        return normalizeRows(x, rows: x.count / len, len: len, epsilon: epsilon, scale: scale, bias: bias) { _, j in j }
    }

    /// GroupNormalization of x [N, C, …]: scale / bias per channel ([C], opset 21) or per group ([G], opset 18).
    static func groupNorm(x: [Float], shape: [Int], groups: Int, scale: [Float], bias: [Float],
                          epsilon: Float = 1e-5) -> [Float] {
        let c = shape[1], spatial = count(Array(shape.dropFirst(2)))
        let perGroup = c / groups
        let len = perGroup * spatial
        return normalizeRows(x, rows: shape[0] * groups, len: len, epsilon: epsilon, scale: scale, bias: bias) { r, j in
            let g = r % groups
            return scale.count == c ? g * perGroup + j / spatial : g
        }.y
    }

    /// InstanceNormalization of x [N, C, …] with scale / bias [C].
    static func instanceNorm(x: [Float], shape: [Int], scale: [Float], bias: [Float], epsilon: Float = 1e-5) -> [Float] {
        let c = shape[1], spatial = count(Array(shape.dropFirst(2)))
        return normalizeRows(x, rows: shape[0] * c, len: spatial, epsilon: epsilon, scale: scale, bias: bias) { r, _ in
            r % c
        }.y
    }

    /// LogSoftmax along `axis` (opset ≥ 13 semantics).
    static func logSoftmax(x: [Float], shape: [Int], axis: Int = -1) -> [Float] {
        softmax(x: x, shape: shape, axis: axis).map { log($0) }
    }

    // MARK: - Reductions

    /// The ONNX reductions by name suffix: "Sum", "Mean", "Max", "Min", "Prod", "L1", "L2", "SumSquare", "LogSum",
    /// "LogSumExp". `axes` empty reduces everything. Returns Y and its shape.
    static func reduce(_ op: String, x: [Float], shape: [Int], axes: [Int], keepdims: Bool) -> (y: [Float], shape: [Int]) {
        let rank = shape.count
        let reduced = Set(axes.isEmpty ? Array(0..<rank) : axes.map { $0 < 0 ? $0 + rank : $0 })
        let keptShape = shape.indices.map { reduced.contains($0) ? 1 : shape[$0] }
        let inStrides = strides(shape), outStrides = strides(keptShape)
        var groups = [[Double]](repeating: [], count: count(keptShape))
        for i in 0..<x.count {
            var o = 0
            for d in 0..<rank where !reduced.contains(d) {
                o += (i / inStrides[d]) % shape[d] * outStrides[d]
            }
            groups[o].append(Double(x[i]))
        }
        let y = groups.map { v -> Float in
            switch op {
            case "Sum": return Float(v.reduce(0, +))
            case "Mean": return Float(v.reduce(0, +) / Double(v.count))
            case "Max": return Float(v.max()!)
            case "Min": return Float(v.min()!)
            case "Prod": return Float(v.reduce(1, *))
            case "L1": return Float(v.reduce(0) { $0 + abs($1) })
            case "L2": return Float(v.reduce(0) { $0 + $1 * $1 }.squareRoot())
            case "SumSquare": return Float(v.reduce(0) { $0 + $1 * $1 })
            case "LogSum": return Float(log(v.reduce(0, +)))
            case "LogSumExp": return Float(log(v.reduce(0) { $0 + exp($1) }))
            default: fatalError("unknown reduction \(op)")
            }
        }
        let outShape = keepdims ? keptShape : shape.indices.filter { !reduced.contains($0) }.map { shape[$0] }
        return (y, outShape)
    }

    /// ArgMax (or ArgMin with `isMin`) along `axis`: the first extreme index, or the last with `selectLast`.
    static func argExtreme(x: [Float], shape: [Int], axis: Int, keepdims: Bool, isMin: Bool = false,
                           selectLast: Bool = false) -> (y: [Int64], shape: [Int]) {
        let axis = axis < 0 ? axis + shape.count : axis
        let outer = count(Array(shape[..<axis])), len = shape[axis], inner = count(Array(shape[(axis + 1)...]))
        var y: [Int64] = []
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                for j in 1..<len {
                    let v = x[(o * len + j) * inner + i], b = x[(o * len + best) * inner + i]
                    if (isMin ? v < b : v > b) || (selectLast && v == b) { best = j }
                }
                y.append(Int64(best))
            }
        }
        var outShape = shape
        if keepdims { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        return (y, outShape)
    }

    /// CumSum along `axis` (exclusive: without the element itself; reverse: from the end).
    static func cumSum(x: [Float], shape: [Int], axis: Int, exclusive: Bool = false, reverse: Bool = false) -> [Float] {
        let axis = axis < 0 ? axis + shape.count : axis
        let outer = count(Array(shape[..<axis])), len = shape[axis], inner = count(Array(shape[(axis + 1)...]))
        var y = x
        for o in 0..<outer {
            for i in 0..<inner {
                var sum: Double = 0
                for k in 0..<len {
                    let j = reverse ? len - 1 - k : k
                    let index = (o * len + j) * inner + i
                    let v = Double(x[index])
                    y[index] = Float(exclusive ? sum : sum + v)
                    sum += v
                }
            }
        }
        return y
    }
}
