import Dispatch
import XCTest
@testable import FlashMemCompiler
@testable import FlashMemRuntime
import TestSupport

/// Several models under one budget (`DeviceContext`) and chained (`Pipeline`), on the shared test device.
final class DeviceContextTests: XCTestCase {
    /// y = relu(x·A)·B with x, y [1, 64] and 64×64 weights drawn from `seed` (16 KiB each in fp32): models that
    /// chain into each other, whose weights outweigh their arena.
    static func chainModel(seed: UInt64, budget: MemoryBudget = .unbounded) throws -> LoadedBundle {
        var g = GraphBuilder()
        g.input("x", [1, 64])
        var rng = SplitMix(seed: seed)
        g.constant("A", [64, 64], (0..<4096).map { _ in rng.float(in: -0.25...0.25) })
        g.constant("B", [64, 64], (0..<4096).map { _ in rng.float(in: -0.25...0.25) })
        g.node("MatMul", ["x", "A"], "h", [1, 64])
        g.node("Relu", ["h"], "r", [1, 64])
        g.node("MatMul", ["r", "B"], "y", [1, 64])
        g.outputs = ["y"]
        let graph = g.graph()
        try graph.simplify()
        try inferShapes(graph)
        let program = try Lowering.lower(graph, precision: .fp32)
        var options = CompileOptions.smallChunks
        options.memoryBudget = budget
        let compiled = try Compiler.assemble(program, name: "chain\(seed)", options: options)
        return LoadedBundle(bundle: compiled.bundle, payload: compiled.payload, path: "chain\(seed).fmb")
    }

    func input(seed: UInt64 = 3) -> HostTensor {
        var rng = SplitMix(seed: seed)
        return HostTensor(name: "x", shape: [1, 64], floats: (0..<64).map { _ in rng.float(in: -1...1) })
    }

    /// Each model in a session of its own (its own context), run one after another by hand.
    func referenceChain(_ bundles: [LoadedBundle], _ x: HostTensor) throws -> [[UInt8]] {
        var feed = x
        var outputs: [[UInt8]] = []
        for bundle in bundles {
            var y = try Session(bundle: bundle, device: device()).run(inputs: [feed])[0]
            outputs.append(y.bytes)
            y.name = "x"
            feed = y
        }
        return outputs
    }

    func links(_ count: Int) -> [Pipeline.Link] {
        (1..<count).map { Pipeline.Link(from: $0 - 1, output: "y", to: $0, input: "x") }
    }

    /// A chain on a context with room for every model: outputs bit-identical to the models run one by one; models
    /// after the first are prefetched (resident images copied before their run, which then copies nothing); the
    /// second pass finds every model's weights still resident and copies 0 bytes.
    func testChainMatchesModelsRunOneByOneAndKeepsResidentWeights() throws {
        let bundles = try [11, 12, 13].map { try Self.chainModel(seed: $0) }
        let x = input()
        let reference = try referenceChain(bundles, x)
        let context = DeviceContext(device: try device(), budgetBytes: 1 << 30)
        let sessions = try bundles.map { try Session(bundle: $0, context: context) }
        XCTAssertFalse(sessions.contains { $0.isResident }, "a context session takes memory when it first runs")
        let pipeline = try Pipeline(sessions: sessions, names: ["a", "b", "c"], links: links(3))
        XCTAssertEqual(pipeline.externalInputs(of: 0).map(\.name), ["x"])
        XCTAssertTrue(pipeline.externalInputs(of: 1).isEmpty)

        let first = try pipeline.run(inputs: [0: [x]])
        XCTAssertEqual(first.outputs.map { $0[0].bytes }, reference, "chain differs from the models run one by one")
        XCTAssertNil(first.models[0].prefetch)
        for model in first.models.dropFirst() {
            let prefetch = try XCTUnwrap(model.prefetch, "\(model.name) was not prefetched")
            XCTAssertTrue(prefetch.resident && prefetch.acquired)
            XCTAssertGreaterThan(prefetch.bytesCopied, 0, "\(model.name): its resident images should be prefetched")
            XCTAssertEqual(model.stats.bytesStreamed, 0, "\(model.name): prefetched, its run copies nothing")
            XCTAssertFalse(model.stats.acquiredMemory)
        }
        XCTAssertGreaterThan(first.models[0].stats.bytesStreamed, 0)
        XCTAssertTrue(first.models[0].stats.acquiredMemory)

        let second = try pipeline.run(inputs: [0: [x]])
        XCTAssertEqual(second.outputs.map { $0[0].bytes }, reference)
        for model in second.models {
            XCTAssertEqual(model.stats.bytesStreamed, 0, "\(model.name): resident weights should still be there")
            XCTAssertFalse(model.stats.acquiredMemory)
        }
        let memory = context.memory
        XCTAssertEqual(memory.usedBytes, sessions.reduce(0) { $0 + $1.footprintBytes })
        XCTAssertEqual(memory.evictions, 0)
    }

