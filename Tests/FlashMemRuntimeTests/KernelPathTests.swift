// Every kernel path the lowering picks by shape, run on the default device (lavapipe in CI) against
// ReferenceOps: the implicit-GEMM convolution with and without a split over K (and its reduction), the direct
// kernel for grouped / depthwise convolutions, Conv1d, the few-rows gemm with a split over K, the tiled gemm
// with 4 × 4 and 8 × 8 register tiles, the tiled matmul of activations (both tiles, broadcast batches, 1-D
// operands), element-wise broadcasting and fusions, pooling, softmax (both workgroup sizes, any axis), and
// BatchNormalization folded and not. OpTests covers each op once; these cover the variants.
//
// Written by the lowering helper.

import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime
import TestSupport

private typealias R = ReferenceOps

final class KernelPathTests: XCTestCase {
    nonisolated(unsafe) static var compiler: ShaderCompiler?

    /// Lowers, assembles and runs `b` with `inputs` and compares its outputs with `expected`; each of `kernels`
    /// must begin the name of a kernel the lowering chose (so each case keeps covering the path it is for).
    func check(_ b: GraphBuilder, _ inputs: [String: [Float]], _ expected: [String: [Float]], kernels: [String] = [],
               precisions: [Precision] = [.fp32, .fp16], file: StaticString = #filePath, line: UInt = #line) throws {
        if Self.compiler == nil { Self.compiler = try ShaderCompiler() }
        for precision in precisions {
            let program = try Lowering.lower(b.graph(), precision: precision, compiler: Self.compiler!)
            for prefix in kernels where !program.kernels.contains(where: { $0.name.hasPrefix(prefix) }) {
                XCTFail("no kernel \(prefix)… among \(program.kernels.map(\.name))", file: file, line: line)
            }
            var options = CompileOptions()
            options.precision = precision
            let compiled = try Compiler.assemble(program, name: "check", options: options)
            let loaded = LoadedBundle(bundle: compiled.bundle, payload: compiled.payload)
            let session = try Session(bundle: loaded, device: device())
            let hostInputs = b.inputs.map { HostTensor(name: $0.name, shape: $0.staticShape!, floats: inputs[$0.name]!) }
            let outputs = try session.run(inputs: hostInputs)
            for out in outputs {
                let want = try XCTUnwrap(expected[out.name], file: file, line: line)
                let got = out.floats()
                let tol: Float = precision == .fp32 ? 2e-4 : 2e-2
                let diff = R.maxAbsDiff(got, want)
                let scale = want.map(abs).max() ?? 1
                XCTAssertLessThanOrEqual(diff, tol * max(1, scale), "\(out.name) \(precision): max diff \(diff) "
                                         + "(kernels: \(program.kernels.map(\.name)))", file: file, line: line)
            }
        }
    }

    func rand(_ count: Int, _ seed: UInt64) -> [Float] {
        var r = R.SeededRandom(seed: seed)
        return r.floats(count)
    }

    // MARK: conv

    func convCase(x xs: [Int], w ws: [Int], bias: Bool, strides: [Int], pads: [Int], dil: [Int], group: Int,
                  relu: Bool, seed: UInt64, kernels: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        var b = GraphBuilder()
        b.input("x", xs)
        let w = rand(ws.reduce(1, *), seed)
        let bv = rand(ws[0], seed + 1)
        b.constant("w", ws, w)
        if bias { b.constant("b", [ws[0]], bv) }
        let x = rand(xs.reduce(1, *), seed + 2)
        let ref = R.conv2d(x: x, xShape: xs, w: w, wShape: ws, bias: bias ? bv : nil, strides: strides, pads: pads,
                           dilations: dil, groups: group)
        b.node("Conv", bias ? ["x", "w", "b"] : ["x", "w"], relu ? "c" : "y", ref.shape,
               ["strides": .ints(strides), "pads": .ints(pads), "dilations": .ints(dil), "group": .int(group)])
        if relu { b.node("Relu", ["c"], "y", ref.shape) }
        b.outputs = ["y"]
        try check(b, ["x": x], ["y": relu ? R.relu(ref.y) : ref.y], kernels: kernels, file: file, line: line)
    }

