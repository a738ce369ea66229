// `fmc plan-pipeline`: one load-plan budget per model of a chain that runs under ONE device budget B, chosen so
// that consecutive models fit side by side (b_i + b_{i+1} ≤ B) and the runtime's cross-model prefetch (Pipeline)
// has room to copy model i+1's resident images while model i runs.
//
// ## The model (one pass of the chain, every model acquiring its memory when its turn comes)
// For model i planned at budget b (`Compiler.replan`, i.e. the load planner's prediction):
//   L_i(b)  the predicted warm latency (LoadPlanner.simulate: resident weights already on the device),
//   R_i(b)  its resident image bytes, which a model whose memory was taken back copies before it runs,
//   W_i(b)  its transfer queue's idle tail: L_i − the time its last streamed copy lands (all of L_i when it
//           streams nothing): where the runtime starts the next model's prefetch.
// Model i then costs  c_i = L_i + R_i / bw_i − h_i,  h_i = min(R_i / bw_i, W_{i−1})  when b_{i−1} + b_i ≤ B
// (the prefetch hidden behind model i−1), else 0; h_0 = 0. The plan minimizes Σ c_i by dynamic programming over a
// grid of candidate budgets per model (from its smallest feasible budget to min(B, all resident), plus B/2 and
// B − each neighbour's smallest), with b_i + b_{i+1} ≤ B as a hard constraint wherever the two models' smallest
// budgets allow it; a pair that cannot fit side by side at all is left unconstrained and not prefetched.
// Candidates are probed with the heuristic alone (briefly); the chosen budgets are then solved in full.
// When every model fits at once all-resident (Σ all-resident footprints ≤ B), warm passes copy nothing: each
// model is planned all-resident instead.
//
// What the model leaves out: prefetch copies sharing the transfer queue with model i's last copies, host memcpy
// limits beyond the bandwidth given, and models still resident from an earlier pass.

import FMBFormat

/// One model of a chain to plan.
public struct PipelineModel: Sendable {
    /// How errors and reports call it (fmc uses the bundle's file stem).
    public var name: String
    public var bundle: FMBundle
    /// Step times to plan with (a profile's); nil: the bundle's.
    public var stepSeconds: [Double]?
    /// Host→device bytes/s to plan with; nil: the bundle's.
    public var bandwidth: Double?

    public init(name: String, bundle: FMBundle, stepSeconds: [Double]? = nil, bandwidth: Double? = nil) {
        self.name = name
        self.bundle = bundle
        self.stepSeconds = stepSeconds
        self.bandwidth = bandwidth
    }
}

/// What `Compiler.planPipeline` chose.
public struct PipelinePlan: Sendable {
    public struct Model: Sendable {
        public var name: String
        /// The bundle with its new schedule and placement.
        public var bundle: FMBundle
        public var report: LoadPlanReport
        /// The budget its plan was solved for (b_i).
        public var planBudgetBytes: UInt64
        /// Planned arena + weight space.
        public var footprintBytes: UInt64
        /// Its resident images' bytes, copied when it acquires memory (R_i).
        public var residentBytes: UInt64
        /// Resident bytes copied while the model before runs (R_i when the pair fits side by side, else 0).
        public var prefetchBytes: UInt64
        /// Its cost in the chain, c_i (see the model above).
        public var predictedSeconds: Double
        /// The part of its resident copies predicted hidden behind the model before (h_i).
        public var hiddenSeconds: Double
    }

    public var budgetBytes: UInt64
    public var models: [Model]
    /// Σ c_i.
    public var predictedSeconds: Double { models.reduce(0) { $0 + $1.predictedSeconds } }
    /// Pairs that cannot fit side by side, and other choices worth telling the user.
    public var notes: [String]

    /// The manifest `fmrun --pipeline DIR/pipeline.json` runs, with the bundles named `files`.
    public func manifest(files: [String]) -> PipelineManifest {
        PipelineManifest(budgetBytes: budgetBytes, models: zip(models, files).map { model, file in
            PipelineManifest.Model(bundle: file, planBudgetBytes: model.planBudgetBytes,
                                   footprintBytes: model.footprintBytes, predictedSeconds: model.predictedSeconds,
                                   prefetchBytes: model.prefetchBytes)
        })
    }
}

