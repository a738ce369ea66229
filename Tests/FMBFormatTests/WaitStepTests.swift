// Wait steps (format 1.4): `Schedule.waitStep`, stored in the optional `waits` section (kind 13). The writer adds
// the section and stamps 1.4 only when a bundle has wait steps; bundles without them keep their bytes and minor.
// Every validation rule is broken once: a wait after the image's first use, a wait before its chunks' issue step,
// a count that is not one per image, and a waits section in a file older than 1.4.

@testable import FMBFormat
import Foundation
import XCTest

extension Fixtures {
    /// `placed()` (fc1.weight resident, chunks issued at 0, read by step 0; fc2.weight streamed, its chunk
    /// issued at step 1, read by step 2) with fc2.weight waited for at step 1, its issue step, before its first use.
    static func waited() -> (bundle: FMBundle, payload: [UInt8]) {
        var (bundle, payload) = placed()
        bundle.schedule.waitStep = [0, 1]
        return (bundle, payload)
    }
}

final class WaitStepTests: XCTestCase {
    func parse(_ bytes: [UInt8]) throws -> ParsedBundle {
        try bytes.withUnsafeBytes { try BundleReader.parse(bytes: $0, verifyChecksums: true) }
    }

    // MARK: Round trip and version

    func testWaitStepsRoundTripAsFormat1_4() throws {
        let (bundle, payload) = Fixtures.waited()
        let file = try BundleWriter.serialize(bundle, payload: payload)
        let parsed = try parse(file)
        XCTAssertEqual(parsed.bundle, bundle)
        XCTAssertEqual(parsed.bundle.schedule.waitStep, [0, 1])
        XCTAssertEqual(parsed.layout.minor, 4)
        XCTAssertEqual(parsed.layout.flags, FileLayout.placementFlag, "wait steps add no must-understand flag")
        let section = try XCTUnwrap(parsed.layout.section(.waits))
        XCTAssertEqual(section.size, 4 + 2 * 4, "a count and one u32 per image")
        XCTAssertEqual(parsed.bundle.schedule.waitStep(image: 0), 0)
        XCTAssertEqual(parsed.bundle.schedule.waitStep(image: 1), 1)
        // Everything else decodes as without wait steps.
        var without = parsed.bundle
        without.schedule.waitStep = nil
        XCTAssertEqual(without, Fixtures.placed().bundle)

        // The in-memory path reads the same bundle and payload.
        let loaded = try BundleReader.load(bytes: file, verifyChecksums: true)
        XCTAssertEqual(loaded.bundle, bundle)
        XCTAssertEqual(Array(loaded.data), payload)

        // A bundle without a placement (otherwise 1.0) is 1.4 too once it has wait steps.
        var (tiny, tinyPayload) = Fixtures.tiny()
        tiny.schedule.waitStep = [0, 2]
        let tinyParsed = try parse(try BundleWriter.serialize(tiny, payload: tinyPayload))
        XCTAssertEqual(tinyParsed.layout.minor, 4)
        XCTAssertEqual(tinyParsed.bundle, tiny)
        XCTAssertEqual(tinyParsed.layout.flags, 0)
    }

    /// Waits equal to the first uses are still stored as given (the writer does not drop them); nil means first use.
    func testWaitStepOfAnImageDefaultsToItsFirstUse() throws {
        var schedule = Fixtures.placed().bundle.schedule
        XCTAssertNil(schedule.waitStep)
        XCTAssertEqual(schedule.waitStep(image: 0), 0)
        XCTAssertEqual(schedule.waitStep(image: 1), 2)
        schedule.waitStep = [0, 1]
        XCTAssertEqual(schedule.waitStep(image: 1), 1)

        var (bundle, payload) = Fixtures.placed()
        bundle.schedule.waitStep = bundle.schedule.firstUse
        let parsed = try parse(try BundleWriter.serialize(bundle, payload: payload))
        XCTAssertEqual(parsed.layout.minor, 4)
        XCTAssertEqual(parsed.bundle.schedule.waitStep, [0, 2])
    }

