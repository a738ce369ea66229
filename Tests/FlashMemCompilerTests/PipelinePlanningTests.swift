// `Compiler.planPipeline` (fmc plan-pipeline): per-model plan budgets under one chain budget.

@testable import FlashMemCompiler
import FMBFormat
import TestSupport
import XCTest

final class PipelinePlanningTests: XCTestCase {
    /// The fixture models mlp → cnn → mlp, weights cut into small images so budgets between their smallest and
    /// all-resident plan differently.
    private func chain() throws -> (models: [PipelineModel], dataSize: [UInt64]) {
        var options = CompileOptions()
        options.chunkBytes = 4096
        options.maxImageBytes = 1 << 12
        options.costModel = .lavapipe
        let mlp = try Compiler.compile(path: ImportFixtures.path("mlp.onnx"), options: options)
        let cnn = try Compiler.compile(path: ImportFixtures.path("cnn.onnx"), options: options)
        return ([PipelineModel(name: "mlp", bundle: mlp.bundle), PipelineModel(name: "cnn", bundle: cnn.bundle),
                 PipelineModel(name: "mlp again", bundle: mlp.bundle)],
                [mlp, cnn, mlp].map { UInt64($0.payload.count) })
    }

    /// Across budgets from barely enough for the largest neighbours to everything at once: every model's plan
    /// budget is within B, neighbours fit side by side, each bundle's schedule records its plan budget, each
    /// footprint is within its plan budget, prefetch is planned for every later model, and the manifest says the same.
    func testBudgetsFitSideBySideUnderTheChainBudget() throws {
        let (models, dataSize) = try chain()
        let minimum = try models.map { try Compiler.minimumBudget($0.bundle, name: $0.name) }
        let full = try models.map { model -> UInt64 in
            let r = try Compiler.replan(model.bundle, budget: .unbounded, name: model.name).report
            return r.arenaBytes + r.weightSpaceBytes
        }
        let tightest = zip(minimum, minimum.dropFirst()).map { $0 + $1 }.max()!
        for budget in [tightest, tightest + 8192, (tightest + full.reduce(0, +)) / 2, full.reduce(0, +)] {
            let plan = try Compiler.planPipeline(models, budgetBytes: budget)
            XCTAssertEqual(plan.models.count, 3)
            for (i, model) in plan.models.enumerated() {
                XCTAssertLessThanOrEqual(model.planBudgetBytes, budget, "\(budget): \(model.name)")
                XCTAssertGreaterThanOrEqual(model.planBudgetBytes, minimum[i], "\(budget): \(model.name)")
                XCTAssertLessThanOrEqual(model.footprintBytes, model.planBudgetBytes, "\(budget): \(model.name)")
                XCTAssertEqual(model.bundle.schedule.budgetBytes, model.planBudgetBytes, "\(budget): \(model.name)")
                XCTAssertEqual(model.prefetchBytes, i == 0 ? 0 : model.residentBytes, "\(budget): \(model.name)")
                XCTAssertGreaterThan(model.predictedSeconds, 0)
                XCTAssertTrue(BundleValidator.validate(model.bundle, dataSize: dataSize[i]).isEmpty, "\(budget): \(model.name)")
                if i > 0 {
                    XCTAssertLessThanOrEqual(plan.models[i - 1].planBudgetBytes + model.planBudgetBytes, budget,
                                             "\(budget): \(plan.models[i - 1].name) and \(model.name)")
                }
            }
            let manifest = plan.manifest(files: ["a.fmb", "b.fmb", "c.fmb"])
            XCTAssertEqual(manifest.problems(), [])
            XCTAssertEqual(manifest.budgetBytes, budget)
            XCTAssertEqual(manifest.models.map(\.planBudgetBytes), plan.models.map(\.planBudgetBytes))
            XCTAssertEqual(manifest.predictedSeconds, plan.predictedSeconds, accuracy: 1e-12)
        }
    }

    /// A budget below a model's smallest feasible one names the model and that budget; neighbours that cannot fit
    /// side by side are planned without prefetch and said so.
    func testInfeasibleBudgets() throws {
        let models = try chain().models
        let minimum = try models.map { try Compiler.minimumBudget($0.bundle, name: $0.name) }
        let tooSmall = minimum.max()! - 1
        let first = minimum.firstIndex { $0 > tooSmall }!
        XCTAssertThrowsError(try Compiler.planPipeline(models, budgetBytes: tooSmall)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(models[first].name), text)
            XCTAssertTrue(text.contains("its smallest feasible budget is \(minimum[first]) bytes"), text)
        }
        let alone = max(minimum[0], minimum[1])
        let plan = try Compiler.planPipeline(models, budgetBytes: alone)
        XCTAssertEqual(plan.models.map(\.prefetchBytes), [0, 0, 0])
        XCTAssertEqual(plan.notes.count, 2, "\(plan.notes)")
        XCTAssertTrue(plan.models.allSatisfy { $0.planBudgetBytes <= alone })
        XCTAssertEqual(plan.manifest(files: ["a.fmb", "b.fmb", "c.fmb"]).problems(), [])
    }

    /// The dynamic program's choice has the least chain cost of every choice that keeps the pairs that must fit
    /// within B (brute force over random instances of 1–4 models with 1–4 candidates each).
    func testChoiceIsTheBruteForceOptimum() {
        var rng = SplitMix(seed: 23)
        for instance in 0..<300 {
            let budget = UInt64(rng.int(50...200))
            let options = (0..<rng.int(1...4)).map { _ in
                (0..<rng.int(1...4)).map { _ in
                    PipelineChoice.Figures(budget: UInt64(rng.int(10...Int(budget))), latency: Double(rng.float(in: 1...5)),
                                           copySeconds: Double(rng.float(in: 0...3)), idleTail: Double(rng.float(in: 0...3)))
                }
            }
            let mustFit = options.indices.map { $0 > 0 && rng.int(4) > 0 }
            var bestCost = Double.infinity
            var choice = [Int](repeating: 0, count: options.count)
            func visit(_ i: Int) {
                if i == options.count {
                    let chain = options.indices.map { options[$0][choice[$0]] }
                    guard chain.indices.dropFirst().allSatisfy({ !mustFit[$0] || chain[$0 - 1].budget + chain[$0].budget <= budget })
                    else { return }
                    bestCost = min(bestCost, PipelineChoice.cost(chain, budgetBytes: budget))
                    return
                }
                for c in options[i].indices { choice[i] = c; visit(i + 1) }
            }
            visit(0)
            let chosen = PipelineChoice.choose(options, budgetBytes: budget, pairMustFit: mustFit)
            guard let chosen else {
                XCTAssertEqual(bestCost, .infinity, "instance \(instance): brute force found a choice")
                continue
            }
            let chain = options.indices.map { options[$0][chosen[$0]] }
            for i in chain.indices.dropFirst() where mustFit[i] {
                XCTAssertLessThanOrEqual(chain[i - 1].budget + chain[i].budget, budget, "instance \(instance)")
            }
            XCTAssertEqual(PipelineChoice.cost(chain, budgetBytes: budget), bestCost, accuracy: 1e-9, "instance \(instance)")
        }
    }
}
