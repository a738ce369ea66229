import XCTest
@testable import FlashMemRuntime
import TestSupport

/// The Vulkan-free parts of a session: the staging ring and the streaming plan (slot placement: FMBFormatTests).
final class PlanningTests: XCTestCase {
    func testStagingRingWaitsOnlyForOverwrittenSlots() {
        let ring = StagingRing(sizes: [100, 100, 100, 100, 300], alignment: 128, capacity: 384)
        XCTAssertEqual(ring.offsets, [0, 128, 256, 0, 0])
        XCTAssertEqual(ring.reuseWait[0], nil)
        XCTAssertEqual(ring.reuseWait[2], nil)
        XCTAssertEqual(ring.reuseWait[3], 0)     // overwrites chunk 0's slot
        XCTAssertEqual(ring.reuseWait[4], 3)     // spans chunks 3, 1, 2: the newest is 3
    }

    func testRandomRingsNeverOverwriteBytesInFlight() {
        var rng = SplitMix(seed: 11)
        for _ in 0..<200 {
            let sizes = (0..<(1 + rng.int(30))).map { _ in UInt64(1 + rng.int(1000)) }
            let capacity = StagingRing.capacity(sizes: sizes, alignment: 64, requested: UInt64(rng.int(4000)))
            let ring = StagingRing(sizes: sizes, alignment: 64, capacity: capacity)
            var finished = -1   // every ordinal ≤ finished has completed
            for (o, size) in sizes.enumerated() {
                XCTAssertEqual(ring.offsets[o] % 64, 0)
                XCTAssertLessThanOrEqual(ring.offsets[o] + size, capacity)
                if let wait = ring.reuseWait[o] {
                    XCTAssertLessThan(wait, o)
                    finished = max(finished, wait)
                }
                for earlier in (finished + 1)..<o {
                    let a = ring.offsets[earlier], b = ring.offsets[o]
                    XCTAssertTrue(a + sizes[earlier] <= b || b + size <= a, "chunk \(o) overwrites \(earlier) in flight")
                }
            }
        }
    }

    func testStagingCapacityBounds() {
        XCTAssertEqual(StagingRing.capacity(sizes: [1000, 3000, 3000, 3000], alignment: 256, requested: 1), 6144)  // 2× largest
        XCTAssertEqual(StagingRing.capacity(sizes: [100, 100], alignment: 256, requested: 1 << 26), 356)  // all chunks
        XCTAssertEqual(StagingRing.capacity(sizes: [], alignment: 256, requested: 1 << 26), 0)
    }

