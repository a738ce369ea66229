// PipelineManifest: what fmc plan-pipeline writes and fmrun --pipeline DIR/pipeline.json reads.

import FMBFormat
import Foundation
import XCTest

final class PipelineManifestTests: XCTestCase {
    private let good = PipelineManifest(budgetBytes: 1000, models: [
        .init(bundle: "a.fmb", planBudgetBytes: 600, footprintBytes: 590, predictedSeconds: 0.002, prefetchBytes: 0),
        .init(bundle: "b.fmb", planBudgetBytes: 400, footprintBytes: 400, predictedSeconds: 0.001, prefetchBytes: 300),
    ])

    /// JSON round trip: the same manifest back, valid, with the total of the models' predictions.
    func testRoundTrip() throws {
        let data = try JSONEncoder().encode(good)
        let back = try JSONDecoder().decode(PipelineManifest.self, from: data)
        XCTAssertEqual(back, good)
        XCTAssertEqual(back.problems(), [])
        XCTAssertEqual(back.version, PipelineManifest.currentVersion)
        XCTAssertEqual(back.predictedSeconds, 0.003, accuracy: 1e-12)
        XCTAssertEqual(back.bundlePath(1, folder: "out"), "out/b.fmb")
        XCTAssertEqual(back.bundlePath(1, folder: ""), "b.fmb")
        var absolute = back
        absolute.models[0].bundle = "/models/a.fmb"
        XCTAssertEqual(absolute.bundlePath(0, folder: "out"), "/models/a.fmb")
    }

    /// Each wrong field is named with what was expected.
    func testRejectsMalformedManifests() throws {
        var manifest = good
        manifest.version = 9
        manifest.models[0].planBudgetBytes = 2000
        manifest.models[1].footprintBytes = 500
        manifest.models[1].bundle = ""
        let problems = manifest.problems()
        XCTAssertTrue(problems.contains { $0.hasPrefix("version: 9") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.hasPrefix("models[0].planBudgetBytes: 2000, more than budgetBytes") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.hasPrefix("models[1].footprintBytes: 500") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.hasPrefix("models[1].bundle: empty") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.hasPrefix("models[1].prefetchBytes: 300 but models[0] and models[1]") },
                      "\(problems)")
        XCTAssertEqual(PipelineManifest(budgetBytes: 1, models: []).problems(), ["models: empty, expected at least one model"])

        // Not decodable: the missing or mistyped field is named.
        let missing = #"{"version": 1, "budgetBytes": 10, "predictedSeconds": 0, "models": [{"bundle": "a.fmb"}]}"#
        let mistyped = #"{"version": 1, "budgetBytes": "big", "predictedSeconds": 0, "models": []}"#
        for (json, expected) in [(missing, "models[0].planBudgetBytes: missing"), (mistyped, "budgetBytes: expected UInt64")] {
            XCTAssertThrowsError(try JSONDecoder().decode(PipelineManifest.self, from: Data(json.utf8))) { error in
                guard let error = error as? DecodingError else { return XCTFail("\(error)") }
                XCTAssertEqual(PipelineManifest.describe(error), expected)
            }
        }
    }
}
