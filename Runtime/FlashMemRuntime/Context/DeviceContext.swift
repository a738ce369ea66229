/// One device and ONE memory budget for the sessions of several bundles (a chain of models, or models an app
/// switches between): their device allocations (each session's arena + weight space, `Session.footprintBytes`)
/// are counted against the budget together, and never exceed it.
///
/// The design, the simplest that lets a chain whose weights are many times the budget run: a session holds its
/// device memory (`SessionResidency`) from when it first runs until the context needs the room for another
/// session; then the context takes back the memory of the session used longest ago among those not running, and
/// that session acquires it again (and copies every chunk again) when it next runs. While the budget has room,
/// nothing is taken back, so a model that runs again finds its resident weights still there. A session whose own
/// footprint exceeds the budget is refused when it is created (`RuntimeError.exceedsContextBudget`). A run waits
/// when the room it needs is held by sessions that are running; `Session.prefetch` does not wait.
///
/// Own accounting: `memory` reports the bytes held now, the peak and the time-averaged bytes since
/// `resetMemoryStatistics()`. Host memory (staging rings, I/O staging) is not charged to the budget.
///
/// Thread-safe. Queue submission is locked in `Device`; the context locks only its accounting.
public final class DeviceContext: @unchecked Sendable {
    /// The device of every session of the context.
    public let device: Device
    /// The budget in bytes; nil: unbounded (sessions are never asked to give memory back).
    public let budgetBytes: UInt64?

    /// A session's claim on the budget.
    private final class Holder {
        weak var session: Session?
        let bytes: UInt64
        /// Operations of the session using its memory now (a run, a prefetch); the context never takes back a
        /// pinned session's memory.
        var pins = 1
        /// When the session last stopped using its memory (`tick` order): the oldest unpinned one goes first.
        var lastUse: UInt64 = 0
        init(session: Session, bytes: UInt64) {
            self.session = session
            self.bytes = bytes
        }
    }

    private let lock = ConditionLock()
    private var holders: [ObjectIdentifier: Holder] = [:]
    private var tick: UInt64 = 0
    private var used: UInt64 = 0
    private var peak: UInt64 = 0
    private var evictions = 0
    private var evictedBytes: UInt64 = 0
    /// ∫ used dt since `windowStart`, in byte-seconds, up to `lastChange`.
    private var byteSeconds = 0.0
    private var windowStart: Double
    private var lastChange: Double

    /// A budget of `budgetBytes` of device memory on `device` (nil: unbounded) for the sessions made with
    /// `Session(bundle:context:options:)`; nothing is allocated until one of them runs.
    public init(device: Device, budgetBytes: UInt64?) {
        self.device = device
        self.budgetBytes = budgetBytes
        windowStart = monotonicSeconds()
        lastChange = windowStart
    }

    /// The context's own accounting of device memory (see `resetMemoryStatistics`).
    public var memory: ContextMemory {
        lock.locked {
            let now = monotonicSeconds()
            let seconds = now - windowStart
            let integral = byteSeconds + Double(used) * (now - lastChange)
            return ContextMemory(budgetBytes: budgetBytes, usedBytes: used, peakBytes: peak,
                                 averageBytes: seconds > 0 ? integral / seconds : Double(used), seconds: seconds,
                                 residentSessions: holders.count, evictions: evictions, evictedBytes: evictedBytes)
        }
    }

    /// Starts a new measurement window: the peak becomes what is held now, the average restarts.
    public func resetMemoryStatistics() {
        lock.locked {
            windowStart = monotonicSeconds()
            lastChange = windowStart
            byteSeconds = 0
            peak = used
            evictions = 0
            evictedBytes = 0
        }
    }

    // MARK: Sessions (called by Session)

    enum Reservation {
        /// The session holds its memory; now pinned.
        case held
        /// Bytes are reserved and pinned for the session: it builds its residency, then `attach`es it (or `cancel`s).
        case reserved
        /// No room without waiting (only with `wait: false`).
        case noRoom
    }

    /// Pins `session`'s memory, or reserves its footprint, taking back the memory of sessions not in use (oldest
    /// first) until it fits; waits for running sessions to finish when that is not enough (unless `wait` is false).
    func reserve(_ session: Session, wait: Bool) -> Reservation {
        let id = ObjectIdentifier(session)
        let bytes = session.footprintBytes
        return lock.locked {
            while true {
                if let holder = holders[id] {
                    holder.pins += 1
                    return .held
                }
                if fits(bytes) || evictUntilFits(bytes) {
                    holders[id] = Holder(session: session, bytes: bytes)
                    change(by: Int64(bytes))
                    return .reserved
                }
                if !wait { return .noRoom }
                lock.wait()
            }
        }
    }