    /// A chain whose weights are more than twice the budget runs; the context's peak never passes the budget; models
    /// give their memory back in turn (and copy again when they run again); outputs still equal the reference. With
    /// and without prefetch, and with models whose plans stream some images.
    func testChainOverTwiceTheBudgetRunsWithinIt() throws {
        for (streamed, prefetch) in [(false, true), (false, false), (true, true)] {
            let bundles = try [21, 22, 23, 24].map {
                try Self.chainModel(seed: $0, budget: streamed ? .fractionOfWeights(0.5) : .unbounded)
            }
            let x = input(seed: 5)
            let reference = try referenceChain(bundles, x)
            let probe = DeviceContext(device: try device(), budgetBytes: nil)
            let footprints = try bundles.map { try Session(bundle: $0, context: probe).footprintBytes }
            let budget = footprints.max()! + footprints.min()! / 2  // room for one model, not two
            let context = DeviceContext(device: try device(), budgetBytes: budget)
            let sessions = try bundles.map { try Session(bundle: $0, context: context) }
            let weights = sessions.reduce(UInt64(0)) { $0 + $1.memory.weightBytes }
            XCTAssertGreaterThanOrEqual(weights, 2 * budget, "the test needs weights ≥ 2× the budget")
            XCTAssertEqual(sessions.allSatisfy { $0.memory.residentImages == 2 }, !streamed, "plans as compiled")
            let pipeline = try Pipeline(sessions: sessions, links: links(4))
            pipeline.prefetch = prefetch
            for pass in 0..<2 {
                let result = try pipeline.run(inputs: [0: [x]])
                XCTAssertEqual(result.outputs.map { $0[0].bytes }, reference, "streamed \(streamed), pass \(pass)")
                for model in result.models {
                    // Room for one model: each acquires its memory again in every pass, in its run or (when model i
                    // had finished by then) in its prefetch, and copies its weights again.
                    let prefetched = model.prefetch?.acquired ?? false
                    XCTAssertNotEqual(model.stats.acquiredMemory, prefetched, "pass \(pass): \(model.name)")
                    XCTAssertGreaterThan(model.stats.bytesStreamed + (model.prefetch?.bytesCopied ?? 0), 0)
                }
            }
            let memory = context.memory
            XCTAssertLessThanOrEqual(memory.peakBytes, budget, "peak past the budget")
            XCTAssertGreaterThanOrEqual(memory.peakBytes, footprints.min()!)
            XCTAssertLessThanOrEqual(memory.averageBytes, Double(budget))
            XCTAssertEqual(memory.evictions, 2 * 4 - 1)
            XCTAssertEqual(memory.residentSessions, 1)
        }
    }

