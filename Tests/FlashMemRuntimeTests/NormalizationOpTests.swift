import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

/// Differential tests of the normalization / reduction / scan family (LayerNormalization, GroupNormalization,
/// InstanceNormalization, BatchNormalization standalone, Softmax / LogSoftmax on any axis, the Reduce* ops,
/// ArgMax / ArgMin, CumSum): one-node graphs on odd shapes (rows of 7, 33, 1001… elements, so workgroups end
/// mid-row) with a fixed seed, compiled and run on the default device in both precisions and both load modes,
/// against ReferenceOps+Normalization. Float outputs: relative L2 error ≤ 1e-4 and streaming == preload bit for
/// bit; integer outputs: exact. Owned by the normalization / reduction family.
final class NormalizationOpTests: XCTestCase {
    typealias Operand = OpTests.Operand

    /// A graph input: float32 values, or int32 ones when `integer`.
    struct Input {
        var name: String
        var shape: [Int]
        var values: [Float]
        var integer = false

        init(_ operand: Operand) {
            name = operand.name
            shape = operand.shape
            values = operand.values
        }

        init(ints name: String, _ shape: [Int], seed: UInt64, range: Int = 100) {
            var rng = ReferenceOps.SeededRandom(seed: seed)
            self.name = name
            self.shape = shape
            self.values = (0..<ReferenceOps.count(shape)).map { _ in (rng.next() * Float(range)).rounded() }
            self.integer = true
        }

        var hostTensor: HostTensor {
            if integer {
                let ints = values.map { Int32($0) }
                return HostTensor(name: name, elementType: .int32, shape: shape, bytes: ints.withUnsafeBytes { Array($0) })
            }
            return HostTensor(name: name, shape: shape, floats: values)
        }
    }

    /// An expected graph output.
    struct Expected {
        var name: String
        var dtype: DType = .float32
        var shape: [Int]
        var values: [Float]

        init(_ name: String, _ shape: [Int], _ values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }

