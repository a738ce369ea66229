import CVulkan
import XCTest
@testable import FlashMemRuntime

/// The rule that places a session's fixed range in its context's pool (`PoolPlacement`): pure, no device.
final class PoolPlacementTests: XCTestCase {
    typealias Occupant = PoolPlacement.Occupant

    func place(_ bytes: UInt64, alignment: UInt64 = 1, pool: UInt64 = 100, _ occupants: [Occupant]) -> UInt64? {
        PoolPlacement.place(bytes: bytes, alignment: alignment, poolBytes: pool, occupants: occupants)
    }

    func testFirstSessionTakesTheBottomAndTheSecondTheTop() {
        XCTAssertEqual(place(40, []), 0)
        XCTAssertEqual(place(40, [Occupant(range: 0..<40, state: .idle(lastUse: 1))]), 60)
        XCTAssertEqual(place(40, [Occupant(range: 0..<40, state: .pinned)]), 60)
        // The top end aligned down.
        XCTAssertEqual(place(40, alignment: 16, [Occupant(range: 0..<40, state: .pinned)]), 48)
    }

    /// A B C D with room for two: C overlaps the model used longer ago (A), D then B; ranges alternate.
    func testChainAlternatesBetweenTheEnds() {
        let a = Occupant(range: 0..<45, state: .idle(lastUse: 1))
        let b = Occupant(range: 55..<100, state: .idle(lastUse: 2))
        XCTAssertEqual(place(45, [a, b]), 0, "C goes over A, used before B")
        let c = Occupant(range: 0..<45, state: .pinned)
        XCTAssertEqual(place(45, [PoolPlacement.Occupant(range: a.range, state: .clobbered), b, c]), 55,
                       "D goes over B; C is running")
        XCTAssertEqual(place(45, [a, Occupant(range: b.range, state: .idle(lastUse: 0))]), 55, "B used before A")
    }

    func testPrefersRangesOverlappingNoValidContents() {
        // A free gap in the middle beats either end when both ends hold valid contents.
        let low = Occupant(range: 0..<30, state: .idle(lastUse: 1))
        let high = Occupant(range: 70..<100, state: .idle(lastUse: 2))
        XCTAssertEqual(place(40, [low, high]), 30)
        // Clobbered ranges count as free.
        XCTAssertEqual(place(50, [Occupant(range: 0..<50, state: .clobbered), high]), 0)
        // Among overlaps of the same age, fewer bytes.
        let a = Occupant(range: 0..<20, state: .idle(lastUse: 5))
        let b = Occupant(range: 20..<60, state: .idle(lastUse: 5))
        let c = Occupant(range: 60..<100, state: .idle(lastUse: 5))
        XCTAssertEqual(place(30, [a, b, c]), 70, "over c alone (40 bytes) rather than a and b (60 bytes)")
    }

    func testNeverOverlapsASessionInUse() {
        let pinned = Occupant(range: 30..<70, state: .pinned)
        XCTAssertNil(place(50, [pinned]), "both ends overlap the pinned range: wait")
        XCTAssertEqual(place(30, [pinned]), 0)
        XCTAssertEqual(place(30, [pinned, Occupant(range: 0..<30, state: .pinned)]), 70)
        XCTAssertNil(place(30, [pinned, Occupant(range: 0..<30, state: .pinned),
                                Occupant(range: 70..<100, state: .pinned)]))
    }

    func testTooLargeOrAlignedPastThePoolIsNil() {
        XCTAssertNil(place(101, []))
        XCTAssertEqual(place(100, []), 0)
        // Every candidate is a multiple of the alignment and ends inside the pool.
        let placed = place(30, alignment: 32, [Occupant(range: 0..<33, state: .pinned)])
        XCTAssertEqual(placed, 64)
        XCTAssertNil(place(40, alignment: 64, [Occupant(range: 0..<10, state: .pinned)]))
    }

    /// A session's piece: weight space first, the arena after it on its own granularity page; no padding where the
    /// weight space is a multiple of the alignments (the footprint is then the piece).
    func testMemoryPieceLaysWeightsThenArena() {
        let arena = VkMemoryRequirements(size: 1000, alignment: 256, memoryTypeBits: 0b110)
        let piece = MemoryPiece(arena: arena, weightBytes: 4096, weightAlignment: 512, weightTypeBits: 0b011,
                                granularity: 1024)
        XCTAssertEqual(piece, MemoryPiece(arenaOffset: 4096, bytes: 5096, alignment: 1024, typeBits: 0b010))
        let padded = MemoryPiece(arena: arena, weightBytes: 4000, weightAlignment: 2048, weightTypeBits: 0b111,
                                 granularity: 1)
        XCTAssertEqual(padded, MemoryPiece(arenaOffset: 4096, bytes: 5096, alignment: 2048, typeBits: 0b110))
        let weightless = MemoryPiece(arena: arena, weightBytes: 0, weightAlignment: 1, weightTypeBits: 0,
                                     granularity: 64)
        XCTAssertEqual(weightless, MemoryPiece(arenaOffset: 0, bytes: 1000, alignment: 256, typeBits: 0b110))
    }
}
