import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

/// Differential tests of the data-movement ops (Lowering+Movement*.swift, Lowering+Resize.swift): one- and
/// few-node graphs on odd shapes with a fixed seed, float and int64 data, through the compiler and the runtime on
/// the default device, in both weight precisions and both load modes, against ReferenceOps+Movement. Data
/// movement copies words, so results must be exact (Resize's interpolation: 1e-5 relative). Also checks how many
/// copy steps the layout rules leave.
final class MovementOpTests: XCTestCase {
    /// A graph input: float32 or int64 values (held as Double).
    struct Input {
        var name: String
        var shape: [Int]
        var dtype: DType
        var values: [Double]

        /// Seeded floats in [-1, 1).
        init(_ name: String, _ shape: [Int], seed: UInt64) {
            var rng = ReferenceOps.SeededRandom(seed: seed)
            self.init(name, shape, dtype: .float32, values: rng.floats(ReferenceOps.count(shape)).map(Double.init))
        }

        /// Distinct int64 values (so a misplaced element shows).
        init(ints name: String, _ shape: [Int]) {
            self.init(name, shape, dtype: .int64, values: (0..<ReferenceOps.count(shape)).map { Double($0 * 7 - 1000) })
        }

        init(_ name: String, _ shape: [Int], dtype: DType, values: [Double]) {
            self.name = name
            self.shape = shape
            self.dtype = dtype
            self.values = values
        }

        var host: HostTensor {
            dtype == .int64 ? HostTensor(name: name, shape: shape, int64s: values.map { Int64($0) })
                            : HostTensor(name: name, shape: shape, floats: values.map { Float($0) })
        }
    }

    struct Expected {
        var name: String
        var shape: [Int]
        var values: [Double]
    }

    static func ints(_ values: [Int], shape: [Int]? = nil) -> ConstantTensor {
        .make(dtype: .int64, shape: shape ?? [values.count], integers: values)
    }

    static func floats(_ values: [Double], shape: [Int]) -> ConstantTensor {
        .make(dtype: .float32, shape: shape, reals: values)
    }

