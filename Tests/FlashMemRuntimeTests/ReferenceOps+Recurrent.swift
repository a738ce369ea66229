// CPU reference of ONNX LSTM (RecurrentOpTests), written from the operator spec (and onnxruntime's handling of
// sequence_lens) as plain loops in Double, sharing nothing with the compiler's lowering. Owned by the recurrent
// family.

import Foundation

extension ReferenceOps {
    /// The operands and attributes of one LSTM node; optional inputs are nil when omitted.
    struct LSTMCase {
        var x: [Float]
        /// [seq, batch, input] (layout 0) or [batch, seq, input] (layout 1).
        var xShape: [Int]
        var w: [Float]
        var r: [Float]
        var b: [Float]? = nil
        var p: [Float]? = nil
        var initialH: [Float]? = nil
        var initialC: [Float]? = nil
        var sequenceLens: [Int]? = nil
        var hidden: Int
        var direction = "forward"
        var layout = 0
        var clip: Float? = nil
        var inputForget = false

        var directions: Int { direction == "bidirectional" ? 2 : 1 }
        var seq: Int { layout == 0 ? xShape[0] : xShape[1] }
        var batch: Int { layout == 0 ? xShape[1] : xShape[0] }
        var inputSize: Int { xShape[2] }
        var yShape: [Int] { layout == 0 ? [seq, directions, batch, hidden] : [batch, seq, directions, hidden] }
        var stateShape: [Int] { layout == 0 ? [directions, batch, hidden] : [batch, directions, hidden] }

        /// Flat index of Y[t, d, b, j] in the layout's order.
        func yIndex(t: Int, d: Int, b: Int, j: Int) -> Int {
            layout == 0 ? ((t * directions + d) * batch + b) * hidden + j : ((b * seq + t) * directions + d) * hidden + j
        }

        /// Flat index of a state [d, b, j] (initial_h, initial_c, Y_h, Y_c) in the layout's order.
        func stateIndex(d: Int, b: Int, j: Int) -> Int {
            layout == 0 ? (d * batch + b) * hidden + j : (b * directions + d) * hidden + j
        }

        func xAt(t: Int, b: Int, k: Int) -> Double {
            Double(layout == 0 ? x[(t * batch + b) * inputSize + k] : x[(b * seq + t) * inputSize + k])
        }
    }

    /// Y, Y_h and Y_c of `c`. Batch row b runs over its first sequenceLens[b] steps (reversed for a reverse
    /// direction); Y is zero beyond them, and a row of length 0 has zero Y_h and Y_c (as onnxruntime does).
    static func lstm(_ c: LSTMCase) -> (y: [Float], yh: [Float], yc: [Float]) {
        let h = c.hidden
        var y = [Float](repeating: 0, count: count(c.yShape))
        var yh = [Float](repeating: 0, count: count(c.stateShape)), yc = yh
        func sigmoid(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
        func clipped(_ v: Double) -> Double { c.clip.map { min(max(v, -Double($0)), Double($0)) } ?? v }
        for d in 0..<c.directions {
            let reverse = c.direction == "reverse" || d == 1
            // W[d][g·H + j][k], R[d][g·H + j][k], B[d][g·H + j] (Wb) and B[d][4H + g·H + j] (Rb), P[d][g·H + j].
            func w(_ g: Int, _ j: Int, _ k: Int) -> Double { Double(c.w[((d * 4 + g) * h + j) * c.inputSize + k]) }
            func r(_ g: Int, _ j: Int, _ k: Int) -> Double { Double(c.r[((d * 4 + g) * h + j) * h + k]) }
            func bias(_ g: Int, _ j: Int) -> Double {
                c.b.map { Double($0[d * 8 * h + g * h + j]) + Double($0[d * 8 * h + 4 * h + g * h + j]) } ?? 0
            }
            func peephole(_ g: Int, _ j: Int) -> Double { c.p.map { Double($0[d * 3 * h + g * h + j]) } ?? 0 }
            for b in 0..<c.batch {
                let len = min(max(c.sequenceLens?[b] ?? c.seq, 0), c.seq)
                var hState = (0..<h).map { j in Double(c.initialH?[c.stateIndex(d: d, b: b, j: j)] ?? 0) }
                var cState = (0..<h).map { j in Double(c.initialC?[c.stateIndex(d: d, b: b, j: j)] ?? 0) }
                for s in 0..<len {
                    let t = reverse ? len - 1 - s : s
                    // Pre-activations of the gates i, o, f, c (ONNX order).
                    var pre = [[Double]](repeating: [Double](repeating: 0, count: h), count: 4)
                    for g in 0..<4 {
                        for j in 0..<h {
                            var sum = bias(g, j)
                            for k in 0..<c.inputSize { sum += c.xAt(t: t, b: b, k: k) * w(g, j, k) }
                            for k in 0..<h { sum += hState[k] * r(g, j, k) }
                            pre[g][j] = sum
                        }
                    }
                    var newH = hState
                    for j in 0..<h {
                        let i = sigmoid(clipped(pre[0][j] + peephole(0, j) * cState[j]))
                        let f = c.inputForget ? 1 - i : sigmoid(clipped(pre[2][j] + peephole(2, j) * cState[j]))
                        let cell = f * cState[j] + i * Foundation.tanh(clipped(pre[3][j]))
                        let o = sigmoid(clipped(pre[1][j] + peephole(1, j) * cell))
                        cState[j] = cell
                        newH[j] = o * Foundation.tanh(cell)
                        y[c.yIndex(t: t, d: d, b: b, j: j)] = Float(newH[j])
                    }
                    hState = newH
                }
                for j in 0..<h where len > 0 {
                    yh[c.stateIndex(d: d, b: b, j: j)] = Float(hState[j])
                    yc[c.stateIndex(d: d, b: b, j: j)] = Float(cState[j])
                }
            }
        }
        return (y, yh, yc)
    }
}