    func testPlanOfTinyModel() throws {
        let model = try TinyModel()
        let plan = ExecutionPlan(model.loaded())
        XCTAssertEqual(plan.order, [2, 0, 3, 1, 5, 4, 7, 6, 9, 8, 11, 10])
        XCTAssertEqual(plan.issueBefore, [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
        XCTAssertEqual(plan.imageFirstOrdinal, [0, 4, 8])
        XCTAssertEqual(plan.imageLastOrdinal, [3, 7, 11])
        XCTAssertEqual(plan.stepNeed, [4, 0, 8, 0, 12])
        XCTAssertEqual(model.bundle.imageWindows(), [0...0, 1...2, 3...4])
        XCTAssertEqual(plan.streamingBatches(stepCount: 5), [
            .init(steps: 0..<1, waitLoaded: 4), .init(steps: 1..<2, waitLoaded: 4), .init(steps: 2..<3, waitLoaded: 8),
            .init(steps: 3..<4, waitLoaded: 8), .init(steps: 4..<5, waitLoaded: 12),
        ])
        // A later run with image 1 resident copies only images 0 and 2; step 2 then waits for nothing new.
        let warm = ExecutionPlan(model.loaded(), copies: [true, false, true])
        XCTAssertEqual(warm.order, [2, 0, 3, 1, 9, 8, 11, 10])
        XCTAssertEqual(warm.stepNeed, [4, 0, 0, 0, 8])
    }

    func testChunksAreIssuedInOrderEvenWhenIssueStepsDecrease() throws {
        // The format forbids this order; the runtime still runs it safely by issuing in order (timeline values
        // must grow), each chunk no earlier than every chunk before it.
        var model = try TinyModel()
        model.bundle.schedule.order = [2, 0, 3, 1, 5, 7, 4, 6, 9, 8, 11, 10]
        let plan = ExecutionPlan(model.loaded())
        XCTAssertEqual(plan.issueStep, [0, 0, 0, 0, 1, 2, 1, 2, 3, 3, 4, 4])
        XCTAssertEqual(plan.issueBefore, [0, 0, 0, 0, 1, 2, 2, 2, 3, 3, 4, 4])
    }

    func testBatchesMergeStepsThatNeedNothingNew() throws {
        var model = try TinyModel()
        // Everything issued up front: one wait for all twelve chunks, then steps 1… follow without new waits.
        model.bundle.schedule.issueStep = Array(repeating: 0, count: 12)
        let plan = ExecutionPlan(model.loaded())
        XCTAssertEqual(plan.streamingBatches(stepCount: 5), [
            .init(steps: 0..<2, waitLoaded: 4), .init(steps: 2..<4, waitLoaded: 8), .init(steps: 4..<5, waitLoaded: 12),
        ])
    }

    /// Bad tables of an in-memory bundle are refused by the one validator (the format's), which the session runs
    /// before touching the GPU, with the field named.
    func testSessionRejectsBadTablesThroughTheValidator() throws {
        func error(_ edit: (inout FMBundle) -> Void) throws -> String {
            var model = try TinyModel()
            edit(&model.bundle)
            do {
                _ = try Session(bundle: model.loaded(), device: device())
                return "no error"
            } catch let error as FormatError {
                XCTAssertEqual(error.file, "tiny.fmb")
                return "\(error)"
            } catch { return "not a FormatError: \(error)" }
        }
        XCTAssertTrue(try error { $0.schedule.order[1] = 2 }.contains("schedule.order[1]"))
        let lastUse = try error { $0.schedule.lastUse[1] = 1 }
        XCTAssertTrue(lastUse.contains("schedule.lastUse[1]") || lastUse.contains("schedule.firstUse[1]"), lastUse)
        XCTAssertTrue(try error { $0.program[1].bindings[1] = .image(0) }.contains("program[1].bindings[1]"))
        XCTAssertTrue(try error { $0.program[0].bindings[0] = .tensor(99) }.contains("tensor 99 out of range"))
        XCTAssertTrue(try error { $0.chunks[3].y = 3 }.contains("chunks[3]"))
        let overlap = try error { $0.chunks[1].y = 1 }
        XCTAssertTrue(overlap.contains("chunks[1]"), overlap)
        XCTAssertTrue(try error { $0.chunks[0].rawSize = 1 }.contains("chunks[0].rawSize"))
        XCTAssertTrue(try error { $0.tensors[5].offset = 1 << 20 }.contains("tensors[5]"))
        XCTAssertTrue(try error { $0.meta.outputs[0].shape = [4, 64] }.contains("meta.outputs[0]"))
        XCTAssertTrue(try error { $0.kernels[0].spirv = 7 }.contains("kernels[0].spirv"))
    }

    // MARK: Wait steps (format 1.4)

    /// Issue steps per chunk: everything before step 0, or W1's chunks after step 0 and W2's after step 2 (their
    /// waits may then move from the first uses 2 and 4 to the issue steps 1 and 3).
    static let upFront = [UInt32](repeating: 0, count: 12)
    static let late: [UInt32] = [0, 0, 0, 0, 1, 1, 1, 1, 3, 3, 3, 3]

    /// TinyModel with these issue steps and wait steps (nil: each image's first use), its placement re-planned for
    /// the windows the issue steps give; validated as a session would.
    func tinyModel(issueStep: [UInt32] = upFront, waitStep: [UInt32]?, resident: [Bool]? = nil) throws -> TinyModel {
        var model = try TinyModel()
        model.bundle.schedule.issueStep = issueStep
        model.bundle.schedule.waitStep = waitStep
        model.bundle.placement = try TinyModel.streamedPlacement(model.bundle, resident: resident)
        try model.loaded().validate()
        return model
    }

    /// Every image waited for at step 0: step 0 needs all twelve chunks and the run is one submission.
    func testWaitsAtStepZeroMakeOneBatch() throws {
        let model = try tinyModel(waitStep: [0, 0, 0])
        let plan = ExecutionPlan(model.loaded())
        XCTAssertEqual(plan.order, [2, 0, 3, 1, 5, 4, 7, 6, 9, 8, 11, 10])
        XCTAssertEqual(plan.issueBefore, Array(repeating: 0, count: 12))
        XCTAssertEqual(plan.stepNeed, [12, 0, 0, 0, 0])
        XCTAssertEqual(plan.streamingBatches(stepCount: 5), [.init(steps: 0..<5, waitLoaded: 12)])
        XCTAssertEqual(model.bundle.streamingSubmissions.first, 1)
        XCTAssertEqual(model.bundle.streamingSubmissions.warm, 1)
        // A later run with image 1 resident copies images 0 and 2 (ordinals 0…7), all waited for at step 0.
        let warm = ExecutionPlan(model.loaded(), copies: [true, false, true])
        XCTAssertEqual(warm.stepNeed, [8, 0, 0, 0, 0])
        XCTAssertEqual(warm.streamingBatches(stepCount: 5), [.init(steps: 0..<5, waitLoaded: 8)])
    }

    /// W1 and W2 both waited for at step 2 (W1's first use, before W2's): two submissions, cut at step 2.
    func testWaitsMergedAtStepTwoMakeTwoBatches() throws {
        let model = try tinyModel(waitStep: [0, 2, 2])
        let plan = ExecutionPlan(model.loaded())
        XCTAssertEqual(plan.stepNeed, [4, 0, 12, 0, 0])
        XCTAssertEqual(plan.streamingBatches(stepCount: 5), [
            .init(steps: 0..<2, waitLoaded: 4), .init(steps: 2..<5, waitLoaded: 12),
        ])
        XCTAssertEqual(model.bundle.streamingSubmissions.first, 2)
        // Without waits the same issue steps cut at every first use (testBatchesMergeStepsThatNeedNothingNew).
        let atFirstUse = try tinyModel(waitStep: nil)
        XCTAssertEqual(ExecutionPlan(atFirstUse.loaded()).stepNeed, [4, 0, 8, 0, 12])
        XCTAssertEqual(atFirstUse.bundle.streamingSubmissions.first, 3)
        // Waits equal to the first uses plan exactly what no waits do.
        let explicit = try tinyModel(waitStep: [0, 2, 4])
        XCTAssertEqual(ExecutionPlan(explicit.loaded()).stepNeed, [4, 0, 8, 0, 12])
        XCTAssertEqual(ExecutionPlan(explicit.loaded()).streamingBatches(stepCount: 5),
                       ExecutionPlan(atFirstUse.loaded()).streamingBatches(stepCount: 5))
    }

    /// Copies issued after steps 0 and 2 may be waited for right there: W1 at step 1 (with the copy issued there),
    /// W2 at step 3, so steps 2 and 4 need nothing new and the run has 3 submissions instead of 5.
    func testWaitAtTheIssueStepOfLateCopies() throws {
        let model = try tinyModel(issueStep: Self.late, waitStep: [0, 1, 3])
        let plan = ExecutionPlan(model.loaded())
        XCTAssertEqual(plan.issueBefore, [0, 0, 0, 0, 1, 1, 1, 1, 3, 3, 3, 3])
        XCTAssertEqual(plan.stepNeed, [4, 8, 0, 12, 0])
        XCTAssertEqual(plan.streamingBatches(stepCount: 5), [
            .init(steps: 0..<1, waitLoaded: 4), .init(steps: 1..<3, waitLoaded: 8), .init(steps: 3..<5, waitLoaded: 12),
        ])
        let atFirstUse = try tinyModel(issueStep: Self.late, waitStep: nil)
        XCTAssertEqual(ExecutionPlan(atFirstUse.loaded()).stepNeed, [4, 0, 8, 0, 12])
        XCTAssertEqual(ExecutionPlan(atFirstUse.loaded()).streamingBatches(stepCount: 5), [
            .init(steps: 0..<1, waitLoaded: 4), .init(steps: 1..<2, waitLoaded: 4), .init(steps: 2..<3, waitLoaded: 8),
            .init(steps: 3..<4, waitLoaded: 8), .init(steps: 4..<5, waitLoaded: 12),
        ])
        XCTAssertEqual(model.bundle.streamingSubmissions.first, 3)
        XCTAssertEqual(atFirstUse.bundle.streamingSubmissions.first, 5)
        // W0 resident: warm runs copy W1 (ordinals 0…3) and W2 (4…7), each waited for where it is issued.
        let resident = try tinyModel(issueStep: Self.late, waitStep: [0, 1, 3], resident: [true, false, false])
        XCTAssertEqual(ExecutionPlan(resident.loaded(), copies: [false, true, true]).streamingBatches(stepCount: 5), [
            .init(steps: 0..<1, waitLoaded: 0), .init(steps: 1..<3, waitLoaded: 4), .init(steps: 3..<5, waitLoaded: 8),
        ])
        XCTAssertEqual(resident.bundle.streamingSubmissions.first, 3)
        XCTAssertEqual(resident.bundle.streamingSubmissions.warm, 3)

        // Waiting before the chunks are issued would deadlock: the session's validator refuses it. (TinyModel's own
        // schedule issues W1's last chunks after step 1, so its wait cannot move from its first use.)
        var early = try TinyModel()
        early.bundle.schedule.waitStep = [0, 1, 4]
        XCTAssertThrowsError(try Session(bundle: early.loaded(), device: device())) { error in
            XCTAssertTrue("\(error)".contains("waits[1]"), "\(error)")
        }
    }

    /// Moving waits earlier changes when steps wait, not what they compute: streamed runs (first and warm, with the
    /// staging ring at its minimum so slots are reused), with every image streamed or some resident, give the
    /// outputs of the same bundle without waits, bit for bit, and those of the CPU reference.
    func testSessionWithEarlierWaitsMatchesTheSameBundleWithout() throws {
        var rng = SplitMix(seed: 7)
        let x = (0..<TinyModel.n).map { _ in rng.float(in: -4...4) }
        let inputs = [HostTensor(name: "x", shape: [2, 64], floats: x)]
        let reference = try TinyModel().reference(x)
        let cases: [(issueStep: [UInt32], waits: [UInt32], resident: [Bool]?, warmBatches: Int)] = [
            (Self.upFront, [0, 0, 0], nil, 1),
            (Self.upFront, [0, 2, 2], nil, 2),
            (Self.upFront, [0, 1, 3], [false, true, false], 2),   // warm runs copy W0 and W2: cut at W2's wait only
            (Self.late, [0, 1, 3], nil, 3),
            (Self.late, [0, 1, 3], [true, false, false], 3),
            (Self.late, [0, 1, 3], [false, false, true], 2),   // warm runs copy W0 and W1 (waited for at 1)
        ]
        for c in cases {
            let context = "waits \(c.waits), issue steps \(c.issueStep), resident \(c.resident ?? [])"
            let without = try tinyModel(issueStep: c.issueStep, waitStep: nil, resident: c.resident)
            let with = try tinyModel(issueStep: c.issueStep, waitStep: c.waits, resident: c.resident)
            var outputs: [String: [[UInt8]]] = [:]
            for (name, model) in [("without", without), ("with", with)] {
                var tiny = SessionOptions(loadMode: .streaming, stagingBytes: 1)
                tiny.holdStreamedSetBytes = 0  // warm runs reuse slots too (they wait for earlier copies)
                let session = try Session(bundle: model.loaded(), device: device(), options: tiny)
                for run in 0..<3 {
                    let y = try session.run(inputs: inputs)[0]
                    for (i, (g, e)) in zip(y.floats(), reference).enumerated() where abs(g - e) > 1e-5 * max(1, abs(e)) {
                        XCTFail("\(context), \(name), run \(run), element \(i): got \(g), expected \(e)")
                        break
                    }
                    outputs[name, default: []].append(y.bytes)
                }
                if name == "with" {
                    XCTAssertEqual(session.warm.batches.count, c.warmBatches, "\(context): \(session.warm.batches)")
                }
            }
            XCTAssertEqual(outputs["with"], outputs["without"], "\(context): outputs differ from the bundle without waits")
            XCTAssertEqual(Set(outputs["with"]!).count, 1, "\(context): runs differ")
        }
        // And both match preload.
        let preload = try Session(bundle: tinyModel(waitStep: [0, 0, 0]).loaded(), device: device(),
                                  options: SessionOptions(loadMode: .preload))
        let streamed = try Session(bundle: tinyModel(waitStep: [0, 0, 0]).loaded(), device: device())
        XCTAssertEqual(try preload.run(inputs: inputs)[0].bytes, try streamed.run(inputs: inputs)[0].bytes)
    }
}
