// LoweringPasses.fuseAttention: which chains become one attention.comp step and which stay separate kernels.
// The kernel's numbers are checked on the device by AttentionOpTests (runtime target).

import FMBFormat
import TestSupport
import XCTest

@testable import FlashMemCompiler

final class AttentionLoweringTests: XCTestCase {
    private func lower(_ b: GraphBuilder, precision: Precision = .fp32) throws -> LoweredProgram {
        if LoweringTests.sharedCompiler == nil { LoweringTests.sharedCompiler = try ShaderCompiler() }
        return try Lowering.lower(b.graph(), precision: precision, compiler: LoweringTests.sharedCompiler!)
    }

    private func words(_ bytes: [UInt8]) -> [UInt32] {
        stride(from: 0, to: bytes.count, by: 4).map {
            UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24
        }
    }

    private func attentionSteps(_ p: LoweredProgram) -> [LoweredStep] {
        p.steps.filter { p.kernels[$0.kernel].name.hasPrefix("attention<") }
    }

    /// MatMul(Q, Kᵀ) → Mul(scale) → Add(mask) → Softmax → MatMul(·, V), [1, H, L, D] operands. `d` the head depth.
    private func chain(d: Int = 16, lq: Int = 10, lk: Int = 12, scaleName: String = "scale",
                       mutate: (inout GraphBuilder) -> Void = { _ in }) -> GraphBuilder {
        var b = GraphBuilder()
        b.input("q", [1, 2, lq, d])
        b.input("kt", [1, 2, d, lk])
        b.input("v", [1, 2, lk, d])
        b.input("mask", [1, 1, 1, lk])
        if scaleName == "scale" { b.constant("scale", [], [0.25]) }
        b.node("MatMul", ["q", "kt"], "s", [1, 2, lq, lk], name: "qk")
        b.node("Mul", ["s", scaleName], "ss", [1, 2, lq, lk], name: "scale")
        b.node("Add", ["ss", "mask"], "sm", [1, 2, lq, lk], name: "mask")
        b.node("Softmax", ["sm"], "p", [1, 2, lq, lk], name: "softmax", ["axis": .int(-1)])
        b.node("MatMul", ["p", "v"], "y", [1, 2, lq, d], name: "pv")
        b.outputs = ["y"]
        mutate(&b)
        return b
    }

