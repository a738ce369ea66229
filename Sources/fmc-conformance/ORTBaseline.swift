// The materialize script's ort_baseline.json: which node tests onnxruntime's CPU provider passes (compared the
// way onnx's backend runner compares), and why the others fail. Owned by fmc-conformance.

import Foundation

struct ORTBaseline {
    var passing: Set<String>
    var failing: [String: String]
    /// "onnxruntime 1.32.0, onnx 1.23.2", for the report.
    var versions: String

    /// Reads DIR/ort_baseline.json; nil when the file does not exist (materialized with --no-ort).
    static func read(root: URL) throws -> ORTBaseline? {
        let path = root.appendingPathComponent("ort_baseline.json").path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let pass = object["pass"] as? [String] else {
            throw TestDataError(path: path, reason: "not an ORT baseline (expected an object with a \"pass\" list)")
        }
        let summary = object["summary"] as? [String: Any] ?? [:]
        let versions = "onnxruntime \(summary["ort"] as? String ?? "?"), onnx \(summary["onnx"] as? String ?? "?")"
        return ORTBaseline(passing: Set(pass), failing: object["fail"] as? [String: String] ?? [:], versions: versions)
    }
}