    func testConv() throws {
        let igemm = "conv2d_igemm<", direct = "conv2d<", reduce = "splitk_reduce<"
        try convCase(x: [2, 5, 9, 7], w: [6, 5, 3, 3], bias: true, strides: [2, 2], pads: [1, 1, 1, 1], dil: [1, 1],
                     group: 1, relu: true, seed: 1, kernels: [igemm])
        try convCase(x: [1, 6, 10, 10], w: [9, 2, 3, 3], bias: true, strides: [1, 1], pads: [2, 2, 2, 2], dil: [2, 2],
                     group: 3, relu: false, seed: 2, kernels: [direct])
        try convCase(x: [1, 8, 7, 7], w: [8, 1, 3, 3], bias: false, strides: [2, 2], pads: [1, 0, 1, 2], dil: [1, 1],
                     group: 8, relu: false, seed: 3, kernels: [direct])  // depthwise
        try convCase(x: [1, 16, 48, 48], w: [66, 16, 3, 3], bias: true, strides: [1, 1], pads: [1, 1, 1, 1],
                     dil: [1, 1], group: 1, relu: true, seed: 4, kernels: [igemm, reduce])  // odd blocks, split 2
        try convCase(x: [1, 8, 24, 24], w: [5, 8, 1, 1], bias: true, strides: [1, 1], pads: [0, 0, 0, 0],
                     dil: [1, 1], group: 1, relu: false, seed: 5, kernels: [igemm])  // 1×1, K = 8
        try convCase(x: [2, 3, 33, 31], w: [64, 3, 7, 7], bias: false, strides: [2, 2], pads: [3, 3, 3, 3],
                     dil: [1, 1], group: 1, relu: true, seed: 6, kernels: [igemm, reduce])  // stem, split 2
        try convCase(x: [1, 32, 50, 50], w: [130, 32, 3, 3], bias: true, strides: [1, 1], pads: [1, 1, 1, 1],
                     dil: [1, 1], group: 1, relu: true, seed: 7, kernels: [igemm, reduce])  // split 3
        try convCase(x: [3, 8, 11, 13], w: [20, 8, 3, 2], bias: true, strides: [2, 1], pads: [0, 1, 2, 0],
                     dil: [2, 1], group: 1, relu: false, seed: 8, kernels: [igemm])  // batch folded into pixels
        try convCase(x: [1, 256, 4, 4], w: [64, 256, 3, 3], bias: true, strides: [1, 1], pads: [1, 1, 1, 1],
                     dil: [1, 1], group: 1, relu: true, seed: 9, kernels: [igemm, reduce])  // split 36
        try convCase(x: [2, 64, 40, 40], w: [256, 64, 1, 1], bias: true, strides: [1, 1], pads: [0, 0, 0, 0],
                     dil: [1, 1], group: 1, relu: true, seed: 10, kernels: [igemm])  // 1×1, 200 tiles
    }

    func testGemmTiled() throws {
        let small = "gemm_tiled<GT_TM=1,GT_TN=1,", large = "gemm_tiled<GT_TM=2,GT_TN=2,", reduce = "splitk_reduce<"
        for (m, k, n, transA, relu, kernels) in [(100, 70, 50, true, false, [small]), (200, 90, 150, false, true, [small]),
                                                 (64, 2048, 64, false, true, [small, reduce]),
                                                 (130, 33, 257, false, false, [small]),
                                                 (2100, 8, 1100, false, true, [large])] {
            var b = GraphBuilder()
            let aShape = transA ? [k, m] : [m, k]
            b.input("a", aShape)
            let a = rand(m * k, 80), w = rand(k * n, 81), c = rand(n, 82)
            b.constant("w", [k, n], w)
            b.constant("c", [n], c)
            b.node("Gemm", ["a", "w", "c"], relu ? "g" : "y", [m, n], ["transA": .int(transA ? 1 : 0), "alpha": .float(0.5)])
            if relu { b.node("Relu", ["g"], "y", [m, n]) }
            b.outputs = ["y"]
            let ref = R.gemm(a: a, aShape: aShape, b: w, bShape: [k, n], c: c, cShape: [n], alpha: 0.5, transA: transA)
            try check(b, ["a": a], ["y": relu ? R.relu(ref.y) : ref.y], kernels: kernels)
        }
    }

    /// normalize.comp with NORM_HALF_OUT (what the lowering uses where only a tensor-core product reads a LayerNorm,
    /// Lowering+HalfOutputs.swift): its rows of halves are the fp32 kernel's outputs rounded to halves bit for bit
    /// (what to_half.comp would make of them), zero from len up to a multiple of 8.
    func testNormalizeWritesTheSameHalvesAsToHalfOfItsFloats() throws {
        if Self.compiler == nil { Self.compiler = try ShaderCompiler() }
        let (rows, len) = (37, 250)  // 250 → 256 halves per row: a zero tail
        var b = GraphBuilder()
        b.input("x", [rows, len])
        b.constant("gamma", [len], rand(len, 60))
        b.constant("beta", [len], rand(len, 61))
        b.node("LayerNormalization", ["x", "gamma", "beta"], "y", [rows, len], ["axis": .int(-1)])
        b.outputs = ["y"]
        let x = HostTensor(name: "x", shape: [rows, len], floats: rand(rows * len, 62).map { 3 * $0 + 1 })
        func run(_ program: LoweredProgram) throws -> [Float] {
            let compiled = try Compiler.assemble(program, name: "norm", options: CompileOptions())
            let session = try Session(bundle: LoadedBundle(bundle: compiled.bundle, payload: compiled.payload),
                                      device: device())
            return try session.run(inputs: [x])[0].floats()
        }
        let plain = try Lowering.lower(b.graph(), precision: .fp32, compiler: Self.compiler!)
        XCTAssertEqual(plain.steps.count, 1)
        let floats = try run(plain)
        // The same step on the half-output variant: Y (fp32-sized) then holds rows of 256 halves, read back raw.
        var halved = plain
        let spec = halved.kernels[halved.steps[0].kernel]
        halved.kernels.append(KernelSpec(
            name: spec.name + "+half", spirv: try Self.compiler!.compile("normalize.comp", defines: ["NORM_HALF_OUT": "1"]),
            bindings: spec.bindings, pushConstantSize: spec.pushConstantSize, workgroupSize: spec.workgroupSize,
            specConstants: spec.specConstants, sharedMemoryBytes: spec.sharedMemoryBytes))
        halved.steps[0].kernel = halved.kernels.count - 1
        let words = try run(halved).map(\.bitPattern)
        for r in 0..<rows {
            for j in stride(from: 0, to: 256, by: 2) {
                let word = words[r * 128 + j / 2]
                let want = [j, j + 1].map { $0 < len ? floatToHalf(floats[r * len + $0]) : 0 }
                XCTAssertEqual([UInt16(word & 0xFFFF), UInt16(word >> 16)], want, "row \(r), halves \(j), \(j + 1)")
                if word & 0xFFFF != want[0] { return }
            }
        }
    }

