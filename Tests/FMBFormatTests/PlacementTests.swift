// The load plan's placement (format 1.2): the `placement` section, the `placement` header flag, the version the
// writer stamps, every validation rule, and golden/placed.fmb, which pins the bytes (1.3 since constant checksums; golden/placed-1.2.fmb keeps the 1.2 ones). Regenerate after an
// intended change with
//
//     FMB_REGENERATE_GOLDEN=1 swift test --filter PlacementTests

@testable import FMBFormat
import Foundation
import XCTest

extension Fixtures {
    /// `tiny()` with a placement: fc1.weight (1 KiB, steps 0…0) resident, fc2.weight (256 B, window 1…2) streamed,
    /// under a budget of arena + 2 KiB.
    static func placed() -> (bundle: FMBundle, payload: [UInt8]) {
        var (bundle, payload) = tiny()
        bundle.placement = Placement(weightSpaceBytes: 2048, segmentBytes: 1 << 20, slotAlignment: 256,
                                     method: .exact, slots: [Placement.Slot(resident: true, offset: 0, size: 1024),
                                                             Placement.Slot(resident: false, offset: 1024, size: 512)])
        bundle.schedule.budgetBytes = bundle.meta.arenaSize + 2048
        return (bundle, payload)
    }

    static func placedFile() throws -> [UInt8] {
        let (bundle, payload) = placed()
        return try BundleWriter.serialize(bundle, payload: payload)
    }
}

final class PlacementTests: XCTestCase {
    static let goldenSourcePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("golden/placed.fmb").path

    /// A placement makes the file 1.2 with the flag; its resident constant adds the 1.3 constantChecksums section.
    func testPlacementRoundTripsWithTheFlag() throws {
        let file = try Fixtures.placedFile()
        let parsed = try file.withUnsafeBytes { try BundleReader.parse(bytes: $0, verifyChecksums: true) }
        XCTAssertEqual(parsed.bundle, Fixtures.placed().bundle)
        XCTAssertEqual(parsed.layout.minor, 3)
        let (bundle, payload) = Fixtures.placed()
        let sums = try XCTUnwrap(parsed.constantChecksums)
        XCTAssertEqual(sums.count, bundle.tensors.count)
        for (t, tensor) in bundle.tensors.enumerated() {
            let expected = tensor.constant.map { Checksum.fm64(Array(payload[Int($0.offset)..<Int($0.offset + $0.size)])) }
            XCTAssertEqual(sums[t], expected ?? 0, "tensors[\(t)]")
        }
        XCTAssertEqual(parsed.layout.flags, FileLayout.placementFlag)
        XCTAssertEqual(parsed.layout.section(.placement)?.size, 40 + 2 * 24)
        XCTAssertEqual(parsed.bundle.streamedBytes, 256, "only fc2.weight is streamed by warm runs")
        XCTAssertEqual(parsed.bundle.plannedDeviceBytes, parsed.bundle.meta.arenaSize + 2048)
    }

    func testInspectorShowsThePlan() throws {
        let text = BundleInspector.describe(Fixtures.placed().bundle, layout: nil, path: "p.fmb")
        XCTAssertTrue(text.contains("exact; 1 of 2 images resident (1.0 KiB)"), text)
        XCTAssertTrue(text.contains("(within budget)"), text)
    }

    func testSerializationMatchesGoldenFile() throws {
        let bytes = try Fixtures.placedFile()
        if ProcessInfo.processInfo.environment["FMB_REGENERATE_GOLDEN"] == "1" {
            try Data(bytes).write(to: URL(fileURLWithPath: Self.goldenSourcePath), options: .atomic)
            print("rewrote \(Self.goldenSourcePath) (\(bytes.count) bytes)")
            return
        }
        guard let url = Bundle.module.url(forResource: "placed", withExtension: "fmb", subdirectory: "golden") else {
            return XCTFail("golden/placed.fmb is not in the test resources; generate it with FMB_REGENERATE_GOLDEN=1")
        }
        let golden = [UInt8](try Data(contentsOf: url))
        XCTAssertEqual(golden, bytes, "the 1.3 bytes changed; if intended, see this file's header to regenerate")
        XCTAssertEqual(try BundleReader.load(bytes: golden, verifyChecksums: true).bundle, Fixtures.placed().bundle)
    }

    /// An older minor still loads: the same bundle as written by the 1.2 writer (before constant checksums),
    /// kept as golden/placed-1.2.fmb, reads as the same bundle, without constant checksums.
    func testVersion1_2FileStillReads() throws {
        guard let url = Bundle.module.url(forResource: "placed-1.2", withExtension: "fmb", subdirectory: "golden") else {
            return XCTFail("golden/placed-1.2.fmb is not in the test resources")
        }
        let golden = [UInt8](try Data(contentsOf: url))
        let parsed = try golden.withUnsafeBytes { try BundleReader.parse(bytes: $0, verifyChecksums: true) }
        XCTAssertEqual(parsed.layout.minor, 2)
        XCTAssertEqual(parsed.bundle, Fixtures.placed().bundle)
        XCTAssertNil(parsed.constantChecksums)
    }

