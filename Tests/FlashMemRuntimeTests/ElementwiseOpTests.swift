import FMBFormat
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

/// Differential tests of the element-wise ops (elementwise family): small graphs on odd shapes with fixed seeds
/// go through the whole compiler and the runtime on the default device (lavapipe in CI), in both weight
/// precisions and both load modes, and are compared with ReferenceOps+Elementwise. Float outputs must match to
/// rtol 1e-4 / atol 1e-5 (fp16 outputs to fp16 precision), int64 / int32 / bool outputs exactly; streaming
/// must equal preload byte for byte.
final class ElementwiseOpTests: XCTestCase {
    /// A graph input or constant: values as Double whatever the dtype (int64 / bool hold integers).
    struct Operand {
        var name: String
        var dtype: DType
        var shape: [Int]
        var values: [Double]

        init(_ name: String, _ dtype: DType, _ shape: [Int], _ values: [Double]) {
            precondition(values.count == shape.reduce(1, *), "\(name): value count does not match the shape")
            self.name = name
            self.dtype = dtype
            self.shape = shape
            // What the tensor can hold, so references see the same inputs as the device.
            self.values = values.map { v in
                switch dtype {
                case .float16: ReferenceOps.roundToHalf(v)
                case .float32: Double(Float(v))
                case .bool: v != 0 ? 1 : 0
                default: v
                }
            }
        }

        /// Seeded float32 values in `range`.
        init(_ name: String, _ shape: [Int], seed: UInt64, in range: ClosedRange<Double> = -1...1) {
            self.init(name, .float32, shape, seed: seed, in: range)
        }

        /// Seeded values in `range` of a float dtype.
        init(_ name: String, _ dtype: DType, _ shape: [Int], seed: UInt64, in range: ClosedRange<Double>) {
            var rng = ReferenceOps.SeededRandom(seed: seed)
            let values = (0..<ReferenceOps.count(shape)).map { _ in
                range.lowerBound + (Double(rng.next()) + 1) / 2 * (range.upperBound - range.lowerBound)
            }
            self.init(name, dtype, shape, values)
        }

        /// Seeded integers in `range` (int64, int32 or bool).
        init(_ name: String, _ dtype: DType, _ shape: [Int], seed: UInt64, ints range: ClosedRange<Int>) {
            var rng = ReferenceOps.SeededRandom(seed: seed)
            let span = Double(range.upperBound - range.lowerBound + 1)
            let values = (0..<ReferenceOps.count(shape)).map { _ -> Double in
                let u = (Double(rng.next()) + 1) / 2    // [0, 1)
                return Double(range.lowerBound) + min((u * span).rounded(.down), span - 1)
            }
            self.init(name, dtype, shape, values)
        }

        /// The operand as an initializer of its dtype.
        var constant: ConstantTensor {
            .make(dtype: dtype, shape: shape, reals: values)
        }
    }

    /// An expected graph output.
    struct Expect {
        var name: String
        var dtype: DType
        var shape: [Int]
        var values: [Double]
        var rtol: Double = 1e-4
        var atol: Double = 1e-5
    }

    // MARK: - Arithmetic

    func testFloatArithmeticBroadcast() throws {
        let a = Operand("a", [2, 3, 5, 7], seed: 1)
        let b = Operand("b", [3, 1, 7], seed: 2, in: 0.25...2)
        var nodes: [Node] = [], expect: [Expect] = []
        for op in ["Add", "Sub", "Mul", "Div", "Max", "Min", "PRelu"] {
            nodes.append(Node(name: op, opType: op, inputs: ["a", op == "PRelu" ? "s" : "b"], outputs: [op]))
        }
        let slope = Operand("s", .float32, [3, 1, 1], [0.1, -0.5, 2])
        for op in ["Add", "Sub", "Mul", "Div", "Max", "Min"] {
            let ref = ReferenceOps.binary(a.values, a.shape, b.values, b.shape, ReferenceOps.binaryOp(op))
            expect.append(Expect(name: op, dtype: .float32, shape: ref.shape, values: ref.y))
        }
        let prelu = ReferenceOps.binary(a.values, a.shape, slope.values, slope.shape, ReferenceOps.binaryOp("PRelu"))
        expect.append(Expect(name: "PRelu", dtype: .float32, shape: prelu.shape, values: prelu.y))
        try check(nodes, inputs: [a, b], constants: [slope], expect: expect)
    }

