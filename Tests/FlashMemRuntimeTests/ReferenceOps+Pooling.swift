// CPU reference of MaxPool (with its Indices output) and AveragePool over any number of spatial dims, written
// from the ONNX operator spec and onnxruntime's documented behaviour (first largest tap wins; the Indices
// count from the start of X, so they include the (n, c) plane offset). Self-contained like ReferenceOps.
// Owned by the Gemm / pooling work.

import Foundation

extension ReferenceOps {
    /// The attributes of one pooling node, per spatial axis; pads are ONNX-ordered (all begins, then all ends).
    struct PoolAttributes {
        var kernel: [Int]
        var strides: [Int]? = nil
        var pads: [Int]? = nil
        var dilations: [Int]? = nil
        var ceilMode = false
        var countIncludePad = false
        /// 0: Indices row-major over the spatial dims; 1: column-major.
        var storageOrder = 0
    }

    /// MaxPool (isMax) or AveragePool over x [N, C, S1, …, Sr]. Returns Y, the Indices of MaxPool (flat
    /// positions in X) and their shape. Average divides by the taps inside the input, or (countIncludePad) by the
    /// taps inside the padded box [−pad begin, S + pad end) along every axis.
    static func pool(x: [Float], xShape: [Int], isMax: Bool, _ a: PoolAttributes)
        -> (y: [Float], indices: [Int64], shape: [Int]) {
        let spatial = Array(xShape.dropFirst(2))
        let rank = spatial.count
        let strides = a.strides ?? [Int](repeating: 1, count: rank)
        let dilations = a.dilations ?? [Int](repeating: 1, count: rank)
        let pads = a.pads ?? [Int](repeating: 0, count: 2 * rank)
        let out = (0..<rank).map {
            poolExtent(spatial[$0], kernel: a.kernel[$0], stride: strides[$0], dilation: dilations[$0],
                       padBegin: pads[$0], padEnd: pads[$0 + rank], ceilMode: a.ceilMode)
        }
        let planes = xShape[0] * xShape[1]
        let planeSize = count(spatial), outSize = count(out), taps = count(a.kernel)
        var y = [Float](repeating: 0, count: planes * outSize)
        var indices = [Int64](repeating: 0, count: planes * outSize)
        for plane in 0..<planes {
            for o in 0..<outSize {
                let position = unflatten(o, out)
                var best = -Float.infinity, bestIndex = -1, sum: Float = 0, inside = 0, padded = 0
                for t in 0..<taps {
                    let tap = unflatten(t, a.kernel)
                    let at = (0..<rank).map { position[$0] * strides[$0] - pads[$0] + tap[$0] * dilations[$0] }
                    if (0..<rank).allSatisfy({ at[$0] >= -pads[$0] && at[$0] < spatial[$0] + pads[$0 + rank] }) {
                        padded += 1
                    }
                    guard (0..<rank).allSatisfy({ at[$0] >= 0 && at[$0] < spatial[$0] }) else { continue }
                    let v = x[plane * planeSize + flatten(at, spatial, columnMajor: false)]
                    if v > best {
                        best = v
                        bestIndex = flatten(at, spatial, columnMajor: a.storageOrder == 1)
                    }
                    sum += v
                    inside += 1
                }
                let i = plane * outSize + o
                y[i] = isMax ? best : sum / Float(max(a.countIncludePad ? padded : inside, 1))
                indices[i] = Int64(plane * planeSize + bestIndex)
            }
        }
        return (y, indices, Array(xShape.prefix(2)) + out)
    }

    /// Row-major multi-index of flat position `i` in `shape`.
    private static func unflatten(_ i: Int, _ shape: [Int]) -> [Int] {
        var rest = i
        var index = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        return index
    }

    /// Flat position of `index` in `shape`, row-major (last dim fastest) or column-major (first dim fastest).
    private static func flatten(_ index: [Int], _ shape: [Int], columnMajor: Bool) -> Int {
        let order = columnMajor ? Array(shape.indices.reversed()) : Array(shape.indices)
        return order.reduce(0) { $0 * shape[$1] + index[$1] }
    }
}