    func testTheRuleFusesShortAttentionsAndScoresTooLargeForABuffer() throws {
        func fusedSteps(_ rule: AttentionFusionRule, lk: Int = 12) throws -> Int {
            if LoweringTests.sharedCompiler == nil { LoweringTests.sharedCompiler = try ShaderCompiler() }
            let p = try Lowering.lower(chain(lk: lk).graph(), precision: .fp32, attentionFusion: rule,
                                       compiler: LoweringTests.sharedCompiler!)
            return attentionSteps(p).count
        }
        XCTAssertEqual(try fusedSteps(.always), 1)
        XCTAssertEqual(try fusedSteps(.never), 0)
        XCTAssertEqual(try fusedSteps(AttentionFusionRule(maxKeys: 12, scoresAbove: .max)), 1, "12 keys ≤ 12")
        XCTAssertEqual(try fusedSteps(AttentionFusionRule(maxKeys: 11, scoresAbove: .max)), 0, "12 keys > 11")
        // Scores [1, 2, 10, 12] fp32 = 960 bytes: fused past a 959-byte buffer whatever the length, not past 960.
        XCTAssertEqual(try fusedSteps(AttentionFusionRule(maxKeys: 0, scoresAbove: 959)), 1)
        XCTAssertEqual(try fusedSteps(AttentionFusionRule(maxKeys: 0, scoresAbove: 960)), 0)

        // Scores past the buffer that splitting brings within it are split instead (unfused, in blocks of rows).
        XCTAssertEqual(try fusedSteps(AttentionFusionRule(maxKeys: 0, scoresAbove: 959, splitScoresAbove: 959)), 1)
        XCTAssertEqual(try fusedSteps(AttentionFusionRule(maxKeys: 0, scoresAbove: 959, splitScoresAbove: 480)), 0)

        // fmc's rule per target: NVIDIA fuses up to 256 keys in workgroups of 256 invocations, lavapipe only scores
        // past its 128 MiB buffers, in workgroups of 64; with a size or fraction budget both split scores past 32 MiB
        // instead (lavapipe then fuses none). --attention-invocations overrides the target's size.
        let split = SplitAttention.autoBlockBytes
        var options = CompileOptions()
        options.costModel = .h200
        XCTAssertEqual(options.attentionFusionRule,
                       AttentionFusionRule(maxKeys: 256, scoresAbove: Int(UInt32.max), invocations: 256))
        options.memoryBudget = .fractionOfWeights(0.25)
        XCTAssertEqual(options.attentionFusionRule,
                       AttentionFusionRule(maxKeys: 256, scoresAbove: Int(UInt32.max), splitScoresAbove: split,
                                           invocations: 256))
        options.attentionInvocations = 64
        XCTAssertEqual(options.attentionFusionRule.invocations, 64)
        options.attentionInvocations = nil
        options.costModel = .lavapipe
        options.memoryBudget = .bytes(64 << 20)
        XCTAssertEqual(options.attentionFusionRule,
                       AttentionFusionRule(maxKeys: 0, scoresAbove: 128 << 20, splitScoresAbove: split))
        options.memoryBudget = .auto  // the budget whose latency is all-resident's: no split
        XCTAssertEqual(options.attentionFusionRule, AttentionFusionRule(maxKeys: 0, scoresAbove: 128 << 20))
        options.splitAttention = .blockBytes(1 << 20)
        XCTAssertEqual(options.attentionFusionRule,
                       AttentionFusionRule(maxKeys: 0, scoresAbove: 128 << 20, splitScoresAbove: 1 << 20))
        options.attentionFusion = .off
        XCTAssertEqual(options.attentionFusionRule, AttentionFusionRule(maxKeys: 0, scoresAbove: .max, splitScoresAbove: 1 << 20))
        options.splitAttention = .off
        XCTAssertEqual(options.attentionFusionRule, .never)
        options.attentionFusion = .on
        XCTAssertEqual(options.attentionFusionRule, .always)
    }