    func testPowNegativeBasesAndMixedTypes() throws {
        // Integral exponents (also negative ones) of negative bases, fractional exponents of positive bases.
        let x = Operand("x", [3, 11], seed: 3, in: -2...2)
        let e = Operand("e", .float32, [11], [2, 3, -1, 0, 0.5, 1.5, -2, 4, 1, 2.5, 3])
        let xp = Operand("xp", [3, 11], seed: 4, in: 0.1...3)
        let ie = Operand("ie", .int64, [1, 11], [2, 3, -1, 0, 1, 2, -2, 4, 1, 5, 3])
        let ib = Operand("ib", .int32, [5], [1, 2, 3, -3, 7])
        let fe = Operand("fe", .float32, [5], [4, 5, 6, 3, 2])
        let nodes = [
            Node(name: "pow", opType: "Pow", inputs: ["x", "ie"], outputs: ["y1"]),
            Node(name: "powf", opType: "Pow", inputs: ["xp", "e"], outputs: ["y2"]),
            Node(name: "powi", opType: "Pow", inputs: ["ib", "fe"], outputs: ["y3"]),
        ]
        let pow = ReferenceOps.binaryOp("Pow")
        let y1 = ReferenceOps.binary(x.values, x.shape, ie.values, ie.shape, pow)
        let y2 = ReferenceOps.binary(xp.values, xp.shape, e.values, e.shape, pow)
        let y3 = ReferenceOps.binary(ib.values, ib.shape, fe.values, fe.shape, pow)
        try check(nodes, inputs: [x, xp, ib], constants: [e, ie, fe], expect: [
            Expect(name: "y1", dtype: .float32, shape: y1.shape, values: y1.y),
            Expect(name: "y2", dtype: .float32, shape: y2.shape, values: y2.y),
            Expect(name: "y3", dtype: .int32, shape: y3.shape, values: y3.y),  // 1 32 729 -27 49: exact
        ])
    }

    func testIntegerArithmeticDivAndMod() throws {
        let a = Operand("a", .int64, [4, 1, 5], seed: 5, ints: -60...60)
        var b = Operand("b", .int64, [3, 5], seed: 6, ints: -9...9)
        b.values = b.values.map { $0 == 0 ? 7 : $0 }   // division by zero is undefined in ONNX
        var nodes: [Node] = [], expect: [Expect] = []
        for op in ["Add", "Sub", "Mul", "Div", "Max", "Min", "Mod", "FMod"] {
            let attributes: [String: Attribute] = op == "FMod" ? ["fmod": .int(1)] : [:]
            nodes.append(Node(name: op, opType: op == "FMod" ? "Mod" : op, inputs: ["a", "b"], outputs: [op],
                              attributes: attributes))
            let ref = ReferenceOps.binary(a.values, a.shape, b.values, b.shape, ReferenceOps.binaryOp(op, integer: true))
            expect.append(Expect(name: op, dtype: .int64, shape: ref.shape, values: ref.y))
        }
        // A constant int operand and an int32 pair.
        let k = Operand("k", .int64, [], [3])
        nodes.append(Node(name: "mulk", opType: "Mul", inputs: ["a", "k"], outputs: ["mulk"]))
        expect.append(Expect(name: "mulk", dtype: .int64, shape: a.shape, values: a.values.map { $0 * 3 }))
        let c = Operand("c", .int32, [7], [-7, 7, -7, 7, 0, 13, -13])
        let d = Operand("d", .int32, [7], [2, 2, -2, -2, 5, -4, 4])
        nodes.append(Node(name: "divc", opType: "Div", inputs: ["c", "d"], outputs: ["divc"]))
        nodes.append(Node(name: "modc", opType: "Mod", inputs: ["c", "d"], outputs: ["modc"]))
        expect.append(Expect(name: "divc", dtype: .int32, shape: [7], values: [-3, 3, 3, -3, 0, -3, -3]))
        expect.append(Expect(name: "modc", dtype: .int32, shape: [7], values: [1, 1, -1, -1, 0, -3, 3]))
        try check(nodes, inputs: [a, b, c, d], constants: [k], expect: expect)
    }

