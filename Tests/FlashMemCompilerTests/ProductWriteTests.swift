// Products of two activations that write straight into the Transpose or Concat that alone reads them
// (`LoweringContext.writeProducts`): no copy step, and the product's push block says where each element goes.

import FMBFormat
import XCTest
@testable import FlashMemCompiler
import TestSupport

final class ProductWriteTests: XCTestCase {
    private func lower(_ b: GraphBuilder) throws -> LoweredProgram {
        if LoweringTests.sharedCompiler == nil { LoweringTests.sharedCompiler = try ShaderCompiler() }
        return try Lowering.lower(b.graph(), precision: .fp32, compiler: LoweringTests.sharedCompiler!)
    }

    private func kernelNames(_ p: LoweredProgram) -> [String] {
        p.steps.map { String(p.kernels[$0.kernel].name.prefix(while: { $0 != "<" })) }
    }

    /// Y's fields of matmul.comp's block: yBatchStride[4], yStrideM, yStrideN, yOffset.
    private func outputFields(_ p: LoweredProgram, _ step: Int) throws -> [Int] {
        let view = try XCTUnwrap(MatMulPush.output(p.steps[step].pushConstants))
        return view.strides + [view.offset]
    }

    func testScatteredFollowsTheTensorsDimsAndRefusesACarry() throws {
        // A [2, 3] block of a row-major [4, 3] tensor from row 1, moved by a transpose to [3, 4].
        let block = StridedAccess(shape: [2, 3], strides: [3, 1], offset: 3)
        let moved = try XCTUnwrap(block.scattered(over: [4, 3], to: ([1, 4], 0)))
        XCTAssertEqual(moved, StridedAccess(shape: [2, 3], strides: [1, 4], offset: 1))
        // Three rows from row 2 pass the end of dim 0 (coordinates 2, 3, 4 of 4): not affine.
        XCTAssertNil(StridedAccess(shape: [3, 3], strides: [3, 1], offset: 6).scattered(over: [4, 3], to: ([1, 4], 0)))
        // Elements 1 and 3, a stride of 2 along rows of 3 from column 1, carry into the next row.
        XCTAssertNil(StridedAccess(shape: [2, 2], strides: [3, 2], offset: 1).scattered(over: [4, 3], to: ([1, 4], 0)))
        // From column 0 they stay in their row (columns 0 and 2).
        XCTAssertEqual(StridedAccess(shape: [2, 2], strides: [3, 2], offset: 0).scattered(over: [4, 3], to: ([1, 4], 0)),
                       StridedAccess(shape: [2, 2], strides: [1, 8], offset: 0))
    }

    func testProductWritesThroughTheTransposeThatAloneReadsIt() throws {
        // P·V [2 heads, 3 positions, 5] → Transpose to [3 positions, 2 heads, 5]: one step, the product writing
        // element (h, m, n) at m·10 + h·5 + n.
        var b = GraphBuilder()
        b.input("p", [2, 3, 4])
        b.input("v", [2, 4, 5])
        b.node("MatMul", ["p", "v"], "z", [2, 3, 5])
        b.node("Transpose", ["z"], "t", [3, 2, 5], ["perm": .ints([1, 0, 2])])
        b.outputs = ["t"]
        let p = try lower(b)
        XCTAssertEqual(kernelNames(p), ["matmul"])
        XCTAssertEqual(p.steps[0].bindings[2], .tensor("t"))
        XCTAssertEqual(try outputFields(p, 0), [0, 0, 0, 5, 10, 1, 0])  // size-1 batch dims: stride 0

        // z is also a graph output: the copy stays, and the product writes z as its own tensor.
        b.outputs = ["t", "z"]
        let both = try lower(b)
        XCTAssertEqual(kernelNames(both), ["matmul", "copy_strided"])
        XCTAssertEqual(both.steps[0].bindings[2], .tensor("z"))
        XCTAssertEqual(try outputFields(both, 0), [30, 30, 30, 15, 5, 1, 0])
    }

    /// Two blocks of query rows (3 and 2) of two heads, each × V, concatenated along the rows: z [2, 5, 5].
    private func blocks() -> GraphBuilder {
        var b = GraphBuilder()
        b.input("q0", [2, 3, 4])
        b.input("q1", [2, 2, 4])
        b.input("v", [2, 4, 5])
        b.node("MatMul", ["q0", "v"], "z0", [2, 3, 5])
        b.node("MatMul", ["q1", "v"], "z1", [2, 2, 5])
        b.node("Concat", ["z0", "z1"], "z", [2, 5, 5], ["axis": .int(1)])
        return b
    }

    func testBlocksOfRowsWriteIntoTheirConcatAndOnThroughATranspose() throws {
        // The blocks' concatenation, then moved to [positions, heads, 5]: both products write into the
        // transpose's output, no copy.
        var b = blocks()
        b.outputs = ["z"]
        let concatenated = try lower(b)
        XCTAssertEqual(kernelNames(concatenated), ["matmul", "matmul"])
        XCTAssertEqual(try outputFields(concatenated, 0), [0, 0, 0, 25, 5, 1, 0])
        XCTAssertEqual(try outputFields(concatenated, 1), [0, 0, 0, 25, 5, 1, 15])

        b.node("Transpose", ["z"], "t", [5, 2, 5], ["perm": .ints([1, 0, 2])])
        b.outputs = ["t"]
        let p = try lower(b)
        XCTAssertEqual(kernelNames(p), ["matmul", "matmul"])
        XCTAssertEqual(p.steps.map { $0.bindings[2] }, [.tensor("t"), .tensor("t")])
        // Element (h, m, n) of block 1 is row 3 + m of head h: t[(3 + m)·10 + h·5 + n].
        XCTAssertEqual(try outputFields(p, 0), [0, 0, 0, 5, 10, 1, 0])
        XCTAssertEqual(try outputFields(p, 1), [0, 0, 0, 5, 10, 1, 30])
    }

    func testAProductWithAnotherReaderKeepsItsConcatCopy() throws {
        var b = blocks()
        b.node("Relu", ["z1"], "r", [2, 2, 5])
        b.outputs = ["z", "r"]
        let p = try lower(b)
        // z0 goes straight into z; z1 is read by the Relu too, so it is copied.
        XCTAssertEqual(kernelNames(p).filter { $0 == "copy_strided" }.count, 1)
        XCTAssertEqual(p.steps[0].bindings[2], .tensor("z"))
        XCTAssertEqual(p.steps[1].bindings[2], .tensor("z1"))
    }
}