    /// A chain of four under a budget with room for two: every session binds once in the context's pool (one
    /// allocation), and later passes clobber and reload contents instead of rebuilding: no device allocation, no
    /// residency built (so no descriptor writes or recording), weights copied again, outputs still bit-identical to
    /// each model run alone, the peak within the budget. With and without prefetch, streamed plans, preload mode.
    func testPooledChainBindsOnceAndReloadsContents() throws {
        let cases: [(streamed: Bool, prefetch: Bool, mode: LoadMode)] = [
            (false, true, .streaming), (false, false, .streaming), (true, true, .streaming), (false, true, .preload),
        ]
        for (streamed, prefetch, mode) in cases {
            let label = "streamed \(streamed), prefetch \(prefetch), \(mode)"
            let bundles = try [71, 72, 73, 74].map {
                try Self.chainModel(seed: $0, budget: streamed ? .fractionOfWeights(0.5) : .unbounded)
            }
            let x = input(seed: 7)
            let reference = try referenceChain(bundles, x)
            let options = SessionOptions(loadMode: mode)
            let probe = DeviceContext(device: try device(), budgetBytes: nil)
            let pieces = try bundles.map { try Session(bundle: $0, context: probe, options: options).piece }
            let largest = pieces.map(\.bytes).max()!, alignment = pieces.map(\.alignment).max()!
            let budget = alignUp(2 * (largest + alignment), alignment)  // room for two, not three
            XCTAssertLessThan(budget, 3 * pieces.map(\.bytes).min()!, label)
            let context = DeviceContext(device: try device(), budgetBytes: budget)
            let sessions = try bundles.map { try Session(bundle: $0, context: context, options: options) }
            let pipeline = try Pipeline(sessions: sessions, links: links(4))
            pipeline.prefetch = prefetch

            let first = try pipeline.run(inputs: [0: [x]])
            XCTAssertEqual(first.outputs.map { $0[0].bytes }, reference, label)
            XCTAssertEqual(context.memory.poolBytes, budget, "\(label): one pool of the budget's size")
            XCTAssertEqual(context.memory.unpooledBytes, 0, label)
            XCTAssertEqual(sessions.map { $0.startup.residencyBuilds }, [1, 1, 1, 1], label)
            XCTAssertEqual(sessions.map { $0.memory.weightAllocations }, [0, 0, 0, 0], "\(label): bound in the pool")

            let allocations = VK.DeviceMemory.made.load(ordering: .relaxed)
            let evictions = context.memory.evictions
            for pass in 1...2 {
                let result = try pipeline.run(inputs: [0: [x]])
                XCTAssertEqual(result.outputs.map { $0[0].bytes }, reference, "\(label), pass \(pass)")
                for model in result.models {
                    // Each one's range was clobbered two models before: it takes it back and copies its weights again.
                    let prefetched = model.prefetch?.acquired ?? false
                    XCTAssertNotEqual(model.stats.acquiredMemory, prefetched, "\(label), pass \(pass): \(model.name)")
                    XCTAssertGreaterThan(model.stats.bytesStreamed + (model.prefetch?.bytesCopied ?? 0), 0)
                }
            }
            XCTAssertEqual(VK.DeviceMemory.made.load(ordering: .relaxed), allocations, "\(label): warm passes allocate")
            XCTAssertEqual(sessions.map { $0.startup.residencyBuilds }, [1, 1, 1, 1], "\(label): rebuilt")
            let memory = context.memory
            XCTAssertEqual(memory.evictions - evictions, 2 * 4, "\(label): each pass clobbers every model once")
            XCTAssertLessThanOrEqual(memory.peakBytes, budget, label)
            XCTAssertGreaterThanOrEqual(memory.peakBytes, 2 * sessions.map(\.footprintBytes).min()!, "\(label): two at once")
            XCTAssertEqual(memory.residentSessions, 2, label)
            XCTAssertEqual(memory.usedBytes, sessions[2].footprintBytes + sessions[3].footprintBytes, label)
            XCTAssertEqual(sessions.map(\.isResident), [false, false, true, true], label)
        }
    }

    /// Two sessions whose pool ranges overlap (room for one): running one clobbers the other, which keeps its
    /// objects, reloads on its next run and gives the same outputs; releasing memory keeps the range too.
    func testClobberedSessionReloadsToIdenticalOutputs() throws {
        let bundles = try [81, 82].map { try Self.chainModel(seed: $0) }
        let inputs = [input(seed: 8), input(seed: 9)]
        let reference = try zip(bundles, inputs).map { try referenceChain([$0], $1)[0] }
        let probe = DeviceContext(device: try device(), budgetBytes: nil)
        let largest = try bundles.map { try Session(bundle: $0, context: probe).piece.bytes }.max()!
        let context = DeviceContext(device: try device(), budgetBytes: largest)
        let (a, b) = try (Session(bundle: bundles[0], context: context), Session(bundle: bundles[1], context: context))
        XCTAssertEqual(try a.run(inputs: [inputs[0]])[0].bytes, reference[0])
        let weightBytes = a.lastStats!.bytesStreamed
        XCTAssertTrue(a.isResident && a.weightsResident)
        XCTAssertEqual(try b.run(inputs: [inputs[1]])[0].bytes, reference[1])
        XCTAssertFalse(a.isResident || a.weightsResident, "b's range covers a's: a is clobbered")
        XCTAssertEqual(context.memory.usedBytes, b.footprintBytes)
        let allocations = VK.DeviceMemory.made.load(ordering: .relaxed)
        for run in 0..<2 {
            XCTAssertEqual(try a.run(inputs: [inputs[0]])[0].bytes, reference[0], "run \(run)")
            XCTAssertTrue(a.lastStats!.acquiredMemory)
            XCTAssertEqual(a.lastStats!.bytesStreamed, weightBytes, "a copies its weights again")
            XCTAssertEqual(try b.run(inputs: [inputs[1]])[0].bytes, reference[1], "run \(run)")
        }
        XCTAssertTrue(b.releaseDeviceMemory())
        XCTAssertFalse(b.isResident)
        XCTAssertEqual(context.memory.usedBytes, 0)
        XCTAssertEqual(try b.run(inputs: [inputs[1]])[0].bytes, reference[1])
        XCTAssertEqual(VK.DeviceMemory.made.load(ordering: .relaxed), allocations)
        XCTAssertEqual([a.startup.residencyBuilds, b.startup.residencyBuilds], [1, 1])
        XCTAssertEqual(context.memory.poolBytes, largest)
        XCTAssertLessThanOrEqual(context.memory.peakBytes, largest)
    }

