// The structure pass over bytes: header, versioning, section table, field decoding, checksums. Files are
// edited with FileSurgery, which keeps checksums right so each test reaches the check it aims at.

import FMBFormat
import XCTest

final class StructureValidationTests: XCTestCase {
    var file: [UInt8] = []

    override func setUpWithError() throws {
        file = try Fixtures.tinyFile()
    }

    func testTheFixtureParses() throws {
        let parsed = try file.withUnsafeBytes { try BundleReader.parse(bytes: $0, verifyChecksums: true) }
        XCTAssertEqual(parsed.bundle, Fixtures.tiny().bundle)
    }

    // MARK: Header and versioning

    func testBadMagic() {
        var bytes = file
        bytes[0] = UInt8(ascii: "X")
        assertIssue(parseIssues(bytes), path: "header.magic", contains: "found 58 4D 42 00")
        assertIssue(parseIssues([]), path: "header.magic", contains: "an empty file")
    }

    func testTruncatedFiles() {
        assertIssue(parseIssues(Array(file[0..<40])), path: "header", contains: "truncated: the file has 40 bytes")
        assertIssue(parseIssues(Array(file.dropLast())), path: "header.fileSize",
                    contains: "truncated: the header says \(file.count) bytes, the file has \(file.count - 1)")
        // Every cut is rejected with a FormatError (and nothing traps).
        for n in stride(from: 0, to: file.count, by: 13) {
            XCTAssertFalse(parseIssues(Array(file[0..<n])).isEmpty, "cut at \(n)")
        }
    }

    func testTrailingBytes() {
        assertIssue(parseIssues(file + [1, 2, 3]), path: "header.fileSize", contains: "3 trailing bytes")
    }

    func testWrongMajorVersion() {
        var s = FileSurgery(file)
        s.set16(4, 2)
        assertIssue(parseIssues(s.bytes), path: "header.major", contains: "format version 2.0 is not supported")
        assertIssue(parseIssues(s.bytes), path: "header.major", contains: "needs a FlashMem runtime that reads format 2.x")
        assertIssue(parseIssues(s.bytes), path: "header.major", contains: "reads 1.0 to 1.\(FileLayout.currentMinor)")
        s.set16(4, 0)
        assertIssue(parseIssues(s.bytes), path: "header.major", contains: "format version 0.0")
    }

    func testNewerMinorWithUnknownSectionIsAccepted() throws {
        var s = FileSurgery(file)
        s.appendSection(kind: 42, body: Array("a section from the future".utf8))
        s.set16(6, FileLayout.currentMinor + 1)  // a minor newer than this reader's
        let parsed = try s.bytes.withUnsafeBytes { try BundleReader.parse(bytes: $0, verifyChecksums: true) }
        XCTAssertEqual(parsed.bundle, Fixtures.tiny().bundle)
        XCTAssertEqual(parsed.layout.minor, FileLayout.currentMinor + 1)
        XCTAssertEqual(parsed.layout.sections.last?.kind.rawValue, 42)
        XCTAssertEqual(parsed.layout.sections.last?.kind.description, "unknown(42)")
    }

    func testUnknownSectionInCurrentMinorIsRejected() {
        var s = FileSurgery(file)
        s.appendSection(kind: 42, body: [1, 2, 3])
        assertIssue(parseIssues(s.bytes), path: "sections[8].kind", contains: "unknown section kind 42 in a 1.0 bundle")
    }

    func testFlags() throws {
        var s = FileSurgery(file)
        s.set32(8, 0x0001_0000)  // ignorable bit: accepted
        XCTAssertNoThrow(try s.bytes.withUnsafeBytes { try BundleReader.parse(bytes: $0) })
        s.set32(8, 0x0000_0008)  // a must-understand bit this reader does not know: rejected
        assertIssue(parseIssues(s.bytes), path: "header.flags", contains: "unknown must-understand flags 0x")
    }

