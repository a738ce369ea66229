// Lowering of small hand-built graphs: which kernels, grids, bindings, push constants, views, constants
// and images come out, and which inputs are refused with an error naming the node and op.

import FMBFormat
import XCTest
@testable import FlashMemCompiler
import TestSupport

final class LoweringTests: XCTestCase {
    nonisolated(unsafe) static var sharedCompiler: ShaderCompiler?

    private func lower(_ b: GraphBuilder, _ precision: Precision = .fp32) throws -> LoweredProgram {
        if Self.sharedCompiler == nil { Self.sharedCompiler = try ShaderCompiler() }
        return try Lowering.lower(b.graph(), precision: precision, compiler: Self.sharedCompiler!)
    }

    private func kernel(_ p: LoweredProgram, _ step: Int) -> KernelSpec {
        p.kernels[p.steps[step].kernel]
    }

    private func push(_ p: LoweredProgram, _ step: Int) -> [UInt32] {
        let bytes = p.steps[step].pushConstants
        return stride(from: 0, to: bytes.count, by: 4).map {
            UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24
        }
    }

    // MARK: - Conv

    func testConvWithFusedReluAndBias() throws {
        var b = GraphBuilder()
        b.input("x", [2, 5, 9, 7])
        b.constant("w", [6, 5, 3, 3])
        b.constant("bias", [6])
        b.node("Conv", ["x", "w", "bias"], "c", [2, 6, 5, 4], name: "conv1",
               ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        b.node("Relu", ["c"], "y", [2, 6, 5, 4], name: "relu1")
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1)
        let step = p.steps[0]
        XCTAssertEqual(step.label, "conv1+relu1")
        XCTAssertEqual(step.bindings, [.tensor("x"), .image(0), .tensor("y")])
        let k = kernel(p, 0)
        XCTAssertTrue(k.name.hasPrefix("conv2d_igemm<IG_TM=1,IG_TN=4,"), k.name)
        XCTAssertTrue(k.name.contains("WEIGHT_FORMAT=rgba32f"), k.name)
        XCTAssertEqual(k.specConstants, [1])  // relu
        XCTAssertEqual(k.workgroupSize, [256, 1, 1])
        XCTAssertEqual(k.bindings, [.storageBuffer, .storageImage, .storageBuffer])
        // 2 × 20 pixels and 2 blocks of 4 channels fit one 64 × 64 tile; K = 45 is too shallow to split.
        XCTAssertEqual(step.groups, [1, 1, 1])
        XCTAssertEqual(push(p, 0), [2, 5, 9, 7, 6, 5, 4, 2, 3, 3, 2, 2, 1, 1, 1, 1, 45, 48, 1, 7, 0, 0, 6])  // ocOffset OCtotal
        // Image: 2 blocks × 5 × 9 weight texels + 2 bias texels = 92 → 128 × 1 × 1.
        XCTAssertEqual([p.images[0].width, p.images[0].height, p.images[0].layers], [128, 1, 1])
        XCTAssertEqual(p.images[0].name, "w")
        XCTAssertEqual(p.images[0].format, .rgba32f)
        XCTAssertEqual(p.tensors["x"]?.byteSize, 2 * 5 * 9 * 7 * 4)
        XCTAssertEqual(p.tensors["y"]?.byteSize, 2 * 6 * 5 * 4 * 4)
        XCTAssertNil(p.tensors["c"], "the fused intermediate must not exist")
        XCTAssertEqual(step.flops, 2.0 * 2 * 6 * 20 * 5 * 9)
        XCTAssertEqual(p.inputs.map(\.name), ["x"])
        XCTAssertEqual(p.inputs.first?.shape, [2, 5, 9, 7])
        XCTAssertEqual(p.inputs.first?.elementType, .float32)
        XCTAssertEqual(p.outputs.map(\.name), ["y"])
        // Bias of channel 5 sits in block 1, lane 1, after 90 weight texels.
        let biasValue = b.initializers["bias"]!.floats()[5]
        XCTAssertEqual(ImageLayout.component(4 * 91 + 1, of: p.images[0]), biasValue)
    }