    func testLongUnfusedAttentionsAreSplitIntoBlocksOfRows() throws {
        if LoweringTests.sharedCompiler == nil { LoweringTests.sharedCompiler = try ShaderCompiler() }
        // Scores [1, 2, 10, 12] fp32: a row of both heads is 96 bytes; 300 bytes hold 3 rows: blocks of 3, 3, 3, 1.
        let p = try Lowering.lower(chain().graph(), precision: .fp32,
                                   attentionFusion: AttentionFusionRule(maxKeys: 0, scoresAbove: .max, splitScoresAbove: 300),
                                   compiler: LoweringTests.sharedCompiler!)
        let labels = p.steps.map(\.label)
        // Each block's scores product scales them in its epilogue (`fuseProductScale`).
        XCTAssertEqual(labels.filter { $0.contains("_qk") },
                       [0, 3, 6, 9].map { "pv/rows\($0)_qk+pv/rows\($0)_scale" })
        // Each block's P·V writes its rows of the result itself (`writeProducts`): no Concat copies.
        XCTAssertEqual(labels.filter { $0.hasSuffix("/concat") }.count, 0, labels.description)
        let products = p.steps.filter { $0.label.hasSuffix("_pv") }
        XCTAssertEqual(products.count, 4)
        XCTAssertTrue(products.allSatisfy { $0.bindings[2] == products[0].bindings[2] }, "the blocks write one tensor")
        XCTAssertEqual(products.compactMap { MatMulPush.output($0.pushConstants)?.offset }, [0, 3, 6, 9].map { $0 * 16 },
                       "each block from its first row (rows of 16 values)")
        XCTAssertEqual(p.tensors["pv#rows9_1"]?.byteSize, 2 * 1 * 12 * 4, "the last block's scores: one row")
        // The arena's live peak (the most bytes live at one step), which no placement beats. Unsplit: q, kt, v, the
        // mask and y live throughout (the scale is the product's alpha), and at the mask step its input and output
        // scores.
        let slot = { (bytes: Int) in UInt64((bytes + 255) / 256 * 256) }
        func plan(lq: Int, _ rule: AttentionFusionRule) throws -> ArenaPlan {
            let program = try Lowering.lower(chain(lq: lq, lk: 64).graph(), precision: .fp32, attentionFusion: rule,
                                             compiler: LoweringTests.sharedCompiler!)
            return try ArenaPlanner.plan(program) { _ in DataRange(offset: 0, size: 0) }
        }
        let short = try plan(lq: 10, .never)
        let io = slot(1280) + slot(8192) + slot(8192) + slot(256) + slot(1280)
        XCTAssertEqual(short.livePeakSize, io + 2 * slot(2 * 10 * 64 * 4))
        XCTAssertGreaterThanOrEqual(short.arenaSize, short.livePeakSize)
        // Where: the first step with both scores live; the largest there are Kᵀ and V (8 KiB each), then scores.
        XCTAssertGreaterThanOrEqual(short.livePeakStep, 0)
        XCTAssertEqual(short.livePeakTensors.map(\.bytes), [slot(8192), slot(8192), slot(2 * 10 * 64 * 4)])
        // 256 query rows in blocks of 8 (4 KiB of scores): the peak drops by far more than the blocks' Slices add.
        let (long, blocks) = try (plan(lq: 256, .never),
                                  plan(lq: 256, AttentionFusionRule(maxKeys: 0, scoresAbove: .max, splitScoresAbove: 4096)))
        XCTAssertLessThan(blocks.livePeakSize * 2, long.livePeakSize)
        XCTAssertGreaterThanOrEqual(blocks.arenaSize, blocks.livePeakSize)
        XCTAssertEqual(AttentionSplit.rowsPerBlock(scoresShape: [1, 8, 4096, 4096], limit: 32 << 20), 256)
        XCTAssertEqual(AttentionSplit.rowsPerBlock(scoresShape: [1, 8, 4096, 4096], limit: 40 << 20), 320)
        XCTAssertEqual(AttentionSplit.rowsPerBlock(scoresShape: [1, 16, 1500, 1500], limit: 1 << 20), 10)
        // Short of the limit: one chain, unsplit.
        let whole = try Lowering.lower(chain().graph(), precision: .fp32,
                                       attentionFusion: AttentionFusionRule(maxKeys: 0, scoresAbove: .max, splitScoresAbove: 960),
                                       compiler: LoweringTests.sharedCompiler!)
        XCTAssertEqual(whole.steps.map(\.label), ["qk+scale", "mask", "softmax", "pv"])
    }

    func testTheChainIsOneAttentionStep() throws {
        let p = try lower(chain())
        XCTAssertEqual(p.steps.count, 1, p.steps.map(\.label).description)
        XCTAssertEqual(p.steps[0].label, "attention(qk+scale+mask+softmax+pv)")
        XCTAssertEqual(p.steps[0].work, .attention, "estimated at the target's attention rate")
        let kernel = p.kernels[p.steps[0].kernel]
        XCTAssertTrue(kernel.name.hasPrefix("attention<ATT_DMAX=64,ATT_WG=64>"), kernel.name)
        XCTAssertEqual(kernel.specConstants, [1, 0, 0, 16, 16], "HAS_ADD, no select, D, Dv")
        let push = words(p.steps[0].pushConstants)
        XCTAssertEqual(Array(push[0..<6]), [10, 12, 2, 0, 0, 0], "Lq Lk, inner batch = heads, no offsets")
        XCTAssertEqual(Array(push[10..<14]), [0, 16 * 12, 1, 12], "Kᵀ [D, Lk] read as K [Lk, D]")
        XCTAssertEqual(Array(push[22..<26]), [0, 0, 0, 1], "the mask broadcast over heads and rows")
        XCTAssertEqual(Float(bitPattern: push[30]), 0.25)
        for intermediate in ["s", "ss", "sm", "p"] {
            XCTAssertNil(p.tensors[intermediate], "\(intermediate) is never materialised")
        }
    }

