import Foundation
import XCTest
@testable import FlashMemRuntime
import TestSupport

/// Untrusted bundles (issue 12): with default options a corrupted bundle is an error naming what is wrong, or it
/// runs with outputs identical to the intact bundle's; never plausible but different outputs, never a crash.
final class BundleIntegrityTests: XCTestCase {
    let inputs: [HostTensor] = {
        var rng = SplitMix(seed: 12)
        return [HostTensor(name: "x", shape: [2, 64], floats: (0..<TinyModel.n).map { _ in rng.float(in: -4...4) })]
    }()

    /// The tiny model's bundle file as bytes, and its layout.
    func tiny() throws -> ([UInt8], FileLayout) {
        let model = try TinyModel()
        let file = try BundleWriter.serialize(model.bundle, payload: model.payload)
        let layout = try XCTUnwrap(file.withUnsafeBytes { BundleValidator.checkFile($0).layout })
        return (file, layout)
    }

    /// Outputs of a default session on `bytes`, loaded as a file would be (default reader options).
    func run(_ bytes: [UInt8], options: SessionOptions = SessionOptions()) throws -> [UInt8] {
        let loaded = try BundleReader.load(bytes: bytes, path: "tiny.fmb")
        let session = try Session(bundle: loaded, device: device(), options: options)
        return try session.run(inputs: inputs)[0].bytes
    }

    // MARK: - Chunk checksums while streaming

    func testAFlippedChunkByteFailsTheRunNamingTheChunkAndImage() throws {
        let (intact, layout) = try tiny()
        let bundle = try BundleReader.load(bytes: intact).bundle
        for mode in LoadMode.allCases {
            for (c, chunk) in bundle.chunks.enumerated() {
                var file = intact
                file[layout.dataRange.lowerBound + Int(chunk.payload.offset) + Int(chunk.payload.size) / 2] ^= 0x10
                let session = try Session(bundle: BundleReader.load(bytes: file, path: "tiny.fmb"), device: device(),
                                          options: SessionOptions(loadMode: mode))
                XCTAssertThrowsError(try session.run(inputs: inputs), "\(mode) chunks[\(c)]") { error in
                    guard case let .chunkChecksum(path, chunk: index, image, _, _, _, _)? = error as? RuntimeError else {
                        return XCTFail("\(mode) chunks[\(c)]: \(error)")
                    }
                    XCTAssertEqual(index, c)
                    XCTAssertEqual(image, bundle.images[Int(chunk.image)].name)
                    XCTAssertEqual(path, "tiny.fmb")
                    XCTAssertTrue("\(error)".contains("chunks[\(c)]") && "\(error)".contains("checksum"), "\(error)")
                }
                // The session survives the failure: the next run fails the same way (it does not hang or trap).
                XCTAssertThrowsError(try session.run(inputs: inputs))
            }
        }
    }

    /// Each chunk is checked once per session; a trusted session checks none and runs a corrupted chunk as is.
    func testChunksAreVerifiedOnceAndTrustedBundlesNotAtAll() throws {
        let (intact, layout) = try tiny()
        let expected = try run(intact)
        let session = try Session(bundle: BundleReader.load(bytes: intact), device: device())
        let verifier = try XCTUnwrap(session.verifier)
        XCTAssertEqual(verifier.verifiedCount, 0)
        for _ in 0..<2 {
            XCTAssertEqual(try session.run(inputs: inputs)[0].bytes, expected)
            XCTAssertEqual(verifier.verifiedCount, session.bundle.bundle.chunks.count)
        }

        var trusted = SessionOptions()
        trusted.verifyChunks = false
        var file = intact
        let chunk = try BundleReader.load(bytes: intact).bundle.chunks.first { $0.codec == .none }!
        file[layout.dataRange.lowerBound + Int(chunk.payload.offset)] ^= 0x40
        XCTAssertNil(try Session(bundle: BundleReader.load(bytes: file), device: device(), options: trusted).verifier)
        XCTAssertNotEqual(try run(file, options: trusted), expected, "the flip must matter, or the test proves nothing")
    }

    // MARK: - Single-byte flips and truncation

