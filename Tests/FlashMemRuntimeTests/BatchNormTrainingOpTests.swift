import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

/// Differential tests of training-mode BatchNormalization (Lowering+BatchNormTraining.swift rewrites it into
/// ReduceMean / Sub / Mul / Add / Sqrt / Div / Reshape): Y with the batch's own statistics and the running mean
/// and variance outputs, on odd shapes of rank 2 to 5 with a fixed seed, constant and run-time parameters, both
/// ways the graph's opset passes ReduceMean's axes (attribute before 18, input from 18), compiled and run on the
/// default device in both weight precisions and both load modes against the reference below (written from
/// onnx/reference/ops/op_batch_normalization.py). Relative L2 error ≤ 1e-4, streaming == preload bit for bit.
/// Owned by the BatchNormalization work.
final class BatchNormTrainingOpTests: XCTestCase {
    typealias Operand = OpTests.Operand

    /// The five inputs of one BatchNormalization; the variance is positive.
    private struct Inputs {
        var x: Operand
        var scale: Operand
        var bias: Operand
        var mean: Operand
        var variance: Operand

        init(_ shape: [Int], seed: UInt64, offset: Float = 0) {
            x = Operand("x", shape, seed: seed)
            x.values = x.values.map { $0 + offset }
            let channels = shape[1]
            scale = Operand("scale", [channels], seed: seed + 1)
            bias = Operand("bias", [channels], seed: seed + 2)
            mean = Operand("input_mean", [channels], seed: seed + 3)
            variance = Operand("input_var", [channels], seed: seed + 4)
            variance.values = variance.values.map { abs($0) + 0.5 }
        }

        var parameters: [Operand] { [scale, bias, mean, variance] }

        /// ReferenceOps.batchNormTraining of these inputs.
        func reference(epsilon: Double, momentum: Double) -> (y: [Float], runningMean: [Float], runningVar: [Float]) {
            ReferenceOps.batchNormTraining(x: x.values, shape: x.shape, scale: scale.values, bias: bias.values,
                                           mean: mean.values, variance: variance.values, epsilon: epsilon,
                                           momentum: momentum)
        }
    }

    private func trainingNode(_ attributes: [String: Attribute], outputs: [String]) -> Node {
        Node(name: "bn", opType: "BatchNormalization", inputs: ["x", "scale", "bias", "input_mean", "input_var"],
             outputs: outputs, attributes: attributes.merging(["training_mode": .int(1)]) { a, _ in a })
    }

    // MARK: - Tests

    /// All three outputs, epsilon and momentum set, opset 15 (ReduceMean takes its axes as an attribute). X is
    /// offset by 20 so a one-pass variance would lose digits.
    func testTrainingModeWithRunningStatistics() throws {
        let p = Inputs([3, 5, 7, 9], seed: 301, offset: 20)
        let ref = p.reference(epsilon: 1e-2, momentum: 0.7)
        let node = trainingNode(["epsilon": .float(1e-2), "momentum": .float(0.7)],
                                outputs: ["y", "running_mean", "running_var"])
        let program = try check([node], inputs: [p.x], constants: p.parameters, opset: 15, expected: [
            ("y", p.x.shape, ref.y), ("running_mean", [5], ref.runningMean), ("running_var", [5], ref.runningVar),
        ])
        XCTAssertFalse(program.kernels.contains { $0.name.hasPrefix("batchnorm") },
                       "training mode must not use the inference kernel: \(program.kernels.map(\.name))")
    }

    /// Rank 2 and rank 5, default epsilon and momentum, run-time parameters (graph inputs) and opset 18
    /// (ReduceMean's axes as an input).
    func testTrainingModeRuntimeParametersOtherRanks() throws {
        for (i, shape) in [[6, 4], [2, 3, 3, 4, 5]].enumerated() {
            let p = Inputs(shape, seed: 310 + 10 * UInt64(i))
            let ref = p.reference(epsilon: 1e-5, momentum: 0.9)
            let node = trainingNode([:], outputs: ["y", "running_mean", "running_var"])
            try check([node], inputs: [p.x] + p.parameters, opset: 18, expected: [
                ("y", shape, ref.y), ("running_mean", [shape[1]], ref.runningMean),
                ("running_var", [shape[1]], ref.runningVar),
            ])
        }
    }

    /// Y only, followed by a Relu: the Relu fuses into the last step of the rewrite (mean, centring, square,
    /// variance, + ε, √, scale / √, product, + bias: 9 steps; the reshapes are views).
    func testTrainingModeYOnlyWithFusedRelu() throws {
        let p = Inputs([2, 6, 5, 3], seed: 330)
        let ref = p.reference(epsilon: 1e-3, momentum: 0.9)
        let nodes = [
            trainingNode(["epsilon": .float(1e-3)], outputs: ["t"]),
            Node(name: "relu", opType: "Relu", inputs: ["t"], outputs: ["y"]),
        ]
        let program = try check(nodes, inputs: [p.x], constants: p.parameters, opset: 15,
                                expected: [("y", p.x.shape, ReferenceOps.relu(ref.y))])
        XCTAssertEqual(program.steps.count, 9, "\(program.steps.map(\.label))")
        XCTAssertTrue(program.steps.allSatisfy { $0.label.hasPrefix("bn/") }, "\(program.steps.map(\.label))")
    }