    func testBadHeaderSizes() {
        var s = FileSurgery(file)
        s.set32(12, 32)
        assertIssue(parseIssues(s.bytes), path: "header.headerSize", contains: "not between 64")
        s = FileSurgery(file)
        s.set32(36, 16)
        assertIssue(parseIssues(s.bytes), path: "header.sectionEntrySize", contains: "expected at least 32")
        s = FileSurgery(file)
        s.set32(32, 1000)
        assertIssue(parseIssues(s.bytes), path: "header.sectionTableOffset", contains: "extends past the end")
        s = FileSurgery(file)
        s.set64(24, 60)
        assertIssue(parseIssues(s.bytes), path: "header.sectionTableOffset", contains: "overlaps the 64-byte header")
    }

    // MARK: Section table

    func testSectionTableChecksum() {
        var bytes = file
        bytes[64 + 9] ^= 1  // an entry's offset
        assertIssue(parseIssues(bytes), path: "header.sectionTableChecksum", contains: "does not match", pass: .checksum)
    }

    func testMetadataSectionChecksum() {
        var s = FileSurgery(file)
        let r = s.range(of: .kernels)
        s.bytes[r.lowerBound + 40] ^= 0x10
        assertIssue(parseIssues(s.bytes), path: "sections[1].checksum", contains: "kernels section checksum mismatch",
                    pass: .checksum)
    }

    func testMisalignedSection() {
        var s = FileSurgery(file)
        let e = s.entry(s.index(of: .program))
        s.set64(e + 8, s.u64(e + 8) + 4)
        s.resealTable()
        assertIssue(parseIssues(s.bytes), path: "sections[2].offset", contains: "is not a multiple of 8")
    }

    func testMisalignedDataSection() {
        var s = FileSurgery(file)
        let e = s.entry(s.index(of: .data))
        s.set64(e + 8, s.u64(e + 8) - 8)
        s.resealTable()
        assertIssue(parseIssues(s.bytes), path: "sections[7].offset", contains: "is not a multiple of 4096")
    }

    func testOverlappingSections() {
        var s = FileSurgery(file)
        let meta = s.entry(s.index(of: .meta)), kernels = s.entry(s.index(of: .kernels))
        s.set64(kernels + 8, s.u64(meta + 8) + 8)
        s.resealTable()
        assertIssue(parseIssues(s.bytes), path: "sections[1]", contains: "overlaps sections[0] (meta")
    }

    func testSectionOverlappingTheTable() {
        var s = FileSurgery(file)
        s.set64(s.entry(0) + 8, 64)
        s.resealTable()
        assertIssue(parseIssues(s.bytes), path: "sections[0].offset", contains: "overlaps the section table")
    }

    func testSectionPastTheEnd() {
        var s = FileSurgery(file)
        let e = s.entry(s.index(of: .chunks))
        s.set64(e + 16, UInt64.max - 8)
        s.resealTable()
        assertIssue(parseIssues(s.bytes), path: "sections[5].size", contains: "extends past the end of the file")
    }

    func testDuplicateAndMissingSections() {
        var s = FileSurgery(file)
        s.set32(s.entry(s.index(of: .schedule)), SectionKind.chunks.rawValue)
        s.resealTable()
        let issues = parseIssues(s.bytes)
        assertIssue(issues, path: "sections[6].kind", contains: "a second chunks section (first: sections[5])")
        assertIssue(issues, path: "sections", contains: "no schedule section")
    }

    // MARK: Field decoding

    func testUnknownCodec() {
        var s = FileSurgery(file)
        s.editSection(.chunks) { $0[8 + 56 * 2 + 40] = 9 }
        assertIssue(parseIssues(s.bytes), path: "chunks[2].codec", contains: "unknown codec 9")
    }

    func testUnknownBindingKind() {
        var s = FileSurgery(file)
        // program[0]: kernel (4) + groups (12) + binding count (4), then binding 0's kind.
        s.editSection(.program) { $0[4 + 4 + 12 + 4] = 3 }
        assertIssue(parseIssues(s.bytes), path: "program[0].bindings[0].kind", contains: "unknown binding kind 3")
    }