extension Compiler {
    /// Plans a chain of bundles for one device budget (see the model at the top of PipelinePlanning.swift).
    /// Throws a CompileError naming a model whose smallest feasible budget exceeds `budgetBytes`.
    ///
    /// - Parameters:
    ///   - candidates: grid points per model between its smallest budget and min(B, all resident).
    ///   - submissionSeconds: the device's cost of a compute-submission boundary (`CostModel.submissionSeconds`).
    public static func planPipeline(_ models: [PipelineModel], budgetBytes: UInt64, candidates: Int = 8,
                                    submissionSeconds: Double = 0) throws -> PipelinePlan {
        guard !models.isEmpty else { throw CompileError(file: "<pipeline>", "no models to plan") }
        let minimum = try models.map {
            try minimumBudget($0.bundle, stepSeconds: $0.stepSeconds, bandwidth: $0.bandwidth,
                              submissionSeconds: submissionSeconds, name: $0.name)
        }
        for (model, least) in zip(models, minimum) where least > budgetBytes {
            throw CompileError(file: model.name, "cannot run under a pipeline budget of \(budgetBytes) bytes: its "
                               + "smallest feasible budget is \(least) bytes")
        }
        let full = try models.map { model -> UInt64 in
            let r = try replan(model.bundle, budget: .unbounded, stepSeconds: model.stepSeconds,
                               bandwidth: model.bandwidth, submissionSeconds: submissionSeconds, name: model.name).report
            return r.arenaBytes + r.weightSpaceBytes
        }
        var notes: [String] = []
        let fitsAtOnce = full.reduce(0, +) <= budgetBytes
        let pairFits = models.indices.map { i in i > 0 && minimum[i - 1] + minimum[i] <= budgetBytes }
        for i in models.indices.dropFirst() where !pairFits[i] {
            notes.append("\(models[i - 1].name) and \(models[i].name) cannot fit side by side (smallest budgets "
                         + "\(minimum[i - 1]) + \(minimum[i]) > \(budgetBytes) bytes): \(models[i].name) is not prefetched")
        }

        // Candidate budgets per model, each probed once.
        let probe = LoadPlanner.Options(workUnits: LoadPlanner.Options.defaultWorkUnits / 8, useExact: false)
        var options: [[Candidate]] = []
        for (i, model) in models.enumerated() {
            let high = min(budgetBytes, full[i])
            var budgets: Set<UInt64> = fitsAtOnce ? [full[i]] : [minimum[i], high]
            if !fitsAtOnce {
                let steps = max(candidates - 1, 1)
                for k in 0...steps { budgets.insert(minimum[i] + (high - minimum[i]) * UInt64(k) / UInt64(steps)) }
                budgets.insert(budgetBytes / 2)
                for j in [i - 1, i + 1] where models.indices.contains(j) && minimum[j] <= budgetBytes {
                    budgets.insert(budgetBytes - minimum[j])
                }
            }
            let candidates = budgets.filter { $0 >= minimum[i] && $0 <= high }.sorted().compactMap { budget in
                try? Candidate(model, budget: budget, submissionSeconds: submissionSeconds, options: probe)
            }
            guard !candidates.isEmpty else {
                throw CompileError(file: model.name, "no load plan found between \(minimum[i]) and \(high) bytes")
            }
            options.append(candidates)
        }

        guard let chosen = PipelineChoice.choose(options.map { $0.map(\.figures) }, budgetBytes: budgetBytes,
                                                 pairMustFit: pairFits) else {
            throw CompileError(file: "<pipeline>", "no combination of budgets fits \(budgetBytes) bytes")
        }

        // The chosen budgets, solved in full.
        var planned: [PipelinePlan.Model] = []
        var previous: Candidate? = nil
        for (i, model) in models.enumerated() {
            let budget = options[i][chosen[i]].budget
            let final = try Candidate(model, budget: budget, submissionSeconds: submissionSeconds, options: .init())
            let sideBySide = previous.map { $0.budget + budget <= budgetBytes } ?? false
            let hidden = PipelineChoice.hiddenSeconds(final.figures, after: previous?.figures, budgetBytes: budgetBytes)
            planned.append(PipelinePlan.Model(
                name: model.name, bundle: final.bundle, report: final.report, planBudgetBytes: budget,
                footprintBytes: final.report.arenaBytes + final.report.weightSpaceBytes,
                residentBytes: final.residentBytes, prefetchBytes: sideBySide ? final.residentBytes : 0,
                predictedSeconds: final.latency + final.copySeconds - hidden, hiddenSeconds: hidden))
            previous = final
        }
        if fitsAtOnce {
            notes.append("every model fits at once all-resident (\(full.reduce(0, +)) ≤ \(budgetBytes) bytes): "
                         + "planned all-resident; warm passes copy nothing")
        }
        return PipelinePlan(budgetBytes: budgetBytes, models: planned, notes: notes)
    }
}

/// The chain's cost model over candidate budgets (see the top of the file), apart from the load planner so the
/// choice can be checked against brute force.
enum PipelineChoice {
    /// What one candidate budget of one model gives.
    struct Figures: Equatable {
        var budget: UInt64
        /// L: predicted warm latency.
        var latency: Double
        /// R / bandwidth: copying its resident images.
        var copySeconds: Double
        /// W: time from the last streamed copy's landing to the end of the run.
        var idleTail: Double
    }

