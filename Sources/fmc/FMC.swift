import ArgumentParser
import FlashMemCompiler
import FMBFormat
import Foundation

@main
struct FMC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fmc",
        abstract: "FlashMem ahead-of-time compiler: ONNX model → .fmb bundle.",
        version: Compiler.version,
        subcommands: [Compile.self, Replan.self, PlanPipeline.self, Inspect.self])
}

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compile an ONNX model into a .fmb bundle.")

    @Argument(help: "The ONNX model (external data files next to it are found by their relative location).")
    var model: String

    @Option(name: .shortAndLong, help: "The bundle to write.")
    var output: String

    @Option(help: "Weight precision in the bundle: fp32 or fp16.")
    var precision: Precision = .fp32

    @Option(name: .customLong("input-shape"), parsing: .singleValue,
            help: "Fix an input's shape, e.g. --input-shape input_ids=1,128 (repeatable).")
    var inputShapes: [String] = []

    @Option(name: .customLong("pin-input"), parsing: .singleValue,
            help: ArgumentHelp("Fix an input to a value at compile time, e.g. --pin-input sr=16000 (repeatable).",
                               discussion: "NAME=VALUE[,VALUE...]: the input becomes a constant of its declared dtype "
                                   + "and shape (a scalar for rank 0) and is no longer an input of the bundle; "
                                   + "everything that depends only on it is folded."))
    var pinInputs: [String] = []

    @Option(help: "Target weight chunk size, e.g. 1MiB, 256KiB.")
    var chunkSize: String = "1MiB"

    @Option(name: .customLong("memory-budget"),
            help: ArgumentHelp("Device memory for the whole run: BYTES (e.g. 256MiB), N% of the weights (plus the "
                               + "arena), or auto (default: unbounded, every weight resident).",
                               discussion: "The plan never exceeds it: arena + resident weights + streamed weights in "
                                   + "flight. auto picks the smallest budget whose predicted warm latency is within 5% "
                                   + "of all-resident. A budget too small is an error stating the smallest feasible one."))
    var memoryBudget: String?

    @Option(name: .customLong("max-image-size"),
            help: ArgumentHelp("Largest weight image, e.g. 16MiB: bigger weights are cut into pieces, each read by its "
                               + "own step (default: an eighth of the weights' share of the budget, 1–64 MiB)."))
    var maxImageSize: String?

    @Option(help: "Chunk codec: none or zstd.")
    var codec: String = "none"

    @Option(help: ArgumentHelp("Cost model the schedule is solved for: \(CostModel.all.map(\.name).joined(separator: ", ")) "
                               + "(default \(CostModel.h200.name)); pick the device that will run the bundle.",
                               discussion: "Without it, fmc says which target fits the machine it runs on, where it can tell."))
    var target: String?

    @Option(help: ArgumentHelp("A measured profile of this model (fmrun --profile-out): plan with its step times "
                               + "and streaming bandwidth instead of the --target estimates.", valueName: "profile.json"))
    var profile: String?

    @Option(name: .customLong("tensor-cores"),
            help: ArgumentHelp("Tensor-core (cooperative-matrix) kernels for Gemm / MatMul: auto, on or off.",
                               discussion: "auto (default): products with a constant weight, for fp16 bundles of a "
                                   + "target that has them (h200, h100); on: wherever the shape suits, products of two "
                                   + "activations too (not yet measured on a device), fp16 only (the bundle then needs "
                                   + "VK_NV_cooperative_matrix); off: the plain kernels everywhere (lavapipe)."))
    var tensorCores: TensorCores = .auto

    @Option(name: .customLong("fuse-attention"),
            help: ArgumentHelp("Attention as one fused kernel (the scores never in memory): auto, on or off.",
                               discussion: "auto (default): where the --target measured it faster (NVIDIA: at most 256 "
                                   + "keys; lavapipe: never) or where the unfused scores would not fit a storage "
                                   + "buffer; on: every attention; off: none."))
    var fuseAttention: AttentionFusion = .auto

    @Option(name: .customLong("split-attention"),
            help: ArgumentHelp("Compute an attention left unfused whose scores would take more than SIZE in blocks of "
                               + "query rows, each block's scores at most SIZE: auto, off or SIZE.",
                               discussion: "The arena then holds one block's scores at a time (SAM 2's 512 MiB of "
                                   + "scores: 32 MiB), at a cost in GPU time (10–46% on an H100 for SAM 2, "
                                   + "Whisper-Medium, SD-UNet). auto (default): 32MiB blocks when --memory-budget is a "
                                   + "size or a percentage, none otherwise.", valueName: "auto|off|SIZE"))
    var splitAttention: String?

    @Option(name: .customLong("coopmat-tile"),
            help: ArgumentHelp("Tensor-core tile of every product of at least 16 × 32 × 32, instead of the rule's (for tuning; the rule "
                               + "leaves products under 200 MFLOP to the plain kernels).",
                               valueName: "BMxBN/WMxWN[/BK][/db][/direct]"))
    var coopmatTile: String?

    @Option(name: .customLong("attention-invocations"),
            help: ArgumentHelp("Invocations per workgroup of fused attentions, 64 or 256, instead of the target's (for tuning).",
                               valueName: "64|256"))
    var attentionInvocations: Int?

    mutating func run() throws {
        var options = CompileOptions()
        options.tensorCores = tensorCores
        options.attentionFusion = fuseAttention
        switch splitAttention {
        case nil, "auto": options.splitAttention = .auto
        case "off": options.splitAttention = .off
        case let size?:
            guard let bytes = try? parseBytes(size, option: "--split-attention") else {
                throw ValidationError("--split-attention expects auto, off or a size such as 32MiB, got '\(size)'")
            }
            options.splitAttention = .blockBytes(Int(bytes))
        }
        if let coopmatTile {
            options.coopmatTile = try CoopmatTile.parse(coopmatTile).mapError { ValidationError($0.description) }.get()
        }
        if let attentionInvocations {
            guard AttentionFusionRule.workgroupSizes.contains(attentionInvocations) else {
                let sizes = AttentionFusionRule.workgroupSizes.map(String.init).joined(separator: ", ")
                throw ValidationError("--attention-invocations expects one of \(sizes), got \(attentionInvocations)")
            }
            options.attentionInvocations = attentionInvocations
        }
        if let profile {
            options.profile = try readProfile(profile)
        }
        options.precision = precision
        options.chunkBytes = Int(try parseBytes(chunkSize, option: "--chunk-size"))
        options.memoryBudget = try memoryBudget.map(parseBudget) ?? .unbounded
        options.maxImageBytes = try maxImageSize.map { Int(try parseBytes($0, option: "--max-image-size")) }
        switch codec {
        case "none": options.codec = .none
        case "zstd": options.codec = .zstd
        default: throw ValidationError("--codec must be none or zstd, not '\(codec)'")
        }
        let targetName = target ?? CostModel.h200.name
        guard let model = CostModel.all.first(where: { $0.name == targetName }) else {
            throw ValidationError("--target must be one of \(CostModel.all.map(\.name).joined(separator: ", ")), not '\(targetName)'")
        }
        options.costModel = model
        for spec in inputShapes {
            let parts = spec.split(separator: "=", maxSplits: 1)
            let dims = parts.count == 2 ? parts[1].split(separator: ",").map { Int($0) } : []
            guard parts.count == 2, !dims.isEmpty, dims.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("--input-shape expects NAME=d0,d1,... with positive integers, got '\(spec)'")
            }
            options.inputShapes[String(parts[0])] = dims.map { $0! }
        }

        for spec in pinInputs {
            let parts = spec.split(separator: "=", maxSplits: 1)
            let values = parts.count == 2 ? parts[1].split(separator: ",", omittingEmptySubsequences: false)
                .map { Double($0.trimmingCharacters(in: .whitespaces)) } : []
            guard parts.count == 2, !parts[0].isEmpty, !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
                throw ValidationError("--pin-input expects NAME=VALUE[,VALUE...] with numbers, got '\(spec)'")
            }
            options.pinnedInputs[String(parts[0])] = values.map { $0! }
        }

        try prepareOutput(output)
        let start = Date()
        let r = try Compiler.compile(path: self.model, options: options, writingTo: output) { message in
            FileHandle.standardError.write(Data("fmc: \(message)\n".utf8))
        }
        let seconds = Date().timeIntervalSince(start)
        print("""
            wrote \(output) in \(String(format: "%.2f", seconds)) s (\(formatBytes(r.weightBytes)) of weights, \
            \(String(format: "%.0f", Double(r.weightBytes) / 1_048_576 / max(seconds, 1e-9))) MiB/s), \
            peak RSS \(formatBytes(peakResidentBytes()))
              nodes \(r.nodes) (\(r.foldedNodes) folded) → steps \(r.steps) (\(r.copySteps) copies), kernels \(r.kernels) (\(r.spirvModules) SPIR-V modules)
              arena \(formatBytes(r.arenaBytes)) (live at once at most \(formatBytes(r.arenaLivePeakBytes)), without reuse \(formatBytes(r.arenaUnsharedBytes)))
              weights \(formatBytes(r.weightBytes)) in \(r.chunks) chunks, stored \(formatBytes(r.storedBytes))
            """)
        if let step = r.arenaPeakStep, !r.arenaPeakTensors.isEmpty {
            let largest = r.arenaPeakTensors.map { "'\($0.name)' \(formatBytes($0.bytes))" }.joined(separator: ", ")
            print("  arena peak at \(step): largest live \(largest)")
        }
        if r.cooperativeMatrixSteps > 0 {
            print("  tensor cores: \(r.cooperativeMatrixSteps) steps on cooperative matrices (VK_NV_cooperative_matrix)")
        }
        print(planSummary(r.plan, target: options.profile.map { "profile of \($0.device)" } ?? model.name))
        for split in r.splits {
            print("  split \(split.summary)")
        }
        if target == nil, options.profile == nil,
           let hint = LocalTarget.hint(defaultTarget: model.name, all: CostModel.all.map(\.name)) {
            FileHandle.standardError.write(Data("fmc: \(hint)\n".utf8))
        }
    }

}