    /// Runs `body` holding the accounting lock, under which sessions' residencies are set and cleared (and their
    /// resident weights marked loaded): what `Session.isResident` and `Session.weightsResident` read.
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        try lock.locked(body)
    }

    /// The residency a `.reserved` session built.
    func attach(_ session: Session, _ residency: SessionResidency) {
        lock.locked { session.residency = residency }
    }

    /// A `.reserved` session could not build its residency: the bytes are free again.
    func cancel(_ session: Session) {
        lock.locked {
            if let holder = holders.removeValue(forKey: ObjectIdentifier(session)) {
                change(by: -Int64(holder.bytes))
                lock.broadcast()
            }
        }
    }

    /// Ends one pin of `reserve`.
    func unpin(_ session: Session) {
        lock.locked {
            guard let holder = holders[ObjectIdentifier(session)] else { return }
            holder.pins -= 1
            tick += 1
            holder.lastUse = tick
            if holder.pins == 0 { lock.broadcast() }
        }
    }

    /// Takes back an unpinned session's memory at its own request (`Session.releaseDeviceMemory`); false when
    /// it is in use.
    func release(_ session: Session) -> Bool {
        lock.locked {
            guard let holder = holders[ObjectIdentifier(session)] else { return true }
            guard holder.pins == 0 else { return false }
            drop(ObjectIdentifier(session), holder, counted: false)
            return true
        }
    }

    /// A session being deinitialized: its memory goes with it.
    func forget(_ session: Session) {
        lock.locked {
            if let holder = holders.removeValue(forKey: ObjectIdentifier(session)) {
                change(by: -Int64(holder.bytes))
                lock.broadcast()
            }
        }
    }

    // MARK: Accounting (lock held)

    private func fits(_ bytes: UInt64) -> Bool {
        guard let budgetBytes else { return true }
        return used + bytes <= budgetBytes
    }

    /// Takes back unpinned sessions' memory, least recently used first, until `bytes` fit; false (taking nothing
    /// back) when even all of them would not make room.
    private func evictUntilFits(_ bytes: UInt64) -> Bool {
        guard let budgetBytes else { return true }
        let idle = holders.filter { $0.value.pins == 0 }.sorted { $0.value.lastUse < $1.value.lastUse }
        let idleBytes = idle.reduce(UInt64(0)) { $0 + $1.value.bytes }
        guard used - idleBytes + bytes <= budgetBytes else { return false }
        for (id, holder) in idle where !fits(bytes) {
            drop(id, holder, counted: true)
        }
        return true
    }

    private func drop(_ id: ObjectIdentifier, _ holder: Holder, counted: Bool) {
        holders.removeValue(forKey: id)
        // Unpinned: nothing of the session is in flight (its runs and prefetches waited for their work); where the
        // driver needs it, the drain makes sure it is done with those submissions too before their objects go.
        if let session = holder.session {
            if device.drainsBeforeReuse { device.drain(timeout: session.timeoutNanoseconds) }
            session.residency = nil
        }
        change(by: -Int64(holder.bytes))
        if counted {
            evictions += 1
            evictedBytes += holder.bytes
        }
        lock.broadcast()
    }

    private func change(by delta: Int64) {
        let now = monotonicSeconds()
        byteSeconds += Double(used) * (now - lastChange)
        lastChange = now
        used = UInt64(Int64(used) + delta)
        peak = max(peak, used)
    }
}

/// A context's device memory, from its own accounting (allocation sizes as the driver reported them).
public struct ContextMemory: Sendable, Equatable {
    public var budgetBytes: UInt64?
    /// Held now by the context's sessions (arena + weight space each).
    public var usedBytes: UInt64
    /// Most held at once since the window started.
    public var peakBytes: UInt64
    /// Held bytes averaged over the window's time.
    public var averageBytes: Double
    /// Length of the window so far.
    public var seconds: Double
    /// Sessions holding memory now.
    public var residentSessions: Int
    /// Times the context took a session's memory back to make room for another, and the bytes taken back.
    public var evictions: Int
    public var evictedBytes: UInt64
}
