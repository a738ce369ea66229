import XCTest
@testable import FMBFormat

/// The one slot-placement rule the compiler plans with and the runtime re-places with.
final class SlotPlacementTests: XCTestCase {
    private func place(_ sizes: [UInt64], alignments: [UInt64]? = nil, resident: [Bool]? = nil,
                       windows: [ClosedRange<Int>], segment: UInt64 = 1 << 30) throws -> SlotPlacement.Result {
        try SlotPlacement.place(sizes: sizes, alignments: alignments ?? sizes.map { _ in 1 },
                                resident: resident ?? sizes.map { _ in false }, windows: windows, segmentBytes: segment)
    }

    func testDisjointLifetimesShareBytes() throws {
        let p = try place([1000, 600, 1000], alignments: [256, 256, 256], windows: [0...2, 3...5, 6...6])
        XCTAssertEqual(p.offsets, [0, 0, 0])
        XCTAssertEqual(p.end, 1000)
    }

    func testTouchingLifetimesDoNotShare() throws {
        // lastUse 3 == window start 3: the copy may run while step 3 still reads the other image.
        let p = try place([512, 512], alignments: [256, 256], windows: [0...3, 3...4])
        XCTAssertEqual(Set(p.offsets), [0, 512])
        XCTAssertEqual(p.end, 1024)
    }

    func testFirstFitFillsGaps() throws {
        // A (0…9) and C (0…9) are live throughout; B (0…1) and D (5…9) can reuse the same gap.
        let p = try place([400, 200, 400, 200], windows: [0...9, 0...1, 0...9, 5...9])
        XCTAssertEqual(p.offsets[1], p.offsets[3])
        XCTAssertEqual(p.end, 1000)
    }

    func testResidentSlotsComeFirstAndShareNothing() throws {
        let p = try place([300, 300, 300], resident: [false, true, false], windows: [0...0, 5...5, 9...9])
        XCTAssertEqual(p.offsets[1], 0, "resident slots are packed from 0")
        XCTAssertEqual(p.offsets[0], 300)
        XCTAssertEqual(p.offsets[2], 300, "streamed slots with disjoint windows share bytes above the resident ones")
        XCTAssertEqual(p.end, 600)
    }

    func testNoSlotStraddlesASegment() throws {
        let p = try place([600, 600, 600], resident: [true, true, true], windows: [0...0, 0...0, 0...0], segment: 1000)
        XCTAssertEqual(p.offsets, [0, 1000, 2000])
        XCTAssertThrowsError(try place([1001], windows: [0...0], segment: 1000)) { error in
            XCTAssertEqual(error as? SlotPlacement.TooLarge, SlotPlacement.TooLarge(index: 0, size: 1001, segmentBytes: 1000))
        }
    }

    func testRandomPlacementsNeverOverlapLiveSlots() throws {
        var seed: UInt64 = 3
        func next(_ n: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(n))
        }
        for _ in 0..<300 {
            let count = 1 + next(12)
            let sizes = (0..<count).map { _ in UInt64(1 + next(5000)) }
            let alignments = (0..<count).map { _ in UInt64(1) << UInt64(next(10)) }
            let resident = (0..<count).map { _ in next(4) == 0 }
            let windows = (0..<count).map { _ -> ClosedRange<Int> in
                let start = next(20)
                return start...(start + next(6))
            }
            let segment: UInt64 = 8192
            let p = try place(sizes, alignments: alignments, resident: resident, windows: windows, segment: segment)
            for i in 0..<count {
                XCTAssertEqual(p.offsets[i] % alignments[i], 0)
                XCTAssertLessThanOrEqual(p.offsets[i] + sizes[i], p.end)
                XCTAssertEqual(p.offsets[i] / segment, (p.offsets[i] + sizes[i] - 1) / segment, "slot \(i) straddles")
                for j in 0..<i where resident[i] || resident[j] || windows[i].overlaps(windows[j]) {
                    let disjoint = p.offsets[i] + sizes[i] <= p.offsets[j] || p.offsets[j] + sizes[j] <= p.offsets[i]
                    XCTAssertTrue(disjoint, "slots \(i) and \(j) are live together and overlap")
                }
            }
            let peak = SlotPlacement.peakLiveBytes(sizes: sizes, resident: resident, windows: windows, stepCount: 30)
            XCTAssertLessThanOrEqual(peak, p.end, "no placement can need less than the peak of live bytes")
        }
    }
}