    /// Flips single bytes of the tiny bundle (every header byte, and seeded positions in the section table, every
    /// metadata section, every chunk payload, the resident constant and the padding): each is detected (a typed
    /// error) or leaves the outputs bit-identical, with default options.
    func testEverySingleByteFlipIsDetectedOrHarmless() throws {
        let (intact, layout) = try tiny()
        let expected = try run(intact)
        let bundle = try BundleReader.load(bytes: intact).bundle
        var rng = SplitMix(seed: 1212)
        func sample(_ range: Range<Int>, _ count: Int) -> [Int] {
            range.isEmpty ? [] : (0..<count).map { _ in range.lowerBound + Int(rng.next() % UInt64(range.count)) }
        }
        var positions = Array(0..<FileLayout.headerSize)
        let table = Int(layout.sectionTableOffset)..<(Int(layout.sectionTableOffset)
                                                      + layout.sections.count * Int(layout.sectionEntrySize))
        positions += sample(table, 48)
        for section in layout.sections where section.kind != .data { positions += sample(section.range, 12) }
        let data = layout.dataRange.lowerBound
        for chunk in bundle.chunks {
            positions += sample((data + Int(chunk.payload.offset))..<(data + Int(chunk.payload.offset + chunk.payload.size)), 3)
        }
        for constant in bundle.tensors.compactMap(\.constant) {
            positions += Array((data + Int(constant.offset))..<(data + Int(constant.offset + constant.size)))
        }
        positions += sample(layout.dataRange, 16)  // mostly padding between payloads

        var detected = 0, harmless = 0
        for position in positions {
            for bit: UInt8 in [0x01, 0x80] {
                var file = intact
                file[position] ^= bit
                do {
                    let outputs = try run(file)
                    XCTAssertEqual(outputs, expected, "flipping bit \(bit) of byte \(position) changed the outputs silently")
                    harmless += 1
                } catch is FormatError {
                    detected += 1
                } catch let error as RuntimeError {
                    switch error {
                    case .chunkChecksum, .chunkDecode, .constantChecksum, .invalidBundle: detected += 1
                    default: XCTFail("byte \(position) bit \(bit): unexpected \(error)")
                    }
                }
            }
        }
        print("single-byte flips of the tiny bundle: \(positions.count * 2): \(detected) detected, \(harmless) harmless")
        XCTAssertGreaterThan(detected, positions.count, "most flips are in checked bytes")
    }

    /// Cut at every section boundary (and inside the header and table): a FormatError saying it is truncated,
    /// from bytes and from a file.
    func testTruncationAtEverySectionBoundaryIsAClearError() throws {
        let (intact, layout) = try tiny()
        var cuts: Set<Int> = [0, 3, 4, 16, FileLayout.headerSize - 1, FileLayout.headerSize,
                              Int(layout.sectionTableOffset) + 1, intact.count - 1]
        for section in layout.sections {
            cuts.formUnion([Int(section.offset), Int(section.offset) + 1, Int(section.offset + section.size) - 1,
                            Int(section.offset + section.size)])
        }
        cuts = cuts.filter { $0 < intact.count }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cut-\(getpid()).fmb").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for cut in cuts.sorted() {
            let bytes = Array(intact[0..<cut])
            XCTAssertThrowsError(try BundleReader.load(bytes: bytes, path: "tiny.fmb"), "cut at \(cut)") { error in
                XCTAssertTrue(error is FormatError, "cut at \(cut): \(error)")
                let text = "\(error)"
                XCTAssertTrue(text.contains("truncated") || text.contains("empty file"), "cut at \(cut): \(text)")
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try openBundle(path: path), "file cut at \(cut)") { error in
                XCTAssertTrue("\(error)".contains(path), "cut at \(cut): \(error)")
            }
        }
    }
}

/// Runtime faults leave nothing behind: sessions created and destroyed many times (with runs, and runs that fail on a
/// corrupted chunk) return every device allocation and do not grow the process.
final class SessionChurnTests: XCTestCase {
    /// Resident set size of this process in bytes (/proc/self/statm).
    func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func testAThousandSessionsReturnEveryAllocation() throws {
        let model = try TinyModel()
        let intact = try BundleWriter.serialize(model.bundle, payload: model.payload)
        let layout = try XCTUnwrap(intact.withUnsafeBytes { BundleValidator.checkFile($0).layout })
        var corrupt = intact
        let chunk = try BundleReader.load(bytes: intact).bundle.chunks[0]
        corrupt[layout.dataRange.lowerBound + Int(chunk.payload.offset)] ^= 1
        let good = try BundleReader.load(bytes: intact), bad = try BundleReader.load(bytes: corrupt)
        var rng = SplitMix(seed: 3)
        let inputs = [HostTensor(name: "x", shape: [2, 64], floats: (0..<TinyModel.n).map { _ in rng.float(in: -1...1) })]
        let device = try device()

        func churn(_ count: Int) throws {
            for i in 0..<count {
                let mode: LoadMode = i % 2 == 0 ? .streaming : .preload
                let session = try Session(bundle: i % 5 == 4 ? bad : good, device: device,
                                          options: SessionOptions(loadMode: mode))
                if i % 5 == 4 {
                    XCTAssertThrowsError(try session.run(inputs: inputs))
                } else {
                    _ = try session.run(inputs: inputs)
                }
            }
        }
        let baseline = VK.DeviceMemory.live.load(ordering: .relaxed)
        try churn(50)  // warm-up: caches, allocator pools
        XCTAssertEqual(VK.DeviceMemory.live.load(ordering: .relaxed), baseline, "device allocations leaked")
        let before = residentBytes()
        try churn(1000)
        XCTAssertEqual(VK.DeviceMemory.live.load(ordering: .relaxed), baseline, "device allocations leaked")
        let growth = residentBytes() - before
        print("1000 sessions: resident set grew by \(growth >> 10) KiB")
        // The validation layer keeps records of destroyed objects (60 MiB over these 1000 sessions): only its own
        // growth would be measured then; the device allocations above are still checked.
        if !VulkanValidation.isRequested {
            XCTAssertLessThan(growth, 32 << 20, "the process grew by \(growth >> 20) MiB over 1000 sessions")
        }
    }
}