    func testGemv() throws {
        var b = GraphBuilder()
        b.input("x", [2, 600])
        let x = rand(1200, 90), w = rand(600 * 130, 91)
        b.constant("w", [600, 130], w)
        b.node("MatMul", ["x", "w"], "m", [2, 130])
        b.node("Relu", ["m"], "y", [2, 130])
        b.outputs = ["y"]
        try check(b, ["x": x], ["y": R.relu(R.matmul(a: x, aShape: [2, 600], b: w, bShape: [600, 130]).y)],
                  kernels: ["gemm<GEMM_TM=1,", "splitk_reduce<"])
    }

    func testConv1d() throws {
        var b = GraphBuilder()
        b.input("s", [2, 4, 50])
        let w = rand(8 * 4 * 5, 10), x = rand(2 * 4 * 50, 11)
        b.constant("w", [8, 4, 5], w)
        let ref = R.conv1d(x: x, xShape: [2, 4, 50], w: w, wShape: [8, 4, 5], stride: 2, pads: [1, 3], dilation: 2)
        b.node("Conv", ["s", "w"], "y", ref.shape, ["strides": .ints([2]), "dilations": .ints([2]), "pads": .ints([1, 3])])
        b.outputs = ["y"]
        try check(b, ["s": x], ["y": ref.y])
    }

    func testConvBatchNormRelu() throws {
        var b = GraphBuilder()
        b.input("x", [1, 3, 8, 8])
        let w = rand(5 * 3 * 9, 20), x = rand(3 * 64, 21)
        let g = rand(5, 22), be = rand(5, 23), m = rand(5, 24), v = rand(5, 25).map { abs($0) + 0.1 }
        b.constant("w", [5, 3, 3, 3], w)
        for (n, vals) in [("g", g), ("be", be), ("m", m), ("v", v)] { b.constant(n, [5], vals) }
        let c = R.conv2d(x: x, xShape: [1, 3, 8, 8], w: w, wShape: [5, 3, 3, 3], pads: [1, 1, 1, 1])
        b.node("Conv", ["x", "w"], "c", c.shape, ["pads": .ints([1, 1, 1, 1])])
        b.node("BatchNormalization", ["c", "g", "be", "m", "v"], "bn", c.shape)
        b.node("Relu", ["bn"], "y", c.shape)
        b.outputs = ["y"]
        let ref = R.relu(R.batchNorm(x: c.y, shape: c.shape, scale: g, bias: be, mean: m, variance: v))
        try check(b, ["x": x], ["y": ref])
        // Standalone BN.
        var s = GraphBuilder()
        s.input("x", [2, 5, 3])
        for (n, vals) in [("g", g), ("be", be), ("m", m), ("v", v)] { s.constant(n, [5], vals) }
        s.node("BatchNormalization", ["x", "g", "be", "m", "v"], "y", [2, 5, 3], ["epsilon": .float(1e-3)])
        s.outputs = ["y"]
        let xs = rand(30, 26)
        try check(s, ["x": xs], ["y": R.batchNorm(x: xs, shape: [2, 5, 3], scale: g, bias: be, mean: m, variance: v,
                                                  epsilon: 1e-3)])
    }

    // MARK: gemm / matmul

    func testGemm() throws {
        for (m, k, n, transA, transB, fullC) in [(3, 5, 7, false, true, false), (10, 33, 9, true, false, false),
                                                 (1, 64, 13, false, false, false), (6, 4, 3, false, true, true)] {
            var b = GraphBuilder()
            let aShape = transA ? [k, m] : [m, k], bShape = transB ? [n, k] : [k, n]
            b.input("a", aShape)
            let a = rand(m * k, 30), w = rand(k * n, 31)
            let cShape = fullC ? [m, n] : [n]
            let c = rand(cShape.reduce(1, *), 32)
            b.constant("w", bShape, w)
            b.constant("c", cShape, c)
            b.node("Gemm", ["a", "w", "c"], "g", [m, n], ["transA": .int(transA ? 1 : 0), "transB": .int(transB ? 1 : 0),
                                                      "alpha": .float(0.75), "beta": .float(1.5)])
            b.node("Relu", ["g"], "y", [m, n])
            b.outputs = ["y"]
            let ref = R.gemm(a: a, aShape: aShape, b: w, bShape: bShape, c: c, cShape: cShape, alpha: 0.75, beta: 1.5,
                             transA: transA, transB: transB)
            try check(b, ["a": a], ["y": R.relu(ref.y)])
        }
    }

