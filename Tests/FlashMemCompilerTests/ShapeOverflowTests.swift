// Absurd shapes and attributes (issue 12, item 6): a model may hold any int64 or float, and shape inference used to
// compute some output sizes with plain arithmetic (`d * repeats`, `d + pads`, `Int(scale * d)`, Range's count,
// Slice's count with a huge step), which traps on overflow. Each now gives a CompileError naming the node.

@testable import FlashMemCompiler
import TestSupport
import XCTest

final class ShapeOverflowTests: XCTestCase {
    typealias G = TestGraphs

    private func node(_ op: String, _ inputs: [String], _ attributes: [String: Attribute] = [:]) -> Node {
        Node(name: "huge_\(op)", opType: op, inputs: inputs, outputs: ["y"], attributes: attributes)
    }

    /// The error of inferring `node` over a float input `x` of `shape`, checked to name the node.
    private func failure(_ node: Node, x shape: [Int], _ initializers: [String: ConstantTensor],
                         line: UInt = #line) -> String {
        let error = compileError({
            _ = try G.inferOne(node, inputs: [("x", shape)], initializers: initializers)
        }, line: line)
        XCTAssertEqual(error?.node, node.name, line: line)
        XCTAssertEqual(error?.op, node.opType, line: line)
        return error?.message ?? ""
    }

    func testTileRepeatsThatOverflow() {
        let big = Int(Int32.max)
        XCTAssertEqual(failure(node("Tile", ["x", "r"]), x: [big], ["r": G.int64([1 << 40])]),
                       "the product of [\(big), \(1 << 40)] overflows")
        XCTAssertTrue(failure(node("Tile", ["x", "r"]), x: [4], ["r": G.int64([1 << 40])])
            .contains("has dimension 4398046511104, outside 0...2147483647"))
    }

    func testPadsThatOverflow() {
        let message = failure(node("Pad", ["x", "p"]), x: [4], ["p": G.int64([Int.max, Int.max])])
        XCTAssertTrue(message.contains("overflows"), message)
    }

    func testResizeScalesBeyondAnyDimension() {
        let message = failure(node("Resize", ["x", "", "s"]), x: [1, 1, 4, 4], ["s": G.float32([1, 1, 3e38, 1])])
        XCTAssertTrue(message.hasPrefix("scaled size of axis 2 "), message)
        XCTAssertTrue(message.hasSuffix("is not a size in 0...2147483647"), message)
    }

    func testRangeCountBeyondAnyDimension() {
        let scalars = ["s": G.float32([0], shape: []), "l": G.float32([3e38], shape: []),
                       "d": G.float32([1e-38], shape: [])]
        let error = compileError {
            _ = try G.inferOne(self.node("Range", ["s", "l", "d"]), inputs: [], initializers: scalars)
        }
        XCTAssertEqual(error?.node, "huge_Range")
        XCTAssertTrue(error?.message.hasPrefix("Range's element count ") ?? false, "\(String(describing: error))")
        let nan = compileError {
            _ = try G.inferOne(self.node("Range", ["s", "l", "d"]), inputs: [],
                               initializers: scalars.merging(["l": G.float32([.nan], shape: [])]) { $1 })
        }
        XCTAssertTrue(nan?.message.hasPrefix("Range's element count nan") ?? false, "\(String(describing: nan))")
    }

    /// A step of ±2^63 is legal ONNX: it takes one element.
    func testSliceStepsAtTheInt64Limits() throws {
        func slice(_ starts: Int, _ ends: Int, _ step: Int) throws -> [Int] {
            try G.inferOne(node("Slice", ["x", "b", "e", "a", "st"]), inputs: [("x", [10])],
                           initializers: ["b": G.int64([starts]), "e": G.int64([ends]), "a": G.int64([0]),
                                          "st": G.int64([step])])[0]
        }
        XCTAssertEqual(try slice(0, 10, Int.max), [1])
        XCTAssertEqual(try slice(9, Int.min, Int.min), [1])
        XCTAssertEqual(try slice(9, Int.min, -4), [3])
        XCTAssertEqual(try slice(1, 10, 4), [3])
    }

    /// int64 attributes multiplied into sizes: LSTM's 4·hidden_size, Conv's W[1]·group (reached with 0 channels).
    func testAttributesMultipliedIntoSizes() {
        let lstm = failure(node("LSTM", ["x", "w", "r"], ["hidden_size": .int(1 << 62)]), x: [1, 1, 2],
                           ["w": G.zeros([1, 4, 2]), "r": G.zeros([1, 4, 1])])
        XCTAssertTrue(lstm.contains("hidden_size is 4611686018427387904"), lstm)
        let conv = failure(node("Conv", ["x", "w"], ["group": .int(1 << 62)]), x: [1, 0, 8], ["w": G.zeros([0, 2, 3])])
        XCTAssertTrue(conv.contains("group 4611686018427387904 do not match"), conv)
    }

    func testWindowAttributesLargerThanAnyDimension() {
        let w = ["w": G.zeros([1, 1, 3])]
        for (key, value) in [("strides", [1 << 40]), ("dilations", [Int.max]), ("pads", [0, 1 << 62])] {
            let message = failure(node("Conv", ["x", "w"], [key: .ints(value)]), x: [1, 1, 8], w)
            XCTAssertTrue(message.contains("\(key) entry \(value.max()!) is larger than any dimension"),
                          "\(key): \(message)")
        }
    }
}