struct Replan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Plan a compiled bundle's weight loads again for another memory budget or bandwidth.",
        discussion: "Kernels, images and chunks stay as compiled (weights keep the pieces they were cut into); "
            + "the schedule and placement are solved again and written with the same payload to a new bundle.")

    @Argument(help: "The compiled bundle.")
    var bundle: String

    @Option(name: .shortAndLong, help: "The bundle to write (may not be the input).")
    var output: String

    @Option(name: .customLong("memory-budget"), help: "BYTES, N% of the weights (plus the arena), or auto.")
    var memoryBudget: String

    @Option(help: "Host→device bandwidth to plan with, in GB/s (default: the profile's, else the bundle's).")
    var bandwidth: Double?

    @Option(help: ArgumentHelp("A measured profile of this bundle (fmrun --profile-out): plan with its step times "
                               + "and streaming bandwidth.", valueName: "profile.json"))
    var profile: String?

    @Option(help: "The device to plan for: its cost of a compute-submission boundary (h200, h100, lavapipe).")
    var target: String = CostModel.h200.name

    mutating func run() throws {
        guard output != bundle else { throw ValidationError("--output must differ from the input bundle") }
        guard let model = CostModel.all.first(where: { $0.name == target }) else {
            throw ValidationError("--target must be one of \(CostModel.all.map(\.name).joined(separator: ", "))")
        }
        try prepareOutput(output)
        let start = Date()
        let loaded = try BundleReader.open(path: bundle)
        let measured = try profile.map(readProfile)
        if let measured, let mismatch = measured.mismatch(stepLabels: loaded.bundle.program.map(\.label)) {
            throw ValidationError("--profile \(profile!): does not match \(bundle): \(mismatch)")
        }
        let (planned, r) = try Compiler.replan(loaded.bundle, budget: try parseBudget(memoryBudget),
                                               stepSeconds: measured?.stepSeconds,
                                               bandwidth: bandwidth.map { $0 * 1e9 } ?? measured?.streamingBandwidth,
                                               submissionSeconds: model.submissionSeconds, name: bundle)
        try StreamingBundleWriter.write(planned, dataOf: loaded, to: output)
        print("wrote \(output) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s, "
              + "peak RSS \(formatBytes(peakResidentBytes()))")
        print(planSummary(r))
    }
}