    func testMatMul() throws {
        // Constant B, batched A: few rows.
        var b = GraphBuilder()
        b.input("x", [2, 7, 6])
        let x = rand(84, 40), w = rand(6 * 9, 41)
        b.constant("w", [6, 9], w)
        let ref = R.matmul(a: x, aShape: [2, 7, 6], b: w, bShape: [6, 9])
        b.node("MatMul", ["x", "w"], "y", ref.shape)
        b.outputs = ["y"]
        try check(b, ["x": x], ["y": ref.y], kernels: ["gemm<GEMM_TM=4,"])

        // Two activations: broadcast batches, a 1-D operand, tile boundaries, both register tiles.
        var c = GraphBuilder()
        c.input("a", [2, 1, 3, 4]); c.input("b", [5, 4, 6]); c.input("v", [4])
        c.input("p", [3, 37, 45]); c.input("q", [3, 45, 29])
        let a = rand(24, 42), bb = rand(120, 43), v = rand(4, 44), p = rand(3 * 37 * 45, 45), q = rand(3 * 45 * 29, 46)
        let r1 = R.matmul(a: a, aShape: [2, 1, 3, 4], b: bb, bShape: [5, 4, 6])
        let r2 = R.matmul(a: v, aShape: [4], b: bb, bShape: [5, 4, 6])
        let r3 = R.matmul(a: p, aShape: [3, 37, 45], b: q, bShape: [3, 45, 29])
        c.node("MatMul", ["a", "b"], "y1", r1.shape)
        c.node("MatMul", ["v", "b"], "y2", r2.shape)
        c.node("MatMul", ["p", "q"], "y3", r3.shape)
        c.input("s", [66, 130, 8]); c.input("t", [66, 8, 131])
        let sv = rand(66 * 130 * 8, 47), tv = rand(66 * 8 * 131, 48)
        let r4 = R.matmul(a: sv, aShape: [66, 130, 8], b: tv, bShape: [66, 8, 131])  // 264 tiles of 128 × 128
        c.node("MatMul", ["s", "t"], "y4", r4.shape)
        c.outputs = ["y1", "y2", "y3", "y4"]
        try check(c, ["a": a, "b": bb, "v": v, "p": p, "q": q, "s": sv, "t": tv],
                  ["y1": r1.y, "y2": r2.y, "y3": r3.y, "y4": r4.y], kernels: ["matmul<MM_TM=1,MM_TN=1>", "matmul<MM_TM=2,MM_TN=2>"],
                  precisions: [.fp32])
    }

    // MARK: elementwise

    func testBinary() throws {
        var b = GraphBuilder()
        b.input("x", [2, 3, 4, 5]); b.input("z", [4, 1])
        let x = rand(120, 50), z = rand(4, 51).map { $0 + 2 }, k = rand(3, 52)
        b.constant("k", [3, 1, 1], k)
        b.constant("s", [], [0.5])
        let add = R.binary(x, [2, 3, 4, 5], k, [3, 1, 1], +)
        b.node("Add", ["x", "k"], "a", add.shape)
        b.node("Relu", ["a"], "ar", add.shape)
        let sub = R.binary(R.relu(add.y), add.shape, z, [4, 1], -)
        b.node("Sub", ["ar", "z"], "sb", sub.shape)
        let mul = R.binary(sub.y, sub.shape, [0.5], [], *)
        b.node("Mul", ["sb", "s"], "ml", mul.shape)
        let div = R.binary(mul.y, mul.shape, z, [4, 1], /)
        b.node("Div", ["ml", "z"], "y", div.shape)
        b.node("Sigmoid", ["y"], "sg", div.shape)
        b.node("Tanh", ["y"], "th", div.shape)
        b.outputs = ["y", "sg", "th"]
        try check(b, ["x": x, "z": z], ["y": div.y, "sg": R.sigmoid(div.y), "th": R.tanh(div.y)], precisions: [.fp32])
    }

    // MARK: pool / softmax

