import Foundation
import XCTest
@testable import FlashMemRuntime
import TestSupport

/// The API as apps see it: inputs and outputs by name and the `async` variants (Session+Async.swift), typed tensors,
/// runs from several threads, and the code of the documentation's articles (FlashMemRuntime.docc).
final class AppAPITests: XCTestCase {
    // In an async function a call resolves to the async overload: these are the blocking ones.
    func blockingRun(_ session: Session, _ inputs: [HostTensor]) throws -> [HostTensor] { try session.run(inputs: inputs) }
    func blockingRun(_ session: Session, _ inputs: [String: HostTensor]) throws -> [String: HostTensor] {
        try session.run(inputs: inputs)
    }
    func blockingRun(_ pipeline: Pipeline, _ inputs: [Int: [HostTensor]]) throws -> Pipeline.RunResult {
        try pipeline.run(inputs: inputs)
    }

    func tinyInput(seed: UInt64) -> HostTensor {
        var rng = SplitMix(seed: seed)
        return HostTensor(name: "x", shape: [2, 64], floats: (0..<TinyModel.n).map { _ in rng.float(in: -4...4) })
    }

    /// By name, and async, the outputs are those of the blocking array form, bit for bit; a key names the input
    /// whatever the tensor's own name; a wrong name is the usual input error.
    func testNamedAndAsyncRunsMatchTheBlockingRun() async throws {
        let model = try TinyModel()
        let session = try Session(bundle: model.loaded(), device: device())
        let x = tinyInput(seed: 5)
        let blocking = try blockingRun(session, [x])

        var renamed = x
        renamed.name = "anything"
        let named = try blockingRun(session, ["x": renamed])
        XCTAssertEqual(Array(named.keys), ["y"])
        XCTAssertEqual(named["y"], blocking[0])

        let awaited: [HostTensor] = try await session.run(inputs: [x])
        XCTAssertEqual(awaited, blocking)
        let awaitedNamed: [String: HostTensor] = try await session.run(inputs: ["x": x])
        XCTAssertEqual(awaitedNamed, named)
        let expected = model.reference(x.floats())
        for (g, e) in zip(awaited[0].floats(), expected) { XCTAssertEqual(g, e, accuracy: 1e-5 * max(1, abs(e))) }

        do {
            _ = try await session.run(inputs: ["z": x])
            XCTFail("an unknown input name should fail the run")
        } catch let error as RuntimeError {
            XCTAssertTrue("\(error)".contains("unknown input \"z\""), "\(error)")
        }
    }

    /// Typed tensors: the generic initializer makes what the float and int64 ones make, and `withElements` lends an
    /// output's own bytes (no copy) holding the values `floats()` converts.
    func testTypedElementsInPlace() throws {
        let values: [Float] = [1.5, -2, 0.25, 3]
        XCTAssertEqual(HostTensor(name: "a", shape: [2, 2], elements: values),
                       HostTensor(name: "a", shape: [2, 2], floats: values))
        XCTAssertEqual(HostTensor(name: "b", shape: [3], elements: [Int64(1), -2, 1 << 40]),
                       HostTensor(name: "b", shape: [3], int64s: [1, -2, 1 << 40]))
        let int32s = HostTensor(name: "c", shape: [3], elements: [Int32(7), -8, 9])
        XCTAssertEqual(int32s.elementType, .int32)
        XCTAssertEqual(int32s.withElements(of: Int32.self) { Array($0) }, [7, -8, 9])
        XCTAssertEqual(int32s.int64s(), [7, -8, 9])
        #if !(os(macOS) && arch(x86_64))
        let halves = HostTensor(name: "d", shape: [2], elements: [Float16(0.5), Float16(-3)])
        XCTAssertEqual(halves.elementType, .float16)
        XCTAssertEqual(halves.floats(), [0.5, -3])
        #endif

        let model = try TinyModel()
        let session = try Session(bundle: model.loaded(), device: device())
        let y = try session.run(inputs: [tinyInput(seed: 3)])[0]
        let storage = y.bytes.withUnsafeBytes { UnsafeRawPointer($0.baseAddress!) }
        y.withElements(of: Float.self) { elements in
            XCTAssertEqual(UnsafeRawPointer(elements.baseAddress!), storage, "the elements are lent, not copied")
            XCTAssertEqual(elements.count, y.elementCount)
            XCTAssertEqual(Array(elements), y.floats())
        }
    }