    func testBundlesWithoutWaitStepsKeepTheirMinorAndHaveNoWaitsSection() throws {
        let placed = try parse(try Fixtures.placedFile())
        XCTAssertEqual(placed.layout.minor, 3, "placement + constant checksums: still 1.3")
        XCTAssertNil(placed.layout.section(.waits))
        XCTAssertNil(placed.bundle.schedule.waitStep)

        let tiny = try parse(try Fixtures.tinyFile())
        XCTAssertEqual(tiny.layout.minor, 0)
        XCTAssertNil(tiny.layout.section(.waits))
        XCTAssertNil(tiny.bundle.schedule.waitStep)

        // Adding wait steps adds the waits section and changes the version; every other section keeps its bytes.
        let withoutBytes = try Fixtures.placedFile()
        let withBytes = try BundleWriter.serialize(Fixtures.waited().bundle, payload: Fixtures.waited().payload)
        let with = try parse(withBytes)
        XCTAssertEqual(Set(with.layout.sections.map(\.kind)), Set(placed.layout.sections.map(\.kind)).union([.waits]))
        for entry in placed.layout.sections {
            let other = try XCTUnwrap(with.layout.section(entry.kind))
            XCTAssertEqual(Array(withBytes[other.range]), Array(withoutBytes[entry.range]), "\(entry.kind) section")
        }
    }

    func testSectionKindIsKnownAndNamed() {
        XCTAssertEqual(SectionKind.waits.rawValue, 13)
        XCTAssertTrue(SectionKind.waits.isKnown)
        XCTAssertEqual(SectionKind.waits.description, "waits")
        XCTAssertFalse(SectionKind(rawValue: 14).isKnown)
        XCTAssertFalse(SectionKind.v1.contains(.waits), "the waits section is optional")
    }

    /// fc2.weight waited for at its issue step 1 instead of its first use 2: step 2 no longer starts a submission,
    /// in the first run (every chunk copied) and in warm runs (fc2.weight only).
    func testStreamingSubmissionsCountTheWaits() {
        let without = Fixtures.placed().bundle
        XCTAssertEqual(without.streamingSubmissions.first, 3)
        XCTAssertEqual(without.streamingSubmissions.warm, 3)
        let with = Fixtures.waited().bundle
        XCTAssertEqual(with.streamingSubmissions.first, 2)
        XCTAssertEqual(with.streamingSubmissions.warm, 2)
        XCTAssertEqual(ExecutionPlan(with).stepNeed, [3, 4, 0])
        XCTAssertEqual(ExecutionPlan(with).streamingBatches(stepCount: 3), [
            .init(steps: 0..<1, waitLoaded: 3), .init(steps: 1..<3, waitLoaded: 4),
        ])
        XCTAssertEqual(ExecutionPlan(with, copies: [false, true]).stepNeed, [0, 1, 0])
    }

    func testInspectorShowsSubmissionsAndEarlyWaits() {
        let with = BundleInspector.describe(Fixtures.waited().bundle, layout: nil, path: "w.fmb")
        XCTAssertTrue(with.contains("first run 2, warm run 2 when streamed (1 images waited for before their first use)"),
                      with)
        let without = BundleInspector.describe(Fixtures.placed().bundle, layout: nil, path: "p.fmb")
        XCTAssertTrue(without.contains("first run 3, warm run 3 when streamed"), without)
        XCTAssertFalse(without.contains("waited for before"), without)
    }

    // MARK: Validation

    func meaningIssues(_ edit: (inout FMBundle) -> Void) -> [FormatIssue] {
        var (bundle, _) = Fixtures.waited()
        edit(&bundle)
        return BundleValidator.checkMeaning(bundle)
    }

    func testValidWaitStepsPass() {
        XCTAssertEqual(meaningIssues { _ in }, [])
        // Every wait between the last chunk's issue step and the first use is accepted.
        XCTAssertEqual(meaningIssues { $0.schedule.waitStep = [0, 2] }, [])
        XCTAssertEqual(meaningIssues {
            $0.schedule.issueStep[3] = 0
            $0.schedule.waitStep = [0, 0]
        }, [])
    }

    func testWaitAfterFirstUseIsRefused() {
        let late = meaningIssues { $0.schedule.waitStep = [0, 3] }
        assertIssue(late, path: "waits[1]", contains: "3: images[1] must be waited for between", pass: .meaning)
        assertIssue(late, path: "waits[1]", contains: "its first use (2)")
        let lateResident = meaningIssues { $0.schedule.waitStep = [1, 1] }
        assertIssue(lateResident, path: "waits[0]", contains: "its first use (0)")
        XCTAssertFalse(lateResident.contains { $0.path == "waits[1]" }, "\(lateResident)")
    }

