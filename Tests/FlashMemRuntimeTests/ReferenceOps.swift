// CPU reference implementations of the ops FlashMem lowers, for per-op differential tests (GPU kernel vs
// these loops on odd shapes with a fixed seed). Straightforward loops over row-major [Float] tensors with
// explicit shapes, written from the ONNX operator spec, sharing nothing with the compiler (self-contained:
// Foundation only), so a packing or indexing bug in the lowering cannot hide in both.
//
// Written by the lowering helper; used by the lead's end-to-end op tests.

import Foundation

enum ReferenceOps {
    // MARK: - Helpers

    /// Deterministic pseudo-random floats in [-1, 1) (xorshift64*), for reproducible test inputs.
    struct SeededRandom {
        private var state: UInt64

        init(seed: UInt64) {
            state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
        }

        mutating func next() -> Float {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            let bits = (state &* 0x2545_F491_4F6C_DD1D) >> 40  // 24 bits
            return Float(bits) / Float(1 << 23) - 1
        }

        mutating func floats(_ count: Int) -> [Float] {
            (0..<count).map { _ in next() }
        }
    }

    static func count(_ shape: [Int]) -> Int {
        shape.reduce(1, *)
    }

    /// Row-major strides of a shape.
    static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var run = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[d] = run
            run *= shape[d]
        }
        return strides
    }

    /// Largest |a − b| (infinite when the sizes differ or a NaN appears).
    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count else { return .infinity }
        var worst: Float = 0
        for i in a.indices {
            let d = abs(a[i] - b[i])
            if d.isNaN { return .infinity }
            worst = max(worst, d)
        }
        return worst
    }

    /// True when every |a − b| ≤ atol + rtol · |b|.
    static func allClose(_ a: [Float], _ b: [Float], rtol: Float = 1e-4, atol: Float = 1e-5) -> Bool {
        guard a.count == b.count else { return false }
        for i in a.indices where !(abs(a[i] - b[i]) <= atol + rtol * abs(b[i])) {
            return false
        }
        return true
    }

    // MARK: - Convolution and matrix products

    /// ONNX Conv, 2-D: x [N, C, H, W], w [OC, C / groups, KH, KW], bias [OC] or nil.
    /// pads = [top, left, bottom, right]. Returns y [N, OC, OH, OW].
    static func conv2d(x: [Float], xShape: [Int], w: [Float], wShape: [Int], bias: [Float]? = nil,
                       strides: [Int] = [1, 1], pads: [Int] = [0, 0, 0, 0], dilations: [Int] = [1, 1],
                       groups: Int = 1) -> (y: [Float], shape: [Int]) {
        let (n, c, h, wd) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let (oc, icg, kh, kw) = (wShape[0], wShape[1], wShape[2], wShape[3])
        precondition(c == icg * groups && oc % groups == 0, "conv2d: bad groups")
        let oh = (h + pads[0] + pads[2] - ((kh - 1) * dilations[0] + 1)) / strides[0] + 1
        let ow = (wd + pads[1] + pads[3] - ((kw - 1) * dilations[1] + 1)) / strides[1] + 1
        let ocg = oc / groups
        var y = [Float](repeating: 0, count: n * oc * oh * ow)
        for b in 0..<n {
            for o in 0..<oc {
                let g = o / ocg
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var acc = bias?[o] ?? 0
                        for i in 0..<icg {
                            let ci = g * icg + i
                            for ky in 0..<kh {
                                let iy = oy * strides[0] - pads[0] + ky * dilations[0]
                                if iy < 0 || iy >= h { continue }
                                for kx in 0..<kw {
                                    let ix = ox * strides[1] - pads[1] + kx * dilations[1]
                                    if ix < 0 || ix >= wd { continue }
                                    acc += x[((b * c + ci) * h + iy) * wd + ix] * w[((o * icg + i) * kh + ky) * kw + kx]
                                }
                            }
                        }
                        y[((b * oc + o) * oh + oy) * ow + ox] = acc
                    }
                }
            }
        }
        return (y, [n, oc, oh, ow])
    }

    /// ONNX Conv, 1-D: x [N, C, W], w [OC, C / groups, KW]; pads = [begin, end].
    static func conv1d(x: [Float], xShape: [Int], w: [Float], wShape: [Int], bias: [Float]? = nil,
                       stride: Int = 1, pads: [Int] = [0, 0], dilation: Int = 1, groups: Int = 1) -> (y: [Float], shape: [Int]) {
        let r = conv2d(x: x, xShape: [xShape[0], xShape[1], 1, xShape[2]], w: w, wShape: [wShape[0], wShape[1], 1, wShape[2]],
                       bias: bias, strides: [1, stride], pads: [0, pads[0], 0, pads[1]], dilations: [1, dilation],
                       groups: groups)
        return (r.y, [r.shape[0], r.shape[1], r.shape[3]])
    }

    /// ONNX Gemm: Y = alpha · A' × B' + beta · C, with A' = transA ? Aᵀ : A (likewise B), C broadcast to [M, N].
    static func gemm(a: [Float], aShape: [Int], b: [Float], bShape: [Int], c: [Float]? = nil, cShape: [Int] = [],
                     alpha: Float = 1, beta: Float = 1, transA: Bool = false, transB: Bool = false) -> (y: [Float], shape: [Int]) {
        let (m, k) = transA ? (aShape[1], aShape[0]) : (aShape[0], aShape[1])
        let n = transB ? bShape[0] : bShape[1]
        let cb: [Float]? = c.map { broadcast($0, from: cShape, to: [m, n]) }
        var y = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for p in 0..<k {
                    let av = transA ? a[p * m + i] : a[i * k + p]
                    let bv = transB ? b[j * k + p] : b[p * n + j]
                    acc += av * bv
                }
                y[i * n + j] = alpha * acc + (cb.map { beta * $0[i * n + j] } ?? 0)
            }
        }
        return (y, [m, n])
    }

    /// ONNX MatMul (numpy matmul): batch dims broadcast; a 1-D A is [1, K] and a 1-D B is [K, 1], with that
    /// dim removed from the result.
    static func matmul(a: [Float], aShape: [Int], b: [Float], bShape: [Int]) -> (y: [Float], shape: [Int]) {
        let a2 = aShape.count == 1 ? [1, aShape[0]] : aShape
        let b2 = bShape.count == 1 ? [bShape[0], 1] : bShape
        let m = a2[a2.count - 2], k = a2[a2.count - 1], n = b2[b2.count - 1]
        precondition(k == b2[b2.count - 2], "matmul: K mismatch")
        let batch = broadcastShape(Array(a2.dropLast(2)), Array(b2.dropLast(2)))!
        let aFull = broadcast(a, from: a2, to: batch + [m, k])
        let bFull = broadcast(b, from: b2, to: batch + [k, n])
        let batches = count(batch)
        var y = [Float](repeating: 0, count: batches * m * n)
        for t in 0..<batches {
            for i in 0..<m {
                for j in 0..<n {
                    var acc: Float = 0
                    for p in 0..<k {
                        acc += aFull[(t * m + i) * k + p] * bFull[(t * k + p) * n + j]
                    }
                    y[(t * m + i) * n + j] = acc
                }
            }
        }
        var shape = batch
        if aShape.count > 1 { shape.append(m) }
        if bShape.count > 1 { shape.append(n) }
        return (y, shape)
    }

    // MARK: - Element-wise

    /// numpy broadcast shape, or nil.
    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        let a = [Int](repeating: 1, count: rank - a.count) + a
        let b = [Int](repeating: 1, count: rank - b.count) + b
        var out: [Int] = []
        for d in 0..<rank {
            if a[d] != b[d] && a[d] != 1 && b[d] != 1 { return nil }
            out.append(max(a[d], b[d]))
        }
        return out
    }

    /// `x` of `shape` materialized at the broadcast shape `target`.
    static func broadcast(_ x: [Float], from shape: [Int], to target: [Int]) -> [Float] {
        let shape = [Int](repeating: 1, count: target.count - shape.count) + shape
        let inStrides = strides(shape)
        let total = count(target)
        var out = [Float](repeating: 0, count: total)
        for i in 0..<total {
            var rest = i, source = 0
            for d in stride(from: target.count - 1, through: 0, by: -1) {
                let coordinate = rest % target[d]
                rest /= target[d]
                if shape[d] != 1 { source += coordinate * inStrides[d] }
            }
            out[i] = x[source]
        }
        return out
    }

    /// Add / Sub / Mul / Div with numpy broadcasting.
    static func binary(_ a: [Float], _ aShape: [Int], _ b: [Float], _ bShape: [Int],
                       _ op: (Float, Float) -> Float) -> (y: [Float], shape: [Int]) {
        let shape = broadcastShape(aShape, bShape)!
        let aFull = broadcast(a, from: aShape, to: shape), bFull = broadcast(b, from: bShape, to: shape)
        return (zip(aFull, bFull).map(op), shape)
    }

    static func relu(_ x: [Float]) -> [Float] { x.map { max($0, 0) } }
    static func sigmoid(_ x: [Float]) -> [Float] { x.map { 1 / (1 + exp(-$0)) } }
    static func tanh(_ x: [Float]) -> [Float] { x.map { Foundation.tanh($0) } }

    // MARK: - Pooling and normalization

    /// ONNX pooling output extent: ceil_mode rounds up, and a last window starting in the end padding is
    /// dropped (onnxruntime, ONNX ≥ 1.16 reference).
    static func poolExtent(_ input: Int, kernel: Int, stride: Int, dilation: Int, padBegin: Int, padEnd: Int,
                           ceilMode: Bool) -> Int {
        let numerator = input + padBegin + padEnd - ((kernel - 1) * dilation + 1)
        var out = (ceilMode ? (numerator + stride - 1) / stride : numerator / stride) + 1
        if ceilMode && (out - 1) * stride >= input + padBegin { out -= 1 }
        return out
    }

    /// MaxPool (isMax) or AveragePool over x [N, C, H, W]; pads = [top, left, bottom, right].
    /// Average divides by the taps inside the input, or (countIncludePad) inside the padded extent.
    static func pool2d(x: [Float], xShape: [Int], isMax: Bool, kernel: [Int], strides: [Int] = [1, 1],
                       pads: [Int] = [0, 0, 0, 0], dilations: [Int] = [1, 1], ceilMode: Bool = false,
                       countIncludePad: Bool = false) -> (y: [Float], shape: [Int]) {
        let (n, c, h, w) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let oh = poolExtent(h, kernel: kernel[0], stride: strides[0], dilation: dilations[0], padBegin: pads[0],
                            padEnd: pads[2], ceilMode: ceilMode)
        let ow = poolExtent(w, kernel: kernel[1], stride: strides[1], dilation: dilations[1], padBegin: pads[1],
                            padEnd: pads[3], ceilMode: ceilMode)
        var y = [Float](repeating: 0, count: n * c * oh * ow)
        for plane in 0..<(n * c) {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var best = -Float.infinity, sum: Float = 0
                    var inside = 0, padded = 0
                    for ky in 0..<kernel[0] {
                        let iy = oy * strides[0] - pads[0] + ky * dilations[0]
                        for kx in 0..<kernel[1] {
                            let ix = ox * strides[1] - pads[1] + kx * dilations[1]
                            if iy >= -pads[0] && iy < h + pads[2] && ix >= -pads[1] && ix < w + pads[3] { padded += 1 }
                            guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                            let v = x[(plane * h + iy) * w + ix]
                            best = max(best, v)
                            sum += v
                            inside += 1
                        }
                    }
                    y[(plane * oh + oy) * ow + ox] = isMax ? best : sum / Float(max(countIncludePad ? padded : inside, 1))
                }
            }
        }
        return (y, [n, c, oh, ow])
    }

    /// GlobalAveragePool: x [N, C, spatial…] → [N, C, 1, …].
    static func globalAveragePool(x: [Float], xShape: [Int]) -> (y: [Float], shape: [Int]) {
        let planes = xShape[0] * xShape[1]
        let size = count(Array(xShape.dropFirst(2)))
        let y = (0..<planes).map { p in x[(p * size)..<((p + 1) * size)].reduce(0, +) / Float(size) }
        return (y, [xShape[0], xShape[1]] + [Int](repeating: 1, count: xShape.count - 2))
    }

    /// Softmax along `axis` (opset ≥ 13 semantics; for the opset < 13 flattening pass a reshaped 2-D shape).
    static func softmax(x: [Float], shape: [Int], axis: Int = -1) -> [Float] {
        let axis = axis < 0 ? axis + shape.count : axis
        let outer = count(Array(shape[..<axis])), len = shape[axis], inner = count(Array(shape[(axis + 1)...]))
        var y = x
        for o in 0..<outer {
            for i in 0..<inner {
                let index = { (j: Int) in (o * len + j) * inner + i }
                let m = (0..<len).map { x[index($0)] }.max()!
                let s = (0..<len).reduce(Float(0)) { $0 + exp(x[index($1)] - m) }
                for j in 0..<len { y[index(j)] = exp(x[index(j)] - m) / s }
            }
        }
        return y
    }

    /// BatchNormalization (inference) over x [N, C, …].
    static func batchNorm(x: [Float], shape: [Int], scale: [Float], bias: [Float], mean: [Float], variance: [Float],
                          epsilon: Float = 1e-5) -> [Float] {
        let c = shape[1], inner = count(Array(shape.dropFirst(2)))
        return x.indices.map { i in
            let ch = (i / inner) % c
            return (x[i] - mean[ch]) / (variance[ch] + epsilon).squareRoot() * scale[ch] + bias[ch]
        }
    }
}
