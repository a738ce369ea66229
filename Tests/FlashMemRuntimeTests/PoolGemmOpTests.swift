import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

private typealias R = ReferenceOps

/// Differential tests of general Gemm (A and B each an activation or a constant, transA / transB, any alpha and
/// beta, C constant or an activation and broadcast) and of pooling over 1 to 3 spatial dims (MaxPool with its
/// Indices in both storage orders, AveragePool with pads, dilations, ceil_mode and count_include_pad): small
/// graphs on odd shapes with a fixed seed, compiled and run on the default device in both weight precisions
/// and both load modes, against ReferenceOps. Float outputs: relative L2 error ≤ 1e-4 (fp32) / 1e-2 (fp16) and
/// streaming == preload bit for bit; Indices: exact. Each case also names the kernels it must go through, so it
/// keeps covering the path it is for. Owned by the Gemm / pooling work.
final class PoolGemmOpTests: XCTestCase {
    typealias Operand = OpTests.Operand

    /// An expected graph output: floats, or the int64 Indices of MaxPool.
    struct Expected {
        var name: String
        var shape: [Int]
        var values: [Float] = []
        var indices: [Int64]?

        init(_ name: String, _ shape: [Int], _ values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }

        init(_ name: String, _ shape: [Int], indices: [Int64]) {
            self.name = name
            self.shape = shape
            self.indices = indices
        }
    }

    /// Compiles `nodes` with `inputs` as graph inputs and `weights` as initializers, checks that the lowering
    /// chose a kernel starting with each of `kernels`, runs the bundle streaming (4 KiB chunks, so weights
    /// arrive in pieces) and preloaded in fp32 and fp16, and compares every output.
    /// `inspect` sees each precision's lowered program before it runs.
    func check(_ nodes: [Node], inputs: [Operand], weights: [Operand] = [], outputs: [Expected], kernels: [String],
               inspect: (LoweredProgram) -> Void = { _ in }, file: StaticString = #filePath, line: UInt = #line) throws {
        let label = nodes.map(\.opType).joined(separator: "+")
        for precision in Precision.allCases {
            let initializers = Dictionary(uniqueKeysWithValues: weights.map { ($0.name, $0.constant) })
            let inputInfo = inputs.map { ValueInfo(name: $0.name, dtype: .float32, shape: $0.shape) }
            let values = Dictionary(uniqueKeysWithValues: (inputInfo + weights.map {
                ValueInfo(name: $0.name, dtype: .float32, shape: $0.shape)
            }).map { ($0.name, $0) })
            let graph = Graph(
                name: label, nodes: nodes, inputs: inputInfo,
                outputs: outputs.map {
                    ValueInfo(name: $0.name, dtype: $0.indices == nil ? .float32 : .int64, shape: nil)
                },
                initializers: initializers, values: values, opset: 19, sourcePath: "<\(label) test>")
            try graph.simplify()
            try inferShapes(graph)
            let program = try Lowering.lower(graph, precision: precision)
            for prefix in kernels where !program.kernels.contains(where: { $0.name.hasPrefix(prefix) }) {
                XCTFail("\(label): no kernel \(prefix)… among \(program.kernels.map(\.name))", file: file, line: line)
            }
            inspect(program)
            let feeds = inputs.map { HostTensor(name: $0.name, shape: $0.shape, floats: $0.values) }
            let results = try runInEveryLoadMode(program, name: label, feeds: feeds)
            let streamed = try XCTUnwrap(results[.streaming]), preloaded = try XCTUnwrap(results[.preload])
            XCTAssertEqual(streamed.count, outputs.count, "\(label) \(precision): output count", file: file, line: line)
            let tolerance: Float = precision == .fp32 ? 1e-4 : 1e-2
            for (i, expected) in outputs.enumerated() where i < streamed.count {
                let what = "\(label) \(precision) output \(expected.name)"
                XCTAssertEqual(streamed[i].shape, expected.shape, "\(what): shape", file: file, line: line)
                XCTAssertEqual(streamed[i], preloaded[i], "\(what): streaming != preload", file: file, line: line)
                if let indices = expected.indices {
                    XCTAssertEqual(streamed[i].int64s(), indices, "\(what): indices", file: file, line: line)
                } else {
                    let error = relativeError(streamed[i].floats(), expected.values)
                    XCTAssertLessThanOrEqual(error, tolerance, "\(what): relative error", file: file, line: line)
                }
            }
        }
    }