    func testWaitBeforeTheChunksAreIssuedIsRefused() {
        // fc2.weight's only chunk (chunks[3]) is issued after step 1: waiting for it before step 0 would deadlock.
        let early = meaningIssues { $0.schedule.waitStep = [0, 0] }
        assertIssue(early, path: "waits[1]", contains: "issue step of its last chunk (1)", pass: .meaning)
        XCTAssertEqual(early.count, 1, "\(early)")
        // The largest issue step among an image's chunks counts: fc1.weight with one chunk issued at step 1.
        let oneLate = meaningIssues {
            $0.schedule.firstUse[0] = 1  // (program[0] binds images[0]: the firstUse rule fires too)
            $0.schedule.issueStep[2] = 1
            $0.schedule.order = [0, 1, 2, 3]
            $0.schedule.waitStep = [0, 1]
        }
        assertIssue(oneLate, path: "waits[0]", contains: "issue step of its last chunk (1)")
    }

    func testWrongCountIsRefused() {
        assertIssue(meaningIssues { $0.schedule.waitStep = [0] }, path: "waits",
                    contains: "1 entries, expected 2 (one per image)", pass: .meaning)
        assertIssue(meaningIssues { $0.schedule.waitStep = [0, 1, 2] }, path: "waits",
                    contains: "3 entries, expected 2")
        assertIssue(meaningIssues { $0.schedule.waitStep = [] }, path: "waits", contains: "0 entries, expected 2")
    }

    /// The writer validates first: it refuses to write a bundle whose waits break the rules.
    func testWriterRefusesBadWaits() {
        var (bundle, payload) = Fixtures.waited()
        bundle.schedule.waitStep = [0, 3]
        XCTAssertThrowsError(try BundleWriter.serialize(bundle, payload: payload)) { error in
            XCTAssertTrue((error as? FormatError)?.issues.contains { $0.path == "waits[1]" } ?? false, "\(error)")
        }
    }

    /// The reader runs the same rules on what it decodes (sections edited in place, checksums right).
    func testReaderRefusesBadWaitsInAFile() throws {
        var s = FileSurgery(try BundleWriter.serialize(Fixtures.waited().bundle, payload: Fixtures.waited().payload))
        s.editSection(.waits) { body in
            body.replaceSubrange(8..<12, with: [3, 0, 0, 0])  // images[1] waited for at step 3, after its first use
        }
        assertIssue(parseIssues(s.bytes), path: "waits[1]", contains: "first use (2)")

        s = FileSurgery(try BundleWriter.serialize(Fixtures.waited().bundle, payload: Fixtures.waited().payload))
        s.editSection(.waits) { body in
            body.replaceSubrange(8..<12, with: [0, 0, 0, 0])  // before its chunk is issued
        }
        assertIssue(parseIssues(s.bytes), path: "waits[1]", contains: "issue step of its last chunk (1)")

        s = FileSurgery(try BundleWriter.serialize(Fixtures.waited().bundle, payload: Fixtures.waited().payload))
        s.editSection(.waits) { body in
            body = [1, 0, 0, 0, 0, 0, 0, 0]  // one entry for two images
        }
        assertIssue(parseIssues(s.bytes), path: "waits", contains: "1 entries, expected 2")
    }

    func testWaitsSectionNeedsMinor4() throws {
        var s = FileSurgery(try BundleWriter.serialize(Fixtures.waited().bundle, payload: Fixtures.waited().payload))
        XCTAssertEqual(s.u16(6), 4)
        s.set16(6, 3)
        assertIssue(parseIssues(s.bytes), path: "sections[\(s.index(of: .waits))].kind",
                    contains: "a waits section in a 1.3 bundle (wait steps are format 1.4)", pass: .structure)
        // The same file declared 1.4 again reads.
        s.set16(6, 4)
        XCTAssertEqual(try parse(s.bytes).bundle, Fixtures.waited().bundle)
    }

    /// A truncated waits section fails decoding with the section named instead of reading past it.
    func testTruncatedWaitsSectionIsRefused() throws {
        var s = FileSurgery(try BundleWriter.serialize(Fixtures.waited().bundle, payload: Fixtures.waited().payload))
        s.editSection(.waits) { body in body.removeLast(4) }  // count 2, one entry
        let issues = parseIssues(s.bytes)
        XCTAssertTrue(issues.contains { $0.path.hasPrefix("waits") }, "\(issues)")
    }
}