    func testPooling() throws {
        var b = GraphBuilder()
        b.input("x", [2, 3, 11, 9])
        let x = rand(2 * 3 * 99, 60)
        let mp = R.pool2d(x: x, xShape: [2, 3, 11, 9], isMax: true, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1],
                          ceilMode: true)
        b.node("MaxPool", ["x"], "mp", mp.shape, ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]),
                                                 "pads": .ints([1, 1, 1, 1]), "ceil_mode": .int(1)])
        let ap = R.pool2d(x: x, xShape: [2, 3, 11, 9], isMax: false, kernel: [3, 2], strides: [2, 3], pads: [1, 0, 2, 1],
                          ceilMode: true, countIncludePad: true)
        b.node("AveragePool", ["x"], "ap", ap.shape, ["kernel_shape": .ints([3, 2]), "strides": .ints([2, 3]),
                                                     "pads": .ints([1, 0, 2, 1]), "ceil_mode": .int(1),
                                                     "count_include_pad": .int(1)])
        let an = R.pool2d(x: x, xShape: [2, 3, 11, 9], isMax: false, kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1])
        b.node("AveragePool", ["x"], "an", an.shape, ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])])
        let md = R.pool2d(x: x, xShape: [2, 3, 11, 9], isMax: true, kernel: [2, 2], dilations: [2, 3])
        b.node("MaxPool", ["x"], "md", md.shape, ["kernel_shape": .ints([2, 2]), "dilations": .ints([2, 3])])
        let gap = R.globalAveragePool(x: x, xShape: [2, 3, 11, 9])
        b.node("GlobalAveragePool", ["x"], "gap", gap.shape)
        b.input("big", [1, 2, 70, 70])
        let big = rand(9800, 61)
        let gb = R.globalAveragePool(x: big, xShape: [1, 2, 70, 70])
        b.node("GlobalAveragePool", ["big"], "gb", gb.shape)
        b.outputs = ["mp", "ap", "an", "md", "gap", "gb"]
        try check(b, ["x": x, "big": big], ["mp": mp.y, "ap": ap.y, "an": an.y, "md": md.y, "gap": gap.y, "gb": gb.y],
                  precisions: [.fp32])
    }

    /// Pools over a Transpose made for them alone (channels-last [N, H, W, C] → [N, C, H, W], as SAM 2's Hiera
    /// pools Q): read in place through strides, no copy step.
    func testPoolingReadsATransposeInPlace() throws {
        let (n, h, w, c) = (2, 7, 5, 3)
        var b = GraphBuilder()
        b.input("t", [n, h, w, c])
        let t = rand(n * h * w * c, 62)
        var x = [Float](repeating: 0, count: t.count)  // [N, C, H, W]
        for i in 0..<n { for y in 0..<h { for z in 0..<w { for k in 0..<c {
            x[((i * c + k) * h + y) * w + z] = t[((i * h + y) * w + z) * c + k]
        } } } }
        let xShape = [n, c, h, w]
        b.node("Transpose", ["t"], "x", xShape, ["perm": .ints([0, 3, 1, 2])])
        let mp = R.pool2d(x: x, xShape: xShape, isMax: true, kernel: [2, 2], strides: [2, 2], ceilMode: true)
        b.node("MaxPool", ["x"], "mp", mp.shape, ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]),
                                                 "ceil_mode": .int(1)])
        b.outputs = ["mp"]
        if Self.compiler == nil { Self.compiler = try ShaderCompiler() }
        let program = try Lowering.lower(b.graph(), precision: .fp32, compiler: Self.compiler!)
        XCTAssertEqual(program.steps.map { program.kernels[$0.kernel].name.prefix(while: { $0 != "<" }) }, ["pool"])
        try check(b, ["t": t], ["mp": mp.y], precisions: [.fp32])

        // Read by a second pool too, the Transpose stays a copy that both read.
        let ap = R.pool2d(x: x, xShape: xShape, isMax: false, kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1])
        b.node("AveragePool", ["x"], "ap", ap.shape, ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])])
        b.outputs = ["mp", "ap"]
        let shared = try Lowering.lower(b.graph(), precision: .fp32, compiler: Self.compiler!)
        XCTAssertEqual(shared.steps.map { shared.kernels[$0.kernel].name.prefix(while: { $0 != "<" }) },
                       ["copy_strided", "pool", "pool"])
        try check(b, ["t": t], ["mp": mp.y, "ap": ap.y], precisions: [.fp32])
    }

    func testSoftmax() throws {
        var b = GraphBuilder()
        b.input("a", [3, 7]); b.input("l", [2, 2000]); b.input("m", [2, 3, 5])
        let a = rand(21, 70).map { $0 * 5 }, l = rand(4000, 71).map { $0 * 8 }, m = rand(30, 72)
        b.node("Softmax", ["a"], "ya", [3, 7])
        b.node("Softmax", ["l"], "yl", [2, 2000])
        b.node("Softmax", ["m"], "ym", [2, 3, 5], ["axis": .int(1)])
        b.outputs = ["ya", "yl", "ym"]
        try check(b, ["a": a, "l": l, "m": m],
                  ["ya": R.softmax(x: a, shape: [3, 7]), "yl": R.softmax(x: l, shape: [2, 2000]),
                   "ym": R.softmax(x: m, shape: [2, 3, 5], axis: 1)], precisions: [.fp32])
    }
}