    func testConvGroupedDilatedAutoPadAndConv1d() throws {
        var b = GraphBuilder()
        b.input("x", [1, 6, 10, 10])
        b.constant("w", [9, 2, 3, 3])
        b.node("Conv", ["x", "w"], "y", [1, 9, 10, 10], ["group": .int(3), "auto_pad": .string("SAME_UPPER"),
                                                        "dilations": .ints([1, 1])])
        b.input("s", [1, 4, 50])
        b.constant("w1", [8, 4, 5])
        b.node("Conv", ["s", "w1"], "t", [1, 8, 21], ["strides": .ints([2]), "dilations": .ints([2]),
                                                    "pads": .ints([0, 0])])
        b.outputs = ["y", "t"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 2)
        // Grouped: OCG 3 → 1 block per group, 3 blocks; pads 1 all round.
        let g = push(p, 0)
        XCTAssertEqual(Array(g[0..<10]), [6, 10, 10, 9, 10, 10, 2, 3, 1, 3])
        XCTAssertEqual(Array(g[14..<18]), [1, 1, 1, 1])
        XCTAssertTrue(kernel(p, 0).name.contains("CONV_OCT=1"))
        XCTAssertTrue(kernel(p, 0).name.hasPrefix("conv2d<"), "grouped convolutions use the direct kernel")
        // Conv1d: H = KH = 1, stride / dilation / pads on W.
        let c = push(p, 1)
        XCTAssertEqual(Array(c[0..<17]), [1, 4, 1, 50, 8, 1, 21, 2, 1, 5, 1, 2, 0, 0, 1, 2, 20])
    }

