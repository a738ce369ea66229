import FlashMemCompiler
import Foundation
import XCTest
@testable import FlashMemRuntime
import TestSupport

/// Runs the `fmrun` executable built beside the tests (skipped when it has not been built).
final class FMRunTests: XCTestCase {
    /// The products directory: where the test bundle (macOS) or test executable (Linux) lies.
    var fmrun: URL {
        let bundle = Bundle(for: FMRunTests.self).bundleURL
        let candidates = [bundle, bundle.deletingLastPathComponent()].map { $0.appendingPathComponent("fmrun") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }

    func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        guard FileManager.default.isExecutableFile(atPath: fmrun.path) else { throw XCTSkip("fmrun not built") }
        let process = Process()
        process.executableURL = fmrun
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    /// `fmrun --pipeline`: two bundles chained by --map under a budget with room for both, then for one only; the last
    /// model's outputs equal the models applied in turn; every model's outputs with --all-outputs; bad maps are errors.
    func testPipelineChainsBundlesUnderOneBudget() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fmrun-pipeline-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try TinyModel()
        let a = dir.appendingPathComponent("first.fmb").path, b = dir.appendingPathComponent("second.v2.fmb").path
        for path in [a, b] { try BundleWriter.write(model.bundle, payload: model.payload, to: path) }
        var rng = SplitMix(seed: 9)
        let x = (0..<TinyModel.n).map { _ in rng.float(in: -1...1) }
        let inputPath = dir.appendingPathComponent("x.npy").path
        try NPY.write(HostTensor(name: "x", shape: [2, 64], floats: x), path: inputPath)
        let footprint = try Session(bundle: model.loaded(), context: DeviceContext(device: device(), budgetBytes: nil))
            .footprintBytes
        for budget in [2 * footprint, footprint] {
            let outDir = dir.appendingPathComponent("out\(budget)").path
            let result = try run(["--pipeline", "\(a),\(b)", "--map", "first.y=second.v2.x", "--input", "x=\(inputPath)",
                                  "--memory-budget", "\(budget)", "--runs", "2", "--output-dir", outDir, "--all-outputs"]
                             + (budget > footprint ? ["--profile"] : []))
            XCTAssertEqual(result.status, 0, result.stderr)
            for line in ["pipeline:         first → second.v2", "cold latency:", "first pass:", "last pass:",
                         "warm passes:      median", "device memory:    peak"] {
                XCTAssertTrue(result.stdout.contains(line), "missing '\(line)': \(result.stdout)")
            }
            // The bound of a pass needs per-step GPU times: printed with --profile only.
            XCTAssertEqual(result.stdout.contains("  bound: Σ kernels "), budget > footprint, result.stdout)
            XCTAssertEqual(result.stdout.contains(" 0 times a model's memory was taken back"), budget > footprint, result.stdout)
            let first = try NPY.read(path: outDir + "/first/y.npy").floats()
            let second = try NPY.read(path: outDir + "/second.v2/y.npy").floats()
            for (g, e) in zip(first, model.reference(x)) { XCTAssertEqual(g, e, accuracy: 1e-5 * max(1, abs(e))) }
            for (g, e) in zip(second, model.reference(first)) { XCTAssertEqual(g, e, accuracy: 1e-5 * max(1, abs(e))) }
        }
        let bad = try run(["--pipeline", "\(a),\(b)", "--map", "third.y=second.v2.x", "--input", "x=\(inputPath)"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("'third.y' does not name a model's output"), bad.stderr)
        let tooSmall = try run(["--pipeline", "\(a),\(b)", "--map", "0.y=1.x", "--input", "x=\(inputPath)",
                                "--memory-budget", "\(footprint - 1)"])
        XCTAssertNotEqual(tooSmall.status, 0)
        XCTAssertTrue(tooSmall.stderr.contains("needs \(footprint) bytes of device memory"), tooSmall.stderr)
    }

    /// `fmrun --pipeline DIR/pipeline.json`: a chain planned by `Compiler.planPipeline` (fmc plan-pipeline) runs
    /// under the manifest's budget and gives exactly the outputs of its bundles run one by one; a malformed or
    /// missing manifest is an error naming the file and what was expected.
    func testPipelineManifestRunsAsTheBundlesOneByOne() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fmrun-manifest-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try TinyModel()
        let minimum = try Compiler.minimumBudget(model.bundle, name: "tiny")
        let full = try Compiler.replan(model.bundle, budget: .unbounded, name: "tiny").report
        let budget = minimum + full.arenaBytes + full.weightSpaceBytes
        let plan = try Compiler.planPipeline([PipelineModel(name: "first", bundle: model.bundle),
                                              PipelineModel(name: "second", bundle: model.bundle)], budgetBytes: budget)
        XCTAssertLessThanOrEqual(plan.models[0].planBudgetBytes + plan.models[1].planBudgetBytes, budget)
        let files = ["first.fmb", "second.fmb"]
        for (planned, file) in zip(plan.models, files) {
            try BundleWriter.write(planned.bundle, payload: model.payload, to: dir.appendingPathComponent(file).path)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let manifestPath = dir.appendingPathComponent(PipelineManifest.fileName).path
        try encoder.encode(plan.manifest(files: files)).write(to: URL(fileURLWithPath: manifestPath))

        var rng = SplitMix(seed: 11)
        let x = (0..<TinyModel.n).map { _ in rng.float(in: -1...1) }
        let inputPath = dir.appendingPathComponent("x.npy").path
        try NPY.write(HostTensor(name: "x", shape: [2, 64], floats: x), path: inputPath)
        let outDir = dir.appendingPathComponent("chain").path
        let chained = try run(["--pipeline", manifestPath, "--map", "first.y=second.x", "--input", "x=\(inputPath)",
                               "--runs", "1", "--output-dir", outDir, "--all-outputs"])
        XCTAssertEqual(chained.status, 0, chained.stderr)
        XCTAssertTrue(chained.stdout.contains("pipeline:         first → second"), chained.stdout)
        // The plan budgets fit side by side: the second model is prefetched, nothing is taken back.
        XCTAssertTrue(chained.stdout.contains(", prefetched "), chained.stdout)
        XCTAssertFalse(chained.stdout.contains("no room to prefetch"), chained.stdout)
        XCTAssertTrue(chained.stdout.contains(" 0 times a model's memory was taken back"), chained.stdout)
        // fmrun prints the budget as bytes < 1 KiB or tenths of KiB.
        let shown = budget < 1024 ? "\(budget) B" : "\(Double(Int(Double(budget) / 1024 * 10)) / 10) KiB"
        XCTAssertLessThan(budget, 1 << 20)
        XCTAssertTrue(chained.stdout.contains("budget:           \(shown);"), chained.stdout)

        // The same bundles one by one: the first's output is the second's input.
        let firstDir = dir.appendingPathComponent("one").path, secondDir = dir.appendingPathComponent("two").path
        let first = try run([dir.appendingPathComponent("first.fmb").path, "--input", "x=\(inputPath)",
                             "--output-dir", firstDir])
        XCTAssertEqual(first.status, 0, first.stderr)
        let second = try run([dir.appendingPathComponent("second.fmb").path, "--input", "x=\(firstDir)/y.npy",
                              "--output-dir", secondDir])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(try NPY.read(path: outDir + "/first/y.npy").floats(), try NPY.read(path: firstDir + "/y.npy").floats())
        let y = try NPY.read(path: outDir + "/second/y.npy").floats()
        XCTAssertEqual(y, try NPY.read(path: secondDir + "/y.npy").floats())
        for (g, e) in zip(y, model.reference(model.reference(x))) { XCTAssertEqual(g, e, accuracy: 1e-5 * max(1, abs(e))) }

        // An explicit --memory-budget overrides the manifest's.
        let overridden = try run(["--pipeline", manifestPath, "--map", "first.y=second.x", "--input", "x=\(inputPath)",
                                  "--memory-budget", "10MiB"])
        XCTAssertEqual(overridden.status, 0, overridden.stderr)
        XCTAssertTrue(overridden.stdout.contains("budget:           10.0 MiB;"), overridden.stdout)

        let badPath = dir.appendingPathComponent("bad.json").path
        try Data(#"{"version": 1, "models": []}"#.utf8).write(to: URL(fileURLWithPath: badPath))
        let bad = try run(["--pipeline", badPath, "--input", "x=\(inputPath)"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--pipeline \(badPath): budgetBytes: missing; expected a pipeline manifest"),
                      bad.stderr)
        let missing = try run(["--pipeline", dir.appendingPathComponent("none.json").path, "--input", "x=\(inputPath)"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("none.json: cannot read the manifest"), missing.stderr)
    }

    func testRunsABundleAndWritesOutputs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fmrun-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try TinyModel()
        let bundlePath = dir.appendingPathComponent("tiny.fmb").path
        try BundleWriter.write(model.bundle, payload: model.payload, to: bundlePath)
        var rng = SplitMix(seed: 4)
        let x = (0..<TinyModel.n).map { _ in rng.float(in: -1...1) }
        let inputPath = dir.appendingPathComponent("x.npy").path
        try NPY.write(HostTensor(name: "x", shape: [2, 64], floats: x), path: inputPath)
        let outDir = dir.appendingPathComponent("out").path

        for extra in [[], ["--preload"]] {
            let result = try run([bundlePath, "--input", "x=\(inputPath)", "--output-dir", outDir, "--runs", "2",
                                  "--verify-checksums", "--profile"] + extra)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.contains("load mode:        \(extra.isEmpty ? "streaming" : "preload")"), result.stdout)
            XCTAssertTrue(result.stdout.contains("warm latency:     median"), result.stdout)
            XCTAssertTrue(result.stdout.contains("cold latency:"), result.stdout)
            XCTAssertTrue(result.stdout.contains("device memory:"), result.stdout)
            XCTAssertTrue(result.stdout.contains("step 4"), "profile lists steps: \(result.stdout)")
            let y = try NPY.read(path: outDir + "/y.npy")
            XCTAssertEqual(y.shape, [2, 64])
            for (g, e) in zip(y.floats(), model.reference(x)) { XCTAssertEqual(g, e, accuracy: 1e-5 * max(1, abs(e))) }
        }

        // The cold line says how much of the bundle the page cache held, and whether it was evicted first.
        let evicted = try run([bundlePath, "--input", "x=\(inputPath)", "--evict-cache"])
        XCTAssertEqual(evicted.status, 0, evicted.stderr)
        XCTAssertTrue(evicted.stdout.contains("% of the bundle in the page cache at open, evicted first)"),
                      evicted.stdout)

        let missing = try run([bundlePath])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("missing inputs: x"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("x: float32 [2, 64]"), missing.stderr)

        let badDevice = try run([bundlePath, "--input", "x=\(inputPath)", "--device", "42"])
        XCTAssertNotEqual(badDevice.status, 0)
        XCTAssertTrue(badDevice.stderr.contains("device index 42 is out of range"), badDevice.stderr)
    }

    /// `--trace` and `--profile-out` on the TinyModel: a trace-event JSON with a kernel event for every step in both
    /// runs and the named tracks; a cost profile the compiler side can decode, with the bundle's step labels.
    func testTraceAndProfileFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fmrun-trace-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try TinyModel()
        let bundlePath = dir.appendingPathComponent("tiny.fmb").path
        try BundleWriter.write(model.bundle, payload: model.payload, to: bundlePath)
        let inputPath = dir.appendingPathComponent("x.npy").path
        try NPY.write(HostTensor(name: "x", shape: [2, 64], floats: [Float](repeating: 0.5, count: TinyModel.n)),
                      path: inputPath)
        let tracePath = dir.appendingPathComponent("trace.json").path
        let profilePath = dir.appendingPathComponent("profile.json").path
        let result = try run([bundlePath, "--input", "x=\(inputPath)", "--runs", "3", "--trace", tracePath,
                              "--profile-out", profilePath])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("profile:"), result.stdout)
        XCTAssertTrue(result.stdout.contains("copy bandwidth:"), result.stdout)

        let traceData = try Data(contentsOf: URL(fileURLWithPath: tracePath))
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: traceData) as? [String: Any])
        let events = try XCTUnwrap(root["traceEvents"] as? [[String: Any]])
        let steps = model.bundle.program
        for pid in [1, 2] {
            let mine = events.filter { $0["pid"] as? Int == pid }
            let threads = Set(mine.filter { $0["ph"] as? String == "M" && $0["name"] as? String == "thread_name" }
                .compactMap { ($0["args"] as? [String: Any])?["name"] as? String })
            XCTAssertEqual(threads, ["compute queue", "transfer queue", "host streamer", "host main"])
            let complete = mine.filter { $0["ph"] as? String == "X" }
            for event in complete {
                XCTAssertNotNil(event["ts"] as? Double, "\(event)")
                XCTAssertGreaterThanOrEqual(event["dur"] as? Double ?? -1, 0, "\(event)")
            }
            let kernels = complete.filter { $0["tid"] as? Int == RunTrace.Track.computeQueue.rawValue }
            let stepIndices = kernels.compactMap { ($0["args"] as? [String: Any])?["step"] as? String }.compactMap(Int.init)
            XCTAssertEqual(stepIndices.sorted(), Array(steps.indices), "pid \(pid): a kernel event per step")
            XCTAssertEqual(kernels.map { $0["name"] as? String }, steps.map(\.label))
            // Every chunk is streamed (nothing is resident in TinyModel): a copy per chunk on the transfer track
            // (lavapipe's single queue has timestamps). The staging ring holds them all, so the first run decodes
            // them (decode waves on the streamer's track) and the warm run only copies.
            let copies = complete.filter { $0["tid"] as? Int == RunTrace.Track.transferQueue.rawValue }
            XCTAssertEqual(copies.count, model.bundle.chunks.count)
            XCTAssertEqual(complete.contains { $0["tid"] as? Int == RunTrace.Track.hostStreamer.rawValue
                                               && $0["name"] as? String == "decode" }, pid == 1, "pid \(pid)")
            XCTAssertTrue(complete.contains { $0["tid"] as? Int == RunTrace.Track.hostMain.rawValue
                                              && ($0["name"] as? String ?? "").hasPrefix("wait for") })
        }

        let profile = try JSONDecoder().decode(CostProfile.self, from: Data(contentsOf: URL(fileURLWithPath: profilePath)))
        XCTAssertNil(profile.mismatch(stepLabels: steps.map(\.label)))
        XCTAssertEqual(profile.warmRuns, 3)
        XCTAssertEqual(profile.stepSeconds.count, steps.count)
        XCTAssertEqual(profile.bytesStreamed, 3 * model.bundle.chunks.reduce(0) { $0 + $1.rawSize })
        XCTAssertNotEqual(profile.transferTiming, .none)
        XCTAssertNotNil(profile.transferBandwidth)
        XCTAssertNil(profile.decodeBandwidth, "the warm runs found every chunk decoded in the staging ring")

        // Preloaded, only the first run copies: its copy rate is kept, its decode rate (which may include reading
        // the bundle from storage) is not, so planning with the profile streams at the copy rate.
        let preloaded = try run([bundlePath, "--input", "x=\(inputPath)", "--runs", "2", "--preload",
                                 "--profile-out", profilePath])
        XCTAssertEqual(preloaded.status, 0, preloaded.stderr)
        let first = try JSONDecoder().decode(CostProfile.self, from: Data(contentsOf: URL(fileURLWithPath: profilePath)))
        XCTAssertEqual(first.bytesStreamed, model.bundle.chunks.reduce(0) { $0 + $1.rawSize })
        XCTAssertNotNil(first.transferBandwidth)
        XCTAssertNil(first.decodeBandwidth)
        XCTAssertEqual(first.streamingBandwidth, first.transferBandwidth)
    }

    func testListsDevices() throws {
        let result = try run(["--list-devices"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("[0] "), result.stdout)
        XCTAssertTrue(result.stdout.contains("Vulkan 1."), result.stdout)
    }
}
