import XCTest
@testable import FMBFormat

final class InspectorTests: XCTestCase {
    /// `fmc inspect --steps`: one row per step with its kernel, groups, bound tensors and images by name, and label.
    func testStepTableListsEveryStepWithItsBindingsByName() {
        let bundle = Fixtures.tiny().bundle
        let lines = BundleInspector.stepTable(bundle).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "Steps (3)")
        XCTAssertEqual(lines.count, 2 + bundle.program.count, lines.joined(separator: "\n"))  // title, header, rows
        let first = lines[2]
        XCTAssertTrue(first.contains("matmul_rgba32f") && first.contains("1×2×1"), first)
        XCTAssertTrue(lines[1].contains("planned µs") && first.contains(" 1000.0 ") && lines[3].contains(" 200.0 "),
                      "the plan's step times (1 ms, 0.2 ms)")
        XCTAssertTrue(first.contains("x, image fc1.weight, h") && first.hasSuffix("/fc1/MatMul"), first)
        XCTAssertTrue(lines[3].contains("h, fc1.bias, h") && lines[3].hasSuffix("/fc1/Add"), lines[3])
        XCTAssertTrue(lines[4].contains("image fc2.weight, y"), lines[4])
        XCTAssertFalse(lines.contains { $0.contains("(copy)") })
    }
}