    func testConstantChecksumsSectionNeedsMinor3AndOneEntryPerTensor() throws {
        var s = FileSurgery(try Fixtures.placedFile())
        s.set16(6, 2)
        assertIssue(parseIssues(s.bytes), path: "sections[\(s.index(of: .constantChecksums))].kind",
                    contains: "constant checksums are format 1.3")
    }

    func testFlagAndSectionGoTogether() throws {
        var s = FileSurgery(try Fixtures.placedFile())
        s.set32(8, 0)
        assertIssue(parseIssues(s.bytes), path: "header.flags", contains: "the placement flag (0x2) is not set")
        s = FileSurgery(try Fixtures.tinyFile())
        s.set32(8, FileLayout.placementFlag)
        assertIssue(parseIssues(s.bytes), path: "header.flags", contains: "flag (0x2) is set, but there is no placement")
        s = FileSurgery(try Fixtures.placedFile())
        s.set16(6, 1)
        assertIssue(parseIssues(s.bytes), path: "sections[7].kind", contains: "a placement section in a 1.1 bundle")
    }

    /// Each broken plan is refused by the meaning pass, naming the slot.
    func testEveryRuleIsChecked() {
        func issues(_ edit: (inout FMBundle) -> Void) -> [FormatIssue] {
            var (bundle, _) = Fixtures.placed()
            edit(&bundle)
            return BundleValidator.checkMeaning(bundle)
        }
        XCTAssertEqual(issues { _ in }, [])
        let cases: [(String, String, (inout FMBundle) -> Void)] = [
            ("placement.slots", "1 entries, expected 2", { $0.placement!.slots.removeLast() }),
            ("placement.slots[0].size", "1000 bytes for images[0]", { $0.placement!.slots[0].size = 1000 }),
            ("placement.slots[1].offset", "not a multiple of slotAlignment", { $0.placement!.slots[1].offset = 1100 }),
            ("placement.slots[1]", "ends past the weight space", { $0.placement!.slots[1].offset = 1792 }),
            ("placement.slots[1]", "crosses a segment boundary", { $0.placement!.segmentBytes = 1280 }),
            ("placement.slots[1]", "one of them is resident", { $0.placement!.slots[1].offset = 768 }),
            ("placement.slots[1]", "while both are live", {
                $0.placement!.slots[0].resident = false
                $0.placement!.slots[1].offset = 512
                $0.schedule.issueStep[3] = 0  // fc2's window now starts at step 0, fc1 is read at step 0
            }),
            ("placement.weightSpaceBytes", "exceed the budget", { $0.schedule.budgetBytes = 2048 }),
            ("placement.slotAlignment", "not a power of two", { $0.placement!.slotAlignment = 96 }),
            ("placement.segmentBytes", "is 0", { $0.placement!.segmentBytes = 0 }),
            // Found by Fuzz/ (fuzz-regressions/arena-size-overflow.fmb): arena + weight space overflowed UInt64 in
            // readers that add them (MemoryTimeline, plannedDeviceBytes).
            ("placement.weightSpaceBytes", "exceeds the 1125899906842624-byte limit", {
                $0.placement!.weightSpaceBytes = UInt64.max - 4096
                $0.schedule.budgetBytes = 0
            }),
        ]
        for (path, message, edit) in cases {
            let found = issues(edit)
            XCTAssertTrue(found.contains { $0.path == path && $0.message.contains(message) },
                          "expected \(path): …\(message)…, got \(found)")
        }
        // Streamed slots whose windows are disjoint may share bytes.
        XCTAssertEqual(issues {
            $0.placement!.slots[0].resident = false
            $0.placement!.slots[1].offset = 0
        }, [])
    }

    func testDecodingRejectsUnknownMethodAndFlags() throws {
        var s = FileSurgery(try Fixtures.placedFile())
        s.editSection(.placement) { $0[24] = 9 }
        assertIssue(parseIssues(s.bytes), path: "placement.method", contains: "unknown method 9")
        s = FileSurgery(try Fixtures.placedFile())
        s.editSection(.placement) { $0[40 + 16] = 0x81 }
        assertIssue(parseIssues(s.bytes), path: "placement.slots[0].flags", contains: "unknown flag bits 0x80")
    }
}

final class PieceSummaryTests: XCTestCase {
    /// Weights cut into pieces (`name[p/P]`) are listed by `fmc inspect` with their piece count and first reader.
    func testInspectorListsWeightsCutIntoPieces() {
        var (bundle, _) = Fixtures.tiny()
        XCTAssertFalse(BundleInspector.describe(bundle, layout: nil, path: "t").contains("Weights cut into pieces"))
        bundle.images[0].name = "fc.weight[1/2]"
        bundle.images[1].name = "fc.weight[2/2]"
        let text = BundleInspector.describe(bundle, layout: nil, path: "t")
        XCTAssertTrue(text.contains("Weights cut into pieces (1)"), text)
        let row = text.split(separator: "\n").first { $0.contains("fc.weight ") && $0.contains(" 2 ") }
        XCTAssertNotNil(row, text)
        XCTAssertTrue(row?.contains(bundle.program[0].label) ?? false, text)
    }
}
