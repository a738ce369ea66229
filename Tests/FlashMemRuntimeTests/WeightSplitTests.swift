// Kernel rewriting under maxImageBytes (Lowering+Pieces.swift): a Gemm / MatMul weight cut into column pieces
// (few rows and many rows, with a split over K, N not a multiple of 4, an activation C in the epilogue), a
// Gather table cut into row pieces (negative indices, a gathered axis that is not the outermost), a Conv
// weight cut into output-channel pieces (with a split over K), and grouped / depthwise Conv weights cut into
// pieces of whole groups. Each case runs on the default device (lavapipe
// in CI) in fp32 and fp16, streaming and preloaded, and checks: the CPU reference, the unsplit bundle's
// outputs, streaming == preload bit for bit, every image within the limit, and the split's record.

import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime
import TestSupport

private typealias R = ReferenceOps

final class WeightSplitTests: XCTestCase {
    nonisolated(unsafe) static var compiler: ShaderCompiler?

    func rand(_ count: Int, _ seed: UInt64) -> [Float] {
        var r = R.SeededRandom(seed: seed)
        return r.floats(count)
    }

    /// Lowers `b` without a limit and with `limit(precision)`, checks that `weight` was cut into at least
    /// `minPieces` pieces along `axis` and no image exceeds the limit, runs both bundles in every load mode and
    /// compares with `expected`. `kernels`: name prefixes the split lowering must use. Returns the split programs.
    @discardableResult
    func checkSplit(_ b: GraphBuilder, feeds: [HostTensor], expected: [Float], weight: String, axis: WeightSplit.Axis,
                    minPieces: Int, limit: (Precision) -> Int, kernels: [String] = [],
                    file: StaticString = #filePath, line: UInt = #line) throws -> [LoweredProgram] {
        if Self.compiler == nil { Self.compiler = try ShaderCompiler() }
        var programs: [LoweredProgram] = []
        for precision in Precision.allCases {
            let maxBytes = limit(precision)
            let whole = try Lowering.lower(b.graph(), precision: precision, compiler: Self.compiler!)
            let split = try Lowering.lower(b.graph(), precision: precision, maxImageBytes: maxBytes,
                                           compiler: Self.compiler!)
            programs.append(split)
            XCTAssertEqual(whole.splits, [], file: file, line: line)
            XCTAssertTrue(whole.images.contains { $0.texels.count > maxBytes }, "\(precision): the limit cuts nothing",
                          file: file, line: line)
            let record = try XCTUnwrap(split.splits.first, "\(precision): nothing was split", file: file, line: line)
            XCTAssertEqual(split.splits.count, 1, file: file, line: line)
            XCTAssertEqual(record.weight, weight, file: file, line: line)
            XCTAssertEqual(record.axis, axis, file: file, line: line)
            XCTAssertEqual(record.maxImageBytes, maxBytes, file: file, line: line)
            XCTAssertGreaterThanOrEqual(record.pieces, minPieces, "\(precision): pieces", file: file, line: line)
            let pieceNames = (1...record.pieces).map { "\(weight)[\($0)/\(record.pieces)]" }
            XCTAssertEqual(split.images.map(\.name).filter { $0.hasPrefix("\(weight)[") }, pieceNames, file: file, line: line)
            for image in split.images {
                XCTAssertLessThanOrEqual(image.texels.count, maxBytes, "\(precision): image '\(image.name)'",
                                         file: file, line: line)
            }
            XCTAssertEqual(record.largestPieceBytes, split.images.filter { pieceNames.contains($0.name) }
                .map(\.texels.count).max(), file: file, line: line)
            XCTAssertEqual(record.originalBytes, whole.images.first { $0.name == weight }?.texels.count,
                           file: file, line: line)
            for prefix in kernels where !split.kernels.contains(where: { $0.name.hasPrefix(prefix) }) {
                XCTFail("no kernel \(prefix)… among \(split.kernels.map(\.name))", file: file, line: line)
            }

            let splitRuns = try runInEveryLoadMode(split, name: "split", feeds: feeds)
            let wholeRuns = try runInEveryLoadMode(whole, name: "whole", feeds: feeds)
            let streamed = try XCTUnwrap(splitRuns[.streaming]?.first, file: file, line: line).floats()
            let preloaded = try XCTUnwrap(splitRuns[.preload]?.first, file: file, line: line).floats()
            let unsplit = try XCTUnwrap(wholeRuns[.streaming]?.first, file: file, line: line).floats()
            XCTAssertEqual(streamed, preloaded, "\(precision): streaming != preload", file: file, line: line)
            let tol: Float = precision == .fp32 ? 2e-4 : 2e-2
            let scale = max(1, expected.map(abs).max() ?? 1)
            XCTAssertLessThanOrEqual(R.maxAbsDiff(streamed, expected), tol * scale, "\(precision): vs reference",
                                     file: file, line: line)
            XCTAssertLessThanOrEqual(R.maxAbsDiff(streamed, unsplit), 1e-5 * scale, "\(precision): vs unsplit",
                                     file: file, line: line)
        }
        return programs
    }

