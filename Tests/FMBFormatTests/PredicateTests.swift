// Predicated steps (format 1.1): the `predicates` section, the `predicatedSteps` header flag, the version the
// writer stamps, every new validation rule, and the golden file golden/predicated.fmb, which pins the 1.1 bytes
// the way golden/tiny.fmb pins 1.0 (tiny.fmb is unchanged: a bundle without predicated steps is still written
// as 1.0). Regenerate both after an intended change with
//
//     FMB_REGENERATE_GOLDEN=1 swift test --filter 'GoldenFileTests|PredicateTests'

@testable import FMBFormat
import Foundation
import XCTest

extension Fixtures {
    /// `tiny()` with steps 1 and 2 predicated on the first word of tensor 0 ('x'): step 1 runs when it is not 0,
    /// step 2 when it is 0 (an If's then and else branch).
    static func predicated() -> (bundle: FMBundle, payload: [UInt8]) {
        var (bundle, payload) = tiny()
        bundle.program[1].predicate = StepPredicate(tensor: 0, sense: .nonZero)
        bundle.program[2].predicate = StepPredicate(tensor: 0, sense: .zero)
        return (bundle, payload)
    }

    static func predicatedFile() throws -> [UInt8] {
        let (bundle, payload) = predicated()
        return try BundleWriter.serialize(bundle, payload: payload)
    }
}

final class PredicateTests: XCTestCase {
    static let goldenSourcePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("golden/predicated.fmb").path

    // MARK: Writing and reading

    func testPredicatesRoundTripAsVersion1_1WithTheFlag() throws {
        let file = try Fixtures.predicatedFile()
        let parsed = try file.withUnsafeBytes { try BundleReader.parse(bytes: $0, verifyChecksums: true) }
        XCTAssertEqual(parsed.bundle, Fixtures.predicated().bundle)
        XCTAssertEqual(parsed.bundle.program.map(\.predicate),
                       [nil, StepPredicate(tensor: 0, sense: .nonZero), StepPredicate(tensor: 0, sense: .zero)])
        XCTAssertEqual(parsed.layout.minor, 1)
        XCTAssertEqual(parsed.layout.flags, FileLayout.predicatedStepsFlag)
        XCTAssertEqual(parsed.layout.sections.map(\.kind), SectionKind.v1.dropLast() + [.predicates, .data])
        // Two 12-byte records after the count.
        XCTAssertEqual(parsed.layout.section(.predicates)?.size, 4 + 2 * 12)
    }

    func testBundlesWithoutPredicatesStayVersion1_0() throws {
        let file = try Fixtures.tinyFile()
        let parsed = try file.withUnsafeBytes { try BundleReader.parse(bytes: $0) }
        XCTAssertEqual(parsed.layout.minor, 0)
        XCTAssertEqual(parsed.layout.flags, 0)
        XCTAssertNil(parsed.layout.section(.predicates))
        XCTAssertFalse(parsed.bundle.hasPredicatedSteps)
    }

    func testA1_0ReaderWouldRefuseTheFile() throws {
        // The flag is must-understand: a reader that knows no flags (1.0) reports it instead of running every step.
        let file = try Fixtures.predicatedFile()
        let flags = FileSurgery(file).u32(8)
        XCTAssertNotEqual(flags & FileLayout.mustUnderstandFlags, 0)
    }

    func testInspectorListsPredicatedSteps() throws {
        let loaded = try BundleReader.load(bytes: try Fixtures.predicatedFile())
        let text = BundleInspector.describe(loaded.bundle, layout: nil, path: "p.fmb")
        XCTAssertTrue(text.contains("predicated: 2 steps"), text)
        XCTAssertTrue(text.contains("'x' ≠ 0") && text.contains("/fc1/Add"), text)
        XCTAssertTrue(text.contains("'x' = 0") && text.contains("/fc2/MatMul"), text)
        XCTAssertFalse(BundleInspector.describe(Fixtures.tiny().bundle, layout: nil, path: "t").contains("predicated"))
    }

    // MARK: Golden file

