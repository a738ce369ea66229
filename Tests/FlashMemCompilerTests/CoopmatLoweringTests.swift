// Tensor cores (gemm_cm.comp and matmul_cm.comp, VK_NV_cooperative_matrix): the selection rule per shape, what
// the lowering emits with cooperative matrices allowed (kernel, tile, dispatch grid, split over K, column pieces,
// the declared feature) and that nothing changes without them, how `--tensor-cores auto|on|off` resolves per target and
// precision, and that every variant of the kernel passes spirv-val. The kernel's numbers can only be checked on
// a device with the units (Benchmarks/coopmat-bench.sh); lavapipe has none.

import FMBFormat
import Foundation
import XCTest
@testable import FlashMemCompiler
import TestSupport

final class CoopmatLoweringTests: XCTestCase {
    nonisolated(unsafe) static var sharedCompiler: ShaderCompiler?

    /// `tile`: the tensor-core tile of every product (`fmc compile --coopmat-tile`), which also takes products
    /// below the rule's `coopmatMinimumFlops`: the tests of what the lowering emits use small ones.
    private func lower(_ b: GraphBuilder, cooperativeMatrix: Bool, products: Bool = false, precision: Precision = .fp16,
                       limit: Int? = nil, tile: CoopmatTile? = nil) throws -> LoweredProgram {
        if Self.sharedCompiler == nil { Self.sharedCompiler = try ShaderCompiler() }
        return try Lowering.lower(b.graph(), precision: precision, maxImageBytes: limit,
                                  cooperativeMatrix: cooperativeMatrix, cooperativeMatrixProducts: products,
                                  coopmatTile: tile, compiler: Self.sharedCompiler!)
    }

    private func push(_ p: LoweredProgram, _ step: Int) -> [UInt32] {
        let bytes = p.steps[step].pushConstants
        return stride(from: 0, to: bytes.count, by: 4).map {
            UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24
        }
    }

    private func gemmGraph(m: Int, k: Int, n: Int, relu: Bool = false) -> GraphBuilder {
        var b = GraphBuilder()
        b.input("a", [m, k])
        b.constant("w", [k, n])
        b.constant("c", [n])
        b.node("Gemm", ["a", "w", "c"], relu ? "p" : "y", [m, n], name: "fc")
        if relu {
            b.node("Relu", ["p"], "y", [m, n], name: "relu")
        }
        b.outputs = ["y"]
        return b
    }

    // MARK: - Selection rule

    func testTheRulePicksLargeTilesForAFullWaveSmallOnesOtherwiseAndNoneForThinProducts() {
        // 32 × 16 tiles of 128 × 256: two waves.
        XCTAssertEqual(Lowering.coopmatTile(m: 4096, k: 4096, n: 4096), .huge)
        XCTAssertEqual(Lowering.coopmatTile(m: 2048, k: 512, n: 4096), .large, "8 × 16 = 128 huge tiles, 256 large")
        XCTAssertEqual(Lowering.coopmatTile(m: 512, k: 2560, n: 10240), .large, "160 huge tiles (measured slower)")
        // GPT-Neo-2.7B at 128 tokens: lm_head has 393 large tiles; the MLP's 20 or 80 would not fill the device.
        XCTAssertEqual(Lowering.coopmatTile(m: 128, k: 2560, n: 50257), .large)
        XCTAssertEqual(Lowering.coopmatTile(m: 128, k: 2560, n: 10240), .small)
        XCTAssertEqual(Lowering.coopmatTile(m: 128, k: 10240, n: 2560), .small)
        XCTAssertEqual(Lowering.coopmatTile(m: 197, k: 768, n: 3072), .small)
        // Below the minimum in any dimension: the plain kernels.
        XCTAssertNil(Lowering.coopmatTile(m: 1, k: 4096, n: 4096))
        XCTAssertNil(Lowering.coopmatTile(m: 15, k: 4096, n: 4096))
        XCTAssertNil(Lowering.coopmatTile(m: 4096, k: 31, n: 4096))
        XCTAssertNil(Lowering.coopmatTile(m: 4096, k: 4096, n: 31))
        // Below 200 MFLOP: the plain kernels (GPT-Neo-125M's attention projection, MiniLM's), above: tensor cores.
        XCTAssertNil(Lowering.coopmatTile(m: 16, k: 32, n: 32))
        XCTAssertNil(Lowering.coopmatTile(m: 128, k: 768, n: 768))
        XCTAssertNil(Lowering.coopmatTile(m: 128, k: 384, n: 384))
        XCTAssertEqual(Lowering.coopmatTile(m: 300, k: 555, n: 777), .small)
        XCTAssertEqual(Lowering.coopmatTile(m: 128, k: 768, n: 3072), .small)
    }