    /// training_mode = 0 keeps the inference path: one batchnorm.comp step.
    func testInferenceModeKeepsItsKernel() throws {
        let p = Inputs([2, 5, 4, 3], seed: 340)
        let node = Node(name: "bn", opType: "BatchNormalization", inputs: ["x", "scale", "bias", "input_mean", "input_var"],
                        outputs: ["y"], attributes: ["training_mode": .int(0)])
        let ref = ReferenceOps.batchNorm(x: p.x.values, shape: p.x.shape, scale: p.scale.values, bias: p.bias.values,
                                         mean: p.mean.values, variance: p.variance.values)
        let program = try check([node], inputs: [p.x], constants: p.parameters, opset: 15,
                                expected: [("y", p.x.shape, ref)])
        XCTAssertEqual(program.steps.count, 1)
        XCTAssertTrue(program.kernels.contains { $0.name.hasPrefix("batchnorm") }, "\(program.kernels.map(\.name))")
    }

    // MARK: - Harness

    /// Compiles `nodes` with `inputs` as graph inputs and `constants` as initializers, runs it streaming and
    /// preloaded in fp32 and fp16 and compares every output with `expected` (in order). Returns the fp32 program.
    @discardableResult
    private func check(_ nodes: [Node], inputs: [Operand], constants: [Operand] = [], opset: Int,
                       expected: [(name: String, shape: [Int], values: [Float])],
                       file: StaticString = #filePath, line: UInt = #line) throws -> LoweredProgram {
        var fp32Program: LoweredProgram?
        for precision in Precision.allCases {
            let initializers = Dictionary(uniqueKeysWithValues: constants.map { ($0.name, $0.constant) })
            let infos = (inputs + constants).map { ValueInfo(name: $0.name, dtype: .float32, shape: $0.shape) }
            let graph = Graph(name: "BatchNormTraining", nodes: nodes, inputs: Array(infos.prefix(inputs.count)),
                              outputs: expected.map { ValueInfo(name: $0.name, dtype: .float32, shape: nil) },
                              initializers: initializers,
                              values: Dictionary(uniqueKeysWithValues: infos.map { ($0.name, $0) }),
                              opset: opset, sourcePath: "<BatchNormTraining test>")
            try graph.simplify()
            try inferShapes(graph)
            let program = try Lowering.lower(graph, precision: precision)
            if precision == .fp32 { fp32Program = program }
            let feeds = inputs.map { HostTensor(name: $0.name, shape: $0.shape, floats: $0.values) }
            let results = try runInEveryLoadMode(program, name: "BatchNormTraining", feeds: feeds)
            let streamed = try XCTUnwrap(results[.streaming])
            XCTAssertEqual(streamed.count, expected.count, "\(precision): output count", file: file, line: line)
            for (i, want) in expected.enumerated() where i < streamed.count {
                let what = "BatchNormalization \(precision) output \(want.name)"
                XCTAssertEqual(streamed[i].shape, want.shape, "\(what): shape", file: file, line: line)
                XCTAssertEqual(streamed[i], results[.preload]?[i], "\(what): streaming != preload", file: file, line: line)
                XCTAssertLessThanOrEqual(relativeError(streamed[i].floats(), want.values), 1e-4,
                                         "\(what): relative error", file: file, line: line)
            }
        }
        return try XCTUnwrap(fp32Program)
    }
}

extension ReferenceOps {
    /// ONNX BatchNormalization with training_mode = 1 (opsets 14 / 15), in Double: the batch mean and population
    /// variance per channel over N and the spatial axes normalize X; the running statistics are
    /// input · momentum + batch · (1 − momentum).
    static func batchNormTraining(x: [Float], shape: [Int], scale: [Float], bias: [Float], mean inputMean: [Float],
                                  variance inputVar: [Float], epsilon: Double, momentum: Double)
        -> (y: [Float], runningMean: [Float], runningVar: [Float]) {
        let channels = shape[1]
        let inner = count(Array(shape.dropFirst(2))), perChannel = Double(shape[0] * inner)
        var mean = [Double](repeating: 0, count: channels), variance = mean
        for (i, v) in x.enumerated() { mean[(i / inner) % channels] += Double(v) / perChannel }
        for (i, v) in x.enumerated() {
            let d = Double(v) - mean[(i / inner) % channels]
            variance[(i / inner) % channels] += d * d / perChannel
        }
        let y = x.enumerated().map { i, v -> Float in
            let c = (i / inner) % channels
            return Float((Double(v) - mean[c]) / (variance[c] + epsilon).squareRoot() * Double(scale[c]) + Double(bias[c]))
        }
        let runningMean = (0..<channels).map { Float(Double(inputMean[$0]) * momentum + mean[$0] * (1 - momentum)) }
        let runningVar = (0..<channels).map { Float(Double(inputVar[$0]) * momentum + variance[$0] * (1 - momentum)) }
        return (y, runningMean, runningVar)
    }
}