    func testAnIntermediateWithASecondReaderIsNotFused() throws {
        for intermediate in ["s", "ss", "sm", "p"] {
            let p = try lower(chain { $0.outputs.append(intermediate) })
            XCTAssertTrue(attentionSteps(p).isEmpty, "\(intermediate) read twice: \(p.steps.map(\.label))")
            // The unfused chain; its scaling is the first product's alpha unless the scores themselves are read.
            XCTAssertEqual(p.steps.count, intermediate == "s" ? 5 : 4, p.steps.map(\.label).description)
        }
        // A second node reading the scores.
        let p = try lower(chain { b in
            b.node("Relu", ["sm"], "r", [1, 2, 10, 12])
            b.outputs.append("r")
        })
        XCTAssertTrue(attentionSteps(p).isEmpty, p.steps.map(\.label).description)
    }

    func testANonConstantScaleIsNotFused() throws {
        let p = try lower(chain(scaleName: "s_in") { $0.input("s_in", [1]) })
        XCTAssertTrue(attentionSteps(p).isEmpty, p.steps.map(\.label).description)
    }

    func testConstantOperandsAreNotFused() throws {
        let p = try lower(chain { b in
            b.inputs.removeAll { $0.name == "v" }
            b.constant("v", [1, 2, 12, 16])
        })
        XCTAssertTrue(attentionSteps(p).isEmpty, p.steps.map(\.label).description)
    }

    /// A scale after the mask, a Softmax over another axis and heads wider than the kernel's tiles stay unfused.
    func testOtherOrdersAxesAndWideHeadsAreNotFused() throws {
        let maskThenScale = try lower(chain { b in
            b.nodes[1].inputs = ["sm0", "scale"]  // Mul reads the masked scores
            b.nodes[2].inputs = ["s", "mask"]
            b.nodes[2].outputs = ["sm0"]
            b.values["sm0"] = b.values["sm"]
            b.nodes[1].outputs = ["sm"]
            b.nodes.swapAt(1, 2)
        })
        XCTAssertTrue(attentionSteps(maskThenScale).isEmpty, maskThenScale.steps.map(\.label).description)

        let otherAxis = try lower(chain { $0.nodes[3].attributes["axis"] = .int(2) })
        XCTAssertTrue(attentionSteps(otherAxis).isEmpty, otherAxis.steps.map(\.label).description)

        XCTAssertEqual(attentionSteps(try lower(chain(d: 128))).count, 1)
        let wide = try lower(chain(d: 160))
        XCTAssertTrue(attentionSteps(wide).isEmpty, wide.steps.map(\.label).description)
    }