    /// A budget larger than the models: the pool is what they need side by side, not the budget; nobody is clobbered.
    func testPoolIsWhatTheSessionsNeedUnderAGenerousBudget() throws {
        let bundles = try [61, 62].map { try Self.chainModel(seed: $0) }
        let context = DeviceContext(device: try device(), budgetBytes: 1 << 30)
        let sessions = try bundles.map { try Session(bundle: $0, context: context) }
        let sideBySide = DevicePool.sideBySide(sessions.map(\.piece))
        XCTAssertGreaterThanOrEqual(sideBySide, sessions.map(\.footprintBytes).reduce(0, +))
        for (session, seed) in zip(sessions, [UInt64(5), 6]) { _ = try session.run(inputs: [input(seed: seed)]) }
        for (session, seed) in zip(sessions, [UInt64(5), 6]) { _ = try session.run(inputs: [input(seed: seed)]) }
        XCTAssertEqual(context.memory.poolBytes, sideBySide)
        XCTAssertLessThan(context.memory.poolBytes, 1 << 30)
        XCTAssertEqual(context.memory.evictions, 0)
        XCTAssertEqual(context.memory.unpooledBytes, 0)
        XCTAssertEqual(sessions.map(\.isResident), [true, true])
    }

    /// Without a pool (no budget) a session released and run again builds its residency again, as before.
    func testUnboundedContextHasNoPool() throws {
        let context = DeviceContext(device: try device(), budgetBytes: nil)
        let session = try Session(bundle: Self.chainModel(seed: 91), context: context)
        let y = try session.run(inputs: [input()])[0].bytes
        XCTAssertTrue(session.releaseDeviceMemory())
        XCTAssertEqual(try session.run(inputs: [input()])[0].bytes, y)
        XCTAssertEqual(session.startup.residencyBuilds, 2)
        XCTAssertEqual(context.memory.poolBytes, 0)
        XCTAssertEqual(context.memory.unpooledBytes, session.footprintBytes)
    }

    /// A session whose own plan cannot fit the context's budget is refused when created, naming what it needs.
    func testSessionLargerThanTheContextIsATypedError() throws {
        let bundle = try Self.chainModel(seed: 31)
        let needed = try Session(bundle: bundle, context: DeviceContext(device: try device(), budgetBytes: nil)).footprintBytes
        let context = DeviceContext(device: try device(), budgetBytes: needed - 1)
        XCTAssertThrowsError(try Session(bundle: bundle, context: context)) { error in
            guard case let RuntimeError.exceedsContextBudget(path, neededBytes, arena, weights, budgetBytes)? = error as? RuntimeError else {
                return XCTFail("expected exceedsContextBudget, got \(error)")
            }
            XCTAssertEqual(path, "chain31.fmb")
            XCTAssertEqual(neededBytes, needed)
            XCTAssertEqual(arena + weights, needed)
            XCTAssertEqual(budgetBytes, needed - 1)
            XCTAssertTrue("\(error)".contains("needs \(needed) bytes"), "\(error)")
        }
        XCTAssertNoThrow(try Session(bundle: bundle, context: DeviceContext(device: try device(), budgetBytes: needed)))
        XCTAssertEqual(context.memory.usedBytes, 0)
    }

