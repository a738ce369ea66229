import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime

/// Einsum (Lowering+Einsum.swift rewrites it into ReduceSum / Transpose / Reshape / MatMul): the equations of
/// DeepViT's re-attention and others on odd shapes with a fixed seed, through the compiler and the runtime in both
/// precisions and load modes (MovementOpTests.check), against a naive reference that sums over every label
/// combination. The ONNX node tests of Einsum are all float64, which FlashMem does not run.
extension MovementOpTests {
    /// Σ over all labels of Π operands, for an equation with an explicit "->" and no "...".
    static func referenceEinsum(_ equation: String, _ operands: [(shape: [Int], values: [Double])]) -> (shape: [Int], values: [Double]) {
        let sides = equation.filter { !$0.isWhitespace }.components(separatedBy: "->")
        let terms = sides[0].components(separatedBy: ",").map(Array.init)
        let output = Array(sides[1])
        var sizes: [Character: Int] = [:]
        for (term, operand) in zip(terms, operands) {
            for (label, size) in zip(term, operand.shape) { sizes[label] = max(sizes[label] ?? 1, size) }
        }
        let labels = sizes.keys.sorted()
        let outShape = output.map { sizes[$0]! }
        var out = [Double](repeating: 0, count: ReferenceOps.count(outShape))
        var index = [Character: Int]()
        func flat(_ term: [Character], _ shape: [Int]) -> Int {
            zip(term, shape).reduce(0) { $0 * $1.1 + ($1.1 == 1 ? 0 : index[$1.0]!) }
        }
        func visit(_ l: Int) {
            guard l < labels.count else {
                var product = 1.0
                for (term, operand) in zip(terms, operands) { product *= operand.values[flat(term, operand.shape)] }
                out[flat(output, outShape)] += product
                return
            }
            for i in 0..<sizes[labels[l]]! {
                index[labels[l]] = i
                visit(l + 1)
            }
        }
        visit(0)
        return (outShape, out)
    }

    /// Runs Einsum(equation) on seeded inputs of `shapes` (input i named x<i>; those in `constant` become
    /// initializers, so a constant second operand reaches its MatMul as a weight image) against the reference.
    /// `tolerance`: relative L2 error in both precisions (a constant operand is stored in fp16 under fp16).
    func checkEinsum(_ equation: String, _ shapes: [[Int]], reference: String? = nil, constant: Set<Int> = [],
                     tolerance: Double = 1e-5, file: StaticString = #filePath, line: UInt = #line) throws {
        let inputs = shapes.enumerated().map { Input("x\($0.offset)", $0.element, seed: UInt64(40 + $0.offset)) }
        let want = Self.referenceEinsum(reference ?? equation, inputs.map { ($0.shape, $0.values) })
        var constants: [String: ConstantTensor] = [:]
        for i in constant { constants[inputs[i].name] = Self.floats(inputs[i].values, shape: inputs[i].shape) }
        let node = Node(name: "einsum", opType: "Einsum", inputs: inputs.map(\.name), outputs: ["y"],
                        attributes: ["equation": .string(equation)])
        try check([node], inputs: inputs.enumerated().filter { !constant.contains($0.offset) }.map(\.element),
                  constants: constants, expected: [Expected(name: "y", shape: want.shape, values: want.values)],
                  tolerance: tolerance, file: file, line: line)
    }

    func testEinsumAttentionEquations() throws {
        try checkEinsum("b h i d, b h j d -> b h i j", [[2, 3, 5, 7], [2, 3, 6, 7]])
        try checkEinsum("bhij,bhjd->bhid", [[2, 3, 5, 6], [2, 3, 6, 7]])
    }

    func testEinsumReattentionWithConstantMixingMatrix() throws {
        try checkEinsum("bhij,hg->bgij", [[2, 3, 5, 6], [3, 4]], constant: [1], tolerance: 1e-3)
        try checkEinsum("bhij,hg->bgij", [[1, 3, 5, 6], [3, 4]])
    }

    func testEinsumSingleOperandTransposeAndSum() throws {
        try checkEinsum("ijk->kij", [[3, 4, 5]])
        try checkEinsum("ijk->j", [[3, 4, 5]])
        try checkEinsum("ij", [[3, 5]], reference: "ij->ij")  // implicit output: the identity
        try checkEinsum("ji", [[3, 5]], reference: "ji->ij")  // implicit output in alphabetical order: a transpose
    }

    func testEinsumImplicitOutputEllipsisAndBroadcast() throws {
        try checkEinsum("ij,jk", [[3, 4], [4, 5]], reference: "ij,jk->ik")
        try checkEinsum("...ij,...jk->...ik", [[2, 1, 3, 4], [5, 4, 2]], reference: "abij,bjk->abik")
        try checkEinsum("i,i->", [[7], [7]])
        try checkEinsum("ab,bc,cd->ad", [[3, 4], [4, 5], [5, 2]])
        try checkEinsum("abc,cd->d", [[2, 3, 4], [4, 5]])  // a and b summed before the product
    }

    func testEinsumRejectsDiagonalsAndBadTerms() throws {
        for (equation, shapes, message) in [("ii->i", [[3, 3]], "repeats a label"),
                                            ("ij,jk->ik", [[3, 4], [5, 6]], "has sizes 4 and 5"),
                                            ("ijk->ij", [[3, 4]], "names 3 dimensions")] {
            XCTAssertThrowsError(try ShapeRules.einsum(equation, shapes: shapes), equation) { error in
                XCTAssertTrue("\((error as? ShapeRuleError)?.message ?? "")".contains(message), "\(equation): \(error)")
            }
        }
        let parsed = try ShapeRules.einsum("...ij,jk", shapes: [[2, 5, 3, 4], [4, 6]])
        XCTAssertEqual(parsed.outputShape, [2, 5, 3, 6])
    }
}
