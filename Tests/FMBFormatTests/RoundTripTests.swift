// Writer → reader round trips, the payload builder, codecs and the atomic file write.

@testable import FMBFormat
import Foundation
import XCTest

final class RoundTripTests: XCTestCase {
    /// A bundle whose payload is laid out by PayloadBuilder with real zstd compression.
    func builtBundle() -> (bundle: FMBundle, payload: [UInt8], raw: [[UInt8]], constant: [UInt8]) {
        var (bundle, _) = Fixtures.tiny()
        var builder = PayloadBuilder()
        let raws: [[UInt8]] = [
            Fixtures.noise(512, seed: 11),  // incompressible: zstd requested, stored raw
            (0..<256).map { UInt8($0 % 4) },  // compressible
            [UInt8](repeating: 1, count: 256),
            (0..<256).map { UInt8($0 / 64) },
        ]
        let codecs: [Codec] = [.zstd, .zstd, .none, .zstd]
        for c in bundle.chunks.indices {
            let stored = builder.appendChunk(raws[c], codec: codecs[c])
            let old = bundle.chunks[c]
            bundle.chunks[c] = Chunk(image: old.image, layer: old.layer, y: old.y, rows: old.rows, stored: stored)
        }
        let constant: [UInt8] = (0..<64).map { UInt8(255 - $0) }
        bundle.tensors[2].constant = builder.appendConstant(constant)
        return (bundle, builder.bytes, raws, constant)
    }

    func testRoundTripIsIdentityAndPayloadSurvives() throws {
        let (bundle, payload, raws, constant) = builtBundle()
        XCTAssertEqual(bundle.chunks.map(\.codec), [.none, .zstd, .none, .zstd], "zstd falls back to none on noise")
        let file = try BundleWriter.serialize(bundle, payload: payload)
        let loaded = try BundleReader.load(bytes: file, verifyChecksums: true)
        XCTAssertEqual(loaded.bundle, bundle)
        XCTAssertEqual(Array(loaded.data), payload)
        for (c, chunk) in loaded.bundle.chunks.enumerated() {
            var out = [UInt8](repeating: 0xEE, count: Int(chunk.rawSize))
            try out.withUnsafeMutableBytes {
                try Codec.decode(chunk: loaded.bytes(chunk.payload), codec: chunk.codec, rawSize: Int(chunk.rawSize),
                                 into: $0)
            }
            XCTAssertEqual(out, raws[c], "chunk \(c)")
            XCTAssertEqual(chunk.payload.offset % 4096, 0)
        }
        XCTAssertEqual(Array(loaded.bytes(loaded.bundle.tensors[2].constant!)), constant)
    }

    func testLayoutAlignment() throws {
        let file = try Fixtures.tinyFile()
        let parsed = try file.withUnsafeBytes { try BundleReader.parse(bytes: $0) }
        XCTAssertEqual(parsed.layout.sections.map(\.kind), SectionKind.v1)
        for s in parsed.layout.sections {
            XCTAssertEqual(Int(s.offset) % (s.kind == .data ? 4096 : 8), 0, "\(s.kind)")
        }
        XCTAssertEqual(parsed.dataRange.lowerBound % 4096, 0)
        XCTAssertEqual(parsed.layout.producerTag, "fmc-tests 1.0")
        XCTAssertEqual(parsed.layout.fileSize, UInt64(file.count))
        // SPIR-V words start 8-aligned in the file (usable in place).
        let kernels = parsed.layout.section(.kernels)!
        let firstWords = Int(kernels.offset) + 8 + 16  // count + pad to 8, then the 16-byte module head
        XCTAssertEqual(file[firstWords..<firstWords + 4], [0x03, 0x02, 0x23, 0x07])
    }