    private func gemmNode(_ inputs: [String], _ output: String = "y", transA: Bool = false, transB: Bool = false,
                          alpha: Float = 1, beta: Float = 1) -> Node {
        Node(name: "gemm", opType: "Gemm", inputs: inputs, outputs: [output], attributes: [
            "transA": .int(transA ? 1 : 0), "transB": .int(transB ? 1 : 0),
            "alpha": .float(alpha), "beta": .float(beta),
        ])
    }

    // MARK: - Gemm with an activation B (matmul.comp)

    func testGemmActivationsTransposedWithAlphaBetaAndRowBroadcastC() throws {
        let a = Operand("a", [19, 37], seed: 101)   // transA: A' is [37, 19]
        let b = Operand("b", [23, 19], seed: 102)   // transB: B' is [19, 23]
        let c = Operand("c", [37, 1], seed: 103)    // broadcast along N
        let ref = R.gemm(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape, c: c.values, cShape: c.shape,
                         alpha: 0.75, beta: -1.5, transA: true, transB: true)
        try check([gemmNode(["a", "b", "c"], transA: true, transB: true, alpha: 0.75, beta: -1.5)],
                  inputs: [a, b, c], outputs: [Expected("y", ref.shape, ref.y)], kernels: ["matmul<"])
    }

    func testGemmActivationBWithConstantFullCAndRelu() throws {
        let a = Operand("a", [70, 33], seed: 104)
        let b = Operand("b", [33, 131], seed: 105)
        let c = Operand("c", [70, 131], seed: 106)
        let ref = R.gemm(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape, c: c.values, cShape: c.shape,
                         alpha: 2, beta: 0.5)
        let nodes = [gemmNode(["a", "b", "c"], "g", alpha: 2, beta: 0.5),
                     Node(name: "relu", opType: "Relu", inputs: ["g"], outputs: ["y"])]
        try check(nodes, inputs: [a, b], weights: [c], outputs: [Expected("y", ref.shape, R.relu(ref.y))],
                  kernels: ["matmul<"])
    }

    func testGemmConstantATransposedWithActivationB() throws {
        let a = Operand("a", [17, 6], seed: 107)    // transA: A' is [6, 17]
        let b = Operand("b", [17, 45], seed: 108)
        let c = Operand("c", [45], seed: 109)
        let ref = R.gemm(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape, c: c.values, cShape: c.shape,
                         alpha: -1, beta: 3, transA: true)
        try check([gemmNode(["a", "b", "c"], transA: true, alpha: -1, beta: 3)], inputs: [b],
                  weights: [a, c], outputs: [Expected("y", ref.shape, ref.y)], kernels: ["matmul<"])
    }

    // MARK: - Gemm with a constant B (gemm.comp, gemm_tiled.comp) and a C read by the epilogue

    func testGemmWeightWithActivationCFewRowsSplitOverK() throws {
        // M = 3 with K = 1500: few tiles, so K is split and slice 0 adds C before splitk_reduce applies the relu.
        let a = Operand("a", [1500, 3], seed: 110)  // transA
        let b = Operand("b", [29, 1500], seed: 111) // transB
        let c = Operand("c", [3, 29], seed: 112)
        let ref = R.gemm(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape, c: c.values, cShape: c.shape,
                         alpha: 0.25, beta: -0.75, transA: true, transB: true)
        let nodes = [gemmNode(["a", "b", "c"], "g", transA: true, transB: true, alpha: 0.25, beta: -0.75),
                     Node(name: "relu", opType: "Relu", inputs: ["g"], outputs: ["y"])]
        try check(nodes, inputs: [a, c], weights: [b], outputs: [Expected("y", ref.shape, R.relu(ref.y))],
                  kernels: ["gemm<", "splitk_reduce<"])
    }