    // MARK: Gemm / MatMul

    /// Few rows (gemm.comp): M = 5 from a 3-D A, N = 150 (38 blocks, the last half full), split over K.
    func testMatMulFewRowsCutIntoColumnPieces() throws {
        var b = GraphBuilder()
        b.input("a", [1, 5, 200])
        let a = rand(1000, 1), w = rand(200 * 150, 2)
        b.constant("w", [200, 150], w)
        b.node("MatMul", ["a", "w"], "y", [1, 5, 150])
        b.outputs = ["y"]
        let ref = R.matmul(a: a, aShape: [5, 200], b: w, bShape: [200, 150]).y
        let programs = try checkSplit(b, feeds: [HostTensor(name: "a", shape: [1, 5, 200], floats: a)], expected: ref,
                                      weight: "w", axis: .columns, minPieces: 3,
                                      limit: { $0 == .fp32 ? 48 << 10 : 24 << 10 },
                                      kernels: ["gemm<GEMM_TM=4,", "splitk_reduce<"])
        // One reduction after the last piece, and every piece's step before it.
        for program in programs {
            let labels = program.steps.map { program.kernels[$0.kernel].name.prefix(5) }
            XCTAssertEqual(labels.last, "split")
            XCTAssertEqual(labels.filter { $0 == "split" }.count, 1)
        }
    }

    /// Many rows (gemm_tiled.comp): transB, an activation C [M, N] in the epilogue, alpha / beta, a split over K
    /// and a fused Relu applied by the reduction.
    func testGemmManyRowsCutIntoColumnPiecesWithActivationC() throws {
        let (m, k, n) = (100, 300, 150)
        var b = GraphBuilder()
        b.input("a", [m, k])
        b.input("c", [m, n])
        let a = rand(m * k, 3), w = rand(n * k, 4), c = rand(m * n, 5)
        b.constant("w", [n, k], w)
        b.node("Gemm", ["a", "w", "c"], "g", [m, n], ["transB": .int(1), "alpha": .float(0.5), "beta": .float(0.7)])
        b.node("Relu", ["g"], "y", [m, n])
        b.outputs = ["y"]
        let ref = R.relu(R.gemm(a: a, aShape: [m, k], b: w, bShape: [n, k], c: c, cShape: [m, n], alpha: 0.5,
                                beta: 0.7, transB: true).y)
        try checkSplit(b, feeds: [HostTensor(name: "a", shape: [m, k], floats: a),
                                  HostTensor(name: "c", shape: [m, n], floats: c)],
                       expected: ref, weight: "w", axis: .columns, minPieces: 3,
                       limit: { $0 == .fp32 ? 96 << 10 : 48 << 10 }, kernels: ["gemm_tiled<", "splitk_reduce<"])
    }

    /// Many rows without a split over K, a constant per-column bias in the pieces' bias texels.
    func testGemmManyRowsCutWithBiasNoSplitK() throws {
        let (m, k, n) = (70, 40, 203)
        var b = GraphBuilder()
        b.input("a", [m, k])
        let a = rand(m * k, 6), w = rand(k * n, 7), c = rand(n, 8)
        b.constant("w", [k, n], w)
        b.constant("bias", [n], c)
        b.node("Gemm", ["a", "w", "bias"], "y", [m, n])
        b.outputs = ["y"]
        let ref = R.gemm(a: a, aShape: [m, k], b: w, bShape: [k, n], c: c, cShape: [n]).y
        let programs = try checkSplit(b, feeds: [HostTensor(name: "a", shape: [m, k], floats: a)], expected: ref,
                                      weight: "w", axis: .columns, minPieces: 3,
                                      limit: { $0 == .fp32 ? 16 << 10 : 8 << 10 }, kernels: ["gemm_tiled<"])
        XCTAssertFalse(programs.contains { $0.kernels.contains { $0.name.hasPrefix("splitk_reduce") } })
    }

    // MARK: Gather