    func testFloatMod() throws {
        let a = Operand("a", [2, 9], seed: 7, in: -9...9)
        let b = Operand("b", .float32, [9], [2.1, -3.4, 8, -2.1, 3.4, 5, 0.75, -0.3, 1])
        let nodes = [
            Node(name: "mod", opType: "Mod", inputs: ["a", "b"], outputs: ["m0"], attributes: ["fmod": .int(0)]),
            Node(name: "fmod", opType: "Mod", inputs: ["a", "b"], outputs: ["m1"], attributes: ["fmod": .int(1)]),
        ]
        let m0 = ReferenceOps.binary(a.values, a.shape, b.values, b.shape, ReferenceOps.binaryOp("Mod"))
        let m1 = ReferenceOps.binary(a.values, a.shape, b.values, b.shape, ReferenceOps.binaryOp("FMod"))
        try check(nodes, inputs: [a], constants: [b], expect: [
            Expect(name: "m0", dtype: .float32, shape: m0.shape, values: m0.y),
            Expect(name: "m1", dtype: .float32, shape: m1.shape, values: m1.y),
        ])
    }

    func testVariadicMaxMinSumMean() throws {
        let a = Operand("a", [2, 1, 6], seed: 8)
        let b = Operand("b", [3, 1], seed: 9)
        let c = Operand("c", [6], seed: 10)
        var nodes: [Node] = [], expect: [Expect] = []
        for op in ["Max", "Min", "Sum", "Mean"] {
            nodes.append(Node(name: op, opType: op, inputs: ["a", "b", "c"], outputs: [op]))
            let ref = ReferenceOps.broadcasting([(a.values, a.shape), (b.values, b.shape), (c.values, c.shape)]) { xs in
                switch op {
                case "Max": xs.max()!
                case "Min": xs.min()!
                case "Sum": xs.reduce(0, +)
                default: xs.reduce(0, +) / 3
                }
            }
            expect.append(Expect(name: op, dtype: .float32, shape: ref.shape, values: ref.y))
        }
        nodes.append(Node(name: "max1", opType: "Max", inputs: ["c"], outputs: ["max1"]))
        expect.append(Expect(name: "max1", dtype: .float32, shape: c.shape, values: c.values))
        let i = Operand("i", .int64, [4], [5, -2, 7, 0]), j = Operand("j", .int64, [2, 1], [3, -1])
        nodes.append(Node(name: "maxi", opType: "Max", inputs: ["i", "j"], outputs: ["maxi"]))
        expect.append(Expect(name: "maxi", dtype: .int64, shape: [2, 4], values: [5, 3, 7, 3, 5, -1, 7, 0]))
        try check(nodes, inputs: [a, b, c, i, j], expect: expect)
    }

    // MARK: - Comparisons, logic, Where

