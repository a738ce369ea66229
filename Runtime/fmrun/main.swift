// fmrun: runs a compiled `.fmb` bundle on a Vulkan device. A thin shell over FlashMemRuntime:
// parse arguments, read .npy inputs, make a Device and a Session, run, write .npy outputs, report.
// Results go to stdout, progress and errors to stderr.

import ArgumentParser
import FlashMemRuntime
#if canImport(FoundationEssentials)
import FoundationEssentials  // JSONEncoder without the rest of Foundation
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

ProcessClock.touch()

struct FMRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fmrun",
        abstract: "Run a FlashMem bundle (.fmb) on a Vulkan device, streaming weights while kernels run.")

    @Argument(help: "The compiled bundle (.fmb).")
    var model: String?

    @Option(help: ArgumentHelp("Run several bundles in order under one --memory-budget, passing outputs to inputs "
                               + "by --map; --runs N repeats the whole chain. A path ending in .json is a manifest "
                               + "of fmc plan-pipeline: its bundles and budget.", valueName: "a.fmb,b.fmb,…"))
    var pipeline: String?

    @Option(name: .customLong("memory-budget"),
            help: ArgumentHelp("With --pipeline: device memory all models share (their arenas + weight spaces), e.g. "
                               + "512MiB; a model's memory is taken back for the next when they do not fit together. "
                               + "Default: no limit.", valueName: "BYTES"))
    var memoryBudget: String?

    @Option(name: .customLong("map"),
            help: ArgumentHelp("With --pipeline: feed an output of an earlier model to an input of a later one "
                               + "(models by file stem or index; repeat).", valueName: "a.OUT=b.IN"))
    var maps: [String] = []

    @Flag(name: .customLong("all-outputs"),
          help: "With --pipeline: write every model's outputs, to DIR/<stem>/, instead of the last model's.")
    var allOutputs = false

    @Flag(name: .customLong("no-prefetch"),
          help: "With --pipeline: do not copy model i+1's resident weights while model i runs its last steps.")
    var noPrefetch = false

    @Option(name: .customLong("input"), help: ArgumentHelp("An input as NAME=file.npy (repeat for each input).",
                                                         valueName: "NAME=file.npy"))
    var inputs: [String] = []

    @Option(name: .customLong("output-dir"), help: "Directory for the outputs, written as <output name>.npy.")
    var outputDir: String?

    @Flag(help: "Load every weight once and keep it resident, instead of streaming them on every run.")
    var preload = false

    @Option(help: "Warm runs after the first (cold) run; latency is reported as their median, min and max.")
    var runs: Int = 3

    @Option(help: "Vulkan device index (see --list-devices); default: discrete GPU first, then integrated, virtual, CPU.")
    var device: Int?

    @Flag(name: .customLong("outputs-from-last-run"),
          help: "Write the outputs of the last warm run (which copies only the streamed weights) instead of the first.")
    var outputsFromLastRun = false

    @Flag(help: "List Vulkan devices and exit.")
    var listDevices = false

    @Flag(help: "Also check the data section and every chunk's checksum when opening the bundle (reads the whole file).")
    var verifyChecksums = false

    @Flag(name: .customLong("trust-bundle"),
          help: "Do not check weight chunks against their checksums as they stream (checked by default, once each).")
    var trustBundle = false

    @Flag(help: "Time every step with GPU timestamps and print the slowest steps.")
    var profile = false

    @Option(name: .customLong("profile-out"),
            help: ArgumentHelp("Also write the measured cost profile as JSON (implies --profile): per-step GPU times "
                               + "(median of the warm runs), copy and decode bandwidth; fmc compile --profile reads it.",
                               valueName: "profile.json"))
    var profileOut: String?

    @Option(help: ArgumentHelp("Write a Chrome / Perfetto trace (trace-event JSON) of the first and the last run: "
                               + "kernels, copies, host decode and waits.", valueName: "trace.json"))
    var trace: String?

    @Option(name: .customLong("host-read"),
            help: ArgumentHelp("How uncompressed chunks reach the staging ring: mmap (memcpy from the mapping) or "
                               + "pread (the kernel copies from the page cache)."))
    var hostRead: String = "pread"

    @Option(name: .customLong("staging-mib"),
            help: ArgumentHelp("Size of the pinned staging ring in MiB; one that holds a warm run's streamed set keeps "
                               + "it decoded, so later runs only copy."))
    var stagingMiB: UInt64 = 64

    @Option(name: .customLong("hold-mib"),
            help: ArgumentHelp("Largest streamed set in MiB that the staging ring grows to hold after the first run, so "
                               + "warm runs only copy (default: 512, or 1/16 of the machine's memory if less; 0: never)."))
    var holdMiB: UInt64?

    @Option(name: .customLong("wait-timeout"),
            help: ArgumentHelp("Longest the host waits for the GPU at any one point, in seconds; a CPU Vulkan (lavapipe) "
                               + "running a large model may need more.", valueName: "SECONDS"))
    var waitTimeout: Double = 600

    @Flag(name: .customLong("signals-before-waits"),
          help: ArgumentHelp("Submit every semaphore wait of a streamed run only after the submission that signals it "
                             + "(compute batches then follow the streamer's copies on the host)."))
    var signalsBeforeWaits = false

    @Option(name: .customLong("decode-threads"),
            help: ArgumentHelp("Most host threads decoding chunks into the staging ring at once (0: every core).",
                               valueName: "N"))
    var decodeThreads = 0

    @Flag(name: .customLong("copy-per-chunk"),
          help: ArgumentHelp("One copy command per weight chunk, instead of one per run of chunks that continue each "
                             + "other in an image (for measuring what merging saves)."))
    var copyPerChunk = false

    @Flag(help: ArgumentHelp("Drop the bundle's pages from the OS page cache before opening it, so the cold run "
                             + "reads the file from storage (posix_fadvise; pages mapped elsewhere stay)."))
    var evictCache = false

    func validate() throws {
        if !listDevices && model == nil && pipeline == nil {
            throw ValidationError("missing the bundle path (or --pipeline, or --list-devices)")
        }
        if model != nil && pipeline != nil { throw ValidationError("give a bundle or --pipeline, not both") }
        if pipeline == nil && (memoryBudget != nil || !maps.isEmpty || allOutputs || noPrefetch) {
            throw ValidationError("--memory-budget, --map, --all-outputs and --no-prefetch go with --pipeline")
        }
        if pipeline != nil && profileOut != nil { throw ValidationError("--profile-out is per bundle; run one bundle for it") }
        if runs < 0 { throw ValidationError("--runs must be ≥ 0") }
        if outputsFromLastRun && runs == 0 { throw ValidationError("--outputs-from-last-run needs --runs ≥ 1") }
        if HostRead(rawValue: hostRead) == nil { throw ValidationError("--host-read must be pread or mmap") }
        if stagingMiB == 0 { throw ValidationError("--staging-mib must be ≥ 1") }
        if decodeThreads < 0 { throw ValidationError("--decode-threads must be ≥ 0") }
        if !(waitTimeout > 0) { throw ValidationError("--wait-timeout must be a number of seconds > 0") }
    }

    /// The options every session of this invocation runs with (one bundle or a pipeline's).
    func sessionOptions() -> SessionOptions {
        var options = SessionOptions(loadMode: preload ? .preload : .streaming, stagingBytes: stagingMiB << 20,
                                     profile: profile || profileOut != nil, waitTimeoutSeconds: waitTimeout,
                                     trace: trace != nil)
        options.hostRead = HostRead(rawValue: hostRead)!
        if let holdMiB { options.holdStreamedSetBytes = holdMiB << 20 }
        options.verifyChunks = !trustBundle
        options.signalsBeforeWaits = signalsBeforeWaits
        options.copyPerChunk = copyPerChunk
        options.decodeThreads = decodeThreads
        return options
    }

    func run() throws {
        try execute()
        // With FLASHMEM_VALIDATION=1: the device and session are gone (their destruction was validated too).
        if VulkanValidation.errorCount > 0 {
            progress("\(VulkanValidation.errorCount) Vulkan validation error(s) (see above)")
            throw ExitCode(3)
        }
    }

    private func execute() throws {
        if listDevices {
            for info in try Device.list() { print(info.description) }
            return
        }
        if let pipeline {
            try runPipeline(pipeline)
            return
        }
        let path = model!
        if evictCache && !PageCache.evict(path) { progress("could not evict \(path) from the page cache") }
        let resident = PageCache.residentFraction(path)
        progress("opening \(path)")
        var startup: [(String, Double)] = [("process", ProcessClock.sinceStart())]
        let loaded = try openBundle(path: path, verifyChecksums: verifyChecksums)
        let meta = loaded.bundle.meta
        let given = try readInputs(expected: meta.inputs)

        if let outputDir { try makeDirectory(outputDir) }  // before the run, so a bad path fails at once
        startup.append(("bundle and inputs", ProcessClock.sinceStart()))
        let device = try Device(options: DeviceOptions(deviceIndex: self.device, applicationName: "fmrun"))
        startup.append(("device", ProcessClock.sinceStart()))
        progress("device [\(device.info.index)] \(device.info.name) (\(device.info.type.rawValue)); "
                 + "transfer queue: \(device.transferQueueKind.rawValue)")
        let options = sessionOptions()
        let baseline = device.memoryBudget()
        let session = try Session(bundle: loaded, device: device, options: options)
        startup.append(("session", ProcessClock.sinceStart()))

        progress("cold run")
        let outputs = try session.run(inputs: given)
        let coldStats = session.lastStats!
        if let outputDir, !outputsFromLastRun { try write(outputs, to: outputDir) }
        let cold = ProcessClock.sinceStart()

        var warm: [Double] = []
        var warmStats: [RunStats] = []
        for index in 0..<runs {
            progress("warm run \(index + 1)/\(runs)")
            let outputs = try session.run(inputs: given)
            if let outputDir, outputsFromLastRun, index == runs - 1 { try write(outputs, to: outputDir) }
            warm.append(session.lastStats!.wallSeconds)
            warmStats.append(session.lastStats!)
        }
        report(session: session, cold: cold, coldStats: coldStats, warm: warm, warmStats: warmStats,
               resident: resident, baseline: baseline, startup: startup)
        if let profileOut {
            let profile = costProfile(session: session, coldStats: coldStats, warmStats: warmStats)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeFile(String(decoding: try encoder.encode(profile), as: UTF8.self) + "\n", to: profileOut)
            progress("wrote \(profileOut) (\(profile.stepSeconds.count) steps, copies timed by \(profile.transferTiming.rawValue))")
        }
        if let trace {
            var runs = [(name: "first run", trace: coldStats.trace ?? RunTrace())]
            if let last = warmStats.last { runs.append((name: "warm run \(warmStats.count)", trace: last.trace ?? RunTrace())) }
            try writeFile(RunTrace.chromeTraceJSON(runs: runs), to: trace)
            progress("wrote \(trace) (\(runs.count) runs; GPU clock: \(runs[0].trace.clock))")
        }
        if outputDir == nil {
            progress("wrote no outputs (no --output-dir): \(meta.outputs.map(\.name).joined(separator: ", ")); "
                     + "--output-dir DIR writes each as DIR/<name>.npy")
        }
    }

    // MARK: Profile and trace

    /// Step times: the per-step median of the warm runs (the first run's without warm runs). Copy and decode
    /// rates: over the warm runs that copied anything; when none did (preload), the copy rate is the first run's
    /// and the decode rate is left out: a first run also reads the bundle from storage where it is not in the page
    /// cache (1.9 GB/s for ViT-B/16 on the H100 machine, 53 GB/s in its warm streamed runs), which the streamed runs a
    /// plan is for do not pay.
    private func costProfile(session: Session, coldStats: RunStats, warmStats: [RunStats]) -> CostProfile {
        let timed = warmStats.isEmpty ? [coldStats] : warmStats
        let perRun = timed.compactMap(\.stepSeconds)
        let steps = session.bundle.bundle.program
        let stepSeconds = steps.indices.map { k in median(perRun.map { $0[k] }) }
        let copying = warmStats.filter { $0.bytesStreamed > 0 && $0.transferSeconds != nil }
        let measured = copying.isEmpty ? [coldStats] : copying
        let bytes = measured.reduce(UInt64(0)) { $0 + $1.bytesStreamed }
        let transfer = measured.allSatisfy({ $0.transferSeconds != nil })
            ? measured.reduce(0.0) { $0 + $1.transferSeconds! } : nil
        return CostProfile(model: session.bundle.bundle.meta.modelName, device: session.device.info.name,
                           loadMode: session.options.loadMode.rawValue, warmRuns: warmStats.count,
                           stepLabels: steps.map(\.label), stepSeconds: stepSeconds, bytesStreamed: bytes,
                           transferSeconds: transfer, transferTiming: measured[0].transferTiming,
                           decodeSeconds: copying.isEmpty ? 0 : measured.reduce(0.0) { $0 + $1.decodeSeconds })
    }

    func writeFile(_ text: String, to path: String) throws {
        guard let file = fopen(path, "w") else {
            throw NPYError(path: path, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        let bytes = Array(text.utf8)
        guard fwrite(bytes, 1, bytes.count, file) == bytes.count else {
            throw NPYError(path: path, reason: "write failed: \(String(cString: strerror(errno)))")
        }
    }

    // MARK: Inputs and outputs

    private func readInputs(expected: [IOBinding]) throws -> [HostTensor] {
        let expectedList = expected.map { "\($0.name): \($0.elementType) \($0.shape)" }
        var tensors: [HostTensor] = []
        var seen = Set<String>()
        for spec in inputs {
            guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex else {
                throw ValidationError("--input \(spec): expected NAME=file.npy")
            }
            let name = String(spec[..<equals]), file = String(spec[spec.index(after: equals)...])
            guard expected.contains(where: { $0.name == name }) else {
                throw RuntimeError.inputMismatch(reason: "the model has no input \"\(name)\"", expected: expectedList)
            }
            guard seen.insert(name).inserted else {
                throw RuntimeError.inputMismatch(reason: "input \"\(name)\" given twice", expected: expectedList)
            }
            var tensor = try NPY.read(path: file)
            tensor.name = name
            tensors.append(tensor)
        }
        let missing = expected.filter { !seen.contains($0.name) }.map(\.name)
        guard missing.isEmpty else {
            throw RuntimeError.inputMismatch(reason: "missing inputs: " + missing.joined(separator: ", ")
                                             + " (give each with --input NAME=file.npy)", expected: expectedList)
        }
        return tensors
    }

    /// `mkdir -p`: the directory and its missing parents. A file in the way is an error naming it.
    func makeDirectory(_ directory: String) throws {
        var path = directory.hasPrefix("/") ? "/" : ""
        for component in directory.split(separator: "/") {
            path += (path.isEmpty || path.hasSuffix("/") ? "" : "/") + component
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw NPYError(path: path, reason: "cannot create the output directory: \(String(cString: strerror(errno)))")
            }
            var info = stat()
            if stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR {
                throw NPYError(path: path, reason: "is not a directory (--output-dir \(directory))")
            }
        }
    }

    func write(_ outputs: [HostTensor], to directory: String) throws {
        try makeDirectory(directory)
        for tensor in outputs {
            // ONNX names may hold '/' (e.g. "/encoder/Add_output_0"): keep the file inside the directory.
            let file = tensor.name.map { $0 == "/" ? "_" : $0 }
            let path = directory + "/" + String(file) + ".npy"
            try NPY.write(tensor, path: path)
            progress("wrote \(path) (\(tensor.elementType) \(tensor.shape))")
        }
    }

    // MARK: Report

    private func report(session: Session, cold: Double, coldStats: RunStats, warm: [Double], warmStats: [RunStats],
                        resident: Double?, baseline: [HeapBudget], startup: [(String, Double)]) {
        let memory = session.memory
        print("model:            \(session.bundle.bundle.meta.modelName) (\(session.bundle.path))")
        print("device:           [\(session.device.info.index)] \(session.device.info.name)")
        print("load mode:        \(session.options.loadMode.rawValue)")
        let origin = ProcessClock.fromProcessStart ? "process start" : "main"
        let cache = resident.map { "\(Int(($0 * 100).rounded()))% of the bundle in the page cache at open" }
            ?? "page cache not measured"
        print("cold latency:     \(ms(cold)) (\(origin) → first output written; \(cache)"
              + (evictCache ? ", evicted first)" : ")"))
        let phases = zip(startup, [("", 0.0)] + startup).map { "\($0.0.0) \(ms($0.0.1 - $0.1.1))" }
        let s = session.startup
        print("start-up:         \(phases.joined(separator: ", ")) (session: pipelines \(ms(s.pipelineSeconds)), "
              + "cache \(s.pipelineCacheHit ? "hit" : "miss"); weights \(ms(s.weightSeconds)); copy programs "
              + "\(ms(s.programSeconds)) (staging ring \(ms(s.stagingSeconds)), \(ms(s.stagingWaitSeconds)) of it waited for); "
              + "recording \(ms(s.recordSeconds)); device: "
              + session.device.creationPhases.map { "\($0.phase) \(ms($0.seconds))" }.joined(separator: ", ") + ")")
        print("first run:        \(ms(coldStats.wallSeconds))"
              + (coldStats.loadSeconds.map { ", of which weight load \(ms($0))" } ?? ""))
        if warm.isEmpty {
            print("warm latency:     (no warm runs; use --runs N)")
        } else {
            let sorted = warm.sorted()
            print("warm latency:     median \(ms(median(warm))), min \(ms(sorted.first!)), max \(ms(sorted.last!)) "
                  + "over \(warm.count) runs")
        }
        let steady = warmStats.last ?? coldStats
        print("streamed / run:   \(bytes(steady.bytesStreamed)) in \(steady.chunksStreamed) chunks, "
              + "\(steady.copyCommands) copy commands (\(bytes(steady.bytesRead)) read from the bundle)")
        print("host waits / run: transfers \(ms(steady.transferWaitSeconds)), decode \(ms(steady.decodeSeconds)), "
              + "final compute \(ms(steady.computeWaitSeconds)); \(steady.submissions) submissions")
        print("host I/O / run:   inputs \(ms(steady.inputSeconds)), outputs \(ms(steady.outputSeconds)) "
              + "(checking, converting and copying through staging)")
        let budget = memory.budgetBytes > 0 ? "budget \(bytes(memory.budgetBytes))" : "no budget"
        print("device memory:    \(bytes(memory.deviceBytes)) own allocations, \(budget) (arena \(bytes(memory.arenaBytes)), "
              + "weights \(bytes(memory.weightBytes)) in \(memory.weightAllocations) allocation(s), "
              + "\(memory.residentImages) resident images\(memory.weightsAsPlanned || session.options.loadMode == .preload ? "" : ", slots re-placed for this device"))")
        if session.options.loadMode == .streaming {
            print("weights unaliased: \(bytes(memory.unaliasedWeightBytes)) (every image with bytes of its own)")
        }
        // The paper's average memory: what the run occupies over time (the allocations above stay constant).
        let occupied: Double
        if session.options.loadMode == .streaming {
            occupied = MemoryTimeline(bundle: session.bundle.bundle).timeAverage(stepSeconds: steady.stepSeconds)
        } else {
            occupied = Double(memory.arenaBytes + memory.weightBytes)
        }
        print("occupied average: \(bytes(UInt64(occupied))) (arena + resident + live streamed weights, time-weighted by "
              + (steady.stepSeconds != nil ? "measured step times" : "step count; --profile weighs by GPU time") + ")")
        print("host staging:     \(bytes(memory.stagingBytes)) ring, \(bytes(memory.ioStagingBytes)) I/O")
        let heaps = (warmStats + [coldStats]).flatMap(\.heaps).filter(\.deviceLocal)
        if let peak = heaps.max(by: { $0.usage < $1.usage }) {
            let before = baseline.first { $0.heap == peak.heap }?.usage ?? 0
            print("budget-reported:  \(bytes(peak.usage)) used of \(bytes(peak.budget)) budget on heap \(peak.heap), "
                  + "+\(bytes(peak.usage &- before)) since before the session (VK_EXT_memory_budget, whole process)")
        } else {
            print("budget-reported:  n/a (no VK_EXT_memory_budget)")
        }
        if let seconds = steady.transferSeconds, steady.bytesStreamed > 0, seconds > 0 {
            let how = steady.transferTiming == .gpuTimestamps ? "transfer-queue timestamps" : "host wall time"
            print("copy bandwidth:   \(gbps(Double(steady.bytesStreamed) / seconds)) (\(ms(seconds)) copying, \(how)); "
                  + "decode \(steady.decodeSeconds > 0 ? gbps(Double(steady.bytesStreamed) / steady.decodeSeconds) : "n/a")")
        }
        if let steps = steady.stepSeconds {
            let program = session.bundle.bundle.program
            let span = steady.stepSpanSeconds.map { ", \(ms($0)) from the first step's start to the last's end" } ?? ""
            print("profile:          \(ms(steps.reduce(0, +))) GPU time in \(steps.count) steps\(span); slowest:")
            for k in steps.indices.sorted(by: { steps[$0] > steps[$1] }).prefix(10) {
                print("  step \(k) \(ms(steps[k]))  \(program[k].label)")
            }
        }
    }
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func progress(_ message: String) {
    fputs("fmrun: \(message)\n", stderr)
}

func ms(_ seconds: Double) -> String {
    let value = seconds * 1000
    return value >= 100 ? "\(Int(value.rounded())) ms" : "\(Double(Int(value * 100)) / 100) ms"
}

func gbps(_ bytesPerSecond: Double) -> String {
    "\(Double(Int(bytesPerSecond / 1e7)) / 100) GB/s"
}

func bytes(_ count: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(count)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(count) B" : "\(Double(Int(value * 10)) / 10) \(units[unit])"
}

FMRun.main()
