import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

/// Differential tests of LSTM: one-node graphs on odd sizes (hidden sizes that end mid-workgroup and span two
/// shared-memory tiles, input projections on both gemm kernels) with a fixed seed, compiled and run on the
/// default device in both weight precisions and both load modes, against ReferenceOps+Recurrent. Relative L2
/// error ≤ 1e-4 (fp32 weights) / 1e-2 (fp16 weights) on every output, streaming == preload bit for bit. Owned
/// by the recurrent family.
final class RecurrentOpTests: XCTestCase {
    typealias Input = NormalizationOpTests.Input
    typealias Expected = NormalizationOpTests.Expected

    /// Which operands of an `LSTMCase` become initializers (the rest, when present, are graph inputs).
    struct Placement {
        var constantPeepholes = true
        var constantInitialStates = false
    }

    // MARK: - Cases

    func testForwardDefaultsGemmTiledProjection() throws {
        // 23 × 3 = 69 projection rows (gemm_tiled.comp); hidden 70: two 64-wide tiles of H and of units.
        let c = lstmCase(seq: 23, batch: 3, input: 9, hidden: 70, seed: 1)
        try check(c, name: "forward", outputs: ["Y", "Y_h", "Y_c"])
    }

    func testReverseWithBiasAndInitialStates() throws {
        var c = lstmCase(seq: 5, batch: 2, input: 7, hidden: 13, seed: 2, direction: "reverse")
        c.b = weights(c.directions * 8 * 13, seed: 23)
        c.initialH = values(ReferenceOps.count(c.stateShape), seed: 24)
        c.initialC = values(ReferenceOps.count(c.stateShape), seed: 25)
        try check(c, name: "reverse", outputs: ["Y", "Y_h", "Y_c"])
    }

    func testBidirectionalPeepholesLayout1() throws {
        var c = lstmCase(seq: 4, batch: 3, input: 5, hidden: 11, seed: 3, direction: "bidirectional", layout: 1)
        c.b = weights(2 * 8 * 11, seed: 33)
        c.p = weights(2 * 3 * 11, seed: 34)
        c.initialH = values(ReferenceOps.count(c.stateShape), seed: 35)
        c.initialC = values(ReferenceOps.count(c.stateShape), seed: 36)
        try check(c, name: "bidirectional_layout1", outputs: ["Y", "Y_h", "Y_c"])
        // The same with initial states as initializers and the peepholes a graph input.
        try check(c, name: "bidirectional_layout1_swapped", outputs: ["Y", "Y_h", "Y_c"],
                  placement: Placement(constantPeepholes: false, constantInitialStates: true))
    }

    func testBidirectionalSequenceLengthsOnlyFinalStates() throws {
        // Rows of length 6 (all), 3, 1 and 0; Y is left out, so the kernel's Y is a temporary.
        var c = lstmCase(seq: 6, batch: 4, input: 3, hidden: 9, seed: 4, direction: "bidirectional")
        c.b = weights(2 * 8 * 9, seed: 43)
        c.sequenceLens = [6, 3, 1, 0]
        c.initialH = values(ReferenceOps.count(c.stateShape), seed: 44)
        try check(c, name: "sequence_lens", outputs: ["", "Y_h", "Y_c"])
        try check(c, name: "sequence_lens_y", outputs: ["Y"])
    }

    func testClipAndInputForget() throws {
        var c = lstmCase(seq: 3, batch: 2, input: 6, hidden: 10, seed: 5, scale: 1.5)
        c.clip = 0.7
        c.inputForget = true
        c.p = weights(3 * 10, seed: 53)
        try check(c, name: "clip_input_forget", outputs: ["Y", "Y_h", "Y_c"])
    }