    func testBatchNormFoldsIntoConv() throws {
        var b = GraphBuilder()
        b.input("x", [1, 3, 4, 4])
        b.constant("w", [5, 3, 1, 1])
        b.constant("gamma", [5], [1, 2, 3, 4, 5])
        b.constant("beta", [5], [0.5, 0, -1, 0, 1])
        b.constant("mean", [5], [0, 1, 2, 3, 4])
        b.constant("var", [5], [1, 4, 0.25, 1, 16])
        b.node("Conv", ["x", "w"], "c", [1, 5, 4, 4], name: "conv")
        b.node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], "bn", [1, 5, 4, 4], name: "bn",
               ["epsilon": .float(0)])
        b.node("Relu", ["bn"], "y", [1, 5, 4, 4], name: "relu")
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1)
        XCTAssertEqual(p.steps[0].label, "conv+bn+relu")
        XCTAssertEqual(kernel(p, 0).specConstants.last, 1)
        let w = b.initializers["w"]!.floats()
        let scale: [Float] = [1, 1, 6, 4, 1.25]
        let shift: [Float] = [0.5, -1, -13, -12, -4]  // β − mean · scale
        let geometry = WeightPacking.ConvGeometry(outChannels: 5, inChannelsPerGroup: 3, kernelH: 1, kernelW: 1, groups: 1)
        for oc in 0..<5 {
            for ic in 0..<3 {
                let (t, lane) = geometry.texel(oc: oc, ic: ic, kh: 0, kw: 0)
                XCTAssertEqual(ImageLayout.component(4 * t + lane, of: p.images[0]), w[oc * 3 + ic] * scale[oc], accuracy: 1e-6)
            }
            let (t, lane) = geometry.biasTexel(oc: oc)
            XCTAssertEqual(ImageLayout.component(4 * t + lane, of: p.images[0]), shift[oc], accuracy: 1e-6)
        }
    }

    func testDeepConvOnASmallPlaneSplitsK() throws {
        var b = GraphBuilder()
        b.input("x", [1, 256, 4, 4])
        b.constant("w", [64, 256, 3, 3])
        b.node("Conv", ["x", "w"], "c", [1, 64, 4, 4], name: "conv", ["pads": .ints([1, 1, 1, 1])])
        b.node("Relu", ["c"], "y", [1, 64, 4, 4], name: "relu")
        b.outputs = ["y"]
        let p = try lower(b)
        // One 64 × 64 tile for K = 2304: 36 slices of 64 (≥ 4 steps of 16 each), then the reduction.
        XCTAssertEqual(p.steps.count, 2)
        XCTAssertEqual(p.steps[0].groups, [1, 1, 36])
        XCTAssertEqual(Array(push(p, 0)[16..<19]), [2304, 64, 36])
        XCTAssertEqual(kernel(p, 0).specConstants, [0], "the activation moves to the reduction")
        guard case .tensor(let partial) = p.steps[0].bindings[2] else { return XCTFail() }
        XCTAssertEqual(p.tensors[partial]?.byteSize, 36 * 1024 * 4)
        XCTAssertTrue(kernel(p, 1).name.hasPrefix("splitk_reduce"))
        XCTAssertEqual(kernel(p, 1).specConstants, [256, 1])
        XCTAssertEqual(push(p, 1), [1024, 36])
        XCTAssertEqual(p.steps[1].bindings, [.tensor(partial), .tensor("y")])
        XCTAssertEqual(p.steps.map(\.label), ["conv+relu", "conv+relu"])
    }

    func testGemvSplitsK() throws {
        var b = GraphBuilder()
        b.input("x", [1, 512])
        b.constant("w", [512, 100])
        b.node("MatMul", ["x", "w"], "y", [1, 100])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 2)
        XCTAssertEqual(p.steps[0].groups, [1, 1, 32])
        XCTAssertEqual(Array(push(p, 0)[6..<8]), [16, 32])
        XCTAssertEqual(push(p, 1), [100, 32])
    }

    func testManyRowsUseTheTiledGemm() throws {
        var b = GraphBuilder()
        b.input("x", [64, 2048])
        b.constant("w", [2048, 60])
        b.node("MatMul", ["x", "w"], "y", [64, 60])
        b.input("z", [2100, 8])
        b.constant("v", [8, 1100])
        b.node("MatMul", ["z", "v"], "u", [2100, 1100])
        b.outputs = ["y", "u"]
        let p = try lower(b)
        // One 64 × 64 tile for K = 2048: 32 slices of 64, then the reduction.
        XCTAssertTrue(kernel(p, 0).name.hasPrefix("gemm_tiled<GT_TM=1,GT_TN=1,"), kernel(p, 0).name)
        XCTAssertEqual(p.steps[0].groups, [1, 1, 32])
        XCTAssertEqual(Array(push(p, 0)[6..<8]), [64, 32])
        XCTAssertTrue(kernel(p, 1).name.hasPrefix("splitk_reduce"))
        // 17 × 9 tiles of 128 × 128 fill a wave: the 8 × 8 register tile, no split.
        XCTAssertTrue(kernel(p, 2).name.hasPrefix("gemm_tiled<GT_TM=2,GT_TN=2,"), kernel(p, 2).name)
        XCTAssertEqual(p.steps[2].groups, [9, 17, 1])
        XCTAssertEqual(p.steps.count, 3)
        XCTAssertEqual(kernel(p, 2).sharedMemoryBytes, 16 * 16 * 4 * 16)
    }

    /// An fp16 export's residual (a float16 activation, held in fp32 in the arena like every float) is the
    /// product's C as an fp32 one is.
    func testAFloat16ResidualIsTheProductsC() throws {
        var b = GraphBuilder()
        b.input("t", [64, 48], dtype: .float16)
        b.input("res", [64, 40], dtype: .float16)
        b.constant("w", [48, 40])
        b.node("MatMul", ["t", "w"], "p", [64, 40])
        b.node("Add", ["res", "p"], "y", [64, 40])
        b.values["p"]?.dtype = .float16
        b.values["y"]?.dtype = .float16
        b.outputs = ["y"]
        let p = try lower(b, .fp16)
        XCTAssertEqual(p.steps.map(\.label), ["p+y"])
        XCTAssertEqual(p.steps[0].bindings[3], .tensor("res"), "the residual is C")
    }

    func testBatchNormWithoutConvUsesItsKernel() throws {
        var b = GraphBuilder()
        b.input("x", [2, 3, 4])
        for name in ["gamma", "beta", "mean", "var"] { b.constant(name, [3], [1, 2, 3]) }
        b.node("BatchNormalization", ["x", "gamma", "beta", "mean", "var"], "y", [2, 3, 4])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1)
        XCTAssertTrue(kernel(p, 0).name.hasPrefix("batchnorm"))
        XCTAssertEqual(push(p, 0), [24, 3, 4])
        guard case .tensor(let params) = p.steps[0].bindings[1] else { return XCTFail() }
        let bytes = try XCTUnwrap(p.tensors[params]?.constant)
        let floats = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(floats.count, 6)
        XCTAssertEqual(floats[1], 2 / (2 + 1e-5).squareRoot(), accuracy: 1e-6)       // scale[1]
        XCTAssertEqual(floats[4], 2 - 2 * floats[1], accuracy: 1e-6)                  // shift[1]
    }

    // MARK: - Gemm / MatMul

    func testGemmTransBWithBiasAlphaBeta() throws {
        var b = GraphBuilder()
        b.input("x", [3, 5])
        b.constant("w", [7, 5])
        b.constant("c", [7])
        b.node("Gemm", ["x", "w", "c"], "y", [3, 7], ["transB": .int(1), "alpha": .float(2), "beta": .float(0.5)])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1)
        XCTAssertTrue(kernel(p, 0).name.hasPrefix("gemm<GEMM_TM=1"), kernel(p, 0).name)
        // M N K NB strideM strideK kPerSlice slices log2W log2H; 5 × 2 + 2 texels → 16 × 1; no epilogue C
        // (beta cStrideM cStrideN = 0), it is in the bias texels; n0 = 0, ldY = N (one piece).
        XCTAssertEqual(push(p, 0), [3, 7, 5, 2, 5, 1, 5, 1, 4, 0, 0, 0, 0, 0, 7])
        XCTAssertEqual(kernel(p, 0).specConstants[2], 0, "no HAS_C")
        XCTAssertEqual(p.steps[0].groups, [1, 3, 1])
        let w = b.initializers["w"]!.floats(), c = b.initializers["c"]!.floats()
        let g = WeightPacking.GemmGeometry(k: 5, n: 7)
        let (t, lane) = g.texel(k: 4, n: 6)
        XCTAssertEqual(ImageLayout.component(4 * t + lane, of: p.images[0]), 2 * w[6 * 5 + 4])
        let (bt, bl) = g.biasTexel(n: 6)
        XCTAssertEqual(ImageLayout.component(4 * bt + bl, of: p.images[0]), 0.5 * c[6])
    }

    func testGemmWithFullCReadsItInTheEpilogueBeforeTheRelu() throws {
        var b = GraphBuilder()
        b.input("x", [4, 5])
        b.input("c", [4, 3])
        b.constant("w", [5, 3])
        b.node("Gemm", ["x", "w", "c"], "g", [4, 3], name: "gemm", ["beta": .float(0.5)])
        b.node("Relu", ["g"], "y", [4, 3], name: "relu")
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1)
        XCTAssertEqual(kernel(p, 0).specConstants, [64, 1, 1], "relu and HAS_C")
        XCTAssertEqual(p.steps[0].bindings[3], .tensor("c"))
        XCTAssertEqual(Array(push(p, 0)[10...]), [Float(0.5).bitPattern, 3, 1, 0, 3], "beta cStrideM cStrideN n0 ldY")
    }

    func testMatMulWithConstantBFlattensBatch() throws {
        var b = GraphBuilder()
        b.input("x", [2, 3, 6])
        b.constant("w", [6, 9])
        b.node("MatMul", ["x", "w"], "y", [2, 3, 9])
        b.outputs = ["y"]
        let p = try lower(b, .fp16)
        XCTAssertEqual(push(p, 0), [6, 9, 6, 3, 6, 1, 6, 1, 5, 0, 0, 0, 0, 0, 9])  // 6 × 3 + 3 = 21 texels → 32 wide
        XCTAssertEqual(p.steps[0].groups, [1, 2, 1])          // TM 4 → 2 row groups
        XCTAssertEqual(p.images[0].format, .rgba16f)
        XCTAssertTrue(kernel(p, 0).name.contains("WEIGHT_FORMAT=rgba16f"))
        XCTAssertEqual(p.images[0].texels.count, 32 * 8)
    }

    /// A Softmax whose input nothing else reads writes over it (SOFTMAX_IN_PLACE, one read-write binding; its
    /// output a view of the input, so the arena holds one of the two); a second reader keeps them apart.
    func testSoftmaxOverwritesAnInputNothingElseReads() throws {
        func program(secondReader: Bool) throws -> LoweredProgram {
            var b = GraphBuilder()
            b.input("a", [4, 8])
            b.input("c", [8, 16])
            b.node("MatMul", ["a", "c"], "s", [4, 16])
            b.node("Softmax", ["s"], "p", [4, 16], ["axis": .int(-1)])
            b.outputs = ["p"]
            if secondReader {
                b.node("Relu", ["s"], "r", [4, 16])
                b.outputs.append("r")
            }
            return try lower(b)
        }
        let alone = try program(secondReader: false)
        let softmax = try XCTUnwrap(alone.steps.first { alone.kernels[$0.kernel].name.hasPrefix("softmax<") })
        XCTAssertEqual(alone.kernels[softmax.kernel].name, "softmax<SOFTMAX_IN_PLACE=1>[64,0]")
        XCTAssertEqual(softmax.bindings, [.tensor("s")])
        XCTAssertEqual(alone.tensors["p"]?.viewOf, "s")
        let shared = try program(secondReader: true)
        let apart = try XCTUnwrap(shared.steps.first { shared.kernels[$0.kernel].name.hasPrefix("softmax<") })
        XCTAssertEqual(apart.bindings, [.tensor("s"), .tensor("p")])
        XCTAssertNil(shared.tensors["p"]?.viewOf)
    }

    func testMatMulOfActivationsBroadcastsBatchDims() throws {
        var b = GraphBuilder()
        b.input("a", [2, 1, 3, 4])
        b.input("b", [5, 4, 6])
        b.node("MatMul", ["a", "b"], "y", [2, 5, 3, 6])
        b.input("v", [4])
        b.node("MatMul", ["v", "b"], "z", [5, 6])
        b.outputs = ["y", "z"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 2)
        XCTAssertTrue(kernel(p, 0).name.hasPrefix("matmul"))
        XCTAssertEqual(kernel(p, 0).workgroupSize, [256, 1, 1])
        // M N K | batch shape | A strides (broadcast along 5) | B strides (broadcast along 2) | matrix strides
        // of A and B | alpha beta cStrideM cStrideN (no C) | aOffset bOffset | Y row-major: batch strides, M, N, offset.
        let one = Float(1).bitPattern
        XCTAssertEqual(push(p, 0), [3, 6, 4, 1, 1, 2, 5, 0, 0, 12, 0, 0, 0, 0, 24, 4, 1, 6, 1, one, 0, 0, 0, 0, 0,
                                    180, 180, 90, 18, 6, 1, 0])
        XCTAssertEqual(p.steps[0].groups, [1, 1, 10])
        XCTAssertEqual(push(p, 1), [1, 6, 4, 1, 1, 1, 5, 0, 0, 0, 0, 0, 0, 0, 24, 4, 1, 6, 1, one, 0, 0, 0, 0, 0,
                                    30, 30, 30, 6, 6, 1, 0])
    }

    // MARK: - Element-wise, pooling, softmax, views

    func testAddBroadcastsAConstantPerChannel() throws {
        var b = GraphBuilder()
        b.input("x", [2, 3, 4, 5])
        b.constant("k", [3, 1, 1], [1, 2, 3])
        b.node("Add", ["x", "k"], "y", [2, 3, 4, 5])
        b.outputs = ["y"]
        let p = try lower(b)
        // Coalesced to [2, 3, 20]: x contiguous, k strided on the channel dim only.
        XCTAssertEqual(push(p, 0), [120, 3, 2, 3, 20, 1, 1, 1, 60, 20, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])  // offsets 0
        XCTAssertEqual(kernel(p, 0).specConstants, [256, 0, 0])
        let k = try XCTUnwrap(p.tensors["k"])
        XCTAssertEqual(k.byteSize, 12)
        XCTAssertEqual(k.constant, [1, 2, 3].flatMap { (v: Float) in withUnsafeBytes(of: v) { Array($0) } })
    }

    func testSameShapeMulIsRankOne() throws {
        var b = GraphBuilder()
        b.input("x", [4, 1, 6])
        b.input("z", [4, 1, 6])
        b.node("Mul", ["x", "z"], "y", [4, 1, 6])
        b.node("Div", ["y", "z"], "q", [4, 1, 6])
        b.outputs = ["q"]
        let p = try lower(b)
        XCTAssertEqual(Array(push(p, 0)[0..<3]), [24, 1, 24])
        XCTAssertEqual(kernel(p, 0).specConstants[1], 2)
        XCTAssertEqual(kernel(p, 1).specConstants[1], 3)
    }

    func testPoolingAndSoftmaxAndViews() throws {
        var b = GraphBuilder()
        b.input("x", [1, 4, 9, 9])
        b.node("MaxPool", ["x"], "m", [1, 4, 5, 5], ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]),
                                                    "pads": .ints([1, 1, 1, 1]), "ceil_mode": .int(1)])
        b.node("AveragePool", ["m"], "a", [1, 4, 2, 2], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]),
                                                       "count_include_pad": .int(1)])
        b.node("GlobalAveragePool", ["a"], "g", [1, 4, 1, 1])
        b.intConstant("shape", [1, 4])
        b.node("Reshape", ["g", "shape"], "r", [1, 4])
        b.node("Flatten", ["r"], "f", [1, 4])
        b.node("Softmax", ["f"], "y", [1, 4])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.indices.map { String(kernel(p, $0).name.prefix(while: { $0 != "<" })) },
                       ["pool", "pool", "global_avgpool", "softmax"])
        // NC | in, out, kernel, strides, dilations, pads begin, pads end: a leading spatial dim of 1 makes it 3-D |
        // C, X's strides (N, C, spatial) and offset: row-major.
        XCTAssertEqual(push(p, 0), [4, 1, 9, 9, 1, 5, 5, 1, 3, 3, 1, 2, 2, 1, 1, 1, 0, 1, 1, 0, 1, 1,
                                    4, 324, 81, 0, 9, 1, 0])
        XCTAssertEqual(kernel(p, 0).specConstants, [128, 0, 0, 0])
        XCTAssertEqual(kernel(p, 1).specConstants, [128, 1, 1, 0])
        XCTAssertEqual(push(p, 2), [4, 4])
        XCTAssertEqual(p.steps[2].groups, [4, 1, 1])
        XCTAssertEqual(push(p, 3), [1, 4, 1])
        XCTAssertEqual(p.tensors["r"]?.viewOf, "g")
        XCTAssertEqual(p.tensors["f"]?.viewOf, "g", "a view of a view names the root")
        XCTAssertEqual(p.steps[3].bindings, [.tensor("f"), .tensor("y")])
        XCTAssertNil(p.tensors["shape"], "the shape operand of Reshape is never bound")
    }

    func testSoftmaxAxes() throws {
        var b = GraphBuilder()
        b.input("x", [2, 3, 5])
        b.node("Softmax", ["x"], "y", [2, 3, 5], ["axis": .int(1)])
        b.outputs = ["y"]
        XCTAssertEqual(push(try lower(b), 0), [10, 3, 5])  // opset 13+: one axis, inner 5
        b.opset = 11
        XCTAssertEqual(push(try lower(b), 0), [2, 15, 1])  // legacy: coerced to 2-D at axis 1
    }

    func testReshapeOfAConstantWeightStillBecomesAnImage() throws {
        var b = GraphBuilder()
        b.input("x", [2, 8])
        b.constant("w", [2, 4, 3])
        b.intConstant("s", [8, 3])
        b.node("Reshape", ["w", "s"], "w2", [8, 3])
        b.node("MatMul", ["x", "w2"], "y", [2, 3])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1)
        XCTAssertEqual(p.images.count, 1)
        XCTAssertEqual(p.steps[0].bindings[1], .image(0))
    }

    func testIntegerInputsAreInt32InTheArena() throws {
        var b = GraphBuilder()
        b.input("ids", [3], dtype: .int64)
        b.node("Identity", ["ids"], "out", [3])
        b.values["out"]?.dtype = .int64
        b.outputs = ["out"]
        let p = try lower(b)
        XCTAssertEqual(p.inputs.first?.elementType, .int64)
        XCTAssertEqual(p.tensors["ids"]?.byteSize, 12)
        XCTAssertEqual(p.tensors["out"]?.viewOf, "ids")
        XCTAssertTrue(p.steps.isEmpty)
    }

    func testKernelsAreSharedBetweenSteps() throws {
        var b = GraphBuilder()
        b.input("x", [1, 8])
        b.node("Relu", ["x"], "a", [1, 8])
        b.node("Sigmoid", ["a"], "s", [1, 8])
        b.node("Relu", ["s"], "y", [1, 8])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 3)
        XCTAssertEqual(p.kernels.count, 2)
        XCTAssertEqual(p.steps[0].kernel, p.steps[2].kernel)
    }

    // MARK: - Errors

    private func assertLoweringError(_ b: GraphBuilder, node: String, op: String, mentions text: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try lower(b), file: file, line: line) { error in
            guard let e = error as? CompileError else {
                return XCTFail("not a CompileError: \(error)", file: file, line: line)
            }
            XCTAssertEqual(e.file, "test.onnx", file: file, line: line)
            XCTAssertEqual(e.node, node, file: file, line: line)
            XCTAssertEqual(e.op, op, file: file, line: line)
            XCTAssertTrue(e.message.contains(text), "\(e)", file: file, line: line)
        }
    }

    func testUnsupportedOperatorNamesNodeAndOp() {
        var b = GraphBuilder()
        b.input("x", [2, 3])
        b.node("GRU", ["x"], "y", [2, 3], name: "rnn0")
        b.outputs = ["y"]
        assertLoweringError(b, node: "rnn0", op: "GRU", mentions: "not supported")
    }

    func testConv3DIsRefused() {
        var b = GraphBuilder()
        b.input("x", [1, 2, 4, 4, 4])
        b.constant("w", [3, 2, 2, 2, 2])
        b.node("Conv", ["x", "w"], "y", [1, 3, 3, 3, 3], name: "conv3d")
        b.outputs = ["y"]
        assertLoweringError(b, node: "conv3d", op: "Conv", mentions: "3-D convolution is not supported")
    }

    func testUnknownAutoPadIsRefused() {
        var b = GraphBuilder()
        b.input("x", [1, 2, 4, 4])
        b.constant("w", [3, 2, 3, 3])
        b.node("Conv", ["x", "w"], "y", [1, 3, 4, 4], name: "c", ["auto_pad": .string("SOMETIMES")])
        b.outputs = ["y"]
        assertLoweringError(b, node: "c", op: "Conv", mentions: "auto_pad 'SOMETIMES'")
    }

    func testNonConstantConvWeightIsRefused() {
        var b = GraphBuilder()
        b.input("x", [1, 2, 4, 4])
        b.input("w", [3, 2, 3, 3])
        b.node("Conv", ["x", "w"], "y", [1, 3, 2, 2], name: "c")
        b.outputs = ["y"]
        assertLoweringError(b, node: "c", op: "Conv", mentions: "must be a constant")
    }

    func testGemmWithConstantAReadsItTransposedInTheMatMulKernel() throws {
        var b = GraphBuilder()
        b.constant("a", [5, 3])
        b.input("w", [5, 4])
        b.node("Gemm", ["a", "w"], "y", [3, 4], name: "g", ["transA": .int(1), "transB": .int(0)])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1)
        XCTAssertTrue(kernel(p, 0).name.hasPrefix("matmul"), kernel(p, 0).name)
        XCTAssertEqual(Array(push(p, 0)[15..<19]), [1, 3, 4, 1], "A' read with strides (1, M), B with (N, 1)")
        XCTAssertNotNil(p.tensors["a"]?.constant, "the constant A is a resident arena tensor")
    }

    func testMaxPoolIndicesMustBeAnIntegerTensor() {
        var b = GraphBuilder()
        b.input("x", [1, 1, 4, 4])
        b.nodes.append(Node(name: "mp", opType: "MaxPool", inputs: ["x"], outputs: ["y", "idx"],
                            attributes: ["kernel_shape": .ints([2, 2])]))
        b.values["y"] = ValueInfo(name: "y", dtype: .float32, shape: [1, 1, 3, 3])
        b.values["idx"] = ValueInfo(name: "idx", dtype: .float32, shape: [1, 1, 3, 3])
        b.outputs = ["y"]
        assertLoweringError(b, node: "mp", op: "MaxPool", mentions: "Indices")
    }

    func testMissingShapeIsReported() {
        var b = GraphBuilder()
        b.input("x", [2, 3])
        b.node("Relu", ["x"], "y", [2, 3], name: "r")
        b.values["y"]?.shape = [2, nil]
        b.outputs = ["y"]
        assertLoweringError(b, node: "r", op: "Relu", mentions: "shape inference")
    }
}