    func testComparisonsFloatAndInt() throws {
        // Quantized values so that ties occur.
        var a = Operand("a", [3, 4, 5], seed: 11, in: -2...2)
        a.values = a.values.map { ($0 * 2).rounded() / 2 }
        var b = Operand("b", [4, 1], seed: 12, in: -2...2)
        b.values = b.values.map { ($0 * 2).rounded() / 2 }
        let p = Operand("p", .int64, [3, 4, 5], seed: 13, ints: -3...3)
        let q = Operand("q", .int64, [5], seed: 14, ints: -3...3)
        var nodes: [Node] = [], expect: [Expect] = []
        for op in ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"] {
            nodes.append(Node(name: op, opType: op, inputs: ["a", "b"], outputs: [op]))
            nodes.append(Node(name: op + "I", opType: op, inputs: ["p", "q"], outputs: [op + "I"]))
            let f = ReferenceOps.binary(a.values, a.shape, b.values, b.shape, ReferenceOps.binaryOp(op))
            let i = ReferenceOps.binary(p.values, p.shape, q.values, q.shape, ReferenceOps.binaryOp(op))
            expect.append(Expect(name: op, dtype: .bool, shape: f.shape, values: f.y))
            expect.append(Expect(name: op + "I", dtype: .bool, shape: i.shape, values: i.y))
        }
        try check(nodes, inputs: [a, b, p, q], expect: expect)
    }

    func testLogicalOpsAndNot() throws {
        let a = Operand("a", .bool, [2, 3, 7], seed: 15, ints: 0...1)
        let b = Operand("b", .bool, [3, 1], seed: 16, ints: 0...1)
        var nodes: [Node] = [], expect: [Expect] = []
        for op in ["And", "Or", "Xor"] {
            nodes.append(Node(name: op, opType: op, inputs: ["a", "b"], outputs: [op]))
            let ref = ReferenceOps.binary(a.values, a.shape, b.values, b.shape, ReferenceOps.binaryOp(op))
            expect.append(Expect(name: op, dtype: .bool, shape: ref.shape, values: ref.y))
        }
        nodes.append(Node(name: "not", opType: "Not", inputs: ["a"], outputs: ["not"]))
        expect.append(Expect(name: "not", dtype: .bool, shape: a.shape, values: a.values.map { $0 == 0 ? 1 : 0 }))
        try check(nodes, inputs: [a, b], expect: expect)
    }

    func testWhereBroadcastsThreeOperands() throws {
        let c = Operand("c", .bool, [3, 1, 5], seed: 17, ints: 0...1)
        let x = Operand("x", [2, 3, 4, 5], seed: 18)
        let y = Operand("y", .float32, [], [-7.5])
        let xi = Operand("xi", .int64, [4, 1], [1, 2, 3, 4])
        let yi = Operand("yi", .int64, [2, 1, 1, 5], seed: 19, ints: -100...100)
        let nodes = [
            Node(name: "where", opType: "Where", inputs: ["c", "x", "y"], outputs: ["w"]),
            Node(name: "wherei", opType: "Where", inputs: ["c", "xi", "yi"], outputs: ["wi"]),
        ]
        let w = ReferenceOps.whereOp(c.values, c.shape, x.values, x.shape, y.values, y.shape)
        let wi = ReferenceOps.whereOp(c.values, c.shape, xi.values, xi.shape, yi.values, yi.shape)
        try check(nodes, inputs: [c, x, yi], constants: [y, xi], expect: [
            Expect(name: "w", dtype: .float32, shape: w.shape, values: w.y),
            Expect(name: "wi", dtype: .int64, shape: wi.shape, values: wi.y),
        ])
    }

    // MARK: - Unary

    func testUnaryFloatOps() throws {
        let x = Operand("x", [3, 67], seed: 20, in: -3...3)
        let pos = Operand("p", [5, 13], seed: 21, in: 0.01...4)
        let unit = Operand("u", [5, 13], seed: 22, in: -0.95...0.95)
        let big = Operand("g", [5, 13], seed: 23, in: 1...5)
        // Exact halves check Round's ties to even.
        var halves = Operand("h", [2, 7], seed: 24, in: -4...4)
        halves.values.replaceSubrange(0..<6, with: [0.5, 1.5, 2.5, -0.5, -1.5, -2.5])
        let groups: [(Operand, [String])] = [
            (x, ["Relu", "Sigmoid", "Tanh", "Neg", "Abs", "Exp", "Erf", "LeakyRelu", "Elu", "Selu", "Gelu", "HardSigmoid",
                 "HardSwish", "Sign", "Sin", "Cos", "Softplus", "Softsign", "Mish", "Atan", "Sinh", "Cosh", "Asinh"]),
            (pos, ["Sqrt", "Log", "Reciprocal"]),
            (unit, ["Tan", "Asin", "Acos", "Atanh"]),
            (big, ["Acosh"]),
            (halves, ["Floor", "Ceil", "Round"]),
        ]
        var nodes: [Node] = [], expect: [Expect] = []
        for (input, ops) in groups {
            for op in ops {
                nodes.append(Node(name: op, opType: op, inputs: [input.name], outputs: [op]))
                expect.append(Expect(name: op, dtype: .float32, shape: input.shape,
                                     values: input.values.map(ReferenceOps.unary(op))))
            }
        }
        nodes.append(Node(name: "gelut", opType: "Gelu", inputs: ["x"], outputs: ["GeluTanh"],
                          attributes: ["approximate": .string("tanh")]))
        expect.append(Expect(name: "GeluTanh", dtype: .float32, shape: x.shape, values: x.values.map(ReferenceOps.unary("GeluTanh"))))
        nodes.append(Node(name: "leaky", opType: "LeakyRelu", inputs: ["x"], outputs: ["Leaky3"], attributes: ["alpha": .float(0.3)]))
        expect.append(Expect(name: "Leaky3", dtype: .float32, shape: x.shape, values: x.values.map { $0 < 0 ? Double(Float(0.3)) * $0 : $0 }))
        try check(nodes, inputs: [x, pos, unit, big, halves], expect: expect, opset: 20)
    }

    func testUnaryIntOps() throws {
        let x = Operand("x", .int64, [4, 9], seed: 25, ints: -50...50)
        var nodes: [Node] = [], expect: [Expect] = []
        for op in ["Neg", "Abs", "Sign", "Relu"] {
            nodes.append(Node(name: op, opType: op, inputs: ["x"], outputs: [op]))
            expect.append(Expect(name: op, dtype: .int64, shape: x.shape, values: x.values.map(ReferenceOps.unary(op))))
        }
        let lo = Operand("lo", .int64, [], [-20]), hi = Operand("hi", .int64, [], [30])
        nodes.append(Node(name: "clip", opType: "Clip", inputs: ["x", "lo", "hi"], outputs: ["clip"]))
        expect.append(Expect(name: "clip", dtype: .int64, shape: x.shape, values: x.values.map { min(max($0, -20), 30) }))
        try check(nodes, inputs: [x], constants: [lo, hi], expect: expect)
    }

    func testClipBoundsAsInputsAttributesAndTensors() throws {
        let x = Operand("x", [3, 41], seed: 26, in: -3...3)
        let lo = Operand("lo", .float32, [], [-0.5]), hi = Operand("hi", .float32, [], [1.25])
        let dynamicHi = Operand("dhi", .float32, [], [0.75])
        let nodes = [
            Node(name: "both", opType: "Clip", inputs: ["x", "lo", "hi"], outputs: ["both"]),
            Node(name: "min", opType: "Clip", inputs: ["x", "lo"], outputs: ["min"]),
            Node(name: "max", opType: "Clip", inputs: ["x", "", "hi"], outputs: ["max"]),
            Node(name: "none", opType: "Clip", inputs: ["x"], outputs: ["none"]),
            Node(name: "dyn", opType: "Clip", inputs: ["x", "lo", "dhi"], outputs: ["dyn"]),
        ]
        func clip(_ l: Double, _ h: Double) -> [Double] { x.values.map { min(max($0, l), h) } }
        try check(nodes, inputs: [x, dynamicHi], constants: [lo, hi], expect: [
            Expect(name: "both", dtype: .float32, shape: x.shape, values: clip(-0.5, 1.25)),
            Expect(name: "min", dtype: .float32, shape: x.shape, values: clip(-0.5, .infinity)),
            Expect(name: "max", dtype: .float32, shape: x.shape, values: clip(-.infinity, 1.25)),
            Expect(name: "none", dtype: .float32, shape: x.shape, values: x.values),
            Expect(name: "dyn", dtype: .float32, shape: x.shape, values: clip(-0.5, 0.75)),
        ])
        // Opset 6: bounds are attributes.
        let old = Node(name: "clip6", opType: "Clip", inputs: ["x"], outputs: ["c6"],
                       attributes: ["min": .float(0), "max": .float(6)])
        let x6 = Operand("x", [2, 5], seed: 27, in: -8...8)
        try check([old], inputs: [x6], expect: [
            Expect(name: "c6", dtype: .float32, shape: x6.shape, values: x6.values.map { min(max($0, 0), 6) }),
        ], opset: 9)
    }

    // MARK: - Cast and storage types

    func testCastBetweenFloatIntBoolAndHalf() throws {
        var x = Operand("x", [3, 17], seed: 28, in: -300...300)
        x.values[0] = 0; x.values[1] = -0.75; x.values[2] = 65519; x.values[3] = 65520; x.values[4] = 1e-6
        let i = Operand("i", .int64, [5], [0, -3, 7, 2049, -100_000])
        let h = Operand("h", .float16, [2, 3], seed: 29, in: -4...4)
        let b = Operand("b", .bool, [4], [1, 0, 0, 1])
        let casts: [(String, String, DType)] = [
            ("x", "x2i", .int64), ("x", "x2b", .bool), ("x", "x2h", .float16), ("x", "x2f", .float32),
            ("i", "i2f", .float32), ("i", "i2b", .bool), ("i", "i2h", .float16), ("i", "i2i32", .int32),
            ("h", "h2f", .float32), ("h", "h2i", .int64), ("b", "b2f", .float32), ("b", "b2i", .int64),
        ]
        let nodes = casts.map { Node(name: $0.1, opType: "Cast", inputs: [$0.0], outputs: [$0.1],
                                     attributes: ["to": .int(Int($0.2.rawValue))]) }
        let inputs = ["x": x, "i": i, "h": h, "b": b]
        let expect = casts.map { source, name, to -> Expect in
            let values = inputs[source]!.values.map { v -> Double in
                switch to {
                case .int64, .int32: v.rounded(.towardZero)
                case .bool: v != 0 ? 1 : 0
                case .float16: ReferenceOps.roundToHalf(v)
                default: Double(Float(v))
                }
            }
            return Expect(name: name, dtype: to, shape: inputs[source]!.shape, values: values, rtol: 0, atol: 0)
        }
        try check(nodes, inputs: [x, i, h, b], expect: expect)
    }

    func testFloat16StorageArithmetic() throws {
        let a = Operand("a", .float16, [5, 7], seed: 30, in: -3...3)
        let b = Operand("b", .float16, [7], seed: 31, in: 0.5...2)
        let nodes = [
            Node(name: "mul", opType: "Mul", inputs: ["a", "b"], outputs: ["m"]),
            Node(name: "erf", opType: "Erf", inputs: ["m"], outputs: ["e"]),
            Node(name: "less", opType: "Less", inputs: ["a", "b"], outputs: ["l"]),
        ]
        let m = ReferenceOps.binary(a.values, a.shape, b.values, b.shape, ReferenceOps.binaryOp("Mul"))
        let l = ReferenceOps.binary(a.values, a.shape, b.values, b.shape, ReferenceOps.binaryOp("Less"))
        // fp16 outputs: the arena computes in fp32, the runtime rounds on the way out.
        try check(nodes, inputs: [a, b], expect: [
            Expect(name: "m", dtype: .float16, shape: m.shape, values: m.y, rtol: 1e-3, atol: 1e-4),
            Expect(name: "e", dtype: .float16, shape: m.shape, values: m.y.map(ReferenceOps.erf), rtol: 1e-3, atol: 1e-4),
            Expect(name: "l", dtype: .bool, shape: l.shape, values: l.y),
        ])
    }

    // MARK: - Fusion and lowering shape

    func testAddReluFusesAndActivationTimesConstant() throws {
        let a = Operand("a", [2, 5, 3], seed: 32)
        let k = Operand("k", [5, 1], seed: 33)
        let ia = Operand("ia", .int64, [6], [-4, 3, 0, 9, -1, 2]), ik = Operand("ik", .int64, [], [-2])
        let nodes = [
            Node(name: "add", opType: "Add", inputs: ["a", "k"], outputs: ["s"]),
            Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["y"]),
            Node(name: "addi", opType: "Add", inputs: ["ia", "ik"], outputs: ["si"]),
            Node(name: "relui", opType: "Relu", inputs: ["si"], outputs: ["yi"]),
        ]
        let ref = ReferenceOps.binary(a.values, a.shape, k.values, k.shape) { max($0 + $1, 0) }
        let program = try check(nodes, inputs: [a, ia], constants: [k, ik], expect: [
            Expect(name: "y", dtype: .float32, shape: ref.shape, values: ref.y),
            Expect(name: "yi", dtype: .int64, shape: [6], values: ia.values.map { max($0 - 2, 0) }),
        ])
        XCTAssertEqual(program.steps.count, 2, "each Relu fused into its Add")
        XCTAssertEqual(program.kernels[program.steps[0].kernel].specConstants, [256, 0, 1])
        XCTAssertEqual(program.kernels[program.steps[1].kernel].specConstants, [256, 0, 1, 7], "int A, B, Y")
    }

    func testUnsupportedDtypeOrAttributeIsACompileErrorNamingTheNode() throws {
        let nodes = [Node(name: "to_u8", opType: "Cast", inputs: ["x"], outputs: ["y"], attributes: ["to": .int(2)])]
        XCTAssertThrowsError(try check(nodes, inputs: [Operand("x", [3], seed: 34)],
                                       expect: [Expect(name: "y", dtype: .uint8, shape: [3], values: [0, 0, 0])])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("to_u8") && text.contains("uint8"), text)
        }
        let gelu = [Node(name: "g", opType: "Gelu", inputs: ["x"], outputs: ["y"], attributes: ["approximate": .string("fast")])]
        XCTAssertThrowsError(try check(gelu, inputs: [Operand("x", [3], seed: 35)],
                                       expect: [Expect(name: "y", dtype: .float32, shape: [3], values: [0, 0, 0])], opset: 20)) { error in
            XCTAssertTrue("\(error)".contains("approximate = 'fast'"), "\(error)")
        }
        let sqrt = [Node(name: "root", opType: "Sqrt", inputs: ["i"], outputs: ["y"])]
        XCTAssertThrowsError(try check(sqrt, inputs: [Operand("i", .int64, [2], [4, 9])],
                                       expect: [Expect(name: "y", dtype: .int64, shape: [2], values: [2, 3])])) { error in
            XCTAssertTrue("\(error)".contains("root") && "\(error)".contains("needs a float tensor"), "\(error)")
        }
    }

    // MARK: - Harness

    func hostTensor(_ operand: Operand) -> HostTensor {
        let tensor = operand.constant
        let bytes = Array(tensor.bytes.pointer)
        return HostTensor(name: operand.name, elementType: operand.dtype.elementType!, shape: operand.shape, bytes: bytes)
    }

    static func values(of tensor: HostTensor) -> [Double] {
        switch tensor.elementType {
        case .float32, .float16: tensor.floats().map(Double.init)
        default: tensor.int64s().map(Double.init)
        }
    }

    static func close(_ a: Double, _ b: Double, rtol: Double, atol: Double) -> Bool {
        if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
        if a.isInfinite || b.isInfinite { return a == b }
        return abs(a - b) <= atol + rtol * abs(b)
    }

    /// Compiles `nodes` with `inputs` as graph inputs and `constants` as initializers, runs it streaming and
    /// preloaded in every precision, and checks each expected output (shape, dtype, values) and streaming ==
    /// preload. Returns the fp32 lowered program for structural checks.
    @discardableResult
    func check(_ nodes: [Node], inputs: [Operand], constants: [Operand] = [], expect: [Expect], opset: Int = 17,
               file: StaticString = #filePath, line: UInt = #line) throws -> LoweredProgram {
        let label = Set(nodes.map(\.opType)).sorted().joined(separator: "+")
        var lowered: LoweredProgram?
        for precision in Precision.allCases {
            let initializers = Dictionary(uniqueKeysWithValues: constants.map { ($0.name, $0.constant) })
            let inputInfo = inputs.map { ValueInfo(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
            let constantInfo = constants.map { ValueInfo(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
            let graph = Graph(
                name: label, nodes: nodes, inputs: inputInfo,
                outputs: expect.map { ValueInfo(name: $0.name, dtype: $0.dtype, shape: nil) },
                initializers: initializers,
                values: Dictionary(uniqueKeysWithValues: (inputInfo + constantInfo).map { ($0.name, $0) }),
                opset: opset, sourcePath: "<\(label) test>")
            try graph.simplify()
            try inferShapes(graph)
            let program = try Lowering.lower(graph, precision: precision)
            if precision == .fp32 { lowered = program }
            let results = try runInEveryLoadMode(program, name: label, options: CompileOptions(),
                                                 feeds: inputs.map(hostTensor))
            let outputs = results[.streaming]!
            XCTAssertEqual(outputs.count, expect.count, "\(label): output count", file: file, line: line)
            for (e, got) in zip(expect, outputs) {
                let what = "\(label) \(precision) output \(e.name)"
                XCTAssertEqual(got.name, e.name, "\(what): order", file: file, line: line)
                XCTAssertEqual(got.shape, e.shape, "\(what): shape", file: file, line: line)
                XCTAssertEqual(got.elementType, e.dtype.elementType, "\(what): element type", file: file, line: line)
                var expected = e.values
                if e.dtype == .float16 { expected = expected.map(ReferenceOps.roundToHalf) }
                if e.dtype == .float32 { expected = expected.map { Double(Float($0)) } }
                let actual = Self.values(of: got)
                guard actual.count == expected.count else {
                    XCTFail("\(what): \(actual.count) values, expected \(expected.count)", file: file, line: line)
                    continue
                }
                let exact = !e.dtype.isFloat
                let bad = actual.indices.filter {
                    !Self.close(actual[$0], expected[$0], rtol: exact ? 0 : e.rtol, atol: exact ? 0 : e.atol)
                }
                XCTAssertTrue(bad.isEmpty, "\(what): \(bad.count) of \(actual.count) differ, first at \(bad.first ?? -1): "
                              + "\(bad.first.map { "\(actual[$0]) vs \(expected[$0])" } ?? "")", file: file, line: line)
            }
            XCTAssertEqual(results[.streaming], results[.preload], "\(label) \(precision): streaming != preload",
                           file: file, line: line)
        }
        return lowered!
    }
}
