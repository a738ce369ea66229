import Dispatch
import Synchronization

/// Several bundles run in order on one `DeviceContext`, outputs passed to inputs by user-given links
/// (`a.OUT=b.IN`), within the context's one memory budget.
///
/// Cross-model prefetch, chosen at run time: when model i has submitted its last weight copy (from then on the
/// transfer queue would idle while i's last steps run), `Session.prefetch` of model i+1 starts on another thread.
/// It acquires model i+1's device memory when the budget has room beside model i without waiting (taking back
/// memory of models not in use, least recently used first) and copies i+1's resident images on the transfer
/// queue; model i+1's run then copies only its streamed images. With no room it does nothing, and model i+1
/// acquires its memory when it runs (after model i has finished, so i's memory can be taken back).
///
/// Thread safety: `run` may be called from several threads at once; each call passes along its own outputs, and
/// the calls take turns model by model (a session's operations take turns). The sessions may be run elsewhere
/// meanwhile too. Hence `Sendable`.
public final class Pipeline: @unchecked Sendable {
    /// The models, in the order they run.
    public let sessions: [Session]
    /// How models are called in errors and reports (bundle file stems, as fmrun names them).
    public let names: [String]
    /// Which outputs feed which inputs.
    public let links: [Link]
    /// The one context of every session.
    public var context: DeviceContext { sessions[0].context }
    /// Prefetch model i+1 while model i runs its last steps (`Session.prefetch`); off to measure without. Read once
    /// per `run`.
    public var prefetch: Bool {
        get { prefetchSetting.load(ordering: .relaxed) }
        set { prefetchSetting.store(newValue, ordering: .relaxed) }
    }
    private let prefetchSetting = Atomic<Bool>(true)
    /// Where the `async` `run` blocks (Session+Async.swift).
    let asyncQueue = DispatchQueue(label: "FlashMem.Pipeline")

    /// Checks every link (models in order, the output and input exist, same element type and shape, each input fed
    /// once) and that all sessions share one context.
    public init(sessions: [Session], names: [String]? = nil, links: [Link]) throws {
        guard !sessions.isEmpty else { throw PipelineError(map: "pipeline", reason: "no models") }
        let names = names ?? sessions.map { $0.bundle.bundle.meta.modelName }
        precondition(names.count == sessions.count, "one name per session")
        for (i, session) in sessions.enumerated() where session.context !== sessions[0].context {
            throw PipelineError(map: names[i], reason: "its session is on another DeviceContext than \(names[0])'s; "
                                + "the models of a pipeline share one context (one budget)")
        }
        var fed = Set<String>()
        for link in links {
            let text = "\(names[safe: link.from] ?? "\(link.from)").\(link.output)=\(names[safe: link.to] ?? "\(link.to)").\(link.input)"
            guard sessions.indices.contains(link.from), sessions.indices.contains(link.to) else {
                throw PipelineError(map: text, reason: "model index out of range (\(sessions.count) models)")
            }
            guard link.from < link.to else {
                throw PipelineError(map: text, reason: "outputs go to later models only (models run in the order given)")
            }
            guard let output = sessions[link.from].outputs.first(where: { $0.name == link.output }) else {
                throw PipelineError(map: text, reason: "\(names[link.from]) has no output '\(link.output)'; its outputs: "
                                    + sessions[link.from].outputs.map(\.name).joined(separator: ", "))
            }
            guard let input = sessions[link.to].inputs.first(where: { $0.name == link.input }) else {
                throw PipelineError(map: text, reason: "\(names[link.to]) has no input '\(link.input)'; its inputs: "
                                    + sessions[link.to].inputs.map(\.name).joined(separator: ", "))
            }
            guard output.elementType == input.elementType, output.shape == input.shape else {
                throw PipelineError(map: text, reason: "the output is \(output.elementType) \(output.shape), the input "
                                    + "expects \(input.elementType) \(input.shape)")
            }
            guard fed.insert("\(link.to).\(link.input)").inserted else {
                throw PipelineError(map: text, reason: "\(names[link.to]).\(link.input) is fed twice")
            }
        }
        self.sessions = sessions
        self.names = names
        self.links = links
    }

    /// The inputs of model `index` no link feeds: `run` needs them from the caller.
    public func externalInputs(of index: Int) -> [IOBinding] {
        sessions[index].inputs.filter { input in !links.contains { $0.to == index && $0.input == input.name } }
    }

    /// One model's part of a pipeline run.
    public struct ModelRun: Sendable {
        public var name: String
        /// The model's `Session.run` (`stats.wallSeconds` is its latency, including acquiring memory).
        public var stats: RunStats
        /// The prefetch started while the model before ran (nil: none started, e.g. the first model or prefetch off).
        public var prefetch: PrefetchReport?
        /// Host clock when its prefetch started and its run started.
        public var prefetchStart: Double?
        public var runStart: Double
    }

    /// What `run` returns.
    public struct RunResult: Sendable {
        /// Every model's outputs, in pipeline order.
        public var outputs: [[HostTensor]]
        public var models: [ModelRun]
        /// From the first model's start to the last one's outputs.
        public var wallSeconds: Double
    }

    /// Runs every model once, in order. `inputs[i]` holds model i's inputs that no link feeds (`externalInputs`).
    public func run(inputs: [Int: [HostTensor]] = [:]) throws -> RunResult {
        let start = monotonicSeconds()
        let prefetch = self.prefetch
        var outputs: [[HostTensor]] = []
        var models: [ModelRun] = []
        var pending: (group: DispatchGroup, box: PrefetchBox)? = nil
        for (index, session) in sessions.enumerated() {
            var prefetchReport: PrefetchReport? = nil
            var prefetchStart: Double? = nil
            if let (group, box) = pending {
                group.wait()
                if let error = box.error { throw error }
                prefetchReport = box.report
                prefetchStart = box.start
                pending = nil
            }
            let feeds = try session.inputs.map { binding -> HostTensor in
                if let link = links.first(where: { $0.to == index && $0.input == binding.name }) {
                    var tensor = outputs[link.from][sessions[link.from].outputs.firstIndex { $0.name == link.output }!]
                    tensor.name = binding.name
                    return tensor
                }
                guard let given = inputs[index]?.first(where: { $0.name == binding.name }) else {
                    throw PipelineError(map: names[index], reason: "input '\(binding.name)' is neither linked to an earlier "
                                        + "model's output nor given")
                }
                return given
            }
            var copiesIssued: (() -> Void)? = nil
            if prefetch, index + 1 < sessions.count {
                let next = sessions[index + 1]
                let group = DispatchGroup(), box = PrefetchBox()
                pending = (group, box)
                copiesIssued = {
                    group.enter()
                    DispatchQueue.global(qos: .userInitiated).async {
                        box.start = monotonicSeconds()
                        do { box.report = try next.prefetch() } catch { box.error = error }
                        group.leave()
                    }
                }
            }
            let runStart = monotonicSeconds()
            let stats: RunStats
            do {
                let run = try session.run(inputs: feeds, copiesIssued: copiesIssued)
                outputs.append(run.outputs)
                stats = run.stats
            } catch {
                pending?.group.wait()
                throw error
            }
            models.append(ModelRun(name: names[index], stats: stats, prefetch: prefetchReport,
                                   prefetchStart: prefetchStart, runStart: runStart))
        }
        return RunResult(outputs: outputs, models: models, wallSeconds: monotonicSeconds() - start)
    }
}

/// The result of a prefetch task, read after its DispatchGroup is waited for (which orders the writes first).
private final class PrefetchBox: @unchecked Sendable {
    var start: Double?
    var report: PrefetchReport?
    var error: Error?
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
