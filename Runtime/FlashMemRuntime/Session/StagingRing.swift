/// Where each chunk's decoded bytes go in the pinned staging ring, decided once per session: placement
/// depends only on chunk sizes and order, so transfer command buffers can be recorded once and replayed.
///
/// Chunks are placed in issue order, one after another, wrapping to 0 when the next does not fit before
/// the end. Before the host writes a chunk it must be sure every earlier copy that read the bytes it is
/// about to overwrite has finished: `reuseWait[o]` is the highest such chunk ordinal (the host waits for
/// `loaded >= reuseWait + 1`), or nil when the bytes are fresh in this run.
struct StagingRing: Equatable {
    var capacity: UInt64
    /// Per chunk ordinal: offset in the ring.
    var offsets: [UInt64]
    /// Per chunk ordinal: the highest ordinal whose copy must have finished before writing, or nil.
    var reuseWait: [Int?]
    /// Every chunk has a slot no other chunk shares (no slot waits for an earlier copy): the ring holds them all.
    private(set) var holdsAll = true

    /// - sizes: raw (decoded) size of each chunk, in issue order; alignment: of every slot's offset.
    /// - capacity: ring bytes; at least the largest aligned chunk.
    init(sizes: [UInt64], alignment: UInt64, capacity: UInt64) {
        self.capacity = capacity
        offsets = []
        reuseWait = []
        // Slots in use: (start, end, ordinal), oldest first.
        var inFlight: [(start: UInt64, end: UInt64, ordinal: Int)] = []
        var head: UInt64 = 0
        for (ordinal, size) in sizes.enumerated() {
            var start = alignUp(head, alignment)
            if start + size > capacity { start = 0 }
            let end = start + size
            let overlapping = inFlight.filter { $0.start < end && start < $0.end }
            let wait = overlapping.map(\.ordinal).max()
            if let wait {
                // Timeline values only grow, so waiting for `wait` also retires every older slot.
                inFlight.removeAll { $0.ordinal <= wait }
            }
            inFlight.append((start, end, ordinal))
            offsets.append(start)
            reuseWait.append(wait)
            holdsAll = holdsAll && wait == nil
            head = end
        }
    }

    /// Ring bytes for chunks of `sizes`: `requested` but at least twice the largest chunk (so one copy can
    /// run while the next is decoded), and never more than all chunks together need.
    static func capacity(sizes: [UInt64], alignment: UInt64, requested: UInt64) -> UInt64 {
        let largest = alignUp(sizes.max() ?? 0, alignment)
        let total = sizes.reduce(UInt64(0)) { alignUp($0, alignment) + $1 }
        return min(max(requested, 2 * largest), max(total, largest))
    }
}
