// Fused attention (LoweringPasses.fuseAttention → attention.comp) on lavapipe against a CPU reference in Double:
// the exporters' chains (MiniLM's transposes + scale + additive mask, GPT-2's folded causal mask + identity Cast,
// GPT-Neo's Where select, ViT's √scale on Q and Kᵀ), key counts that are not a multiple of the key tile, D over 64
// (the ATT_DMAX = 128 variant), fp32 and fp16 bundles, streaming and preload.

import FlashMemCompiler
import FlashMemRuntime
import TestSupport
import XCTest

final class AttentionOpTests: XCTestCase {
    /// softmax(mask(scale · Q Kᵀ)) V per batch, on logical [batch, L, D] operands. `add(b, i, j)` is added to the
    /// score; `keep(b, i, j)` false replaces it with `fill`; `selectFirst`: the select comes before the add.
    static func reference(q: [Float], k: [Float], v: [Float], batches: Int, lq: Int, lk: Int, d: Int, dv: Int,
                          scale: Double, add: ((Int, Int, Int) -> Double)? = nil, keep: ((Int, Int, Int) -> Bool)? = nil,
                          fill: Double = 0, selectFirst: Bool = false) -> [Float] {
        var y = [Float](repeating: 0, count: batches * lq * dv)
        for b in 0..<batches {
            for i in 0..<lq {
                var s = [Double](repeating: 0, count: lk)
                for j in 0..<lk {
                    var dot = 0.0
                    for t in 0..<d { dot += Double(q[(b * lq + i) * d + t]) * Double(k[(b * lk + j) * d + t]) }
                    var x = Double(Float(scale)) * dot
                    if !selectFirst, let add { x += add(b, i, j) }
                    if let keep, !keep(b, i, j) { x = fill }
                    if selectFirst, let add { x += add(b, i, j) }
                    s[j] = x
                }
                let m = s.max()!
                let e = s.map { Foundation.exp($0 - m) }
                let sum = e.reduce(0, +)
                for c in 0..<dv {
                    var acc = 0.0
                    for j in 0..<lk { acc += e[j] / sum * Double(v[(b * lk + j) * dv + c]) }
                    y[(b * lq + i) * dv + c] = Float(acc)
                }
            }
        }
        return y
    }

    static func seeded(_ count: Int, seed: UInt64) -> [Float] {
        var rng = ReferenceOps.SeededRandom(seed: seed)
        return rng.floats(count)
    }

    /// Lowers `b` in both precisions (fused attention unless `fusion` says otherwise), checks its step count (one
    /// attention step and `otherSteps`; with `fusion`, `otherSteps` alone), runs it streaming and preloaded and
    /// compares output `y` with `expected` (1e-4 relative in fp32, 1e-2 in fp16). A fused attention runs with
    /// workgroups of 64 and of 256 invocations, which must give the same bits (each output sums in the same order).
    func check(_ b: GraphBuilder, feeds: [HostTensor], expected: [Float], shape: [Int], otherSteps: Int = 0,
               fusion: AttentionFusionRule? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        for precision in Precision.allCases {
            var byWorkgroup: [Int: HostTensor] = [:]
            for invocations in fusion == nil ? [64, 256] : [64] {
                var rule = fusion ?? .always
                rule.invocations = invocations
                let program = try Lowering.lower(b.graph(), precision: precision, attentionFusion: rule,
                                                 compiler: ShaderCompiler())
                let attentions = fusion == nil ? 1 : 0
                if fusion == nil {
                    XCTAssertTrue(program.kernels.contains { $0.name.contains("ATT_WG=\(invocations)") },
                                  program.kernels.map(\.name).description, file: file, line: line)
                }
                XCTAssertEqual(program.steps.count, attentions + otherSteps, program.steps.map(\.label).description,
                               file: file, line: line)
                XCTAssertEqual(program.steps.filter { program.kernels[$0.kernel].name.hasPrefix("attention<") }.count,
                               attentions, program.kernels.map(\.name).description, file: file, line: line)
                var results: [LoadMode: HostTensor] = [:]
                for (mode, outputs) in try runInEveryLoadMode(program, name: "attention", feeds: feeds) {
                    results[mode] = try XCTUnwrap(outputs.first)
                }
                let streamed = try XCTUnwrap(results[.streaming])
                XCTAssertEqual(streamed.shape, shape, file: file, line: line)
                XCTAssertEqual(streamed, results[.preload], "\(precision): streaming != preload", file: file, line: line)
                let error = relativeError(streamed.floats(), expected)
                XCTAssertLessThanOrEqual(error, precision == .fp32 ? 1e-4 : 1e-2, "\(precision): relative error",
                                         file: file, line: line)
                byWorkgroup[invocations] = streamed
            }
            if let wide = byWorkgroup[256] {
                XCTAssertEqual(wide, byWorkgroup[64], "\(precision): 256 invocations != 64", file: file, line: line)
            }
        }
    }