    func testOtherActivationsAreRefusedByName() throws {
        let c = lstmCase(seq: 2, batch: 1, input: 3, hidden: 4, seed: 6)
        let graph = makeGraph(c, name: "relu_activations", outputs: ["Y"], placement: Placement()).graph
        graph.nodes[0].attributes["activations"] = .strings(["Relu", "Tanh", "Tanh"])
        try graph.simplify()
        try inferShapes(graph)
        XCTAssertThrowsError(try Lowering.lower(graph, precision: .fp32)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("activations=") && message.contains("not supported"), message)
        }
    }

    // MARK: - Building and checking

    private func values(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = ReferenceOps.SeededRandom(seed: seed)
        return rng.floats(count).map { $0 * scale }
    }

    /// Weights in [−0.4, 0.4): keeps the gates away from saturation so every term matters.
    private func weights(_ count: Int, seed: UInt64) -> [Float] {
        values(count, seed: seed, scale: 0.4)
    }

    private func lstmCase(seq: Int, batch: Int, input: Int, hidden: Int, seed: UInt64, direction: String = "forward",
                          layout: Int = 0, scale: Float = 1) -> ReferenceOps.LSTMCase {
        let xShape = layout == 0 ? [seq, batch, input] : [batch, seq, input]
        let dirs = direction == "bidirectional" ? 2 : 1
        return ReferenceOps.LSTMCase(
            x: values(ReferenceOps.count(xShape), seed: seed * 10, scale: scale), xShape: xShape,
            w: weights(dirs * 4 * hidden * input, seed: seed * 10 + 1).map { $0 * scale },
            r: weights(dirs * 4 * hidden * hidden, seed: seed * 10 + 2).map { $0 * scale },
            hidden: hidden, direction: direction, layout: layout)
    }

    /// The one-node graph of `c` (W, R and B always initializers) and the feeds of its graph inputs.
    private func makeGraph(_ c: ReferenceOps.LSTMCase, name: String, outputs: [String],
                           placement: Placement) -> (graph: Graph, feeds: [Input]) {
        let dirs = c.directions, h = c.hidden
        var constants: [String: ConstantTensor] = [
            "W": NormalizationOpTests.floats(c.w, [dirs, 4 * h, c.inputSize]),
            "R": NormalizationOpTests.floats(c.r, [dirs, 4 * h, h]),
        ]
        var feeds = [Input(OpTests.Operand("X", c.xShape, values: c.x))]
        func place(_ name: String, _ values: [Float]?, _ shape: [Int], constant: Bool) -> String {
            guard let values else { return "" }
            if constant {
                constants[name] = NormalizationOpTests.floats(values, shape)
            } else {
                feeds.append(Input(OpTests.Operand(name, shape, values: values)))
            }
            return name
        }
        var inputs = ["X", "W", "R", place("B", c.b, [dirs, 8 * h], constant: true), ""]
        if let lens = c.sequenceLens {
            var lengths = Input(ints: "sequence_lens", [c.batch], seed: 0)
            lengths.values = lens.map(Float.init)
            feeds.append(lengths)
            inputs[4] = "sequence_lens"
        }
        inputs.append(place("initial_h", c.initialH, c.stateShape, constant: placement.constantInitialStates))
        inputs.append(place("initial_c", c.initialC, c.stateShape, constant: placement.constantInitialStates))
        inputs.append(place("P", c.p, [dirs, 3 * h], constant: placement.constantPeepholes))
        while inputs.last == "" { inputs.removeLast() }

        var attributes: [String: Attribute] = ["hidden_size": .int(h), "direction": .string(c.direction)]
        if c.layout != 0 { attributes["layout"] = .int(c.layout) }
        if let clip = c.clip { attributes["clip"] = .float(clip) }
        if c.inputForget { attributes["input_forget"] = .int(1) }
        let node = Node(name: name, opType: "LSTM", inputs: inputs, outputs: outputs, attributes: attributes)

        var values: [String: ValueInfo] = [:]
        let inputInfo = feeds.map { ValueInfo(name: $0.name, dtype: $0.integer ? .int32 : .float32, shape: $0.shape) }
        for info in inputInfo { values[info.name] = info }
        for (name, constant) in constants {
            values[name] = ValueInfo(name: name, dtype: constant.dtype, shape: constant.shape)
        }
        let outputInfo = outputs.filter { !$0.isEmpty }.map { ValueInfo(name: $0, dtype: .float32, shape: nil) }
        let graph = Graph(name: name, nodes: [node], inputs: inputInfo, outputs: outputInfo,
                          initializers: constants, values: values, opset: 14, sourcePath: "<LSTM \(name) test>")
        return (graph, feeds)
    }

    /// Compiles the LSTM of `c` asking for `outputs` (ONNX order Y, Y_h, Y_c; "" skips one), runs it streaming
    /// and preloaded in both precisions and checks every output against the reference.
    private func check(_ c: ReferenceOps.LSTMCase, name: String, outputs: [String], placement: Placement = Placement(),
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let reference = ReferenceOps.lstm(c)
        let all = [Expected("Y", c.yShape, reference.y), Expected("Y_h", c.stateShape, reference.yh),
                   Expected("Y_c", c.stateShape, reference.yc)]
        let expected = zip(outputs, all).filter { !$0.0.isEmpty }.map(\.1)
        for precision in Precision.allCases {
            let (graph, feeds) = makeGraph(c, name: name, outputs: outputs, placement: placement)
            try graph.simplify()
            try inferShapes(graph)
            let program = try Lowering.lower(graph, precision: precision)
            let results = try runInEveryLoadMode(program, name: name, feeds: feeds.map(\.hostTensor))
            let streamed = try XCTUnwrap(results[.streaming]), preloaded = try XCTUnwrap(results[.preload])
            XCTAssertEqual(streamed.count, expected.count, "\(name) \(precision): output count", file: file, line: line)
            let tolerance: Float = precision == .fp32 ? 1e-4 : 1e-2
            for (i, want) in expected.enumerated() where i < streamed.count {
                let what = "\(name) \(precision) \(want.name)"
                XCTAssertEqual(streamed[i].shape, want.shape, "\(what): shape", file: file, line: line)
                XCTAssertEqual(streamed[i], preloaded[i], "\(what): streaming != preload", file: file, line: line)
                let error = relativeError(streamed[i].floats(), want.values, nonFinite: .mustMatch)
                XCTAssertLessThanOrEqual(error, tolerance, "\(what): relative error", file: file, line: line)
            }
        }
    }
}

private extension OpTests.Operand {
    /// An operand with given values (the reference case already drew them from its seed).
    init(_ name: String, _ shape: [Int], values: [Float]) {
        self.init(name, shape, seed: 1)
        self.values = values
    }
}