    func testOpenMapsFileWithoutCopy() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/tiny.fmb"
        let (bundle, payload) = Fixtures.tiny()
        try BundleWriter.write(bundle, payload: payload, to: path)
        let loaded = try BundleReader.open(path: path, verifyChecksums: true)
        XCTAssertEqual(loaded.bundle, bundle)
        XCTAssertEqual(Array(loaded.data), payload)
        let mapping = loaded.file!.bytes
        XCTAssertTrue(loaded.data.baseAddress! >= mapping.baseAddress!
                      && loaded.data.baseAddress! + loaded.data.count <= mapping.baseAddress! + mapping.count,
                      "data points into the mapping")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["tiny.fmb"], "no temp files left")
    }

    func testWriteIsAtomic() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/model.fmb"
        let (bundle, payload) = Fixtures.tiny()
        try BundleWriter.write(bundle, payload: payload, to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        var bad = bundle
        bad.program[0].kernel = 9
        XCTAssertThrowsError(try BundleWriter.write(bad, payload: payload, to: path)) { error in
            let issues = (error as? FormatError)?.issues ?? []
            assertIssue(issues, path: "program[0].kernel", contains: "out of range")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before, "the old bundle is untouched")
        XCTAssertThrowsError(try BundleWriter.write(bundle, payload: payload, to: dir + "/missing/x.fmb")) { error in
            XCTAssertTrue(error is FileError, "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.fmb"])
    }

    func testOpenMissingFileThrowsFileError() {
        XCTAssertThrowsError(try BundleReader.open(path: "/nonexistent/dir/x.fmb")) { error in
            XCTAssertEqual((error as? FileError)?.call, "open")
        }
    }

    func testSPIRVIsDeduplicatedByTheWriter() throws {
        var (bundle, payload) = Fixtures.tiny()
        bundle.spirv.append(bundle.spirv[0])  // module 2 == module 0
        bundle.kernels[0].spirv = 2
        let loaded = try BundleReader.load(bytes: try BundleWriter.serialize(bundle, payload: payload))
        XCTAssertEqual(loaded.bundle.spirv.count, 2)
        XCTAssertEqual(loaded.bundle.kernels.map(\.spirv), [0, 1])
        XCTAssertEqual(loaded.bundle.spirv[0], Fixtures.spirv(1))
    }

    // MARK: - PayloadBuilder

    func testPayloadBuilderAlignsAndChecksums() {
        var builder = PayloadBuilder()
        let c1 = builder.appendConstant([1, 2, 3])
        let a = builder.appendChunk([UInt8](repeating: 9, count: 5000), codec: .zstd)
        let c2 = builder.appendConstant([4])
        let b = builder.appendChunk(Fixtures.noise(100, seed: 5), codec: .zstd)
        XCTAssertEqual(c1, DataRange(offset: 0, size: 3))
        XCTAssertEqual(a.range.offset, 4096)
        XCTAssertEqual(a.codec, .zstd)
        XCTAssertLessThan(a.range.size, 100)
        XCTAssertEqual(a.rawSize, 5000)
        XCTAssertEqual(a.checksum, Checksum.fm64([UInt8](repeating: 9, count: 5000)))
        XCTAssertEqual(c2.offset % 256, 0)
        XCTAssertGreaterThan(c2.offset, a.range.offset + a.range.size - 1)
        XCTAssertEqual(b.range.offset % 4096, 0)
        XCTAssertEqual(b.codec, .none, "noise does not shrink")
        XCTAssertEqual(b.range.size, 100)
        XCTAssertEqual(Array(builder.bytes[Int(b.range.offset)...]), Fixtures.noise(100, seed: 5))
        XCTAssertTrue(builder.bytes[3..<4096].allSatisfy { $0 == 0 }, "padding is zero")
    }

    func testPayloadBuilderMinimumSavings() {
        // 4096 bytes that zstd shrinks only a little: half noise, half zeros.
        let raw = Fixtures.noise(3000, seed: 8) + [UInt8](repeating: 0, count: 1096)
        var lenient = PayloadBuilder()
        XCTAssertEqual(lenient.appendChunk(raw, codec: .zstd).codec, .zstd)
        var strict = PayloadBuilder(minimumSavings: 0.5)
        XCTAssertEqual(strict.appendChunk(raw, codec: .zstd).codec, .none)
    }

    // MARK: - Codecs

    func testCodecErrors() throws {
        let raw = [UInt8](repeating: 7, count: 1000)
        let frame = Codec.zstd.encode(raw.withUnsafeBytes { $0 })!
        var out = [UInt8](repeating: 0, count: 1000)
        func decode(_ payload: [UInt8], _ codec: Codec, _ rawSize: Int) -> CodecError? {
            do {
                try payload.withUnsafeBytes { p in
                    try out.withUnsafeMutableBytes { try Codec.decode(chunk: p, codec: codec, rawSize: rawSize, into: $0) }
                }
                return nil
            } catch {
                return error as? CodecError
            }
        }
        XCTAssertNil(decode(frame, .zstd, 1000))
        XCTAssertEqual(out, raw)
        XCTAssertEqual(decode(frame, .zstd, 999)?.codec, .zstd, "frame holds more than rawSize")
        XCTAssertEqual(decode(frame, .zstd, 2000)?.reason, .destinationTooSmall(needed: 2000, available: 1000))
        XCTAssertEqual(decode([1, 2, 3], .none, 4)?.reason, .payloadSize(expected: 4, actual: 3))
        var corrupt = frame
        corrupt[0] ^= 0xFF
        guard case .zstd? = decode(corrupt, .zstd, 1000)?.reason else { return XCTFail("corrupt frame accepted") }
        // A reusable context decodes the same.
        let zstd = ZstdDecompressor()
        out = [UInt8](repeating: 0, count: 1000)
        try frame.withUnsafeBytes { p in
            try out.withUnsafeMutableBytes { try zstd.decode(chunk: p, codec: .zstd, rawSize: 1000, into: $0) }
        }
        XCTAssertEqual(out, raw)
    }

    func testHandMadeRLEFrameIsValidZstd() throws {
        let frame = Fixtures.zstdRLEFrame(byte: 0x3C, count: 300)
        var out = [UInt8](repeating: 0, count: 300)
        try frame.withUnsafeBytes { p in
            try out.withUnsafeMutableBytes { try Codec.decode(chunk: p, codec: .zstd, rawSize: 300, into: $0) }
        }
        XCTAssertEqual(out, [UInt8](repeating: 0x3C, count: 300))
    }

    // MARK: - Device limits and inspector

    func testUnmetRequirements() {
        let (bundle, _) = Fixtures.tiny()
        let roomy = DeviceLimits(pushConstantBytes: 128, storageBufferRange: 128 << 20, imageDimension2D: 16384,
                                 imageArrayLayers: 2048, workgroupInvocations: 1024, sharedMemoryBytes: 32768)
        XCTAssertEqual(bundle.meta.requirements.unmet(by: roomy), [])
        var small = roomy
        small.pushConstantBytes = 8
        small.sharedMemoryBytes = 1024
        XCTAssertEqual(bundle.meta.requirements.unmet(by: small), [
            "push constants: the bundle needs 16 bytes, the device allows 8 bytes",
            "compute shared memory: the bundle needs 4096 bytes, the device allows 1024 bytes",
        ])
    }

    func testRequirementsCoveringTables() {
        var (bundle, _) = Fixtures.tiny()
        bundle.meta.requirements = DeviceRequirements(sharedMemoryBytes: 100)
        XCTAssertEqual(bundle.requirementsCoveringTables(),
                       DeviceRequirements(pushConstantBytes: 16, storageBufferRange: 64, imageDimension2D: 8,
                                          imageArrayLayers: 2, workgroupInvocations: 64, sharedMemoryBytes: 100))
    }

    func testInspectorDescribesEverything() throws {
        let dir = try temporaryDirectory()
        let (bundle, payload) = Fixtures.tiny()
        try BundleWriter.write(bundle, payload: payload, to: dir + "/tiny.fmb")
        let text = BundleInspector.describe(try BundleReader.open(path: dir + "/tiny.fmb"))
        for fragment in ["format    1.0", "producer  fmc-tests 1.0", "model     tiny-mlp", "Inputs (1)", "[1, 16]",
                         "Sections (8)", "Kernels (2; 2 SPIR-V modules", "matmul_rgba32f", "BIB", "8×8×1",
                         "Program: 3 steps", "Images (2", "fc2.weight", "rgba16f", "8×4×1", "Chunks (4)",
                         "none 3, zstd 1", "50.0 GB/s", "gap 4.5%", "peak weights", "no placement"] {
            XCTAssertTrue(text.contains(fragment), "missing '\(fragment)' in:\n\(text)")
        }
        // Dispatch counts: matmul twice, add once.
        XCTAssertNotNil(text.range(of: #"matmul_rgba32f .* 2\n"#, options: .regularExpression), text)
        // 2 images live at once at most: w0 (steps 0…0) and w1 (issued at step 1, used at 2) do not overlap.
        XCTAssertEqual(BundleInspector.peakWeightBytes(bundle), bundle.images[0].byteSize)
    }

    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "fmb-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}
