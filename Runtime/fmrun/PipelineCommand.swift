// fmrun --pipeline: several bundles in order under one memory budget (a DeviceContext and a Pipeline of the
// runtime), outputs passed to inputs by --map. Parsing and reporting only; the library does the work.

import ArgumentParser
import FlashMemRuntime

extension FMRun {
    func runPipeline(_ list: String) throws {
        // A manifest of `fmc plan-pipeline` gives the bundles and the budget; an explicit --memory-budget overrides it.
        let manifest = list.hasSuffix(".json") ? try readPipelineManifest(list) : nil
        let paths = manifest?.paths ?? list.split(separator: ",").map(String.init)
        guard !paths.isEmpty else { throw ValidationError("--pipeline expects a.fmb,b.fmb,… or DIR/pipeline.json") }
        let names = paths.map(bundleStem)
        let budget = try memoryBudget.map { text -> UInt64 in
            guard let bytes = ByteSize.parse(text) else {
                throw ValidationError("--memory-budget expects a size such as 512MiB or 1GiB, got '\(text)'")
            }
            return bytes
        } ?? manifest?.budgetBytes
        var startup: [(String, Double)] = [("process", ProcessClock.sinceStart())]
        let bundles = try paths.map { path -> LoadedBundle in
            progress("opening \(path)")
            return try openBundle(path: path, verifyChecksums: verifyChecksums)
        }
        let links = try maps.map { try Pipeline.Link.parse($0, modelNames: names) }
        startup.append(("bundles", ProcessClock.sinceStart()))
        let device = try Device(options: DeviceOptions(deviceIndex: self.device, applicationName: "fmrun"))
        startup.append(("device", ProcessClock.sinceStart()))
        progress("device [\(device.info.index)] \(device.info.name) (\(device.info.type.rawValue)); "
                 + "transfer queue: \(device.transferQueueKind.rawValue)")
        let baseline = device.memoryBudget()
        let context = DeviceContext(device: device, budgetBytes: budget)
        let options = sessionOptions()
        let sessions = try bundles.map { try Session(bundle: $0, context: context, options: options) }
        startup.append(("sessions", ProcessClock.sinceStart()))
        let pipeline = try Pipeline(sessions: sessions, names: names, links: links)
        pipeline.prefetch = !noPrefetch
        let given = try pipelineInputs(pipeline)

        context.resetMemoryStatistics()
        var passes: [Pipeline.RunResult] = []
        for pass in 0...runs {
            progress(pass == 0 ? "first pass" : "pass \(pass + 1)/\(runs + 1)")
            let result = try pipeline.run(inputs: given)
            passes.append(result)
            let write = outputsFromLastRun ? pass == runs : pass == 0
            if let outputDir, write {
                if allOutputs {
                    try makeDirectory(outputDir)
                    for (name, outputs) in zip(names, result.outputs) { try self.write(outputs, to: outputDir + "/" + name) }
                } else {
                    try self.write(result.outputs.last!, to: outputDir)
                }
            }
            if pass == 0 { startup.append(("first pass", ProcessClock.sinceStart())) }
        }
        let memory = context.memory
        reportPipeline(pipeline, passes: passes, memory: memory, baseline: baseline, startup: startup)
        if let trace {
            var runs: [(name: String, trace: RunTrace)] = []
            for (label, pass) in [("first pass", passes[0])] + (passes.count > 1 ? [("pass \(passes.count)", passes.last!)] : []) {
                for model in pass.models {
                    var events = model.stats.trace ?? RunTrace()
                    if let start = model.prefetchStart, let prefetch = model.prefetch {
                        events.events.append(RunTrace.Event(
                            track: .hostStreamer, name: "prefetch", start: start, duration: prefetch.seconds,
                            args: ["bytes": "\(prefetch.bytesCopied)", "resident": "\(prefetch.resident)"]))
                    }
                    runs.append((name: "\(label): \(model.name)", trace: events))
                }
            }
            try writeFile(RunTrace.chromeTraceJSON(runs: runs), to: trace)
            progress("wrote \(trace) (\(runs.count) model runs)")
        }
    }

