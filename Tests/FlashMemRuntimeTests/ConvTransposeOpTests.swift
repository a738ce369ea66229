import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime
import TestSupport

private typealias R = ReferenceOps

/// Differential tests of ConvTranspose (conv_transpose.comp): 1-D, 2-D and 3-D, strides, pads, dilations, groups,
/// output_padding, output_shape and auto_pad, with and without bias and a fused Relu, on odd shapes with a fixed
/// seed, compiled and run on the default device in both weight precisions and both load modes against the
/// scatter reference in ReferenceOps+ConvTranspose. Relative L2 error ≤ 1e-4 (fp32) / 1e-2 (fp16), streaming ==
/// preload bit for bit. The pads the reference gets for output_shape / auto_pad cases are worked out from the
/// spec in comments (and were checked against onnxruntime 1.32). Owned by the ConvTranspose work.
final class ConvTransposeOpTests: XCTestCase {
    typealias Operand = OpTests.Operand

    private func node(_ inputs: [String], _ attributes: [String: Attribute], output: String = "y") -> Node {
        Node(name: "deconv", opType: "ConvTranspose", inputs: inputs, outputs: [output], attributes: attributes)
    }

    // MARK: - 2-D

    /// PP-OCR's upsampler (2×2 kernel, stride 2) on odd sizes; 5 output channels = one full and one partial
    /// texel block, tiled two blocks per invocation.
    func testUpsampler2x2Stride2WithBias() throws {
        let x = Operand("x", [1, 6, 13, 11], seed: 101)
        let w = Operand("w", [6, 5, 2, 2], seed: 102)
        let b = Operand("b", [5], seed: 103)
        let ref = R.convTranspose2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, bias: b.values,
                                    R.ConvTransposeAttributes(strides: [2, 2]))
        let attributes: [String: Attribute] = ["strides": .ints([2, 2]), "kernel_shape": .ints([2, 2])]
        try check([node(["x", "w", "b"], attributes)], inputs: [x], weights: [w, b], expected: ref,
                  kernel: "conv_transpose<CT_DIMS=2,CT_OCT=2,CT_PIX=1")
    }

    /// Stride 2 with dilation 2 along H: taps reach only the rows of one parity (the other phase holds only
    /// the bias); stride 3 along W; asymmetric pads; output_padding on both axes; batch 2.
    func testStridedDilatedPaddedWithOutputPadding() throws {
        let x = Operand("x", [2, 4, 7, 6], seed: 104)
        let w = Operand("w", [4, 3, 3, 2], seed: 105)
        let b = Operand("b", [3], seed: 106)
        let a = R.ConvTransposeAttributes(strides: [2, 3], dilations: [2, 1], outputPadding: [1, 2], pads: [1, 0, 2, 1])
        let ref = R.convTranspose2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, bias: b.values, a)
        XCTAssertEqual(ref.shape, [2, 3, 15, 18])
        let attributes: [String: Attribute] = [
            "strides": .ints([2, 3]), "dilations": .ints([2, 1]), "output_padding": .ints([1, 2]),
            "pads": .ints([1, 0, 2, 1]),
        ]
        try check([node(["x", "w", "b"], attributes)], inputs: [x], weights: [w, b], expected: ref)
    }

    /// group 3: 2 input and 5 output channels per group (a tile never straddles two groups).
    func testGroupedWithBias() throws {
        let x = Operand("x", [1, 6, 9, 8], seed: 107)
        let w = Operand("w", [6, 5, 3, 3], seed: 108)
        let b = Operand("b", [15], seed: 109)
        let a = R.ConvTransposeAttributes(strides: [2, 2], pads: [1, 1, 1, 1], groups: 3)
        let ref = R.convTranspose2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, bias: b.values, a)
        XCTAssertEqual(ref.shape, [1, 15, 17, 15])
        let attributes: [String: Attribute] = ["group": .int(3), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]
        try check([node(["x", "w", "b"], attributes)], inputs: [x], weights: [w, b], expected: ref)
    }

    /// Depthwise 4×4 stride-2 upsampling (one output channel per group), no bias.
    func testDepthwiseNoBias() throws {
        let x = Operand("x", [1, 5, 6, 7], seed: 110)
        let w = Operand("w", [5, 1, 4, 4], seed: 111)
        let a = R.ConvTransposeAttributes(strides: [2, 2], pads: [1, 1, 1, 1], groups: 5)
        let ref = R.convTranspose2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, a)
        let attributes: [String: Attribute] = ["group": .int(5), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]
        try check([node(["x", "w"], attributes)], inputs: [x], weights: [w], expected: ref)
    }

    /// Large enough phases for 2 pixels per invocation.
    func testLargePlaneTwoPixelsPerInvocation() throws {
        let x = Operand("x", [1, 3, 50, 47], seed: 112)
        let w = Operand("w", [3, 2, 3, 3], seed: 113)
        let a = R.ConvTransposeAttributes(strides: [2, 2], pads: [1, 1, 1, 1])
        let ref = R.convTranspose2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, a)
        let attributes: [String: Attribute] = ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]
        try check([node(["x", "w"], attributes)], inputs: [x], weights: [w], expected: ref,
                  kernel: "conv_transpose<CT_DIMS=2,CT_OCT=1,CT_PIX=2")
    }

    // MARK: - output_shape and auto_pad

    /// output_shape [16, 6] for a result spanning 15 × 9: H runs one row past it (stride 3 allows up to 2;
    /// that row holds only the bias), W cuts total 3 = 2 at the beginning + 1 at the end (NOTSET puts the odd
    /// unit first); with SAME_UPPER the odd unit goes to the end instead (1 + 2).
    func testOutputShape() throws {
        let x = Operand("x", [1, 2, 5, 4], seed: 114)
        let w = Operand("w", [2, 3, 3, 3], seed: 115)
        let b = Operand("b", [3], seed: 116)
        for (autoPad, pads) in [("NOTSET", [0, 2, -1, 1]), ("SAME_UPPER", [0, 1, -1, 2])] {
            let a = R.ConvTransposeAttributes(strides: [3, 2], pads: pads)
            let ref = R.convTranspose2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, bias: b.values, a)
            XCTAssertEqual(ref.shape, [1, 3, 16, 6])
            let attributes: [String: Attribute] = [
                "strides": .ints([3, 2]), "output_shape": .ints([16, 6]), "auto_pad": .string(autoPad),
            ]
            try check([node(["x", "w", "b"], attributes)], inputs: [x], weights: [w, b], expected: ref)
        }
    }

    /// Stride 2 on 5 × 7 aims at 10 × 14 out of 11 × 16: H cuts 1 (SAME_UPPER at the end, SAME_LOWER at the
    /// beginning), W cuts 1 + 1; VALID keeps all 11 × 16.
    func testAutoPad() throws {
        let x = Operand("x", [1, 3, 5, 7], seed: 117)
        let w = Operand("w", [3, 2, 3, 4], seed: 118)
        let cases: [(String, [Int])] = [("SAME_UPPER", [0, 1, 1, 1]), ("SAME_LOWER", [1, 1, 0, 1]), ("VALID", [0, 0, 0, 0])]
        for (autoPad, pads) in cases {
            let ref = R.convTranspose2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape,
                                        R.ConvTransposeAttributes(strides: [2, 2], pads: pads))
            XCTAssertEqual(ref.shape, autoPad == "VALID" ? [1, 2, 11, 16] : [1, 2, 10, 14])
            let attributes: [String: Attribute] = ["strides": .ints([2, 2]), "auto_pad": .string(autoPad)]
            try check([node(["x", "w"], attributes)], inputs: [x], weights: [w], expected: ref)
        }
    }

    // MARK: - 1-D, fusion, errors

    /// 1-D: stride 3, dilation 2, output_padding 1, pads [2, 1], batch 2, bias.
    func testConvTranspose1D() throws {
        let x = Operand("x", [2, 3, 11], seed: 119)
        let w = Operand("w", [3, 4, 5], seed: 120)
        let b = Operand("b", [4], seed: 121)
        let ref = R.convTranspose1d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, bias: b.values,
                                    stride: 3, dilation: 2, outputPadding: 1, pads: [2, 1])
        XCTAssertEqual(ref.shape, [2, 4, 37])
        let attributes: [String: Attribute] = [
            "strides": .ints([3]), "dilations": .ints([2]), "output_padding": .ints([1]), "pads": .ints([2, 1]),
        ]
        try check([node(["x", "w", "b"], attributes)], inputs: [x], weights: [w, b], expected: ref)
    }

    /// ConvTranspose → Relu runs as one step with the relu epilogue.
    func testFusedRelu() throws {
        let x = Operand("x", [1, 4, 7, 5], seed: 122)
        let w = Operand("w", [4, 6, 2, 2], seed: 123)
        let b = Operand("b", [6], seed: 124)
        let ref = R.convTranspose2d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, bias: b.values,
                                    R.ConvTransposeAttributes(strides: [2, 2]))
        let nodes = [
            node(["x", "w", "b"], ["strides": .ints([2, 2])], output: "t"),
            Node(name: "relu", opType: "Relu", inputs: ["t"], outputs: ["y"]),
        ]
        let steps = try check(nodes, inputs: [x], weights: [w, b], expected: (R.relu(ref.y), ref.shape))
        XCTAssertEqual(steps, 1, "the Relu must fuse into the ConvTranspose kernel")
    }

    // MARK: - 3-D

    /// The ONNX node test's shapes (test_convtranspose_3d): one channel in, two out, 3×3×3 kernel, stride 1.
    func testConvTranspose3DNodeTestShapes() throws {
        let x = Operand("x", [1, 1, 3, 4, 5], seed: 125)
        let w = Operand("w", [1, 2, 3, 3, 3], seed: 126)
        let ref = R.convTranspose3d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape,
                                    R.ConvTransposeAttributes3D())
        XCTAssertEqual(ref.shape, [1, 2, 5, 6, 7])
        try check([node(["x", "w"], [:])], inputs: [x], weights: [w], expected: ref,
                  kernel: "conv_transpose<CT_DIMS=3,CT_OCT=1,CT_PIX=1")
    }

    /// Every axis different: depth stride 2 with dilation 2 (one depth phase holds only the bias), W stride 3,
    /// asymmetric pads, output_padding on depth and W, group 2 with 3 output channels per group, batch 2, bias.
    func testConvTranspose3DStridedDilatedGrouped() throws {
        let x = Operand("x", [2, 4, 3, 5, 4], seed: 129)
        let w = Operand("w", [4, 3, 3, 2, 3], seed: 130)
        let b = Operand("b", [6], seed: 131)
        let a = R.ConvTransposeAttributes3D(strides: [2, 1, 3], dilations: [2, 1, 1], outputPadding: [1, 0, 2],
                                            pads: [1, 0, 1, 0, 1, 2], groups: 2)
        let ref = R.convTranspose3d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, bias: b.values, a)
        XCTAssertEqual(ref.shape, [2, 6, 9, 5, 11])
        let attributes: [String: Attribute] = [
            "group": .int(2), "strides": .ints([2, 1, 3]), "dilations": .ints([2, 1, 1]),
            "output_padding": .ints([1, 0, 2]), "pads": .ints([1, 0, 1, 0, 1, 2]),
        ]
        try check([node(["x", "w", "b"], attributes)], inputs: [x], weights: [w, b], expected: ref,
                  kernel: "conv_transpose<CT_DIMS=3,")
    }

    /// A 2×2×2 stride-2 upsampler (eight 1×1×1 phases) with phases large enough for 2 pixels and 2 texel
    /// blocks per invocation, and a fused Relu.
    func testConvTranspose3DUpsamplerWithRelu() throws {
        let x = Operand("x", [1, 3, 6, 9, 10], seed: 132)
        let w = Operand("w", [3, 8, 2, 2, 2], seed: 133)
        let b = Operand("b", [8], seed: 134)
        let ref = R.convTranspose3d(x: x.values, xShape: x.shape, w: w.values, wShape: w.shape, bias: b.values,
                                    R.ConvTransposeAttributes3D(strides: [2, 2, 2]))
        XCTAssertEqual(ref.shape, [1, 8, 12, 18, 20])
        let nodes = [
            node(["x", "w", "b"], ["strides": .ints([2, 2, 2])], output: "t"),
            Node(name: "relu", opType: "Relu", inputs: ["t"], outputs: ["y"]),
        ]
        let steps = try check(nodes, inputs: [x], weights: [w, b], expected: (R.relu(ref.y), ref.shape),
                              kernel: "conv_transpose<CT_DIMS=3,CT_OCT=2,CT_PIX=2")
        XCTAssertEqual(steps, 1, "the Relu must fuse into the ConvTranspose kernel")
    }

    func test4DIsUnsupported() {
        let x = Operand("x", [1, 1, 2, 2, 2, 2], seed: 135)
        let w = Operand("w", [1, 1, 2, 2, 2, 2], seed: 136)
        let error = compileError {
            _ = try self.lower([self.node(["x", "w"], [:])], inputs: [x], weights: [w], precision: .fp32)
        }
        XCTAssertEqual(error?.node, "deconv")
        XCTAssertEqual(error?.op, "ConvTranspose")
        XCTAssertTrue(error?.message.contains("4-D ConvTranspose is not supported") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("only 1-D, 2-D and 3-D") ?? false, "\(String(describing: error))")
    }

    func testRuntimeWeightIsUnsupported() {
        let x = Operand("x", [1, 2, 3, 3], seed: 127)
        let w = Operand("w", [2, 2, 2, 2], seed: 128)
        let error = compileError {
            _ = try self.lower([self.node(["x", "w"], [:])], inputs: [x, w], weights: [], precision: .fp32)
        }
        XCTAssertTrue(error?.message.contains("'w' must be a constant float tensor") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("not supported") ?? false, "\(String(describing: error))")
    }

    // MARK: - Harness

    /// Shape-inferred and lowered `nodes` (the last node's first output is the graph output).
    private func lower(_ nodes: [Node], inputs: [Operand], weights: [Operand], precision: Precision) throws -> LoweredProgram {
        let initializers = Dictionary(uniqueKeysWithValues: weights.map { ($0.name, $0.constant) })
        let infos = (inputs + weights).map { ValueInfo(name: $0.name, dtype: .float32, shape: $0.shape) }
        let graph = Graph(name: "ConvTranspose", nodes: nodes, inputs: Array(infos.prefix(inputs.count)),
                          outputs: [ValueInfo(name: nodes.last!.outputs[0], dtype: .float32, shape: nil)],
                          initializers: initializers, values: Dictionary(uniqueKeysWithValues: infos.map { ($0.name, $0) }),
                          opset: 17, sourcePath: "<ConvTranspose test>")
        try graph.simplify()
        try inferShapes(graph)
        return try Lowering.lower(graph, precision: precision)
    }

    /// Compiles `nodes`, checks that a kernel named with the prefix `kernel` exists, runs the bundle streaming
    /// (4 KiB chunks, so weights arrive in pieces) and preloaded in fp32 and fp16, and compares the output with
    /// `expected`. Returns the number of steps of the fp32 program.
    @discardableResult
    private func check(_ nodes: [Node], inputs: [Operand], weights: [Operand], expected: (y: [Float], shape: [Int]),
                       kernel: String = "conv_transpose<", file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        var steps = 0
        for precision in Precision.allCases {
            let program = try lower(nodes, inputs: inputs, weights: weights, precision: precision)
            if precision == .fp32 { steps = program.steps.count }
            XCTAssertTrue(program.kernels.contains { $0.name.hasPrefix(kernel) },
                          "no kernel \(kernel)… among \(program.kernels.map(\.name))", file: file, line: line)
            let feeds = inputs.map { HostTensor(name: $0.name, shape: $0.shape, floats: $0.values) }
            var results: [LoadMode: HostTensor] = [:]
            for (mode, outputs) in try runInEveryLoadMode(program, name: "ConvTranspose", feeds: feeds) {
                results[mode] = try XCTUnwrap(outputs.first)
            }
            let streamed = try XCTUnwrap(results[.streaming])
            let what = "ConvTranspose \(precision)"
            XCTAssertEqual(streamed.shape, expected.shape, "\(what): shape", file: file, line: line)
            XCTAssertEqual(streamed, results[.preload], "\(what): streaming != preload", file: file, line: line)
            let tolerance: Float = precision == .fp32 ? 1e-4 : 1e-2
            XCTAssertLessThanOrEqual(relativeError(streamed.floats(), expected.y), tolerance,
                                     "\(what): relative error", file: file, line: line)
        }
        return steps
    }
}