    func testSerializationMatchesGoldenFile() throws {
        let bytes = try Fixtures.predicatedFile()
        if ProcessInfo.processInfo.environment["FMB_REGENERATE_GOLDEN"] == "1" {
            try Data(bytes).write(to: URL(fileURLWithPath: Self.goldenSourcePath), options: .atomic)
            print("rewrote \(Self.goldenSourcePath) (\(bytes.count) bytes)")
            return
        }
        let golden = try goldenBytes()
        XCTAssertEqual(golden.count, bytes.count, "size changed")
        if let first = zip(golden, bytes).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            XCTFail("bytes differ from golden/predicated.fmb first at offset \(first.offset): the format changed. "
                    + "If intended, see this file's header comment to regenerate.")
        }
    }

    func testGoldenFileStillReads() throws {
        let loaded = try BundleReader.load(bytes: try goldenBytes(), verifyChecksums: true)
        XCTAssertEqual(loaded.bundle, Fixtures.predicated().bundle)
    }

    func goldenBytes() throws -> [UInt8] {
        guard let url = Bundle.module.url(forResource: "predicated", withExtension: "fmb", subdirectory: "golden") else {
            XCTFail("golden/predicated.fmb is not in the test resources; generate it with FMB_REGENERATE_GOLDEN=1")
            throw CocoaError(.fileNoSuchFile)
        }
        return [UInt8](try Data(contentsOf: url))
    }

    // MARK: Structure

    func testFlagWithoutSectionAndSectionWithoutFlag() throws {
        var s = FileSurgery(try Fixtures.tinyFile())
        s.set32(8, FileLayout.predicatedStepsFlag)
        assertIssue(parseIssues(s.bytes), path: "header.flags", contains: "flag (0x1) is set, but there is no predicates")

        s = FileSurgery(try Fixtures.predicatedFile())
        s.set32(8, 0)
        assertIssue(parseIssues(s.bytes), path: "header.flags", contains: "the predicatedSteps flag (0x1) is not set")
    }

    func testPredicatesSectionInA1_0File() throws {
        var s = FileSurgery(try Fixtures.predicatedFile())
        s.set16(6, 0)
        assertIssue(parseIssues(s.bytes), path: "sections[7].kind", contains: "a predicates section in a 1.0 bundle")
    }

    func testSecondPredicatesSection() throws {
        var s = FileSurgery(try Fixtures.predicatedFile())
        let body = Array(s.bytes[s.range(of: .predicates)])
        s.appendSection(kind: SectionKind.predicates.rawValue, body: body)
        assertIssue(parseIssues(s.bytes), path: "sections[9].kind", contains: "a second predicates section")
    }

    /// Edits record `i` of the predicates section (12 bytes after the 4-byte count).
    func editRecord(_ i: Int, _ edit: (inout [UInt8], Int) -> Void) throws -> [UInt8] {
        var s = FileSurgery(try Fixtures.predicatedFile())
        s.editSection(.predicates) { edit(&$0, 4 + 12 * i) }
        return s.bytes
    }

    func testRecordDecoding() throws {
        assertIssue(parseIssues(try editRecord(1) { b, at in b[at] = 3 }), path: "predicates[1].step",
                    contains: "step 3 out of range (3 steps)")
        assertIssue(parseIssues(try editRecord(1) { b, at in b[at] = 1 }), path: "predicates[1].step",
                    contains: "step 1 after step 1: records must be in increasing step order")
        assertIssue(parseIssues(try editRecord(0) { b, at in b[at + 8] = 7 }), path: "predicates[0].sense",
                    contains: "unknown predicate sense 7")
        var s = FileSurgery(try Fixtures.predicatedFile())
        s.editSection(.predicates) { $0.removeLast(5) }
        assertIssue(parseIssues(s.bytes), path: "predicates", contains: "count 2 needs at least 24 bytes")
    }

    // MARK: Meaning

    func testPredicateTensorRules() throws {
        var (bundle, payload) = Fixtures.predicated()
        bundle.program[1].predicate?.tensor = 9
        assertIssue(BundleValidator.validate(bundle, dataSize: UInt64(payload.count)), path: "program[1].predicate.tensor",
                    contains: "tensor 9 out of range (4 tensors)")
        XCTAssertThrowsError(try BundleWriter.serialize(bundle, payload: payload), "the writer validates first")

        (bundle, payload) = Fixtures.predicated()
        bundle.program[2].predicate?.tensor = 1  // step 2 binds 'h': a branch may read its own condition
        XCTAssertEqual(BundleValidator.validate(bundle, dataSize: UInt64(payload.count)), [])

        (bundle, payload) = Fixtures.predicated()
        bundle.tensors[0].size = 2
        assertIssue(BundleValidator.validate(bundle, dataSize: UInt64(payload.count)), path: "program[1].predicate.tensor",
                    contains: "has 2 bytes; a condition is a 32-bit value")
    }
}