    /// Compiles `nodes` (graph outputs: `expected`, by name) with `inputs` as graph inputs and `constants` as
    /// initializers, runs it streaming and preloaded in fp32 and fp16 and compares every output with `expected`
    /// (exactly, or within `tolerance` relative L2 error). Returns the fp32 program (to count its steps).
    @discardableResult
    func check(_ nodes: [Node], inputs: [Input], constants: [String: ConstantTensor] = [:], expected: [Expected],
               opset: Int = 18, tolerance: Double = 0, file: StaticString = #filePath,
               line: UInt = #line) throws -> LoweredProgram {
        let label = nodes.map(\.opType).joined(separator: "+")
        var fp32Program: LoweredProgram?
        for precision in Precision.allCases {
            let inputInfo = inputs.map { ValueInfo(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
            let outputDType = inputs.first?.dtype ?? .float32
            let graph = Graph(
                name: label, nodes: nodes, inputs: inputInfo,
                outputs: expected.map { ValueInfo(name: $0.name, dtype: outputDType, shape: nil) },
                initializers: constants,
                values: Dictionary(uniqueKeysWithValues: (inputInfo + constants.map {
                    ValueInfo(name: $0.key, dtype: $0.value.dtype, shape: $0.value.shape)
                }).map { ($0.name, $0) }),
                opset: opset, sourcePath: "<\(label) test>")
            try graph.simplify()
            try inferShapes(graph)
            var program = try Lowering.lower(graph, precision: precision)
            program.removeUnusedKernels()
            let dispatched = Set(program.steps.map(\.kernel))
            XCTAssertEqual(dispatched.count, program.kernels.count, "\(label): a kernel without steps", file: file, line: line)
            if precision == .fp32 { fp32Program = program }
            let results = try runInEveryLoadMode(program, name: label, feeds: inputs.map(\.host))
            let streamed = results[.streaming]!
            XCTAssertEqual(streamed.count, expected.count, "\(label): output count", file: file, line: line)
            for (output, want) in zip(streamed, expected) {
                let tag = "\(label) \(precision) \(want.name)"
                XCTAssertEqual(output.shape, want.shape, "\(tag): shape", file: file, line: line)
                let got = output.elementType == .int64 || output.elementType == .int32
                    ? output.int64s().map(Double.init) : output.floats().map(Double.init)
                if tolerance == 0 {
                    XCTAssertEqual(got, want.values.map { output.elementType == .float32 ? Double(Float($0)) : $0 },
                                   "\(tag): values", file: file, line: line)
                } else {
                    XCTAssertLessThanOrEqual(relativeError(got, want.values), tolerance, "\(tag): relative error",
                                             file: file, line: line)
                }
            }
            XCTAssertEqual(results[.streaming], results[.preload], "\(label) \(precision): streaming != preload",
                           file: file, line: line)
        }
        return fp32Program!
    }

    /// Steps of `program` whose kernel is the strided copy (the copies `fmc inspect` counts).
    func copySteps(_ program: LoweredProgram) -> [String] {
        program.steps.map { program.kernels[$0.kernel].name }.filter { $0.hasPrefix("copy_strided<") }
    }

    // MARK: - Index arithmetic (no device)

    func testStridedAccessReshapeSplitsAndMergesOnlyEvenRuns() {
        // A transposed [4, 6] (strides 1, 4): splitting a dim is affine, merging the two is not.
        let t = StridedAccess.contiguous([6, 4]).permuted([1, 0])
        XCTAssertEqual(t.reshaped([2, 2, 3, 2]), StridedAccess(shape: [2, 2, 3, 2], strides: [2, 1, 8, 4]))
        XCTAssertNil(t.reshaped([24]))
        XCTAssertEqual(t.reshaped([1, 4, 1, 6])?.strides.enumerated().filter { [1, 3].contains($0.offset) }.map(\.element), [1, 4])
        // Broadcast (stride 0) dims merge with each other.
        let b = StridedAccess(shape: [3, 5, 2], strides: [0, 0, 1])
        XCTAssertEqual(b.reshaped([15, 2]), StridedAccess(shape: [15, 2], strides: [0, 1]))
        // A negative-step slice stays a view under reshape.
        let s = StridedAccess.contiguous([8]).sliced([ShapeRules.SliceAxis(start: 7, step: -2, count: 4)])
        XCTAssertEqual(s.reshaped([2, 2]), StridedAccess(shape: [2, 2], strides: [-4, -2], offset: 7))
    }

    func testCoalesceMergesDimsContiguousOnBothSides() {
        let read = StridedAccess.contiguous([2, 3, 4, 5]).permuted([0, 2, 3, 1])  // [2, 4, 5, 3]
        let dims = StridedAccess.coalesce(read, outStrides: StridedAccess.rowMajorStrides(read.shape))
        XCTAssertEqual(dims.shape, [2, 20, 3])
        XCTAssertEqual(dims.inStrides, [60, 1, 20])
        XCTAssertEqual(dims.outStrides, [60, 3, 1])
        XCTAssertTrue(StridedAccess(shape: [1, 6, 1], strides: [99, 1, 7]).isIdentity)
        XCTAssertFalse(StridedAccess(shape: [6], strides: [1], offset: 2).isIdentity)
    }

    // MARK: - Transpose

    func testTransposeFloatAndInt() throws {
        let perm = [2, 0, 3, 1]
        for x in [Input("x", [3, 5, 7, 2], seed: 1), Input(ints: "x", [3, 5, 7, 2])] {
            let node = Node(name: "t", opType: "Transpose", inputs: ["x"], outputs: ["y"], attributes: ["perm": .ints(perm)])
            let ref = ReferenceOps.transpose(x.values, x.shape, perm: perm)
            let program = try check([node], inputs: [x], expected: [Expected(name: "y", shape: ref.shape, values: ref.y)])
            XCTAssertEqual(copySteps(program), ["copy_strided<COPY_ROLE=transpose>[256]"])
        }
    }

    func testTransposeDefaultPermAndRank7() throws {
        let x = Input("x", [2, 3, 2, 3, 2, 3, 5], seed: 2)
        let node = Node(name: "t", opType: "Transpose", inputs: ["x"], outputs: ["y"])
        let ref = ReferenceOps.transpose(x.values, x.shape, perm: Array((0..<7).reversed()))
        let program = try check([node], inputs: [x], expected: [Expected(name: "y", shape: ref.shape, values: ref.y)])
        XCTAssertGreaterThan(copySteps(program).count, 1, "rank 7 needs several dispatches")
    }

    func testTransposeOfSizeOneDimsIsAView() throws {
        let x = Input("x", [1, 9, 1, 5], seed: 3)
        let perm = [2, 1, 0, 3]
        let nodes = [
            Node(name: "t", opType: "Transpose", inputs: ["x"], outputs: ["t"], attributes: ["perm": .ints(perm)]),
            Node(name: "relu", opType: "Relu", inputs: ["t"], outputs: ["y"]),
        ]
        let ref = ReferenceOps.transpose(x.values, x.shape, perm: perm)
        let program = try check(nodes, inputs: [x], expected: [Expected(name: "y", shape: ref.shape, values: ref.y.map { max($0, 0) })])
        XCTAssertEqual(copySteps(program), [])
        // The view is itself the graph output (of a graph input): no step at all.
        let alone = try check([nodes[0]], inputs: [x], expected: [Expected(name: "t", shape: ref.shape, values: ref.y)])
        XCTAssertEqual(alone.steps.count, 0)
    }

    func testTransposeChainThroughReshapeComposesIntoOneCopy() throws {
        // [2, 6, 4] → T(0,2,1) → [2, 4, 6] → Reshape [2, 4, 2, 3] → T(0,3,1,2) → [2, 3, 4, 2] → Relu.
        let x = Input("x", [2, 6, 4], seed: 4)
        let nodes = [
            Node(name: "t1", opType: "Transpose", inputs: ["x"], outputs: ["a"], attributes: ["perm": .ints([0, 2, 1])]),
            Node(name: "r", opType: "Reshape", inputs: ["a", "shape"], outputs: ["b"]),
            Node(name: "t2", opType: "Transpose", inputs: ["b"], outputs: ["c"], attributes: ["perm": .ints([0, 3, 1, 2])]),
            Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["y"]),
        ]
        let a = ReferenceOps.transpose(x.values, x.shape, perm: [0, 2, 1])
        let c = ReferenceOps.transpose(a.y, [2, 4, 2, 3], perm: [0, 3, 1, 2])
        let program = try check(nodes, inputs: [x], constants: ["shape": Self.ints([2, 4, 2, 3])],
                                expected: [Expected(name: "y", shape: c.shape, values: c.y.map { max($0, 0) })])
        XCTAssertEqual(copySteps(program).count, 1)
    }

    func testInverseTransposesCancel() throws {
        let x = Input("x", [2, 3, 5, 7], seed: 5)
        let nodes = [
            Node(name: "t1", opType: "Transpose", inputs: ["x"], outputs: ["a"], attributes: ["perm": .ints([0, 2, 3, 1])]),
            Node(name: "t2", opType: "Transpose", inputs: ["a"], outputs: ["b"], attributes: ["perm": .ints([0, 3, 1, 2])]),
            Node(name: "relu", opType: "Relu", inputs: ["b"], outputs: ["y"]),
        ]
        let program = try check(nodes, inputs: [x], expected: [Expected(name: "y", shape: x.shape, values: x.values.map { max($0, 0) })])
        XCTAssertEqual(copySteps(program), [])
    }

    func testTransposeComposesFromTheWriteSide() throws {
        // [3, 4, 5] → T(0,2,1) → [3, 5, 4] → Reshape [3, 20] → T(1,0): the reshape merges dims the first copy
        // reads 5 apart and 1 apart, so only the second transpose's write pattern composes.
        let x = Input("x", [3, 4, 5], seed: 24)
        let nodes = [
            Node(name: "t1", opType: "Transpose", inputs: ["x"], outputs: ["a"], attributes: ["perm": .ints([0, 2, 1])]),
            Node(name: "r", opType: "Reshape", inputs: ["a", "shape"], outputs: ["b"]),
            Node(name: "t2", opType: "Transpose", inputs: ["b"], outputs: ["y"], attributes: ["perm": .ints([1, 0])]),
        ]
        let a = ReferenceOps.transpose(x.values, x.shape, perm: [0, 2, 1])
        let y = ReferenceOps.transpose(a.y, [3, 20], perm: [1, 0])
        let program = try check(nodes, inputs: [x], constants: ["shape": Self.ints([3, 20])],
                                expected: [Expected(name: "y", shape: y.shape, values: y.y)])
        XCTAssertEqual(copySteps(program).count, 1)
    }

    func testTransposeBeforeConcatIsFoldedIntoTheConcatCopy() throws {
        // The attention output pattern: [2, 4, 7, 4] → T(0,2,1,3) → Reshape [2, 7, 16] → Concat with b.
        let x = Input("x", [2, 4, 7, 4], seed: 25), b = Input("b", [2, 7, 3], seed: 26)
        let nodes = [
            Node(name: "t", opType: "Transpose", inputs: ["x"], outputs: ["a"], attributes: ["perm": .ints([0, 2, 1, 3])]),
            Node(name: "r", opType: "Reshape", inputs: ["a", "shape"], outputs: ["c"]),
            Node(name: "cat", opType: "Concat", inputs: ["b", "c", "b"], outputs: ["y"], attributes: ["axis": .int(2)]),
        ]
        let a = ReferenceOps.transpose(x.values, x.shape, perm: [0, 2, 1, 3])
        let y = ReferenceOps.concat([(b.values, b.shape), (a.y, [2, 7, 16]), (b.values, b.shape)], axis: 2)
        let program = try check(nodes, inputs: [x, b], constants: ["shape": Self.ints([2, 7, 16])],
                                expected: [Expected(name: "y", shape: y.shape, values: y.y)])
        XCTAssertEqual(copySteps(program).count, 3, "one copy per concat input, none for the transpose")
    }

    /// A copy read by two movement ops is composed into both (each reads x through the composed strides) and goes
    /// once the second has: t2 ∘ t1 is the identity (b is a view of x), t3 ∘ t1 one copy from x.
    func testTransposeFeedingTwoTransposesIsComposedIntoBoth() throws {
        let x = Input("x", [3, 4, 5], seed: 6)
        let nodes = [
            Node(name: "t1", opType: "Transpose", inputs: ["x"], outputs: ["a"], attributes: ["perm": .ints([2, 0, 1])]),
            Node(name: "t2", opType: "Transpose", inputs: ["a"], outputs: ["b"], attributes: ["perm": .ints([1, 2, 0])]),
            Node(name: "add", opType: "Add", inputs: ["b", "x"], outputs: ["s"]),
            Node(name: "t3", opType: "Transpose", inputs: ["a"], outputs: ["y2"], attributes: ["perm": .ints([0, 2, 1])]),
        ]
        let a = ReferenceOps.transpose(x.values, x.shape, perm: [2, 0, 1])
        let y2 = ReferenceOps.transpose(a.y, a.shape, perm: [0, 2, 1])
        let program = try check(nodes, inputs: [x], expected: [
            Expected(name: "s", shape: x.shape, values: x.values.map { 2 * $0 }),
            Expected(name: "y2", shape: y2.shape, values: y2.y),
        ])
        XCTAssertEqual(copySteps(program).count, 1)
    }

    /// A copy read by a movement op and by another kind of op stays (the Add needs its bytes): both transposes copy.
    func testTransposeFeedingATransposeAndAnAddIsNotComposed() throws {
        let x = Input("x", [3, 4, 5], seed: 6)
        let nodes = [
            Node(name: "t1", opType: "Transpose", inputs: ["x"], outputs: ["a"], attributes: ["perm": .ints([2, 0, 1])]),
            Node(name: "t2", opType: "Transpose", inputs: ["a"], outputs: ["b"], attributes: ["perm": .ints([0, 2, 1])]),
            Node(name: "add", opType: "Add", inputs: ["a", "a"], outputs: ["s"]),
        ]
        let a = ReferenceOps.transpose(x.values, x.shape, perm: [2, 0, 1])
        let b = ReferenceOps.transpose(a.y, a.shape, perm: [0, 2, 1])
        let program = try check(nodes, inputs: [x], expected: [
            Expected(name: "b", shape: b.shape, values: b.y),
            Expected(name: "s", shape: a.shape, values: a.y.map { 2 * $0 }),
        ])
        XCTAssertEqual(copySteps(program).count, 2)
    }

    /// ViT's head split: one Transpose read through a Squeeze by three Gathers of constant indices, each feeding a
    /// Transpose of its own. The Gathers compose the first Transpose, which goes once the third has; each Gather's copy
    /// is then composed into its Transpose: three copies from x, none of the big transpose.
    func testTransposeReadByThreeGathersComposesIntoEach() throws {
        let x = Input("x", [5, 3, 8], seed: 9)
        var nodes = [
            Node(name: "t", opType: "Transpose", inputs: ["x"], outputs: ["t"], attributes: ["perm": .ints([1, 0, 2])]),
        ]
        var constants: [String: ConstantTensor] = [:]
        var expected: [Expected] = []
        let t = ReferenceOps.transpose(x.values, x.shape, perm: [1, 0, 2])
        for j in 0..<3 {
            constants["i\(j)"] = Self.ints([j], shape: [])
            nodes.append(Node(name: "g\(j)", opType: "Gather", inputs: ["t", "i\(j)"], outputs: ["g\(j)"],
                              attributes: ["axis": .int(0)]))
            nodes.append(Node(name: "h\(j)", opType: "Transpose", inputs: ["g\(j)"], outputs: ["y\(j)"],
                              attributes: ["perm": .ints([1, 0])]))
            let slice = Array(t.y[(j * 40)..<((j + 1) * 40)])  // t[j]: [5, 8]
            let y = ReferenceOps.transpose(slice, [5, 8], perm: [1, 0])
            expected.append(Expected(name: "y\(j)", shape: y.shape, values: y.y))
        }
        let program = try check(nodes, inputs: [x], constants: constants, expected: expected)
        XCTAssertEqual(copySteps(program).count, 3, "one copy per output, none of t")
    }

    func testTransposeOfConstantFolds() throws {
        let x = Input("x", [3, 4], seed: 7)
        var rng = ReferenceOps.SeededRandom(seed: 8)
        let w = rng.floats(12).map(Double.init)
        let nodes = [
            Node(name: "t", opType: "Transpose", inputs: ["w"], outputs: ["wt"], attributes: ["perm": .ints([1, 0])]),
            Node(name: "add", opType: "Add", inputs: ["x", "wt"], outputs: ["y"]),
        ]
        let wt = ReferenceOps.transpose(w, [4, 3], perm: [1, 0])
        let program = try check(nodes, inputs: [x], constants: ["w": Self.floats(w, shape: [4, 3])],
                                expected: [Expected(name: "y", shape: [3, 4], values: zip(x.values, wt.y).map { Double(Float($0) + Float($1)) })])
        XCTAssertEqual(copySteps(program), [])
    }

    // MARK: - Slice

    func testSliceNegativeStepsAxesAndClamping() throws {
        let starts = [-1, 1, 20], ends = [Int(Int64.min), 100, 2], axes = [-1, 1, 0], steps = [-2, 3, -4]
        for x in [Input("x", [11, 9, 7], seed: 9), Input(ints: "x", [11, 9, 7])] {
            let node = Node(name: "s", opType: "Slice", inputs: ["x", "starts", "ends", "axes", "steps"], outputs: ["y"])
            let ref = ReferenceOps.slice(x.values, x.shape, starts: starts, ends: ends, axes: axes, steps: steps)
            let program = try check([node], inputs: [x], constants: [
                "starts": Self.ints(starts), "ends": Self.ints(ends), "axes": Self.ints(axes), "steps": Self.ints(steps),
            ], expected: [Expected(name: "y", shape: ref.shape, values: ref.y)])
            XCTAssertEqual(copySteps(program).count, 1)
        }
    }

    func testSliceOfTransposeComposes() throws {
        let x = Input("x", [6, 5, 4], seed: 10)
        let nodes = [
            Node(name: "t", opType: "Transpose", inputs: ["x"], outputs: ["a"], attributes: ["perm": .ints([2, 1, 0])]),
            Node(name: "s", opType: "Slice", inputs: ["a", "starts", "ends", "axes", "steps"], outputs: ["y"]),
        ]
        let a = ReferenceOps.transpose(x.values, x.shape, perm: [2, 1, 0])
        let ref = ReferenceOps.slice(a.y, a.shape, starts: [1, 4], ends: [3, 0], axes: [0, 1], steps: [1, -1])
        let program = try check(nodes, inputs: [x], constants: [
            "starts": Self.ints([1, 4]), "ends": Self.ints([3, 0]), "axes": Self.ints([0, 1]), "steps": Self.ints([1, -1]),
        ], expected: [Expected(name: "y", shape: ref.shape, values: ref.y)])
        XCTAssertEqual(copySteps(program).count, 1)
    }

    // MARK: - Concat and Split

    func testConcatNegativeAxisMixedInputs() throws {
        let a = Input("a", [2, 3, 5], seed: 11), b = Input("b", [2, 4, 5], seed: 12)
        var rng = ReferenceOps.SeededRandom(seed: 13)
        let c = rng.floats(10).map(Double.init)
        let node = Node(name: "cat", opType: "Concat", inputs: ["a", "c", "b", "a"], outputs: ["y"], attributes: ["axis": .int(-2)])
        let ref = ReferenceOps.concat([(a.values, a.shape), (c, [2, 1, 5]), (b.values, b.shape), (a.values, a.shape)], axis: 1)
        try check([node], inputs: [a, b], constants: ["c": Self.floats(c, shape: [2, 1, 5])],
                  expected: [Expected(name: "y", shape: ref.shape, values: ref.y)])
    }

    func testConcatIntLastAxisOfTransposes() throws {
        let a = Input(ints: "a", [3, 4]), b = Input("b", [4, 2], dtype: .int64, values: (0..<8).map { Double(-$0) })
        let nodes = [
            Node(name: "t", opType: "Transpose", inputs: ["b"], outputs: ["bt"], attributes: ["perm": .ints([1, 0])]),
            Node(name: "cat", opType: "Concat", inputs: ["a", "bt", "a"], outputs: ["y"], attributes: ["axis": .int(0)]),
        ]
        let bt = ReferenceOps.transpose(b.values, b.shape, perm: [1, 0])
        let ref = ReferenceOps.concat([(a.values, a.shape), (bt.y, bt.shape), (a.values, a.shape)], axis: 0)
        let program = try check(nodes, inputs: [a, b], expected: [Expected(name: "y", shape: ref.shape, values: ref.y)])
        XCTAssertEqual(copySteps(program).count, 3, "the transpose is composed into its concat copy")
    }

    func testSplitAttributeInputAndNumOutputs() throws {
        let x = Input("x", [5, 7, 3], seed: 14)
        // Opset 18 split input, uneven.
        let sizes = [2, 0, 5]
        var node = Node(name: "split", opType: "Split", inputs: ["x", "split"], outputs: ["y0", "y1", "y2"],
                        attributes: ["axis": .int(-2)])
        var refs = ReferenceOps.split(x.values, x.shape, axis: 1, sizes: sizes)
        try check([node], inputs: [x], constants: ["split": Self.ints(sizes)],
                  expected: refs.enumerated().map { Expected(name: "y\($0.offset)", shape: $0.element.shape, values: $0.element.y) })
        // num_outputs: ceil(5 / 3) = 2 → [2, 2, 1].
        node = Node(name: "split", opType: "Split", inputs: ["x"], outputs: ["y0", "y1", "y2"], attributes: ["num_outputs": .int(3)])
        refs = ReferenceOps.split(x.values, x.shape, axis: 0, sizes: [2, 2, 1])
        try check([node], inputs: [x], expected: refs.enumerated().map {
            Expected(name: "y\($0.offset)", shape: $0.element.shape, values: $0.element.y)
        })
        // Opset 11 attribute, int data.
        let xi = Input(ints: "x", [4, 6])
        node = Node(name: "split", opType: "Split", inputs: ["x"], outputs: ["y0", "y1"], attributes: ["axis": .int(1), "split": .ints([1, 5])])
        refs = ReferenceOps.split(xi.values, xi.shape, axis: 1, sizes: [1, 5])
        try check([node], inputs: [xi], expected: refs.enumerated().map {
            Expected(name: "y\($0.offset)", shape: $0.element.shape, values: $0.element.y)
        }, opset: 11)
    }

    // MARK: - Gather

    func testGatherRuntimeIndicesNegativeAndAxis() throws {
        let x = Input("x", [4, 5, 3], seed: 15)
        let indices = Input("i", [2, 3], dtype: .int64, values: [0, -1, 2, 4, -5, 1])
        let node = Node(name: "g", opType: "Gather", inputs: ["x", "i"], outputs: ["y"], attributes: ["axis": .int(1)])
        let ref = ReferenceOps.gather(x.values, x.shape, indices: indices.values.map { Int($0) }, indexShape: [2, 3], axis: 1)
        try check([node], inputs: [x, indices], expected: [Expected(name: "y", shape: ref.shape, values: ref.y)])
        let xi = Input(ints: "x", [4, 5, 3])
        let refInt = ReferenceOps.gather(xi.values, xi.shape, indices: indices.values.map { Int($0) }, indexShape: [2, 3], axis: 1)
        try check([node], inputs: [xi, indices], expected: [Expected(name: "y", shape: refInt.shape, values: refInt.y)])
    }

    func testGatherEmbeddingTableFromWeightImage() throws {
        var rng = ReferenceOps.SeededRandom(seed: 16)
        let table = rng.floats(331 * 13).map { Double($0) }
        let ids = Input("ids", [2, 5], dtype: .int64, values: [3, 0, 330, 7, 7, 1, 2, 329, -1, 100])
        let node = Node(name: "embed", opType: "Gather", inputs: ["table", "ids"], outputs: ["y"])
        let ref = ReferenceOps.gather(table, [331, 13], indices: ids.values.map { Int($0) }, indexShape: [2, 5], axis: 0)
        let program = try check([node], inputs: [ids], constants: ["table": Self.floats(table, shape: [331, 13])],
                                expected: [Expected(name: "y", shape: ref.shape, values: ref.y)], tolerance: 1e-3)
        XCTAssertEqual(program.images.count, 1, "the table is a weight image")
        // A small table (a lookup table, not an embedding) stays an exact resident constant.
        let small = Array(table[..<(37 * 13)])
        let smallRef = ReferenceOps.gather(small, [37, 13], indices: [3, 0, 36, 7, 7, 1, 2, 35, -1, 10], indexShape: [2, 5], axis: 0)
        let smallIds = Input("ids", [2, 5], dtype: .int64, values: [3, 0, 36, 7, 7, 1, 2, 35, -1, 10])
        let resident = try check([node], inputs: [smallIds], constants: ["table": Self.floats(small, shape: [37, 13])],
                                 expected: [Expected(name: "y", shape: smallRef.shape, values: smallRef.y)])
        XCTAssertEqual(resident.images.count, 0)
    }

    func testGatherConstantIndicesBecomeStridedCopies() throws {
        let x = Input("x", [3, 8, 2], seed: 17)
        for (indices, shape) in [([5], [Int]()), ([1, 3, 5, 7], [2, 2]), ([6, 1, 0], [3])] {
            let node = Node(name: "g", opType: "Gather", inputs: ["x", "i"], outputs: ["y"], attributes: ["axis": .int(-2)])
            let ref = ReferenceOps.gather(x.values, x.shape, indices: indices, indexShape: shape, axis: 1)
            let program = try check([node], inputs: [x], constants: ["i": Self.ints(indices, shape: shape)],
                                    expected: [Expected(name: "y", shape: ref.shape, values: ref.y)])
            let evenlySpaced = indices != [6, 1, 0]
            XCTAssertEqual(copySteps(program).count, evenlySpaced ? 1 : 0, "\(indices)")
        }
    }

    // MARK: - Expand and Tile

    func testExpandAndTile() throws {
        for x in [Input("x", [3, 1, 5], seed: 18), Input(ints: "x", [3, 1, 5])] {
            let expand = Node(name: "e", opType: "Expand", inputs: ["x", "shape"], outputs: ["y"])
            let e = ReferenceOps.expand(x.values, x.shape, to: [2, 1, 4, 1])
            try check([expand], inputs: [x], constants: ["shape": Self.ints([2, 1, 4, 1])],
                      expected: [Expected(name: "y", shape: e.shape, values: e.y)])
            let tile = Node(name: "t", opType: "Tile", inputs: ["x", "repeats"], outputs: ["y"])
            let t = ReferenceOps.tile(x.values, x.shape, repeats: [2, 3, 1])
            try check([tile], inputs: [x], constants: ["repeats": Self.ints([2, 3, 1])],
                      expected: [Expected(name: "y", shape: t.shape, values: t.y)])
        }
    }

    // MARK: - Pad

    func testPadModes() throws {
        let pads = [1, 0, 2, 3, 2, 1, 0, -1]  // begin [1, 0, 2, 3], end [2, 1, 0, -1]
        for x in [Input("x", [2, 3, 4, 5], seed: 19), Input(ints: "x", [2, 3, 4, 5])] {
            for mode in ["constant", "reflect", "edge", "wrap"] {
                let node = Node(name: "pad", opType: "Pad", inputs: ["x", "pads", "value"], outputs: ["y"],
                                attributes: ["mode": .string(mode)])
                let value: ConstantTensor = x.dtype == .int64 ? Self.ints([-7], shape: []) : Self.floats([2.5], shape: [])
                let ref = ReferenceOps.pad(x.values, x.shape, pads: pads, mode: mode, value: x.dtype == .int64 ? -7 : 2.5)
                try check([node], inputs: [x], constants: ["pads": Self.ints(pads), "value": value],
                          expected: [Expected(name: "y", shape: ref.shape, values: ref.y)], opset: 19)
            }
        }
    }

    func testPadRuntimeValueAxesAndOpset2() throws {
        let x = Input("x", [3, 4, 5], seed: 20)
        let v = Input("v", [], dtype: .float32, values: [-3.25])
        let node = Node(name: "pad", opType: "Pad", inputs: ["x", "pads", "v", "axes"], outputs: ["y"])
        let ref = ReferenceOps.pad(x.values, x.shape, pads: [0, 2, 1, 0, 1, 3], mode: "constant", value: -3.25)
        try check([node], inputs: [x, v], constants: ["pads": Self.ints([2, 1, 1, 3]), "axes": Self.ints([-2, 2])],
                  expected: [Expected(name: "y", shape: ref.shape, values: ref.y)])
        let old = Node(name: "pad", opType: "Pad", inputs: ["x"], outputs: ["y"],
                       attributes: ["pads": .ints([1, 1, 0, 0, 2, 1]), "mode": .string("reflect")])
        let refOld = ReferenceOps.pad(x.values, x.shape, pads: [1, 1, 0, 0, 2, 1], mode: "reflect")
        try check([old], inputs: [x], expected: [Expected(name: "y", shape: refOld.shape, values: refOld.y)], opset: 9)
    }

    // MARK: - Trilu

    func testTriluUpperLowerWithK() throws {
        for (upper, k) in [(true, 0), (true, -2), (false, 1), (false, -9)] {
            for x in [Input("x", [2, 5, 7], seed: 21), Input(ints: "x", [2, 5, 7])] {
                let node = Node(name: "trilu", opType: "Trilu", inputs: ["x", "k"], outputs: ["y"],
                                attributes: ["upper": .int(upper ? 1 : 0)])
                let ref = ReferenceOps.trilu(x.values, x.shape, k: k, upper: upper)
                try check([node], inputs: [x], constants: ["k": Self.ints([k], shape: [])],
                          expected: [Expected(name: "y", shape: x.shape, values: ref)])
            }
        }
    }

    // MARK: - Resize

    func testResizeNearestModes() throws {
        let x = Input("x", [1, 2, 5, 7], seed: 22)
        let cases: [(coordinate: String, nearest: String, scales: (Double, Double))] = [
            ("asymmetric", "floor", (2, 3)), ("half_pixel", "round_prefer_floor", (1.6, 0.6)),
            ("align_corners", "round_prefer_ceil", (2, 2)), ("half_pixel", "ceil", (0.8, 1.5)),
            ("pytorch_half_pixel", "round_prefer_floor", (0.4, 1.2)),
        ]
        for c in cases {
            let node = Node(name: "resize", opType: "Resize", inputs: ["x", "", "scales"], outputs: ["y"], attributes: [
                "mode": .string("nearest"), "coordinate_transformation_mode": .string(c.coordinate),
                "nearest_mode": .string(c.nearest),
            ])
            let rounded = (Double(Float(c.scales.0)), Double(Float(c.scales.1)))
            let ref = ReferenceOps.resize2D(x.values, x.shape, scales: rounded, mode: "nearest", coordinate: c.coordinate,
                                            nearest: c.nearest)
            let scales = Self.floats([1, 1, c.scales.0, c.scales.1].map { Double(Float($0)) }, shape: [4])
            try check([node], inputs: [x], constants: ["scales": scales],
                      expected: [Expected(name: "y", shape: ref.shape, values: ref.y)], opset: 13)
        }
    }

    func testResizeLinearModesWithSizes() throws {
        let x = Input("x", [2, 3, 6, 5], seed: 23)
        for coordinate in ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"] {
            let node = Node(name: "resize", opType: "Resize", inputs: ["x", "", "", "sizes"], outputs: ["y"], attributes: [
                "mode": .string("linear"), "coordinate_transformation_mode": .string(coordinate),
            ])
            let ref = ReferenceOps.resize2D(x.values, x.shape, scales: (9.0 / 6.0, 3.0 / 5.0), mode: "linear",
                                            coordinate: coordinate)
            try check([node], inputs: [x], constants: ["sizes": Self.ints([2, 3, 9, 3])],
                      expected: [Expected(name: "y", shape: ref.shape, values: ref.y)], opset: 13, tolerance: 1e-5)
        }
    }