    func testTileSharedMemoryFitsEveryTargetAndMatchesTheShaderLayout() {
        for tile in [CoopmatTile.huge, .large, .small] {
            // As[BM][BK + 8] + Bs[BK][BN + 8] halves; one 16 × 16 fp32 staging area per subgroup, inside the larger
            // of the two where it fits.
            let (a, b) = (tile.bm * (tile.bk + 8) * 2, tile.bk * (tile.bn + 8) * 2)
            let staging = tile.wm * tile.wn * 1024
            XCTAssertEqual(tile.sharedMemoryBytes, a + b + (staging <= max(a, b) ? 0 : staging), "\(tile)")
            XCTAssertLessThanOrEqual(tile.sharedMemoryBytes, 48 << 10, "\(tile): the H100's and H200's 48 KiB")
            XCTAssertNil(tile.invalidReason, "\(tile)")
            XCTAssertEqual(tile.bm % (16 * tile.wm), 0)
            XCTAssertEqual(tile.bn % (16 * tile.wn), 0)
        }
    }

    func testTileTextParsesAndInvalidTilesAreRefusedWithTheReason() throws {
        let tile = try CoopmatTile.parse("128x64/2x2/32/db").get()
        XCTAssertEqual(tile, CoopmatTile(bm: 128, bn: 64, wm: 2, wn: 2, bk: 32, doubleBuffered: true))
        XCTAssertEqual(tile.description, "128x64/2x2/32/db")
        XCTAssertEqual(tile.defines["CM_BK"], "32")
        XCTAssertEqual(tile.defines["CM_DB"], "1")
        XCTAssertEqual(try CoopmatTile.parse("64x64/2x2").get(), .small)
        XCTAssertEqual(try CoopmatTile.parse("128x128/2x4/64/direct").get(), .large)
        XCTAssertEqual(CoopmatTile.large.defines["CM_DIRECT"], "1")
        XCTAssertEqual(CoopmatTile.huge.defines["CM_DIRECT"], "0")
        func reason(_ text: String) -> String? {
            if case .failure(let e) = CoopmatTile.parse(text) { return e.reason }
            return nil
        }
        XCTAssertEqual(reason("128x128"), "expected BMxBN/WMxWN[/BK][/db][/direct]")
        XCTAssertEqual(reason("128x128/2x4/32/packed"), "unknown part 'packed'")
        XCTAssertEqual(reason("32x32/1x1/32"), nil)
        XCTAssertEqual(reason("16x64/1x4/32"), "a slab (BM × BK and BK × BN) must split evenly into runs of 8 over 128 invocations")
        XCTAssertEqual(reason("128x128/2x4/fast"), "unknown part 'fast'")
        XCTAssertEqual(reason("128x128/2x4/48"), "BK must be 32 or 64")
        XCTAssertEqual(reason("96x128/4x4"), "each subgroup's part (BM / WM × BN / WN) must be whole 16 × 16 fragments")
        // Two buffers of 128 × 72 and 64 × 136 halves: 69 KiB, over 48 KiB.
        XCTAssertTrue(reason("128x128/2x4/64/db")?.contains("shared memory") ?? false)
    }

    // MARK: - Lowering