// GELU written as element-wise nodes, recognised and fused into the matmul kernels' epilogues (exact and tanh),
// and on its own (the unary kernel), against the formulas in double precision.
extension KernelPathTests {
    func testDecomposedGelusFusedIntoGemmAndMatMulAndAlone() throws {
        let paths = self
        let exact = R.unary("Gelu"), tanhForm = R.unary("GeluTanh")
        func apply(_ f: (Double) -> Double, _ v: [Float]) -> [Float] { v.map { Float(f(Double($0))) } }
        // Gemm (tiled kernel) → exact GELU.
        var b = GraphBuilder()
        let a = paths.rand(100 * 70, 300).map { $0 * 3 }, w = paths.rand(70 * 50, 301), c = paths.rand(50, 302)
        b.input("a", [100, 70])
        b.constant("w", [70, 50], w)
        b.constant("c", [50], c)
        b.node("Gemm", ["a", "w", "c"], "h", [100, 50])
        b.decomposedGelu("h", "y", [100, 50])
        b.outputs = ["y"]
        let gemm = R.gemm(a: a, aShape: [100, 70], b: w, bShape: [70, 50], c: c, cShape: [50])
        try paths.check(b, ["a": a], ["y": apply(exact, gemm.y)], kernels: ["gemm_tiled<"])
        // MatMul with a split over K (the activation is applied by the reduction) → tanh GELU.
        var m = GraphBuilder()
        let x = paths.rand(2 * 600, 303).map { $0 * 2 }, v = paths.rand(600 * 130, 304)
        m.input("x", [2, 600])
        m.constant("v", [600, 130], v)
        m.node("MatMul", ["x", "v"], "h", [2, 130])
        m.decomposedGeluTanh("h", "y", [2, 130])
        m.outputs = ["y"]
        let mm = R.matmul(a: x, aShape: [2, 600], b: v, bShape: [600, 130])
        try paths.check(m, ["x": x], ["y": apply(tanhForm, mm.y)], kernels: ["splitk_reduce<"])
        // MatMul on 3-D activations → Add(bias) → exact GELU (torch's Linear + GELU): one product with bias and GELU.
        var l = GraphBuilder()
        let t = paths.rand(3 * 20 * 48, 306).map { $0 * 2 }, wl = paths.rand(48 * 40, 307), bl = paths.rand(40, 308)
        l.input("t", [3, 20, 48])
        l.constant("wl", [48, 40], wl)
        l.constant("bl", [40], bl)
        l.node("MatMul", ["t", "wl"], "p", [3, 20, 40])
        l.node("Add", ["p", "bl"], "h", [3, 20, 40])
        l.decomposedGelu("h", "y", [3, 20, 40])
        l.outputs = ["y"]
        let linear = R.gemm(a: t, aShape: [60, 48], b: wl, bShape: [48, 40], c: bl, cShape: [40])
        // 60 rows: the few-rows kernel split over K; the reduction adds nothing but applies the GELU (ACT_GELU = 2).
        try paths.check(l, ["t": t], ["y": apply(exact, linear.y)], kernels: ["gemm<", "splitk_reduce<>[256,2]"])
        // Gemm → Reshape → tanh GELU (GPT-2's MLP): the GELU moves into the Gemm, before the reshape.
        var r = GraphBuilder()
        r.input("a", [100, 70])
        r.constant("w", [70, 50], w)
        r.constant("c", [50], c)
        r.intConstant("shape", [1, 100, 50])
        r.node("Gemm", ["a", "w", "c"], "h", [100, 50])
        r.node("Reshape", ["h", "shape"], "v", [1, 100, 50])
        r.decomposedGeluTanh("v", "y", [1, 100, 50])
        r.outputs = ["y"]
        try paths.check(r, ["a": a], ["y": apply(tanhForm, gemm.y)], kernels: ["gemm_tiled<"])
        // On a graph input: one unary Gelu step.
        var u = GraphBuilder()
        let z = paths.rand(300, 305).map { $0 * 4 }
        u.input("z", [300])
        u.decomposedGelu("z", "y", [300])
        u.outputs = ["y"]
        try paths.check(u, ["z": z], ["y": apply(exact, z)], kernels: ["unary<"])
    }

