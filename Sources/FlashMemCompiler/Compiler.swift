// The compiler driver: ONNX → graph IR → lowered kernels → memory plan, chunks, schedule → FMBundle.

import FMBFormat

public struct CompileOptions: Sendable {
    public var precision: Precision = .fp32
    /// Fixed shapes for inputs whose dimensions the model leaves open, by input name.
    public var inputShapes: [String: [Int]] = [:]
    /// Target size of one weight chunk; chunks are whole rows of one image layer.
    public var chunkBytes: Int = 1 << 20
    public var codec: Codec = .none
    /// Device bytes the run may use at any moment: arena + weights (resident and streamed).
    public var memoryBudget: MemoryBudget = .unbounded
    public var costModel: CostModel = .h200
    /// A measured profile of this model (`fmrun --profile-out`): the plan uses its step times and streaming
    /// bandwidth instead of `costModel`'s estimates. Compiling fails when it was measured on another program.
    public var profile: CostProfile?
    public var modelName: String?
    /// Inputs fixed to values at compile time (`--pin-input NAME=v,...`), by input name: they become constants,
    /// and what depends on them is folded.
    public var pinnedInputs: [String: [Double]] = [:]
    /// The most bytes one weight image may take; larger weights are cut into pieces (Lowering.lower). nil = no limit.
    public var maxImageBytes: Int?
    /// Whether Gemm / MatMul may run on tensor cores (cooperative matrices; `TensorCores`).
    public var tensorCores: TensorCores = .auto
    /// The tensor-core tile of every product instead of the rule's (`CoopmatTile.parse`); for tuning.
    public var coopmatTile: CoopmatTile?
    /// Which attentions become one fused attention.comp step (`AttentionFusion`).
    public var attentionFusion: AttentionFusion = .auto
    /// Whether attentions left unfused are computed in blocks of query rows (`SplitAttention`).
    public var splitAttention: SplitAttention = .auto
    /// The fused attention's workgroup size instead of the target's (`CostModel.attentionInvocations`); for tuning.
    public var attentionInvocations: Int?

    public init() {}

    /// The most bytes of scores one block of an unfused attention may take (`AttentionSplit`), nil: no split.
    /// `auto` splits at `SplitAttention.autoBlockBytes` where the compile has a byte or fraction budget (memory is
    /// then what the user asked to save) and not otherwise (the blocks cost GPU time; see `SplitAttention`).
    public var splitAttentionBytes: Int? {
        switch splitAttention {
        case .off: return nil
        case .blockBytes(let bytes): return bytes
        case .auto:
            switch memoryBudget {
            case .bytes, .fractionOfWeights: return SplitAttention.autoBlockBytes
            case .unbounded, .auto: return nil
            }
        }
    }

    /// The rule `Lowering.lower` fuses attentions by: every one (`on`), none (`off`), or `auto`: where the target
    /// measured the fused kernel at least as fast (`CostModel.fusedAttentionMaxKeys`) or where the unfused scores
    /// would not fit one of its storage buffers (`CostModel.storageBufferRange`). Attentions left unfused are split
    /// by `splitAttentionBytes`.
    public var attentionFusionRule: AttentionFusionRule {
        var rule: AttentionFusionRule
        switch attentionFusion {
        case .on: rule = .always
        case .off: rule = .never
        case .auto: rule = AttentionFusionRule(maxKeys: costModel.fusedAttentionMaxKeys,
                                               scoresAbove: costModel.storageBufferRange)
        }
        rule.splitScoresAbove = splitAttentionBytes ?? .max
        rule.invocations = attentionInvocations ?? costModel.attentionInvocations
        return rule
    }

    /// Whether this compile lowers with cooperative-matrix kernels: `on` (fp16 only), `auto` where the target
    /// has them (`CostModel.cooperativeMatrix`) and the weights are fp16, never for `off`.
    /// `file` names the model in the error.
    public func usesCooperativeMatrix(file: String) throws -> Bool {
        switch tensorCores {
        case .off: return false
        case .auto: return costModel.cooperativeMatrix && precision == .fp16
        case .on:
            guard precision == .fp16 else {
                throw CompileError(file: file, "tensor cores (--tensor-cores on) need --precision fp16: "
                                   + "the cooperative-matrix kernels multiply fp16 weights")
            }
            return true
        }
    }
}