    func testWithoutCooperativeMatricesTheProgramIsUnchanged() throws {
        let b = gemmGraph(m: 256, k: 256, n: 512)
        let plain = try lower(b, cooperativeMatrix: false)
        XCTAssertTrue(plain.kernels.allSatisfy { $0.features.isEmpty }, "\(plain.kernels.map(\.name))")
        XCTAssertTrue(plain.kernels[plain.steps[0].kernel].name.hasPrefix("gemm_tiled<"))
        // The same halves either way, 4 per rgba16f texel for the plain kernel, 8 per half8 texel for the
        // tensor-core kernel (N = 512: rows of an even number of blocks, so no padding between them).
        let tensor = try lower(b, cooperativeMatrix: true, tile: .small)
        XCTAssertEqual(plain.images.map(\.format), [.rgba16f])
        XCTAssertEqual(tensor.images.map(\.format), [.half8])
        let values = (256 + 1) * 512
        XCTAssertEqual((0..<values).map { ImageLayout.component($0, of: plain.images[0]) },
                       (0..<values).map { ImageLayout.component($0, of: tensor.images[0]) })
    }

    /// A half8 image's rows are whole texels: with an odd number of blocks (N = 300, 75 blocks) each row of B and
    /// the bias row end with 4 zeros, so gemm_cm reads row k at texel k · 38.
    func testHalf8RowsOfAnOddNumberOfBlocksArePaddedToWholeTexels() throws {
        let (m, k, n) = (64, 64, 300)
        let b = gemmGraph(m: m, k: k, n: n)
        let w = try XCTUnwrap(b.initializers["w"]?.floats()), c = try XCTUnwrap(b.initializers["c"]?.floats())
        let p = try lower(b, cooperativeMatrix: true, tile: .small)
        XCTAssertTrue(p.kernels[p.steps[1].kernel].name.hasPrefix("gemm_cm<"))
        let image = p.images[0]
        XCTAssertEqual(image.format, .half8)
        let g = WeightPacking.GemmGeometry(k: k, n: n, rowAlignment: 2)
        XCTAssertEqual(g.rowBlocks, 76)
        XCTAssertGreaterThanOrEqual(image.width * image.height * image.layers * 8, g.texels * 4)
        for kk in [0, 1, 37, k - 1] {
            for col in [0, 5, 298, 299] {
                let (t, lane) = g.texel(k: kk, n: col)
                XCTAssertEqual(ImageLayout.component(4 * t + lane, of: image), Float(Float16(w[kk * n + col])))
            }
            for pad in 300..<304 {
                XCTAssertEqual(ImageLayout.component(kk * 304 + pad, of: image), 0, "row \(kk) padding")
            }
        }
        let (bt, bl) = g.biasTexel(n: 299)
        XCTAssertEqual(bt, k * 76 + 74)
        XCTAssertEqual(ImageLayout.component(4 * bt + bl, of: image), Float(Float16(c[299])))
        // The push constants still carry NB = 75: the kernel derives the row of 38 texels from it.
        XCTAssertEqual(push(p, 1)[3], 75)
    }

    func testALargeGemmConvertsAOnceRunsOnLargeTilesWithoutASplitAndDeclaresTheFeature() throws {
        let p = try lower(gemmGraph(m: 2048, k: 256, n: 2048, relu: true), cooperativeMatrix: true)
        XCTAssertEqual(p.steps.count, 2, "A to halves once, then the product: no split over K, no reduction")
        XCTAssertEqual(p.kernels[p.steps[0].kernel].name, "to_half<>[256]")
        XCTAssertEqual(push(p, 0), [2048, 256, 256, 32], "M K strideM runsPerRow")
        let kernel = p.kernels[p.steps[1].kernel]
        XCTAssertEqual(kernel.name, "gemm_cm<CM_BK=64,CM_BM=128,CM_BN=128,CM_DB=0,CM_DIRECT=1,CM_HALF_A=1,CM_VECTOR_A=0,CM_WM=2,CM_WN=4,"
                       + "WEIGHT_FORMAT=rgba32ui>[1,0]", "the fused relu is spec constant 0")
        XCTAssertEqual(kernel.features, .cooperativeMatrixNV)
        XCTAssertEqual(kernel.workgroupSize, [256, 1, 1])
        XCTAssertEqual(kernel.sharedMemoryBytes, CoopmatTile.large.sharedMemoryBytes)
        // 512 texel blocks / 32 per tile, 2048 rows / 128 per tile.
        XCTAssertEqual(p.steps[1].groups, [16, 16, 1])
        let pc = push(p, 1)
        XCTAssertEqual(Array(pc[0..<6]), [2048, 2048, 256, 512, 256, 1], "M N K NB strideM (halves) strideK")
        XCTAssertEqual(Array(pc[6..<8]), [256, 1], "kPerSlice slices")
        // The product reads what to_half wrote.
        XCTAssertEqual(p.steps[1].bindings[0], p.steps[0].bindings[1])
    }