    func testGemmWeightInSeveralShortLayers() throws {
        // A 1024 × 1150 weight and its bias: 288 rows of 1024 texels, which as one layer would take 384 rows on
        // NVIDIA, so its image has several layers (ImageLayout.extent), addressed by shifts in the kernel.
        let a = Operand("a", [2, 1024], seed: 130)
        let b = Operand("b", [1024, 1150], seed: 131)
        let c = Operand("c", [1150], seed: 132)
        let ref = R.gemm(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape, c: c.values, cShape: c.shape,
                         alpha: 1, beta: 1)
        try check([gemmNode(["a", "b", "c"])], inputs: [a], weights: [b, c],
                  outputs: [Expected("y", ref.shape, ref.y)], kernels: ["gemm"]) { program in
            XCTAssertTrue(program.images.contains { $0.layers > 1 && $0.height < ImageLayout.maxSide },
                          "\(program.images.map { [$0.width, $0.height, $0.layers] })")
        }
    }

    func testGemmWeightManyRowsWithColumnBroadcastActivationC() throws {
        let a = Operand("a", [130, 21], seed: 113)
        let b = Operand("b", [21, 67], seed: 114)
        let c = Operand("c", [1, 67], seed: 115)
        let ref = R.gemm(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape, c: c.values, cShape: c.shape,
                         alpha: 1.5, beta: 2)
        try check([gemmNode(["a", "b", "c"], alpha: 1.5, beta: 2)], inputs: [a, c], weights: [b],
                  outputs: [Expected("y", ref.shape, ref.y)], kernels: ["gemm_tiled<"])
    }

    func testGemmWeightWithConstantCVaryingAlongRowsAndScalarC() throws {
        let a = Operand("a", [5, 9], seed: 116)
        let b = Operand("b", [9, 11], seed: 117)
        let column = Operand("col", [5, 1], seed: 118)   // constant, varies along M: read by the epilogue
        let scalar = Operand("s", [], seed: 119)        // an activation scalar
        let r1 = R.gemm(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape, c: column.values,
                        cShape: column.shape, beta: 0.5)
        let r2 = R.gemm(a: a.values, aShape: a.shape, b: b.values, bShape: b.shape, c: scalar.values,
                        cShape: scalar.shape, alpha: 2, beta: -1)
        let nodes = [gemmNode(["a", "b", "col"], "y1", beta: 0.5),
                     gemmNode(["a", "b", "s"], "y2", alpha: 2, beta: -1)]
        try check(nodes, inputs: [a, scalar], weights: [b, column],
                  outputs: [Expected("y1", r1.shape, r1.y), Expected("y2", r2.shape, r2.y)], kernels: ["gemm<"])
    }

    // MARK: - Pooling

    private func poolNode(_ op: String, _ a: R.PoolAttributes, indices: Bool = false) -> Node {
        var attributes: [String: Attribute] = ["kernel_shape": .ints(a.kernel)]
        if let s = a.strides { attributes["strides"] = .ints(s) }
        if let p = a.pads { attributes["pads"] = .ints(p) }
        if let d = a.dilations { attributes["dilations"] = .ints(d) }
        if a.ceilMode { attributes["ceil_mode"] = .int(1) }
        if a.countIncludePad { attributes["count_include_pad"] = .int(1) }
        if a.storageOrder != 0 { attributes["storage_order"] = .int(a.storageOrder) }
        return Node(name: op.lowercased(), opType: op, inputs: ["x"], outputs: indices ? ["y", "i"] : ["y"],
                    attributes: attributes)
    }

    /// MaxPool with Indices of `x` under `attributes`, in both storage orders.
    private func checkMaxPoolWithIndices(_ x: Operand, _ attributes: R.PoolAttributes,
                                         file: StaticString = #filePath, line: UInt = #line) throws {
        for order in [0, 1] {
            var a = attributes
            a.storageOrder = order
            let ref = R.pool(x: x.values, xShape: x.shape, isMax: true, a)
            try check([poolNode("MaxPool", a, indices: true)], inputs: [x],
                      outputs: [Expected("y", ref.shape, ref.y), Expected("i", ref.shape, indices: ref.indices)],
                      kernels: ["pool<"], file: file, line: line)
        }
    }

