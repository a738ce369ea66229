/// One device and ONE memory budget for the sessions of several bundles (a chain of models, or models an app
/// switches between): their device memory (each session's arena + weight space, `Session.footprintBytes`) is
/// counted against the budget together, and never exceeds it.
///
/// The pool: a context with a budget allocates ONE piece of device memory (`DevicePool`) when a session first needs
/// memory, as large as the pieces of the sessions made in the context by then need side by side, at most the budget.
/// Each session it can serve gets a FIXED range of it at its first acquisition (`PoolPlacement`), where its arena and
/// weight images are bound once; its descriptor sets, run programs and command buffers are made once for its life.
/// Ranges of different sessions may overlap: when a session needs its range, the sessions not in use whose ranges
/// overlap it keep their objects but lose their contents ("clobbered": resident weights and constants must be copied
/// again, images are re-transitioned from UNDEFINED by those copies), and their next run copies them again, with no
/// allocation, no new images and no recording. Sessions whose valid contents the budget cannot hold together are
/// clobbered least recently used first, as below.
///
/// Without a pool (no budget; a budget larger than one allocation or than its heap, or the allocation refused), and
/// for a session the pool cannot serve (no memory type in common with the pool, or its piece with alignment padding
/// larger than the pool), a session allocates its own memory when it acquires it and the context takes it back
/// (freeing everything: objects, recordings) to make room; the next acquisition builds it all again. Such a
/// session's allocations lie beside the pool (`ContextMemory.unpooledBytes` reports them) and share what the pool
/// leaves of the budget, so pool and allocations together stay within it.
///
/// Either way a session holds its device memory from when it first runs until the context needs the room for
/// another session; then the context takes back the memory of the session used longest ago among those not
/// running, and that session acquires it again (and copies every chunk again) when it next runs. While the budget
/// has room, nothing is taken back, so a model that runs again finds its resident weights still there. A session
/// whose own footprint exceeds the budget is refused when it is created (`RuntimeError.exceedsContextBudget`). A
/// run waits when the room it needs is held by sessions that are running; `Session.prefetch` does not wait.
///
/// Own accounting: `memory` reports the bytes of valid contents held now (each session's footprint while its
/// contents are valid), the peak and the time-averaged bytes since `resetMemoryStatistics()`, and the pool's size.
/// Host memory (staging rings, I/O staging) is not charged to the budget.
///
/// Thread-safe. Queue submission is locked in `Device`; the context locks its accounting and placement. The pool
/// outlives every session (they keep the context alive).
public final class DeviceContext: @unchecked Sendable {
    /// The device of every session of the context.
    public let device: Device
    /// The budget in bytes; nil: unbounded (sessions are never asked to give memory back).
    public let budgetBytes: UInt64?

    /// A session's claim on the budget.
    private final class Holder {
        weak var session: Session?
        let bytes: UInt64
        /// The session's fixed range of the pool (nil: allocations of its own). A pool session stays a holder for
        /// its life; its range then belongs to it even while its contents are not valid.
        let range: Range<UInt64>?
        /// Whether the session's memory holds its contents: counted in `used`, and never overlapped by another
        /// valid range. False after a clobber or a release, until the session acquires its memory again.
        var valid = true
        /// Operations of the session using its memory now (a run, a prefetch); the context never takes back a
        /// pinned session's memory.
        var pins = 1
        /// When the session last stopped using its memory (`tick` order): the oldest unpinned one goes first.
        var lastUse: UInt64 = 0
        init(session: Session, bytes: UInt64, range: Range<UInt64>?) {
            self.session = session
            self.bytes = bytes
            self.range = range
        }
    }

    private let lock = ConditionLock()
    private var holders: [ObjectIdentifier: Holder] = [:]
    /// Made by the first acquisition that needs it (`pool(for:)`); nil before, and in a context without a budget.
    private var pool: DevicePool?
    /// Whether making the pool failed (every session then allocates on its own).
    private var poolRefused = false
    /// The pieces of the context's sessions alive now (`register`): the pool is made as large as they need side by
    /// side, up to the budget, so a budget larger than the models is not taken whole.
    private var pieces: [ObjectIdentifier: MemoryPiece] = [:]
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
            let valid = holders.values.filter(\.valid)
            return ContextMemory(budgetBytes: budgetBytes, usedBytes: used, peakBytes: peak,
                                 averageBytes: seconds > 0 ? integral / seconds : Double(used), seconds: seconds,
                                 residentSessions: valid.count, evictions: evictions, evictedBytes: evictedBytes,
                                 poolBytes: pool?.bytes ?? 0,
                                 unpooledBytes: valid.filter { $0.range == nil }.reduce(0) { $0 + $1.bytes })
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

