// Inputs on which Fuzz/'s fuzz-bundle target found a crash (Fuzz/README.md), kept in fuzz-regressions/ as the bytes
// the reader saw (after the target's checksum resealing). Each is fed to what the target runs: the reader with
// and without checksum verification, then, when it loads, what `fmc inspect` prints and draws. Every input must
// be refused with a FormatError or load and print; a trap fails the whole test run.

import FMBFormat
import Foundation
import XCTest

final class BundleFuzzRegressionTests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("fuzz-regressions")

    static func input(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    func testEveryRegressionInputIsRefusedOrLoadsAndPrints() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).sorted()
        XCTAssertFalse(files.isEmpty, "no inputs in \(Self.directory.path)")
        for file in files {
            let bytes = try Self.input(file)
            for verify in [false, true] {
                do {
                    let loaded = try BundleReader.load(bytes: bytes, verifyChecksums: verify, path: file)
                    XCTAssertTrue(BundleInspector.describe(loaded).hasPrefix("FlashMem bundle \(file)"))
                    XCTAssertTrue(MemoryTimeline(bundle: loaded.bundle).svg(title: file).hasPrefix("<svg"))
                } catch {
                    XCTAssertTrue(error is FormatError, "\(file): \(error)")
                }
            }
        }
    }

    /// A meta.arenaSize near 2^64 passed validation, and `MemoryTimeline.totals` (fmc inspect --timeline) trapped
    /// adding it to the weights. The validator now bounds it (BundleValidator.maxDeviceBytes).
    func testHugeArenaIsRefused() throws {
        XCTAssertThrowsError(try BundleReader.load(bytes: try Self.input("arena-size-overflow.fmb"))) { error in
            let issues = (error as? FormatError)?.issues ?? []
            XCTAssertTrue(issues.contains { $0.path == "meta.arenaSize" && $0.message.contains("-byte limit") }, "\(error)")
        }
    }

    /// A valid bundle whose schedule summary holds a time of more than 2^63 tenths of a second: the inspector's
    /// one-decimal formatting trapped converting it to Int64. It now prints such values as Swift spells them.
    func testHugeScheduleTimePrints() throws {
        let loaded = try BundleReader.load(bytes: try Self.input("huge-step-time.fmb"))
        XCTAssertTrue(BundleInspector.describe(loaded).contains("e+"), "no huge value printed")
    }
}