    func testGatherTableCutIntoRowPiecesWithNegativeIndices() throws {
        let table = rand(331 * 13, 9)
        let ids: [Int64] = [3, 0, 330, 7, 7, 1, 2, 329, -1, 100, -331, -200, 250, 165, 166]
        var b = GraphBuilder()
        b.input("ids", [3, 5], dtype: .int64)
        b.constant("table", [331, 13], table)
        b.node("Gather", ["table", "ids"], "y", [3, 5, 13])
        b.outputs = ["y"]
        let ref = R.gather(table.map(Double.init), [331, 13], indices: ids.map { Int($0) }, indexShape: [3, 5], axis: 0)
        try checkSplit(b, feeds: [HostTensor(name: "ids", shape: [3, 5], int64s: ids)], expected: ref.y.map(Float.init),
                       weight: "table", axis: .rows, minPieces: 3, limit: { $0 == .fp32 ? 8 << 10 : 4 << 10 })
    }

    /// A gathered axis inside the table (axis 1 of [3, 400, 5]): each piece holds rows r0..<r1 of every outer slice.
    func testGatherInnerAxisCutIntoRowPieces() throws {
        let table = rand(3 * 400 * 5, 10)
        let ids: [Int64] = [399, -1, 0, 123, -400, 200, 201, 57]
        var b = GraphBuilder()
        b.input("ids", [8], dtype: .int64)
        b.constant("table", [3, 400, 5], table)
        b.node("Gather", ["table", "ids"], "y", [3, 8, 5], ["axis": .int(1)])
        b.outputs = ["y"]
        let ref = R.gather(table.map(Double.init), [3, 400, 5], indices: ids.map { Int($0) }, indexShape: [8], axis: 1)
        try checkSplit(b, feeds: [HostTensor(name: "ids", shape: [8], int64s: ids)], expected: ref.y.map(Float.init),
                       weight: "table", axis: .rows, minPieces: 3, limit: { $0 == .fp32 ? 8 << 10 : 4 << 10 })
    }

    // MARK: Conv

    /// 38 output channels (10 blocks, the last half full) with a bias, a split over K and a fused Relu.
    func testConvCutIntoOutputChannelPieces() throws {
        let xs = [1, 32, 9, 9], ws = [38, 32, 3, 3]
        var b = GraphBuilder()
        b.input("x", xs)
        let x = rand(xs.reduce(1, *), 11), w = rand(ws.reduce(1, *), 12), bias = rand(38, 13)
        b.constant("w", ws, w)
        b.constant("b", [38], bias)
        let ref = R.conv2d(x: x, xShape: xs, w: w, wShape: ws, bias: bias, strides: [1, 1], pads: [1, 1, 1, 1],
                           dilations: [1, 1], groups: 1)
        b.node("Conv", ["x", "w", "b"], "c", ref.shape, ["pads": .ints([1, 1, 1, 1])])
        b.node("Relu", ["c"], "y", ref.shape)
        b.outputs = ["y"]
        try checkSplit(b, feeds: [HostTensor(name: "x", shape: xs, floats: x)], expected: R.relu(ref.y), weight: "w",
                       axis: .outputChannels, minPieces: 2, limit: { $0 == .fp32 ? 20 << 10 : 10 << 10 },
                       kernels: ["conv2d_igemm<", "splitk_reduce<"])
    }

    /// A grouped convolution (6 groups of 5 → 7 channels, strided, padded) cut into pieces of whole groups, and a
    /// depthwise one cut into one piece per few channels.
    func testGroupedAndDepthwiseConvCutIntoGroupPieces() throws {
        for (xs, ws, group, strides, limit, seed) in [([2, 30, 11, 9], [42, 5, 3, 3], 6, [2, 1], 4096, UInt64(14)),
                                                      ([1, 24, 12, 12], [24, 1, 5, 5], 24, [1, 1], 1024, UInt64(15))] {
            var b = GraphBuilder()
            b.input("x", xs)
            let x = rand(xs.reduce(1, *), seed), w = rand(ws.reduce(1, *), seed + 1), bias = rand(ws[0], seed + 2)
            b.constant("w", ws, w)
            b.constant("b", [ws[0]], bias)
            let ref = R.conv2d(x: x, xShape: xs, w: w, wShape: ws, bias: bias, strides: strides, pads: [1, 2, 1, 0],
                               dilations: [1, 1], groups: group)
            b.node("Conv", ["x", "w", "b"], "y", ref.shape,
                   ["strides": .ints(strides), "pads": .ints([1, 2, 1, 0]), "group": .int(group)])
            b.outputs = ["y"]
            try checkSplit(b, feeds: [HostTensor(name: "x", shape: xs, floats: x)], expected: ref.y, weight: "w",
                           axis: .groups, minPieces: 3, limit: { $0 == .fp32 ? limit : limit / 2 }, kernels: ["conv2d<"])
        }
    }
}
