// The golden file golden/tiny.fmb pins the v1 byte format: Fixtures.tiny() serialized today must equal it
// byte for byte, and the reader must still read it. An accidental format change fails here.
//
// To regenerate after an intended change (and a FORMAT.md update; a change of existing bytes needs a new
// major or minor version, see FORMAT.md "Versioning"):
//
//     FMB_REGENERATE_GOLDEN=1 swift test --filter GoldenFileTests
//
// which rewrites Tests/FMBFormatTests/golden/tiny.fmb in the source tree; commit the new file.

import FMBFormat
import Foundation
import XCTest

final class GoldenFileTests: XCTestCase {
    /// The golden file in the source tree (what regeneration writes).
    static let sourcePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("golden/tiny.fmb").path

    func testSerializationMatchesGoldenFile() throws {
        let bytes = try Fixtures.tinyFile()
        XCTAssertLessThan(bytes.count, 64 * 1024)
        if ProcessInfo.processInfo.environment["FMB_REGENERATE_GOLDEN"] == "1" {
            try Data(bytes).write(to: URL(fileURLWithPath: Self.sourcePath), options: .atomic)
            print("rewrote \(Self.sourcePath) (\(bytes.count) bytes)")
            return
        }
        let golden = try goldenBytes()
        XCTAssertEqual(golden.count, bytes.count, "size changed")
        if let first = zip(golden, bytes).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            XCTFail("bytes differ from golden/tiny.fmb first at offset \(first.offset): the format changed. "
                    + "If intended, see this file's header comment to regenerate.")
        }
    }

    func testGoldenFileStillReads() throws {
        let loaded = try BundleReader.load(bytes: try goldenBytes(), verifyChecksums: true)
        XCTAssertEqual(loaded.bundle, Fixtures.tiny().bundle)
        XCTAssertEqual(Array(loaded.data), Fixtures.tiny().payload)
        // The zstd chunk decodes to its raw bytes.
        let chunk = loaded.bundle.chunks[1]
        XCTAssertEqual(chunk.codec, .zstd)
        var out = [UInt8](repeating: 0, count: Int(chunk.rawSize))
        try out.withUnsafeMutableBytes {
            try Codec.decode(chunk: loaded.bytes(chunk.payload), codec: .zstd, rawSize: Int(chunk.rawSize), into: $0)
        }
        XCTAssertEqual(out, Fixtures.tinyChunkBytes[1])
    }

    func goldenBytes() throws -> [UInt8] {
        guard let url = Bundle.module.url(forResource: "tiny", withExtension: "fmb", subdirectory: "golden") else {
            XCTFail("golden/tiny.fmb is not in the test resources; generate it with FMB_REGENERATE_GOLDEN=1")
            throw CocoaError(.fileNoSuchFile)
        }
        return [UInt8](try Data(contentsOf: url))
    }
}