    func testMaxPool3DWithIndicesPadsStridesDilationsCeil() throws {
        let x = Operand("x", [2, 3, 7, 9, 8], seed: 120)
        try checkMaxPoolWithIndices(x, R.PoolAttributes(kernel: [3, 2, 3], strides: [2, 3, 2], pads: [1, 0, 1, 1, 1, 0],
                                                        dilations: [1, 2, 2], ceilMode: true))
    }

    func testMaxPool2DAnd1DIndicesWithTies() throws {
        // Values on a coarse grid, so windows hold equal maxima: the first one in window order must win.
        var x2 = Operand("x", [2, 3, 11, 9], seed: 121)
        x2.values = x2.values.map { ($0 * 2).rounded() / 2 }
        try checkMaxPoolWithIndices(x2, R.PoolAttributes(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]))
        var x1 = Operand("x", [3, 2, 29], seed: 122)
        x1.values = x1.values.map { ($0 * 2).rounded() / 2 }
        try checkMaxPoolWithIndices(x1, R.PoolAttributes(kernel: [4], strides: [3], pads: [2, 1], ceilMode: true))
    }

    func testAveragePool3DCountIncludePadCeilAndDilations() throws {
        let x = Operand("x", [1, 5, 9, 6, 11], seed: 123)
        for countIncludePad in [false, true] {
            for ceilMode in [false, true] {
                let a = R.PoolAttributes(kernel: [2, 3, 3], strides: [2, 2, 3], pads: [1, 1, 0, 0, 2, 2],
                                         dilations: [2, 1, 2], ceilMode: ceilMode, countIncludePad: countIncludePad)
                let ref = R.pool(x: x.values, xShape: x.shape, isMax: false, a)
                try check([poolNode("AveragePool", a)], inputs: [x], outputs: [Expected("y", ref.shape, ref.y)],
                          kernels: ["pool<"])
            }
        }
    }

    func testMaxPool3DWithoutIndicesAndAveragePool2DMatchTheReference() throws {
        let x3 = Operand("x", [2, 2, 5, 6, 7], seed: 124)
        let m = R.PoolAttributes(kernel: [2, 2, 2], strides: [2, 2, 2])
        let mr = R.pool(x: x3.values, xShape: x3.shape, isMax: true, m)
        try check([poolNode("MaxPool", m)], inputs: [x3], outputs: [Expected("y", mr.shape, mr.y)], kernels: ["pool<"])
        let x2 = Operand("x", [2, 3, 13, 10], seed: 125)
        let a = R.PoolAttributes(kernel: [3, 2], strides: [2, 3], pads: [1, 0, 2, 1], ceilMode: true,
                                 countIncludePad: true)
        let ar = R.pool(x: x2.values, xShape: x2.shape, isMax: false, a)
        // The N-D reference agrees with the 2-D one the older tests use.
        let old = R.pool2d(x: x2.values, xShape: x2.shape, isMax: false, kernel: [3, 2], strides: [2, 3],
                           pads: [1, 0, 2, 1], ceilMode: true, countIncludePad: true)
        XCTAssertEqual(ar.y, old.y)
        try check([poolNode("AveragePool", a)], inputs: [x2], outputs: [Expected("y", ar.shape, ar.y)],
                  kernels: ["pool<"])
    }

    func testUnsupportedPoolingIsACompileErrorNamingTheFeature() throws {
        let x = Operand("x", [1, 1, 3, 3, 3, 3], seed: 126)
        let node = poolNode("MaxPool", R.PoolAttributes(kernel: [2, 2, 2, 2]))
        XCTAssertThrowsError(try check([node], inputs: [x], outputs: [Expected("y", [1, 1, 2, 2, 2, 2], [])],
                                       kernels: [])) { error in
            XCTAssertTrue("\(error)".contains("3-D pooling"), "\(error)")
            XCTAssertTrue("\(error)".contains("MaxPool"), "\(error)")
        }
    }
}