    /// Rows of halves are K rounded up to 8 (K = 100: 13 runs, a row stride of 104); a product of one column tile
    /// converts A itself (no extra step).
    /// LayerNorm → product: the normalization writes its rows as halves for the product (no fp32 output, no
    /// to_half step); not where something else reads its output too.
    func testALayerNormOnlyAProductReadsWritesHalvesForIt() throws {
        func graph(alsoOutput: Bool) -> GraphBuilder {
            var b = GraphBuilder()
            b.input("x", [256, 500])
            b.constant("gamma", [500])
            b.constant("beta", [500])
            b.node("LayerNormalization", ["x", "gamma", "beta"], "ln", [256, 500], name: "norm", ["axis": .int(-1)])
            b.constant("w", [500, 1024])
            b.node("MatMul", ["ln", "w"], "y", [256, 1024], name: "fc")
            b.outputs = alsoOutput ? ["y", "ln"] : ["y"]
            return b
        }
        let p = try lower(graph(alsoOutput: false), cooperativeMatrix: true, tile: .small)
        XCTAssertEqual(p.steps.map { p.kernels[$0.kernel].name.prefix(while: { $0 != "<" }) },
                       ["normalize", "gemm_cm", "splitk_reduce"])
        XCTAssertEqual(p.kernels[p.steps[0].kernel].name, "normalize<NORM_HALF_OUT=1>[64,1,0]")
        XCTAssertTrue(p.kernels[p.steps[1].kernel].name.contains("CM_HALF_A=1"))
        XCTAssertEqual(p.steps[0].bindings[3], p.steps[1].bindings[0], "the product reads the rows of halves")
        guard case .tensor(let halves) = p.steps[1].bindings[0] else { return XCTFail("A: \(p.steps[1].bindings[0])") }
        XCTAssertEqual(p.tensors[halves]?.byteSize, 256 * 504 * 2, "K 500 → 504 halves")
        XCTAssertNil(p.tensors["ln"], "no fp32 output")
        XCTAssertEqual(p.kernels.count, 3, "the fp32 normalize and to_half kernels are gone")
        XCTAssertEqual(push(p, 1)[4], 504, "strideM in halves")

        let kept = try lower(graph(alsoOutput: true), cooperativeMatrix: true, tile: .small)
        XCTAssertEqual(kept.steps.map { kept.kernels[$0.kernel].name.prefix(while: { $0 != "<" }) },
                       ["normalize", "to_half", "gemm_cm", "splitk_reduce"], "a model output needs the fp32 rows")
        XCTAssertEqual(kept.kernels[kept.steps[0].kernel].name, "normalize<>[64,1,0]")
    }

    func testHalfRowsRoundKUpTo8AndOneColumnTileConvertsInPlace() throws {
        let p = try lower(gemmGraph(m: 256, k: 100, n: 256), cooperativeMatrix: true, tile: .small)
        XCTAssertEqual(p.kernels[p.steps[0].kernel].name, "to_half<>[256]")
        XCTAssertEqual(push(p, 0), [256, 100, 100, 13])
        XCTAssertEqual(push(p, 1)[4], 104, "strideM in halves")
        let one = try lower(gemmGraph(m: 256, k: 128, n: 64), cooperativeMatrix: true, tile: .small)
        XCTAssertEqual(one.steps.count, 1)
        XCTAssertTrue(one.kernels[one.steps[0].kernel].name.contains("CM_HALF_A=0,CM_VECTOR_A=1"),
                      one.kernels[one.steps[0].kernel].name)
    }

