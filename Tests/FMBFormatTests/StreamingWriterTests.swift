// The streamed data section: the incremental fm64, the file-backed payload builder and StreamingBundleWriter,
// which must write exactly the bytes BundleWriter.serialize gives for the same bundle, or nothing.

@testable import FMBFormat
import Foundation
import XCTest

final class StreamingWriterTests: XCTestCase {
    func testHasherMatchesOneShotForAnySplit() {
        var rng = SplitMixGenerator(seed: 7)
        for n in [0, 1, 31, 32, 33, 64, 100, 1000, 4099] {
            let data = Fixtures.noise(n, seed: UInt64(n) + 1)
            let expected = Checksum.fm64(data)
            for _ in 0..<8 {
                var hasher = Checksum.Hasher()
                var i = 0
                while i < n {
                    let piece = min(n - i, Int(rng.next() % 70))
                    data.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[i..<(i + piece)])) }
                    i += piece
                }
                XCTAssertEqual(hasher.count, n)
                XCTAssertEqual(hasher.finalize(), expected, "length \(n)")
            }
        }
    }

    /// The tiny fixture's chunks and constant appended to `builder` (zstd where it pays).
    func fill(_ builder: inout PayloadBuilder) -> FMBundle {
        var (bundle, _) = Fixtures.tiny()
        let codecs: [Codec] = [.zstd, .zstd, .none, .zstd]
        for c in bundle.chunks.indices {
            let raw = c == 0 ? Fixtures.noise(512, seed: 3) : (0..<256).map { UInt8(($0 / (c + 1)) % 7) }
            let stored = builder.appendChunk(raw, codec: codecs[c])
            let old = bundle.chunks[c]
            bundle.chunks[c] = Chunk(image: old.image, layer: old.layer, y: old.y, rows: old.rows, stored: stored)
        }
        bundle.tensors[2].constant = builder.appendConstant((0..<64).map { UInt8(255 - $0) })
        return bundle
    }

    func testStreamedBundleEqualsSerialized() throws {
        for inPlace in [true, false] {
            let dir = try temporaryDirectory()
            let path = dir + "/tiny.fmb"
            var memory = PayloadBuilder()
            let expected = try BundleWriter.serialize(fill(&memory), payload: memory.bytes)

            let writer = try StreamingBundleWriter(path: path)
            writer.shiftsInPlace = inPlace
            var streamed = writer.payloadBuilder()
            let bundle = fill(&streamed)
            XCTAssertTrue(streamed.bytes.isEmpty, "a file-backed builder keeps no bytes")
            XCTAssertEqual(streamed.count, memory.count)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).count, 1, "the temporary file")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path), "nothing at the target before finish")
            try writer.finish(bundle, payload: streamed)
            XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), expected, "in place: \(inPlace)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["tiny.fmb"], "no temp files left")
            _ = try BundleReader.open(path: path, verifyChecksums: true)
        }
    }

    /// fmc replan's path: another bundle's data section copied as it is (read with pread from the mapped file).
    func testWriteWithTheDataOfAnotherBundle() throws {
        let dir = try temporaryDirectory()
        var memory = PayloadBuilder()
        let bundle = fill(&memory)
        try BundleWriter.write(bundle, payload: memory.bytes, to: dir + "/a.fmb")
        let loaded = try BundleReader.open(path: dir + "/a.fmb")
        var replanned = bundle
        replanned.schedule.bandwidth *= 2
        try StreamingBundleWriter.write(replanned, dataOf: loaded, to: dir + "/b.fmb")
        let expected = try BundleWriter.serialize(replanned, payload: memory.bytes)
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/b.fmb"))), expected)
        let fromMemory = LoadedBundle(bundle: bundle, payload: memory.bytes)
        try StreamingBundleWriter.write(replanned, dataOf: fromMemory, to: dir + "/c.fmb")
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/c.fmb"))), expected)
    }

    func testInvalidBundleLeavesNothing() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/bad.fmb"
        let writer = try StreamingBundleWriter(path: path)
        var payload = writer.payloadBuilder()
        var bundle = fill(&payload)
        bundle.program[0].kernel = 9
        XCTAssertThrowsError(try writer.finish(bundle, payload: payload)) { error in
            assertIssue((error as? FormatError)?.issues ?? [], path: "program[0].kernel", contains: "out of range")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "temporary file removed")
    }

    func testAbandonedWriterRemovesItsFile() throws {
        let dir = try temporaryDirectory()
        do {
            let writer = try StreamingBundleWriter(path: dir + "/x.fmb")
            var payload = writer.payloadBuilder()
            _ = payload.appendChunk([1, 2, 3])
        }  // deinit without finish: a compile that threw
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
        XCTAssertThrowsError(try StreamingBundleWriter(path: dir + "/missing/x.fmb")) { error in
            XCTAssertEqual((error as? FileError)?.call, "open")
        }
    }

    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "fmb-stream-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}

/// splitmix64, for reproducible split points.
struct SplitMixGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