    /// `--input NAME=file.npy` feeds the first model; `--input MODEL.NAME=file.npy` any model (by stem or index).
    private func pipelineInputs(_ pipeline: Pipeline) throws -> [Int: [HostTensor]] {
        var given: [Int: [HostTensor]] = [:]
        for spec in inputs {
            guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex else {
                throw ValidationError("--input \(spec): expected [MODEL.]NAME=file.npy")
            }
            let key = String(spec[..<equals]), file = String(spec[spec.index(after: equals)...])
            var target: (model: Int, name: String)? = nil
            let names = pipeline.names.enumerated().map { ($0.offset, $0.element) } + pipeline.names.indices.map { ($0, String($0)) }
            for (index, name) in names where key.hasPrefix(name + ".") {
                let input = String(key.dropFirst(name.count + 1))
                if pipeline.externalInputs(of: index).contains(where: { $0.name == input }) { target = (index, input) }
            }
            if target == nil, pipeline.externalInputs(of: 0).contains(where: { $0.name == key }) { target = (0, key) }
            guard let target else {
                let expected = pipeline.sessions.indices.flatMap { i in
                    pipeline.externalInputs(of: i).map { "\(pipeline.names[i]).\($0.name): \($0.elementType) \($0.shape)" }
                }
                throw RuntimeError.inputMismatch(reason: "--input \(spec): no model has an input '\(key)' that --map "
                                                 + "does not feed", expected: expected)
            }
            var tensor = try NPY.read(path: file)
            tensor.name = target.name
            given[target.model, default: []].append(tensor)
        }
        return given
    }

    private func reportPipeline(_ pipeline: Pipeline, passes: [Pipeline.RunResult], memory: ContextMemory,
                                baseline: [HeapBudget], startup: [(String, Double)]) {
        let context = pipeline.context
        print("pipeline:         " + pipeline.names.joined(separator: " → ")
              + (pipeline.links.isEmpty ? "" : " (maps: " + maps.joined(separator: ", ") + ")"))
        print("device:           [\(context.device.info.index)] \(context.device.info.name)")
        print("load mode:        \(pipeline.sessions[0].options.loadMode.rawValue), prefetch \(pipeline.prefetch ? "on" : "off")")
        let phases = zip(startup, [("", 0.0)] + startup).map { "\($0.0.0) \(ms($0.0.1 - $0.1.1))" }
        print("start-up:         " + phases.dropLast().joined(separator: ", "))
        print("cold latency:     \(ms(startup.last!.1)) (process start → first pass's outputs written)")
        print("budget:           " + (context.budgetBytes.map { bytes($0) } ?? "none") + "; footprints (arena + weights): "
              + zip(pipeline.names, pipeline.sessions).map { "\($0) \(bytes($1.footprintBytes))" }.joined(separator: ", "))
        for (index, pass) in passes.enumerated() where index == 0 || index == passes.count - 1 {
            print(index == 0 ? "first pass:       \(ms(pass.wallSeconds)) total" : "last pass:        \(ms(pass.wallSeconds)) total")
            for model in pass.models {
                var line = "  \(model.name): \(ms(model.stats.wallSeconds))"
                if model.stats.acquiredMemory { line += " (acquiring memory \(ms(model.stats.acquireSeconds)))" }
                line += ", streamed \(bytes(model.stats.bytesStreamed))"
                if let prefetch = model.prefetch {
                    line += prefetch.resident ? ", prefetched \(bytes(prefetch.bytesCopied)) in \(ms(prefetch.seconds))"
                        : ", no room to prefetch"
                }
                print(line)
            }
            if let bound = PassBound(pass) { print("  " + bound.description(total: pass.wallSeconds)) }
        }
        if passes.count > 1 {
            let warm = passes.dropFirst()
            let totals = warm.map(\.wallSeconds).sorted()
            print("warm passes:      median \(ms(median(totals))), min \(ms(totals.first!)), max \(ms(totals.last!)) "
                  + "over \(warm.count) passes; per model (median): "
                  + pipeline.names.indices.map { i in
                      "\(pipeline.names[i]) \(ms(median(warm.map { $0.models[i].stats.wallSeconds })))"
                  }.joined(separator: ", "))
        }
        // Where a model's "acquiring memory" goes (its latest build of its device state; the rest of it is taking
        // memory back from other models, waiting for room, copying weights again and uploading constants). In the
        // context's pool a model builds once, and later acquisitions only copy its contents again.
        print("last build:       " + zip(pipeline.names, pipeline.sessions).map { name, session in
            let startup = session.startup
            return "\(name) allocations \(ms(startup.weightSeconds)), programs \(ms(startup.programSeconds)), "
                + "recording \(ms(startup.recordSeconds)) (built \(startup.residencyBuilds)×)"
        }.joined(separator: "; "))
        print("device memory:    peak \(bytes(memory.peakBytes)), time-averaged \(bytes(UInt64(memory.averageBytes))) "
              + "over \(ms(memory.seconds)) (own accounting: arenas + weight spaces); \(memory.evictions) times a "
              + "model's memory was taken back for another (\(bytes(memory.evictedBytes)))")
        print("device pool:      " + (memory.poolBytes > 0
            ? "\(bytes(memory.poolBytes)) allocated once" + (memory.unpooledBytes > 0
                ? ", \(bytes(memory.unpooledBytes)) held beside it by models it cannot serve" : "")
                + " (a model whose range another took copies its weights again; nothing is rebuilt)"
            : "none (each model allocates its own memory when it acquires it)"))
        let heaps = passes.flatMap { $0.models.flatMap(\.stats.heaps) }.filter(\.deviceLocal)
        if let peak = heaps.max(by: { $0.usage < $1.usage }) {
            let before = baseline.first { $0.heap == peak.heap }?.usage ?? 0
            print("budget-reported:  \(bytes(peak.usage)) used of \(bytes(peak.budget)) on heap \(peak.heap) at the end of "
                  + "a model's run, +\(bytes(peak.usage &- before)) since before the sessions (VK_EXT_memory_budget, whole process)")
        } else {
            print("budget-reported:  n/a (no VK_EXT_memory_budget)")
        }
    }
}

