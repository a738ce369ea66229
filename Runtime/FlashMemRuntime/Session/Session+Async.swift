import Dispatch

// Conveniences over the blocking API: inputs and outputs by name, and `async` variants for callers that must not
// block their thread (a run blocks its thread until the device is done).

extension Session {
    /// Runs the model once with inputs and outputs by name: `inputs[name]` is the input called `name` (each
    /// tensor's own `name` is replaced by its key), and the outputs come back keyed by their names. Otherwise as
    /// `run(inputs: [HostTensor])`.
    public func run(inputs: [String: HostTensor]) throws -> [String: HostTensor] {
        let outputs = try run(inputs: inputs.map { name, tensor -> HostTensor in
            var named = tensor
            named.name = name
            return named
        })
        // A model may list one output twice (the validator checks that both entries are the same tensor).
        return Dictionary(outputs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// `run(inputs: [HostTensor])` for async callers. The run blocks on this session's own serial dispatch queue
    /// instead of the caller's thread: the calling task is suspended meanwhile, its thread free for other tasks. Async
    /// calls on one session run one after another, in the order they reached its queue. Cancelling the calling task
    /// does not stop or skip the run.
    public func run(inputs: [HostTensor]) async throws -> [HostTensor] {
        try await offload(to: asyncQueue) { try self.run(inputs: inputs) }
    }

    /// `run(inputs: [String: HostTensor])` for async callers, on the session's own dispatch queue like the async
    /// `run(inputs: [HostTensor])`.
    public func run(inputs: [String: HostTensor]) async throws -> [String: HostTensor] {
        try await offload(to: asyncQueue) { try self.run(inputs: inputs) }
    }

    /// `prepare()` for async callers (acquiring device memory may wait for room and builds the session's device
    /// state), on the session's own dispatch queue.
    public func prepare() async throws {
        try await offload(to: asyncQueue) { try self.prepare() }
    }

    /// `prefetch()` for async callers (it waits for its weight copies), on the session's own dispatch queue: e.g. an
    /// app loads the model it will need next while it shows something else.
    @discardableResult
    public func prefetch() async throws -> PrefetchReport {
        try await offload(to: asyncQueue) { try self.prefetch() }
    }
}

extension Pipeline {
    /// `run(inputs:)` for async callers: the models run on the pipeline's own serial dispatch queue, not the
    /// caller's thread; async calls on one pipeline run one after another, in the order they reached its queue.
    /// Cancelling the calling task does not stop or skip the run.
    public func run(inputs: [Int: [HostTensor]] = [:]) async throws -> RunResult {
        try await offload(to: asyncQueue) { try self.run(inputs: inputs) }
    }
}

/// Runs blocking `work` on `queue` and resumes the suspended caller with the result: the caller's thread is free
/// meanwhile. `queue` is a serial queue made with a label, which targets an overcommitting global queue: its work
/// gets a thread even while the work of other queues blocks theirs.
func offload<T: Sendable>(to queue: DispatchQueue, _ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        queue.async { continuation.resume(with: Result(catching: work)) }
    }
}