/// Tensor-core (cooperative-matrix) kernels for Gemm / MatMul with a constant B: `auto` uses them where the
/// compile target's device has them (`CostModel.cooperativeMatrix`, e.g. `--target h200`) for fp16 bundles;
/// `on` wherever the shape suits (the bundle then runs only on a device with VK_NV_cooperative_matrix), products of
/// two activations included (matmul_cm.comp, not yet measured on a device, so `auto` leaves them on matmul.comp);
/// `off` never (what tests on lavapipe compile with). Shapes: `Lowering.coopmatTile`.
public enum TensorCores: String, Sendable, CaseIterable {
    case auto, on, off
}

/// Fused attention (attention.comp: the scores never reach the arena) or the unfused steps (two products, the
/// masks and a softmax, each through the arena): `auto` picks per attention by the target
/// (`CompileOptions.attentionFusionRule`), `on` fuses every attention the pass matches, `off` none.
public enum AttentionFusion: String, Sendable, CaseIterable {
    case auto, on, off
}

/// Attentions left unfused (`AttentionFusion`) whose scores would take more than a block's bytes computed in blocks
/// of query rows (`AttentionSplit`): the arena then holds one block's scores instead of all of them, at a cost in
/// GPU time (each block's products have fewer rows to spread over the GPU: the likely cause, not measured apart).
/// On an H100, 2026-12-06 (`Benchmarks/ab-bench.sh`, fp16, 32 MiB blocks against none, Σ per-step GPU time):
/// SD-UNet arena 1.02 GiB → 104 MiB at 59.7 → 87.0 ms, SAM 2 1.09 GiB → 503 MiB at 161 → 178 ms, Whisper-Medium
/// 299 → 98 MiB at 53.3 → 64.7 ms, Depth Anything S 102 → 82 MiB at 11.3 → 13.0 ms; outputs equal bit for bit.
public enum SplitAttention: Equatable, Sendable {
    /// Blocks of `autoBlockBytes` where the compile has a byte or fraction memory budget, none otherwise.
    case auto
    case off
    case blockBytes(Int)

    /// 32 MiB: SAM 2's and SD-UNet's 512 MiB of scores (8 heads × 4096²) in 16 blocks of 256 rows.
    public static let autoBlockBytes = 32 << 20
}

/// Figures about a compile, for the CLI and tests.
public struct CompileReport: Sendable {
    /// Nodes of the prepared graph (after simplification), which lowering turns into steps.
    public var nodes = 0
    /// Nodes the simplification removed: Constant nodes inlined, constants folded, If branches inlined or
    /// dropped, aliases and dead nodes removed (nested graphs included).
    public var foldedNodes = 0
    /// Steps whose kernel only moves data (`BundleInspector.isCopyKernel`).
    public var copySteps = 0
    public var steps = 0
    /// Steps whose kernel runs on tensor cores (cooperative matrices).
    public var cooperativeMatrixSteps = 0
    public var kernels = 0
    public var spirvModules = 0
    public var arenaBytes: UInt64 = 0
    public var arenaUnsharedBytes: UInt64 = 0
    /// The most activation bytes live at one step: the least any arena placement needs.
    public var arenaLivePeakBytes: UInt64 = 0
    /// Where that peak is: the step (its label) and the largest tensors live there (`ArenaPlan.livePeakTensors`).
    public var arenaPeakStep: String?
    public var arenaPeakTensors: [(name: String, bytes: UInt64)] = []
    public var weightBytes: UInt64 = 0
    public var storedBytes: UInt64 = 0
    public var chunks = 0
    /// The load plan: budget, resident and streamed bytes, predicted and bound times, which method won.
    public var plan = LoadPlanReport()
    /// Weights cut into several images under `CompileOptions.maxImageBytes`.
    public var splits: [WeightSplit] = []
}

public struct CompiledModel {
    public var bundle: FMBundle
    /// The data section.
    public var payload: [UInt8]
    public var report: CompileReport
}

public enum Compiler {
    public static let version = "0.1.0"

