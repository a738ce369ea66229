// fmc plan-pipeline: one plan budget per model of a chain under one device budget (Compiler.planPipeline), the
// replanned bundles and DIR/pipeline.json written. Parsing and reporting only.

import ArgumentParser
import FlashMemCompiler
import FMBFormat
import Foundation

struct PlanPipeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan-pipeline",
        abstract: "Replan bundles that run in turn under one memory budget so that neighbours fit side by side.",
        discussion: "Chooses each model's plan budget b_i with b_i + b_{i+1} ≤ the budget (so fmrun --pipeline can "
            + "prefetch the next model's resident weights while one runs), minimizing the predicted time of one pass "
            + "of the chain; writes the replanned bundles and pipeline.json into the output folder, for "
            + "fmrun --pipeline DIR/pipeline.json.")

    @Argument(help: "The compiled bundles, in the order they run.")
    var bundles: [String]

    @Option(name: .customLong("memory-budget"), help: "The device budget of the whole chain, e.g. 512MiB.")
    var memoryBudget: String

    @Option(name: .shortAndLong, help: "The folder to write the bundles and pipeline.json into.")
    var output: String

    @Option(parsing: .singleValue,
            help: ArgumentHelp("A measured profile of one bundle (fmrun --profile-out), named by the bundle's file "
                               + "stem or index (repeatable).", valueName: "MODEL=profile.json"))
    var profile: [String] = []

    @Option(help: "Host→device bandwidth to plan with, in GB/s (default: each profile's, else each bundle's).")
    var bandwidth: Double?

    @Option(help: "The device to plan for: its cost of a compute-submission boundary (h200, h100, lavapipe).")
    var target: String = CostModel.h200.name

    @Option(help: "Candidate budgets tried per model (a grid from its smallest feasible budget up).")
    var candidates: Int = 8

    mutating func run() throws {
        guard !bundles.isEmpty else { throw ValidationError("give the bundles, in the order they run") }
        guard candidates >= 2 else { throw ValidationError("--candidates must be at least 2") }
        guard let costModel = CostModel.all.first(where: { $0.name == target }) else {
            throw ValidationError("--target must be one of \(CostModel.all.map(\.name).joined(separator: ", "))")
        }
        let budget = try parseBytes(memoryBudget, option: "--memory-budget")
        let stems = bundles.map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension }
        var profiles: [Int: CostProfile] = [:]
        for spec in profile {
            guard let equals = spec.firstIndex(of: "=") else {
                throw ValidationError("--profile \(spec): expected MODEL=profile.json (MODEL: a bundle's stem or index)")
            }
            let key = String(spec[..<equals]), path = String(spec[spec.index(after: equals)...])
            guard let index = stems.firstIndex(of: key) ?? Int(key).flatMap({ bundles.indices.contains($0) ? $0 : nil })
            else {
                throw ValidationError("--profile \(spec): no bundle '\(key)'; the bundles: \(stems.joined(separator: ", "))")
            }
            profiles[index] = try readProfile(path)
        }

        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ValidationError("--output \(output): is a file; give the folder to write the bundles into")
        }
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("--output \(output): cannot create it: \(error.localizedDescription)")
        }
        let loaded = try bundles.map { try BundleReader.open(path: $0) }
        let models = try bundles.indices.map { i -> PipelineModel in
            let measured = profiles[i]
            if let measured, let mismatch = measured.mismatch(stepLabels: loaded[i].bundle.program.map(\.label)) {
                throw ValidationError("--profile for \(bundles[i]): does not match it: \(mismatch)")
            }
            return PipelineModel(name: stems[i], bundle: loaded[i].bundle, stepSeconds: measured?.stepSeconds,
                                 bandwidth: bandwidth.map { $0 * 1e9 } ?? measured?.streamingBandwidth)
        }
        let plan = try Compiler.planPipeline(models, budgetBytes: budget, candidates: candidates,
                                             submissionSeconds: costModel.submissionSeconds)
        // Bundles keep their file names; a name given twice gets its position as a prefix.
        let names = bundles.map { ($0 as NSString).lastPathComponent }
        let files = names.enumerated().map { i, name in names.filter { $0 == name }.count > 1 ? "\(i)-\(name)" : name }
        for (i, model) in plan.models.enumerated() {
            let path = (output as NSString).appendingPathComponent(files[i])
            guard (path as NSString).standardizingPath != (bundles[i] as NSString).standardizingPath else {
                throw ValidationError("--output \(output): would overwrite the input \(bundles[i]); choose another folder")
            }
            try StreamingBundleWriter.write(model.bundle, dataOf: loaded[i], to: path)
        }
        let manifest = plan.manifest(files: files)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let manifestPath = (output as NSString).appendingPathComponent(PipelineManifest.fileName)
        do {
            try (try encoder.encode(manifest) + Data("\n".utf8)).write(to: URL(fileURLWithPath: manifestPath))
        } catch {
            throw ValidationError("\(manifestPath): cannot write: \(error.localizedDescription)")
        }
        print(table(plan, files: files))
        for note in plan.notes { print("note: \(note)") }
        print("wrote \(plan.models.count) bundles and \(manifestPath); run with fmrun --pipeline \(manifestPath)")
    }

    private func table(_ plan: PipelinePlan, files: [String]) -> String {
        let header = ["model", "bundle", "plan budget", "footprint", "resident", "prefetched", "predicted", "hidden"]
        var rows = plan.models.enumerated().map { i, m in
            [m.name, files[i], formatBytes(m.planBudgetBytes), formatBytes(m.footprintBytes), formatBytes(m.residentBytes),
             formatBytes(m.prefetchBytes), formatSeconds(m.predictedSeconds), formatSeconds(m.hiddenSeconds)]
        }
        rows.append(["total", "", "budget \(formatBytes(plan.budgetBytes))", "", "", "",
                     formatSeconds(plan.predictedSeconds), formatSeconds(plan.models.reduce(0) { $0 + $1.hiddenSeconds })])
        let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max()! }
        func line(_ row: [String]) -> String {
            row.enumerated().map { c, cell in c < 2 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - cell.count) + cell }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
            + "\n(predicted: warm latency + resident bytes / bandwidth − hidden, the part of the resident copy "
            + "prefetched while the model before runs)"
    }
}