    func testTruncatedSectionNamesTheField() {
        var s = FileSurgery(file)
        s.editSection(.kernels) { $0.removeLast(3) }  // kernels[1] ends with its u32 spec constant count
        let issues = parseIssues(s.bytes)
        assertIssue(issues, path: "kernels[1].specConstants", contains: "truncated: needs 4 bytes, 1 left in section kernels")
        XCTAssertNotNil(issues.first?.fileOffset)
    }

    func testTrailingBytesInASection() {
        var s = FileSurgery(file)
        s.editSection(.images) { $0[0] = 1 }  // one image declared; the second's bytes are left over
        assertIssue(parseIssues(s.bytes), path: "images", contains: "unexpected bytes after the last field")
    }

    func testHugeCountFailsBeforeAllocating() {
        var s = FileSurgery(file)
        s.editSection(.tensors) { for i in 0..<4 { $0[i] = 0xFF } }
        assertIssue(parseIssues(s.bytes), path: "tensors", contains: "count 4294967295 needs at least")
    }

    func testInvalidUTF8() {
        var s = FileSurgery(file)
        s.editSection(.meta) { $0[4] = 0xFF }  // first byte of meta.modelName
        assertIssue(parseIssues(s.bytes), path: "meta.modelName", contains: "not valid UTF-8")
    }

    func testSPIRVHashMismatch() {
        var s = FileSurgery(file)
        s.editSection(.kernels) { $0[8 + 16 + 20] ^= 1 }  // spirv[0] word 5
        assertIssue(parseIssues(s.bytes), path: "spirv[0].hash", contains: "does not match", pass: .checksum)
    }

    // MARK: Payload checksums

    func testCorruptedChunkPayloadIsFoundWithVerifyChecksums() throws {
        var s = FileSurgery(file)
        let data = s.range(of: .data)
        s.bytes[data.lowerBound + 100] ^= 0x01  // chunk 0 (raw)
        XCTAssertNoThrow(try s.bytes.withUnsafeBytes { try BundleReader.parse(bytes: $0) }, "not checked by default")
        let issues = parseIssues(s.bytes, verifyChecksums: true)
        assertIssue(issues, path: "chunks[0].checksum", contains: "corrupted payload", pass: .checksum)
        assertIssue(issues, path: "sections[7].checksum", contains: "data section checksum mismatch", pass: .checksum)
        XCTAssertFalse(issues.contains { $0.path == "chunks[1].checksum" })
    }

    func testCorruptedZstdPayloadIsFound() {
        var s = FileSurgery(file)
        let data = s.range(of: .data)
        s.bytes[data.lowerBound + 4096 + 10] ^= 0x01  // chunk 1: the RLE byte of the frame
        assertIssue(parseIssues(s.bytes, verifyChecksums: true), path: "chunks[1].checksum", contains: "expected 0x")
        s.bytes[data.lowerBound + 4096] ^= 0xFF  // and its frame magic
        assertIssue(parseIssues(s.bytes, verifyChecksums: true), path: "chunks[1].payload", contains: "cannot be decoded")
    }

    /// Every single-byte change of the metadata, with checksums re-sealed so the decoders see it, either
    /// parses or throws FormatError: never traps.
    func testByteFlipsNeverTrap() {
        let kinds: [SectionKind] = [.meta, .kernels, .program, .tensors, .images, .chunks, .schedule]
        for kind in kinds {
            let range = FileSurgery(file).range(of: kind)
            for offset in 0..<range.count {
                for mask: UInt8 in [0x01, 0x80, 0xFF] {
                    var s = FileSurgery(file)
                    s.editSection(kind) { $0[offset] ^= mask }
                    do {
                        _ = try s.bytes.withUnsafeBytes { try BundleReader.parse(bytes: $0, verifyChecksums: true) }
                    } catch is FormatError {
                    } catch {
                        XCTFail("\(kind)+\(offset): \(error)")
                    }
                }
            }
        }
        // Header and table bytes without resealing.
        for offset in 0..<(64 + 32 * 8) {
            var bytes = file
            bytes[offset] ^= 0x5A
            do { _ = try bytes.withUnsafeBytes { try BundleReader.parse(bytes: $0) } } catch is FormatError {} catch {
                XCTFail("header+\(offset): \(error)")
            }
        }
    }
}