    /// Transposes around the chain are absorbed as strides: MiniLM's layout is one step.
    func testTransposesAroundTheChainAreAbsorbed() throws {
        var b = GraphBuilder()
        for name in ["q", "k", "v"] { b.input(name, [1, 9, 2, 8]) }
        b.constant("scale", [], [0.5])
        b.node("Transpose", ["q"], "qt", [1, 2, 9, 8], ["perm": .ints([0, 2, 1, 3])])
        b.node("Transpose", ["k"], "kt", [1, 2, 8, 9], ["perm": .ints([0, 2, 3, 1])])
        b.node("Transpose", ["v"], "vt", [1, 2, 9, 8], ["perm": .ints([0, 2, 1, 3])])
        b.node("MatMul", ["qt", "kt"], "s", [1, 2, 9, 9])
        b.node("Div", ["s", "scale"], "ss", [1, 2, 9, 9])
        b.node("Softmax", ["ss"], "p", [1, 2, 9, 9], ["axis": .int(3)])
        b.node("MatMul", ["p", "vt"], "o", [1, 2, 9, 8])
        b.node("Transpose", ["o"], "y", [1, 9, 2, 8], ["perm": .ints([0, 2, 1, 3])])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1, p.steps.map(\.label).description)
        let push = words(p.steps[0].pushConstants)
        XCTAssertEqual(Array(push[6..<10]), [0, 8, 16, 1], "Q [L, H, D] read per head")
        XCTAssertEqual(Array(push[10..<14]), [0, 8, 16, 1], "K [L, H, D] read per head")
        XCTAssertEqual(Array(push[18..<22]), [0, 8, 16, 1], "Y written as [L, H, D]")
        XCTAssertEqual(Float(bitPattern: push[30]), 2)
    }

    /// GPT-Neo casts Q and Kᵀ to float32 (identity Casts in an fp32 model) and masks with Where before softmax.
    func testIdentityCastsOnQAndKAndACausalWhereAreFused() throws {
        var b = GraphBuilder()
        b.input("q", [1, 2, 6, 8])
        b.input("kt", [1, 2, 8, 6])
        b.input("v", [1, 2, 6, 8])
        b.constant("fill", [], [-3.4028235e38])
        b.initializers["causal"] = ConstantTensor(dtype: .bool, shape: [1, 1, 6, 6],
                                                  bytes: TensorBytes((0..<36).map { $0 % 6 <= $0 / 6 ? 1 : 0 }))
        b.values["causal"] = ValueInfo(name: "causal", dtype: .bool, shape: [1, 1, 6, 6])
        let float32: Attribute = .int(Int(DType.float32.rawValue))
        b.node("Cast", ["q"], "qc", [1, 2, 6, 8], ["to": float32])
        b.node("Cast", ["kt"], "kc", [1, 2, 8, 6], ["to": float32])
        b.node("MatMul", ["qc", "kc"], "s", [1, 2, 6, 6])
        b.node("Where", ["causal", "s", "fill"], "sw", [1, 2, 6, 6])
        b.node("Softmax", ["sw"], "p", [1, 2, 6, 6], ["axis": .int(-1)])
        b.node("MatMul", ["p", "v"], "y", [1, 2, 6, 8])
        b.outputs = ["y"]
        let p = try lower(b)
        XCTAssertEqual(p.steps.count, 1, p.steps.map(\.label).description)
        XCTAssertEqual(p.kernels[p.steps[0].kernel].specConstants, [0, 1, 0, 8, 8], "no add, keep where true")
        XCTAssertEqual(Float(bitPattern: words(p.steps[0].pushConstants)[31]), -3.4028235e38)
        XCTAssertNotNil(p.tensors["causal"]?.constant, "the bool mask is a resident int32 tensor")
    }

    /// GPT-Neo's fp16 export: Q and Kᵀ (float16) cast up to float32, P cast down to float16 before its product with V
    /// (float16). In an fp16 bundle it is one fused attention, P not rounded; in an fp32 bundle the rounding stays
    /// a step of its own and nothing is fused.
    func testAnFp16ExportsCastsAroundTheAttentionAreFusedInAnFp16Bundle() throws {
        var b = GraphBuilder()
        b.input("q", [1, 2, 6, 8], dtype: .float16)
        b.input("kt", [1, 2, 8, 6], dtype: .float16)
        b.input("v", [1, 2, 6, 8], dtype: .float16)
        b.constant("fill", [], [-3.4028235e38])
        b.initializers["causal"] = ConstantTensor(dtype: .bool, shape: [1, 1, 6, 6],
                                                  bytes: TensorBytes((0..<36).map { $0 % 6 <= $0 / 6 ? 1 : 0 }))
        b.values["causal"] = ValueInfo(name: "causal", dtype: .bool, shape: [1, 1, 6, 6])
        let float32: Attribute = .int(Int(DType.float32.rawValue)), float16: Attribute = .int(Int(DType.float16.rawValue))
        b.node("Cast", ["q"], "qc", [1, 2, 6, 8], ["to": float32])
        b.node("Cast", ["kt"], "kc", [1, 2, 8, 6], ["to": float32])
        b.node("MatMul", ["qc", "kc"], "s", [1, 2, 6, 6])
        b.node("Where", ["causal", "s", "fill"], "sw", [1, 2, 6, 6])
        b.node("Softmax", ["sw"], "p", [1, 2, 6, 6], ["axis": .int(-1)])
        b.node("Cast", ["p"], "p16", [1, 2, 6, 6], ["to": float16])
        b.values["p16"]?.dtype = .float16
        b.node("MatMul", ["p16", "v"], "y", [1, 2, 6, 8])
        b.values["y"]?.dtype = .float16
        b.outputs = ["y"]
        let half = try lower(b, precision: .fp16)
        XCTAssertEqual(half.steps.count, 1, half.steps.map(\.label).description)
        XCTAssertTrue(half.kernels[half.steps[0].kernel].name.hasPrefix("attention<"), half.kernels[0].name)
        let full = try lower(b, precision: .fp32)
        XCTAssertGreaterThan(full.steps.count, 1, "P rounded to float16 by a step of its own")
        XCTAssertFalse(full.kernels.contains { $0.name.hasPrefix("attention<") })
    }
}