    func testFewTilesSplitKInSlabMultiplesAndReduceOnce() throws {
        // 64 × 256 output → 1 × 4 small tiles: far below a wave, so K is split.
        let k = 8192
        let p = try lower(gemmGraph(m: 64, k: k, n: 256, relu: true), cooperativeMatrix: true)
        XCTAssertEqual(p.steps.count, 3, "to_half, the product, the reduction")
        let product = p.kernels[p.steps[1].kernel]
        XCTAssertTrue(product.name.hasPrefix("gemm_cm<CM_BK=32,CM_BM=64,CM_BN=64,CM_DB=0,CM_DIRECT=0,CM_HALF_A=1,CM_VECTOR_A=0,CM_WM=2,CM_WN=2,"), product.name)
        XCTAssertTrue(product.name.hasSuffix("[0,0]"), "partial sums carry no activation: \(product.name)")
        XCTAssertTrue(p.kernels[p.steps[2].kernel].name.hasPrefix("splitk_reduce<>[256,1]"),
                      "the reduction applies the relu")
        let pc = push(p, 1)
        let kPerSlice = Int(pc[6]), slices = Int(pc[7])
        XCTAssertGreaterThan(slices, 1)
        XCTAssertEqual(kPerSlice % CoopmatTile.small.bk, 0)
        XCTAssertGreaterThanOrEqual(kPerSlice * slices, k)
        XCTAssertLessThan(kPerSlice * (slices - 1), k, "no empty slice")
        XCTAssertEqual(p.steps[1].groups, [4, 1, UInt32(slices)])
    }

    func testColumnPiecesKeepWholeTensorCoreTiles() throws {
        // A 64 × 1000 fp16 weight in pieces of ≤ 64 KiB: each piece a multiple of the 64-column tile (16 blocks).
        let p = try lower(gemmGraph(m: 300, k: 64, n: 1000), cooperativeMatrix: true, limit: 64 << 10, tile: .small)
        let split = try XCTUnwrap(p.splits.first)
        XCTAssertGreaterThan(split.pieces, 1)
        var columns = 0
        XCTAssertEqual(p.kernels[p.steps[0].kernel].name, "to_half<>[256]", "one conversion for every piece")
        for step in 1...split.pieces {
            XCTAssertTrue(p.kernels[p.steps[step].kernel].name.hasPrefix("gemm_cm<"))
            let pc = push(p, step)
            XCTAssertEqual(Int(pc[13]), columns, "piece \(step): n0")
            XCTAssertEqual(pc[14], 1000, "piece \(step): ldY")
            if step < split.pieces {
                XCTAssertEqual(Int(pc[1]) % 64, 0, "piece \(step) has \(pc[1]) columns")
            }
            columns += Int(pc[1])
        }
        XCTAssertEqual(columns, 1000)
    }

    func testThinProductsStayOnThePlainKernels() throws {
        let p = try lower(gemmGraph(m: 8, k: 512, n: 512), cooperativeMatrix: true)
        XCTAssertTrue(p.kernels.allSatisfy { $0.features.isEmpty }, "\(p.kernels.map(\.name))")
        // Small products too (67 MFLOP), unless a tile is asked for.
        let small = try lower(gemmGraph(m: 256, k: 256, n: 512), cooperativeMatrix: true)
        XCTAssertTrue(small.kernels.allSatisfy { $0.features.isEmpty }, "\(small.kernels.map(\.name))")
        XCTAssertTrue(small.kernels[small.steps[0].kernel].name.hasPrefix("gemm_tiled<"))
        XCTAssertEqual(small.images.map(\.format), [.rgba16f])
        let asked = try lower(gemmGraph(m: 256, k: 256, n: 512), cooperativeMatrix: true, tile: .small)
        XCTAssertEqual(asked.images.map(\.format), [.half8])
    }