    /// Compiles the model at `path` into a bundle held in memory (tests, fmc-conformance). The payload is one
    /// array as large as the packed weights: for big models use `compile(path:options:writingTo:progress:)`.
    public static func compile(path: String, options: CompileOptions,
                               progress: (String) -> Void = { _ in }) throws -> CompiledModel {
        let weights = WeightWriter(payload: PayloadBuilder(), options: options)
        let (bundle, report) = try compile(path: path, options: options, weights: weights, progress: progress)
        return CompiledModel(bundle: bundle, payload: weights.payload.bytes, report: report)
    }

    /// Compiles the model at `path` into the bundle file `output` (what `fmc compile` does), streaming: each
    /// weight is packed, cut into chunks and written to a temporary file beside `output` as soon as lowering
    /// lays it out, then dropped; the tables follow at the end and the file is renamed to `output`. On any error
    /// the temporary file is removed and nothing is written at `output`. Memory stays near a constant plus a
    /// small multiple of the largest weight (README "Compiler memory"), not the model's size. The bytes equal
    /// `BundleWriter.serialize` of the in-memory `compile`'s result.
    ///
    /// - Throws: `CompileError` for the model, `FormatError` for an invalid bundle, `FileError` for I/O.
    public static func compile(path: String, options: CompileOptions, writingTo output: String,
                               progress: (String) -> Void = { _ in }) throws -> CompileReport {
        let writer = try StreamingBundleWriter(path: output)
        do {
            let weights = WeightWriter(payload: writer.payloadBuilder(), options: options)
            let (bundle, report) = try compile(path: path, options: options, weights: weights, progress: progress)
            progress("writing \(output)")
            try writer.finish(bundle, payload: weights.payload)
            return report
        } catch {
            writer.abandon()
            throw error
        }
    }

    static func compile(path: String, options: CompileOptions, weights: WeightWriter,
                        progress: (String) -> Void) throws -> (FMBundle, CompileReport) {
        progress("importing \(path)")
        let (graph, folded) = try ONNXImporter.prepare(path: path, inputShapes: options.inputShapes,
                                                       pinnedInputs: options.pinnedInputs)
        progress("lowering \(graph.nodes.count) nodes (\(options.precision.rawValue))")
        let limit = options.maxImageBytes ?? defaultImageLimit(graph, options: options)
        var meter = WeightProgress(expected: expectedWeightBytes(graph, precision: options.precision))
        let cooperativeMatrix = try options.usesCooperativeMatrix(file: path)
        let program = try withoutActuallyEscaping(progress) { progress in
            try Lowering.lower(graph, precision: options.precision, maxImageBytes: limit,
                               cooperativeMatrix: cooperativeMatrix,
                               cooperativeMatrixProducts: options.tensorCores == .on, coopmatTile: options.coopmatTile,
                               attentionFusion: options.attentionFusionRule, compiler: ShaderCompiler()) { image in
                weights.add(image)  // the lowering then lets the source pages it read go
                if let line = meter.packed(UInt64(image.byteSize)) { progress(line) }
            }
        }
        if let failure = weights.failure { throw failure }
        if let line = meter.summary { progress(line) }
        let name = options.modelName ?? baseName(path)
        var (bundle, report) = try assemble(program, name: name, options: options, weights: weights,
                                            progress: progress)
        report.nodes = graph.nodes.count
        report.foldedNodes = folded
        return (bundle, report)
    }

    /// Packed weight bytes expected from the float initializers at `precision` (the default image limit's base
    /// and progress' total; padding and constants kept in the arena make the real figure differ).
    static func expectedWeightBytes(_ graph: Graph, precision: Precision) -> UInt64 {
        let scale = precision == .fp16 ? 2 : 4
        return UInt64(graph.initializers.values.filter { $0.dtype.isFloat }.reduce(0) { $0 + $1.elementCount * scale })
    }