    /// MiniLM / BERT: Q, K, V as [B, L, H, D] through Transposes (Kᵀ by perm 0,2,3,1), × scale, + an extended
    /// attention mask [B, 1, 1, L] that is a model input, Softmax, × V, the output transposed back to [B, L, H, D].
    /// L = 37: not a multiple of the key tile.
    func testBertAttentionWithTransposesAndAnInputMask() throws {
        try checkBertAttention(fusion: nil, otherSteps: 0)
    }

    /// The same attention left unfused: both products read their transposed operands in place (Q and V through
    /// batch and row strides, Kᵀ with k stride 1), so the three input Transposes cost no step, and the first scales
    /// its scores in its epilogue (`fuseProductScale`), and the second writes its result through the output's
    /// Transpose (`writeProducts`). Steps: MatMul (+ Mul), Add, Softmax, MatMul.
    func testUnfusedAttentionReadsTransposedOperandsInPlace() throws {
        try checkBertAttention(fusion: .never, otherSteps: 4)
    }

    private func checkBertAttention(fusion: AttentionFusionRule?, otherSteps: Int,
                                    file: StaticString = #filePath, line: UInt = #line) throws {
        let (batch, l, h, d) = (2, 37, 3, 16)
        var b = GraphBuilder()
        for name in ["q", "k", "v"] { b.input(name, [batch, l, h, d]) }
        b.input("mask", [batch, 1, 1, l])
        b.constant("scale", [], [0.25])
        b.node("Transpose", ["q"], "qt", [batch, h, l, d], ["perm": .ints([0, 2, 1, 3])])
        b.node("Transpose", ["k"], "kt", [batch, h, d, l], ["perm": .ints([0, 2, 3, 1])])
        b.node("Transpose", ["v"], "vt", [batch, h, l, d], ["perm": .ints([0, 2, 1, 3])])
        b.node("MatMul", ["qt", "kt"], "s", [batch, h, l, l])
        b.node("Mul", ["s", "scale"], "ss", [batch, h, l, l])
        b.node("Add", ["ss", "mask"], "sm", [batch, h, l, l])
        b.node("Softmax", ["sm"], "p", [batch, h, l, l], ["axis": .int(-1)])
        b.node("MatMul", ["p", "vt"], "o", [batch, h, l, d])
        b.node("Transpose", ["o"], "y", [batch, l, h, d], ["perm": .ints([0, 2, 1, 3])])
        b.outputs = ["y"]
        let count = batch * l * h * d
        let q = Self.seeded(count, seed: 1), k = Self.seeded(count, seed: 2), v = Self.seeded(count, seed: 3)
        // Padding: the last 5 keys of batch 1 masked out with BERT's large negative value.
        let mask = (0..<batch * l).map { $0 >= batch * l - 5 ? Float(-3.4028235e38) : 0 }
        // [B, L, H, D] → logical [B·H, L, D].
        func logical(_ x: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: count)
            for n in 0..<batch { for i in 0..<l { for hh in 0..<h { for t in 0..<d {
                out[((n * h + hh) * l + i) * d + t] = x[((n * l + i) * h + hh) * d + t]
            } } } }
            return out
        }
        let want = Self.reference(q: logical(q), k: logical(k), v: logical(v), batches: batch * h, lq: l, lk: l, d: d,
                                  dv: d, scale: 0.25, add: { bh, _, j in Double(mask[(bh / h) * l + j]) })
        var expected = [Float](repeating: 0, count: count)  // logical → [B, L, H, D]
        for n in 0..<batch { for i in 0..<l { for hh in 0..<h { for t in 0..<d {
            expected[((n * l + i) * h + hh) * d + t] = want[((n * h + hh) * l + i) * d + t]
        } } } }
        try check(b, feeds: [HostTensor(name: "q", shape: [batch, l, h, d], floats: q),
                             HostTensor(name: "k", shape: [batch, l, h, d], floats: k),
                             HostTensor(name: "v", shape: [batch, l, h, d], floats: v),
                             HostTensor(name: "mask", shape: [batch, 1, 1, l], floats: mask)],
                  expected: expected, shape: [batch, l, h, d], otherSteps: otherSteps, fusion: fusion,
                  file: file, line: line)
    }

    /// GPT-Neo: Div by a scalar, then Where(constant causal bool, scores, -3.4e38); Lq ≠ Lk, Dv ≠ D.
    func testCausalWhereMask() throws {
        let (bh, lq, lk, d, dv) = (3, 20, 29, 8, 12)
        var b = GraphBuilder()
        b.input("q", [1, bh, lq, d])
        b.input("kt", [1, bh, d, lk])
        b.input("v", [1, bh, lk, dv])
        b.constant("div", [], [2.5])
        b.constant("fill", [], [-3.4028235e38])
        let causal = (0..<lq * lk).map { ($0 % lk) <= ($0 / lk) + (lk - lq) }
        b.initializers["causal"] = ConstantTensor(dtype: .bool, shape: [1, 1, lq, lk],
                                                  bytes: TensorBytes(causal.map { $0 ? UInt8(1) : 0 }))
        b.values["causal"] = ValueInfo(name: "causal", dtype: .bool, shape: [1, 1, lq, lk])
        b.node("MatMul", ["q", "kt"], "s", [1, bh, lq, lk])
        b.node("Div", ["s", "div"], "sd", [1, bh, lq, lk])
        b.node("Where", ["causal", "sd", "fill"], "sw", [1, bh, lq, lk])
        b.node("Softmax", ["sw"], "p", [1, bh, lq, lk], ["axis": .int(3)])
        b.node("MatMul", ["p", "v"], "y", [1, bh, lq, dv])
        b.outputs = ["y"]
        let q = Self.seeded(bh * lq * d, seed: 4), kt = Self.seeded(bh * d * lk, seed: 5)
        let v = Self.seeded(bh * lk * dv, seed: 6)
        var k = [Float](repeating: 0, count: kt.count)  // [bh, D, Lk] → [bh, Lk, D]
        for n in 0..<bh { for t in 0..<d { for j in 0..<lk { k[(n * lk + j) * d + t] = kt[(n * d + t) * lk + j] } } }
        let want = Self.reference(q: q, k: k, v: v, batches: bh, lq: lq, lk: lk, d: d, dv: dv, scale: 1 / 2.5,
                                  keep: { _, i, j in causal[i * lk + j] }, fill: -3.4028235e38)
        try check(b, feeds: [HostTensor(name: "q", shape: [1, bh, lq, d], floats: q),
                             HostTensor(name: "kt", shape: [1, bh, d, lk], floats: kt),
                             HostTensor(name: "v", shape: [1, bh, lk, dv], floats: v)],
                  expected: want, shape: [1, bh, lq, dv])
    }

    /// GPT-Neo's fp16 export: float16 Q, Kᵀ and V; Q and Kᵀ cast up to float32, Where(causal), Softmax, P cast down
    /// to float16, × V. An fp16 bundle fuses it (P unrounded) and matches the float64 attention of the float16
    /// inputs to fp16's tolerance, streamed ≡ preloaded.
    func testGptNeoFp16ExportCastsFuseInAnFp16Bundle() throws {
        let (bh, l, d) = (2, 11, 16)
        var b = GraphBuilder()
        b.input("q", [1, bh, l, d], dtype: .float16)
        b.input("kt", [1, bh, d, l], dtype: .float16)
        b.input("v", [1, bh, l, d], dtype: .float16)
        b.constant("fill", [], [-3.4028235e38])
        let causal = (0..<l * l).map { ($0 % l) <= ($0 / l) }
        b.initializers["causal"] = ConstantTensor(dtype: .bool, shape: [1, 1, l, l],
                                                  bytes: TensorBytes(causal.map { $0 ? UInt8(1) : 0 }))
        b.values["causal"] = ValueInfo(name: "causal", dtype: .bool, shape: [1, 1, l, l])
        let float32: Attribute = .int(Int(DType.float32.rawValue)), float16: Attribute = .int(Int(DType.float16.rawValue))
        b.node("Cast", ["q"], "qc", [1, bh, l, d], ["to": float32])
        b.node("Cast", ["kt"], "kc", [1, bh, d, l], ["to": float32])
        b.node("MatMul", ["qc", "kc"], "s", [1, bh, l, l])
        b.node("Where", ["causal", "s", "fill"], "sw", [1, bh, l, l])
        b.node("Softmax", ["sw"], "p", [1, bh, l, l], ["axis": .int(-1)])
        b.node("Cast", ["p"], "p16", [1, bh, l, l], ["to": float16])
        b.values["p16"]?.dtype = .float16
        b.node("MatMul", ["p16", "v"], "y", [1, bh, l, d])
        b.values["y"]?.dtype = .float16
        b.outputs = ["y"]
        let half = { (x: [Float]) in x.map { Float(Float16($0)) } }
        let q = half(Self.seeded(bh * l * d, seed: 30)), kt = half(Self.seeded(bh * d * l, seed: 31))
        let v = half(Self.seeded(bh * l * d, seed: 32))
        var k = [Float](repeating: 0, count: kt.count)  // [bh, D, L] → [bh, L, D]
        for n in 0..<bh { for t in 0..<d { for j in 0..<l { k[(n * l + j) * d + t] = kt[(n * d + t) * l + j] } } }
        let want = Self.reference(q: q, k: k, v: v, batches: bh, lq: l, lk: l, d: d, dv: d, scale: 1,
                                  keep: { _, i, j in causal[i * l + j] }, fill: -3.4028235e38)
        func feed(_ name: String, _ shape: [Int], _ x: [Float]) -> HostTensor {
            HostTensor(name: name, shape: shape, elements: x.map { Float16($0) })
        }
        let program = try Lowering.lower(b.graph(), precision: .fp16, compiler: ShaderCompiler())
        XCTAssertEqual(program.steps.count, 1, program.steps.map(\.label).description)
        var results: [LoadMode: HostTensor] = [:]
        for (mode, outputs) in try runInEveryLoadMode(program, name: "attention", feeds: [
            feed("q", [1, bh, l, d], q), feed("kt", [1, bh, d, l], kt), feed("v", [1, bh, l, d], v)]) {
            results[mode] = try XCTUnwrap(outputs.first)
        }
        let streamed = try XCTUnwrap(results[.streaming])
        XCTAssertEqual(streamed, results[.preload], "streaming != preload")
        XCTAssertLessThanOrEqual(relativeError(streamed.floats(), want), 1e-2)
    }

    /// GPT-2 as exported: × 0.125, + a constant causal mask (0 / -3.4e38), Softmax, identity Cast, × V; rank-3
    /// operands, D = 80 (ATT_DMAX = 128, key tile 16), Lk = 45. Also the select written the other way round
    /// (Where(cond, fill, scores)) after an add: select = 2, mask_order = 0.
    func testGpt2ConstantMaskCastAndWideHeads() throws {
        let (bh, lq, lk, d) = (2, 33, 45, 80)
        var b = GraphBuilder()
        b.input("q", [bh, lq, d])
        b.input("kt", [bh, d, lk])
        b.input("v", [bh, lk, d])
        b.constant("scale", [], [0.125])
        let additive = (0..<lq * lk).map { Float(($0 % lk) <= ($0 / lk) + 5 ? 0 : -3.4028235e38) }
        b.constant("mask", [1, lq, lk], additive)
        b.node("MatMul", ["q", "kt"], "s", [bh, lq, lk])
        b.node("Mul", ["scale", "s"], "ss", [bh, lq, lk])
        b.node("Add", ["mask", "ss"], "sm", [bh, lq, lk])
        b.node("Softmax", ["sm"], "p", [bh, lq, lk], ["axis": .int(-1)])
        b.node("Cast", ["p"], "pc", [bh, lq, lk], ["to": .int(Int(DType.float32.rawValue))])
        b.node("MatMul", ["pc", "v"], "y", [bh, lq, d])
        b.outputs = ["y"]
        let q = Self.seeded(bh * lq * d, seed: 7), kt = Self.seeded(bh * d * lk, seed: 8)
        let v = Self.seeded(bh * lk * d, seed: 9)
        var k = [Float](repeating: 0, count: kt.count)
        for n in 0..<bh { for t in 0..<d { for j in 0..<lk { k[(n * lk + j) * d + t] = kt[(n * d + t) * lk + j] } } }
        let want = Self.reference(q: q, k: k, v: v, batches: bh, lq: lq, lk: lk, d: d, dv: d, scale: 0.125,
                                  add: { _, i, j in Double(additive[i * lk + j]) })
        let feeds = [HostTensor(name: "q", shape: [bh, lq, d], floats: q),
                     HostTensor(name: "kt", shape: [bh, d, lk], floats: kt),
                     HostTensor(name: "v", shape: [bh, lk, d], floats: v)]
        try check(b, feeds: feeds, expected: want, shape: [bh, lq, d])

        // Where(cond, fill, scores) (keep where false) after the add, cond an input broadcast over rows.
        var c = b
        c.nodes.removeAll { $0.opType == "Softmax" || $0.opType == "Cast" }
        c.input("pad", [bh, 1, lk], dtype: .bool)
        c.constant("fill", [], [-1e4])
        c.node("Where", ["pad", "fill", "sm"], "sw", [bh, lq, lk])
        c.node("Softmax", ["sw"], "p", [bh, lq, lk], ["axis": .int(-1)])
        c.nodes.append(c.nodes.remove(at: c.nodes.firstIndex { $0.outputs == ["y"] }!))  // the last MatMul last
        c.nodes[c.nodes.count - 1].inputs[0] = "p"
        let pad = (0..<bh * lk).map { $0 % 7 == 3 }
        let wantC = Self.reference(q: q, k: k, v: v, batches: bh, lq: lq, lk: lk, d: d, dv: d, scale: 0.125,
                                   add: { _, i, j in Double(additive[i * lk + j]) },
                                   keep: { n, _, j in !pad[n * lk + j] }, fill: -1e4)
        try check(c, feeds: feeds + [HostTensor(name: "pad", elementType: .bool, shape: [bh, 1, lk],
                                                             bytes: pad.map { $0 ? 1 : 0 })],
                  expected: wantC, shape: [bh, lq, d])
    }

    /// torchvision's ViT (scaled_dot_product_attention exported): Q × √s and Kᵀ × √s before the product, Kᵀ a
    /// Transpose (perm 0,1,3,2) of K; no mask; Lk = 70.
    func testVitScaledOperands() throws {
        let (h, l, d) = (2, 70, 24)
        var b = GraphBuilder()
        b.input("q", [1, h, l, d])
        b.input("k", [1, h, l, d])
        b.input("v", [1, h, l, d])
        let root = Float(1 / Double(d)).squareRoot().squareRoot()
        b.constant("rq", [1], [root])
        b.constant("rk", [1], [root])
        b.node("Mul", ["q", "rq"], "qs", [1, h, l, d])
        b.node("Transpose", ["k"], "kt", [1, h, d, l], ["perm": .ints([0, 1, 3, 2])])
        b.node("Mul", ["kt", "rk"], "ks", [1, h, d, l])
        b.node("MatMul", ["qs", "ks"], "s", [1, h, l, l])
        b.node("Softmax", ["s"], "p", [1, h, l, l], ["axis": .int(-1)])
        b.node("MatMul", ["p", "v"], "y", [1, h, l, d])
        b.outputs = ["y"]
        let q = Self.seeded(h * l * d, seed: 10), k = Self.seeded(h * l * d, seed: 11)
        let v = Self.seeded(h * l * d, seed: 12)
        let want = Self.reference(q: q, k: k, v: v, batches: h, lq: l, lk: l, d: d, dv: d,
                                  scale: Double(root * root))
        try check(b, feeds: [HostTensor(name: "q", shape: [1, h, l, d], floats: q),
                             HostTensor(name: "k", shape: [1, h, l, d], floats: k),
                             HostTensor(name: "v", shape: [1, h, l, d], floats: v)],
                  expected: want, shape: [1, h, l, d])
    }
    /// torchvision's ViT splits one [L, 1, 3E] QKV product into heads: Reshape, Unsqueeze, one Transpose, Squeeze,
    /// then per operand a Gather of a constant index, Reshape, Transpose and Reshape. The copies that made Q, K and V
    /// for the attention alone are read in place (a view with an element offset), and the big Transpose, read by the
    /// three Gathers, is composed into each of them: one step remains, reading Q, K and V from the product itself.
    func testVitHeadSplitCopiesAreReadInPlace() throws {
        let (h, l, d) = (2, 37, 16)
        let e = h * d
        var b = GraphBuilder()
        b.input("qkv", [l, 1, 3 * e])
        b.intConstant("s4", [Int64(l), 1, 3, Int64(e)])
        b.node("Reshape", ["qkv", "s4"], "r", [l, 1, 3, e])
        b.intConstant("ax0", [0])
        b.node("Unsqueeze", ["r", "ax0"], "u", [1, l, 1, 3, e])
        b.node("Transpose", ["u"], "t", [3, l, 1, 1, e], ["perm": .ints([3, 1, 2, 0, 4])])
        b.intConstant("ax3", [3])
        b.node("Squeeze", ["t", "ax3"], "sq", [3, l, 1, e])
        b.intConstant("heads", [Int64(l), Int64(h), Int64(d)])
        b.intConstant("batched", [1, Int64(h), Int64(l), Int64(d)])
        for (j, name) in ["q", "k", "v"].enumerated() {
            b.initializers["i\(j)"] = ConstantTensor(dtype: .int64, shape: [],
                                                     bytes: TensorBytes(withUnsafeBytes(of: Int64(j)) { [UInt8]($0) }))
            b.node("Gather", ["sq", "i\(j)"], "\(name)g", [l, 1, e], ["axis": .int(0)])
            b.node("Reshape", ["\(name)g", "heads"], "\(name)r", [l, h, d])
            b.node("Transpose", ["\(name)r"], "\(name)h", [h, l, d], ["perm": .ints([1, 0, 2])])
            b.node("Reshape", ["\(name)h", "batched"], name, [1, h, l, d])
        }
        b.node("Transpose", ["k"], "kT", [1, h, d, l], ["perm": .ints([0, 1, 3, 2])])
        b.node("MatMul", ["q", "kT"], "s", [1, h, l, l])
        b.node("Softmax", ["s"], "p", [1, h, l, l], ["axis": .int(-1)])
        b.node("MatMul", ["p", "v"], "y", [1, h, l, d])
        b.outputs = ["y"]
        let qkv = Self.seeded(l * 3 * e, seed: 21)
        // Operand j of head n, row i, depth t: qkv[i][j·E + n·D + t].
        func operand(_ j: Int) -> [Float] {
            (0..<h).flatMap { n in (0..<l).flatMap { i in (0..<d).map { t in qkv[i * 3 * e + j * e + n * d + t] } } }
        }
        let want = Self.reference(q: operand(0), k: operand(1), v: operand(2), batches: h, lq: l, lk: l, d: d, dv: d,
                                  scale: 1)
        try check(b, feeds: [HostTensor(name: "qkv", shape: [l, 1, 3 * e], floats: qkv)], expected: want,
                  shape: [1, h, l, d])
        let program = try Lowering.lower(b.graph(), precision: .fp32)
        let attention = try XCTUnwrap(program.steps.first { program.kernels[$0.kernel].name.hasPrefix("attention<") })
        let push = attention.pushConstants.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
        XCTAssertEqual(Array(push[3..<6]), [0, UInt32(e), UInt32(2 * e)], "Q, K, V offsets in each row of the product")
    }

    /// GPT-Neo's projections: Q, K and V are three MatMuls of one activation (with biases here, as BERT's), each
    /// split into heads by Reshape and Transpose. They become one product of the concatenated weights
    /// (`fuseSharedInputProducts`) whose three column slices the attention reads in place: no copy, one product.
    func testSeparateProjectionsOfOneInputAreOneProduct() throws {
        let (h, l, d) = (2, 37, 16)
        let e = h * d
        var b = GraphBuilder()
        b.input("x", [l, e])
        b.intConstant("heads", [Int64(l), Int64(h), Int64(d)])
        let x = Self.seeded(l * e, seed: 31)
        var projected: [[Float]] = []
        for (j, name) in ["q", "k", "v"].enumerated() {
            let w = Self.seeded(e * e, seed: 32 + UInt64(j)), bias = Self.seeded(e, seed: 40 + UInt64(j))
            b.constant("w\(name)", [e, e], w)
            b.constant("b\(name)", [e], bias)
            b.node("MatMul", ["x", "w\(name)"], "\(name)m", [l, e])
            b.node("Add", ["\(name)m", "b\(name)"], "\(name)p", [l, e])
            b.node("Reshape", ["\(name)p", "heads"], "\(name)r", [l, h, d])
            b.node("Transpose", ["\(name)r"], name, [h, l, d], ["perm": .ints([1, 0, 2])])
            // [h, l, d] per head: x · W + bias, columns n·D … n·D + D − 1.
            projected.append((0..<h).flatMap { n in (0..<l).flatMap { i in (0..<d).map { t -> Float in
                var acc = Double(bias[n * d + t])
                for c in 0..<e { acc += Double(x[i * e + c]) * Double(w[c * e + n * d + t]) }
                return Float(acc)
            } } })
        }
        b.node("Transpose", ["k"], "kT", [h, d, l], ["perm": .ints([0, 2, 1])])
        b.node("MatMul", ["q", "kT"], "s", [h, l, l])
        b.node("Softmax", ["s"], "p", [h, l, l], ["axis": .int(-1)])
        b.node("MatMul", ["p", "v"], "y", [h, l, d])
        b.outputs = ["y"]
        let graph = b.graph()
        let program = try Lowering.lower(graph, precision: .fp32)
        XCTAssertEqual(Set(graph.initializers.keys), Set(b.initializers.keys), "the caller's graph is not modified")
        let kernels = program.steps.map { program.kernels[$0.kernel].name }
        XCTAssertEqual(kernels.filter { $0.hasPrefix("gemm") }.count, 1, "one product: \(kernels)")
        XCTAssertTrue(kernels.allSatisfy { !$0.hasPrefix("copy_strided<") }, "no copy: \(kernels)")
        let want = Self.reference(q: projected[0], k: projected[1], v: projected[2], batches: h, lq: l, lk: l, d: d,
                                  dv: d, scale: 1)
        try check(b, feeds: [HostTensor(name: "x", shape: [l, e], floats: x)], expected: want, shape: [h, l, d],
                  otherSteps: program.steps.count - 1)
    }

    /// Long attentions left unfused run in blocks of query rows (AttentionSplit): GPT-Neo's causal Where (a mask that
    /// varies along the rows, sliced with them) and BERT's padding mask [B, 1, 1, L] (broadcast along the rows, read
    /// whole), 37 rows in blocks of 8 (the last one 5). Against the CPU reference, streamed ≡ preloaded, and bit for
    /// bit the unsplit chain's outputs; the arena holds one block's scores instead of all of them.
    func testSplitAttentionEqualsTheUnsplitChain() throws {
        let (bh, lq, lk, d) = (3, 37, 29, 8)
        var b = GraphBuilder()
        b.input("q", [1, bh, lq, d])
        b.input("kt", [1, bh, d, lk])
        b.input("v", [1, bh, lk, d])
        b.input("pad", [1, 1, 1, lk])
        b.constant("div", [], [2.5])
        b.constant("fill", [], [-3.4028235e38])
        let causal = (0..<lq * lk).map { ($0 % lk) <= ($0 / lk) }
        b.initializers["causal"] = ConstantTensor(dtype: .bool, shape: [1, 1, lq, lk],
                                                  bytes: TensorBytes(causal.map { $0 ? UInt8(1) : 0 }))
        b.values["causal"] = ValueInfo(name: "causal", dtype: .bool, shape: [1, 1, lq, lk])
        b.node("MatMul", ["q", "kt"], "s", [1, bh, lq, lk])
        b.node("Div", ["s", "div"], "sd", [1, bh, lq, lk])
        b.node("Where", ["causal", "sd", "fill"], "sw", [1, bh, lq, lk])
        b.node("Add", ["sw", "pad"], "sa", [1, bh, lq, lk])
        b.node("Softmax", ["sa"], "p", [1, bh, lq, lk], ["axis": .int(-1)])
        b.node("MatMul", ["p", "v"], "y", [1, bh, lq, d])
        b.outputs = ["y"]
        let q = Self.seeded(bh * lq * d, seed: 7), kt = Self.seeded(bh * d * lk, seed: 8)
        let v = Self.seeded(bh * lk * d, seed: 9)
        let pad = (0..<lk).map { $0 >= lk - 3 ? Float(-1e4) : 0 }
        var k = [Float](repeating: 0, count: kt.count)  // [bh, D, Lk] → [bh, Lk, D]
        for n in 0..<bh { for t in 0..<d { for j in 0..<lk { k[(n * lk + j) * d + t] = kt[(n * d + t) * lk + j] } } }
        let want = Self.reference(q: q, k: k, v: v, batches: bh, lq: lq, lk: lk, d: d, dv: d, scale: 1 / 2.5,
                                  add: { _, _, j in Double(pad[j]) }, keep: { _, i, j in causal[i * lk + j] },
                                  fill: -3.4028235e38, selectFirst: true)
        let feeds = [HostTensor(name: "q", shape: [1, bh, lq, d], floats: q),
                     HostTensor(name: "kt", shape: [1, bh, d, lk], floats: kt),
                     HostTensor(name: "v", shape: [1, bh, lk, d], floats: v),
                     HostTensor(name: "pad", shape: [1, 1, 1, lk], floats: pad)]
        let rowBytes = bh * lk * 4
        let split = AttentionFusionRule(maxKeys: 0, scoresAbove: .max, splitScoresAbove: 8 * rowBytes)
        let compiler = try ShaderCompiler()
        for precision in Precision.allCases {
            let whole = try Lowering.lower(b.graph(), precision: precision, attentionFusion: .never, compiler: compiler)
            let blocks = try Lowering.lower(b.graph(), precision: precision, attentionFusion: split, compiler: compiler)
            XCTAssertEqual(whole.steps.count, 5, whole.steps.map(\.label).description)
            // Per block of rows (5): the chain's five steps (the first product reads its rows of Q in place, from an
            // offset, and divides by the scale in its epilogue; the last writes its rows of the output itself, so
            // there is no Concat copy; the causal mask's slices are constants).
            XCTAssertEqual(blocks.steps.count, 5 * 5, blocks.steps.map(\.label).description)
            XCTAssertEqual(blocks.steps.filter { $0.label.hasSuffix("/concat") }.count, 0)
            func scores(_ p: LoweredProgram, rows: Int) -> Int {  // activations of the scores' size for `rows` rows
                p.tensors.values.filter { $0.viewOf == nil && $0.constant == nil && $0.byteSize == rows * rowBytes }.count
            }
            XCTAssertEqual(scores(whole, rows: lq), 3, "MatMul (and Div), Where, Add; Softmax overwrites Add's")
            XCTAssertEqual(scores(blocks, rows: lq), 0, "no tensor holds every row's scores")
            XCTAssertGreaterThan(scores(blocks, rows: 8), 0)
            var outputs: [String: [LoadMode: HostTensor]] = [:]
            for (tag, program) in [("whole", whole), ("blocks", blocks)] {
                for (mode, result) in try runInEveryLoadMode(program, name: "split-attention", feeds: feeds) {
                    outputs[tag, default: [:]][mode] = try XCTUnwrap(result.first)
                }
            }
            let streamed = try XCTUnwrap(outputs["blocks"]?[.streaming])
            XCTAssertEqual(streamed.shape, [1, bh, lq, d])
            XCTAssertEqual(streamed, outputs["blocks"]?[.preload], "\(precision): streaming != preload")
            XCTAssertEqual(streamed, outputs["whole"]?[.streaming], "\(precision): split != unsplit")
            XCTAssertLessThanOrEqual(relativeError(streamed.floats(), want), precision == .fp32 ? 1e-4 : 1e-2)
        }
    }

    /// Self-attention over its input, split: Q, K and V are one tensor x (scores x · xᵀ, output softmax · x), and
    /// only Q's rows are sliced per block: V stays whole (a split once sliced V with Q and could not lower).
    func testSplitSelfAttentionSlicesOnlyTheQueryRows() throws {
        let (l, d) = (40, 8)
        var b = GraphBuilder()
        b.input("x", [1, l, d])
        b.node("Transpose", ["x"], "xt", [1, d, l], ["perm": .ints([0, 2, 1])])
        b.node("MatMul", ["x", "xt"], "s", [1, l, l])
        b.node("Softmax", ["s"], "p", [1, l, l], ["axis": .int(-1)])
        b.node("MatMul", ["p", "x"], "y", [1, l, d])
        b.outputs = ["y"]
        let x = Self.seeded(l * d, seed: 11)
        let want = Self.reference(q: x, k: x, v: x, batches: 1, lq: l, lk: l, d: d, dv: d, scale: 1)
        let split = AttentionFusionRule(maxKeys: 0, scoresAbove: .max, splitScoresAbove: 16 * l * 4)
        let compiler = try ShaderCompiler()
        for precision in Precision.allCases {
            let whole = try Lowering.lower(b.graph(), precision: precision, attentionFusion: .never, compiler: compiler)
            let blocks = try Lowering.lower(b.graph(), precision: precision, attentionFusion: split, compiler: compiler)
            XCTAssertEqual(blocks.steps.filter { $0.label.hasSuffix("_y") }.count, 3, "blocks of 16, 16, 8 rows")
            XCTAssertEqual(blocks.steps.filter { $0.label.hasSuffix("/concat") }.count, 0, "each block writes its rows")
            var outputs: [String: [LoadMode: HostTensor]] = [:]
            for (tag, program) in [("whole", whole), ("blocks", blocks)] {
                let feeds = [HostTensor(name: "x", shape: [1, l, d], floats: x)]
                for (mode, result) in try runInEveryLoadMode(program, name: "self-attention", feeds: feeds) {
                    outputs[tag, default: [:]][mode] = try XCTUnwrap(result.first)
                }
            }
            let streamed = try XCTUnwrap(outputs["blocks"]?[.streaming])
            XCTAssertEqual(streamed, outputs["blocks"]?[.preload], "\(precision): streaming != preload")
            XCTAssertEqual(streamed, outputs["whole"]?[.streaming], "\(precision): split != unsplit")
            XCTAssertLessThanOrEqual(relativeError(streamed.floats(), want), precision == .fp32 ? 1e-4 : 1e-2)
        }
    }
}