/// The plan lines of `fmc compile` and `fmc replan`.
func planSummary(_ r: LoadPlanReport, target: String? = nil) -> String {
    let gap = r.lowerBoundSeconds > 0 ? (r.predictedSeconds / r.lowerBoundSeconds - 1) * 100 : 0
    return """
          plan (\(target.map { "\($0), " } ?? "")\(r.method)): budget \(r.budgetBytes == 0 ? "unbounded" : formatBytes(r.budgetBytes)) = \
        arena \(formatBytes(r.arenaBytes)) + weight space \(formatBytes(r.weightSpaceBytes)) \
        (resident \(formatBytes(r.residentBytes)), streamed per run \(formatBytes(r.streamedBytes)))
          predicted warm \(formatSeconds(r.predictedSeconds)), lower bound \(formatSeconds(r.lowerBoundSeconds)) \
        (Σ kernels \(formatSeconds(r.computeSeconds))), gap \(String(format: "%.1f", gap))%; searched \
        \(String(format: "%.0f", Double(r.searchUnits) / 1e6))M work units in \(String(format: "%.2f", r.searchSeconds)) s
        """ + (r.submissions.map { "\n  compute submissions when streamed: first run \($0.first), warm run \($0.warm)" } ?? "")
          + (r.autoChoice.map { "\n  " + $0 } ?? "")
          + (r.stoppedByClock ? "\n  note: the plan's search ran out of wall-clock time before its work budget (a slow or "
              + "busy machine): compiling again may give another plan" : "")
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Describe a .fmb bundle: sections, kernels, chunks, schedule.")

    @Argument(help: "The bundle.")
    var bundle: String

    @Flag(help: "Also verify every chunk's checksum.")
    var verifyChecksums = false

    @Flag(help: "Also list every step: kernel, workgroups, the tensors and weight images it binds, its ONNX nodes.")
    var steps = false

    @Option(help: ArgumentHelp("Also draw the planned device memory over the steps (arena, resident and live "
                               + "streamed weights, the budget) as an SVG chart.", valueName: "memory.svg"))
    var timeline: String?

    mutating func run() throws {
        let loaded = try BundleReader.open(path: bundle, verifyChecksums: verifyChecksums)
        print(BundleInspector.describe(loaded))
        if steps { print(BundleInspector.stepTable(loaded.bundle)) }
        if let timeline {
            let chart = MemoryTimeline(bundle: loaded.bundle)
                .svg(title: "\(loaded.bundle.meta.modelName): planned device memory")
            do {
                try Data(chart.utf8).write(to: URL(fileURLWithPath: timeline))
            } catch {
                throw ValidationError("--timeline \(timeline): cannot write: \(error.localizedDescription)")
            }
            print("wrote \(timeline)")
        }
    }
}