    // MARK: - Products of two activations (matmul_cm.comp)

    /// Q [2, 4, L, 32] × Kᵀ (K given as [2, 4, L, 32], transposed by a Transpose the matmul reads in place).
    private func scoresGraph(l: Int) -> GraphBuilder {
        var b = GraphBuilder()
        b.input("q", [2, 4, l, 32])
        b.input("k", [2, 4, l, 32])
        b.node("Transpose", ["k"], "kt", [2, 4, 32, l], ["perm": .ints([0, 1, 3, 2])])
        b.node("MatMul", ["q", "kt"], "s", [2, 4, l, l], name: "scores")
        b.outputs = ["s"]
        return b
    }

    func testProductsOfTwoActivationsRunOnTensorCoresWhereTheyMayAndAreLargeEnough() throws {
        // Only when asked for (`--tensor-cores on`): without, the plain kernel even with cooperative matrices.
        let unasked = try lower(scoresGraph(l: 100), cooperativeMatrix: true)
        XCTAssertTrue(unasked.kernels.allSatisfy { $0.features.isEmpty }, "\(unasked.kernels.map(\.name))")
        let p = try lower(scoresGraph(l: 100), cooperativeMatrix: true, products: true)
        let step = try XCTUnwrap(p.steps.first { p.kernels[$0.kernel].name.hasPrefix("matmul") })
        let kernel = p.kernels[step.kernel]
        XCTAssertEqual(kernel.name, "matmul_cm<>[0,0]")
        XCTAssertEqual(kernel.features, .cooperativeMatrixNV)
        XCTAssertEqual(kernel.workgroupSize, [128, 1, 1])
        XCTAssertEqual(step.groups, [2, 2, 8], "64 × 64 tiles of the 100 × 100 scores, 8 batches")
        // The same push block as matmul.comp: M N K, then the batch shape.
        let plain = try lower(scoresGraph(l: 100), cooperativeMatrix: false)
        let plainStep = try XCTUnwrap(plain.steps.first { plain.kernels[$0.kernel].name.hasPrefix("matmul") })
        XCTAssertTrue(plain.kernels[plainStep.kernel].name.hasPrefix("matmul<"))
        XCTAssertEqual(step.pushConstants, plainStep.pushConstants)
        XCTAssertTrue(plain.kernels.allSatisfy { $0.features.isEmpty })
        // Depth 32 is the smallest the tiles take; below it, the plain kernel.
        var thin = GraphBuilder()
        thin.input("a", [64, 16])
        thin.input("b", [16, 64])
        thin.node("MatMul", ["a", "b"], "y", [64, 64])
        thin.outputs = ["y"]
        let t = try lower(thin, cooperativeMatrix: true, products: true)
        XCTAssertTrue(t.kernels.allSatisfy { $0.features.isEmpty }, "\(t.kernels.map(\.name))")
    }

    // MARK: - Options