        init(_ name: String, _ shape: [Int], ints: [Int64], dtype: DType = .int64) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.values = ints.map(Float.init)
        }
    }

    static func floats(_ values: [Float], _ shape: [Int]) -> ConstantTensor {
        ConstantTensor(dtype: .float32, shape: shape, bytes: TensorBytes(values.withUnsafeBytes { Array($0) }))
    }

    static func int64s(_ values: [Int], _ shape: [Int]? = nil) -> ConstantTensor {
        ConstantTensor.make(dtype: .int64, shape: shape ?? [values.count], integers: values)
    }

    /// Compiles `node` with `inputs` as graph inputs, `constants` as initializers and `outputs` as graph outputs,
    /// runs it streaming and preloaded in fp32 and fp16 weight precision, and compares every output.
    func check(_ node: Node, inputs: [Input], constants: [String: ConstantTensor] = [:], outputs: [Expected],
               opset: Int = 18, file: StaticString = #filePath, line: UInt = #line) throws {
        let label = "\(node.opType) \(node.name)"
        for precision in Precision.allCases {
            let inputInfo = inputs.map { ValueInfo(name: $0.name, dtype: $0.integer ? .int32 : .float32, shape: $0.shape) }
            var values = Dictionary(uniqueKeysWithValues: inputInfo.map { ($0.name, $0) })
            for (name, constant) in constants {
                values[name] = ValueInfo(name: name, dtype: constant.dtype, shape: constant.shape)
            }
            let graph = Graph(name: label, nodes: [node], inputs: inputInfo,
                              outputs: outputs.map { ValueInfo(name: $0.name, dtype: $0.dtype, shape: nil) },
                              initializers: constants, values: values, opset: opset, sourcePath: "<\(label) test>")
            try graph.simplify()
            try inferShapes(graph)
            let program = try Lowering.lower(graph, precision: precision)
            let results = try runInEveryLoadMode(program, name: label, options: CompileOptions(),
                                                 feeds: inputs.map(\.hostTensor))
            let streamed = try XCTUnwrap(results[.streaming]), preloaded = try XCTUnwrap(results[.preload])
            XCTAssertEqual(streamed.count, outputs.count, "\(label) \(precision): output count", file: file, line: line)
            for (i, expected) in outputs.enumerated() where i < streamed.count {
                let what = "\(label) \(precision) output \(expected.name)"
                XCTAssertEqual(streamed[i].shape, expected.shape, "\(what): shape", file: file, line: line)
                XCTAssertEqual(streamed[i], preloaded[i], "\(what): streaming != preload", file: file, line: line)
                if expected.dtype.isFloat {
                    let error = relativeError(streamed[i].floats(), expected.values, nonFinite: .mustMatch)
                    XCTAssertLessThanOrEqual(error, 1e-4, "\(what): relative error", file: file, line: line)
                } else {
                    XCTAssertEqual(streamed[i].int64s(), expected.values.map { Int64($0) }, "\(what): values",
                                   file: file, line: line)
                }
            }
        }
    }

    // MARK: - LayerNormalization

    func testLayerNormLastAxisLongRowsWithStats() throws {
        // 1001-element rows (not a multiple of the workgroup), offset by 50 so a one-pass variance would lose digits.
        var x = Operand("x", [3, 1001], seed: 101)
        x.values = x.values.map { $0 + 50 }
        let scale = Operand("scale", [1001], seed: 102), bias = Operand("bias", [1001], seed: 103)
        let node = Node(name: "ln", opType: "LayerNormalization", inputs: ["x", "scale", "bias"],
                        outputs: ["y", "mean", "inv"], attributes: ["epsilon": .float(1e-3)])
        let ref = ReferenceOps.layerNorm(x: x.values, shape: x.shape, axis: -1, scale: scale.values, bias: bias.values,
                                         epsilon: 1e-3)
        try check(node, inputs: [Input(x)],
                  constants: ["scale": Self.floats(scale.values, scale.shape), "bias": Self.floats(bias.values, bias.shape)],
                  outputs: [Expected("y", x.shape, ref.y), Expected("mean", [3, 1], ref.mean),
                            Expected("inv", [3, 1], ref.invStdDev)], opset: 17)
    }

    func testLayerNormMiddleAxisBroadcastScaleNoBias() throws {
        // axis 1 of [2, 5, 33]: the normalized shape is [5, 33]; Scale [33] broadcasts to it, B is omitted.
        let x = Operand("x", [2, 5, 33], seed: 104), scale = Operand("scale", [33], seed: 105)
        let node = Node(name: "ln_axis1", opType: "LayerNormalization", inputs: ["x", "scale"], outputs: ["y"],
                        attributes: ["axis": .int(-2)])
        let fullScale = ReferenceOps.broadcast(scale.values, from: [33], to: [5, 33])
        let ref = ReferenceOps.layerNorm(x: x.values, shape: x.shape, axis: 1, scale: fullScale, bias: nil)
        try check(node, inputs: [Input(x)], constants: ["scale": Self.floats(scale.values, scale.shape)],
                  outputs: [Expected("y", x.shape, ref.y)], opset: 17)
    }

    func testLayerNormOnlyInvStdDevWithActivationScale() throws {
        // Scale is a graph input (exact normalized shape); only the InvStdDev output is asked for.
        let x = Operand("x", [4, 7, 9], seed: 106), scale = Operand("scale", [7, 9], seed: 107)
        let bias = Operand("bias", [1, 9], seed: 108)
        let node = Node(name: "ln_inv", opType: "LayerNormalization", inputs: ["x", "scale", "bias"],
                        outputs: ["y", "", "inv"], attributes: ["axis": .int(1)])
        let ref = ReferenceOps.layerNorm(x: x.values, shape: x.shape, axis: 1, scale: scale.values,
                                         bias: ReferenceOps.broadcast(bias.values, from: [1, 9], to: [7, 9]))
        try check(node, inputs: [Input(x), Input(scale)], constants: ["bias": Self.floats(bias.values, bias.shape)],
                  outputs: [Expected("y", x.shape, ref.y), Expected("inv", [4, 1, 1], ref.invStdDev)], opset: 17)
    }

    // MARK: - GroupNormalization / InstanceNormalization / BatchNormalization

    func testGroupNormPerChannelOpset21() throws {
        let x = Operand("x", [2, 6, 7, 5], seed: 110)
        let scale = Operand("scale", [6], seed: 111), bias = Operand("bias", [6], seed: 112)
        let node = Node(name: "gn21", opType: "GroupNormalization", inputs: ["x", "scale", "bias"], outputs: ["y"],
                        attributes: ["num_groups": .int(3), "epsilon": .float(1e-2)])
        let ref = ReferenceOps.groupNorm(x: x.values, shape: x.shape, groups: 3, scale: scale.values, bias: bias.values,
                                         epsilon: 1e-2)
        try check(node, inputs: [Input(x)],
                  constants: ["scale": Self.floats(scale.values, [6]), "bias": Self.floats(bias.values, [6])],
                  outputs: [Expected("y", x.shape, ref)], opset: 21)
    }

    func testGroupNormPerGroupOpset18LongRows() throws {
        // 2 groups of 3 channels × 33 × 31 = 3069-element rows (the 256-invocation workgroup).
        let x = Operand("x", [1, 6, 33, 31], seed: 113)
        let scale = Operand("scale", [2], seed: 114), bias = Operand("bias", [2], seed: 115)
        let node = Node(name: "gn18", opType: "GroupNormalization", inputs: ["x", "scale", "bias"], outputs: ["y"],
                        attributes: ["num_groups": .int(2)])
        let ref = ReferenceOps.groupNorm(x: x.values, shape: x.shape, groups: 2, scale: scale.values, bias: bias.values)
        try check(node, inputs: [Input(x)],
                  constants: ["scale": Self.floats(scale.values, [2]), "bias": Self.floats(bias.values, [2])],
                  outputs: [Expected("y", x.shape, ref)], opset: 18)
    }

    func testInstanceNorm4DAnd3D() throws {
        for (i, shape) in [[2, 3, 33, 31], [3, 4, 7]].enumerated() {
            let x = Operand("x", shape, seed: 120 + UInt64(i))
            let scale = Operand("scale", [shape[1]], seed: 122), bias = Operand("bias", [shape[1]], seed: 123)
            let node = Node(name: "in\(shape.count)d", opType: "InstanceNormalization", inputs: ["x", "scale", "bias"],
                            outputs: ["y"], attributes: ["epsilon": .float(1e-4)])
            let ref = ReferenceOps.instanceNorm(x: x.values, shape: shape, scale: scale.values, bias: bias.values,
                                                epsilon: 1e-4)
            try check(node, inputs: [Input(x)],
                      constants: ["scale": Self.floats(scale.values, scale.shape), "bias": Self.floats(bias.values, bias.shape)],
                      outputs: [Expected("y", shape, ref)])
        }
    }

    func testBatchNormStandaloneOnNon4DInputs() throws {
        for (i, shape) in [[5, 3], [2, 3, 7], [1, 3, 2, 3, 5]].enumerated() {
            let x = Operand("x", shape, seed: 130 + UInt64(i))
            let scale = Operand("s", [3], seed: 134), bias = Operand("b", [3], seed: 135)
            let mean = Operand("m", [3], seed: 136)
            var variance = Operand("v", [3], seed: 137)
            variance.values = variance.values.map { abs($0) + 0.1 }
            let node = Node(name: "bn\(shape.count)d", opType: "BatchNormalization", inputs: ["x", "s", "b", "m", "v"],
                            outputs: ["y"], attributes: ["epsilon": .float(1e-3)])
            let ref = ReferenceOps.batchNorm(x: x.values, shape: shape, scale: scale.values, bias: bias.values,
                                             mean: mean.values, variance: variance.values, epsilon: 1e-3)
            var constants: [String: ConstantTensor] = [:]
            for p in [scale, bias, mean, variance] { constants[p.name] = Self.floats(p.values, p.shape) }
            try check(node, inputs: [Input(x)], constants: constants, outputs: [Expected("y", shape, ref)], opset: 15)
        }
    }

    // MARK: - Softmax / LogSoftmax

    func testSoftmaxAndLogSoftmaxOnEveryAxis() throws {
        let x = Operand("x", [3, 7, 33], seed: 140)
        for op in ["Softmax", "LogSoftmax"] {
            for axis in [0, 1, -1, -2] {
                let node = Node(name: "axis\(axis)", opType: op, inputs: ["x"], outputs: ["y"], attributes: ["axis": .int(axis)])
                let ref = op == "Softmax" ? ReferenceOps.softmax(x: x.values, shape: x.shape, axis: axis)
                    : ReferenceOps.logSoftmax(x: x.values, shape: x.shape, axis: axis)
                try check(node, inputs: [Input(x)], outputs: [Expected("y", x.shape, ref)], opset: 13)
            }
        }
    }

    func testSoftmaxLegacyOpsetCoercesTo2D() throws {
        // Opset 11, axis 1 of [2, 3, 5, 7]: each of the 2 rows is the 105 elements from axis 1 on.
        var x = Operand("x", [2, 3, 5, 7], seed: 141)
        x.values = x.values.map { $0 * 20 }  // large logits: the max shift matters
        for op in ["Softmax", "LogSoftmax"] {
            let node = Node(name: "legacy", opType: op, inputs: ["x"], outputs: ["y"])
            let ref = op == "Softmax" ? ReferenceOps.softmax(x: x.values, shape: [2, 105], axis: 1)
                : ReferenceOps.logSoftmax(x: x.values, shape: [2, 105], axis: 1)
            try check(node, inputs: [Input(x)], outputs: [Expected("y", x.shape, ref)], opset: 11)
        }
    }

    func testSoftmaxLongRows() throws {
        let x = Operand("x", [2, 2001], seed: 142)
        let node = Node(name: "long", opType: "Softmax", inputs: ["x"], outputs: ["y"])
        try check(node, inputs: [Input(x)], outputs: [Expected("y", x.shape, ReferenceOps.softmax(x: x.values, shape: x.shape))],
                  opset: 13)
    }

    // MARK: - Reductions

    func testEveryFloatReductionOverSeveralAxisSets() throws {
        var x = Operand("x", [3, 7, 33], seed: 150)
        x.values = x.values.map { $0 + 1.5 }  // positive, so LogSum is defined; Prod stays moderate below
        let ops = ["Sum", "Mean", "Max", "Min", "L1", "L2", "SumSquare", "LogSum", "LogSumExp"]
        let axisSets: [[Int]] = [[1], [0, 2], [-1], []]
        // Each op on two of the axis sets, rotating, so every op and every set (keepdims both ways) is covered.
        for (i, op) in ops.enumerated() {
            for k in [i % 4, (i + 1) % 4] {
                let axes = axisSets[k], keep = (i + k) % 2 == 0
                let node = Node(name: "\(op)_\(axes)", opType: "Reduce\(op)", inputs: axes.isEmpty ? ["x"] : ["x", "axes"],
                                outputs: ["y"], attributes: ["keepdims": .int(keep ? 1 : 0)])
                let ref = ReferenceOps.reduce(op, x: x.values, shape: x.shape, axes: axes, keepdims: keep)
                try check(node, inputs: [Input(x)], constants: axes.isEmpty ? [:] : ["axes": Self.int64s(axes)],
                          outputs: [Expected("y", ref.shape, ref.y)], opset: 18)
            }
        }
    }

    func testReduceProdAndAttributeAxesBeforeOpset18() throws {
        var x = Operand("x", [4, 5, 6], seed: 151)
        x.values = x.values.map { 1 + $0 * 0.2 }
        for op in ["Prod", "Mean", "Max"] {
            let node = Node(name: "attr", opType: "Reduce\(op)", inputs: ["x"], outputs: ["y"],
                            attributes: ["axes": .ints([0, -1]), "keepdims": .int(0)])
            let ref = ReferenceOps.reduce(op, x: x.values, shape: x.shape, axes: [0, 2], keepdims: false)
            try check(node, inputs: [Input(x)], outputs: [Expected("y", ref.shape, ref.y)], opset: 13)
        }
        // ReduceSum takes its axes as an attribute only before opset 13.
        let node = Node(name: "sum11", opType: "ReduceSum", inputs: ["x"], outputs: ["y"], attributes: ["axes": .ints([1])])
        let ref = ReferenceOps.reduce("Sum", x: x.values, shape: x.shape, axes: [1], keepdims: true)
        try check(node, inputs: [Input(x)], outputs: [Expected("y", ref.shape, ref.y)], opset: 11)
    }

    func testReduceLongRowsAndStridedRows() throws {
        // 5003 contiguous elements per output (a workgroup each, 256 invocations); axis 0 of [1001, 3] (3 rows
        // strided by 3: a workgroup each); strided rows 8 per workgroup ([2, 1001, 5] axis 1: 10 outputs, the
        // second workgroup mostly past the end) and 64 per workgroup ([40, 20000] axis 0); two non-adjacent
        // axes; short strided rows (an invocation each).
        let cases: [(shape: [Int], axes: [Int])] = [([2, 5003], [1]), ([1001, 3], [0]), ([2, 1001, 5], [1]),
                                                    ([40, 20000], [0]), ([33, 2, 7, 3], [0, 2]), ([5, 999], [0])]
        for (i, c) in cases.enumerated() {
            let x = Operand("x", c.shape, seed: 152 + UInt64(i))
            for op in ["Mean", "Max", "L2"] {
                let node = Node(name: "\(c.shape)", opType: "Reduce\(op)", inputs: ["x", "axes"], outputs: ["y"],
                                attributes: ["keepdims": .int(0)])
                let ref = ReferenceOps.reduce(op, x: x.values, shape: c.shape, axes: c.axes, keepdims: false)
                try check(node, inputs: [Input(x)], constants: ["axes": Self.int64s(c.axes)],
                          outputs: [Expected("y", ref.shape, ref.y)])
            }
        }
    }

    func testReduceNoopWithEmptyAxesIsTheIdentity() throws {
        let x = Operand("x", [3, 7], seed: 156)
        let node = Node(name: "noop", opType: "ReduceSum", inputs: ["x", "axes"], outputs: ["y"],
                        attributes: ["noop_with_empty_axes": .int(1)])
        try check(node, inputs: [Input(x)], constants: ["axes": Self.int64s([])],
                  outputs: [Expected("y", x.shape, x.values)], opset: 13)
        // Without noop_with_empty_axes, empty axes reduce everything.
        let all = Node(name: "all", opType: "ReduceSum", inputs: ["x", "axes"], outputs: ["y"])
        let ref = ReferenceOps.reduce("Sum", x: x.values, shape: x.shape, axes: [], keepdims: true)
        try check(all, inputs: [Input(x)], constants: ["axes": Self.int64s([])],
                  outputs: [Expected("y", [1, 1], ref.y)], opset: 13)
    }

    func testReductionsOfAnEmptySetGiveTheIdentity() throws {
        let x = Input(Operand("x", [2, 0, 4], seed: 158))
        let cases: [(op: String, value: Float)] = [("Sum", 0), ("Max", -.infinity), ("Min", .infinity), ("Prod", 1),
                                                   ("L2", 0), ("LogSumExp", -.infinity)]
        for c in cases {
            let node = Node(name: "empty", opType: "Reduce\(c.op)", inputs: ["x", "axes"], outputs: ["y"])
            try check(node, inputs: [x], constants: ["axes": Self.int64s([1])],
                      outputs: [Expected("y", [2, 1, 4], [Float](repeating: c.value, count: 8))])
        }
    }

    func testIntegerReductions() throws {
        let x = Input(ints: "x", [5, 37], seed: 157)
        for op in ["Sum", "Max", "Min"] {
            let node = Node(name: "int", opType: "Reduce\(op)", inputs: ["x", "axes"], outputs: ["y"],
                            attributes: ["keepdims": .int(0)])
            let ref = ReferenceOps.reduce(op, x: x.values, shape: x.shape, axes: [1], keepdims: false)
            try check(node, inputs: [x], constants: ["axes": Self.int64s([1])],
                      outputs: [Expected("y", ref.shape, ints: ref.y.map { Int64($0) }, dtype: .int32)])
        }
    }

    // MARK: - ArgMax / ArgMin

    func testArgMaxArgMinAxesKeepdimsAndTies() throws {
        // Values on a coarse grid, so rows have ties and select_last_index matters.
        var x = Operand("x", [3, 7, 33], seed: 160)
        x.values = x.values.map { ($0 * 4).rounded() }
        for op in ["ArgMax", "ArgMin"] {
            for (axis, keep, last) in [(0, true, false), (1, false, true), (-1, true, true), (-2, false, false)] {
                let node = Node(name: "a\(axis)", opType: op, inputs: ["x"], outputs: ["y"], attributes: [
                    "axis": .int(axis), "keepdims": .int(keep ? 1 : 0), "select_last_index": .int(last ? 1 : 0),
                ])
                let ref = ReferenceOps.argExtreme(x: x.values, shape: x.shape, axis: axis, keepdims: keep,
                                                  isMin: op == "ArgMin", selectLast: last)
                try check(node, inputs: [Input(x)], outputs: [Expected("y", ref.shape, ints: ref.y)], opset: 13)
            }
        }
    }

    func testArgMaxLongRowsAndIntegerInput() throws {
        var x = Operand("x", [3, 1001], seed: 161)
        x.values = x.values.map { ($0 * 50).rounded() }
        let node = Node(name: "long", opType: "ArgMax", inputs: ["x"], outputs: ["y"],
                        attributes: ["axis": .int(1), "select_last_index": .int(1)])
        let ref = ReferenceOps.argExtreme(x: x.values, shape: x.shape, axis: 1, keepdims: true, selectLast: true)
        try check(node, inputs: [Input(x)], outputs: [Expected("y", ref.shape, ints: ref.y)], opset: 13)

        let xi = Input(ints: "x", [4, 9, 5], seed: 162, range: 5)
        let intNode = Node(name: "int", opType: "ArgMin", inputs: ["x"], outputs: ["y"],
                           attributes: ["axis": .int(1), "keepdims": .int(0)])
        let intRef = ReferenceOps.argExtreme(x: xi.values, shape: xi.shape, axis: 1, keepdims: false, isMin: true)
        try check(intNode, inputs: [xi], outputs: [Expected("y", intRef.shape, ints: intRef.y)], opset: 13)
    }

    // MARK: - CumSum

    func testCumSumModesShortAndLongLines() throws {
        // [4, 5, 6] axis 1: many short lines (an invocation each); [3, 1001] axis -1: long lines (a workgroup each).
        for (shape, axis) in [([4, 5, 6], 1), ([3, 1001], -1)] {
            let x = Operand("x", shape, seed: 170)
            for (exclusive, reverse) in [(false, false), (true, false), (false, true), (true, true)] {
                let node = Node(name: "\(shape)", opType: "CumSum", inputs: ["x", "axis"], outputs: ["y"], attributes: [
                    "exclusive": .int(exclusive ? 1 : 0), "reverse": .int(reverse ? 1 : 0),
                ])
                let ref = ReferenceOps.cumSum(x: x.values, shape: shape, axis: axis, exclusive: exclusive, reverse: reverse)
                try check(node, inputs: [Input(x)],
                          constants: ["axis": ConstantTensor.make(dtype: .int32, shape: [], integers: [axis])],
                          outputs: [Expected("y", shape, ref)], opset: 14)
            }
        }
    }

    func testCumSumIntegers() throws {
        let x = Input(ints: "x", [3, 300], seed: 171)
        let node = Node(name: "int", opType: "CumSum", inputs: ["x", "axis"], outputs: ["y"], attributes: ["exclusive": .int(1)])
        let ref = ReferenceOps.cumSum(x: x.values, shape: x.shape, axis: 1, exclusive: true)
        try check(node, inputs: [x], constants: ["axis": Self.int64s([1], [])],
                  outputs: [Expected("y", x.shape, ints: ref.map { Int64($0) }, dtype: .int32)], opset: 14)
    }

    // MARK: - Compile-time checks

    func testReduceScheduleChoice() {
        typealias L = LoweringContext
        XCTAssertEqual(L.reduceSchedule(outputs: 1_000_000, length: 7, contiguous: true).columns, 64)  // short rows
        XCTAssertTrue(L.reduceSchedule(outputs: 1_000_000, length: 1001, contiguous: true) == (1, 64))
        XCTAssertTrue(L.reduceSchedule(outputs: 2, length: 5003, contiguous: true) == (1, 256))
        XCTAssertTrue(L.reduceSchedule(outputs: 3, length: 1001, contiguous: false) == (1, 64))  // too few outputs
        XCTAssertTrue(L.reduceSchedule(outputs: 4096, length: 1024, contiguous: false) == (8, 256))
        XCTAssertTrue(L.reduceSchedule(outputs: 1 << 20, length: 1024, contiguous: false) == (64, 256))
        XCTAssertTrue(L.reducesPerGroup(outputs: 100, length: 33, contiguous: false))
        XCTAssertFalse(L.reducesPerGroup(outputs: 100_000, length: 33, contiguous: false))
        XCTAssertFalse(L.reducesPerGroup(outputs: 10, length: 7, contiguous: true))
    }

    func testReductionLayoutCoalescesAxes() {
        let layout = ReductionLayout(shape: [2, 5, 1, 3, 7], reduced: [1, 2, 4])
        XCTAssertEqual(layout.keptShape, [2, 3])
        XCTAssertEqual(layout.keptStrides, [105, 7])
        XCTAssertEqual(layout.reducedShape, [5, 7])
        XCTAssertEqual(layout.reducedStrides, [21, 1])
        let merged = ReductionLayout(shape: [4, 3, 5], reduced: [1, 2])
        XCTAssertEqual(merged.reducedShape, [15])
        XCTAssertEqual(merged.keptShape, [4])
        XCTAssertTrue(merged.reducesContiguously)
    }

    func testUnsupportedCasesAreCompileErrors() throws {
        let x = ValueInfo(name: "x", dtype: .float32, shape: [2, 3])
        func lower(_ node: Node, opset: Int = 18, initializers: [String: ConstantTensor] = [:]) throws {
            var values = ["x": x]
            for (name, t) in initializers { values[name] = ValueInfo(name: name, dtype: t.dtype, shape: t.shape) }
            let graph = Graph(name: "bad", nodes: [node], inputs: [x], outputs: [ValueInfo(name: "y", dtype: .float32, shape: nil)],
                              initializers: initializers, values: values, opset: opset, sourcePath: "<bad>")
            try inferShapes(graph)
            _ = try Lowering.lower(graph, precision: .fp32)
        }
        let ln = Node(name: "ln", opType: "LayerNormalization", inputs: ["x", "s"], outputs: ["y"],
                      attributes: ["stash_type": .int(11)])
        XCTAssertThrowsError(try lower(ln, initializers: ["s": Self.floats([1, 1, 1], [3])])) { error in
            XCTAssertEqual((error as? CompileError)?.node, "ln")
            XCTAssertTrue("\(error)".contains("stash_type"), "\(error)")
        }
        let gn = Node(name: "gn", opType: "GroupNormalization", inputs: ["x", "s", "s"], outputs: ["y"],
                      attributes: ["num_groups": .int(2)])
        XCTAssertThrowsError(try lower(gn, initializers: ["s": Self.floats([1, 1, 1], [3])])) { error in
            XCTAssertTrue("\(error)".contains("num_groups"), "\(error)")
        }
        let dynamicAxes = Node(name: "r", opType: "ReduceMean", inputs: ["x", "x"], outputs: ["y"])
        XCTAssertThrowsError(try lower(dynamicAxes)) { error in
            XCTAssertTrue("\(error)".contains("compile-time constant"), "\(error)")
        }
    }
}