    /// Sessions of one device run from two threads at once, on a roomy context and on one with room for only one of
    /// them (they then take turns through the budget): no crash, every output correct.
    func testRunsFromTwoThreadsOnOneDevice() throws {
        let bundles = try [41, 42].map { try Self.chainModel(seed: $0) }
        let inputs = [input(seed: 1), input(seed: 2)]
        let reference = try zip(bundles, inputs).map { try referenceChain([$0], $1)[0] }
        let probe = DeviceContext(device: try device(), budgetBytes: nil)
        let largest = try bundles.map { try Session(bundle: $0, context: probe).footprintBytes }.max()!
        for budget in [nil, largest] as [UInt64?] {
            let context = DeviceContext(device: try device(), budgetBytes: budget)
            let sessions = try bundles.map { try Session(bundle: $0, context: context) }
            let failures = FailureLog()
            DispatchQueue.concurrentPerform(iterations: 2) { t in
                for run in 0..<6 {
                    do {
                        let y = try sessions[t].run(inputs: [inputs[t]])
                        if y[0].bytes != reference[t] { failures.add("thread \(t) run \(run): wrong output") }
                    } catch {
                        failures.add("thread \(t) run \(run): \(error)")
                    }
                }
            }
            XCTAssertEqual(failures.messages, [], "budget \(budget.map(String.init) ?? "none")")
            XCTAssertLessThanOrEqual(context.memory.peakBytes, budget ?? .max)
            XCTAssertEqual(context.memory.evictions > 0, budget != nil, "with room for one, the two take turns")
        }
    }

    /// A session gives its memory back on request and acquires it again (copying again) on its next run.
    func testReleaseAndReacquire() throws {
        let bundle = try Self.chainModel(seed: 51)
        let context = DeviceContext(device: try device(), budgetBytes: nil)
        let session = try Session(bundle: bundle, context: context)
        let x = input()
        let y0 = try session.run(inputs: [x])[0].bytes
        XCTAssertTrue(session.isResident)
        XCTAssertTrue(session.releaseDeviceMemory())
        XCTAssertFalse(session.isResident)
        XCTAssertEqual(context.memory.usedBytes, 0)
        XCTAssertEqual(try session.run(inputs: [x])[0].bytes, y0)
        XCTAssertTrue(session.lastStats!.acquiredMemory)
        XCTAssertGreaterThan(session.lastStats!.bytesStreamed, 0)
        XCTAssertEqual(context.memory.usedBytes, session.footprintBytes)
    }

    func testLinksParseByNameOrIndexAndAreChecked() throws {
        let names = ["depth", "depth.v2", "seg"]
        XCTAssertEqual(try Pipeline.Link.parse("depth.out=seg.in", modelNames: names),
                       Pipeline.Link(from: 0, output: "out", to: 2, input: "in"))
        XCTAssertEqual(try Pipeline.Link.parse("depth.v2./enc/Add_output_0=2.pixel.values", modelNames: names),
                       Pipeline.Link(from: 1, output: "/enc/Add_output_0", to: 2, input: "pixel.values"))
        XCTAssertEqual(try Pipeline.Link.parse("0.y=1.x", modelNames: names), Pipeline.Link(from: 0, output: "y", to: 1, input: "x"))
        for bad in ["depth.out", "nope.out=seg.in", "depth.=seg.in"] {
            XCTAssertThrowsError(try Pipeline.Link.parse(bad, modelNames: names), bad) { error in
                XCTAssertTrue(error is PipelineError, "\(error)")
            }
        }

        let context = DeviceContext(device: try device(), budgetBytes: nil)
        let sessions = try [61, 62].map { try Session(bundle: Self.chainModel(seed: $0), context: context) }
        let cases: [(Pipeline.Link, String)] = [
            (Pipeline.Link(from: 1, output: "y", to: 0, input: "x"), "later models only"),
            (Pipeline.Link(from: 0, output: "z", to: 1, input: "x"), "has no output 'z'"),
            (Pipeline.Link(from: 0, output: "y", to: 1, input: "q"), "has no input 'q'"),
        ]
        for (link, expected) in cases {
            XCTAssertThrowsError(try Pipeline(sessions: sessions, names: ["a", "b"], links: [link])) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
        let other = try Session(bundle: Self.chainModel(seed: 63), context: DeviceContext(device: try device(), budgetBytes: nil))
        XCTAssertThrowsError(try Pipeline(sessions: [sessions[0], other], links: [])) { error in
            XCTAssertTrue("\(error)".contains("another DeviceContext"), "\(error)")
        }
        // An input neither linked nor given.
        let pipeline = try Pipeline(sessions: sessions, names: ["a", "b"], links: [])
        XCTAssertThrowsError(try pipeline.run(inputs: [0: [input()]])) { error in
            XCTAssertEqual(error as? PipelineError, PipelineError(map: "b", reason: "input 'x' is neither linked to an earlier model's output nor given"))
        }
    }
}

/// Failures collected from several threads.
final class FailureLog: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var messages: [String] = []
    func add(_ message: String) { lock.lock(); messages.append(message); lock.unlock() }
}