    /// A residual Add after a product (fuseResidualAdd) is the product's C: MatMul + bias + Add(R) + Relu is one
    /// product (the activation after C), and so is Gemm with a bias C → Reshape → Transpose of a size-1 dim → Add(R)
    /// (ViT's attention projection); a residual computed after the product still adds correctly.
    /// A GEGLU (SD-UNet's feed-forward): h = x·W + c, then h[..., :F] · gelu(h[..., F:]) (a decomposed GELU). One
    /// product and one Mul that reads both halves of h in place and takes the GELU of the second as it reads it.
    func testGegluReadsBothHalvesInPlaceAndGatesInTheMul() throws {
        let (rows, k, f) = (24, 16, 20)
        var b = GraphBuilder()
        let x = rand(rows * k, 320), w = rand(k * 2 * f, 321), c = rand(2 * f, 322)
        b.input("x", [1, rows, k])
        b.constant("w", [k, 2 * f], w)
        b.constant("c", [2 * f], c)
        b.intConstant("starts0", [0])
        b.intConstant("ends0", [Int64(f)])
        b.intConstant("starts1", [Int64(f)])
        b.intConstant("ends1", [Int64(2 * f)])
        b.intConstant("axes", [-1])
        b.node("MatMul", ["x", "w"], "p", [1, rows, 2 * f])
        b.node("Add", ["p", "c"], "h", [1, rows, 2 * f])
        b.node("Slice", ["h", "starts0", "ends0", "axes"], "hidden", [1, rows, f])
        b.node("Slice", ["h", "starts1", "ends1", "axes"], "gate", [1, rows, f])
        b.decomposedGelu("gate", "gelu", [1, rows, f])
        b.node("Mul", ["hidden", "gelu"], "y", [1, rows, f])
        b.outputs = ["y"]
        let h = R.gemm(a: x, aShape: [rows, k], b: w, bShape: [k, 2 * f], c: c, cShape: [2 * f]).y
        let gelu = R.unary("Gelu")
        let want = (0..<(rows * f)).map { i -> Float in
            let (r, j) = (i / f, i % f)
            return h[r * 2 * f + j] * Float(gelu(Double(h[r * 2 * f + f + j])))
        }
        try check(b, ["x": x], ["y": want])
        if Self.compiler == nil { Self.compiler = try ShaderCompiler() }
        let program = try Lowering.lower(b.graph(), precision: .fp32, compiler: Self.compiler!)
        let kernels = program.steps.map { program.kernels[$0.kernel].name.prefix(while: { $0 != "<" }) }
        XCTAssertFalse(kernels.contains("copy_strided"), "\(kernels)")
        XCTAssertFalse(kernels.contains("unary"), "\(kernels)")
        XCTAssertEqual(kernels.filter { $0 == "binary" }.count, 1, "\(kernels)")
    }

    /// A window un-partition (windows [wy, wx, iy, ix, C] → [wy, iy, wx, ix, C] → [H, W, C]) added to a shortcut, as
    /// SAM 2's Hiera blocks end: the Add reads the windows in place, walking the Transpose's five dims (its view does
    /// not fit [H, W, C]), so no copy; also through an identity Slice.
    func testAResidualAddReadsAWindowUnpartitionInPlace() throws {
        let (wy, wx, iy, ix, c) = (2, 3, 3, 2, 4)
        let (h, w) = (wy * iy, wx * ix)
        var b = GraphBuilder()
        let windows = rand(wy * wx * iy * ix * c, 325), shortcut = rand(h * w * c, 326)
        b.input("windows", [wy, wx, iy, ix, c])
        b.input("shortcut", [h, w, c])
        b.intConstant("hw", [Int64(h), Int64(w), Int64(c)])
        b.node("Transpose", ["windows"], "t", [wy, iy, wx, ix, c], ["perm": .ints([0, 2, 1, 3, 4])])
        b.node("Reshape", ["t", "hw"], "x", [h, w, c])
        b.node("Add", ["shortcut", "x"], "y", [h, w, c])
        b.outputs = ["y"]
        var want = shortcut
        for a in 0..<wy { for e in 0..<wx { for p in 0..<iy { for q in 0..<ix { for k in 0..<c {
            want[((a * iy + p) * w + e * ix + q) * c + k] += windows[(((a * wx + e) * iy + p) * ix + q) * c + k]
        } } } } }
        try check(b, ["windows": windows, "shortcut": shortcut], ["y": want])
        if Self.compiler == nil { Self.compiler = try ShaderCompiler() }
        let program = try Lowering.lower(b.graph(), precision: .fp32, compiler: Self.compiler!)
        XCTAssertEqual(program.steps.map { program.kernels[$0.kernel].name.prefix(while: { $0 != "<" }) }, ["binary"])

        // With the crop of a padding that was not needed between them (a Slice keeping every element, lowered as a
        // view), as SAM 2 writes it.
        var cropped = b
        cropped.nodes.removeLast()
        cropped.intConstant("zero", [0, 0])
        cropped.intConstant("end", [Int64(h), Int64(w)])
        cropped.intConstant("axes", [0, 1])
        cropped.node("Slice", ["x", "zero", "end", "axes"], "xc", [h, w, c])
        cropped.node("Add", ["shortcut", "xc"], "y", [h, w, c])
        try check(cropped, ["windows": windows, "shortcut": shortcut], ["y": want])
        let croppedProgram = try Lowering.lower(cropped.graph(), precision: .fp32, compiler: Self.compiler!)
        XCTAssertEqual(croppedProgram.steps.map { croppedProgram.kernels[$0.kernel].name.prefix(while: { $0 != "<" }) },
                       ["binary"])
    }

    /// Sum(t, u, t) of a transposed t: a chain of two binary steps for one node, both reading t. The first may not
    /// read the Transpose's source in place and remove the copy the second still reads.
    func testAChainReadingACopyTwiceKeepsIt() throws {
        var b = GraphBuilder()
        let x = rand(3 * 4, 323), u = rand(4 * 3, 324)
        b.input("x", [3, 4])
        b.input("u", [4, 3])
        b.node("Transpose", ["x"], "t", [4, 3], ["perm": .ints([1, 0])])
        b.node("Sum", ["t", "u", "t"], "y", [4, 3])
        b.outputs = ["y"]
        let want: [Float] = (0..<12).map { (i: Int) -> Float in
            let t: Float = x[(i % 3) * 4 + i / 3]  // t[i / 3][i % 3] = x[i % 3][i / 3]
            return t + u[i] + t
        }
        try check(b, ["x": x, "u": u], ["y": want], kernels: ["copy_strided<"])
    }

