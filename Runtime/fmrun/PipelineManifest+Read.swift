// fmrun --pipeline DIR/pipeline.json: reads the manifest `fmc plan-pipeline` writes (PipelineManifest, in
// FMBFormat) and checks it, with errors that name the file, the field and what was expected.

import ArgumentParser
import FlashMemRuntime
#if canImport(FoundationEssentials)
import FoundationEssentials  // JSONDecoder without the rest of Foundation
#else
import Foundation
#endif

/// The bundles (paths relative to the manifest's folder resolved) and the context budget of a pipeline manifest.
func readPipelineManifest(_ path: String) throws -> (paths: [String], budgetBytes: UInt64) {
    let data: Data
    do {
        data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw ValidationError("--pipeline \(path): cannot read the manifest: \(error)")
    }
    let expected = "expected a pipeline manifest (fmc plan-pipeline's \(PipelineManifest.fileName): version, "
        + "budgetBytes, models[] of bundle, planBudgetBytes, footprintBytes, predictedSeconds, prefetchBytes)"
    let manifest: PipelineManifest
    do {
        manifest = try JSONDecoder().decode(PipelineManifest.self, from: data)
    } catch let error as DecodingError {
        throw ValidationError("--pipeline \(path): \(PipelineManifest.describe(error)); \(expected)")
    } catch {
        throw ValidationError("--pipeline \(path): \(error); \(expected)")
    }
    let problems = manifest.problems()
    guard problems.isEmpty else {
        throw ValidationError("--pipeline \(path): " + problems.joined(separator: "; "))
    }
    let folder = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : ""
    return (manifest.models.indices.map { manifest.bundlePath($0, folder: folder) }, manifest.budgetBytes)
}