    enum Reservation: Equatable {
        /// The session holds its memory with valid contents; now pinned.
        case held
        /// The session's pool range is its own again, its contents clobbered: it copies its weights and constants
        /// again (no allocation). Now pinned.
        case reclaimed
        /// Bytes are reserved and pinned for the session: it builds its residency (in the pool at `offset`, or in
        /// allocations of its own when nil), then `attach`es it (or `cancel`s).
        case reserved(offset: UInt64?)
        /// No room without waiting (only with `wait: false`).
        case noRoom
    }

    /// The pool memory `session` binds into at its first acquisition, making the pool if this is the first need;
    /// nil when the session allocates its own (no budget, no pool on this device, or a piece the pool cannot serve).
    func pool(for session: Session) -> VK.DeviceMemory? {
        guard let budgetBytes else { return nil }
        return lock.locked {
            if pool == nil, !poolRefused {
                pool = DevicePool(device: device, bytes: min(budgetBytes, DevicePool.sideBySide(pieces.values)),
                                  for: session.piece)
                poolRefused = pool == nil
            }
            guard let pool, pool.serves(session.piece) else { return nil }
            return pool.memory
        }
    }

    /// Pins `session`'s memory, or reserves its footprint (at a range of the pool when `pooled`), taking back the
    /// memory of sessions not in use until it fits; waits for sessions in use to finish when that is not enough
    /// (unless `wait` is false).
    func reserve(_ session: Session, wait: Bool, pooled: Bool) -> Reservation {
        let id = ObjectIdentifier(session)
        let bytes = session.footprintBytes
        return lock.locked {
            while true {
                if let holder = holders[id] {
                    if holder.valid {
                        holder.pins += 1
                        return .held
                    }
                    if makeRoom(bytes, range: holder.range, for: id) {
                        holder.valid = true
                        holder.pins = 1
                        change(by: Int64(bytes))
                        return .reclaimed
                    }
                } else {
                    let range = pooled ? placeInPool(session.piece, for: id) : nil
                    if !pooled || range != nil, makeRoom(bytes, range: range, for: id) {
                        holders[id] = Holder(session: session, bytes: bytes, range: range)
                        change(by: Int64(bytes))
                        return .reserved(offset: range?.lowerBound)
                    }
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

    /// Whether `session` holds its memory with valid contents (`Session.isResident`).
    func holds(_ session: Session) -> Bool {
        lock.locked { holders[ObjectIdentifier(session)]?.valid ?? false }
    }

    /// The residency a `.reserved` session built.
    func attach(_ session: Session, _ residency: SessionResidency) {
        lock.locked { session.residency = residency }
    }

    /// A `.reserved` session could not build its residency: the bytes (and its pool range) are free again.
    func cancel(_ session: Session) {
        lock.locked {
            if let holder = holders.removeValue(forKey: ObjectIdentifier(session)) {
                if holder.valid { change(by: -Int64(holder.bytes)) }
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
    /// it is in use. A pool session keeps its range and objects; its contents count as gone.
    func release(_ session: Session) -> Bool {
        lock.locked {
            guard let holder = holders[ObjectIdentifier(session)], holder.valid else { return true }
            guard holder.pins == 0 else { return false }
            takeBack(ObjectIdentifier(session), holder, counted: false)
            return true
        }
    }

    /// A session made in this context (at the end of its init): its piece counts toward the pool's size if the pool
    /// is made after it.
    func register(_ session: Session) {
        lock.locked { pieces[ObjectIdentifier(session)] = session.piece }
    }

    /// A session being deinitialized: its memory (and its pool range) goes with it.
    func forget(_ session: Session) {
        lock.locked {
            pieces.removeValue(forKey: ObjectIdentifier(session))
            if let holder = holders.removeValue(forKey: ObjectIdentifier(session)) {
                if holder.valid { change(by: -Int64(holder.bytes)) }
                lock.broadcast()
            }
        }
    }

    // MARK: Accounting and placement (lock held)

    private func fits(_ bytes: UInt64) -> Bool {
        guard let budgetBytes else { return true }
        return used + bytes <= budgetBytes
    }

    /// A range for a session's first acquisition (`PoolPlacement`), nil while every candidate overlaps a session in use.
    private func placeInPool(_ piece: MemoryPiece, for id: ObjectIdentifier) -> Range<UInt64>? {
        guard let pool else { return nil }
        let occupants = holders.compactMap { key, holder -> PoolPlacement.Occupant? in
            guard key != id, let range = holder.range else { return nil }
            let state: PoolPlacement.State = !holder.valid ? .clobbered
                : holder.pins > 0 ? .pinned : .idle(lastUse: holder.lastUse)
            return PoolPlacement.Occupant(range: range, state: state)
        }
        return PoolPlacement.place(bytes: piece.bytes, alignment: piece.alignment, poolBytes: pool.bytes,
                                   occupants: occupants).map { $0..<($0 + piece.bytes) }
    }

    /// Makes room for `bytes` of valid contents at `range` of the pool (nil: outside it): takes back every valid
    /// session whose range overlaps it, then unpinned sessions, least recently used first, until the bytes fit the
    /// budget. False (taking nothing back) when a session in use overlaps the range or even all sessions not in
    /// use would not make room.
    private func makeRoom(_ bytes: UInt64, range: Range<UInt64>?, for id: ObjectIdentifier) -> Bool {
        let valid = holders.filter { $0.key != id && $0.value.valid }
        let overlapped = valid.filter { _, holder in
            guard let range, let other = holder.range else { return false }
            return other.overlaps(range)
        }
        guard !overlapped.values.contains(where: { $0.pins > 0 }) else { return false }
        guard let budgetBytes else { return true }
        // Beside a pool, sessions with allocations of their own share what the pool leaves of the budget (the pool
        // is allocated whole whatever its ranges hold), so the device never holds more than the budget.
        if range == nil, let pool {
            let beside = valid.filter { $0.value.range == nil }
            let idle = beside.filter { $0.value.pins == 0 }.sorted { $0.value.lastUse < $1.value.lastUse }
            var held = beside.values.reduce(UInt64(0)) { $0 + $1.bytes }
            let limit = budgetBytes - min(budgetBytes, pool.bytes)
            guard held - idle.reduce(UInt64(0), { $0 + $1.value.bytes }) + bytes <= limit else { return false }
            for (other, holder) in idle where held + bytes > limit {
                takeBack(other, holder, counted: true)
                held -= holder.bytes
            }
            return true
        }
        let idle = valid.filter { $0.value.pins == 0 && overlapped[$0.key] == nil }
            .sorted { $0.value.lastUse < $1.value.lastUse }
        let freed = (overlapped.values + idle.map(\.value)).reduce(UInt64(0)) { $0 + $1.bytes }
        guard used - freed + bytes <= budgetBytes else { return false }
        for (other, holder) in overlapped { takeBack(other, holder, counted: true) }
        for (other, holder) in idle where !fits(bytes) { takeBack(other, holder, counted: true) }
        return true
    }

    /// Takes an unpinned session's memory back: a pool session's contents are marked clobbered (its objects stay,
    /// bound at its range); a session with allocations of its own loses its residency (they are freed).
    private func takeBack(_ id: ObjectIdentifier, _ holder: Holder, counted: Bool) {
        // Unpinned: nothing of the session is in flight (its runs and prefetches waited for their work); where the
        // driver needs it, the drain makes sure it is done with those submissions too before their objects go or
        // their memory is written by another session.
        if let session = holder.session, device.drainsBeforeReuse { device.drain(timeout: session.timeoutNanoseconds) }
        if holder.range != nil {
            holder.valid = false
            holder.session?.residency?.clobber()
        } else {
            holders.removeValue(forKey: id)
            holder.session?.residency = nil
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
    /// Held now by the context's sessions with valid contents (footprint = arena + weight space each); the pool's
    /// ranges of sessions whose contents were clobbered are not counted.
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
    /// The context's pool: device memory allocated once, at most the budget (0: no pool, see `DeviceContext`).
    public var poolBytes: UInt64 = 0
    /// Of `usedBytes`, what sessions hold in allocations of their own, beside the pool (0 when every session is in
    /// the pool, or all of `usedBytes` without a pool).
    public var unpooledBytes: UInt64 = 0
}
