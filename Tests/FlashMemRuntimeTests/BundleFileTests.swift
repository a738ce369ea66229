import Foundation
import XCTest
@testable import FlashMemRuntime
import TestSupport

/// The path `fmrun` takes: a bundle written to a file, mapped and validated by the reader, then run.
final class BundleFileTests: XCTestCase {
    func testWrittenBundleRunsFromItsMapping() throws {
        let model = try TinyModel()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tiny-\(getpid()).fmb").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try BundleWriter.write(model.bundle, payload: model.payload, to: path)
        let loaded = try openBundle(path: path, verifyChecksums: true)
        XCTAssertNotNil(loaded.file, "payload must come from the mapping")
        XCTAssertEqual(loaded.bundle, model.bundle)

        var rng = SplitMix(seed: 9)
        let x = (0..<TinyModel.n).map { _ in rng.float(in: -1...1) }
        let device = try makeDevice()
        for mode in LoadMode.allCases {
            let session = try Session(bundle: loaded, device: device, options: SessionOptions(loadMode: mode))
            let y = try session.run(inputs: [HostTensor(name: "x", shape: [2, 64], floats: x)])
            let expected = model.reference(x)
            for (g, e) in zip(y[0].floats(), expected) { XCTAssertEqual(g, e, accuracy: 1e-5 * max(1, abs(e))) }
        }
    }

    func testMissingFileNamesThePath() {
        XCTAssertThrowsError(try openBundle(path: "/nonexistent/model.fmb")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/model.fmb"), "\(error)")
        }
    }
}