// MARK: - GELU recognition and fusion

final class GeluLoweringTests: XCTestCase {
    private func lower(_ b: GraphBuilder) throws -> LoweredProgram {
        if LoweringTests.sharedCompiler == nil { LoweringTests.sharedCompiler = try ShaderCompiler() }
        return try Lowering.lower(b.graph(), precision: .fp32, compiler: LoweringTests.sharedCompiler!)
    }

    func testGemmThenDecomposedGeluIsOneStepWithAFusedGelu() throws {
        var b = GraphBuilder()
        b.input("x", [8, 16])
        b.constant("w", [16, 32])
        b.constant("c", [32])
        b.node("Gemm", ["x", "w", "c"], "h", [8, 32], name: "fc")
        b.decomposedGelu("h", "y", [8, 32])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1, p.steps.map(\.label).description)
        XCTAssertTrue(p.steps[0].label.hasPrefix("fc+gelu("), p.steps[0].label)
        let kernel = p.kernels[p.steps[0].kernel]
        XCTAssertTrue(kernel.name.hasPrefix("gemm<"), kernel.name)  // 8 rows: the few-rows kernel, [WG, ACTIVATION, HAS_C]
        XCTAssertEqual(kernel.specConstants[1], FusedActivation.gelu.rawValue)
        XCTAssertNil(p.tensors["h"], "the GELU's input is fused away")
    }

    /// torch's Linear on 3-D activations: MatMul → Add(bias) → GELU is one gemm step with the bias and the GELU.
    func testMatMulBiasAndGeluAreOneStep() throws {
        var b = GraphBuilder()
        b.input("x", [2, 8, 16])
        b.constant("w", [16, 32])
        b.constant("bias", [32])
        b.node("MatMul", ["x", "w"], "p", [2, 8, 32], name: "fc")
        b.node("Add", ["bias", "p"], "h", [2, 8, 32], name: "fc.add")
        b.decomposedGelu("h", "y", [2, 8, 32])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1, p.steps.map(\.label).description)
        XCTAssertTrue(p.steps[0].label.hasPrefix("fc+fc.add+gelu("), p.steps[0].label)
        XCTAssertEqual(p.kernels[p.steps[0].kernel].specConstants.last, 0, "the bias is in the weight image, not a C input")
        XCTAssertNil(p.tensors["p"])
        XCTAssertNil(p.tensors["h"])
    }

    /// A bias that is not along the last axis, or a product read twice, keeps its Add.
    func testABiasOverRowsOrAProductReadTwiceIsNotFused() throws {
        var b = GraphBuilder()
        b.input("x", [8, 16])
        b.constant("w", [16, 32])
        b.constant("rows", [8, 1])
        b.node("MatMul", ["x", "w"], "p", [8, 32])
        b.node("Add", ["p", "rows"], "y", [8, 32])
        b.outputs = ["y"]
        XCTAssertEqual(try lower(b).steps.count, 2)

        var c = GraphBuilder()
        c.input("x", [8, 16])
        c.constant("w", [16, 32])
        c.constant("bias", [32])
        c.node("MatMul", ["x", "w"], "p", [8, 32])
        c.node("Add", ["p", "bias"], "y", [8, 32])
        c.outputs = ["y", "p"]
        XCTAssertEqual(try lower(c).steps.count, 2)
    }

    /// GPT-2's MLP: Gemm → Reshape → GELU is the Gemm with the GELU, then the reshape.
    func testGeluAfterAReshapeFusesIntoTheGemmBeforeIt() throws {
        var b = GraphBuilder()
        b.input("x", [8, 16])
        b.constant("w", [16, 32])
        b.constant("c", [32])
        b.intConstant("shape", [1, 8, 32])
        b.node("Gemm", ["x", "w", "c"], "h", [8, 32], name: "fc")
        b.node("Reshape", ["h", "shape"], "r", [1, 8, 32], name: "view")
        b.decomposedGeluTanh("r", "y", [1, 8, 32])
        b.outputs = ["y"]
        let p = try lower(b)
        let gemm = try XCTUnwrap(p.steps.first { $0.label.hasPrefix("fc+gelu(") }, p.steps.map(\.label).description)
        XCTAssertEqual(p.kernels[gemm.kernel].specConstants[1], FusedActivation.geluTanh.rawValue)
        XCTAssertFalse(p.kernels.contains { $0.name.hasPrefix("unary<") }, p.kernels.map(\.name).description)
        XCTAssertNil(p.tensors["r"], "the reshape writes the GELU's output")
    }

    func testTanhGeluOnAnInputBecomesOneUnaryStep() throws {
        var b = GraphBuilder()
        b.input("x", [4, 10])
        b.decomposedGeluTanh("x", "y", [4, 10])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1, p.steps.map(\.label).description)
        XCTAssertTrue(p.kernels[p.steps[0].kernel].name.hasPrefix("unary<"), p.kernels[p.steps[0].kernel].name)
    }

    /// An fp16 export's GELUs, constants in float16: each is still one step of its own form, and a wrong constant
    /// still does not match.
    func testGelusWithFloat16ConstantsAreRecognizedAsTheirForm() throws {
        var b = GraphBuilder()
        b.input("x", [4, 10])
        b.input("w", [4, 10])
        b.decomposedGeluTanh("x", "y", [4, 10], float16: true)
        b.decomposedGelu("w", "z", [4, 10], float16: true)
        b.outputs = ["y", "z"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 2, p.steps.map(\.label).description)
        // unary.comp's op (spec constant 1): the tanh form, then the exact one.
        XCTAssertEqual(p.steps.map { p.kernels[$0.kernel].specConstants[1] },
                       [UnaryOp.geluTanh.rawValue, UnaryOp.gelu.rawValue], p.kernels.map(\.name).description)

        var c = GraphBuilder()
        c.input("x", [4, 10])
        c.decomposedGelu("x", "y", [4, 10], half: 0.505, float16: true)
        c.outputs = ["y"]
        XCTAssertEqual(try lower(c).steps.count, 5, "0.505 instead of 0.5 is no GELU, even in float16")
    }

    func testAWrongConstantOrAnIntermediateUsedElsewhereIsNotAGelu() throws {
        var b = GraphBuilder()
        b.input("x", [4, 10])
        b.decomposedGelu("x", "y", [4, 10], half: 0.6)
        b.outputs = ["y"]
        XCTAssertEqual(try lower(b).steps.count, 5)

        var c = GraphBuilder()
        c.input("x", [4, 10])
        c.decomposedGelu("x", "y", [4, 10])
        c.outputs = ["y", "g.e"]  // erf(x / √2) is also a model output
        XCTAssertEqual(try lower(c).steps.count, 5)
    }
}