    func testResidualAddFusedIntoTheProduct() throws {
        let paths = self
        func plus(_ x: [Float], _ y: [Float]) -> [Float] { zip(x, y).map { $0 + $1 } }
        func steps(_ b: GraphBuilder) throws -> [String] {
            try Lowering.lower(b.graph(), precision: .fp32, compiler: Self.compiler ?? ShaderCompiler()).steps.map(\.label)
        }
        var l = GraphBuilder()
        let t = paths.rand(3 * 20 * 48, 310), wl = paths.rand(48 * 40, 311), bl = paths.rand(40, 312)
        let res = paths.rand(3 * 20 * 40, 313)
        l.input("t", [3, 20, 48])
        l.input("res", [3, 20, 40])
        l.constant("wl", [48, 40], wl)
        l.constant("bl", [40], bl)
        l.node("MatMul", ["t", "wl"], "p", [3, 20, 40])
        l.node("Add", ["p", "bl"], "h", [3, 20, 40])
        l.node("Add", ["res", "h"], "s", [3, 20, 40])
        l.node("Relu", ["s"], "y", [3, 20, 40])
        l.outputs = ["y"]
        let linear = R.gemm(a: t, aShape: [60, 48], b: wl, bShape: [48, 40], c: bl, cShape: [40])
        try paths.check(l, ["t": t, "res": res], ["y": R.relu(plus(linear.y, res))])
        XCTAssertEqual(try steps(l).filter { !$0.hasPrefix("p+") }, [], "one product (and its split-K reduction)")

        var g = GraphBuilder()
        let a = paths.rand(100 * 70, 314), w = paths.rand(70 * 50, 315), c = paths.rand(50, 316)
        let r2 = paths.rand(100 * 50, 317)
        g.input("a", [100, 70])
        g.input("r", [1, 100, 50])
        g.constant("w", [70, 50], w)
        g.constant("c", [50], c)
        g.intConstant("shape", [100, 1, 50])
        g.node("Gemm", ["a", "w", "c"], "h", [100, 50])
        g.node("Reshape", ["h", "shape"], "v", [100, 1, 50])
        g.node("Transpose", ["v"], "vt", [1, 100, 50], ["perm": .ints([1, 0, 2])])
        g.node("Add", ["vt", "r"], "y", [1, 100, 50])
        g.outputs = ["y"]
        let gemm = R.gemm(a: a, aShape: [100, 70], b: w, bShape: [70, 50], c: c, cShape: [50])
        try paths.check(g, ["a": a, "r": r2], ["y": plus(gemm.y, r2)], kernels: ["gemm_tiled<"])
        XCTAssertEqual(try steps(g), ["h+y"], "Gemm and Add as one step (the Reshape and Transpose are views)")

        // The residual is computed after the product: not fused (it would be read before it is written).
        var late = GraphBuilder()
        late.input("a", [100, 70])
        late.input("r", [100, 50])
        late.constant("w", [70, 50], w)
        late.constant("c", [50], c)
        late.node("Gemm", ["a", "w", "c"], "h", [100, 50])
        late.node("Relu", ["r"], "rr", [100, 50])
        late.node("Add", ["h", "rr"], "y", [100, 50])
        late.outputs = ["y"]
        try paths.check(late, ["a": a, "r": r2], ["y": plus(gemm.y, R.relu(r2))])
        XCTAssertEqual(try steps(late).count, 3, "Gemm, Relu, Add")

        // A product broadcast through views (SD-UNet's time embedding [1, C] → [1, C, 1, 1] added to every pixel
        // of [1, C, H, W]) is not a residual: not fused (it once was, and the lowering refused the view).
        var broadcast = GraphBuilder()
        let e = paths.rand(1 * 70, 318), hw = paths.rand(50 * 4 * 3, 319)
        broadcast.input("e", [1, 70])
        broadcast.input("x", [1, 50, 4, 3])
        broadcast.constant("w", [70, 50], w)
        broadcast.intConstant("axes", [2, 3])
        broadcast.node("MatMul", ["e", "w"], "p", [1, 50])
        broadcast.node("Unsqueeze", ["p", "axes"], "pu", [1, 50, 1, 1])
        broadcast.node("Add", ["x", "pu"], "y", [1, 50, 4, 3])
        broadcast.outputs = ["y"]
        let product = R.gemm(a: e, aShape: [1, 70], b: w, bShape: [70, 50])
        let want = hw.indices.map { hw[$0] + product.y[$0 / 12] }
        try paths.check(broadcast, ["e": e, "x": hw], ["y": want])
        XCTAssertEqual(try steps(broadcast).last, "y", "the broadcast Add is a step of its own, after the MatMul")
    }
}