    /// An async prefetch copies the resident images ahead, so the run that follows copies nothing.
    func testAsyncPrefetchMovesTheCopiesOutOfTheRun() async throws {
        let bundle = try DeviceContextTests.chainModel(seed: 95)
        let context = DeviceContext(device: try device(), budgetBytes: nil)
        let session = try Session(bundle: bundle, context: context)
        let report = try await session.prefetch()
        XCTAssertTrue(report.resident && report.acquired)
        XCTAssertGreaterThan(report.bytesCopied, 0)
        XCTAssertTrue(session.weightsResident)
        var rng = SplitMix(seed: 2)
        let x = HostTensor(name: "x", shape: [1, 64], floats: (0..<64).map { _ in rng.float(in: -1...1) })
        _ = try await session.run(inputs: [x])
        let stats = try XCTUnwrap(session.lastStats)
        XCTAssertEqual(stats.bytesStreamed, 0, "prefetched: the run copies nothing")
        XCTAssertFalse(stats.acquiredMemory)
    }

    /// An async pipeline run gives the blocking run's outputs, with every model's statistics.
    func testAsyncPipelineMatchesTheBlockingRun() async throws {
        let bundles = try [61, 62].map { try DeviceContextTests.chainModel(seed: $0) }
        let context = DeviceContext(device: try device(), budgetBytes: nil)
        let pipeline = try Pipeline(sessions: bundles.map { try Session(bundle: $0, context: context) },
                                    links: [Pipeline.Link(from: 0, output: "y", to: 1, input: "x")])
        var rng = SplitMix(seed: 8)
        let x = HostTensor(name: "x", shape: [1, 64], floats: (0..<64).map { _ in rng.float(in: -1...1) })
        let blocking = try blockingRun(pipeline, [0: [x]])
        let awaited: Pipeline.RunResult = try await pipeline.run(inputs: [0: [x]])
        XCTAssertEqual(awaited.outputs, blocking.outputs)
        XCTAssertEqual(awaited.models.map(\.name), pipeline.names)
        XCTAssertEqual(awaited.models[1].stats.bytesStreamed, 0, "the second pass finds its weights resident")
    }

    /// Async runs of two sessions sharing a budget with room for one, all started at once, while another task reads
    /// the sessions' reports: every output is right and the budget holds. (Data races here are what
    /// `make sanitize-tsan` looks for.)
    func testConcurrentAsyncRunsUnderOneBudget() async throws {
        let bundles = try [71, 72].map { try DeviceContextTests.chainModel(seed: $0) }
        var rng = SplitMix(seed: 4)
        let inputs = (0..<2).map { _ in
            HostTensor(name: "x", shape: [1, 64], floats: (0..<64).map { _ in rng.float(in: -1...1) })
        }
        let reference = try zip(bundles, inputs).map { try blockingRun(Session(bundle: $0, device: device()), [$1])[0] }
        let probe = DeviceContext(device: try device(), budgetBytes: nil)
        let largest = try bundles.map { try Session(bundle: $0, context: probe).footprintBytes }.max()!
        let context = DeviceContext(device: try device(), budgetBytes: largest)
        let sessions = try bundles.map { try Session(bundle: $0, context: context) }

        let runsDone = Flag()
        let results = try await withThrowingTaskGroup(of: (Int, HostTensor)?.self) { group in
            for i in 0..<8 {
                group.addTask { (i % 2, try await sessions[i % 2].run(inputs: [inputs[i % 2]])[0]) }
            }
            group.addTask {
                while !runsDone.isSet && !Task.isCancelled {
                    for session in sessions {
                        _ = (session.lastStats?.wallSeconds, session.isResident, session.weightsResident,
                             session.memory.deviceBytes, session.startup.pipelineSeconds, context.memory.usedBytes)
                    }
                    await Task.yield()
                }
                return nil
            }
            var all: [(Int, HostTensor)] = []
            for try await result in group {
                if let result { all.append(result) }
                if all.count == 8 { runsDone.set() }
            }
            return all
        }
        XCTAssertEqual(results.count, 8)
        for (model, y) in results { XCTAssertEqual(y, reference[model], "model \(model)") }
        XCTAssertLessThanOrEqual(context.memory.peakBytes, largest)
        XCTAssertGreaterThan(context.memory.evictions, 0, "with room for one, the two take turns")
    }

