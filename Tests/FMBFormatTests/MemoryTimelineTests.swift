// The planned memory chart of `fmc inspect --timeline`: its numbers per step and the SVG it draws.

import XCTest
@testable import FMBFormat

final class MemoryTimelineTests: XCTestCase {
    func testSeriesFollowSlotsAndWindows() {
        let bundle = Fixtures.placed().bundle
        let timeline = MemoryTimeline(bundle: bundle)
        let steps = bundle.program.count
        XCTAssertEqual(timeline.stepCount, steps)
        XCTAssertEqual(timeline.series.map(\.name), ["arena", "resident weights", "streamed weights (live)"])
        XCTAssertEqual(timeline.series[0].bytes, Array(repeating: bundle.meta.arenaSize, count: steps))
        XCTAssertEqual(timeline.series[1].bytes, Array(repeating: 1024, count: steps))
        let window = bundle.imageWindows()[1]
        XCTAssertEqual(timeline.series[2].bytes, (0..<steps).map { window.contains($0) ? 512 : 0 })
        XCTAssertEqual(timeline.budgetBytes, bundle.meta.arenaSize + 2048)
        XCTAssertTrue(timeline.totals.allSatisfy { $0 <= timeline.budgetBytes })
    }

    func testSVGHasOnePolygonPerSeriesAndTheBudgetLine() {
        let timeline = MemoryTimeline(bundle: Fixtures.placed().bundle)
        let svg = timeline.svg(title: "tiny <placed>")
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
        XCTAssertEqual(svg.components(separatedBy: "<polygon class=\"series\"").count - 1, timeline.series.count)
        for s in timeline.series { XCTAssertTrue(svg.contains("data-name=\"\(s.name)\""), s.name) }
        XCTAssertEqual(svg.components(separatedBy: "<line class=\"budget\"").count - 1, 1)
        XCTAssertTrue(svg.contains("tiny &lt;placed&gt;"))
        XCTAssertTrue(svg.contains("device memory (MiB)"))
        XCTAssertTrue(svg.contains(">step</text>"))
        XCTAssertFalse(svg.contains("nan") || svg.contains("inf"))

        // Unbounded: no budget line.
        var unbounded = Fixtures.placed().bundle
        unbounded.schedule.budgetBytes = 0
        let plain = MemoryTimeline(bundle: unbounded).svg(title: "t")
        XCTAssertFalse(plain.contains("class=\"budget\""))
        XCTAssertTrue(plain.contains("no budget"))
    }
}