    /// h: the part of `model`'s resident copy hidden behind `previous` (0 when they do not fit side by side).
    static func hiddenSeconds(_ model: Figures, after previous: Figures?, budgetBytes: UInt64) -> Double {
        guard let previous, previous.budget + model.budget <= budgetBytes else { return 0 }
        return min(model.copySeconds, previous.idleTail)
    }

    /// Σ c_i of one choice.
    static func cost(_ chain: [Figures], budgetBytes: UInt64) -> Double {
        chain.indices.reduce(0) { total, i in
            total + chain[i].latency + chain[i].copySeconds
                - hiddenSeconds(chain[i], after: i > 0 ? chain[i - 1] : nil, budgetBytes: budgetBytes)
        }
    }

    /// The candidate index per model of least `cost`, with b_{i−1} + b_i ≤ B wherever `pairMustFit[i]`; nil when
    /// no choice satisfies that. Dynamic programming over (model, candidate): best[i][c] is the least cost of
    /// models 0...i with model i at candidate c (the cost of model i depends only on models i−1 and i).
    static func choose(_ options: [[Figures]], budgetBytes: UInt64, pairMustFit: [Bool]) -> [Int]? {
        guard !options.isEmpty else { return [] }
        var best = options.map { $0.map { _ in Double.infinity } }
        var from = options.map { $0.map { _ in -1 } }
        for (c, candidate) in options[0].enumerated() { best[0][c] = candidate.latency + candidate.copySeconds }
        for i in options.indices.dropFirst() {
            for (c, candidate) in options[i].enumerated() {
                for (p, previous) in options[i - 1].enumerated() where best[i - 1][p].isFinite {
                    if pairMustFit[i] && previous.budget + candidate.budget > budgetBytes { continue }
                    let total = best[i - 1][p] + candidate.latency + candidate.copySeconds
                        - hiddenSeconds(candidate, after: previous, budgetBytes: budgetBytes)
                    if total < best[i][c] {
                        best[i][c] = total
                        from[i][c] = p
                    }
                }
            }
        }
        let last = options.count - 1
        guard let end = best[last].indices.min(by: { best[last][$0] < best[last][$1] }), best[last][end].isFinite else {
            return nil
        }
        var chosen = [Int](repeating: 0, count: options.count)
        chosen[last] = end
        for i in stride(from: last, to: 0, by: -1) { chosen[i - 1] = from[i][chosen[i]] }
        return chosen
    }
}

/// One model replanned at one budget, with the figures the chain's cost model needs.
private struct Candidate {
    var bundle: FMBundle
    var report: LoadPlanReport
    var figures: PipelineChoice.Figures
    /// R: resident image bytes.
    var residentBytes: UInt64
    var budget: UInt64 { figures.budget }
    var latency: Double { figures.latency }
    var copySeconds: Double { figures.copySeconds }

    init(_ model: PipelineModel, budget: UInt64, submissionSeconds: Double, options: LoadPlanner.Options) throws {
        let (bundle, report) = try Compiler.replan(model.bundle, budget: .bytes(budget), stepSeconds: model.stepSeconds,
                                                   bandwidth: model.bandwidth, submissionSeconds: submissionSeconds,
                                                   name: model.name, options: options)
        let input = try Compiler.planningInput(bundle, stepSeconds: model.stepSeconds, bandwidth: model.bandwidth,
                                               submissionSeconds: submissionSeconds, name: model.name)
        let resident = bundle.placement?.slots.map(\.resident) ?? bundle.images.map { _ in true }
        var issueStep = [Int](repeating: 0, count: bundle.images.count)
        for (c, chunk) in bundle.chunks.enumerated() { issueStep[Int(chunk.image)] = Int(bundle.schedule.issueStep[c]) }
        let problem = LoadPlanning.problem(input, slots: input.images.map(LoadPlanning.slotBytes), capacity: nil)
        let timeline = LoadPlanner.timeline(problem, resident: resident, issueStep: issueStep,
                                            waitStep: bundle.images.indices.map { bundle.schedule.waitStep(image: $0) })
        self.bundle = bundle
        self.report = report
        residentBytes = bundle.images.indices.filter { resident[$0] }.reduce(0) { $0 + bundle.images[$1].byteSize }
        figures = PipelineChoice.Figures(budget: budget, latency: report.predictedSeconds,
                                         copySeconds: Double(residentBytes) / input.model.transferBandwidth,
                                         idleTail: max(0, timeline.makespan - timeline.lastLanding))
    }
}