    func testTensorCoresResolvePerTargetAndPrecision() throws {
        var options = CompileOptions()
        options.precision = .fp16
        XCTAssertTrue(try options.usesCooperativeMatrix(file: "m.onnx"), "auto, h200, fp16")
        options.costModel = .h100
        XCTAssertTrue(try options.usesCooperativeMatrix(file: "m.onnx"), "auto, h100 (the tensor-core figures' card), fp16")
        options.costModel = .lavapipe
        XCTAssertFalse(try options.usesCooperativeMatrix(file: "m.onnx"), "auto, lavapipe")
        options.tensorCores = .on
        XCTAssertTrue(try options.usesCooperativeMatrix(file: "m.onnx"), "on, whatever the target")
        options.tensorCores = .off
        options.costModel = .h200
        XCTAssertFalse(try options.usesCooperativeMatrix(file: "m.onnx"), "off")
        options.tensorCores = .auto
        options.precision = .fp32
        XCTAssertFalse(try options.usesCooperativeMatrix(file: "m.onnx"), "auto keeps fp32 bundles exact")
        options.tensorCores = .on
        XCTAssertThrowsError(try options.usesCooperativeMatrix(file: "m.onnx")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("m.onnx") && text.contains("--precision fp16"), text)
        }
    }

    /// The plan's estimate of a product on the units: a 4096 × 512 × 2048 product (8.6 GFLOP) is bounded by the units'
    /// rate (FLOPs / 170 TFLOP/s + the launch, not / 8 TFLOP/s); 128 × 1024 × 1024 (0.27 GFLOP, 1.6 µs at that
    /// rate) by its chain of K slabs (1024 × 28 ns; the plain kernels' estimate is FLOPs / 8 TFLOP/s).
    func testTensorCoreStepsAreEstimatedAtTheUnitsRateOrTheirChainOfSlabs() throws {
        var options = CompileOptions()
        options.precision = .fp16
        options.costModel = .h100
        func product(m: Int, k: Int, n: Int, _ cooperativeMatrix: Bool) throws -> (work: StepWork, seconds: Double) {
            let p = try lower(gemmGraph(m: m, k: k, n: n), cooperativeMatrix: cooperativeMatrix)
            let schedule = try Compiler.assemble(p, name: "fc", options: options).bundle.schedule
            let (step, seconds) = try XCTUnwrap(zip(p.steps, schedule.stepSeconds).first { p.kernels[$0.0.kernel].name.hasPrefix("gemm") })
            return (step.work, seconds)
        }
        let h100 = CostModel.h100
        let large = try product(m: 4096, k: 512, n: 2048, true)
        XCTAssertEqual(large.work, .cooperativeMatrix(kPerWorkgroup: 512, slices: 1))
        XCTAssertEqual(large.seconds, 2.0 * 4096 * 512 * 2048 / 170e12 + h100.launchSeconds, accuracy: 1e-9)
        let few = try product(m: 128, k: 1024, n: 1024, true)
        guard case .cooperativeMatrix(let kPerWorkgroup, let slices) = few.work else { return XCTFail("\(few.work)") }
        XCTAssertEqual(few.seconds, Double(kPerWorkgroup) * 28e-9 + h100.launchSeconds
                       + (slices > 1 ? h100.cooperativeMatrixSplitSeconds : 0), accuracy: 1e-9)
        XCTAssertEqual(kPerWorkgroup * slices, 1024)
        let plain = try product(m: 128, k: 1024, n: 1024, false)
        XCTAssertEqual(plain.work, .plain)
        XCTAssertEqual(plain.seconds, 2.0 * 128 * 1024 * 1024 / 8e12 + h100.launchSeconds, accuracy: 1e-9)
    }

    /// CostModel.seconds for each kind of work: the plain rate, the attention rate, the units' rate, their chain of
    /// K and a split product's partial sums; a device without the units' figures estimates products at the plain rate.
    func testCostModelEstimatesEachKindOfWork() {
        var model = CostModel(name: "t", flopsPerSecond: 1e12, memoryBandwidth: 1e11, transferBandwidth: 1e10,
                              launchSeconds: 1e-6)
        XCTAssertEqual(model.seconds(flops: 2e6, bytes: 1e5), 2e-6 + 1e-6, accuracy: 1e-12)
        XCTAssertEqual(model.seconds(flops: 2e6, bytes: 1e6), 1e-5 + 1e-6, accuracy: 1e-12, "bytes bound")
        XCTAssertEqual(model.seconds(flops: 2e6, bytes: 0, work: .attention), 3e-6, accuracy: 1e-12)
        XCTAssertEqual(model.seconds(flops: 2e6, bytes: 0, work: .cooperativeMatrix(kPerWorkgroup: 512, slices: 2)),
                       3e-6, accuracy: 1e-12, "no units measured: the plain rate")
        model.attentionFlopsPerSecond = 4e11
        model.cooperativeMatrixFlopsPerSecond = 1e13
        model.cooperativeMatrixSecondsPerK = 1e-9
        model.cooperativeMatrixSplitSeconds = 5e-6
        XCTAssertEqual(model.seconds(flops: 2e6, bytes: 0, work: .attention), 5e-6 + 1e-6, accuracy: 1e-12)
        XCTAssertEqual(model.seconds(flops: 2e8, bytes: 0, work: .cooperativeMatrix(kPerWorkgroup: 512, slices: 1)),
                       2e-5 + 1e-6, accuracy: 1e-12, "the units' rate")
        XCTAssertEqual(model.seconds(flops: 2e6, bytes: 0, work: .cooperativeMatrix(kPerWorkgroup: 512, slices: 1)),
                       5.12e-7 + 1e-6, accuracy: 1e-12, "the chain of K")
        XCTAssertEqual(model.seconds(flops: 2e6, bytes: 0, work: .cooperativeMatrix(kPerWorkgroup: 512, slices: 3)),
                       5.12e-7 + 1e-6 + 5e-6, accuracy: 1e-12, "split over K")
    }

    func testTheAssembledBundleDeclaresTheFeature() throws {
        let p = try lower(gemmGraph(m: 256, k: 128, n: 256), cooperativeMatrix: true, tile: .small)
        var options = CompileOptions()
        options.precision = .fp16
        let compiled = try Compiler.assemble(p, name: "coopmat", options: options)
        XCTAssertEqual(compiled.bundle.meta.requirements.features, .cooperativeMatrixNV)
        XCTAssertEqual(compiled.report.cooperativeMatrixSteps, 1)
        let file = try BundleWriter.serialize(compiled.bundle, payload: compiled.payload)
        let parsed = try file.withUnsafeBytes { try BundleReader.parse(bytes: $0) }
        XCTAssertEqual(parsed.layout.minor, 5, "a half8 image")
        XCTAssertEqual(parsed.bundle.meta.requirements.features, .cooperativeMatrixNV)
        XCTAssertEqual(parsed.bundle.images.map(\.format), [.half8])

        let plain = try Compiler.assemble(try lower(gemmGraph(m: 256, k: 128, n: 256), cooperativeMatrix: false),
                                          name: "plain", options: options)
        XCTAssertEqual(plain.bundle.meta.requirements.features, [])
        XCTAssertEqual(plain.report.cooperativeMatrixSteps, 0)
    }

    // MARK: - SPIR-V

    /// Every variant the catalog lists (both tiles and the other axis combinations) passes
    /// spirv-val for Vulkan 1.2 and declares the capability the validator maps to the feature.
    func testEveryVariantPassesSpirvVal() throws {
        let tool = ["/usr/bin/spirv-val", "/usr/local/bin/spirv-val"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let tool else {
            throw XCTSkip("spirv-val is not installed (Debian: spirv-tools, which `make setup` installs)")
        }
        let compiler = try ShaderCompiler()
        let variants = KernelCatalog.allVariants().filter {
            [KernelCatalog.gemmCoopmat.file, KernelCatalog.matmulCoopmat.file].contains($0.file)
        }
        XCTAssertEqual(variants.count, 33, "32 of gemm_cm (tiles × CM_HALF_A × CM_DIRECT; its weights are half8 in every "
                       + "precision), 1 of matmul_cm")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("coopmat-spirv-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (i, variant) in variants.enumerated() {
            let words = try compiler.compile(variant.file, defines: variant.defines)
            XCTAssertTrue(words.contains(5357), "\(variant.defines): no CooperativeMatrixNV capability")
            let path = dir.appendingPathComponent("\(i).spv")
            try Data(words.withUnsafeBytes { Array($0) }).write(to: path)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = ["--target-env", "vulkan1.2", path.path]
            let pipe = Pipe()
            process.standardError = pipe
            process.standardOutput = pipe
            try process.run()
            process.waitUntilExit()
            let message = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertEqual(process.terminationStatus, 0, "\(variant.defines): \(message)")
        }
    }
}
