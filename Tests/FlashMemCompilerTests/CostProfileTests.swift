// Profile-guided planning: a measured profile (`fmrun --profile-out`) round-trips through JSON, is refused for
// another program, and replaces the cost model's step times and bandwidth in the load plan.

import FMBFormat
import Foundation
import XCTest
@testable import FlashMemCompiler
import TestSupport

final class CostProfileTests: XCTestCase {
    /// Four chained MatMuls, each with its own 64×64 weight: four streamed images under a half budget.
    private func program() throws -> LoweredProgram {
        var b = GraphBuilder()
        b.input("x", [4, 64])
        var previous = "x"
        for l in 0..<4 {
            b.constant("w\(l)", [64, 64])
            b.node("MatMul", [previous, "w\(l)"], "h\(l)", [4, 64], name: "matmul\(l)")
            previous = "h\(l)"
        }
        b.outputs = [previous]
        return try Lowering.lower(b.graph(), precision: .fp32)
    }

    private func options(_ profile: CostProfile? = nil) -> CompileOptions {
        var options = CompileOptions()
        options.memoryBudget = .fractionOfWeights(0.5)
        options.chunkBytes = 4096
        options.costModel = .h200
        options.profile = profile
        return options
    }

    private func profile(labels: [String], seconds: [Double]) -> CostProfile {
        CostProfile(model: "profiled", device: "Test GPU", loadMode: "streaming", warmRuns: 3, stepLabels: labels,
                    stepSeconds: seconds, bytesStreamed: 1 << 20, transferSeconds: 0.5, transferTiming: .gpuTimestamps,
                    decodeSeconds: 0.25)
    }

    func testProfileRoundTripsThroughJSON() throws {
        let original = profile(labels: ["a", "b/c \"q\""], seconds: [1e-4, 2.5e-3])
        XCTAssertEqual(original.transferBandwidth, 2097152)
        XCTAssertEqual(original.decodeBandwidth, 4194304)
        XCTAssertEqual(original.streamingBandwidth, 2097152)
        let data = try JSONEncoder().encode(original)
        let decoded = try JSONDecoder().decode(CostProfile.self, from: data)
        XCTAssertEqual(decoded, original)
        // Nothing streamed: no bandwidth, timing "none", and the optional keys may be absent.
        let resident = CostProfile(model: "m", device: "d", loadMode: "preload", warmRuns: 0, stepLabels: ["a"],
                                   stepSeconds: [1], bytesStreamed: 0, transferSeconds: 0.1,
                                   transferTiming: .hostWall, decodeSeconds: 0)
        XCTAssertNil(resident.streamingBandwidth)
        XCTAssertEqual(resident.transferTiming, .none)
        XCTAssertEqual(try JSONDecoder().decode(CostProfile.self, from: JSONEncoder().encode(resident)), resident)
    }

    func testMismatchedProfileIsAnError() throws {
        let program = try program()
        let labels = program.steps.map(\.label)
        let shorter = profile(labels: Array(labels.dropLast()), seconds: labels.dropLast().map { _ in 1e-3 })
        let error = compileError { _ = try Compiler.assemble(program, name: "chain", options: options(shorter)) }
        XCTAssertTrue(error?.message.contains("does not match this model") == true, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("\(labels.count - 1) steps") == true, "\(String(describing: error))")

        var renamed = labels
        renamed[1] = "other"
        let relabeled = profile(labels: renamed, seconds: labels.map { _ in 1e-3 })
        let error2 = compileError { _ = try Compiler.assemble(program, name: "chain", options: options(relabeled)) }
        XCTAssertTrue(error2?.message.contains("step 1 is '\(labels[1])' here but 'other'") == true,
                      "\(String(describing: error2))")
    }

    func testCompilerPlansWithProfileTimes() throws {
        let program = try program()
        let estimated = try Compiler.assemble(program, name: "chain", options: options())
        XCTAssertEqual(estimated.report.plan.method, .heuristic)
        let labels = program.steps.map(\.label)
        let seconds = labels.indices.map { 1e-3 * Double($0 + 1) }
        let measured = profile(labels: labels, seconds: seconds)
        let profiled = try Compiler.assemble(program, name: "chain", options: options(measured))

        let bundle = profiled.bundle
        XCTAssertEqual(bundle.schedule.stepSeconds, seconds)
        XCTAssertEqual(bundle.schedule.bandwidth, measured.streamingBandwidth)
        XCTAssertNotEqual(profiled.report.plan.predictedSeconds, estimated.report.plan.predictedSeconds)

        // What the load planner predicts for those times and that bandwidth.
        var model = CostModel.h200
        model.transferBandwidth = measured.streamingBandwidth!
        let chunksOf = bundle.images.indices.map { i in bundle.chunks.indices.filter { Int(bundle.chunks[$0].image) == i } }
        let expected = try LoadPlanning.plan(
            LoadPlanning.Input(stepSeconds: seconds, images: bundle.images,
                               firstUse: bundle.schedule.firstUse.map { Int($0) },
                               lastUse: bundle.schedule.lastUse.map { Int($0) }, chunksOf: chunksOf,
                               chunkCount: bundle.chunks.count, arenaBytes: bundle.meta.arenaSize, model: model),
            budget: options().memoryBudget, name: "chain")
        XCTAssertEqual(profiled.report.plan.predictedSeconds, expected.report.predictedSeconds)
        XCTAssertEqual(bundle.schedule, expected.schedule)
        // Streaming 4 × 16 KiB at 2 MiB/s takes longer than the kernels: the prediction is above Σ t_k.
        XCTAssertGreaterThan(profiled.report.plan.predictedSeconds, seconds.reduce(0, +))
    }
}