extension Precision: ExpressibleByArgument {}
extension TensorCores: ExpressibleByArgument {}
extension AttentionFusion: ExpressibleByArgument {}

/// Makes the folder of the bundle to write, with its parents; a directory at the bundle's path is an error.
func prepareOutput(_ path: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw ValidationError("--output \(path): is a directory; give the bundle's file name, e.g. \(path)/model.fmb")
    }
    let folder = (path as NSString).deletingLastPathComponent
    guard !folder.isEmpty else { return }
    do {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    } catch {
        throw ValidationError("--output \(path): cannot create its folder \(folder): \(error.localizedDescription)")
    }
}

/// Reads a cost profile written by `fmrun --profile-out`.
func readProfile(_ path: String) throws -> CostProfile {
    let data: Data
    do {
        data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw ValidationError("--profile \(path): cannot read: \(error.localizedDescription)")
    }
    do {
        return try JSONDecoder().decode(CostProfile.self, from: data)
    } catch {
        throw ValidationError("--profile \(path): not a FlashMem cost profile: \(error)")
    }
}

/// "1MiB", "512KiB", "2GiB", "1000000" → bytes.
func parseBytes(_ text: String, option: String) throws -> UInt64 {
    let units: [(String, UInt64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1_000_000_000),
                                     ("MB", 1_000_000), ("KB", 1000), ("B", 1)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        if let value = Double(text.dropLast(suffix.count)), value > 0 { return UInt64(value * Double(scale)) }
    }
    if let value = UInt64(text), value > 0 { return value }
    throw ValidationError("\(option) expects a size such as 1MiB or 512KiB, got '\(text)'")
}

/// "256MiB", "25%", "auto" → a budget.
func parseBudget(_ text: String) throws -> MemoryBudget {
    if text == "auto" { return .auto }
    if text.hasSuffix("%") {
        guard let percent = Double(text.dropLast()), percent > 0, percent <= 100 else {
            throw ValidationError("--memory-budget expects BYTES, N% with 0 < N ≤ 100, or auto; got '\(text)'")
        }
        return .fractionOfWeights(percent / 100)
    }
    return .bytes(try parseBytes(text, option: "--memory-budget"))
}

/// This process's peak resident set so far (`getrusage(RUSAGE_SELF).ru_maxrss`, which Linux gives in KiB).
func peakResidentBytes() -> UInt64 {
    var usage = rusage()
    #if os(Linux)
    let who = __rusage_who_t(RUSAGE_SELF.rawValue)
    #else
    let who = RUSAGE_SELF
    #endif
    guard getrusage(who, &usage) == 0 else { return 0 }
    return UInt64(max(usage.ru_maxrss, 0)) * 1024
}

func formatBytes(_ bytes: UInt64) -> String {
    let value = Double(bytes)
    if value >= 1_073_741_824 { return String(format: "%.2f GiB", value / 1_073_741_824) }
    if value >= 1_048_576 { return String(format: "%.2f MiB", value / 1_048_576) }
    if value >= 1024 { return String(format: "%.1f KiB", value / 1024) }
    return "\(bytes) B"
}

func formatSeconds(_ seconds: Double) -> String {
    seconds >= 1 ? String(format: "%.2f s", seconds) : String(format: "%.2f ms", seconds * 1000)
}