    /// The largest weight image when the user sets none: an eighth of the weights' share of the budget, so a
    /// step's images and the next ones' prefetches fit together (between 1 MiB and 64 MiB); with no budget or
    /// `auto`, 64 MiB. Never more than one allocation segment. The weights' share is estimated from the float
    /// initializers at the bundle's precision before lowering (packing pads a little).
    static func defaultImageLimit(_ graph: Graph, options: CompileOptions) -> Int {
        let cap = 64 << 20
        let weights = Int(expectedWeightBytes(graph, precision: options.precision))
        let share: Int
        switch options.memoryBudget {
        case .unbounded, .auto: return cap
        case .bytes(let bytes): share = Int(min(bytes, UInt64(Int.max / 2)))
        case .fractionOfWeights(let f): share = Int(Double(weights) * f)
        }
        return min(cap, max(1 << 20, share / 8))
    }

    /// Turns a lowered program into a bundle: plans the arena, cuts and packs chunks, solves the schedule.
    public static func assemble(_ program: LoweredProgram, name: String, options: CompileOptions,
                                progress: (String) -> Void = { _ in }) throws -> CompiledModel {
        let weights = WeightWriter(payload: PayloadBuilder(), options: options)
        let (bundle, report) = try assemble(program, name: name, options: options, weights: weights,
                                            progress: progress)
        return CompiledModel(bundle: bundle, payload: weights.payload.bytes, report: report)
    }