    /// The code of the "Getting started" article (FlashMemRuntime.docc/GettingStarted.md), on a bundle file of the
    /// tiny test model (input x [2, 64], output y): keep the two in step.
    func testGettingStartedArticle() throws {
        let model = try TinyModel()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("getting-started-\(getpid()).fmb").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try BundleWriter.write(model.bundle, payload: model.payload, to: path)
        failOnValidationErrors()

        // -- The article's code, from here.
        let bundle = try openBundle(path: path)
        let device = try Device()
        let session = try Session(bundle: bundle, device: device)

        for input in session.inputs {
            print(input.name, input.elementType, input.shape)  // x float32 [2, 64]
        }

        let x = HostTensor(name: "x", shape: [2, 64], floats: (0..<128).map { Float($0) / 128 })
        let outputs = try session.run(inputs: ["x": x])
        let y = outputs["y"]!
        print(y.shape, y.floats().prefix(4))
        // -- To here.

        // "Read the outputs".
        let sum = y.withElements(of: Float.self) { $0.reduce(0, +) }

        XCTAssertEqual(session.inputs.map(\.name), ["x"])
        XCTAssertEqual(y.shape, [2, 64])
        XCTAssertEqual(sum, y.floats().reduce(0, +))
        let expected = model.reference(x.floats())
        for (g, e) in zip(y.floats(), expected) { XCTAssertEqual(g, e, accuracy: 1e-5 * max(1, abs(e))) }
    }

    /// The code of the "Several models under one budget" article (SeveralModelsUnderOneBudget.md), on two chained
    /// bundle files (input x, output y, [1, 64] each): keep the two in step.
    func testSeveralModelsArticle() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("several-models-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let bundles = try [81, 82].map { try DeviceContextTests.chainModel(seed: $0) }
        let encoderPath = folder + "/encoder.fmb", decoderPath = folder + "/decoder.fmb"
        for (bundle, path) in zip(bundles, [encoderPath, decoderPath]) {
            try BundleWriter.write(bundle.bundle, payload: bundle.data, to: path)
        }
        var rng = SplitMix(seed: 6)
        let x = HostTensor(name: "x", shape: [1, 64], floats: (0..<64).map { _ in rng.float(in: -1...1) })
        var reference = try Session(bundle: bundles[0], device: self.device()).run(inputs: [x])[0]
        reference.name = "x"
        reference = try Session(bundle: bundles[1], device: self.device()).run(inputs: [reference])[0]
        failOnValidationErrors()

        // -- The article's code, from here.
        let device = try Device()
        let context = DeviceContext(device: device, budgetBytes: 512 << 20)
        let encoder = try Session(bundle: openBundle(path: encoderPath), context: context)
        let decoder = try Session(bundle: openBundle(path: decoderPath), context: context)

        let names = ["encoder", "decoder"]
        let pipeline = try Pipeline(sessions: [encoder, decoder], names: names,
                                    links: [Pipeline.Link.parse("encoder.y=decoder.x", modelNames: names)])
        let result = try pipeline.run(inputs: [0: [x]])
        let y = result.outputs[1][0]
        for model in result.models {
            print(model.name, model.stats.wallSeconds, model.stats.bytesStreamed, model.prefetch?.bytesCopied ?? 0)
        }
        print(context.memory.peakBytes, context.memory.evictions)
        // -- To here.

        XCTAssertEqual(y, reference)
        XCTAssertEqual(result.models.map(\.name), names)
        XCTAssertLessThanOrEqual(context.memory.peakBytes, 512 << 20)
    }

    /// One pipeline run from two threads at once: each run gets its own outputs, right ones.
    func testPipelineRunsFromTwoThreads() throws {
        let bundles = try [91, 92].map { try DeviceContextTests.chainModel(seed: $0) }
        let probe = DeviceContext(device: try device(), budgetBytes: nil)
        let largest = try bundles.map { try Session(bundle: $0, context: probe).footprintBytes }.max()!
        let context = DeviceContext(device: try device(), budgetBytes: largest)
        let pipeline = try Pipeline(sessions: bundles.map { try Session(bundle: $0, context: context) },
                                    links: [Pipeline.Link(from: 0, output: "y", to: 1, input: "x")])
        let inputs = (0..<2).map { t -> HostTensor in
            var rng = SplitMix(seed: UInt64(20 + t))
            return HostTensor(name: "x", shape: [1, 64], floats: (0..<64).map { _ in rng.float(in: -1...1) })
        }
        let reference = try inputs.map { try pipeline.run(inputs: [0: [$0]]).outputs }
        let failures = FailureLog()
        DispatchQueue.concurrentPerform(iterations: 2) { t in
            for run in 0..<4 {
                do {
                    let result = try pipeline.run(inputs: [0: [inputs[t]]])
                    if result.outputs != reference[t] { failures.add("thread \(t) run \(run): wrong outputs") }
                    if result.models.count != 2 { failures.add("thread \(t) run \(run): \(result.models.count) models") }
                } catch {
                    failures.add("thread \(t) run \(run): \(error)")
                }
            }
        }
        XCTAssertEqual(failures.messages, [])
        XCTAssertLessThanOrEqual(context.memory.peakBytes, largest)
    }
}

/// A flag one task sets and others poll.
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