    func testResizeNearestThreeDims() throws {
        // Channels, height and width at once (asymmetric, floor: y[c] = x[⌊c_d / scale_d⌋]).
        let x = Input("x", [2, 3, 4, 5], seed: 27)
        let scales = [1.0, 2.0, 0.5, 1.5]
        let node = Node(name: "resize", opType: "Resize", inputs: ["x", "", "scales"], outputs: ["y"], attributes: [
            "mode": .string("nearest"), "coordinate_transformation_mode": .string("asymmetric"), "nearest_mode": .string("floor"),
        ])
        let out = zip(x.shape, scales).map { Int(Double($0) * $1) }
        let y = ReferenceOps.generate(out) { c in
            x.values[ReferenceOps.flat(c.indices.map { Int((Double(c[$0]) / scales[$0]).rounded(.down)) }, x.shape)]
        }
        try check([node], inputs: [x], constants: ["scales": Self.floats(scales, shape: [4])],
                  expected: [Expected(name: "y", shape: out, values: y)], opset: 13)
    }

    func testResizeNearestIntData() throws {
        let x = Input(ints: "x", [1, 1, 3, 4])
        let node = Node(name: "resize", opType: "Resize", inputs: ["x", "", "scales"], outputs: ["y"], attributes: [
            "mode": .string("nearest"), "coordinate_transformation_mode": .string("asymmetric"), "nearest_mode": .string("floor"),
        ])
        let ref = ReferenceOps.resize2D(x.values, x.shape, scales: (2, 2), mode: "nearest", coordinate: "asymmetric", nearest: "floor")
        try check([node], inputs: [x], constants: ["scales": Self.floats([1, 1, 2, 2], shape: [4])],
                  expected: [Expected(name: "y", shape: ref.shape, values: ref.y)], opset: 13)
    }
}