    /// `assemble` into `weights`, which may hold the chunks of the program's first images already (written
    /// by lowering's image sink); the others are cut from their texels here, then the arena's constants follow.
    static func assemble(_ program: LoweredProgram, name: String, options: CompileOptions, weights: WeightWriter,
                         progress: (String) -> Void) throws -> (FMBundle, CompileReport) {
        var report = CompileReport()
        report.splits = program.splits

        // Kernels, with SPIR-V modules deduplicated.
        var spirv: [[UInt32]] = []
        var moduleIndex: [[UInt32]: UInt32] = [:]
        let kernels = program.kernels.map { spec -> Kernel in
            let module = moduleIndex[spec.spirv] ?? {
                spirv.append(spec.spirv)
                moduleIndex[spec.spirv] = UInt32(spirv.count - 1)
                return UInt32(spirv.count - 1)
            }()
            return Kernel(name: spec.name, spirv: module, bindings: spec.bindings,
                          pushConstantSize: UInt32(spec.pushConstantSize), workgroupSize: spec.workgroupSize,
                          specConstants: spec.specConstants)
        }

        // Weight images, cut into chunks of whole rows (those lowering streamed out are cut already).
        if weights.imageCount < program.images.count {
            progress("packing \(program.images.count - weights.imageCount) weight images")
        }
        for weight in program.images[weights.imageCount...] {
            weights.add(weight)
        }
        if let failure = weights.failure { throw failure }
        let images = program.images.map {
            Image(name: $0.name, format: $0.format, width: UInt32($0.width), height: UInt32($0.height),
                  layers: UInt32($0.layers))
        }
        let chunksOf = weights.chunksOf
        report.weightBytes = weights.weightBytes
        report.storedBytes = weights.storedBytes

        // Arena, with resident constants stored in the data section.
        let arena = try ArenaPlanner.plan(program) { tensor in
            weights.payload.appendConstant(tensor.constant!)
        }

        // Program.
        var steps: [Step] = []
        var firstUse = [Int](repeating: Int.max, count: images.count)
        var lastUse = [Int](repeating: -1, count: images.count)
        for (k, lowered) in program.steps.enumerated() {
            let bindings = try lowered.bindings.map { binding -> BindingRef in
                switch binding {
                case .tensor(let tensor):
                    guard let index = arena.index[tensor] else {
                        throw CompileError(file: name, node: lowered.label, "binds tensor '\(tensor)', which has no arena placement")
                    }
                    return .tensor(index)
                case .image(let image):
                    firstUse[image] = min(firstUse[image], k)
                    lastUse[image] = max(lastUse[image], k)
                    return .image(UInt32(image))
                }
            }
            let predicate = try lowered.predicate.map { p -> StepPredicate in
                guard let index = arena.index[p.tensor] else {
                    throw CompileError(file: name, node: lowered.label, "runs on the condition '\(p.tensor)', which has no arena placement")
                }
                return StepPredicate(tensor: index, sense: p.sense)
            }
            steps.append(Step(kernel: UInt32(lowered.kernel), groups: lowered.groups, bindings: bindings,
                              pushConstants: lowered.pushConstants, label: lowered.label, predicate: predicate))
        }
        for (i, image) in images.enumerated() where lastUse[i] < 0 {
            throw CompileError(file: name, "weight image '\(image.name)' is never read")
        }

        // The load plan under one budget: resident set, issue steps, slots.
        progress("planning weight loads (budget: \(options.memoryBudget))")
        var stepSeconds = program.steps.map {
            options.costModel.seconds(flops: $0.flops, bytes: $0.bytesRead, work: $0.work)
        }
        var model = options.costModel
        if let profile = options.profile {
            if let mismatch = profile.mismatch(stepLabels: steps.map(\.label)) {
                throw CompileError(file: name, "the cost profile does not match this model: \(mismatch)")
            }
            stepSeconds = profile.stepSeconds
            model.transferBandwidth = profile.streamingBandwidth ?? model.transferBandwidth
        }
        let (schedule, placement, planReport) = try LoadPlanning.plan(
            LoadPlanning.Input(stepSeconds: stepSeconds, images: images, firstUse: firstUse, lastUse: lastUse,
                               chunksOf: chunksOf, chunkCount: weights.chunks.count,
                               arenaBytes: arena.arenaSize, model: model),
            budget: options.memoryBudget, name: name)

        func io(_ binding: IOBinding) throws -> IOBinding {
            var binding = binding
            guard let index = arena.index[binding.name] else {
                throw CompileError(file: name, "model input/output '\(binding.name)' has no arena placement")
            }
            binding.tensor = index
            return binding
        }
        let requirements = DeviceRequirements(
            pushConstantBytes: UInt32(program.kernels.map(\.pushConstantSize).max() ?? 0),
            storageBufferRange: arena.tensors.map(\.size).max() ?? 0,
            imageDimension2D: images.map { max($0.width, $0.height) }.max() ?? 0,
            imageArrayLayers: images.map(\.layers).max() ?? 0,
            workgroupInvocations: program.kernels.map { $0.workgroupSize.reduce(1, *) }.max() ?? 0,
            sharedMemoryBytes: UInt32(program.kernels.map(\.sharedMemoryBytes).max() ?? 0),
            features: program.kernels.reduce(DeviceFeatures()) { $0.union($1.features) })
        let meta = Meta(modelName: name, producer: "fmc \(version)", inputs: try program.inputs.map(io),
                        outputs: try program.outputs.map(io), requirements: requirements, arenaSize: arena.arenaSize)
        let checks = try program.checks.map { check -> RuntimeCheck in
            guard let index = arena.index[check.tensor] else {
                throw CompileError(file: name, "the check of \(check.node) has no arena placement")
            }
            return RuntimeCheck(kind: check.kind, tensor: index, node: check.node, bound: Int64(check.bound))
        }
        let bundle = FMBundle(meta: meta, spirv: spirv, kernels: kernels, program: steps, tensors: arena.tensors,
                              images: images, chunks: weights.chunks, schedule: schedule, placement: placement,
                              checks: checks)

        report.steps = steps.count
        report.cooperativeMatrixSteps = program.steps.filter { program.kernels[$0.kernel].usesCooperativeMatrix }.count
        report.copySteps = steps.filter { BundleInspector.isCopyKernel(kernels[Int($0.kernel)].name) }.count
        report.kernels = kernels.count
        report.spirvModules = spirv.count
        report.arenaBytes = arena.arenaSize
        report.arenaUnsharedBytes = arena.unsharedSize
        report.arenaLivePeakBytes = arena.livePeakSize
        report.arenaPeakStep = program.steps.indices.contains(arena.livePeakStep)
            ? "step \(arena.livePeakStep) (\(program.steps[arena.livePeakStep].label))" : nil
        report.arenaPeakTensors = arena.livePeakTensors
        report.chunks = weights.chunks.count
        report.plan = planReport
        report.plan.submissions = bundle.streamingSubmissions
        return (bundle, report)
    }

    static func baseName(_ path: String) -> String {
        let file = path.split(separator: "/").last.map(String.init) ?? path
        return file.hasSuffix(".onnx") ? String(file.dropLast(5)) : file
    }
}
