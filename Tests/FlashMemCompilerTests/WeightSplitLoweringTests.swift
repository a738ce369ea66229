// Lowering under maxImageBytes (Lowering+Pieces.swift): no limit (or one nothing exceeds) gives the same program
// as before; pieces are named "<weight>[p/P]", cut at the tiled kernel's column tiles where that fits, carry
// their column / row / channel offset in the push constants and share one split-K reduction; a weight that
// cannot be cut small enough is an error naming the node and the weight. The run-time checks of the pieces
// are in FlashMemRuntimeTests/WeightSplitTests.swift.

import FMBFormat
import XCTest
@testable import FlashMemCompiler
import TestSupport

final class WeightSplitLoweringTests: XCTestCase {
    nonisolated(unsafe) static var sharedCompiler: ShaderCompiler?

    private func lower(_ b: GraphBuilder, _ precision: Precision = .fp32, limit: Int?) throws -> LoweredProgram {
        if Self.sharedCompiler == nil { Self.sharedCompiler = try ShaderCompiler() }
        return try Lowering.lower(b.graph(), precision: precision, maxImageBytes: limit, compiler: Self.sharedCompiler!)
    }

    private func push(_ p: LoweredProgram, _ step: Int) -> [UInt32] {
        let bytes = p.steps[step].pushConstants
        return stride(from: 0, to: bytes.count, by: 4).map {
            UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24
        }
    }

    private func gemmGraph(m: Int, k: Int, n: Int) -> GraphBuilder {
        var b = GraphBuilder()
        b.input("a", [m, k])
        b.constant("w", [k, n])
        b.constant("c", [n])
        b.node("Gemm", ["a", "w", "c"], "y", [m, n], name: "fc")
        b.outputs = ["y"]
        return b
    }

    func testEveryPushConstantBlockFitsLavapipe() {
        for family in KernelCatalog.all {
            XCTAssertLessThanOrEqual(family.pushConstantSize, 128, family.file)
        }
    }

    func testNoLimitAndAnUnreachedLimitLowerTheSameProgram() throws {
        let b = gemmGraph(m: 3, k: 200, n: 150)
        let plain = try lower(b, limit: nil), generous = try lower(b, limit: 1 << 30)
        XCTAssertEqual(plain.splits, [])
        XCTAssertEqual(generous.splits, [])
        XCTAssertEqual(plain.images.map(\.name), ["w"])
        XCTAssertEqual(plain.images.map(\.texels), generous.images.map(\.texels))
        XCTAssertEqual(plain.steps.map(\.pushConstants), generous.steps.map(\.pushConstants))
        XCTAssertEqual(plain.steps.map(\.groups), generous.steps.map(\.groups))
        // Unsplit: n0 = 0 and the row stride is N.
        XCTAssertEqual(push(plain, 0).suffix(2), [0, 150])
    }

    func testFewRowsGemmPiecesCarryTheirColumnsAndShareOneReduction() throws {
        let p = try lower(gemmGraph(m: 3, k: 200, n: 150), limit: 48 << 10)
        let split = try XCTUnwrap(p.splits.first)
        XCTAssertEqual(split.node, "fc")
        XCTAssertEqual(split.weight, "w")
        XCTAssertEqual(split.axis, .columns)
        XCTAssertEqual(split.pieces, 3)
        XCTAssertEqual(p.images.map(\.name), ["w[1/3]", "w[2/3]", "w[3/3]"])
        XCTAssertTrue(p.images.allSatisfy { $0.texels.count <= 48 << 10 })
        XCTAssertEqual(p.steps.count, 4, "three pieces, then one reduction")
        // [M, Np, K, NBp, …, n0, ldY]: blocks 13 + 13 + 12 of 38; the last piece ends at N = 150, not 152.
        XCTAssertEqual(p.steps[0..<3].indices.map { push(p, $0)[1] }, [52, 52, 46])
        XCTAssertEqual(p.steps[0..<3].indices.map { push(p, $0)[3] }, [13, 13, 12])
        XCTAssertEqual(p.steps[0..<3].indices.map { Array(push(p, $0).suffix(2)) }, [[0, 150], [52, 150], [104, 150]])
        let partial = p.steps[0].bindings[2]
        XCTAssertTrue(p.steps[0..<3].allSatisfy { $0.bindings[2] == partial }, "one partial-sum buffer")
        XCTAssertEqual(p.kernels[p.steps[3].kernel].name.prefix(13), "splitk_reduce")
        XCTAssertTrue(p.splits[0].summary.contains("fc: weight 'w'"), p.splits[0].summary)
    }

    func testTiledGemmPiecesAreWholeColumnTiles() throws {
        let p = try lower(gemmGraph(m: 100, k: 300, n: 150), limit: 96 << 10)
        XCTAssertEqual(p.splits.first?.pieces, 3)
        // 16 texel blocks (64 columns) per tile of the 4 × 4 register tile.
        let columns = p.steps.filter { p.kernels[$0.kernel].name.hasPrefix("gemm_tiled") }.indices.map { push(p, $0)[1] }
        XCTAssertEqual(columns, [64, 64, 22])
    }