/// The bound of one pass: max(Σ kernel GPU time, bytes copied to the device / the copy bandwidth measured in that
/// pass on the transfer queue). Needs per-step GPU times (`--profile`); nil without them.
private struct PassBound {
    var kernelSeconds: Double
    var bytesCopied: UInt64
    var bytesPerSecond: Double?

    init?(_ pass: Pipeline.RunResult) {
        var kernels = 0.0, copied: UInt64 = 0, timedBytes: UInt64 = 0, timedSeconds = 0.0
        for model in pass.models {
            guard let steps = model.stats.stepSeconds else { return nil }
            kernels += steps.reduce(0, +)
            copied += model.stats.bytesStreamed + (model.prefetch?.bytesCopied ?? 0)
            if let seconds = model.stats.transferSeconds, seconds > 0 {
                timedBytes += model.stats.bytesStreamed
                timedSeconds += seconds
            }
        }
        kernelSeconds = kernels
        bytesCopied = copied
        bytesPerSecond = timedSeconds > 0 ? Double(timedBytes) / timedSeconds : nil
    }

    func description(total: Double) -> String {
        var text = "bound: Σ kernels \(ms(kernelSeconds))"
        var bound = kernelSeconds
        if let bytesPerSecond, bytesCopied > 0 {
            let copying = Double(bytesCopied) / bytesPerSecond
            text += ", \(bytes(bytesCopied)) copied / \(gbps(bytesPerSecond)) = \(ms(copying))"
            bound = max(bound, copying)
        }
        return text + " → \(ms(bound)); total / bound \(Double(Int((total / bound * 100).rounded())) / 100)"
    }
}

/// "dir/model.v2.fmb" → "model.v2".
private func bundleStem(_ path: String) -> String {
    let file = path.split(separator: "/").last.map(String.init) ?? path
    return file.hasSuffix(".fmb") ? String(file.dropLast(4)) : file
}
