// Bundles for the FMBFormat tests. `Fixtures.tiny()` is the in-code source of golden/tiny.fmb: changing it
// (or the format) changes the golden file; see GoldenFileTests for how to regenerate it.

import FMBFormat
import XCTest

enum Fixtures {
    /// A fake but well-formed SPIR-V module: the 5-word header (magic, version 1.3, generator, bound, schema)
    /// and some body words.
    static func spirv(_ seed: UInt32, words: Int = 12) -> [UInt32] {
        [0x0723_0203, 0x0001_0300, 0, 16 + seed, 0] + (0..<UInt32(words - 5)).map { $0 &* 2_654_435_761 ^ seed }
    }

    /// Deterministic bytes that do not compress (a 64-bit LCG's high bytes).
    static func noise(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    /// A zstd frame made by hand: one RLE block repeating `byte` `count` times (256 ≤ count < 65792).
    /// Independent of the libzstd version, so the golden file does not change when libzstd's encoder does.
    static func zstdRLEFrame(byte: UInt8, count: Int) -> [UInt8] {
        precondition(count >= 256 && count < 65_792)
        let fcs = UInt16(count - 256)  // Frame_Content_Size, 2-byte form (value - 256)
        let block = UInt32(1) | (1 << 1) | (UInt32(count) << 3)  // last block, type RLE, size
        return [0x28, 0xB5, 0x2F, 0xFD,  // magic
                0x60,  // descriptor: FCS 2 bytes, single segment, no checksum, no dictionary
                UInt8(fcs & 0xFF), UInt8(fcs >> 8),
                UInt8(block & 0xFF), UInt8((block >> 8) & 0xFF), UInt8(block >> 16),
                byte]
    }

    /// Appends zero bytes up to a multiple of `alignment`.
    static func pad(_ bytes: inout [UInt8], to alignment: Int) {
        bytes += [UInt8](repeating: 0, count: (alignment - bytes.count % alignment) % alignment)
    }

    /// Raw bytes of each chunk of `tiny()`, in chunk order.
    static let tinyChunkBytes: [[UInt8]] = [
        noise(8 * 4 * 16, seed: 1),  // w0 layer 0, rows 0..<8 (8 rows × 4 texels × 16 B)
        [UInt8](repeating: 0x3C, count: 4 * 4 * 16),  // w0 layer 1, rows 0..<4 (zstd RLE)
        noise(4 * 4 * 16, seed: 2),  // w0 layer 1, rows 4..<8
        noise(4 * 8 * 8, seed: 3),  // w1 layer 0, rows 0..<4 (8 texels × 8 B)
    ]

    static let tinyConstant: [UInt8] = (0..<64).map { UInt8($0) }

    /// A small valid bundle: 2 kernels, 3 steps, 4 tensors (one resident constant), 2 images (rgba32f and
    /// rgba16f), 4 chunks (3 raw, 1 zstd), a schedule. The payload is laid out by hand (not by
    /// PayloadBuilder) so the golden file depends only on the format.
    static func tiny() -> (bundle: FMBundle, payload: [UInt8]) {
        var payload: [UInt8] = []
        var ranges: [DataRange] = []
        let stored: [[UInt8]] = [tinyChunkBytes[0], zstdRLEFrame(byte: 0x3C, count: 256), tinyChunkBytes[2],
                                 tinyChunkBytes[3]]
        for bytes in stored {
            pad(&payload, to: 4096)
            ranges.append(DataRange(offset: UInt64(payload.count), size: UInt64(bytes.count)))
            payload += bytes
        }
        pad(&payload, to: 256)
        let constant = DataRange(offset: UInt64(payload.count), size: UInt64(tinyConstant.count))
        payload += tinyConstant

        let regions: [(image: UInt32, layer: UInt32, y: UInt32, rows: UInt32, codec: Codec)] = [
            (0, 0, 0, 8, .none), (0, 1, 0, 4, .zstd), (0, 1, 4, 4, .none), (1, 0, 0, 4, .none),
        ]
        let chunks = regions.enumerated().map { c, r in
            Chunk(image: r.image, layer: r.layer, y: r.y, rows: r.rows, payload: ranges[c],
                  rawSize: UInt64(tinyChunkBytes[c].count), codec: r.codec, checksum: Checksum.fm64(tinyChunkBytes[c]))
        }
        let kernels = [
            Kernel(name: "matmul_rgba32f", spirv: 0, bindings: [.storageBuffer, .storageImage, .storageBuffer],
                   pushConstantSize: 16, workgroupSize: [8, 8, 1], specConstants: [4, 1]),
            Kernel(name: "add", spirv: 1, bindings: [.storageBuffer, .storageBuffer, .storageBuffer],
                   pushConstantSize: 4, workgroupSize: [64, 1, 1], specConstants: []),
        ]
        let program = [
            Step(kernel: 0, groups: [1, 2, 1], bindings: [.tensor(0), .image(0), .tensor(1)],
                 pushConstants: Array(0..<16), label: "/fc1/MatMul"),
            Step(kernel: 1, groups: [1, 1, 1], bindings: [.tensor(1), .tensor(2), .tensor(1)],
                 pushConstants: [16, 0, 0, 0], label: "/fc1/Add"),
            Step(kernel: 0, groups: [1, 1, 1], bindings: [.tensor(1), .image(1), .tensor(3)],
                 pushConstants: [UInt8](repeating: 7, count: 16), label: "/fc2/MatMul"),
        ]
        let tensors = [
            Tensor(name: "x", offset: 0, size: 64),
            Tensor(name: "h", offset: 256, size: 64),
            Tensor(name: "fc1.bias", offset: 512, size: 64, constant: constant),
            Tensor(name: "y", offset: 768, size: 32),
        ]
        let images = [
            Image(name: "fc1.weight", format: .rgba32f, width: 4, height: 8, layers: 2),
            Image(name: "fc2.weight", format: .rgba16f, width: 8, height: 4, layers: 1),
        ]
        let schedule = Schedule(order: [0, 1, 2, 3], issueStep: [0, 0, 0, 1], firstUse: [0, 2], lastUse: [0, 2],
                                budgetBytes: 1 << 20, bandwidth: 50e9, stepSeconds: [1e-3, 2e-4, 1e-3],
                                predictedSeconds: 2.3e-3, lowerBoundSeconds: 2.2e-3)
        let meta = Meta(modelName: "tiny-mlp", producer: "fmc-tests 1.0",
                        inputs: [IOBinding(name: "x", elementType: .float32, shape: [1, 16], tensor: 0)],
                        outputs: [IOBinding(name: "y", elementType: .float16, shape: [1, 8], tensor: 3)],
                        requirements: DeviceRequirements(pushConstantBytes: 16, storageBufferRange: 64,
                                                         imageDimension2D: 8, imageArrayLayers: 2,
                                                         workgroupInvocations: 64, sharedMemoryBytes: 4096),
                        arenaSize: 1024)
        let bundle = FMBundle(meta: meta, spirv: [spirv(1), spirv(2, words: 9)], kernels: kernels, program: program,
                              tensors: tensors, images: images, chunks: chunks, schedule: schedule)
        return (bundle, payload)
    }

    /// `tiny()` serialized.
    static func tinyFile() throws -> [UInt8] {
        let (bundle, payload) = tiny()
        return try BundleWriter.serialize(bundle, payload: payload)
    }
}

// MARK: - Byte surgery on serialized bundles

/// Edits of a serialized bundle that keep the checksums right, so tests reach the check they aim at.
struct FileSurgery {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
    func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) } }
    mutating func set16(_ at: Int, _ v: UInt16) { for i in 0..<2 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    mutating func set32(_ at: Int, _ v: UInt32) { for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    mutating func set64(_ at: Int, _ v: UInt64) { for i in 0..<8 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }

    var tableOffset: Int { Int(u64(24)) }
    var sectionCount: Int { Int(u32(32)) }

    /// The offset of section table entry `i`.
    func entry(_ i: Int) -> Int { tableOffset + 32 * i }

    /// The table index of the section of `kind`.
    func index(of kind: SectionKind) -> Int {
        (0..<sectionCount).first { u32(entry($0)) == kind.rawValue }!
    }

    func range(of kind: SectionKind) -> Range<Int> {
        let e = entry(index(of: kind))
        return Int(u64(e + 8))..<Int(u64(e + 8) + u64(e + 16))
    }

    /// Recomputes the section table checksum after editing the table.
    mutating func resealTable() {
        let table = Array(bytes[tableOffset..<tableOffset + 32 * sectionCount])
        set64(40, Checksum.fm64(table))
    }

    /// Replaces a section's bytes in place (same offset; the size may shrink) and fixes its checksum.
    mutating func editSection(_ kind: SectionKind, _ edit: (inout [UInt8]) -> Void) {
        let r = range(of: kind)
        var body = Array(bytes[r])
        edit(&body)
        precondition(body.count <= r.count, "a section may only shrink in place")
        bytes.replaceSubrange(r.lowerBound..<r.lowerBound + body.count, with: body)
        let e = entry(index(of: kind))
        set64(e + 16, UInt64(body.count))
        set64(e + 24, Checksum.fm64(body))
        resealTable()
    }

    /// Appends a section of `kind` after the end of the file and moves the section table to the end so it
    /// has room for the new entry (header fields updated, checksums right).
    mutating func appendSection(kind: UInt32, body: [UInt8]) {
        let oldTable = Array(bytes[tableOffset..<tableOffset + 32 * sectionCount])
        let count = sectionCount
        Fixtures.pad(&bytes, to: 8)
        let offset = bytes.count
        bytes += body
        Fixtures.pad(&bytes, to: 8)
        let newTable = bytes.count
        bytes += oldTable
        var entry = [UInt8](repeating: 0, count: 32)
        for i in 0..<4 { entry[i] = UInt8(truncatingIfNeeded: kind >> (8 * i)) }
        for i in 0..<8 { entry[8 + i] = UInt8(truncatingIfNeeded: UInt64(offset) >> (8 * i)) }
        for i in 0..<8 { entry[16 + i] = UInt8(truncatingIfNeeded: UInt64(body.count) >> (8 * i)) }
        let sum = Checksum.fm64(body)
        for i in 0..<8 { entry[24 + i] = UInt8(truncatingIfNeeded: sum >> (8 * i)) }
        bytes += entry
        set64(16, UInt64(bytes.count))
        set64(24, UInt64(newTable))
        set32(32, UInt32(count + 1))
        resealTable()
    }
}

/// Parses bytes, expecting failure; returns the issues.
func parseIssues(_ bytes: [UInt8], verifyChecksums: Bool = false,
                 file: StaticString = #filePath, line: UInt = #line) -> [FormatIssue] {
    do {
        _ = try bytes.withUnsafeBytes { try BundleReader.parse(bytes: $0, verifyChecksums: verifyChecksums) }
        XCTFail("expected the bundle to be rejected", file: file, line: line)
        return []
    } catch let error as FormatError {
        return error.issues
    } catch {
        XCTFail("expected FormatError, got \(error)", file: file, line: line)
        return []
    }
}

/// Asserts that some issue has exactly `path` and a message containing `fragment`.
func assertIssue(_ issues: [FormatIssue], path: String, contains fragment: String, pass: FormatIssue.Pass? = nil,
                 file: StaticString = #filePath, line: UInt = #line) {
    let match = issues.contains { $0.path == path && $0.message.contains(fragment) && (pass == nil || $0.pass == pass) }
    XCTAssertTrue(match, "no issue at \(path) containing '\(fragment)'; got:\n"
                  + issues.map { "  \($0.pass): \($0)" }.joined(separator: "\n"), file: file, line: line)
}