    func testFp16PiecesAreSizedInHalfTexels() throws {
        let b = gemmGraph(m: 3, k: 200, n: 150)
        let p32 = try lower(b, .fp32, limit: 48 << 10), p16 = try lower(b, .fp16, limit: 48 << 10)
        XCTAssertGreaterThan(p32.splits.first?.pieces ?? 0, p16.splits.first?.pieces ?? 0)
        XCTAssertTrue(p16.images.allSatisfy { $0.texels.count <= 48 << 10 })
    }

    func testGatherTablePiecesCarryTheirRows() throws {
        var b = GraphBuilder()
        b.input("ids", [4], dtype: .int64)
        b.constant("table", [331, 13])
        b.node("Gather", ["table", "ids"], "y", [4, 13], name: "embed")
        b.outputs = ["y"]
        let p = try lower(b, limit: 8 << 10)
        let split = try XCTUnwrap(p.splits.first)
        XCTAssertEqual(split.axis, .rows)
        XCTAssertEqual(p.steps.count, split.pieces)
        var next: UInt32 = 0
        for step in p.steps.indices {
            let fields = push(p, step)  // count indexCount inner axisDim log2W log2H rowBase rowCount
            XCTAssertEqual(fields[6], next, "pieces cover the rows in order")
            next += fields[7]
        }
        XCTAssertEqual(next, 331)
    }

    func testConvPiecesCarryTheirChannels() throws {
        var b = GraphBuilder()
        b.input("x", [1, 32, 9, 9])
        b.constant("w", [38, 32, 3, 3])
        b.node("Conv", ["x", "w"], "y", [1, 38, 9, 9], name: "conv", ["pads": .ints([1, 1, 1, 1])])
        b.outputs = ["y"]
        let p = try lower(b, limit: 20 << 10)
        let split = try XCTUnwrap(p.splits.first)
        XCTAssertEqual(split.axis, .outputChannels)
        let convSteps = p.steps.indices.filter { p.kernels[p.steps[$0].kernel].name.hasPrefix("conv2d_igemm") }
        XCTAssertEqual(convSteps.count, split.pieces)
        // OC (the piece's), then ocOffset and OCtotal last.
        XCTAssertEqual(convSteps.map { push(p, $0)[4] }.reduce(0, +), 38)
        XCTAssertEqual(convSteps.map { push(p, $0)[21] }, [0, 12, 24, 36])
        XCTAssertTrue(convSteps.allSatisfy { push(p, $0)[22] == 38 })
    }

    func testAPieceThatCannotFitNamesTheNodeAndWeight() throws {
        // One column block of K = 5000 rows is 5001 texels: 80 KiB in fp32.
        let error = compileError { _ = try self.lower(self.gemmGraph(m: 2, k: 5000, n: 8), limit: 16 << 10) }
        XCTAssertEqual(error?.node, "fc")
        XCTAssertTrue(error?.message.contains("'w'") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("maxImageBytes") ?? false, "\(String(describing: error))")
    }

    func testGroupedConvIsCutIntoWholeGroups() throws {
        var b = GraphBuilder()
        b.input("x", [1, 64, 8, 8])
        b.constant("w", [64, 8, 3, 3])
        b.node("Conv", ["x", "w"], "y", [1, 64, 6, 6], name: "grouped", ["group": .int(8)])
        b.outputs = ["y"]
        // One group: 2 blocks × (8 × 9 + 1) texels = 146 → a 256-texel image, 4 KiB in fp32.
        let p = try lower(b, limit: 8 << 10)
        let split = try XCTUnwrap(p.splits.first)
        XCTAssertEqual(split.axis, .groups)
        XCTAssertEqual(split.pieces, 4)
        XCTAssertEqual(p.steps.indices.map { push(p, $0)[20] }, [0, 2, 4, 6], "groupOffset")
        XCTAssertTrue(p.steps.indices.allSatisfy { push(p, $0)[3] == 64 && push(p, $0)[9] == 4 }, "OC whole, OCB the piece's")
        let error = compileError { _ = try self.lower(b, limit: 2 << 10) }
        XCTAssertEqual(error?.node, "grouped")
        XCTAssertTrue(error?.message.contains("'w'") ?? false, "\(String(describing: error))")
    }

    func testColumnPiecePackingIsASliceOfTheWholePacking() {
        let (k, n) = (5, 11)
        let b = (0..<(k * n)).map { Float($0) }, bias = (0..<n).map { Float(100 + $0) }
        for transB in [false, true] {
            let whole = WeightPacking.gemm(b: b, transB: transB, geometry: .init(k: k, n: n), alpha: 2, bias: bias, beta: 3)
            let piece = WeightPacking.gemm(b: b, transB: transB, geometry: .init(k: k, n: 7), alpha: 2, bias: bias,
                                           beta: 3, columnOffset: 4, totalColumns: n)
            for kk in 0..<k {
                for c in 0..<7 {
                    let (t, lane) = WeightPacking.GemmGeometry(k: k, n: 7).texel(k: kk, n: c)
                    let (tw, lw) = WeightPacking.GemmGeometry(k: k, n: n).texel(k: kk, n: 4 + c)
                    XCTAssertEqual(piece[t * 4 + lane], whole[tw * 4 + lw])
                }
            }
            for c in 0..<7 {
                let (t, lane) = WeightPacking.GemmGeometry(k: k, n: 7).biasTexel(n: c)
                XCTAssertEqual(piece[t * 4 + lane], 3 * bias[4 + c])
            }
        }
    }
}
