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
}
